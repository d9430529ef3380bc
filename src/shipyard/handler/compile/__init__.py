"""Compiling a bundle to ONNX: convert the native model, check the two forms answer alike, serve the compiled one.

A compiled bundle is an ``onnx``-flavor bundle (its manifest, options and ``code/requirements.txt`` are the
served form's, so nothing downstream changes) whose ``[compiled]`` table records the native form it came from
and the equivalence check (docs/bundle.md). One converter module per native flavor (:data:`CONVERTERS`)
exposes ``convert(model, bundle_dir, manifest) -> Conversion`` and optionally ``generate(...)`` for its check
inputs; the caller turns whatever it raises into the reason ``auto`` records and ``onnx`` fails with.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shipyard.bundle.manifest import Manifest, check_inside
from shipyard.bundle.requirements import pin
from shipyard.errors import BundleError

__all__ = ["CONVERTERS", "MODES", "Conversion", "compile_bundle", "compile_staged"]

MODES = ("auto", "onnx", "off")
CONVERTERS = {
    "sklearn": "shipyard.handler.compile.sklearn",
    "sentence_transformers": "shipyard.handler.compile.text",
    "torch": "shipyard.handler.compile.torch",
}
INSTALL_HINT = "pip install 'shipyard[compile]'"


@dataclass(frozen=True)
class Conversion:
    """What a converter wrote: the served artifact and its onnx-flavor options, the packages that serve it
    (unpinned), the files of the compiled form, and what the check compares (the served method first)."""

    artifact: str
    options: dict[str, Any]
    packages: tuple[str, ...]
    files: tuple[str, ...]
    converter: str
    opset: int
    methods: tuple[str, ...]
    tolerance: float = 1e-5
    extra: dict[str, Any] = field(default_factory=dict)  # more [compiled] keys the converter records


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise BundleError(f"compile={mode!r} is not a compile mode; use one of {', '.join(MODES)}")
    return mode


# generated rows compared when neither the caller nor the converter names a count
DEFAULT_CHECK_ROWS = 1000


def compile_staged(
    staging: Path,
    model: Any | None,
    manifest: Manifest,
    example: Any,
    *,
    mode: str,
    held_out: Any = None,
    check_rows: int | None = None,
    tolerance: float | None = None,
    drop_original: bool = False,
) -> Manifest:
    """Compile the native bundle written in ``staging`` (``manifest`` is its manifest, ``model`` the live object
    or None) and return the manifest to serve: the onnx form when it converts and the check passes, else
    (``auto``) the native one with the reason in ``[compiled]``; ``onnx`` raises BundleError with it instead."""
    from shipyard.handler.compile.check import compare

    check_mode(mode)
    if mode == "off" or manifest.flavor == "onnx":  # an ONNX model is served as it is
        return manifest
    source_files = sorted(f"model/{p.name}" for p in (staging / "model").iterdir())
    source_requirements = _requirements(staging)
    record: dict[str, Any] = {
        "status": "native",
        "reason": "",
        "source_flavor": manifest.flavor,
        "source_artifact": manifest.artifact or "",
        "source_options": dict(manifest.options),
        "source_requirements": source_requirements,
        "source_files": source_files,
    }
    try:
        conversion = _convert(model, staging, manifest)
    except Exception as exc:  # a converter raises what its library raises: the reason names it
        return _fall_back(staging, manifest, record, source_files, mode, _reason(exc, staging))
    served = replace(manifest, flavor="onnx", artifact=conversion.artifact, options=dict(conversion.options))
    onnx_requirements = pin(conversion.packages)
    record |= {
        "onnx_files": list(conversion.files),
        "onnx_requirements": onnx_requirements,
        "converter": conversion.converter,
        "opset": conversion.opset,
        **conversion.extra,
    }
    try:
        result = compare(
            staging, manifest, served, conversion, example, held_out=held_out,
            count=_check_rows(manifest.flavor) if check_rows is None else check_rows,
            tolerance=conversion.tolerance if tolerance is None else float(tolerance),
        )  # fmt: skip
    except Exception as exc:  # a form cannot even run on the check rows: a failed check
        return _fall_back(staging, manifest, record, source_files, mode, _reason(exc, staging))
    record["check"] = result.to_dict()
    if result.first_difference:
        return _fall_back(staging, manifest, record, source_files, mode, result.first_difference)
    outputs = served.options.get("outputs")
    if result.left_out and isinstance(outputs, dict):  # a method not checked is not served either
        kept = {m: name for m, name in outputs.items() if m not in result.left_out}
        served = replace(served, options={**served.options, "outputs": kept})
    record["status"] = "onnx"
    record["sizes"] = {
        "source_bytes": _bytes(staging, source_files),
        "onnx_bytes": _bytes(staging, conversion.files),
    }
    if drop_original:
        _drop(staging, record)
    (staging / "code").mkdir(exist_ok=True)
    (staging / "code" / "requirements.txt").write_text("\n".join(onnx_requirements) + "\n")
    runtime = dict(manifest.runtime)
    libraries = dict(runtime.get("libraries", {}))
    libraries |= {p.split("==")[0]: p.split("==")[1] for p in onnx_requirements if "==" in p}
    runtime["libraries"] = dict(sorted(libraries.items()))
    return replace(served, runtime=runtime, compiled=record)


def compile_bundle(
    source: Path,
    target: Path | None = None,
    *,
    mode: str = "onnx",
    drop_original: bool = False,
    check_rows: int | None = None,
    held_out: Any = None,
    tolerance: float | None = None,
) -> Manifest:
    """Compile the saved native bundle at ``source`` (its model loaded from its artifact) into ``target`` (a
    copy) or, without one, in place; the manifest it ends with. A bundle already compiled is returned as is
    (``drop_original`` still drops its original)."""
    from shipyard.bundle import EXAMPLE, Bundle
    from shipyard.handler.save import move_into_place, write_manifest

    check_mode(mode)
    bundle = Bundle.open(source)
    manifest = bundle.manifest
    if manifest.flavor not in CONVERTERS and manifest.compiled.get("status") != "onnx":
        raise BundleError(
            f"{source} is a {manifest.flavor!r} bundle; shipyard compiles {', '.join(sorted(CONVERTERS))} bundles"
        )
    example = (bundle.example() or {}).get("instances")
    destination = Path(target) if target is not None else Path(source)
    if target is not None and destination.exists() and any(destination.iterdir()):
        raise BundleError(f"{destination} already exists and is not empty; name a new directory")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        if manifest.compiled.get("status") == "onnx":
            if drop_original and manifest.compiled.get("source_artifact"):
                record = dict(manifest.compiled)
                _drop(staging, record)
                (staging / "example.native.json").unlink(missing_ok=True)
                manifest = replace(manifest, compiled=record)
                manifest.write(staging)
        elif mode != "off":
            manifest = compile_staged(
                staging, None, manifest, example, mode=mode, held_out=held_out, check_rows=check_rows,
                tolerance=tolerance, drop_original=drop_original,
            )  # fmt: skip
            if example is None:
                manifest.write(staging)
            else:
                (staging / EXAMPLE).unlink(missing_ok=True)
                write_manifest(staging, manifest, example)
        move_into_place(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _check_rows(flavor: str) -> int:
    """Generated check rows when the caller names none: the converter's own count (a text costs the native
    encoder milliseconds, a table row microseconds), else DEFAULT_CHECK_ROWS."""
    name = CONVERTERS.get(flavor)
    rows = getattr(importlib.import_module(name), "CHECK_ROWS", DEFAULT_CHECK_ROWS) if name else DEFAULT_CHECK_ROWS
    return int(rows)


def _convert(model: Any | None, staging: Path, manifest: Manifest) -> Conversion:
    name = CONVERTERS.get(manifest.flavor)
    if name is None:
        raise BundleError(f"no ONNX converter for the {manifest.flavor!r} flavor (shipyard compiles {_known()})")
    module = importlib.import_module(name)
    conversion: Conversion = module.convert(model, staging, manifest)
    return conversion


def _fall_back(
    staging: Path, manifest: Manifest, record: dict[str, Any], source_files: list[str], mode: str, reason: str
) -> Manifest:
    """``auto``: the native manifest with the reason recorded and no compiled file left; ``onnx``: the error."""
    for child in (staging / "model").iterdir():
        if f"model/{child.name}" not in source_files:
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    if mode == "onnx":
        raise BundleError(f"compile='onnx': {reason}")
    for key in ("onnx_files", "onnx_requirements"):
        record.pop(key, None)
    record |= {"status": "native", "reason": reason}
    return replace(manifest, compiled=record)


def _reason(exc: BaseException, staging: Path | None = None) -> str:
    """The first line of the error, named by its class unless it is one of Shipyard's own clear messages; a path
    in the staging directory (gone once saved) is named relative to the bundle."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if staging is not None:
        for root in {str(staging.resolve()), str(staging)}:
            first = first.replace(root + "/", "").replace(root, ".")
    if isinstance(exc, BundleError):
        return first or type(exc).__name__
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _drop(staging: Path, record: dict[str, Any]) -> None:
    """Delete the native form's files; the record keeps its flavor and pins, not its artifact."""
    root = staging.resolve()
    paths = []
    for name in record.get("source_files", []):  # every entry checked before anything is deleted
        path = staging / check_inside(str(name), "[compiled] source_files entry")
        if not path.parent.resolve().is_relative_to(root) or path.resolve() == root:  # a link out of the bundle
            raise BundleError(f"[compiled] source_files entry {name!r} leads outside the bundle; nothing dropped")
        paths.append(path)
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    record["source_artifact"] = ""
    record["source_files"] = []


def _requirements(staging: Path) -> list[str]:
    from shipyard.bundle import parse_requirements

    path = staging / "code" / "requirements.txt"
    return parse_requirements(path.read_bytes()) if path.is_file() else []


def _bytes(root: Path, names: Any) -> int:
    total = 0
    for name in names:
        path = root / name
        if path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            total += path.stat().st_size
    return total


def _known() -> str:
    return ", ".join(sorted(CONVERTERS))
