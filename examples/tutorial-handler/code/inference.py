# A SageMaker handler written the way the usual tutorial writes it, by hand, for the inference toolkit.
# Shipyard serves it unchanged: `shipyard serve examples/tutorial-handler` (after `python prepare.py`).
import json
import os

import joblib
import numpy as np


def model_fn(model_dir):
    """Load the model and the label encoder from the model directory."""
    model = joblib.load(os.path.join(model_dir, "model.joblib"))
    label_encoder = joblib.load(os.path.join(model_dir, "label_encoder.pkl"))
    return {"model": model, "label_encoder": label_encoder}


def input_fn(input_data, content_type):
    """Parse the request body."""
    if content_type == "application/json":
        data = json.loads(input_data)
        return np.array(data["features"], dtype=float)
    raise ValueError(f"Unsupported content type: {content_type}")


def predict_fn(features, artifacts):
    """Predict and turn class ids back into names."""
    predictions = artifacts["model"].predict(features)
    labels = artifacts["label_encoder"].inverse_transform(predictions)
    probabilities = artifacts["model"].predict_proba(features).max(axis=1)
    return [{"label": str(label), "score": round(float(p), 4)} for label, p in zip(labels, probabilities)]


def output_fn(prediction, accept):
    """Format the response."""
    return json.dumps({"predictions": prediction}), accept
