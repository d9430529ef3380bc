"""``build``: a bundle → a SageMaker-ready image (and optionally pushed).

    >>> from shipyard.image import BuildOptions, build
    >>> result = build("bundle/", BuildOptions(tag="digits:1"))            # doctest: +SKIP
    >>> result.image, result.size                                           # doctest: +SKIP
    ('digits:1', 412345678)

Steps: probe the base image's Python (cached by image id) → resolve the wheelhouse on the host (cached by
requirements) → write the build context (stable mtimes) → build with the engine → inspect size and
layers → push when asked. Progress goes to ``on_event``; nothing is printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from shipyard.bundle import Bundle
from shipyard.bundle.archive import open_any
from shipyard.errors import ImageError
from shipyard.image.containerfile import APP_USER, WHEELHOUSE_CONTEXT, ImageSpec, render
from shipyard.image.context import BuildContext, bundle_files, bundle_hash
from shipyard.image.engine import Engine, Layer, detect
from shipyard.image.wheelhouse import (
    Lock,
    Target,
    cache_dir,
    pip_wheel,
    resolve,
    serving_requirements,
    shipyard_wheel,
)

__all__ = ["DEFAULT_BASE", "BuildEvent", "BuildOptions", "BuildResult", "build", "push"]

DEFAULT_BASE = "python:3.11-slim"
PLATFORMS = ("linux/amd64", "linux/arm64")
_MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
_STEP = re.compile(r"(?:\[\d+/\d+\] )?STEP (\d+)/(\d+): (.*)|^Step (\d+)/(\d+) : (.*)|^#\d+ \[[^\]]*\] (.*)")


@dataclass(frozen=True)
class BuildOptions:
    tag: str | None = None  # NAME[:TAG]; default: the bundle's name and version
    base: str = DEFAULT_BASE
    engine: str | None = None  # docker | podman; default: detected
    platform: str = "linux/amd64"
    bake: bool = True  # the model inside the image; else it comes from /opt/ml/model at run time
    non_root: bool = False  # USER is the unprivileged uid from the start (Kubernetes runAsNonRoot)
    push: str | None = None  # REGISTRY[/NAMESPACE] to push to
    emit: Path | None = None  # also write the Containerfile here
    no_cache: bool = False  # rebuild every layer (benchmarks' cold builds)
    extra_requirements: tuple[str, ...] = ()  # besides the bundle's (e.g. boto3 for SHIPYARD_SECRETS)


@dataclass(frozen=True)
class BuildEvent:
    kind: str  # "phase" (what Shipyard does), "step" (the engine's STEP n/m), "line" (any engine output)
    text: str
    step: int | None = None
    total: int | None = None


@dataclass(frozen=True)
class BuildResult:
    image: str
    image_id: str
    size: int
    layers: list[Layer]
    engine: str
    seconds: float
    bundle_hash: str
    target: Target
    containerfile: str
    requirements: list[str] = field(default_factory=list)
    pushed: str | None = None


def build(
    bundle_path: str | os.PathLike[str],
    options: BuildOptions | None = None,
    on_event: Callable[[BuildEvent], None] | None = None,
) -> BuildResult:
    """Build (and push, with ``options.push``) the image for the bundle at ``bundle_path``."""
    options = options or BuildOptions()
    started = time.perf_counter()
    if options.platform not in PLATFORMS:
        raise ImageError(f"unsupported platform {options.platform!r}: use one of {', '.join(PLATFORMS)}")

    def phase(text: str) -> None:
        if on_event:
            on_event(BuildEvent("phase", text))

    engine = detect(options.engine)
    with open_any(Path(bundle_path)) as bundle:
        phase(f"{engine.name} ({engine.builder}); base {options.base}; {options.platform}")
        target = _target(engine, options.base, options.platform, phase)
        requirements = serving_requirements([*bundle.requirements(), *options.extra_requirements])
        lock = resolve(requirements, target, phase)
        own = shipyard_wheel(phase)
        installer = pip_wheel(target, phase)
        digest = bundle_hash(bundle.path)
        tag = options.tag or _default_tag(bundle)
        spec = ImageSpec(
            base=options.base,
            platform=options.platform,
            bake=options.bake,
            has_code=(bundle.path / "code").is_dir(),
            non_root=options.non_root,
            mount_wheelhouse=engine.mounts_build_context,
            labels=_stable_labels(bundle, options, target),
            pip_wheel=installer.name,
            requirements_sha256=hashlib.sha256(lock.text().encode()).hexdigest(),
            shipyard_sha256=hashlib.sha256(own.text().encode()).hexdigest(),
        )
        text = render(spec)
        if options.emit:
            options.emit.parent.mkdir(parents=True, exist_ok=True)
            options.emit.write_text(text)
        key = hashlib.sha256(f"{bundle.path.resolve()}|{options.platform}|{engine.builder}".encode()).hexdigest()[:16]
        with BuildContext.open(cache_dir() / "contexts" / key) as context:
            context.write("Containerfile", text.encode())
            context.write("requirements.lock", lock.text().encode())
            context.write("shipyard.lock", own.text().encode())
            files = bundle_files(bundle.path)
            if options.bake:
                context.sync_tree("model", bundle.path, [f for f in files if f.parts[0] != "code"])
                context.sync_tree(
                    "code", bundle.path / "code", [f.relative_to("code") for f in files if f.parts[0] == "code"]
                )
            else:
                context.remove("model")
                context.remove("code")
            wheelhouse = context.path.parent / f"{context.path.name}.wheelhouse"
            Lock(lock.lines + own.lines, (*lock.files, *own.files, installer)).link_into(wheelhouse)
            if engine.mounts_build_context:
                contexts = {WHEELHOUSE_CONTEXT: wheelhouse}
                context.remove(WHEELHOUSE_CONTEXT)
            else:  # the legacy builder cannot mount: the wheels go into the context (and the first stage only)
                contexts = {}
                context.sync_tree(WHEELHOUSE_CONTEXT, wheelhouse, [Path(p.name) for p in sorted(wheelhouse.iterdir())])
            context.settle()
            labels = {
                "org.opencontainers.image.created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "dev.shipyard.bundle.sha256": digest,
            }
            phase(f"building {tag}")
            engine.build(
                context.path,
                tag,
                platform=options.platform,
                labels=labels,
                build_contexts=contexts,
                no_cache=options.no_cache,
                on_line=_step_reporter(on_event),
            )
    with ThreadPoolExecutor(2) as pool:  # two engine calls of ~0.1 s each, side by side
        history = pool.submit(engine.history, tag)
        info = engine.inspect_image(tag)
        layers = history.result()
    pushed = push(engine, tag, options.push, phase) if options.push else None
    return BuildResult(
        image=tag,
        image_id=info.id,
        size=info.size,
        layers=layers,
        engine=f"{engine.name} ({engine.builder})",
        seconds=time.perf_counter() - started,
        bundle_hash=digest,
        target=target,
        containerfile=text,
        requirements=[line.split(" ", 1)[0] for line in lock.lines],
        pushed=pushed,
    )


def push(engine: Engine, image: str, registry: str, phase: Callable[[str], None] | None = None) -> str:
    """Tag ``image`` under ``registry`` (host[:port][/namespace]) and push it; the pushed reference."""
    registry = registry.strip().rstrip("/")
    if not registry or "://" in registry:
        raise ImageError(
            f"--push takes a registry like 127.0.0.1:5000 or ACCOUNT.dkr.ecr.REGION.amazonaws.com, not {registry!r}"
        )
    first, _, rest = image.partition("/")
    registry_host = rest and ("." in first or ":" in first or first == "localhost")
    name = rest if registry_host else image  # re-home the repository path, without the old registry
    destination = f"{registry}/{name}"
    engine.tag(image, destination)
    if phase:
        phase(f"pushing {destination}")
    engine.push(destination)
    return destination


def _target(engine: Engine, base: str, platform: str, phase: Callable[[str], None]) -> Target:
    """The base image's CPython, cached by image id (probing runs a container: about a second)."""
    cache = cache_dir() / "bases.json"
    known: dict[str, list[object]] = json.loads(cache.read_text()) if cache.is_file() else {}
    found = engine.find_image(base)
    key = f"{engine.name}|{found.id if found else None}|{platform}"
    if found and key in known:
        python, glibc, machine = known[key]
        return Target(str(python), tuple(glibc), str(machine))  # type: ignore[arg-type]
    phase(f"probing the Python of {base}")
    target = engine.probe_python(base, platform)
    if target.machine != _MACHINES[platform]:
        raise ImageError(
            f"the base image {base} runs {target.machine}, not {_MACHINES[platform]} ({platform}): "
            "pick a base image for that platform"
        )
    image_id = found.id if found else engine.inspect_image(base).id  # the probe pulled it if it was missing
    known[f"{engine.name}|{image_id}|{platform}"] = [target.python, list(target.glibc), target.machine]
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".bases.{os.getpid()}")
    tmp.write_text(json.dumps(known, indent=1))
    os.replace(tmp, cache)
    return target


