"""``shipyard.save``: write a live notebook model as a bundle."""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import orjson

from shipyard.bundle import EXAMPLE, Bundle
from shipyard.bundle.archive import make_readable
from shipyard.bundle.manifest import Manifest
from shipyard.bundle.requirements import pin
from shipyard.bundle.schema import Schema
from shipyard.errors import BundleError

__all__ = ["EXAMPLE_NATIVE", "save"]

_EXAMPLE_ROWS = 5
EXAMPLE_NATIVE = "example.native.json"  # the native form's answers, in a compiled bundle that keeps it


def save(
    model: Any,
    path: str | os.PathLike[str],
    *,
    example: Any = None,
    name: str | None = None,
    version: str = "1",
    flavor: str | None = None,
    method: str | None = None,
    batchable: bool = True,
    json_envelope: bool = True,
    feature_names: Sequence[str] | None = None,
    requirements: Iterable[str] = (),
    overwrite: bool = False,
    compile: str = "off",
    held_out: Any = None,
    check_rows: int | None = None,
    tolerance: float | None = None,
    drop_original: bool = False,
    **options: Any,
) -> Bundle:
    """Save ``model`` as a bundle directory at ``path`` and return it.

    ``example`` (a few input rows: an array, a DataFrame, a list of rows or records, or texts) fixes
    the input schema every request is checked against and is kept, with the in-process predictions,
    in ``example.json``. The saved bundle is loaded back and run on the example before it is kept,
    so a bundle that exists is a bundle that works.

    ``json_envelope=False`` makes the bundle's JSON answers the bare list of predictions instead of
    ``{"predictions": [...]}`` (e.g. for the SDK's ``NumpyDeserializer(accept="application/json")``); the
    server's ``SHIPYARD_JSON_ENVELOPE`` overrides it.

    ``compile="onnx"`` converts the model to ONNX (scikit-learn through skl2onnx; ``pip install
    'shipyard[compile]'``) and serves it with onnxruntime, after checking both forms answer alike on the example,
    ``check_rows`` generated rows in the schema's ranges (default 1,000; 64 texts for text models) and the
    ``held_out`` rows: labels exactly, scores within ``tolerance · max(1, |native|)``; it fails with the first
    differing row. ``compile="auto"`` keeps the native flavor instead, with the reason in the manifest's
    ``[compiled]`` table (``shipyard inspect`` shows it). The original artifact stays in the bundle (a build can
    serve either form) unless ``drop_original=True``.

    >>> from sklearn.linear_model import LogisticRegression
    >>> import numpy as np, tempfile
    >>> X = np.random.default_rng(0).normal(size=(20, 3)); y = (X[:, 0] > 0).astype(int)
    >>> bundle = save(LogisticRegression().fit(X, y), tempfile.mkdtemp() + "/b", example=X[:2])
    >>> bundle.manifest.flavor
    'sklearn'
    """
    from shipyard.handler.compile import check_mode, compile_staged
    from shipyard.handler.flavors import detect, flavor_module

    check_mode(compile)
    target = Path(path)
    _check_target(target, overwrite)
    flavor = flavor or detect(model)
    module = flavor_module(flavor)
    if method:
        options["method"] = method
    schema = Schema.infer(example, tuple(feature_names or _feature_names(model)))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        artifact, packages = _stage(staging, model, module, options, requirements)
        manifest = Manifest(
            name=name or target.resolve().name, flavor=flavor, version=str(version), artifact=artifact,
            batchable=batchable, json_envelope=bool(json_envelope), options=options, input=schema,
            runtime=_runtime(packages), created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )  # fmt: skip
        if compile != "off":
            manifest = compile_staged(
                staging, model, manifest, example, mode=compile, held_out=held_out, check_rows=check_rows,
                tolerance=tolerance, drop_original=drop_original,
            )  # fmt: skip
        write_manifest(staging, manifest, example)
        move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Bundle.open(target)


def _check_target(target: Path, overwrite: bool) -> None:
    """A bundle is saved over an existing path only when asked to (or when it is an empty directory)."""
    if target.exists() and not overwrite and (not target.is_dir() or any(target.iterdir())):
        raise BundleError(f"{target} already exists; pass overwrite=True to replace it")


