"""``shipyard monitor report``: one self-contained HTML page (and its PNGs) from a results directory.

Reads what ``check`` and ``quality`` wrote (``drift.json``, ``constraint_violations.json``, ``quality.json``,
``quality_violations.json``) and draws, with matplotlib: drift per feature against its threshold, baseline
vs current histograms of the drifted (and closest-to-drifting) features, drift scores per time window,
and model-quality metrics per window. The PNGs are written next to the page and embedded in it (base64),
so the page can be mailed or attached to a ticket on its own.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from shipyard.errors import MonitorError
from shipyard.monitor.problems import ArgumentError

__all__ = ["ReportResult", "load_results", "make_report"]

_MAX_HISTOGRAMS = 9
_MAX_LINES = 8


@dataclass
class ReportResult:
    html_path: Path
    images: list[Path]
    drift: dict[str, Any] | None
    quality: dict[str, Any] | None
    violations: list[dict[str, Any]] = field(default_factory=list)
    quality_violations: list[dict[str, Any]] = field(default_factory=list)


def _read(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise MonitorError(f"{path}: not valid JSON ({exc})") from None


def load_results(results: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None, list[Any], list[Any]]:
    """drift.json, quality.json and both violation lists from a results directory (``None`` / ``[]`` if absent)."""
    if not results.is_dir():
        raise ArgumentError("results", str(results), "no such directory")
    drift = _read(results / "drift.json")
    quality = _read(results / "quality.json")
    if drift is None and quality is None:
        raise MonitorError(
            f"{results} holds neither drift.json nor quality.json: run `shipyard monitor check` or `quality`"
        )
    violations = (_read(results / "constraint_violations.json") or {}).get("violations", [])
    quality_violations = (_read(results / "quality_violations.json") or {}).get("violations", [])
    return drift, quality, violations, quality_violations


def ratio(entry: dict[str, Any]) -> float:
    """How far a feature is from its threshold: > 1 means drift (for tests: alpha ÷ adjusted p)."""
    score, threshold = entry.get("score"), entry.get("threshold") or 0.0
    if score is None:
        return 0.0
    if entry.get("method") in ("ks", "chi_squared"):
        p = entry.get("p_adjusted", score)
        return math.inf if p <= 0 else float(threshold) / float(p)
    return math.inf if threshold <= 0 else float(score) / float(threshold)


def make_report(results: Path, out: Path | None = None) -> ReportResult:
    """Write ``report.html`` (default: in ``results``) and ``report/*.png``; returns what was drawn."""
    import matplotlib

    matplotlib.use("Agg")
    drift, quality, violations, quality_violations = load_results(results)
    page = out or results / "report.html"
    image_dir = page.parent / "report"
    image_dir.mkdir(parents=True, exist_ok=True)
    images: list[tuple[str, Path]] = []
    sections: list[str] = []
    if drift is not None:
        sections.append(_drift_section(drift, violations, image_dir, images))
    if quality is not None:
        sections.append(_quality_section(quality, quality_violations, image_dir, images))
    page.write_text(_page(sections, drift, quality, violations, quality_violations), encoding="utf-8")
    return ReportResult(page, [p for _, p in images], drift, quality, violations, quality_violations)


# -- figures -------------------------------------------------------------------------------------
def _save(figure: Any, path: Path, images: list[tuple[str, Path]]) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    path.write_bytes(buffer.getvalue())
    images.append((path.name, path))
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{encoded}">'


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "feature"


def _drift_section(
    drift: dict[str, Any], violations: list[dict[str, Any]], image_dir: Path, images: list[tuple[str, Path]]
) -> str:
    import matplotlib.pyplot as plt

    features = drift.get("features", [])
    ranked = sorted(features, key=ratio, reverse=True)
    parts = ["<h2>Data drift</h2>"]
    if features:
        height = max(2.5, 0.22 * len(features) + 1)
        figure, axis = plt.subplots(figsize=(8, height))
        names = [f["name"] for f in reversed(ranked)]
        values = [min(ratio(f), 10.0) for f in reversed(ranked)]
        colours = ["#c0392b" if f.get("drifted") else "#5d8aa8" for f in reversed(ranked)]
        axis.barh(names, values, color=colours)
        axis.axvline(1.0, color="black", linestyle="--", linewidth=1)
        axis.set_xlabel("score ÷ threshold  (> 1: drift; capped at 10)")
        axis.tick_params(axis="y", labelsize=7)
        axis.set_title("Drift per feature")
        parts.append(_save(figure, image_dir / "drift_scores.png", images))
        shown = [f for f in ranked if f.get("histogram")][:_MAX_HISTOGRAMS]
        if shown:
            parts.append("<h3>Baseline vs current</h3><div class='grid'>")
            for entry in shown:
                parts.append(_save(_histogram(entry), image_dir / f"hist_{_slug(entry['name'])}.png", images))
            parts.append("</div>")
    windows = drift.get("windows") or []
    if len(windows) > 1:
        figure, axis = plt.subplots(figsize=(8, 3.5))
        starts = [w["start"][5:16].replace("T", " ") for w in windows]
        for entry in ranked[:_MAX_LINES]:
            series = [w["scores"].get(entry["name"]) for w in windows]
            axis.plot(starts, [math.nan if v is None else v for v in series], marker=".", label=entry["name"])
        default = next((f["threshold"] for f in ranked if f.get("method") == "wasserstein"), None)
        if default is not None:
            axis.axhline(default, color="black", linestyle="--", linewidth=1, label="threshold")
        axis.set_ylabel("drift score")
        axis.set_title("Drift per window (most drifted features)")
        axis.tick_params(axis="x", labelrotation=45, labelsize=7)
        axis.legend(fontsize=7, ncols=3)
        parts.append(_save(figure, image_dir / "drift_over_time.png", images))
    parts.append(_violations_table(violations, "feature_name"))
    return "\n".join(parts)


def _histogram(entry: dict[str, Any]) -> Any:
    import matplotlib.pyplot as plt

    histogram = entry["histogram"]
    figure, axis = plt.subplots(figsize=(4.2, 2.8))
    if "edges" in histogram and len(histogram["edges"]) >= 2:
        edges = histogram["edges"]
        axis.stairs(histogram["baseline"], edges, fill=True, alpha=0.45, label="baseline", color="#5d8aa8")
        axis.stairs(histogram["current"], edges, linewidth=1.6, label="current", color="#c0392b")
        axis.set_ylabel("share of rows")
    else:
        values = [str(v)[:14] for v in histogram["values"]]
        positions = range(len(values))
        axis.bar([p - 0.2 for p in positions], histogram["baseline"], width=0.4, label="baseline", color="#5d8aa8")
        axis.bar([p + 0.2 for p in positions], histogram["current"], width=0.4, label="current", color="#c0392b")
        axis.set_xticks(list(positions), values, rotation=45, fontsize=7, ha="right")
    flag = "DRIFT" if entry.get("drifted") else "ok"
    score = entry.get("score")
    axis.set_title(
        f"{entry['name']}: {entry['method']} {score:.3g} ({flag})" if score is not None else entry["name"], fontsize=9
    )
    axis.legend(fontsize=7)
    return figure


def _quality_section(
    quality: dict[str, Any], violations: list[dict[str, Any]], image_dir: Path, images: list[tuple[str, Path]]
) -> str:
    import matplotlib.pyplot as plt

    kind = quality.get("problem_type", "classification")
    metrics = quality.get("multiclass_classification_metrics") or quality.get("regression_metrics") or {}
    parts = [f"<h2>Model quality ({html.escape(kind)})</h2>", "<table><tr><th>metric</th><th>value</th></tr>"]
    for name, value in metrics.items():
        if isinstance(value, dict) and "value" in value and value["value"] is not None:
            parts.append(f"<tr><td>{html.escape(name)}</td><td>{value['value']:.4f}</td></tr>")
    parts.append("</table>")
    windows = quality.get("windows") or []
    if len(windows) > 1:
        keys = ["accuracy", "weighted_f1", "precision", "recall"] if kind == "classification" else ["mae", "rmse"]
        figure, axis = plt.subplots(figsize=(8, 3.2))
        starts = [w["start"][5:16].replace("T", " ") for w in windows]
        for key in keys:
            axis.plot(starts, [w["metrics"].get(key, math.nan) for w in windows], marker=".", label=key)
        for key, limit in (quality.get("thresholds") or {}).items():
            axis.axhline(limit, linestyle="--", linewidth=1, color="black", label=f"{key} threshold")
        axis.set_title("Model quality per window")
        axis.tick_params(axis="x", labelrotation=45, labelsize=7)
        axis.legend(fontsize=7)
        parts.append(_save(figure, image_dir / "quality_over_time.png", images))
    matrix = metrics.get("confusion_matrix")
    if matrix and len(matrix) <= 20:
        labels = list(matrix)
        parts.append("<h3>Confusion matrix (rows: label, columns: prediction)</h3><table><tr><th></th>")
        parts.extend(f"<th>{html.escape(c)}</th>" for c in labels)
        parts.append("</tr>")
        for row in labels:
            cells = "".join(f"<td>{matrix[row].get(c, 0)}</td>" for c in labels)
            parts.append(f"<tr><th>{html.escape(row)}</th>{cells}</tr>")
        parts.append("</table>")
    parts.append(_violations_table(violations, "metric_name"))
    return "\n".join(parts)


def _violations_table(violations: list[dict[str, Any]], key: str) -> str:
    if not violations:
        return "<p class='ok'>No violations.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(str(v.get(key, '')))}</td><td>{html.escape(v.get('constraint_check_type', ''))}</td>"
        f"<td>{html.escape(v.get('description', ''))}</td></tr>"
        for v in violations
    )
    head = f"<tr><th>{key}</th><th>check</th><th>description</th></tr>"
    return f"<h3>Violations ({len(violations)})</h3><table>{head}{rows}</table>"


def _page(
    sections: list[str],
    drift: dict[str, Any] | None,
    quality: dict[str, Any] | None,
    violations: list[Any],
    quality_violations: list[Any],
) -> str:
    cards = []
    if drift is not None:
        drifted = sum(1 for f in drift.get("features", []) if f.get("drifted"))
        cards.append(f"<div class='card'><b>{drift.get('rows', 0):,}</b> rows checked</div>")
        cards.append(f"<div class='card'><b>{drifted}</b> of {len(drift.get('features', []))} features drifted</div>")
        span = f"{drift.get('since') or 'start'} → {drift.get('until') or 'now'}"
        cards.append(f"<div class='card'>{html.escape(span)}</div>")
    total = len(violations) + len(quality_violations)
    status = "bad" if total else "ok"
    cards.append(f"<div class='card {status}'><b>{total}</b> violations</div>")
    if quality is not None:
        cards.append(
            f"<div class='card'><b>{quality.get('dataset', {}).get('item_count', 0):,}</b> labelled rows</div>"
        )
    problems = []
    for document in (drift, quality):
        if document:
            problems.extend((document.get("problems") or {}).get("messages", []))
    problem_html = ""
    if problems:
        items = "".join(f"<li>{html.escape(m)}</li>" for m in problems[:30])
        problem_html = f"<h2>Input problems</h2><ul>{items}</ul>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shipyard monitoring report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
.cards {{ display: flex; gap: 1em; flex-wrap: wrap; }}
.card {{ border: 1px solid #ccc; border-radius: 6px; padding: 0.7em 1em; }}
.card.bad {{ border-color: #c0392b; color: #c0392b; }} .card.ok, p.ok {{ color: #27ae60; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
td, th {{ border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 0.5em; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>Shipyard monitoring report</h1>
<div class="cards">{"".join(cards)}</div>
{"".join(sections)}
{problem_html}
</body></html>
"""
