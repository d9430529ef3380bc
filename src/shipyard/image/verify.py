"""``verify``: run an image the way SageMaker does and check it keeps the container contract.

The container runs as ``IMAGE serve`` with the bundle mounted read-only at ``/opt/ml/model`` (or the
model baked into the image), a memory limit, and no network but the serving port: where the engine's
containers are local processes (Podman, or Docker on Linux, as root) it gets ``--network none`` and
the verifier forwards ``127.0.0.1:PORT`` into its namespace; elsewhere the port is published on
127.0.0.1 and the report says outbound traffic was not blocked.

Checks (each pass / fail / skip, with a detail): architecture, manifest, size, secrets-env,
secrets-layers, serve, ping (cold start measured), predictions, status-415, status-413, status-400,
non-root, oom, sigterm.

``limits=serverless[:MEMORY_MB]`` (:func:`parse_limits`) runs the container as SageMaker Serverless Inference
would: ``--memory`` and ``--memory-swap`` at MEMORY_MB (no swap), /ping within 3 minutes, and adds the checks
serverless-ping (≤ 180 s), serverless-latency (the example request ≤ 60 s) and serverless-memory (the
cgroup's peak under the limit, no OOM kill). CPU is not limited: AWS allots it in proportion to memory but does
not publish the ratio.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from shipyard.codecs.media import content_type_for
from shipyard.errors import ImageError, SpecError
from shipyard.image.engine import Engine, ImageInfo, detect, is_local_registry
from shipyard.image.run import ContainerRun, Ping, can_isolate
from shipyard.image.scan import scan_env, scan_history, scan_layers
from shipyard.settings import Settings
from shipyard.units import SERVERLESS_DEFAULT_MEMORY_MB, SERVERLESS_MEMORY_MB, serverless_sizes

__all__ = ["Check", "Limits", "VerifyOptions", "VerifyReport", "parse_limits", "verify"]

_MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
_ARCH = {"linux/amd64": "amd64", "linux/arm64": "arm64"}
SERVERLESS_PING_S = 180.0  # the model must download and /ping answer 200 within 3 minutes
SERVERLESS_INVOKE_S = 60.0  # an /invocations call must answer within 1 minute
_SERVERLESS_CHECKS = ("serverless-ping", "serverless-latency", "serverless-memory")


@dataclass(frozen=True)
class Limits:
    """What a hosting kind allows the container: SageMaker Serverless Inference's memory size (and its times)."""

    kind: str  # "serverless"
    memory_mb: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.memory_mb}"

    @property
    def memory(self) -> str:
        """As ``--memory`` (and ``--memory-swap``) take it."""
        return f"{self.memory_mb}m"


def parse_limits(text: str) -> Limits:
    """``serverless`` (2048 MB, the SDK's default) or ``serverless:MEMORY_MB`` (1024…6144 in 1024 steps); a
    :class:`SpecError` naming the ``limits`` option otherwise."""
    kind, sep, size = text.strip().partition(":")
    if kind.strip().lower() != "serverless":
        raise SpecError(
            f"limits {text!r}: the only limits are serverless[:MEMORY_MB] (SageMaker Serverless Inference)",
            option="limits",
        )
    if not sep:
        return Limits("serverless", SERVERLESS_DEFAULT_MEMORY_MB)
    try:
        memory_mb = int(size.strip().lower().removesuffix("mb"))
    except ValueError:
        memory_mb = 0
    if memory_mb not in SERVERLESS_MEMORY_MB:
        raise SpecError(
            f"limits {text!r}: SageMaker Serverless allows {serverless_sizes()} MB of memory", option="limits"
        )
    return Limits("serverless", memory_mb)


