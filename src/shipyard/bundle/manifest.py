"""``shipyard.toml``: what a bundle holds, written at save time and read by everything after."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from shipyard.bundle.schema import Schema
from shipyard.errors import BundleError

__all__ = ["MANIFEST", "Manifest"]

MANIFEST = "shipyard.toml"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    name: str
    flavor: str
    version: str = "1"
    artifact: str | None = None
    batchable: bool = True
    # JSON answers as {"predictions": [...]} (the default), or the bare list: what the bundle's clients read
    json_envelope: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    input: Schema = field(default_factory=Schema)
    output: dict[str, Any] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=dict)
    created: str | None = None

    def to_toml(self) -> str:
        model: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "flavor": self.flavor,
            "batchable": self.batchable,
        }
        if not self.json_envelope:  # written only when set, so existing manifests read back unchanged
            model["json_envelope"] = False
        if self.artifact:
            model["artifact"] = self.artifact
        if self.created:
            model["created"] = self.created
        if self.options:
            model["options"] = self.options
        document = {"format": FORMAT_VERSION, "model": model, "input": self.input.to_dict()}
        if self.output:
            document["output"] = self.output
        if self.runtime:
            document["runtime"] = self.runtime
        return tomli_w.dumps(document)

    def write(self, directory: Path) -> None:
        (directory / MANIFEST).write_text(self.to_toml())

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        return cls.parse(path.read_bytes(), source=str(path), default_name=directory.name)

    @classmethod
    def parse(cls, data: bytes, *, source: str, default_name: str) -> Manifest:
        """The manifest in ``data`` (``source`` names it in errors; ``default_name`` is the bundle's name when the
        manifest gives none). Whatever the bytes, the only error is a BundleError (an archive may be crafted)."""
        try:
            document = tomllib.loads(data.decode())
        except UnicodeDecodeError as exc:
            raise BundleError(f"{source} is not UTF-8 text: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise BundleError(f"{source} is not valid TOML: {exc}") from None
        model = document.get("model")
        if not isinstance(model, dict) or "flavor" not in model:
            raise BundleError(f"{source} has no [model] table with a flavor")
        version = document.get("format", FORMAT_VERSION)
        if not isinstance(version, int):
            raise BundleError(f"{source}: format must be an integer, not {version!r}")
        if version > FORMAT_VERSION:
            raise BundleError(f"{source} was written by a newer Shipyard (format {version})")
        try:
            manifest = cls(
                name=str(model.get("name", default_name)),
                flavor=str(model["flavor"]),
                version=str(model.get("version", "1")),
                artifact=model.get("artifact"),
                batchable=bool(model.get("batchable", True)),
                json_envelope=_flag(model, "json_envelope", source),
                options=dict(model.get("options", {})),
                input=Schema.from_dict(document.get("input")),
                output=dict(document.get("output", {})),
                runtime=dict(document.get("runtime", {})),
                created=model.get("created"),
            )
        except (TypeError, ValueError, AttributeError) as exc:  # a table where a value was due, or the reverse
            raise BundleError(f"{source} is not a valid manifest: {exc}") from None
        _check_values(manifest, source)
        return manifest


def _check_values(manifest: Manifest, source: str) -> None:
    """What readers take for granted (``shipyard inspect`` prints them): an archive's manifest may be crafted."""
    schema = manifest.input
    if schema.kind == "columns" and len(schema.names) != len(schema.dtypes):
        raise BundleError(f"{source}: [input] has {len(schema.names)} names but {len(schema.dtypes)} dtypes")
    shape = manifest.output.get("shape", [-1])
    if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
        raise BundleError(f"{source}: [output] shape must be a list of integers, not {shape!r}")
    python = manifest.runtime.get("python")
    if python is not None and not isinstance(python, str):
        raise BundleError(f"{source}: [runtime] python must be a string, not {python!r}")


def _flag(table: dict[str, Any], key: str, path: str) -> bool:
    value = table.get(key, True)
    if not isinstance(value, bool):
        raise BundleError(f"{path}: [model] {key} must be true or false, not {value!r}")
    return value