def _stage(
    staging: Path, model: Any, module: ModuleType, options: dict[str, Any], requirements: Iterable[str]
) -> tuple[str, list[str]]:
    """Write the model (by its flavor's module) and code/requirements.txt; the artifact and the pins."""
    (staging / "model").mkdir()
    (staging / "code").mkdir()
    artifact = module.save(model, staging / "model", options)
    packages = pin([*module.PACKAGES, *requirements])
    (staging / "code" / "requirements.txt").write_text("\n".join(packages) + "\n")
    return artifact, packages


def _runtime(packages: Sequence[str]) -> dict[str, Any]:
    """The manifest's record of what the bundle was saved with: Python, shipyard and the pinned libraries."""
    return {
        "python": platform.python_version(),
        "shipyard": _version(),
        "libraries": {p.split("==")[0]: p.split("==")[1] for p in packages if "==" in p},
    }


def write_manifest(staging: Path, manifest: Manifest, example: Any) -> None:
    """Write the manifest; with an example, run the written bundle on it and write it again with the output
    schema that run found. A compiled bundle that keeps its original also gets the native form's answers in
    example.native.json (what an image built with ``--compile off`` verifies against)."""
    manifest.write(staging)
    if example is not None:
        output = _check_round_trip(staging, manifest, example)
        manifest = Manifest(**{**manifest.__dict__, "output": output})
        manifest.write(staging)
        if manifest.compiled.get("status") == "onnx" and manifest.compiled.get("source_artifact"):
            native = _check_round_trip(staging, manifest.as_native(), example, EXAMPLE_NATIVE)
            if native != output:  # the native form's own output schema, for as_native()
                Manifest(**{**manifest.__dict__, "compiled": {**manifest.compiled, "source_output": native}}).write(
                    staging
                )


def move_into_place(staging: Path, target: Path) -> None:
    """Replace whatever is at ``target`` with the finished staging directory."""
    make_readable(staging)  # the workers that read it run as another user
    if target.is_dir() and not target.is_symlink():
        # Keep the folder itself, replace what it holds: it may be a mount point (SageMaker's SM_MODEL_DIR,
        # /opt/ml/model in a training container), which can be neither removed nor renamed over.
        for child in list(target.iterdir()):
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        for child in list(staging.iterdir()):
            shutil.move(str(child), str(target / child.name))
        staging.rmdir()
        return
    if target.exists() or target.is_symlink():
        target.unlink()
    os.replace(staging, target)


def _check_round_trip(directory: Path, manifest: Manifest, example: Any, name: str = EXAMPLE) -> dict[str, Any]:
    """Load the written bundle, run it on the example, keep both in example.json; the output schema."""
    from shipyard.handler.flavors import flavor_module

    rows = _example_rows(example)
    inputs, count = manifest.input.coerce(rows)
    predict = flavor_module(manifest.flavor).load(directory, manifest)
    try:
        predictions = predict(inputs)
    except Exception as exc:
        raise BundleError(f"the saved model fails on its own example: {type(exc).__name__}: {exc}") from exc
    array = np.asarray(predictions)
    if array.ndim == 0 or len(array) != count:
        raise BundleError(
            f"the model returned {array.shape} for {count} example rows; "
            "a batch model must return one prediction per row"
        )
    from shipyard.codecs.json import dumps

    document = {"instances": rows, "predictions": predictions}
    (directory / name).write_bytes(orjson.dumps(orjson.loads(dumps(document)), option=orjson.OPT_INDENT_2))
    dtype = "string" if array.dtype.kind in "USO" else str(array.dtype)
    return {"dtype": dtype, "shape": [-1, *array.shape[1:]]}


def _example_rows(example: Any) -> Any:
    if type(example).__name__ == "DataFrame":
        return orjson.loads(example.head(_EXAMPLE_ROWS).to_json(orient="records"))
    if isinstance(example, str):
        return [example]
    if isinstance(example, np.ndarray):
        return example[:_EXAMPLE_ROWS].tolist()
    if isinstance(example, list | tuple):
        return list(example[:_EXAMPLE_ROWS])
    return example


def _feature_names(model: Any) -> tuple[str, ...]:
    names = getattr(model, "feature_names_in_", None)
    return tuple(str(n) for n in names) if names is not None else ()


def _version() -> str:
    from shipyard.version import __version__

    return __version__
