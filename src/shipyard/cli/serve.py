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
from typing import Any

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


def serve(
    bundle: Path = typer.Argument(
        ..., help="Bundle directory or model.tar.gz.", envvar=_env("model_dir"), show_default=False
    ),
    port: int = typer.Option(_D.port, "--port", "-p", help="Port (0: any free one).", envvar=_env("port"),
                             rich_help_panel=SERVER, **_range("port")),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (the container's default is 0.0.0.0).",
                             envvar=_env("host"), rich_help_panel=SERVER),
    workers: int | None = typer.Option(None, "--workers", "-w", help="Worker processes.", envvar=_env("workers"),
                                       show_default="one per usable core", rich_help_panel=SERVER,
                                       **_range("workers")),
    timeout_s: float = typer.Option(_D.timeout_s, "--timeout", help="Seconds per invocation before 504.",
                                    envvar=_env("timeout_s"), rich_help_panel=SERVER, **_range("timeout_s")),
    max_payload_mb: float = typer.Option(_D.max_payload_bytes / 2**20, "--max-payload-mb",
                                         help="Request body limit in MB before 413.",
                                         envvar=_env("max_payload_mb"), rich_help_panel=SERVER,
                                         **_range("max_payload_mb")),
    graceful_timeout_s: float = typer.Option(_D.graceful_timeout_s, "--graceful-timeout",
                                             help="Seconds SIGTERM waits for in-flight requests.",
                                             envvar=_env("graceful_timeout_s"), rich_help_panel=SERVER,
                                             **_range("graceful_timeout_s")),
    max_header_bytes: int = typer.Option(_D.max_header_bytes, "--max-header-bytes",
                                         help="Request line and headers in bytes before 431.",
                                         envvar=_env("max_header_bytes"), rich_help_panel=SERVER,
                                         **_range("max_header_bytes")),
    header_timeout_s: float = typer.Option(_D.header_timeout_s, "--header-timeout",
                                           help="Seconds from connecting to a complete request head (then 408, "
                                           "or closed if nothing came).", envvar=_env("header_timeout_s"),
                                           rich_help_panel=SERVER, **_range("header_timeout_s")),
    max_connections: int = typer.Option(_D.max_connections, "--max-connections",
                                        help="Open connections per worker before 503 (0: from the open-file "
                                        "limit).", envvar=_env("max_connections"), rich_help_panel=SERVER,
                                        **_range("max_connections")),
    preload: str = typer.Option(_D.preload, "--preload", help="Load the model once before forking the workers: "
                                "auto (scikit-learn and Python bundles), on or off.", envvar=_env("preload"),
                                parser=_auto_on_off, metavar="<auto|on|off>", rich_help_panel=SERVER),
    model_threads: int = typer.Option(_D.model_threads, "--model-threads",
                                      help="Torch threads per worker (0: cores ÷ workers).",
                                      envvar=_env("model_threads"), rich_help_panel=SERVER,
                                      **_range("model_threads")),
    model_process: bool = typer.Option(_D.model_process, "--model-process/--model-in-worker",
                                       help="Run the model in a child process of each worker, so that a crash, an "
                                       "OOM kill or a stuck call costs only its own requests.",
                                       envvar=_env("model_process"), show_default="on", rich_help_panel=SERVER),
    overrun_grace_s: float = typer.Option(_D.overrun_grace_s, "--overrun-grace",
                                          help="Seconds a model call may run past --timeout before its process is "
                                          "replaced.", envvar=_env("overrun_grace_s"), rich_help_panel=SERVER,
                                          **_range("overrun_grace_s")),
    fault_injection: bool = typer.Option(_D.fault_injection, "--fault-injection/--no-fault-injection",
                                         help="Answer POST /_shipyard/faults/oom by leaking memory in the model "
                                         "process (what `shipyard verify` checks the server survives). Tests only.",
                                         envvar=_env("fault_injection"), show_default="off", rich_help_panel=SERVER),
    run_as: str | None = typer.Option(None, "--run-as", help="User to drop to after binding the port (as root).",
                                      envvar=_env("run_as"), show_default="stay who you are",
                                      rich_help_panel=SERVER),
    max_batch_size: int = typer.Option(_D.max_batch_size, "--max-batch-size", help="Rows per model call.",
                                       envvar=_env("max_batch_size"), rich_help_panel=BATCHING,
                                       **_range("max_batch_size")),
    max_batch_delay_ms: float = typer.Option(_D.max_batch_delay_ms, "--max-batch-delay-ms",
                                             help="Extra wait for a batch to fill (0: greedy).",
                                             envvar=_env("max_batch_delay_ms"), rich_help_panel=BATCHING,
                                             **_range("max_batch_delay_ms")),
    max_queue: int = typer.Option(_D.max_queue, "--max-queue", help="Queued requests per worker before 503.",
                                  envvar=_env("max_queue"), rich_help_panel=BATCHING, **_range("max_queue")),
    program: str = typer.Option(_D.program, "--program", help="Handler script in the bundle's code/.",
                                envvar=_env("program"), rich_help_panel=HANDLER),
    default_accept: str | None = typer.Option(None, "--default-accept",
                                              help="Answer type when Accept is missing or */*.",
                                              envvar=_env("default_accept"), show_default="the request's type",
                                              rich_help_panel=HANDLER),
    json_envelope: bool | None = typer.Option(None, "--json-envelope/--bare-json",
                                              help='JSON answers as {"predictions": [...]}, or the bare list.',
                                              envvar=_env("json_envelope"),
                                              show_default="the bundle's setting, which is the envelope unless "
                                              "saved with json_envelope=False", rich_help_panel=HANDLER),
    access_log: bool = typer.Option(_D.access_log, "--access-log/--no-access-log", help="One JSON line per request.",
                                    envvar=_env("access_log"), show_default="on", rich_help_panel=LOGS),
    log_level: str = typer.Option(_D.log_level, "--log-level", help="DEBUG, INFO, WARNING, ERROR or CRITICAL "
                                  "(or the toolkit's 10-50).", envvar=_env("log_level"), rich_help_panel=LOGS),
    capture_destination: str | None = typer.Option(None, "--capture-destination",
                                                   help="Data capture to a directory or s3://bucket/prefix.",
                                                   envvar=_env("capture_destination"), show_default="off",
                                                   rich_help_panel=CAPTURE),
    capture_percent: float = typer.Option(_D.capture_percent, "--capture-percent",
                                          help="Share of invocations captured.",
                                          envvar=_env("capture_percent"), rich_help_panel=CAPTURE,
                                          **_range("capture_percent")),
    capture_queue: int = typer.Option(_D.capture_queue, "--capture-queue",
                                      help="Captured records waiting to be written; more are dropped.",
                                      envvar=_env("capture_queue"), rich_help_panel=CAPTURE,
                                      **_range("capture_queue")),
    capture_flush_s: float = typer.Option(_D.capture_flush_s, "--capture-flush-seconds",
                                          help="Seconds between uploads to an s3:// destination.",
                                          envvar=_env("capture_flush_s"), rich_help_panel=CAPTURE,
                                          **_range("capture_flush_s")),
    secrets: str | None = typer.Option(None, "--secrets", help="VAR=NAME,...: Secrets Manager secrets put in "
                                       "the environment at start.", envvar=_env("secrets"), show_default="none",
                                       rich_help_panel=SECRETS),
    region: str | None = typer.Option(None, "--region", help="Region of those secrets.", envvar=_env("region"),
                                      show_default="boto3's", rich_help_panel=SECRETS),
) -> None:  # fmt: skip
    """Serve a bundle with the SageMaker contract (GET /ping, POST /invocations) until Ctrl-C.

    Each option's default is the environment variable the container reads (shown as "env var").
    """
    # Each parameter but the bundle is named as its setting in config.ENV (the flags keep their own names):
    # the settings given are the arguments, read before any other local name exists.
    arguments = dict(locals())
    given: dict[str, Any] = {name: arguments[name] for name in ENV if name in arguments}
    from shipyard.bundle.archive import open_any
    from shipyard.hosting import serve as run

    # Back to the variables (the first name of each, the one the config reads first): one reader, the
    # container's, parses and checks every value, whether it came from the command line or the environment.
    env = dict(os.environ)
    for name, value in given.items():
        if value is not None:
            env[ENV[name][0]] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    with open_any(bundle, program) as opened:
        config = ServerConfig.from_env(env, model_dir=str(opened.path))
        code = run(config)
    raise typer.Exit(code)
