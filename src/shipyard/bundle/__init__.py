"""The model bundle: the directory SageMaker extracts to ``/opt/ml/model``.

    model/                  artifacts (model.joblib, model.onnx, model.pkl, ...)
    code/inference.py       optional SageMaker handler (model_fn / input_fn / predict_fn / output_fn)
    code/requirements.txt   pinned at save time
    shipyard.toml           manifest: name, version, flavor, input schema, output, runtime versions
    example.json            a few input rows and their in-process predictions

A directory with only ``code/inference.py`` (the usual tutorial layout) is a bundle too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from shipyard.bundle.manifest import MANIFEST, Manifest
from shipyard.bundle.schema import Schema
from shipyard.errors import BundleError

__all__ = ["EXAMPLE", "HANDLER_FLAVOR", "Bundle", "Manifest", "Schema", "parse_requirements"]

EXAMPLE = "example.json"
HANDLER_FLAVOR = "handler"


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: Manifest
    program: str = "inference.py"

    @classmethod
    def open(cls, path: str | Path, program: str = "inference.py") -> Bundle:
        """Open a bundle directory; a tutorial handler directory without a manifest is accepted as is."""
        root = Path(path)
        if not root.is_dir():
            raise BundleError(f"{root} is not a directory (a bundle is a directory; see `shipyard pack`)")
        if (root / MANIFEST).is_file():
            return cls(root, Manifest.read(root), program)
        if (root / "code" / program).is_file():
            manifest = Manifest(name=root.resolve().name, flavor=HANDLER_FLAVOR, batchable=False)
            return cls(root, manifest, program)
        raise BundleError(
            f"{root} is not a model bundle: it has neither {MANIFEST} (written by shipyard.save) "
            f"nor code/{program} (a SageMaker handler)"
        )

    @property
    def flavor(self) -> str:
        return self.manifest.flavor

    @property
    def handler_script(self) -> Path | None:
        script = self.path / "code" / self.program
        return script if script.is_file() else None

    def requirements(self) -> list[str]:
        path = self.path / "code" / "requirements.txt"
        if not path.is_file():
            return []
        return parse_requirements(path.read_bytes())

    def example(self) -> dict[str, Any] | None:
        path = self.path / EXAMPLE
        if not path.is_file():
            return None
        try:
            value = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise BundleError(f"{path} is not valid JSON: {exc}") from None
        return value if isinstance(value, dict) else None

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def file_count(self) -> int:
        return sum(1 for p in self.path.rglob("*") if p.is_file())

    def handler_source(self) -> tuple[str, bytes] | None:
        """The handler script's name (for messages) and its bytes; None without one."""
        script = self.handler_script
        return (str(script), script.read_bytes()) if script is not None else None


def parse_requirements(data: bytes) -> list[str]:
    """The requirement lines of a ``requirements.txt`` (comments and blank lines dropped)."""
    text = data.decode(errors="replace")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]
