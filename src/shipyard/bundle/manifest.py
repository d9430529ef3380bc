"""``shipyard.toml``: what a bundle holds, written at save time and read by everything after."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
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
    # [compiled]: the native form a compiled bundle came from, and the equivalence check (docs/bundle.md)
    compiled: dict[str, Any] = field(default_factory=dict)

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
        if self.compiled:  # written only when compile ran, so other manifests read back unchanged
            document["compiled"] = self.compiled
        return tomli_w.dumps(document)

    def as_native(self) -> Manifest:
        """The manifest of the native form a compiled bundle keeps (its ``[compiled]`` table stays): what an
        image built with ``--compile off`` serves. Its requirements are ``compiled["source_requirements"]``."""
        if self.compiled.get("status") != "onnx":
            raise BundleError(f"bundle {self.name!r} is not compiled: it serves its native flavor {self.flavor!r}")
        artifact = self.compiled.get("source_artifact", "")
        if not artifact:
            raise BundleError(
                f"bundle {self.name!r} was saved without its original (drop_original); "
                "rebuild from the source model to serve it natively"
            )
        return replace(
            self,
            flavor=str(self.compiled["source_flavor"]),
            artifact=str(artifact),
            options=dict(self.compiled.get("source_options", {})),
        )

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
                compiled=_table(document, "compiled", source),
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
    _check_compiled(manifest.compiled, source)


# [compiled]: key → the types its value may have (a crafted archive must not crash inspect or build)
_COMPILED_KEYS: dict[str, tuple[type, ...]] = {
    "status": (str,),
    "reason": (str,),
    "source_flavor": (str,),
    "source_artifact": (str,),
    "source_options": (dict,),
    "source_requirements": (list,),
    "source_files": (list,),
    "onnx_files": (list,),
    "onnx_requirements": (list,),
    "converter": (str,),
    "opset": (int,),
    "input_dtype": (str,),
    "check": (dict,),
    "sizes": (dict,),
}
_CHECK_KEYS: dict[str, tuple[type, ...]] = {
    "rows": (int,),
    "methods": (list,),
    "labels_equal": (bool,),
    "tolerance": (int, float),
    "max_abs_error": (int, float),
    "first_difference": (str,),
}
_STATUSES = ("onnx", "native")


def _table(document: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = document.get(key, {})
    if not isinstance(value, dict):
        raise BundleError(f"{source}: [{key}] must be a table, not {value!r}")
    return dict(value)


def _check_compiled(compiled: dict[str, Any], source: str) -> None:
    """The ``[compiled]`` table's keys have the types readers rely on; lists hold strings; sizes are integers."""
    if not compiled:
        return
    _check_keys(compiled, _COMPILED_KEYS, "[compiled]", source)
    if compiled.get("status") not in _STATUSES:
        raise BundleError(f"{source}: [compiled] status must be one of {_STATUSES}, not {compiled.get('status')!r}")
    if compiled["status"] == "onnx" and not isinstance(compiled.get("source_flavor"), str):
        raise BundleError(f"{source}: [compiled] needs the source_flavor of the form it was compiled from")
    for key in ("source_requirements", "source_files", "onnx_files"):
        if not all(isinstance(item, str) for item in compiled.get(key, [])):
            raise BundleError(f"{source}: [compiled] {key} must be a list of strings, not {compiled[key]!r}")
    if not all(isinstance(item, str) for item in compiled.get("onnx_requirements", [])):
        raise BundleError(f"{source}: [compiled] onnx_requirements must be a list of strings")
    check = compiled.get("check", {})
    _check_keys(check, _CHECK_KEYS, "[compiled.check]", source)
    if not all(isinstance(item, str) for item in check.get("methods", [])):
        raise BundleError(f"{source}: [compiled.check] methods must be a list of strings, not {check['methods']!r}")
    for name, size in compiled.get("sizes", {}).items():
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BundleError(f"{source}: [compiled.sizes] {name} must be a byte count, not {size!r}")


def _check_keys(table: dict[str, Any], types: dict[str, tuple[type, ...]], name: str, source: str) -> None:
    for key, value in table.items():
        allowed = types.get(key)
        if allowed is None:
            continue  # a key a newer Shipyard added: kept, not read
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            kinds = " or ".join(t.__name__ for t in allowed)
            raise BundleError(f"{source}: {name} {key} must be {kinds}, not {value!r}")


def _flag(table: dict[str, Any], key: str, path: str) -> bool:
    value = table.get(key, True)
    if not isinstance(value, bool):
        raise BundleError(f"{path}: [model] {key} must be true or false, not {value!r}")
    return value
