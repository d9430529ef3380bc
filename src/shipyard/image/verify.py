"""``verify``: run an image the way SageMaker does and check it keeps the container contract.

The container runs as ``IMAGE serve`` with the bundle mounted read-only at ``/opt/ml/model`` (or the
model baked into the image), a memory limit, and no network but the serving port: where the engine's
containers are local processes (Podman, or Docker on Linux, as root) it gets ``--network none`` and
the verifier forwards ``127.0.0.1:PORT`` into its namespace; elsewhere the port is published on
127.0.0.1 and the report says outbound traffic was not blocked.

Checks (each pass / fail / skip, with a detail): architecture, manifest, size, secrets-env,
secrets-layers, serve, ping (cold start measured), predictions, status-415, status-413, status-400,
non-root, sigterm.
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
from shipyard.errors import ImageError
from shipyard.image.engine import Engine, ImageInfo, detect, is_local_registry
from shipyard.image.run import ContainerRun, Ping, can_isolate
from shipyard.image.scan import scan_env, scan_history, scan_layers
from shipyard.settings import Settings

__all__ = ["Check", "VerifyOptions", "VerifyReport", "verify"]

_MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
_ARCH = {"linux/amd64": "amd64", "linux/arm64": "arm64"}


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
    run = ContainerRun(
        engine,
        image,
        name=f"shipyard-verify-{uuid.uuid4().hex[:8]}",
        memory=options.memory,
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
            _skip_rest(record, "the container did not start")
            return
        ping = run.wait_ready(options.timeout, started=started, interval=0.02, alive_every=1.0)
        if ping.seconds is None:
            _not_ready(run, ping, options.timeout, record)
            return
        report.cold_start_s = ping.seconds
        record("serve", "pass", "`IMAGE serve` runs")
        record(
            "ping",
            "pass",
            f"200 after {ping.seconds:.2f} s (cold start: container start → first /ping 200)",
            ping.seconds,
        )
        _contract_checks(run, info, bundle_dir, options, record)


def _not_ready(run: ContainerRun, ping: Ping, timeout: float, record: Callable[..., None]) -> None:
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
    _skip_rest(record, "the server never answered /ping")


def _contract_checks(
    run: ContainerRun, info: ImageInfo, bundle_dir: Path | None, options: VerifyOptions, record: Callable[..., None]
) -> None:
    """What a ready container must do: predict, answer errors with their codes, serve as non-root, survive an
    out-of-memory model call, and stop cleanly."""
    assert run.container is not None
    with httpx.Client(timeout=60.0) as client:
        _prediction_check(client, run.url, bundle_dir, options, record)
        _error_checks(client, run.url, info, bundle_dir, record)
    _user_check(run.engine, run.container, record)
    with httpx.Client(timeout=120.0) as client:
        _oom_check(client, run.url, options.memory, record)
    _sigterm_check(run.engine, run.container, options.grace, record)


def _prediction_check(
    client: httpx.Client, url: str, bundle_dir: Path | None, options: VerifyOptions, record: Callable[..., None]
) -> None:
    example = _read_json(bundle_dir / "example.json") if bundle_dir else None
    if isinstance(example, dict) and "instances" in example and "predictions" in example:
        body = orjson.dumps({"instances": example["instances"]})
        response = _post(client, url, body, "application/json")
        got = _json(response.content)
        got = got.get("predictions") if isinstance(got, dict) else got  # a bare list: json_envelope=False
        same = response.status_code == 200 and _close(got, example["predictions"])
        detail = f"{len(example['instances'])} rows of example.json: " + (
            "same predictions as in-process" if same else f"{response.status_code}: {response.text[:200]}"
        )
        record("predictions", "pass" if same else "fail", detail)
        return
    if options.example is not None and options.bundle is not None and bundle_dir is not None:
        body = options.example.read_bytes()
        content_type = content_type_for(options.example)
        expected, _ = _in_process(bundle_dir, body, content_type)
        response = _post(client, url, body, content_type)
        same = response.status_code == 200 and (
            response.content == expected or _close(_json(response.content), _json(expected))
        )
        detail = f"{options.example.name}: " + (
            "same answer as in-process"
            if same
            else f"{response.status_code}: {response.text[:200]} (in-process: {expected[:200]!r})"
        )
        record("predictions", "pass" if same else "fail", detail)
        return
    record("predictions", "skip", "no example.json in the bundle; pass --bundle with --example REQUEST")


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


def _skip_rest(record: Callable[..., None], why: str) -> None:
    for name in ("predictions", "status-415", "status-413", "status-400", "non-root", "oom", "sigterm"):
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
