"""The :class:`~shipyard.deploy.images.ImageService` over the image layer (:mod:`shipyard.image`).

Orchestration only: an image reference is pulled when missing; a bundle's image comes from
:class:`~shipyard.image.cache.BundleImages` (built once, then reused while nothing it is made of changes);
a push logs in (:meth:`Engine.login <shipyard.image.engine.Engine.login>`: the token on standard input, never
on a command line or in a log), tags, pushes, and drops the extra tag.
"""

from __future__ import annotations

import functools
from pathlib import Path

from shipyard.deploy.base import Reporter
from shipyard.deploy.images import RegistryLogin, ResolvedImage, is_bundle_source
from shipyard.image import DEFAULT_BASE, BuildEvent, BuildOptions, Engine, detect
from shipyard.image.cache import BundleImages
from shipyard.settings import Settings

__all__ = ["EngineImages", "deploy_tag"]


def deploy_tag(name: str, bake_model: bool) -> str:
    """The local tag of a deployment's image: the model inside (``model``) or mounted at run time (``runtime``)."""
    return f"localhost/shipyard-deploy/{name.lower()}:{'model' if bake_model else 'runtime'}"


class EngineImages:
    def __init__(self, engine: str | None = None, *, settings: Settings | None = None) -> None:
        self._engine_name = engine
        self._settings = settings

    @functools.cached_property
    def engine(self) -> Engine:
        return detect(self._engine_name, self._settings)

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

        def on_event(event: BuildEvent) -> None:
            if event.kind == "phase":
                reporter.step(event.text)
            elif event.kind == "step" and event.step is not None:
                reporter.status("Building", 0.0, f"step {event.step}/{event.total}: {event.text[:60]}")

        options = BuildOptions(
            tag=deploy_tag(name, bake_model),
            base=base or DEFAULT_BASE,
            bake=bake_model,
            extra_requirements=_aws_requirements() if with_aws else (),
        )
        got = BundleImages(self.engine).get(bundle, options, on_event)
        if got.result is None:
            reporter.step(f"image {got.image} (up to date: same requirements, base image and Shipyard)")
        else:
            reporter.step(f"image {got.image} ({got.result.size / 1e6:.0f} MB, {got.result.seconds:.1f} s)")
        return ResolvedImage(image=got.image, bundle=bundle, built=got.built)

    def push(self, image: str, destination: str, *, login: RegistryLogin | None, tls_verify: bool) -> str | None:
        if login is not None:
            self.engine.login(login.host, login.username, login.password)
        self.engine.tag(image, destination)
        try:
            self.engine.push(destination)
        finally:
            self.engine.remove_image(destination)  # only the extra tag: the image keeps its own name
        return None


def _aws_requirements() -> tuple[str, ...]:
    """boto3 pinned to the version installed here (the server reads --secret values with it)."""
    from importlib import metadata

    try:
        return (f"boto3=={metadata.version('boto3')}",)
    except metadata.PackageNotFoundError:
        return ("boto3",)
