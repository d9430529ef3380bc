"""The image of a bundle, built once: a build of what was built before is answered from an index, not the builder.

The builder's own layer cache makes a repeated build cheap, but asking it still costs seconds. A
:class:`BundleImages` keeps an index (``deploy-images.json`` under
:attr:`Settings.cache_dir <shipyard.settings.Settings.cache_dir>`) of tag → (key, image id), where the key covers
everything the image is made of: the bundle's requirements and flavor (and every file of it when the model is
baked in), the extra requirements, the base image's id, the engine, and Shipyard's own code. A tag whose key and
image id still match is used as it is.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shipyard.bundle.archive import open_any
from shipyard.errors import ImageError
from shipyard.image.build import BuildEvent, BuildOptions, BuildResult, build
from shipyard.image.context import bundle_hash
from shipyard.image.engine import Engine

__all__ = ["BundleImage", "BundleImages"]

INDEX = "deploy-images.json"


@dataclass(frozen=True)
class BundleImage:
    """The image of a bundle: ``result`` is the build's when one ran (None: the image was up to date)."""

    image: str
    result: BuildResult | None

    @property
    def built(self) -> bool:
        return self.result is not None


class BundleImages:
    """Images of bundles built with ``engine``, remembered under its settings' cache directory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.index = engine.settings.cache_dir / INDEX

    def get(
        self, bundle: Path, options: BuildOptions, on_event: Callable[[BuildEvent], None] | None = None
    ) -> BundleImage:
        """The image ``options.tag`` of ``bundle``: the one already built when it is up to date, else built now."""
        if options.tag is None:
            raise ImageError("a cached bundle image needs a tag to be found by")
        key = self.key(bundle, options)
        if key is not None and self._up_to_date(options.tag, key):
            return BundleImage(options.tag, None)
        result = build(bundle, options, on_event, engine=self.engine)
        if key is not None:
            self._remember(options.tag, key, result.image_id)
        return BundleImage(result.image, result)

    def key(self, bundle: Path, options: BuildOptions) -> str | None:
        """What the image is made of, hashed; None when the base image is not here yet (the builder pulls it)."""
        try:
            base_id = self.engine.inspect_image(options.base).id
        except ImageError:
            return None
        digest = hashlib.sha256()
        with open_any(bundle, limits=self.engine.settings.archive) as opened:
            digest.update("\n".join([*opened.requirements(), *options.extra_requirements]).encode())
            digest.update(opened.manifest.flavor.encode())
            if options.bake:  # the model is inside: the image changes with every file of the bundle
                digest.update(bundle_hash(opened.path).encode())
        digest.update(f"{options.base}|{base_id}|{options.bake}|{self.engine.name}|{_source_hash()}".encode())
        return digest.hexdigest()

    def _up_to_date(self, tag: str, key: str) -> bool:
        try:
            entry = json.loads(self.index.read_text()).get(tag, {})
        except (OSError, ValueError):
            return False
        if entry.get("key") != key:
            return False
        try:
            return bool(self.engine.inspect_image(tag).id == entry.get("id"))
        except ImageError:
            return False

    def _remember(self, tag: str, key: str, image_id: str) -> None:
        self.index.parent.mkdir(parents=True, exist_ok=True)
        try:
            index = json.loads(self.index.read_text())
        except (OSError, ValueError):
            index = {}
        index[tag] = {"key": key, "id": image_id}
        tmp = self.index.with_suffix(".tmp")
        tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
        tmp.replace(self.index)


@functools.cache
def _source_hash() -> str:
    """Shipyard's own code, as installed (it goes into every image)."""
    root = Path(__file__).resolve().parents[1]  # src/shipyard/image/cache.py → the shipyard package
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
