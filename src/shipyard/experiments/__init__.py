"""Experiments: every training run recorded in MLflow (a local SQLite store by default), listed and compared.

* :func:`tracker_for` → :class:`MlflowTracker` (``shipyard train`` passes it to ``train()``), or None without
  the ``track`` extra (the run is then recorded in Shipyard's run folder only).
* :func:`list_runs`, :func:`compare`, :func:`show_run`, :func:`plot_runs` (:func:`plot_metric`): what
  ``shipyard runs`` prints, read from MLflow (``search_runs`` and the metric history) or from the run records
  (``source="local"``).
"""

from __future__ import annotations

from collections.abc import Callable

from shipyard.experiments.plot import plot_metric, plot_runs
from shipyard.experiments.record import Tracker
from shipyard.experiments.runs import Comparison, RunDetail, RunList, RunSummary, compare, list_runs, show_run
from shipyard.experiments.store import INSTALL_HINT, mlflow_available
from shipyard.experiments.tracking import MlflowTracker
from shipyard.settings import Settings

__all__ = [
    "INSTALL_HINT",
    "NO_TRACKING",
    "Comparison",
    "MlflowTracker",
    "RunDetail",
    "RunList",
    "RunSummary",
    "compare",
    "list_runs",
    "plot_metric",
    "plot_runs",
    "show_run",
    "tracker_for",
]

NO_TRACKING = (
    "MLflow is not installed: runs are recorded in Shipyard's run folder only (shipyard runs lists them); "
    f"{INSTALL_HINT} records them in MLflow too"
)


# A run shorter than this is written to MLflow after it ends, by a child process (experiments/sync.py): MLflow's
# import and store cost seconds of CPU that a short run would otherwise wait for; a longer one is tracked live.
LIVE_AFTER_S = 20.0


def tracker_for(settings: Settings, *, warn: Callable[[str], None] | None = None) -> Tracker | None:
    """The tracker that records runs in ``settings.tracking`` (None when the ``track`` extra is missing: say
    :data:`NO_TRACKING` once). Raises :class:`~shipyard.errors.SettingsError` for a tracking URI MLflow cannot use
    here (a SageMaker ARN without the ``sagemaker-mlflow`` plugin), before anything runs."""
    if not mlflow_available():
        return None
    return MlflowTracker(settings, warn=warn, live_after_s=LIVE_AFTER_S)
