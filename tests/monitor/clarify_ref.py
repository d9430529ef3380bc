"""smclarify 0.5's bias_report on Parquet (and CSV: pandas.read_csv) files, run in a subprocess (smclarify
lives in .clarify-ref/ only).

    PYTHONPATH=.clarify-ref python tests/monitor/clarify_ref.py cases.json   # prints one JSON list

``cases.json`` is a list of ``{"data": "x.parquet", "label": "y", "positive": ["1"], "facet": "gender",
"values": ["female"] | null, "predicted": "pred" | null, "group": "region" | null, "metrics": ["all"],
"drop": [columns left out of the frame]}``; each case's answer is ``{"pre": [...], "post": [...],
"label_value_or_threshold": "..."}`` (bias_report's lists), or ``{"error": "..."}`` when the call failed.
Values and thresholds are given as strings, as Shipyard's CLI takes them. Text columns are cast to
``object`` first (pandas 3's ``str`` dtype trips smclarify's typing, see docs/monitor.md).
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any


def _frame(path: str, cache: dict[str, Any]) -> Any:
    import pandas as pd

    if path not in cache:
        frame = pd.read_csv(path) if path.endswith(".csv") else pd.read_parquet(path)
        for name in frame.columns:
            if not (pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(frame[name])):
                frame[name] = frame[name].astype(object)
        cache[path] = frame
    return cache[path]


def run_case(case: dict[str, Any], cache: dict[str, Any]) -> dict[str, Any]:
    from smclarify.bias.report import FacetColumn, LabelColumn, StageType, bias_report, label_value_or_threshold

    frame = _frame(case["data"], cache).drop(columns=case.get("drop") or [])
    label = case["label"]
    group = frame[case["group"]] if case.get("group") else None
    metrics = case.get("metrics") or ["all"]

    def facet() -> Any:
        return FacetColumn(case["facet"], list(case["values"]) if case.get("values") else None)

    def label_column() -> Any:
        return LabelColumn(label, frame[label], list(case["positive"]))

    answer: dict[str, Any] = {}
    try:
        answer["label_value_or_threshold"] = label_value_or_threshold(frame[label], list(case["positive"]))
        pre = [m for m in metrics if m in ("all", "CDDL", "CI", "DPL", "JS", "KL", "KS", "LP", "TVD")]
        if pre:
            answer["pre"] = bias_report(
                frame, facet(), label_column(), StageType.PRE_TRAINING, metrics=pre, group_variable=group
            )
        post = [m for m in metrics if m not in ("CDDL", "CI", "DPL", "JS", "KL", "KS", "LP", "TVD")]
        if case.get("predicted") and post:
            predicted = LabelColumn(case["predicted"], frame[case["predicted"]], None)
            answer["post"] = bias_report(
                frame, facet(), label_column(), StageType.POST_TRAINING, predicted, metrics=post, group_variable=group
            )
    except Exception as exc:  # the whole call failed: the test says which case
        answer["error"] = f"{type(exc).__name__}: {exc}"
    return answer


def main(argv: list[str]) -> int:
    import logging

    logging.disable(logging.CRITICAL)  # smclarify logs every metric failure with its traceback
    warnings.simplefilter("ignore")
    with open(argv[1]) as handle:
        cases = json.load(handle)
    cache: dict[str, Any] = {}
    json.dump([run_case(case, cache) for case in cases], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
