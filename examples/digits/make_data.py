"""Export scikit-learn's digits data as training channels: CHANNELS/train/digits.npz, CHANNELS/validation/digits.npz.

python examples/digits/make_data.py [CHANNELS]      # default: build/digits-data

Each file holds ``X`` (n × 64 pixel values) and ``y`` (the digit). Then:

    shipyard train examples/digits/train_job.py --data train=build/digits-data/train \\
        --data validation=build/digits-data/validation --hp C=0.5 --metric accuracy
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main(output: str = "build/digits-data") -> Path:
    X, y = load_digits(return_X_y=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.25, random_state=0)
    root = Path(output)
    for channel, (features, labels) in {"train": (X_train, y_train), "validation": (X_valid, y_valid)}.items():
        (root / channel).mkdir(parents=True, exist_ok=True)
        np.savez(root / channel / "digits.npz", X=features, y=labels)
    print(f"wrote {root}/train and {root}/validation")
    return root


if __name__ == "__main__":
    main(*sys.argv[1:2])
