"""``shipyard serve BUNDLE``: the container's server, on this machine.

Every environment variable the container's entry point reads is the default of one option here (typer's
``envvar=``, names and ranges from :data:`shipyard.config.ENV` and :data:`shipyard.config.LIMITS`), so
``SHIPYARD_ACCESS_LOG=0 shipyard serve b/`` serves as ``SHIPYARD_ACCESS_LOG=0 serve`` does in the image, and an
option given on the command line wins over its variable. The options' values go back to the config as
those variables, so they are parsed and checked by the one reader the container uses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.config import ENV, LIMITS, ServerConfig, parse_auto_bool

SERVER, BATCHING, HANDLER, LOGS, CAPTURE, SECRETS = "Server", "Batching", "Handler", "Logs", "Data capture", "Secrets"
_D = ServerConfig()  # the container's defaults, shown as the options' defaults


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def _env(name: str) -> list[str]:
    return list(ENV[name])


def _range(name: str) -> dict[str, Any]:
    low, high = LIMITS[name]
    return {"min": low, "max": high}


def _auto_on_off(value: str) -> str:
    """auto, on or off in any case; also the yes/no spellings (``1``, ``yes``, ...) the container's
    SHIPYARD_PRELOAD takes, so the variable means the same to ``shipyard serve``. Anything else is a usage
    error that names the option."""
    parsed = parse_auto_bool(value)
    if parsed is None:
        raise typer.BadParameter(f"{value!r}: use auto, on or off")
    return parsed


BundleArg = Annotated[
    Path, typer.Argument(help="Bundle directory or model.tar.gz.", envvar=_env("model_dir"), show_default=False)
]
PortOpt = Annotated[
    int,
    typer.Option(
        "--port", "-p", help="Port (0: any free one).", envvar=_env("port"), rich_help_panel=SERVER, **_range("port")
    ),
]
HostOpt = Annotated[
    str,
    typer.Option(
        "--host",
        help="Address to bind (the container's default is 0.0.0.0).",
        envvar=_env("host"),
        rich_help_panel=SERVER,
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        "-w",
        help="Worker processes.",
        envvar=_env("workers"),
        show_default="one per usable core",
        rich_help_panel=SERVER,
        **_range("workers"),
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        help="Seconds per invocation before 504.",
        envvar=_env("timeout_s"),
        rich_help_panel=SERVER,
        **_range("timeout_s"),
    ),
]
MaxPayloadOpt = Annotated[
    float,
    typer.Option(
        "--max-payload-mb",
        help="Request body limit in MB before 413.",
        envvar=_env("max_payload_mb"),
        rich_help_panel=SERVER,
        **_range("max_payload_mb"),
    ),
]
GracefulTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--graceful-timeout",
        help="Seconds SIGTERM waits for in-flight requests.",
        envvar=_env("graceful_timeout_s"),
        rich_help_panel=SERVER,
        **_range("graceful_timeout_s"),
    ),
]
MaxHeaderOpt = Annotated[
    int,
    typer.Option(
        "--max-header-bytes",
        help="Request line and headers in bytes before 431.",
        envvar=_env("max_header_bytes"),
        rich_help_panel=SERVER,
        **_range("max_header_bytes"),
    ),
]
HeaderTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--header-timeout",
        help="Seconds from connecting to a complete request head (then 408, or closed if nothing came).",
        envvar=_env("header_timeout_s"),
        rich_help_panel=SERVER,
        **_range("header_timeout_s"),
    ),
]
MaxConnectionsOpt = Annotated[
    int,
    typer.Option(
        "--max-connections",
        help="Open connections per worker before 503 (0: from the open-file limit).",
        envvar=_env("max_connections"),
        rich_help_panel=SERVER,
        **_range("max_connections"),
    ),
]
PreloadOpt = Annotated[
    str,
    typer.Option(
        "--preload",
        help="Load the model once before forking the workers: auto (scikit-learn and Python bundles), on or off.",
        envvar=_env("preload"),
        parser=_auto_on_off,
        metavar="<auto|on|off>",
        rich_help_panel=SERVER,
    ),
]
ModelThreadsOpt = Annotated[
    int,
    typer.Option(
        "--model-threads",
        help="Torch threads per worker (0: cores ÷ workers).",
        envvar=_env("model_threads"),
        rich_help_panel=SERVER,
        **_range("model_threads"),
    ),
]
ModelProcessOpt = Annotated[
    bool,
    typer.Option(
        "--model-process/--model-in-worker",
        help="Run the model in a child process of each worker, so that a crash, an OOM kill or a stuck call costs "
        "only its own requests.",
        envvar=_env("model_process"),
        show_default="on",
        rich_help_panel=SERVER,
    ),
]
OverrunGraceOpt = Annotated[
    float,
    typer.Option(
        "--overrun-grace",
        help="Seconds a model call may run past --timeout before its process is replaced.",
        envvar=_env("overrun_grace_s"),
        rich_help_panel=SERVER,
        **_range("overrun_grace_s"),
    ),
]
FaultInjectionOpt = Annotated[
    bool,
    typer.Option(
        "--fault-injection/--no-fault-injection",
        help="Answer POST /_shipyard/faults/oom by leaking memory in the model process (what `shipyard verify` "
        "checks the server survives). Tests only.",
        envvar=_env("fault_injection"),
        show_default="off",
        rich_help_panel=SERVER,
    ),
]
MultiModelOpt = Annotated[
    bool,
    typer.Option(
        "--multi-model/--single-model",
        help="Serve a multi-model endpoint: BUNDLE is the directory of models (bundles, model.tar.gz) that "
        "X-Amzn-SageMaker-Target-Model names; more are registered with POST /models.",
        envvar=_env("multi_model"),
        show_default="single model",
        rich_help_panel=SERVER,
    ),
]
ModelsDirOpt = Annotated[
    str | None,
    typer.Option(
        "--models-dir",
        help="Multi-model: where target model names are looked up (default: BUNDLE with --multi-model).",
        envvar=_env("models_dir"),
        show_default="BUNDLE",
        rich_help_panel=SERVER,
    ),
]
ModelMemoryOpt = Annotated[
    float,
    typer.Option(
        "--model-memory-mb",
        help="Multi-model: memory the loaded models may take before the least recently used is unloaded "
        "(0: 70 % of the memory limit).",
        envvar=_env("model_memory_mb"),
        rich_help_panel=SERVER,
        **_range("model_memory_mb"),
    ),
]
ModelRegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--model-registry",
        help="Multi-model: directory of the registered models' records, shared by the workers.",
        envvar=_env("model_registry"),
        show_default="a temporary directory",
        rich_help_panel=SERVER,
    ),
]
StreamRowsOpt = Annotated[
    int,
    typer.Option(
        "--stream-rows",
        help="Answer as a stream: a saved bundle predicts and sends this many rows a chunk (0: one answer).",
        envvar=_env("stream_rows"),
        rich_help_panel=SERVER,
        **_range("stream_rows"),
    ),
]
RunAsOpt = Annotated[
    str | None,
    typer.Option(
        "--run-as",
        help="User to drop to after binding the port (as root).",
        envvar=_env("run_as"),
        show_default="stay who you are",
        rich_help_panel=SERVER,
    ),
]
MaxBatchSizeOpt = Annotated[
    int,
    typer.Option(
        "--max-batch-size",
        help="Rows per model call.",
        envvar=_env("max_batch_size"),
        rich_help_panel=BATCHING,
        **_range("max_batch_size"),
    ),
]
MaxBatchDelayOpt = Annotated[
    float,
    typer.Option(
        "--max-batch-delay-ms",
        help="Extra wait for a batch to fill (0: greedy).",
        envvar=_env("max_batch_delay_ms"),
        rich_help_panel=BATCHING,
        **_range("max_batch_delay_ms"),
    ),
]
MaxQueueOpt = Annotated[
    int,
    typer.Option(
        "--max-queue",
        help="Queued requests per worker before 503.",
        envvar=_env("max_queue"),
        rich_help_panel=BATCHING,
        **_range("max_queue"),
    ),
]
ProgramOpt = Annotated[
    str,
    typer.Option(
        "--program", help="Handler script in the bundle's code/.", envvar=_env("program"), rich_help_panel=HANDLER
    ),
]
DefaultAcceptOpt = Annotated[
    str | None,
    typer.Option(
        "--default-accept",
        help="Answer type when Accept is missing or */*.",
        envvar=_env("default_accept"),
        show_default="the request's type",
        rich_help_panel=HANDLER,
    ),
]
JsonEnvelopeOpt = Annotated[
    bool | None,
    typer.Option(
        "--json-envelope/--bare-json",
        help='JSON answers as {"predictions": [...]}, or the bare list.',
        envvar=_env("json_envelope"),
        show_default="the bundle's setting, which is the envelope unless saved with json_envelope=False",
        rich_help_panel=HANDLER,
    ),
]
AccessLogOpt = Annotated[
    bool,
    typer.Option(
        "--access-log/--no-access-log",
        help="One JSON line per request.",
        envvar=_env("access_log"),
        show_default="on",
        rich_help_panel=LOGS,
    ),
]
LogLevelOpt = Annotated[
    str,
    typer.Option(
        "--log-level",
        help="DEBUG, INFO, WARNING, ERROR or CRITICAL (or the toolkit's 10-50).",
        envvar=_env("log_level"),
        rich_help_panel=LOGS,
    ),
]
CaptureDestinationOpt = Annotated[
    str | None,
    typer.Option(
        "--capture-destination",
        help="Data capture to a directory or s3://bucket/prefix.",
        envvar=_env("capture_destination"),
        show_default="off",
        rich_help_panel=CAPTURE,
    ),
]
CapturePercentOpt = Annotated[
    float,
    typer.Option(
        "--capture-percent",
        help="Share of invocations captured.",
        envvar=_env("capture_percent"),
        rich_help_panel=CAPTURE,
        **_range("capture_percent"),
    ),
]
CaptureQueueOpt = Annotated[
    int,
    typer.Option(
        "--capture-queue",
        help="Captured records waiting to be written; more are dropped.",
        envvar=_env("capture_queue"),
        rich_help_panel=CAPTURE,
        **_range("capture_queue"),
    ),
]
CaptureFlushOpt = Annotated[
    float,
    typer.Option(
        "--capture-flush-seconds",
        help="Seconds between uploads to an s3:// destination.",
        envvar=_env("capture_flush_s"),
        rich_help_panel=CAPTURE,
        **_range("capture_flush_s"),
    ),
]
SecretsOpt = Annotated[
    str | None,
    typer.Option(
        "--secrets",
        help="VAR=NAME,...: Secrets Manager secrets put in the environment at start.",
        envvar=_env("secrets"),
        show_default="none",
        rich_help_panel=SECRETS,
    ),
]
RegionOpt = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="Region of those secrets.",
        envvar=_env("region"),
        show_default="boto3's",
        rich_help_panel=SECRETS,
    ),
]


def serve(
    bundle: BundleArg,
    port: PortOpt = _D.port,
    host: HostOpt = "127.0.0.1",
    workers: WorkersOpt = None,
    timeout_s: TimeoutOpt = _D.timeout_s,
    max_payload_mb: MaxPayloadOpt = _D.max_payload_bytes / 2**20,
    graceful_timeout_s: GracefulTimeoutOpt = _D.graceful_timeout_s,
    max_header_bytes: MaxHeaderOpt = _D.max_header_bytes,
    header_timeout_s: HeaderTimeoutOpt = _D.header_timeout_s,
    max_connections: MaxConnectionsOpt = _D.max_connections,
    preload: PreloadOpt = _D.preload,
    model_threads: ModelThreadsOpt = _D.model_threads,
    model_process: ModelProcessOpt = _D.model_process,
    overrun_grace_s: OverrunGraceOpt = _D.overrun_grace_s,
    fault_injection: FaultInjectionOpt = _D.fault_injection,
    multi_model: MultiModelOpt = _D.multi_model,
    models_dir: ModelsDirOpt = None,
    model_memory_mb: ModelMemoryOpt = _D.model_memory_mb,
    model_registry: ModelRegistryOpt = None,
    stream_rows: StreamRowsOpt = _D.stream_rows,
    run_as: RunAsOpt = None,
    max_batch_size: MaxBatchSizeOpt = _D.max_batch_size,
    max_batch_delay_ms: MaxBatchDelayOpt = _D.max_batch_delay_ms,
    max_queue: MaxQueueOpt = _D.max_queue,
    program: ProgramOpt = _D.program,
    default_accept: DefaultAcceptOpt = None,
    json_envelope: JsonEnvelopeOpt = None,
    access_log: AccessLogOpt = _D.access_log,
    log_level: LogLevelOpt = _D.log_level,
    capture_destination: CaptureDestinationOpt = None,
    capture_percent: CapturePercentOpt = _D.capture_percent,
    capture_queue: CaptureQueueOpt = _D.capture_queue,
    capture_flush_s: CaptureFlushOpt = _D.capture_flush_s,
    secrets: SecretsOpt = None,
    region: RegionOpt = None,
) -> None:
    """Serve a bundle with the SageMaker contract (GET /ping, POST /invocations) until Ctrl-C.

    Each option's default is the environment variable the container reads (shown as "env var").
    """
    # Each parameter but the bundle is named as its setting in config.ENV (the flags keep their own names):
    # the settings given are the arguments, read before any other local name exists.
    arguments = dict(locals())
    given: dict[str, Any] = {name: arguments[name] for name in ENV if name in arguments}
    raise typer.Exit(_run(bundle, program, _as_env(given, dict(os.environ))))


def _as_env(given: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """Back to the variables (the first name of each, the one the config reads first): one reader, the
    container's, parses and checks every value, whether it came from the command line or the environment."""
    for name, value in given.items():
        if value is not None:
            env[ENV[name][0]] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return env


def _run(bundle: Path, program: str, env: dict[str, str]) -> int:
    """Open the bundle (a directory or an archive), read the server's config from ``env`` and serve it."""
    from shipyard.bundle.archive import open_any
    from shipyard.hosting import serve as run

    if ServerConfig.from_env(env).multi_model:  # BUNDLE: the directory of models
        env.setdefault(ENV["models_dir"][0], str(bundle))
        return run(ServerConfig.from_env(env))
    with open_any(bundle, program) as opened:
        config = ServerConfig.from_env(env, model_dir=str(opened.path))
        return run(config)
