"""scikit-learn estimators and pipelines → ONNX with skl2onnx.

The graph takes the schema's dtype (a float64 schema → DoubleTensorType: float32 graphs flip the labels of rows
whose votes tie), retried as float32 where a converter refuses double. Classifiers keep their labels (strings
too) and probabilities (ZipMap off wherever the converter has the option); ``decision_function`` is served from a
``raw_scores`` graph; regressors' ``[N, 1]`` is flattened. DataFrame input (a columns schema) is not compiled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.bundle.manifest import Manifest
from shipyard.errors import BundleError
from shipyard.handler.compile import INSTALL_HINT, Conversion

__all__ = ["OPSET", "convert", "input_dtypes"]

OPSET = 17
_TARGET_OPSET = {"": OPSET, "ai.onnx.ml": 3}
_METHODS = ("predict", "predict_proba", "decision_function")


def convert(model: Any | None, bundle_dir: Path, manifest: Manifest) -> Conversion:
    try:
        import skl2onnx
    except ImportError:
        raise BundleError(f"skl2onnx is not installed ({INSTALL_HINT})") from None
    if model is None:
        import joblib

        model = joblib.load(bundle_dir / (manifest.artifact or "model/model.joblib"))
    schema = manifest.input
    if schema.kind == "columns":
        raise BundleError("DataFrame input (a columns schema) is not compiled yet; save a numpy example to compile")
    if schema.kind != "tensor" or len(schema.shape) != 2 or schema.dtype in ("string", "bool"):
        raise BundleError(f"only numeric 2-D inputs are compiled; this bundle takes {schema.describe()}")
    served = str(manifest.options.get("method", "predict"))
    if served not in _METHODS:
        raise BundleError(f"method {served!r} is not compiled (skl2onnx graphs answer {', '.join(_METHODS)})")
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    classifier = hasattr(final, "classes_")
    allowed = _allowed_options(final)
    options: dict[str, Any] = {}
    if classifier and (allowed is None or "zipmap" in allowed):
        options["zipmap"] = False
    has_proba = callable(getattr(model, "predict_proba", None))
    if served == "decision_function":
        if allowed is not None and "raw_scores" in allowed:
            options["raw_scores"] = True
        elif has_proba or not classifier:
            raise BundleError(f"decision_function of {type(final).__name__} is not compiled by skl2onnx")
    onx, dtype = _convert(skl2onnx, model, {id(final): options} if options else {}, schema.shape[1], schema.dtype)
    outputs = [o.name for o in onx.graph.output]
    if classifier:
        scores = "decision_function" if served == "decision_function" or not has_proba else "predict_proba"
        by_method = {"predict": outputs[0]} | ({scores: outputs[1]} if len(outputs) > 1 else {})
        ravel = False
    else:
        by_method = {"predict": outputs[0]}
        ravel = True
    if served not in by_method:
        raise BundleError(f"the converted {type(final).__name__} has no output for method {served!r}")
    methods = (served, *(m for m in _METHODS if m in by_method and m != served and callable(getattr(model, m, None))))
    (bundle_dir / "model").mkdir(exist_ok=True)
    (bundle_dir / "model" / "model.onnx").write_bytes(onx.SerializeToString())
    double = all(_elem_type(o) == _DOUBLE for o in onx.graph.output if _elem_type(o) in (_FLOAT, _DOUBLE))
    onnx_options: dict[str, Any] = {"outputs": by_method, "method": served}
    if ravel:
        onnx_options["ravel"] = True
    return Conversion(
        artifact="model/model.onnx",
        options=onnx_options,
        packages=("onnxruntime", "numpy"),
        files=("model/model.onnx",),
        converter=f"skl2onnx {skl2onnx.__version__}",
        opset=OPSET,
        methods=methods,
        tolerance=1e-9 if double else 1e-5,
        extra={"input_dtype": dtype},
    )


def input_dtypes(schema_dtype: str) -> tuple[str, ...]:
    """The graph input dtypes to try, best first: the schema's own float (integers go in as float64)."""
    return ("float32",) if schema_dtype == "float32" else ("float64", "float32")


_FLOAT, _DOUBLE = 1, 11  # onnx.TensorProto.FLOAT / DOUBLE


def _elem_type(output: Any) -> int:
    return int(output.type.tensor_type.elem_type)


def _convert(skl2onnx: Any, model: Any, options: dict[int, Any], features: int, schema_dtype: str) -> tuple[Any, str]:
    """The ONNX model, tried with each input dtype in turn while the converter refuses the dtype itself."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    tensor_types = {"float64": DoubleTensorType, "float32": FloatTensorType}
    error: Exception | None = None
    for dtype in input_dtypes(schema_dtype):
        try:
            onx = skl2onnx.convert_sklearn(
                model, initial_types=[("X", tensor_types[dtype]([None, features]))], options=options,
                target_opset=_TARGET_OPSET,
            )  # fmt: skip
        except Exception as exc:
            if dtype == "float64" and "double" in str(exc).lower():
                error = exc
                continue  # e.g. LinearSVC: "post_transform 'NONE' is not supported with double"
            raise
        return onx, dtype
    assert error is not None
    raise error


def _allowed_options(estimator: Any) -> set[str] | None:
    """The options skl2onnx's converter of ``estimator`` takes (zipmap is not one of LinearSVC's); None: unknown."""
    try:
        from skl2onnx._supported_operators import sklearn_operator_name_map
        from skl2onnx.common._registration import get_converter

        allowed = get_converter(sklearn_operator_name_map[type(estimator)]).get_allowed_options()
    except Exception:  # private modules, or an estimator skl2onnx does not know (the conversion says which)
        return None
    return set(allowed or ())
