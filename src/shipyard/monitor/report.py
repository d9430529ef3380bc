"""``shipyard monitor report``: one self-contained HTML page (and its PNGs) from a results directory.

Reads what ``check`` and ``quality`` wrote (``drift.json``, ``constraint_violations.json``, ``quality.json``,
``quality_violations.json``) and draws, with matplotlib: drift per feature against its threshold, baseline
vs current histograms of the drifted (and closest-to-drifting) features, drift scores per time window,
and model-quality metrics per window. The PNGs are written next to the page and embedded in it (base64),
so the page can be mailed or attached to a ticket on its own.

Bias and explainability come from Clarify's ``analysis.json``: in ``bias/`` and ``explain/`` (what ``check``
writes with a bias or an explain baseline, and what ``baseline --bias/--explain`` writes), or at the
directory's top (``monitor bias --out DIR``, ``monitor explain --out DIR``). Bias: a table per facet of
every metric, with its allowed band (the thresholds, or — for bias drift — the baseline's distance from the
ideal on either side of it) and the violations; explainability: a bar chart of the global SHAP values,
baseline next to current when a check compared them, and the nDCG of the ranking.
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

__all__ = ["ClarifyPart", "ReportResult", "Results", "load_results", "make_report"]

_MAX_HISTOGRAMS = 9
_MAX_LINES = 8
_MAX_SHAP_FEATURES = 20


@dataclass
class ReportResult:
    html_path: Path
    images: list[Path]
    drift: dict[str, Any] | None
    quality: dict[str, Any] | None
    violations: list[dict[str, Any]] = field(default_factory=list)
    quality_violations: list[dict[str, Any]] = field(default_factory=list)
    bias: ClarifyPart | None = None
    explain: ClarifyPart | None = None


@dataclass
class ClarifyPart:
    """A bias or an explainability analysis.json, and how it was judged (``drift``: by a check)."""

    kind: str  # "bias" or "explain"
    document: dict[str, Any]
    violations: list[dict[str, Any]]
    drift: dict[str, Any] | None = None  # the check's bias/ or explain/ drift.json (baseline_analysis in it)

    @property
    def baseline(self) -> dict[str, Any] | None:
        return None if self.drift is None else self.drift.get("baseline_analysis")


@dataclass
class Results:
    """What a results directory holds (``None`` / ``[]`` for what it lacks)."""

    drift: dict[str, Any] | None
    quality: dict[str, Any] | None
    violations: list[Any]
    quality_violations: list[Any]
    bias: ClarifyPart | None = None
    explain: ClarifyPart | None = None


def _read(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise MonitorError(f"{path}: not valid JSON ({exc})") from None


def load_results(results: Path) -> Results:
    """drift.json, quality.json, both violation lists, and the bias and explainability analyses (in ``bias/``,
    ``explain/`` or at the top) of a results directory."""
    if not results.is_dir():
        raise ArgumentError("results", str(results), "no such directory")
    drift = _read(results / "drift.json")
    if drift is not None and "features" not in drift:
        drift = None  # not a data-drift document
    quality = _read(results / "quality.json")
    bias = _clarify(results / "bias", "bias")
    explain = _clarify(results / "explain", "explain")
    top = _read(results / "analysis.json")
    if isinstance(top, dict):
        kind = "explain" if "explanations" in top else "bias"
        violations_file = results / ("bias_violations.json" if kind == "bias" else "constraint_violations.json")
        part = ClarifyPart(kind, top, (_read(violations_file) or {}).get("violations", []), None)
        bias, explain = (part, explain) if kind == "bias" else (bias, part)
    if drift is None and quality is None and bias is None and explain is None:
        raise MonitorError(
            f"{results} holds neither drift.json, quality.json nor a Clarify analysis.json: run "
            "`shipyard monitor check`, `quality`, `bias` or `explain`"
        )
    violations = (_read(results / "constraint_violations.json") or {}).get("violations", []) if drift else []
    quality_violations = (_read(results / "quality_violations.json") or {}).get("violations", [])
    return Results(drift, quality, violations, quality_violations, bias, explain)


def _clarify(directory: Path, kind: str) -> ClarifyPart | None:
    document = _read(directory / "analysis.json")
    if not isinstance(document, dict):
        return None
    violations = (_read(directory / "constraint_violations.json") or {}).get("violations", [])
    return ClarifyPart(kind, document, violations, _read(directory / "drift.json"))


def ratio(entry: dict[str, Any]) -> float:
    """How far a feature is from its threshold: > 1 means drift (for tests: alpha ÷ adjusted p)."""
    score, threshold = entry.get("score"), entry.get("threshold") or 0.0
    if score is None:
        return 0.0
    if entry.get("method") in ("ks", "chi_squared"):
        p = entry.get("p_adjusted", score)
        return math.inf if p <= 0 else float(threshold) / float(p)
    return math.inf if threshold <= 0 else float(score) / float(threshold)


def make_report(
    results: Path, out: Path | None = None, *, thresholds: dict[str, tuple[float, float]] | None = None
) -> ReportResult:
    """Write ``report.html`` (default: in ``results``) and ``report/*.png``; returns what was drawn
    (``thresholds``: the bands a bias analysis was judged by, when not the default ones)."""
    import matplotlib

    matplotlib.use("Agg")
    loaded = load_results(results)
    drift, quality, violations, quality_violations = (
        loaded.drift, loaded.quality, loaded.violations, loaded.quality_violations,
    )  # fmt: skip
    page = out or results / "report.html"
    image_dir = page.parent / "report"
    image_dir.mkdir(parents=True, exist_ok=True)
    images: list[tuple[str, Path]] = []
    sections: list[str] = []
    if drift is not None:
        sections.append(_drift_section(drift, violations, image_dir, images))
    if quality is not None:
        sections.append(_quality_section(quality, quality_violations, image_dir, images))
    if loaded.bias is not None:
        sections.append(_bias_section(loaded.bias, thresholds))
    if loaded.explain is not None:
        sections.append(_explain_section(loaded.explain, image_dir, images))
    clarify = [v for part in (loaded.bias, loaded.explain) if part is not None for v in part.violations]
    page.write_text(_page(sections, drift, quality, violations + clarify, quality_violations), encoding="utf-8")
    return ReportResult(
        page, [p for _, p in images], drift, quality, violations, quality_violations, loaded.bias, loaded.explain
    )


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


def _bias_section(part: ClarifyPart, given: dict[str, tuple[float, float]] | None = None) -> str:
    """One table per facet: every metric, its allowed band, and whether it is a violation."""
    from shipyard.monitor.clarify_drift import bias_metrics, ideal

    baseline = part.baseline
    reference = {key[:4]: key[4] for key in bias_metrics(baseline or {})}
    tolerance = float((part.drift or {}).get("tolerance", 0.0))
    flagged = {(v.get("facet"), v.get("facet_value"), v.get("metric_name")) for v in part.violations}
    title = "Bias drift (current vs baseline)" if baseline is not None else "Bias"
    parts = [f"<h2>{title}</h2>"]
    if baseline is not None:
        parts.append(
            "<p>A metric drifts when it is farther from the ideal (1 for DI, 0 for the others) than the "
            f"baseline's value{f' by more than {tolerance:g}' if tolerance else ''}, beyond sampling error: "
            "the band is the baseline's distance from the ideal, on either side of it, and a value past its "
            "edge is a violation only when more than the critical number of standard errors past it "
            "(Bonferroni over the metrics judged; see docs/monitor.md, section 8).</p>"
        )
    else:
        parts.append(
            "<p>A metric outside its band is a violation only when it is outside beyond sampling error (the "
            "rate metrics are tested at the band's edge, Bonferroni over the run; see docs/monitor.md, "
            "section 6); one outside its band within sampling error is not marked here (the command reports it "
            "as not significant).</p>"
        )
    thresholds = {} if baseline is not None else (given if given is not None else _default_thresholds())
    tables: dict[tuple[str, str], list[str]] = {}
    for stage, facet, value_or_threshold, name, value in bias_metrics(part.document):
        band = "-"
        base = reference.get((stage, facet, value_or_threshold, name))
        if base is not None:
            width = abs(base - ideal(name)) + tolerance
            band = f"[{ideal(name) - width:.4g}, {ideal(name) + width:.4g}]"
        elif name in thresholds:
            low, high = thresholds[name]
            band = f"[{low:g}, {high:g}]"
        bad = (facet, value_or_threshold, name) in flagged
        cells = [
            html.escape(name),
            html.escape(stage.split("_")[0]),
            "-" if value is None else f"{value:.4f}",
            *([] if baseline is None else ["-" if base is None else f"{base:.4f}"]),
            band,
            "<b class='bad'>violation</b>" if bad else "",
        ]
        tables.setdefault((facet, value_or_threshold), []).append(
            "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        )
    head = ["metric", "stage", "current" if baseline is not None else "value"]
    head += ([] if baseline is None else ["baseline"]) + ["allowed", ""]
    for (facet, value_or_threshold), rows in tables.items():
        parts.append(f"<h3>Facet {html.escape(facet)} = {html.escape(value_or_threshold)}</h3>")
        parts.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>")
    parts.append(_violations_table(part.violations, "metric_name"))
    return "\n".join(parts)


def _default_thresholds() -> dict[str, tuple[float, float]]:
    try:
        from shipyard.monitor.bias import DEFAULT_THRESHOLDS
    except ImportError:  # pragma: no cover - the bias module is part of the monitor package
        return {}
    return dict(DEFAULT_THRESHOLDS)


def _explain_section(part: ClarifyPart, image_dir: Path, images: list[tuple[str, Path]]) -> str:
    """A bar chart of global |SHAP| per label (baseline next to current), and the nDCG of the ranking."""
    import matplotlib.pyplot as plt

    from shipyard.monitor.clarify_drift import global_shap

    current, baseline = global_shap(part.document), global_shap(part.baseline or {})
    scores = (part.drift or {}).get("ndcg") or {}
    compared = bool(baseline)
    parts = ["<h2>Feature attribution drift</h2>" if compared else "<h2>Explainability (global SHAP values)</h2>"]
    for label, values in current.items():
        base = baseline.get(label, {})
        ranked = sorted(values, key=lambda f: -abs(values[f]))[:_MAX_SHAP_FEATURES]
        if compared:
            ranked = sorted(set(ranked) | set(sorted(base, key=lambda f: -abs(base[f]))[:_MAX_SHAP_FEATURES]),
                            key=lambda f: -abs(base.get(f, 0.0)))[:_MAX_SHAP_FEATURES]  # fmt: skip
        shown = list(reversed(ranked))
        figure, axis = plt.subplots(figsize=(7, max(2.5, 0.28 * len(shown) + 1)))
        positions = range(len(shown))
        if compared:
            axis.barh([p + 0.2 for p in positions], [abs(base.get(f, 0.0)) for f in shown], height=0.4,
                      label="baseline", color="#5d8aa8")  # fmt: skip
            axis.barh([p - 0.2 for p in positions], [abs(values.get(f, 0.0)) for f in shown], height=0.4,
                      label="current", color="#c0392b")  # fmt: skip
            axis.legend(fontsize=7)
        else:
            axis.barh(list(positions), [abs(values[f]) for f in shown], color="#5d8aa8")
        axis.set_yticks(list(positions), [str(f)[:24] for f in shown], fontsize=7)
        axis.set_xlabel("|global SHAP value|")
        score = scores.get(label)
        axis.set_title(f"{label}" + (f": nDCG {score:.3f}" if score is not None else ""), fontsize=9)
        parts.append(_save(figure, image_dir / f"shap_{_slug(label)}.png", images))
    if scores:
        threshold = (part.drift or {}).get("threshold")
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td></tr>" for k, v in scores.items())
        parts.append(f"<table><tr><th>label</th><th>nDCG (drift below {threshold})</th></tr>{rows}</table>")
    if compared or part.violations:
        parts.append(_violations_table(part.violations, "label"))
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
