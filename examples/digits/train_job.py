"""Train the digits classifier as a SageMaker training job (the framework containers' script style).

Runs unchanged in SageMaker's scikit-learn container and under ``shipyard train``: hyperparameters arrive as
``--C 0.5 --max-iter 200``, the folders as the ``SM_*`` variables. Data: ``digits.npz`` (``X``, ``y``) in the
train channel (``python make_data.py`` writes it) and, optionally, the validation channel.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

import shipyard


def load(channel: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    if not channel or not Path(channel).is_dir():
        return None
    files = sorted(Path(channel).glob("*.npz"))
    if not files:
        return None
    with np.load(files[0]) as data:
        return data["X"], data["y"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--max-iter", "--max_iter", dest="max_iter", type=int, default=2000)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    args, _ = parser.parse_known_args()

    train = load(args.train)
    if train is None:
        raise SystemExit(f"no digits.npz in the train channel {args.train!r}")
    X, y = train
    model = LogisticRegression(C=args.C, max_iter=args.max_iter).fit(X, y)
    shipyard.log_metric("train_accuracy", model.score(X, y))
    validation = load(args.validation)
    if validation is not None:
        accuracy = model.score(*validation)
        shipyard.log_metric("accuracy", accuracy)
        print(f"validation error: {1 - accuracy:.4f}", flush=True)  # for --metric 'error=validation error: ([0-9.]+)'
    shipyard.save(model, args.model_dir, example=X[:5], name="digits", version="1", overwrite=True)
    print(f"saved the model to {args.model_dir}", flush=True)


if __name__ == "__main__":
    main()