@dataclass(frozen=True)
class VerifyOptions:
    bundle: Path | None = None  # mounted at /opt/ml/model; default: the model baked into the image
    example: Path | None = None  # a request body to compare with the in-process answer (needs bundle)
    engine: str | None = None
    platform: str = "linux/amd64"
    timeout: float = 120.0  # seconds for the first /ping 200
    grace: float = 30.0  # seconds SIGTERM may take
    memory: str = "2g"
    max_size: int = 10 * 1024**3  # SageMaker serverless' image limit
    scan_layers: bool = True
    limits: Limits | None = None  # serverless: its memory (replaces ``memory``, no swap) and its time limits

    @property
    def container_memory(self) -> str:
        """The container's ``--memory``: the limits' when given, else ``memory``."""
        return self.limits.memory if self.limits else self.memory


@dataclass
class Check:
    name: str
    status: str  # pass | fail | skip
    detail: str
    value: float | None = None


@dataclass
class VerifyReport:
    image: str
    checks: list[Check] = field(default_factory=list)
    cold_start_s: float | None = None
    network: str = ""
    cold_start_prediction_s: float | None = None  # container start → the first correct prediction
    memory_peak_bytes: int | None = None  # the container cgroup's peak after that prediction (page cache included)
    memory_limit_bytes: int | None = None  # with limits: the memory the container ran under
    limits: str | None = None  # "serverless:2048"

    @property
    def passed(self) -> bool:
        return all(check.status != "fail" for check in self.checks)

    @property
    def failed(self) -> list[str]:
        return [check.name for check in self.checks if check.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "passed": self.passed,
            "cold_start_s": self.cold_start_s,
            "network": self.network,
            "cold_start_prediction_s": self.cold_start_prediction_s,
            "memory_peak_bytes": self.memory_peak_bytes,
            "memory_limit_bytes": self.memory_limit_bytes,
            "limits": self.limits,
            "checks": [asdict(c) for c in self.checks],
        }


def verify(
    image: str,
    options: VerifyOptions | None = None,
    on_check: Callable[[Check], None] | None = None,
    *,
    settings: Settings | None = None,
) -> VerifyReport:
    """Run every check on ``image``; the report (``report.passed`` is False when any check failed)."""
    options = options or VerifyOptions()
    engine = detect(options.engine, settings)
    report = VerifyReport(image)
    if options.limits is not None:
        report.limits = str(options.limits)
        report.memory_limit_bytes = options.limits.memory_mb * 1024**2

    def record(name: str, status: str, detail: str, value: float | None = None) -> None:
        check = Check(name, status, detail, value)
        report.checks.append(check)
        if on_check:
            on_check(check)

    if not engine.image_exists(image):
        engine.pull(image, platform=options.platform)
    info = engine.inspect_image(image)
    _static_checks(engine, image, info, options, record)
    with ExitStack() as stack:
        bundle_dir = stack.enter_context(_bundle_view(engine, image, options.bundle))
        _run_checks(engine, image, info, bundle_dir, options, report, record)
    if options.scan_layers:
        with engine.save(image) as stream:
            scan = scan_layers(stream)
        findings = scan.findings + scan_history(layer.created_by for layer in engine.history(image))
        clean = f"{scan.files} files in {info.layers} layers and the history: no secrets"
        if scan.packaged:
            clean += (
                f" ({len(scan.packaged)} match(es) in files identical to their installed wheels', not counted: "
                f"{_findings(scan.packaged)})"
            )
        record("secrets-layers", "fail" if findings else "pass", _findings(findings) if findings else clean)
    return report


def _static_checks(
    engine: Engine, image: str, info: ImageInfo, options: VerifyOptions, record: Callable[..., None]
) -> None:
    want = _ARCH[options.platform]
    platform = f"{info.os}/{info.architecture}"
    record("architecture", "pass" if info.architecture == want and info.os == "linux" else "fail", platform)
    kind = _manifest_kind(engine, image, info)
    single = kind in _MANIFEST_TYPES[:2]
    record("manifest", "pass" if single else "fail", kind + ("" if single else ": push one platform, no attestation"))
    size_mb = info.size / 1e6
    record(
        "size",
        "pass" if info.size <= options.max_size else "fail",
        f"{size_mb:,.0f} MB in {info.layers} layers (limit {options.max_size / 1e6:,.0f} MB)",
        size_mb,
    )
    findings = scan_env(info.env)
    record(
        "secrets-env",
        "fail" if findings else "pass",
        _findings(findings) if findings else f"{len(info.env)} variables: no secrets",
    )


