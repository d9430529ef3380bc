"""``build``: a bundle → a SageMaker-ready image (and optionally pushed).

    >>> from shipyard.image import BuildOptions, build
    >>> result = build("bundle/", BuildOptions(tag="digits:1"))            # doctest: +SKIP
    >>> result.image, result.size                                           # doctest: +SKIP
    ('digits:1', 412345678)

Steps: choose the form the image serves (``compile``: a compiled bundle's ONNX form or its native one; a native
bundle compiled into a copy) → probe the base image's Python (cached by image id) → resolve the wheelhouse on the
host (cached by requirements) → write the build context (stable mtimes; never the form not served) → build with
the engine → inspect size and layers → push when asked. Progress goes to ``on_event``; nothing is printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipyard.bundle import EXAMPLE, Bundle
from shipyard.bundle.archive import open_any
from shipyard.bundle.manifest import MANIFEST, Manifest
from shipyard.errors import BundleError, ImageError
from shipyard.image.containerfile import (
    APP_USER,
    TRAINING_CODE_CONTEXT,
    WHEELHOUSE_CONTEXT,
    ImageSpec,
    pruned_label,
    render,
)
from shipyard.image.context import BuildContext, bundle_files, bundle_hash
from shipyard.image.engine import Engine, ImageInfo, Layer, detect
from shipyard.image.wheelhouse import (
    Lock,
    Platform,
    pip_wheel,
    prune_paths,
    resolve,
    serving_requirements,
    shipyard_wheel,
)
from shipyard.settings import Settings

__all__ = ["DEFAULT_BASE", "BuildEvent", "BuildOptions", "BuildResult", "build", "build_training", "push"]

DEFAULT_BASE = "python:3.11-slim"
COMPILE_MODES = ("auto", "onnx", "off")  # handler.compile.MODES, written out: importing it here costs the import
NATIVE_EXAMPLE = "example.native.json"  # a compiled bundle's native predictions on example.json's rows
PLATFORMS = ("linux/amd64", "linux/arm64")
_MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
INPUTS_LABEL = "dev.shipyard.inputs.sha256"  # what the image was built from: an unchanged one is not rebuilt
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
    # the form the image serves: None as the bundle was saved; "off" a compiled bundle's native form; "onnx" /
    # "auto" a native bundle compiled (into a copy: the bundle is left as it is), as shipyard.save(compile=...)
    compile: str | None = None


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
    target: Platform
    containerfile: str
    requirements: list[str] = field(default_factory=list)
    pushed: str | None = None


def build(
    bundle_path: str | os.PathLike[str],
    options: BuildOptions | None = None,
    on_event: Callable[[BuildEvent], None] | None = None,
    *,
    settings: Settings | None = None,
    engine: Engine | None = None,
) -> BuildResult:
    """Build (and push, with ``options.push``) the image for the bundle at ``bundle_path``.

    ``engine``: the engine to build with (default: ``options.engine``, else detected with ``settings``, default
    :meth:`Settings.from_env`); its settings say where the caches are."""
    options = options or BuildOptions()
    started = time.perf_counter()
    if options.platform not in PLATFORMS:
        raise ImageError(f"unsupported platform {options.platform!r}: use one of {', '.join(PLATFORMS)}")
    if options.compile is not None and options.compile not in COMPILE_MODES:
        raise ImageError(f"--compile {options.compile!r}: use one of {', '.join(COMPILE_MODES)}")
    phase = _phases(on_event)
    engine = engine or detect(options.engine, settings)
    with open_any(Path(bundle_path), limits=engine.settings.archive) as bundle, ExitStack() as stack:
        served = served_form(bundle, options.compile, lambda: Path(stack.enter_context(_scratch())), phase)
        if not options.bake and (served.root != bundle.path or served.replace):
            raise ImageError(
                f"--compile {options.compile} with --no-bake: the image would install one form's packages while "
                "/opt/ml/model mounts the bundle as saved; bake the model in, or save the bundle in the form to serve"
            )
        phase(f"{engine.name} ({engine.builder}); base {options.base}; {options.platform}")
        plan = _plan(engine, bundle, served, options, phase)
        if options.emit:
            options.emit.parent.mkdir(parents=True, exist_ok=True)
            options.emit.write_text(plan.containerfile)
        _build_image(engine, bundle, served, options, plan, on_event)
    return _finish(engine, options, plan, started, phase)


@dataclass(frozen=True)
class Served:
    """The bundle as the image serves it: where its files come from, its manifest and requirements, the paths
    (relative to the bundle) left out of the image, and the files written instead of the bundle's."""

    root: Path
    manifest: Manifest
    requirements: list[str]
    leave_out: tuple[str, ...] = ()
    replace: Mapping[str, bytes] = field(default_factory=dict)
    form: str = ""  # "onnx" | "native" for a bundle with a [compiled] table; "" for one without

    def files(self) -> list[Path]:
        """The bundle's files the image bakes: no dotfiles or caches (the bundle's rule), nothing left out."""
        return [f for f in bundle_files(self.root) if not _left_out(f, self.leave_out)] + [
            Path(name) for name in sorted(self.replace) if not (self.root / name).is_file()
        ]


