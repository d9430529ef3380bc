"""How a :class:`~shipyard.experiments.record.TrainRun` is written into MLflow: params, tags and status, in one place.

The tracker writes with these functions and ``shipyard runs`` reads back with the same names, so the two never
disagree. Nothing here imports MLflow.

* **params**: the run's hyperparameters under their own names, plus ``shipyard.instance_type``,
  ``shipyard.instance_count``, ``shipyard.target`` and ``shipyard.entry`` (prefixed, so a hyperparameter called
  ``target`` never collides, and a reader tells the hyperparameters apart).
* **tags**: MLflow's standard ones (``mlflow.runName``, ``mlflow.source.name``, ``mlflow.source.type``,
  ``mlflow.source.git.commit``), then Shipyard's (``shipyard.*``): the code version, each channel's URI and data
  version (``shipyard.data.<channel>.uri``/``.version``), the image and its digest, the target, and at the end
  the status, durations, cost, failure reason, model artifact and bundle path.
"""

from __future__ import annotations

import re

from shipyard.experiments.record import MetricPoint, TrainRun

__all__ = [
    "EXTRA_PARAMS",
    "MLFLOW_STATUS",
    "PREFIX",
    "TAG_RUN",
    "TAG_STATUS",
    "final_tags",
    "hyperparameters_of",
    "next_step",
    "param_key",
    "run_params",
    "shipyard_status",
    "start_tags",
    "to_ms",
]

PREFIX = "shipyard."
TAG_RUN = "shipyard.run"  # the run's Shipyard name: what marks an MLflow run as one of Shipyard's
TAG_STATUS = "shipyard.status"  # Shipyard's (SageMaker's) words: Completed, Failed, Stopped, ...
EXTRA_PARAMS = ("instance_type", "instance_count", "target", "entry")
# TrainingJobStatus → MLflow's RunStatus (the one mapping, both ways)
MLFLOW_STATUS = {
    "InProgress": "RUNNING",
    "Stopping": "RUNNING",
    "Completed": "FINISHED",
    "Failed": "FAILED",
    "Stopped": "KILLED",
}
_BACK = {"RUNNING": "InProgress", "SCHEDULED": "InProgress", "FINISHED": "Completed", "FAILED": "Failed",
         "KILLED": "Stopped"}  # fmt: skip
# MLflow's limits (mlflow.utils.validation): a param value 6000 characters, a tag value 8000, a key 250
_PARAM_VALUE, _TAG_VALUE, _KEY = 6000, 8000, 250
_KEY_CHARS = re.compile(r"[^\w\-. /]")  # MLflow accepts letters, digits, _ - . space and /


def param_key(name: str) -> str:
    """A hyperparameter's name as an MLflow key (characters MLflow refuses become ``_``)."""
    return _KEY_CHARS.sub("_", name)[:_KEY]


def next_step(steps: dict[str, int], point: MetricPoint) -> int:
    """The step MLflow records ``point`` at: its own, else one past the metric's previous one (0 first).
    ``steps`` holds each metric's next implicit step and is updated."""
    step = point.step if point.step is not None else steps.get(point.name, 0)
    steps[point.name] = step + 1
    return step


def to_ms(seconds: float) -> int:
    return round(seconds * 1000)


def run_params(run: TrainRun) -> dict[str, str]:
    """What MLflow's params hold: the hyperparameters (as hyperparameters.json has them) and how the run ran."""
    params = {param_key(k): str(v)[:_PARAM_VALUE] for k, v in run.hyperparameters.items()}
    extra = {"instance_type": run.instance_type, "instance_count": str(run.instance_count), "target": run.target,
             "entry": run.entry}  # fmt: skip
    params.update({PREFIX + k: v[:_PARAM_VALUE] for k, v in extra.items()})
    return params


def hyperparameters_of(params: dict[str, str]) -> dict[str, str]:
    """The hyperparameters among an MLflow run's params (those :func:`run_params` did not prefix)."""
    return {k: v for k, v in params.items() if not k.startswith(PREFIX)}


def start_tags(run: TrainRun) -> dict[str, str]:
    """The tags known when the run starts: MLflow's standard ones, the code, data and image versions."""
    tags = {
        "mlflow.runName": run.name,
        "mlflow.source.name": run.entry,
        "mlflow.source.type": "JOB",
        TAG_RUN: run.name,
        "shipyard.target": run.target,
        "shipyard.experiment": run.experiment,
        "shipyard.source_dir": run.source_dir,
        "shipyard.spot": str(run.spot).lower(),
    }
    if run.code is not None:
        if run.code.commit:
            tags["mlflow.source.git.commit"] = run.code.commit
            tags["shipyard.code.commit"] = run.code.commit
        tags["shipyard.code.dirty"] = str(run.code.dirty).lower()
        if run.code.diff_sha256:
            tags["shipyard.code.diff_sha256"] = run.code.diff_sha256
        tags["shipyard.code.source_sha256"] = run.code.source_sha256
    for channel in run.channels:
        tags[f"shipyard.data.{channel.name}.uri"] = channel.uri
        tags[f"shipyard.data.{channel.name}.version"] = channel.version
    optional = {"shipyard.image": run.image, "shipyard.image_digest": run.image_digest,
                "shipyard.job_arn": run.job_arn, "shipyard.region": run.region}  # fmt: skip
    tags.update({k: v for k, v in optional.items() if v})
    return _clip(tags)


def final_tags(run: TrainRun) -> dict[str, str]:
    """The tags known at the end: status, durations, billable seconds, cost, failure reason, model, bundle."""
    values: dict[str, object] = {
        TAG_STATUS: run.status,
        "shipyard.duration_s": run.duration_s,
        "shipyard.training_seconds": run.training_seconds,
        "shipyard.billable_seconds": run.billable_seconds,
        "shipyard.spot_saving_pct": run.spot_saving_pct,
        "shipyard.cost_usd": run.cost_usd,
        "shipyard.failure_reason": run.failure_reason,
        "shipyard.model_artifact": run.model_artifact,
        "shipyard.bundle_path": run.bundle_path,
        "shipyard.is_bundle": str(run.is_bundle).lower(),
        "shipyard.output_data": run.output_data,
        "shipyard.checkpoints": run.checkpoints,
        "shipyard.image": run.image,
        "shipyard.image_digest": run.image_digest,
        "shipyard.job_arn": run.job_arn,
    }
    return _clip({k: str(v) for k, v in values.items() if v is not None and v != ""})


def shipyard_status(mlflow_status: str, tags: dict[str, str]) -> str:
    """A run's status in Shipyard's words: the tag the tracker wrote, else MLflow's status mapped back."""
    return tags.get(TAG_STATUS) or _BACK.get(mlflow_status, mlflow_status)


def _clip(tags: dict[str, str]) -> dict[str, str]:
    return {k[:_KEY]: v[:_TAG_VALUE] for k, v in tags.items()}