def _stable_labels(bundle: Bundle, options: BuildOptions, target: Target) -> dict[str, str]:
    from shipyard.version import __version__

    manifest = bundle.manifest
    return {
        "org.opencontainers.image.title": manifest.name,
        "org.opencontainers.image.version": manifest.version,
        "org.opencontainers.image.description": f"SageMaker-contract inference server for {manifest.name}",
        "org.opencontainers.image.base.name": options.base,
        "dev.shipyard.version": __version__,
        "dev.shipyard.flavor": manifest.flavor,
        "dev.shipyard.python": target.python,
        "dev.shipyard.model": "baked" if options.bake else "mounted",
        "dev.shipyard.user": f"{APP_USER} (USER)" if options.non_root else f"{APP_USER} (workers)",
        # SageMaker's multi-container endpoints may move the port; the server honours SAGEMAKER_BIND_TO_PORT.
        "com.amazonaws.sagemaker.capabilities.accept-bind-to-port": "true",
    }


def _default_tag(bundle: Bundle) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", bundle.manifest.name.lower()).strip("-._") or "model"
    version = re.sub(r"[^A-Za-z0-9._-]+", "-", bundle.manifest.version) or "latest"
    return f"{name}:{version}"


def _step_reporter(on_event: Callable[[BuildEvent], None] | None) -> Callable[[str], None]:
    def report(line: str) -> None:
        if on_event is None:
            return
        match = _STEP.search(line)
        if match and match.group(1):
            on_event(BuildEvent("step", match.group(3), int(match.group(1)), int(match.group(2))))
        elif match and match.group(4):
            on_event(BuildEvent("step", match.group(6), int(match.group(4)), int(match.group(5))))
        elif match and match.group(7):
            on_event(BuildEvent("step", match.group(7)))
        else:
            on_event(BuildEvent("line", line))

    return report
