"""The :class:`~shipyard.deploy.images.ImageService` over the image layer (:mod:`shipyard.image`).

Builds go through :func:`shipyard.image.build` (the one image builder); pushes through the engine, after
a ``login`` with ECR's token fed on standard input (never on a command line or in a log).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from pathlib import Path

from shipyard.deploy.base import Reporter
from shipyard.deploy.images import RegistryLogin, ResolvedImage, is_bundle_source
from shipyard.errors import ImageError
from shipyard.image import DEFAULT_BASE, BuildEvent, BuildOptions, Engine, build, detect

__all__ = ["EngineImages", "deploy_tag"]


def deploy_tag(name: str, bake_model: bool) -> str:
    """The local tag of a deployment's image: the model inside (``model``) or mounted at run time (``runtime``)."""
    return f"localhost/shipyard-deploy/{name.lower()}:{'model' if bake_model else 'runtime'}"


class EngineImages:
    def __init__(self, engine: str | None = None) -> None:
        self._engine_name = engine

    @functools.cached_property
    def engine(self) -> Engine:
        return detect(self._engine_name)

    def resolve(
        self,
        source: str,
        *,
        name: str,
        bake_model: bool,
        image: str | None = None,
        base: str | None = None,
        reporter: Reporter,
        with_aws: bool = False,
    ) -> ResolvedImage:
        bundle = Path(source) if is_bundle_source(source) else None
        if image or bundle is None:
            ref = image or source
            if not self.engine.image_exists(ref):
                reporter.step(f"pulling {ref}")
                self.engine.pull(ref)
            return ResolvedImage(image=ref, bundle=bundle, built=False)

        base = base or DEFAULT_BASE
        tag = deploy_tag(name, bake_model)
        extra = _aws_requirements() if with_aws else ()
        key = _build_key(bundle, base, bake_model, self.engine, extra)
        if key is not None and _cached(tag, key, self.engine):
            reporter.step(f"image {tag} (up to date: same requirements, base image and Shipyard)")
            return ResolvedImage(image=tag, bundle=bundle, built=False)

        def on_event(event: BuildEvent) -> None:
            if event.kind == "phase":
                reporter.step(event.text)
            elif event.kind == "step" and event.step is not None:
                reporter.status("Building", 0.0, f"step {event.step}/{event.total}: {event.text[:60]}")

        result = build(
            bundle,
            BuildOptions(tag=tag, base=base, engine=self._engine_name, bake=bake_model, extra_requirements=extra),
            on_event,
        )
        if key is not None:
            _remember(tag, key, result.image_id)
        reporter.step(f"image {result.image} ({result.size / 1e6:.0f} MB, {result.seconds:.1f} s)")
        return ResolvedImage(image=result.image, bundle=bundle, built=True)

    def push(self, image: str, destination: str, *, login: RegistryLogin | None, tls_verify: bool) -> str | None:
        if login is not None:
            self._login(login)
        self.engine.tag(image, destination)
        try:
            self.engine.push(destination)
        finally:
            self.engine.remove_image(destination)  # only the extra tag: the image keeps its own name
        return None

    def _login(self, registry: RegistryLogin) -> None:
        done = subprocess.run(
            [self.engine.binary, "login", "--username", registry.username, "--password-stdin", registry.host],
            input=registry.password,
            capture_output=True,
            text=True,
            env={**os.environ, **self.engine.env},
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise ImageError(f"{self.engine.name} could not log in to {registry.host}: {done.stderr.strip()[-300:]}")


# A deploy of the same bundle requirements on the same base with the same Shipyard reuses its image without
# asking the builder (whose own cache check costs seconds): the key covers everything the image is made of.
def _aws_requirements() -> tuple[str, ...]:
    """boto3 pinned to the version installed here (the server reads --secret values with it)."""
    from importlib import metadata

    try:
        return (f"boto3=={metadata.version('boto3')}",)
    except metadata.PackageNotFoundError:
        return ("boto3",)


def _build_key(bundle: Path, base: str, bake_model: bool, engine: Engine, extra: tuple[str, ...] = ()) -> str | None:
    from shipyard.bundle.archive import open_any
    from shipyard.image.context import bundle_hash

    try:
        base_id = engine.inspect_image(base).id
    except ImageError:
        return None  # not pulled yet: let the builder fetch it
    digest = hashlib.sha256()
    with open_any(bundle) as opened:
        digest.update("\n".join([*opened.requirements(), *extra]).encode())
        digest.update(opened.manifest.flavor.encode())
        if bake_model:  # the model is inside: the image changes with every file of the bundle
            digest.update(bundle_hash(opened.path).encode())
    digest.update(f"{base}|{base_id}|{bake_model}|{engine.name}|{_source_hash()}".encode())
    return digest.hexdigest()


@functools.cache
def _source_hash() -> str:
    """Shipyard's own code, as installed (it goes into every image)."""
    import shipyard

    root = Path(shipyard.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _index() -> Path:
    from shipyard.image.wheelhouse import cache_dir

    return cache_dir() / "deploy-images.json"


def _cached(tag: str, key: str, engine: Engine) -> bool:
    try:
        entry = json.loads(_index().read_text()).get(tag, {})
    except (OSError, ValueError):
        return False
    if entry.get("key") != key:
        return False
    try:
        return bool(engine.inspect_image(tag).id == entry.get("id"))
    except ImageError:
        return False


def _remember(tag: str, key: str, image_id: str) -> None:
    path = _index()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError):
        index = {}
    index[tag] = {"key": key, "id": image_id}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
    tmp.replace(path)
