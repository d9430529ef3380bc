"""Write the artifacts the tutorial handler loads: an iris classifier and its label encoder.

python examples/tutorial-handler/prepare.py [DIR]     # default: this directory
"""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import LabelEncoder


def main(directory: str | None = None) -> Path:
    target = Path(directory) if directory else Path(__file__).resolve().parent
    iris = load_iris()
    names = [iris.target_names[i] for i in iris.target]
    encoder = LabelEncoder().fit(names)
    model = LogisticRegression(max_iter=1000).fit(iris.data, encoder.transform(names))
    joblib.dump(model, target / "model.joblib")
    joblib.dump(encoder, target / "label_encoder.pkl")
    return target


if __name__ == "__main__":
    print(f"wrote model.joblib and label_encoder.pkl to {main(*sys.argv[1:2])}")
