"""Train LogisticRegression on scikit-learn's digits data and save it as a Shipyard bundle.

python examples/digits/train.py [OUTPUT_DIR]     # default: build/digits-bundle
"""

from __future__ import annotations

import sys
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

import shipyard


def main(output: str = "build/digits-bundle") -> Path:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    model = LogisticRegression(max_iter=2000).fit(X_train, y_train)
    print(f"test accuracy: {model.score(X_test, y_test):.3f}")
    bundle = shipyard.save(model, output, example=X_test[:5], name="digits", version="1", overwrite=True)
    print(f"saved {bundle.manifest.flavor} bundle to {bundle.path}")
    return bundle.path


if __name__ == "__main__":
    main(*sys.argv[1:2])