def served_form(
    bundle: Bundle, mode: str | None, scratch: Callable[[], Path], phase: Callable[[str], None] | None = None
) -> Served:
    """What the image of ``bundle`` serves under ``--compile mode``. ``scratch()``: an empty folder that lives as
    long as the build (a native bundle is compiled into a copy there: the user's bundle is never changed)."""
    manifest = bundle.manifest
    compiled = _compiled(manifest)
    if not compiled:  # a bundle saved without compile=
        if mode in ("onnx", "auto"):
            return _compile_copy(bundle, mode, scratch(), phase)
        return Served(bundle.path, manifest, bundle.requirements())
    status = compiled.get("status")
    if status == "onnx" and mode == "off":
        return _native_of(bundle, manifest, compiled)
    if status == "native" and mode == "onnx":
        raise ImageError(
            f"{bundle.path} was saved with compile='auto' and kept its native form "
            f"({compiled.get('reason') or 'no reason recorded'}): build it without --compile onnx, or save it "
            "again once it converts"
        )
    if status == "onnx":
        return Served(bundle.path, manifest, bundle.requirements(), _paths(compiled, "source_files"), form="onnx")
    return Served(bundle.path, manifest, bundle.requirements(), _paths(compiled, "onnx_files"), form="native")


def _native_of(bundle: Bundle, manifest: Manifest, compiled: dict[str, Any]) -> Served:
    """``--compile off`` of a bundle served compiled: its native manifest, requirements and predictions."""
    try:
        native = manifest.as_native()
    except BundleError as exc:
        raise ImageError(
            f"--compile off: {exc} (or build it as saved, without --compile off, to serve its ONNX form)"
        ) from None
    requirements = [str(r) for r in compiled.get("source_requirements") or []]
    replace = {
        MANIFEST: native.to_toml().encode(),
        "code/requirements.txt": "".join(f"{r}\n" for r in requirements).encode(),
    }
    leave_out = [*_paths(compiled, "onnx_files"), NATIVE_EXAMPLE]
    native_example = bundle.path / NATIVE_EXAMPLE
    if native_example.is_file():
        replace[EXAMPLE] = native_example.read_bytes()
    else:  # the ONNX form's predictions would differ from the native ones in the last digits: verify has none
        leave_out.append(EXAMPLE)
    return Served(bundle.path, native, requirements, tuple(leave_out), replace, form="native")


def _compile_copy(bundle: Bundle, mode: str, scratch: Path, phase: Callable[[str], None] | None) -> Served:
    """A native bundle compiled (``mode`` onnx or auto) into a copy under ``scratch``, served from there."""
    from shipyard.handler.compile import compile_bundle

    if phase:
        phase(f"compiling {bundle.manifest.name} (--compile {mode}) into a copy; the bundle is left as it is")
    target = scratch / "bundle"
    compile_bundle(bundle.path, target, mode=mode)
    return served_form(Bundle.open(target), None, lambda: scratch)


def _compiled(manifest: Manifest) -> dict[str, Any]:
    """The manifest's ``[compiled]`` table ({} for a bundle saved without ``compile=``)."""
    return dict(manifest.compiled)


def _paths(compiled: Mapping[str, Any], key: str) -> tuple[str, ...]:
    return tuple(str(p).strip("/") for p in compiled.get(key) or [] if str(p).strip("/"))


def _left_out(file: Path, leave_out: Sequence[str]) -> bool:
    """Whether ``file`` (relative to the bundle) is one of ``leave_out`` or inside one of them."""
    name = file.as_posix()
    return any(name == p or name.startswith(p + "/") for p in leave_out)