def _run_checks(
    engine: Engine,
    image: str,
    info: ImageInfo,
    bundle_dir: Path | None,
    options: VerifyOptions,
    report: VerifyReport,
    record: Callable[..., None],
) -> None:
    """The checks of a running container: it starts, answers /ping, keeps the contract, and stops on SIGTERM."""
    mounted = bundle_dir if options.bundle is not None else None  # None: the model is baked into the image
    limits = options.limits
    timeout = min(options.timeout, SERVERLESS_PING_S) if limits else options.timeout
    run = ContainerRun(
        engine,
        image,
        name=f"shipyard-verify-{uuid.uuid4().hex[:8]}",
        memory=options.container_memory,
        memory_swap=limits.memory if limits else None,  # no swap: serverless has none
        # SHIPYARD_FAULT_INJECTION: the oom check's route (a model call that leaks until the OOM killer comes)
        env={"SHIPYARD_FAULT_INJECTION": "1"},
        mounts={str(mounted.resolve()): "/opt/ml/model"} if mounted is not None else {},
        isolate=can_isolate(engine),
    )
    report.network = run.network
    with run:
        started = time.monotonic()
        try:
            run.start()
        except ImageError as exc:
            record("serve", "fail", f"`{image} serve` did not start: {exc}")
            if limits is not None:
                record("serverless-ping", "skip", "the container did not start")
            _skip_rest(record, "the container did not start", limits)
            return
        ping = run.wait_ready(timeout, started=started, interval=0.02, alive_every=1.0)
        if ping.seconds is None:
            _not_ready(run, ping, timeout, record, limits)
            return
        report.cold_start_s = ping.seconds
        record("serve", "pass", "`IMAGE serve` runs")
        record(
            "ping",
            "pass",
            f"200 after {ping.seconds:.2f} s (cold start: container start → first /ping 200)",
            ping.seconds,
        )
        _contract_checks(run, info, bundle_dir, options, report, record, started)


def _not_ready(
    run: ContainerRun, ping: Ping, timeout: float, record: Callable[..., None], limits: Limits | None
) -> None:
    running = bool(run.state().get("Running"))
    logs = _tail(run.logs())
    if not running:
        record("serve", "fail", f"the container exited before answering /ping: {logs}")
        record("ping", "skip", "the container exited")
    else:
        detail = (
            "the container exited" if ping.exited else f"no 200 from /ping within {timeout:g} s (last: {ping.last})"
        )
        record("serve", "pass", "`IMAGE serve` runs")
        record("ping", "fail", f"{detail}; log: {logs}")
    if limits is not None:
        record("serverless-ping", "fail", f"no /ping 200 within {timeout:g} s under {limits} (serverless allows 180 s)")
    _skip_rest(record, "the server never answered /ping", limits)


def _contract_checks(
    run: ContainerRun,
    info: ImageInfo,
    bundle_dir: Path | None,
    options: VerifyOptions,
    report: VerifyReport,
    record: Callable[..., None],
    started: float,
) -> None:
    """What a ready container must do: predict, answer errors with their codes, serve as non-root, survive an
    out-of-memory model call, and stop cleanly (and, under limits, keep serverless' times and memory)."""
    assert run.container is not None
    with httpx.Client(timeout=60.0) as client:
        request_s = _prediction_check(client, run.url, bundle_dir, options, record)
        if request_s is not None:
            report.cold_start_prediction_s = time.monotonic() - started
        # before the error checks and the oom check (which leaks on purpose): the peak of loading and predicting
        report.memory_peak_bytes = run.engine.memory_peak(run.container)
        if options.limits is not None:
            oom_killed = bool(run.state().get("OOMKilled"))
            _serverless_checks(options.limits, report, request_s, oom_killed, record)
        _error_checks(client, run.url, info, bundle_dir, record)
    _user_check(run.engine, run.container, record)
    with httpx.Client(timeout=120.0) as client:
        _oom_check(client, run.url, options.container_memory, record)
    _sigterm_check(run.engine, run.container, options.grace, record)


