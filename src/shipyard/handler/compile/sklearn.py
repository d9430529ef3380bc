"""scikit-learn estimators and pipelines → ONNX with skl2onnx.

The graph takes the schema's dtype (a float64 schema → DoubleTensorType: float32 graphs flip the labels of rows
whose votes tie), retried as float32 where a converter refuses double or onnxruntime cannot load the double graph
(tree ensembles, Imputer). Classifiers keep their labels (strings too; bool and float labels are cast back from
the graph's int64) and probabilities (ZipMap off wherever the converter has the option); ``decision_function`` is
served from a ``raw_scores`` graph; answers take sklearn's shapes (a regressor's or a binary score's ``[N, 1]``
flattened, column 1 of a binary ``[N, 2]`` score). DataFrame input (a columns schema) is not compiled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

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
    onx, dtype, session = _convert(
        skl2onnx, model, {id(final): options} if options else {}, schema.shape[1], schema.dtype
    )
    outputs = [o.name for o in onx.graph.output]
    if classifier:
        scores = "decision_function" if served == "decision_function" or not has_proba else "predict_proba"
        by_method = {"predict": outputs[0]} | ({scores: outputs[1]} if len(outputs) > 1 else {})
    else:
        by_method = {"predict": outputs[0]}
    if served not in by_method:
        raise BundleError(f"the converted {type(final).__name__} has no output for method {served!r}")
    methods = (served, *(m for m in _METHODS if m in by_method and m != served and callable(getattr(model, m, None))))
    onnx_options: dict[str, Any] = {"outputs": by_method, "method": served}
    onnx_options |= _shapes(model, final, session, by_method, schema.shape[1], dtype)
    labels = getattr(final, "classes_", None)
    if classifier and labels is not None and np.asarray(labels).dtype.kind in "bfU":
        # the graph answers int64 or generic string labels: cast back to the classes' own dtype, so every
        # encoding (application/x-npy too) answers what the native form answers
        onnx_options["label_dtype"] = str(np.asarray(labels).dtype)
    (bundle_dir / "model").mkdir(exist_ok=True)
    (bundle_dir / "model" / "model.onnx").write_bytes(onx.SerializeToString())
    double = all(_elem_type(o) == _DOUBLE for o in onx.graph.output if _elem_type(o) in (_FLOAT, _DOUBLE)) and not any(
        node.domain == "ai.onnx.ml" and node.op_type not in _EXACT_ML_OPS for node in onx.graph.node
    )  # onnxruntime's ai.onnx.ml operators (SVMClassifier, Scaler, …) compute in float whatever their types say
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


_EXACT_ML_OPS = frozenset({"ZipMap", "LabelEncoder", "ArrayFeatureExtractor", "CastMap"})
_FLOAT, _DOUBLE = 1, 11  # onnx.TensorProto.FLOAT / DOUBLE


def _elem_type(output: Any) -> int:
    return int(output.type.tensor_type.elem_type)


def _convert(
    skl2onnx: Any, model: Any, options: dict[int, Any], features: int, schema_dtype: str
) -> tuple[Any, str, Any]:
    """The ONNX model, its input dtype and an onnxruntime session of it, tried with each input dtype in turn while
    the converter refuses the dtype or onnxruntime cannot load (or run) the graph it wrote: tree ensembles and
    Imputer are float-only in onnxruntime, though skl2onnx writes them in double."""
    import onnxruntime as ort
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    tensor_types = {"float64": DoubleTensorType, "float32": FloatTensorType}
    dtypes = input_dtypes(schema_dtype)
    for dtype in dtypes:
        last = dtype == dtypes[-1]
        try:
            onx = skl2onnx.convert_sklearn(
                model, initial_types=[("X", tensor_types[dtype]([None, features]))], options=options,
                target_opset=_TARGET_OPSET,
            )  # fmt: skip
        except Exception as exc:
            if not last and "double" in str(exc).lower():
                continue  # e.g. LinearSVC: "post_transform 'NONE' is not supported with double"
            raise
        try:
            session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
            session.run(None, {session.get_inputs()[0].name: np.zeros((1, features), dtype=dtype)})
        except Exception as exc:
            if not last:
                continue
            raise BundleError(f"onnxruntime cannot run the {dtype} graph skl2onnx wrote: {_first(exc)}") from exc
        return onx, dtype, session
    raise AssertionError("unreachable: the last dtype returns or raises")


def _shapes(
    model: Any, final: Any, session: Any, by_method: dict[str, str], features: int, dtype: str
) -> dict[str, Any]:
    """``ravel`` / ``column`` options that give each method sklearn's shape: a binary classifier's
    decision_function is one score per row (the graph: ``[N, 1]``, or ``[N, 2]`` of which the column nearer the
    native score on a zero row: LogisticRegression's raw scores are ``[-s, s]``, SVC's ``[s, -s]``), a
    regressor's predict ``(N,)`` unless it was fitted on a 2-D ``y`` (found by asking the native model)."""
    row = np.zeros((1, features), dtype=dtype)
    names = [o.name for o in session.get_outputs()]
    answers = dict(zip(names, session.run(None, {session.get_inputs()[0].name: row}), strict=True))
    ravel: list[str] = []
    column: dict[str, int] = {}
    for method, output in by_method.items():
        graph = np.asarray(answers[output])
        native = _native_answer(model, method, features)
        shape = tuple(native.shape[1:]) if native is not None else _sklearn_shape(final, method)
        if shape == () and graph.shape[1:] == (1,):
            ravel.append(method)
        elif shape == () and graph.shape[1:] == (2,) and method == "decision_function":
            if native is None or native.dtype.kind != "f":
                column[method] = 1
            else:
                column[method] = int(np.argmin(np.abs(graph[0].astype(np.float64) - float(native[0]))))
    return ({"ravel": ravel} if ravel else {}) | ({"column": column} if column else {})


def _native_answer(model: Any, method: str, features: int) -> np.ndarray | None:
    """The native ``method``'s answer on a zero row; None when the model refuses it (an unknown category)."""
    try:
        return np.asarray(getattr(model, method)(np.zeros((1, features))))
    except Exception:
        return None


def _sklearn_shape(final: Any, method: str) -> tuple[int, ...] | None:
    """The shape of one row of ``method``'s answer, from what the estimator is (None: not known)."""
    classes = getattr(final, "classes_", None)
    if method == "predict":
        return () if classes is not None or getattr(final, "n_outputs_", 1) == 1 else None
    if method == "decision_function" and classes is not None and len(classes) == 2:
        return ()
    return None


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _allowed_options(estimator: Any) -> set[str] | None:
    """The options skl2onnx's converter of ``estimator`` takes (zipmap is not one of LinearSVC's); None: unknown."""
    try:
        from skl2onnx._supported_operators import sklearn_operator_name_map
        from skl2onnx.common._registration import get_converter

        allowed = get_converter(sklearn_operator_name_map[type(estimator)]).get_allowed_options()
    except Exception:  # private modules, or an estimator skl2onnx does not know (the conversion says which)
        return None
    return set(allowed or ())