@contextmanager
def _scratch() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="shipyard-build-") as path:
        yield path


def build_training(
    source_dir: str | os.PathLike[str],
    entry: str,
    options: BuildOptions | None = None,
    on_event: Callable[[BuildEvent], None] | None = None,
    *,
    requirements: Sequence[str] = (),
    settings: Settings | None = None,
    engine: Engine | None = None,
) -> BuildResult:
    """Build the training image of the script ``entry`` (relative to ``source_dir``): the image ``build`` makes,
    the model not baked (it comes from /opt/ml/model), with the source folder at /opt/ml/code,
    ``SAGEMAKER_PROGRAM=entry`` and ``requirements`` resolved into the same offline wheelhouse. ``IMAGE train``
    trains; ``IMAGE serve`` serves the model a run wrote (mounted at /opt/ml/model). Unchanged code and
    requirements rebuild nothing (the build context keeps its files' bytes and times)."""
    options = replace(options or BuildOptions(), bake=False)
    started = time.perf_counter()
    if options.platform not in PLATFORMS:
        raise ImageError(f"unsupported platform {options.platform!r}: use one of {', '.join(PLATFORMS)}")
    phase = _phases(on_event)
    engine = engine or detect(options.engine, settings)
    source = Path(source_dir)
    phase(f"{engine.name} ({engine.builder}); base {options.base}; {options.platform}")
    target, lock, own, installer = _resolve(engine, options, [*requirements, *options.extra_requirements], phase)
    labels = _training_labels(source, entry, options, target)
    spec = _spec(engine, options, target, lock, own, installer, labels, has_code=False, program=entry)
    tag = options.tag or f"shipyard-train/{_slug(source.resolve().name)}:latest"
    plan = _Plan(tag, target, lock, own, installer, bundle_hash(source), render(spec))
    if options.emit:
        options.emit.parent.mkdir(parents=True, exist_ok=True)
        options.emit.write_text(plan.containerfile)
    files = bundle_files(source)  # the bundle's rule of which files to take: no dotfiles, no caches

    def sync(context: BuildContext) -> None:
        _sync_bundle(context, source, bake=False)
        context.sync_tree(TRAINING_CODE_CONTEXT, source, files)

    key = f"train|{source.resolve()}|{options.platform}|{engine.builder}"
    found = _build_in(engine, key, options, plan, sync, on_event)
    return _finish(engine, options, plan, started, phase, found)


def _finish(
    engine: Engine,
    options: BuildOptions,
    plan: _Plan,
    started: float,
    phase: Callable[[str], None],
    found: ImageInfo | None = None,
) -> BuildResult:
    """Inspect the built image (``found``: inspected already) and push it when asked: the result."""
    with ThreadPoolExecutor(2) as pool:  # two engine calls of ~0.1 s each, side by side
        history = pool.submit(engine.history, plan.tag)
        info = found or engine.inspect_image(plan.tag)
        layers = history.result()
    pushed = push(engine, plan.tag, options.push, phase) if options.push else None
    return BuildResult(
        image=plan.tag,
        image_id=info.id,
        size=info.size,
        layers=layers,
        engine=f"{engine.name} ({engine.builder})",
        seconds=time.perf_counter() - started,
        bundle_hash=plan.digest,
        target=plan.target,
        containerfile=plan.containerfile,
        requirements=[line.split(" ", 1)[0] for line in plan.lock.lines],
        pushed=pushed,
    )


@dataclass(frozen=True)
class _Plan:
    """What an image is made of, decided before the engine runs."""

    tag: str
    target: Platform
    lock: Lock  # the bundle's and the server's wheels
    own: Lock  # Shipyard's wheel
    installer: Path  # pip's wheel, which installs the others
    digest: str  # the bundle's hash
    containerfile: str


def _plan(engine: Engine, bundle: Bundle, served: Served, options: BuildOptions, phase: Callable[[str], None]) -> _Plan:
    """Probe the base image's Python, resolve the wheelhouse for it, and render the Containerfile."""
    target, lock, own, installer = _resolve(engine, options, [*served.requirements, *options.extra_requirements], phase)
    labels = _stable_labels(served, options, target)
    has_code = any(f.parts[0] == "code" for f in served.files())
    spec = _spec(engine, options, target, lock, own, installer, labels, has_code=has_code)
    tag = options.tag or _default_tag(bundle)
    return _Plan(tag, target, lock, own, installer, bundle_hash(bundle.path), render(spec))