def _serverless_checks(
    limits: Limits, report: VerifyReport, request_s: float | None, oom_killed: bool, record: Callable[..., None]
) -> None:
    """serverless-ping, serverless-latency and serverless-memory, from what the contract checks measured."""
    ping = report.cold_start_s or 0.0
    record(
        "serverless-ping",
        "pass" if ping <= SERVERLESS_PING_S else "fail",
        f"/ping 200 after {ping:.2f} s under {limits} (serverless allows {SERVERLESS_PING_S:g} s)",
        ping,
    )
    if request_s is None:
        record("serverless-latency", "skip", "no example request answered correctly to time")
    else:
        record(
            "serverless-latency",
            "pass" if request_s <= SERVERLESS_INVOKE_S else "fail",
            f"the example request took {request_s:.2f} s (serverless allows {SERVERLESS_INVOKE_S:g} s); first "
            f"correct prediction {report.cold_start_prediction_s or 0:.2f} s after the container started",
            request_s,
        )
    limit = limits.memory_mb * 1024**2
    peak = report.memory_peak_bytes
    cpu = "CPU not limited (AWS allots it in proportion to memory but does not publish the ratio)"
    if oom_killed:
        record("serverless-memory", "fail", f"the container was OOM-killed under {limits.memory_mb} MB; {cpu}")
    elif peak is None:
        record("serverless-memory", "skip", f"this engine does not show the container's cgroup peak; {cpu}")
    else:
        share = peak / limit
        headroom = " (over 90%: little headroom)" if share > 0.9 else ""
        record(
            "serverless-memory",
            "pass" if peak < limit else "fail",
            f"peak {peak / 1024**2:,.0f} MiB of {limits.memory_mb} MiB ({share:.0%}, the cgroup's, page cache "
            f"included) after loading and the example request{headroom}; {cpu}",
            peak / 1024**2,
        )


def _prediction_check(
    client: httpx.Client, url: str, bundle_dir: Path | None, options: VerifyOptions, record: Callable[..., None]
) -> float | None:
    """The predictions check; the seconds its request took when the answer was right (None otherwise)."""
    example = _read_json(bundle_dir / "example.json") if bundle_dir else None
    if isinstance(example, dict) and "instances" in example and "predictions" in example:
        body = orjson.dumps({"instances": example["instances"]})
        sent = time.monotonic()
        response = _post(client, url, body, "application/json")
        seconds = time.monotonic() - sent
        got = _json(response.content)
        got = got.get("predictions") if isinstance(got, dict) else got  # a bare list: json_envelope=False
        same = response.status_code == 200 and _close(got, example["predictions"])
        detail = f"{len(example['instances'])} rows of example.json: " + (
            "same predictions as in-process" if same else f"{response.status_code}: {response.text[:200]}"
        )
        record("predictions", "pass" if same else "fail", detail)
        return seconds if same else None
    if options.example is not None and options.bundle is not None and bundle_dir is not None:
        body = options.example.read_bytes()
        content_type = content_type_for(options.example)
        expected, _ = _in_process(bundle_dir, body, content_type)
        sent = time.monotonic()
        response = _post(client, url, body, content_type)
        seconds = time.monotonic() - sent
        same = response.status_code == 200 and (
            response.content == expected or _close(_json(response.content), _json(expected))
        )
        detail = f"{options.example.name}: " + (
            "same answer as in-process"
            if same
            else f"{response.status_code}: {response.text[:200]} (in-process: {expected[:200]!r})"
        )
        record("predictions", "pass" if same else "fail", detail)
        return seconds if same else None
    record("predictions", "skip", "no example.json in the bundle; pass --bundle with --example REQUEST")
    return None


