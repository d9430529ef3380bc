"""The anchor of bench/multimodel.py: a SageMaker inference toolkit handler service for scikit-learn models, as
the SageMaker scikit-learn container's is (``DefaultHandlerService`` over a ``Transformer`` whose default
handler loads ``model/model.joblib``), run by multi-model-server. Same JSON in and out as Shipyard's bundles."""

from __future__ import annotations

import json
import os
from typing import Any

import joblib
import numpy as np
from sagemaker_inference.default_handler_service import DefaultHandlerService
from sagemaker_inference.default_inference_handler import DefaultInferenceHandler
from sagemaker_inference.transformer import Transformer


class SklearnInferenceHandler(DefaultInferenceHandler):  # type: ignore[misc]
    def default_model_fn(self, model_dir: str, context: Any = None) -> Any:
        return joblib.load(os.path.join(model_dir, "model", "model.joblib"))

    def default_input_fn(self, input_data: Any, content_type: str, context: Any = None) -> Any:
        return np.asarray(json.loads(input_data)["instances"], dtype=np.float64)

    def default_predict_fn(self, data: Any, model: Any, context: Any = None) -> Any:
        return model.predict(data)

    def default_output_fn(self, prediction: Any, accept: str, context: Any = None) -> Any:
        return json.dumps({"predictions": np.asarray(prediction).tolist()})


class HandlerService(DefaultHandlerService):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(transformer=Transformer(default_inference_handler=SklearnInferenceHandler()))


_service = HandlerService()  # one per MMS worker process, and MMS runs one process per model


def handle(data: Any, context: Any) -> Any:
    """MMS's entry point: called once with no data to load the model, then per batch of requests."""
    if data is None:
        _service.initialize(context)
        return None
    return _service.handle(data, context)