def _resolve(
    engine: Engine, options: BuildOptions, requirements: Sequence[str], phase: Callable[[str], None]
) -> tuple[Platform, Lock, Lock, Path]:
    """The base image's platform, the wheels of ``requirements`` and the server's, Shipyard's wheel, and pip's."""
    settings = engine.settings
    target = _target(engine, options.base, options.platform, phase)
    lock = resolve(serving_requirements(list(requirements)), target, phase, settings=settings)
    own = shipyard_wheel(phase, settings=settings)
    installer = pip_wheel(target, phase, settings=settings)
    return target, lock, own, installer


def _spec(
    engine: Engine,
    options: BuildOptions,
    target: Platform,
    lock: Lock,
    own: Lock,
    installer: Path,
    labels: dict[str, str],
    *,
    has_code: bool,
    program: str | None = None,
) -> ImageSpec:
    prune = prune_paths(lock.lines)
    if prune:
        labels = {**labels, "dev.shipyard.pruned": pruned_label(prune)}
    return ImageSpec(
        base=options.base,
        platform=options.platform,
        bake=options.bake,
        has_code=has_code,
        non_root=options.non_root,
        mount_wheelhouse=engine.mounts_build_context,
        labels=labels,
        pip_wheel=installer.name,
        requirements_sha256=hashlib.sha256(lock.text().encode()).hexdigest(),
        shipyard_sha256=hashlib.sha256(own.text().encode()).hexdigest(),
        training_program=program,
        prune=prune,
    )


def _build_image(
    engine: Engine,
    bundle: Bundle,
    served: Served,
    options: BuildOptions,
    plan: _Plan,
    on_event: Callable[[BuildEvent], None] | None,
) -> None:
    """Write the bundle's build context (kept between builds, under the cache) and build in it."""
    key = f"{bundle.path.resolve()}|{options.platform}|{engine.builder}"
    _build_in(engine, key, options, plan, lambda context: sync_served(context, served, options.bake), on_event)


def _build_in(
    engine: Engine,
    key: str,
    options: BuildOptions,
    plan: _Plan,
    sync: Callable[[BuildContext], None],
    on_event: Callable[[BuildEvent], None] | None,
) -> ImageInfo | None:
    """Write the build context named by ``key`` (``sync`` puts the model or code files in) and run the build.

    Skipped when the image under ``plan.tag`` was built from the same inputs (its ``dev.shipyard.inputs.sha256``
    label): the engine's own cache would rebuild nothing, but asking it takes a second or more. Returns that
    image's inspection when the build was skipped, else None."""
    inputs = _inputs_digest(engine, options, plan)
    current = None if options.no_cache else engine.find_image(plan.tag)
    if current is not None and current.labels.get(INPUTS_LABEL) == inputs:
        _phases(on_event)(f"{plan.tag} is up to date (built from these very inputs): not rebuilt")
        return current
    folder = hashlib.sha256(key.encode()).hexdigest()[:16]
    with BuildContext.open(engine.settings.cache_dir / "contexts" / folder) as context:
        context.write("Containerfile", plan.containerfile.encode())
        context.write("requirements.lock", plan.lock.text().encode())
        context.write("shipyard.lock", plan.own.text().encode())
        sync(context)
        contexts = _sync_wheelhouse(context, engine, plan)
        context.settle()
        labels = {
            "org.opencontainers.image.created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dev.shipyard.bundle.sha256": plan.digest,
            INPUTS_LABEL: inputs,
        }
        _phases(on_event)(f"building {plan.tag}")
        engine.build(
            context.path,
            plan.tag,
            platform=options.platform,
            labels=labels,
            build_contexts=contexts,
            no_cache=options.no_cache,
            on_line=_step_reporter(on_event),
        )
    return None