def _error_checks(
    client: httpx.Client, url: str, info: ImageInfo, bundle_dir: Path | None, record: Callable[..., None]
) -> None:
    custom_input = _has_custom_input(bundle_dir)
    response = _post(client, url, b"\x00\x01", "application/x-unknown")
    allowed = (415, 400) if custom_input else (415,)
    note = " (the handler's input_fn decides which types it accepts)" if custom_input else ""
    record(
        "status-415",
        "pass" if response.status_code in allowed else "fail",
        f"unknown Content-Type → {response.status_code}{note}",
    )
    limit_mb = float(info.env.get("SAGEMAKER_MAX_PAYLOAD_IN_MB") or 6)
    size = int(limit_mb * 1024 * 1024) + 1024
    response = _post(client, url, b" " * size, "application/json")
    record(
        "status-413",
        "pass" if response.status_code == 413 else "fail",
        f"{size / 1e6:.1f} MB body → {response.status_code}",
    )
    response = _post(client, url, b'{"instances": [[1, 2', "application/json")
    record("status-400", "pass" if response.status_code == 400 else "fail", f"malformed JSON → {response.status_code}")


def _oom_check(client: httpx.Client, url: str, memory: str, record: Callable[..., None]) -> None:
    """A model call that leaks until the kernel's OOM killer comes, under the container's memory limit: the
    server must answer that call (500), keep its port, and be ready again."""
    started = time.perf_counter()
    try:
        response = client.post(f"{url}/_shipyard/faults/oom")
    except httpx.HTTPError as exc:
        record("oom", "fail", f"a leaking model call under --memory {memory} cut the connection: {exc!r}")
        return
    if response.status_code == 404:
        record("oom", "skip", "the image's server has no fault injection (built with an older Shipyard)")
        return
    said = _json(response.content)
    message = said.get("message", "") if isinstance(said, dict) else ""
    if response.status_code != 500:
        record("oom", "fail", f"a leaking model call under --memory {memory} was answered {response.status_code}")
        return
    deadline = time.monotonic() + 60
    while True:
        try:
            if client.get(f"{url}/ping").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            record("oom", "fail", f"after a leaking model call ({message}), /ping was not 200 again within 60 s")
            return
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    how = "out of memory" if "out of memory" in message else message or "500"
    record(
        "oom",
        "pass",
        f"a model call leaking past --memory {memory}: 500 ({how}); ready again, {seconds:.1f} s",
        seconds,
    )


def _post(client: httpx.Client, url: str, body: bytes, content_type: str) -> httpx.Response:
    """POST /invocations; a 503 with Retry-After (a worker still loading its model) is retried for up to 30 s,
    as a client honouring Retry-After would."""
    deadline = time.monotonic() + 30
    while True:
        response = client.post(f"{url}/invocations", content=body, headers={"content-type": content_type})
        if response.status_code != 503 or "retry-after" not in response.headers or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def _user_check(engine: Engine, container: str, record: Callable[..., None]) -> None:
    processes = engine.top(container)
    parents = {p.ppid for p in processes}
    leaves = [p for p in processes if p.pid not in parents]  # where requests are served: the workers
    root = [p for p in leaves if p.user in ("root", "0")]
    shown = ", ".join(sorted({f"{p.user}" for p in leaves})) or "none"
    if not leaves:
        record("non-root", "fail", "no processes found in the container")
    elif root:
        record(
            "non-root", "fail", f"{len(root)} of {len(leaves)} serving processes run as root: {root[0].command[:80]}"
        )
    else:
        record("non-root", "pass", f"{len(leaves)} serving processes run as {shown}")


