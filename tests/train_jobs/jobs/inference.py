"""A SageMaker handler for contract_job.py's model.json: answers with the hyperparameters it was trained with."""

import json
import os


def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as handle:
        return json.load(handle)


def predict_fn(data, model):
    return {"argv": model["argv"], "rows": len(data)}