def _inputs_digest(engine: Engine, options: BuildOptions, plan: _Plan) -> str:
    """sha256 over everything an image is built from: the Containerfile, both locks (each wheel's hash), the
    bundle's or source folder's files (their hash), the base image's id, the platform and the builder."""
    base = engine.find_image(options.base)
    parts = [plan.containerfile, plan.lock.text(), plan.own.text(), plan.digest, base.id if base else options.base]
    parts += [options.platform, engine.builder, str(options.bake), options.compile or ""]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def sync_served(context: BuildContext, served: Served, bake: bool) -> None:
    """The files of the form the image serves in the context (model/ and code/), with the replaced ones written."""
    if not bake:
        _sync_bundle(context, served.root, bake=False)
        return
    files = served.files()
    sources = [f for f in files if (served.root / f).is_file()]
    context.sync_tree("model", served.root, [f for f in sources if f.parts[0] != "code"])
    context.sync_tree("code", served.root / "code", [f.relative_to("code") for f in sources if f.parts[0] == "code"])
    for name, data in sorted(served.replace.items()):
        context.write(f"code/{name.removeprefix('code/')}" if name.startswith("code/") else f"model/{name}", data)


def _sync_bundle(context: BuildContext, root: Path, bake: bool) -> None:
    """The bundle's files (model/ and code/) in the context when the model is baked in; else none."""
    if not bake:
        context.remove("model")
        context.remove("code")
        return
    files = bundle_files(root)
    context.sync_tree("model", root, [f for f in files if f.parts[0] != "code"])
    context.sync_tree("code", root / "code", [f.relative_to("code") for f in files if f.parts[0] == "code"])


def _sync_wheelhouse(context: BuildContext, engine: Engine, plan: _Plan) -> dict[str, Path]:
    """The wheelhouse beside the context, mounted as a named build context; the named contexts to build with."""
    wheelhouse = context.path.parent / f"{context.path.name}.wheelhouse"
    Lock(plan.lock.lines + plan.own.lines, (*plan.lock.files, *plan.own.files, plan.installer)).link_into(wheelhouse)
    if engine.mounts_build_context:
        context.remove(WHEELHOUSE_CONTEXT)
        return {WHEELHOUSE_CONTEXT: wheelhouse}
    # The legacy builder cannot mount: the wheels go into the context (and the first stage only).
    context.sync_tree(WHEELHOUSE_CONTEXT, wheelhouse, [Path(p.name) for p in sorted(wheelhouse.iterdir())])
    return {}


def _phases(on_event: Callable[[BuildEvent], None] | None) -> Callable[[str], None]:
    def phase(text: str) -> None:
        if on_event:
            on_event(BuildEvent("phase", text))

    return phase


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


def _target(engine: Engine, base: str, platform: str, phase: Callable[[str], None]) -> Platform:
    """The base image's CPython, cached by image id (probing runs a container: about a second)."""
    cache = engine.settings.cache_dir / "bases.json"
    known: dict[str, list[object]] = json.loads(cache.read_text()) if cache.is_file() else {}
    found = engine.find_image(base)
    key = f"{engine.name}|{found.id if found else None}|{platform}"
    if found and key in known:
        python, glibc, machine = known[key]
        return Platform(str(python), tuple(glibc), str(machine))  # type: ignore[arg-type]
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


def _stable_labels(served: Served, options: BuildOptions, target: Platform) -> dict[str, str]:
    from shipyard.version import __version__

    manifest = served.manifest
    form = {"dev.shipyard.form": served.form} if served.form else {}  # which form of a compiled bundle is served
    return form | {
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
        # The server is also a multi-model endpoint's container (SAGEMAKER_MULTI_MODEL=true: serving/multimodel.py).
        "com.amazonaws.sagemaker.capabilities.multi-models": "true",
    }


def _training_labels(source: Path, entry: str, options: BuildOptions, target: Platform) -> dict[str, str]:
    from shipyard.version import __version__

    return {
        "org.opencontainers.image.title": _slug(source.resolve().name),
        "org.opencontainers.image.description": f"SageMaker-contract training (train) and serving (serve) of {entry}",
        "org.opencontainers.image.base.name": options.base,
        "dev.shipyard.version": __version__,
        "dev.shipyard.python": target.python,
        "dev.shipyard.model": "mounted",
        "dev.shipyard.training.program": entry,
        "dev.shipyard.user": f"{APP_USER} (workers)",
        "com.amazonaws.sagemaker.capabilities.accept-bind-to-port": "true",
        # The server is also a multi-model endpoint's container (SAGEMAKER_MULTI_MODEL=true: serving/multimodel.py).
        "com.amazonaws.sagemaker.capabilities.multi-models": "true",
    }


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._") or "model"


def _default_tag(bundle: Bundle) -> str:
    name = _slug(bundle.manifest.name)
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
