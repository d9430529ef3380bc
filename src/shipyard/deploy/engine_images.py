"""The :class:`~shipyard.deploy.images.ImageService` over the image layer (:mod:`shipyard.image`).

Builds go through :func:`shipyard.image.build` (the one image builder); pushes through the engine, after
a ``login`` with ECR's token fed on standard input (never on a command line or in a log).
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from shipyard.cloud.ecr import Registry
from shipyard.deploy.base import Reporter
from shipyard.deploy.images import ResolvedImage, is_bundle_source
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

        result = build(
            bundle,
            BuildOptions(
                tag=deploy_tag(name, bake_model),
                base=base or DEFAULT_BASE,
                engine=self._engine_name,
                bake=bake_model,
            ),
            on_event,
        )
        reporter.step(f"image {result.image} ({result.size / 1e6:.0f} MB, {result.seconds:.1f} s)")
        return ResolvedImage(image=result.image, bundle=bundle, built=True)

    def push(self, image: str, destination: str, *, login: Registry | None, tls_verify: bool) -> str | None:
        if login is not None:
            self._login(login)
        self.engine.tag(image, destination)
        self.engine.push(destination)
        return None

    def _login(self, registry: Registry) -> None:
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
