"""The runs ``shipyard runs`` lists and compares, read from MLflow or from Shipyard's own run records.

``source="mlflow"`` reads the tracking store (``search_runs``, and ``get_metric_history`` for a series): the runs
Shipyard's tracker wrote there (tagged ``shipyard.run``). ``source="local"`` reads ``HOME/runs/*/run.json``
through :class:`~shipyard.experiments.record.RunStore`, with the same params and tags the tracker would have written
(:mod:`shipyard.experiments.fields`), so both give the same document. ``source=None`` takes MLflow when it is
installed and its store exists, else the records, and :attr:`RunList.note` says why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import SpecError, UsageError
from shipyard.experiments.fields import (
    PREFIX,
    TAG_RUN,
    final_tags,
    hyperparameters_of,
    next_step,
    run_params,
    shipyard_status,
    start_tags,
)
from shipyard.experiments.record import RunStore, TrainRun, check_run_name
from shipyard.experiments.store import INSTALL_HINT, client_for, mlflow_available, probe, unreachable
from shipyard.experiments.sync import wait_for_pending
from shipyard.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

__all__ = ["SOURCES", "Comparison", "RunDetail", "RunList", "RunSummary", "SeriesPoint", "compare", "list_runs",
           "metric_series", "show_run"]  # fmt: skip

SOURCES = ("mlflow", "local")


@dataclass(frozen=True)
class SeriesPoint:
    step: int
    value: float
    timestamp_ms: int


@dataclass
class RunSummary:
    """One run as listed: what it was given, how it ended, what it measured (each metric's last value)."""

    name: str
    experiment: str
    status: str  # Completed, Failed, Stopped, InProgress (SageMaker's words)
    target: str | None
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    hyperparameters: dict[str, str]
    metrics: dict[str, float]
    cost_usd: float | None
    params: dict[str, str] = field(default_factory=dict)  # everything MLflow's params hold
    tags: dict[str, str] = field(default_factory=dict)
    tracking_run_id: str | None = None

    def tag(self, key: str) -> str | None:
        return self.tags.get(PREFIX + key)

    @property
    def data_versions(self) -> dict[str, str]:
        """Each channel's data version, from the ``shipyard.data.<channel>.version`` tags."""
        return {k[len("shipyard.data.") : -len(".version")]: v for k, v in self.tags.items()
                if k.startswith("shipyard.data.") and k.endswith(".version")}  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """One run in ``shipyard runs --output json`` (docs/schemas/runs.v1.json)."""
        return {
            "name": self.name,
            "experiment": self.experiment,
            "status": self.status,
            "target": self.target,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "duration_s": self.duration_s,
            "hyperparameters": dict(self.hyperparameters),
            "metrics": {k: _finite(v) for k, v in self.metrics.items()},
            "cost_usd": self.cost_usd,
            "billable_seconds": _number(self.tag("billable_seconds")),
            "instance_type": self.params.get(PREFIX + "instance_type"),
            "instance_count": _int(self.params.get(PREFIX + "instance_count")),
            "code_commit": self.tag("code.commit"),
            "image_digest": self.tag("image_digest"),
            "data_versions": self.data_versions,
            "failure_reason": self.tag("failure_reason"),
            "tracking_run_id": self.tracking_run_id,
        }


@dataclass(frozen=True)
class Comparison:
    """What tells the runs apart: the hyperparameters whose values differ (a missing one differs too)."""

    differing: list[str]
    same: dict[str, str]
    metrics: list[str]  # every metric any run measured, in first-seen order


@dataclass
class RunList:
    source: str  # mlflow | local
    location: str  # the tracking URI, or the runs folder
    runs: list[RunSummary]
    comparison: Comparison
    note: str | None = None  # why this source, when it was not asked for

    def to_json(
        self, *, metrics: Sequence[str] = (), sort: str | None = None, plot: Path | None = None
    ) -> dict[str, Any]:
        """``shipyard runs --output json`` (docs/schemas/runs.v1.json), less its ``schema`` key."""
        return {
            "source": self.source,
            "location": self.location,
            "note": self.note,
            "sort": sort,
            "metrics": list(metrics or self.comparison.metrics),
            "differing_hyperparameters": self.comparison.differing,
            "same_hyperparameters": self.comparison.same,
            "plot": str(plot) if plot is not None else None,
            "runs": [run.to_json() for run in self.runs],
        }


@dataclass
class RunDetail:
    run: RunSummary
    source: str
    location: str
    series: dict[str, list[SeriesPoint]]

    def to_json(self) -> dict[str, Any]:
        """``shipyard runs show NAME --output json`` (docs/schemas/runs-show.v1.json), less its ``schema`` key."""
        return {
            "source": self.source,
            "location": self.location,
            "run": self.run.to_json(),
            "params": self.run.params,
            "tags": self.run.tags,
            "series": {k: [{"step": p.step, "value": _finite(p.value)} for p in v] for k, v in self.series.items()},
        }


def compare(runs: Sequence[RunSummary]) -> Comparison:
    """The hyperparameters that differ between ``runs`` (with one run: all of them) and those all share."""
    names = list(dict.fromkeys(k for run in runs for k in run.hyperparameters))
    differing = [k for k in names if len({run.hyperparameters.get(k) for run in runs}) > 1 or len(runs) == 1]
    same = {k: runs[0].hyperparameters[k] for k in names if k not in differing}
    metrics = list(dict.fromkeys(k for run in runs for k in run.metrics))
    return Comparison(differing, same, metrics)


def list_runs(
    settings: Settings,
    *,
    experiment: str | None = None,
    source: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
) -> RunList:
    """The runs (of ``experiment``, else all), newest first or by ``sort`` (a metric, highest first)."""
    chosen, note = _choose(settings, source)
    if chosen == "mlflow":
        wait_for_pending(settings)  # a run that just ended may still be on its way to the store
        location, runs = settings.tracking, _from_mlflow(settings, experiment)
    else:
        location, runs = str(settings.runs_dir), _from_records(settings, experiment)
    runs = _sorted(runs, sort)[:limit] if limit else _sorted(runs, sort)
    return RunList(chosen, location, runs, compare(runs), note)


def show_run(settings: Settings, name: str, *, source: str | None = None) -> RunDetail:
    """One run in full: params, tags and every metric's series."""
    chosen, _note = _choose(settings, source)
    name = check_run_name(name.removeprefix("run:"))
    if chosen == "local":
        record = RunStore(settings).load(name)
        return RunDetail(_summary_of_record(record), "local", str(settings.runs_dir), _record_series(record))
    wait_for_pending(settings)
    client, found = _mlflow_run(settings, name)
    series = {key: _history(client, found, key) for key in found.data.metrics}
    return RunDetail(_summary_of_mlflow(found, _experiment_names(client)), "mlflow", settings.tracking, series)


def metric_series(settings: Settings, listing: RunList, metric: str) -> dict[str, list[SeriesPoint]]:
    """``metric``'s series in each listed run that measured it (run name → points by step)."""
    if metric not in listing.comparison.metrics:
        known = ", ".join(listing.comparison.metrics) or "none"
        raise SpecError(f"metric {metric!r} is not measured by any listed run (metrics: {known})", option="metric")
    runs = [run for run in listing.runs if metric in run.metrics]
    if listing.source == "local":
        store = RunStore(settings)
        return {run.name: _record_series(store.load(run.name)).get(metric, []) for run in runs}
    client = client_for(settings.tracking)
    return {run.name: _history(client, client.get_run(run.tracking_run_id or ""), metric) for run in runs}


# -- which source --


def _choose(settings: Settings, source: str | None) -> tuple[str, str | None]:
    if source not in (None, *SOURCES):
        raise SpecError(f"source {source!r} is not one of {', '.join(SOURCES)}", option="source")
    if source == "local":
        return "local", None
    if not mlflow_available():
        if source == "mlflow":
            raise SpecError(f"source mlflow needs MLflow: {INSTALL_HINT}", option="source")
        return "local", f"MLflow is not installed ({INSTALL_HINT}): read from Shipyard's run records"
    uri = settings.tracking
    if source is None and uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return "local", f"no MLflow store at {uri} yet: read from Shipyard's run records"
    return "mlflow", None


# -- from MLflow --


def _client(settings: Settings) -> MlflowClient:
    why = probe(settings.tracking)
    if why is not None:
        raise unreachable(settings.tracking, why)
    return client_for(settings.tracking)


def _experiment_names(client: MlflowClient) -> dict[str, str]:
    return {str(e.experiment_id): e.name for e in client.search_experiments()}


def _from_mlflow(settings: Settings, experiment: str | None) -> list[RunSummary]:
    client = _client(settings)
    names = _experiment_names(client)
    ids = list(names)
    if experiment is not None:
        ids = [i for i, n in names.items() if n == experiment]
        if not ids:
            known = ", ".join(sorted(names.values())) or "none"
            raise SpecError(f"experiment {experiment!r} is not in {settings.tracking} (experiments: {known})",
                            option="experiment")  # fmt: skip
    found = client.search_runs(ids, max_results=5000, order_by=["attributes.start_time DESC"]) if ids else []
    return [_summary_of_mlflow(run, names) for run in found if TAG_RUN in run.data.tags]


def _mlflow_run(settings: Settings, name: str) -> tuple[MlflowClient, Run]:
    client = _client(settings)
    ids = list(_experiment_names(client))
    found = client.search_runs(ids, filter_string=f"tags.`{TAG_RUN}` = '{name}'", max_results=1,
                               order_by=["attributes.start_time DESC"]) if ids else []  # fmt: skip
    if not found:
        raise UsageError(f"no run named {name!r} in {settings.tracking} (shipyard runs lists them; "
                         "--source local reads Shipyard's run records)")  # fmt: skip
    return client, found[0]


def _summary_of_mlflow(run: Run, experiments: dict[str, str]) -> RunSummary:
    info, data = run.info, run.data
    tags, params = dict(data.tags), dict(data.params)
    started, ended = _time(info.start_time), _time(info.end_time)
    duration = _number(tags.get("shipyard.duration_s"))
    if duration is None and started and ended:
        duration = (ended - started).total_seconds()
    return RunSummary(
        name=tags.get(TAG_RUN, info.run_name or info.run_id),
        experiment=experiments.get(str(info.experiment_id), str(info.experiment_id)),
        status=shipyard_status(info.status, tags),
        target=params.get(PREFIX + "target") or tags.get("shipyard.target"),
        started_at=started,
        ended_at=ended,
        duration_s=duration,
        hyperparameters=hyperparameters_of(params),
        metrics={k: float(v) for k, v in data.metrics.items()},
        cost_usd=_number(tags.get("shipyard.cost_usd")),
        params=params,
        tags=tags,
        tracking_run_id=info.run_id,
    )


def _history(client: MlflowClient, run: Run, key: str) -> list[SeriesPoint]:
    points = [SeriesPoint(m.step, m.value, m.timestamp) for m in client.get_metric_history(run.info.run_id, key)]
    return sorted(points, key=lambda p: (p.step, p.timestamp_ms))


# -- from the run records --


def _from_records(settings: Settings, experiment: str | None) -> list[RunSummary]:
    records = RunStore(settings).all()
    if experiment is not None:
        known = sorted({r.experiment for r in records})
        records = [r for r in records if r.experiment == experiment]
        if not records:
            raise SpecError(f"experiment {experiment!r} has no runs in {settings.runs_dir} (experiments: "
                            f"{', '.join(known) or 'none'})", option="experiment")  # fmt: skip
    return [_summary_of_record(r) for r in records]


def _summary_of_record(run: TrainRun) -> RunSummary:
    return RunSummary(
        name=run.name,
        experiment=run.experiment,
        status=run.status,
        target=run.target,
        started_at=run.started_at or run.created_at,
        ended_at=run.ended_at,
        duration_s=run.duration_s,
        hyperparameters=dict(run.hyperparameters),
        metrics=run.final_metrics,
        cost_usd=run.cost_usd,
        params=run_params(run),
        tags={**start_tags(run), **final_tags(run)},
        tracking_run_id=run.tracking_run_id,
    )


def _record_series(run: TrainRun) -> dict[str, list[SeriesPoint]]:
    steps: dict[str, int] = {}
    series: dict[str, list[SeriesPoint]] = {}
    for point in run.metrics:
        step = next_step(steps, point)
        series.setdefault(point.name, []).append(SeriesPoint(step, point.value, int(point.timestamp * 1000)))
    return {k: sorted(v, key=lambda p: (p.step, p.timestamp_ms)) for k, v in series.items()}


# -- ordering and values --


def _sorted(runs: list[RunSummary], sort: str | None) -> list[RunSummary]:
    def when(run: RunSummary) -> float:
        return run.started_at.timestamp() if run.started_at else 0.0

    newest = sorted(runs, key=when, reverse=True)
    if sort is None:
        return newest
    if runs and not any(sort in run.metrics for run in runs):
        known = ", ".join(dict.fromkeys(k for run in runs for k in run.metrics)) or "none"
        raise SpecError(f"sort {sort!r} is not a metric of the listed runs (metrics: {known})", option="sort")
    measured = [run for run in newest if sort in run.metrics and not math.isnan(run.metrics[sort])]
    rest = [run for run in newest if run not in measured]
    return sorted(measured, key=lambda run: run.metrics[sort], reverse=True) + rest


def _time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _int(text: str | None) -> int | None:
    value = _number(text)
    return int(value) if value is not None else None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