def _sigterm_check(engine: Engine, container: str, grace: float, record: Callable[..., None]) -> None:
    started = time.perf_counter()
    engine.stop(container, grace)
    seconds = time.perf_counter() - started
    state = engine.container_state(container)
    code = state.get("ExitCode")
    clean = code in (0, 143) and seconds < grace
    record("sigterm", "pass" if clean else "fail", f"exited {code} after {seconds:.1f} s (grace {grace:g} s)", seconds)


def _skip_rest(record: Callable[..., None], why: str, limits: Limits | None = None) -> None:
    serverless = ("serverless-latency", "serverless-memory") if limits else ()
    for name in ("predictions", *serverless, "status-415", "status-413", "status-400", "non-root", "oom", "sigterm"):
        record(name, "skip", why)


@contextmanager
def _bundle_view(engine: Engine, image: str, bundle: Path | None) -> Iterator[Path | None]:
    """The bundle as a directory: ``bundle`` (extracted when an archive), else the files baked into the image."""
    if bundle is not None:
        from shipyard.bundle.archive import open_any

        with open_any(bundle, limits=engine.settings.archive) as opened:
            yield opened.path
        return
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-verify-"))
    try:
        found = engine.copy_from_image(
            image, ["/opt/ml/model/example.json", "/opt/ml/model/shipyard.toml", "/opt/ml/model/code"], tmp
        )
        yield tmp if found else None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _in_process(bundle_dir: Path, body: bytes, content_type: str) -> tuple[bytes, str]:
    """The answer of the bundle loaded in this process (the reference the container must match)."""
    from shipyard.bundle import Bundle
    from shipyard.config import ServerConfig
    from shipyard.handler import handler_for

    handler = handler_for(Bundle.open(bundle_dir), ServerConfig.from_env({}))
    handler.load()
    prepared = handler.prepare(body, content_type, None)
    return handler.finish(handler.predict(prepared.inputs), prepared)


def _has_custom_input(bundle_dir: Path | None) -> bool:
    if bundle_dir is None:
        return False
    script = bundle_dir / "code" / "inference.py"
    return script.is_file() and re.search(r"^def (input_fn|transform_fn)\b", script.read_text(), re.M) is not None


def _manifest_kind(engine: Engine, image: str, info: ImageInfo) -> str:
    """The media type of what a pull of ``image`` gets: from its registry when it names one, else local."""
    host, _, rest = image.partition("/")
    if rest and ("." in host or ":" in host or host == "localhost") and not image.startswith("localhost/"):
        repo, _, tag = rest.rpartition(":") if ":" in rest.split("/")[-1] else (rest, "", "latest")
        scheme = "http" if is_local_registry(image) else "https"
        try:
            response = httpx.get(
                f"{scheme}://{host}/v2/{repo}/manifests/{tag}",
                headers={"accept": ", ".join(_MANIFEST_TYPES)},
                timeout=10,
            )
            if response.status_code == 200:
                return str(response.headers.get("content-type", "unknown")).split(";")[0]
        except httpx.HTTPError:
            pass
    if engine.is_manifest_list(image):
        return _MANIFEST_TYPES[3]
    return info.manifest_type or _MANIFEST_TYPES[0]


def _close(got: Any, want: Any) -> bool:
    if isinstance(want, float) or isinstance(got, float):
        return (
            isinstance(got, int | float)
            and isinstance(want, int | float)
            and math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)
        )
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_close(a, b) for a, b in zip(got, want, strict=True))
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(_close(got[k], want[k]) for k in want)
    return bool(got == want)


def _json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _read_json(path: Path) -> Any:
    return _json(path.read_bytes()) if path.is_file() else None


def _tail(logs: str, lines: int = 4) -> str:
    return " | ".join(line.strip()[:200] for line in logs.strip().splitlines()[-lines:]) or "(no output)"


def _findings(findings: list[Any]) -> str:
    shown = "; ".join(f"{f.where}: {f.what}" for f in findings[:5])
    return shown + (f" (and {len(findings) - 5} more)" if len(findings) > 5 else "")
