"""``MlflowTracker``: every training run recorded as an MLflow run, as it happens, without ever holding it up.

``start(run)`` opens an MLflow run in experiment ``run.experiment`` named ``run.name`` (params, tags, the
channels as MLflow datasets: see :mod:`shipyard.experiments.fields`), ``metric(run, point)`` logs each value as it
is parsed from the log, and ``finish(run)`` sets the final tags and MLflow's status (FINISHED, FAILED or KILLED
for Completed, Failed or Stopped).

The calls return at once: the MLflow work (importing MLflow takes seconds, a first SQLite store builds its
tables, a server answers over the network) happens on one background thread, in order, with the metrics that
pile up sent in batches. ``finish`` waits for that thread (``timeout_s`` at most). With ``live_after_s`` (what
:func:`~shipyard.experiments.tracker_for` gives ``shipyard train``) the thread starts only once the run has lasted
that long; a shorter run is written by a child process after it ends (:mod:`shipyard.experiments.sync`).
The run's own record (``HOME/runs/NAME/run.json``) is the source of truth: when the store fails (a server down,
a bad URI), the tracker warns once, drops the rest of its work and the run goes on.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.experiments.fields import MLFLOW_STATUS, final_tags, next_step, run_params, start_tags, to_ms
from shipyard.experiments.record import Channel, MetricPoint, TrainRun
from shipyard.experiments.store import artifact_location, check_tracking_uri, client_for, mlflow_error, probe
from shipyard.experiments.sync import hand_off
from shipyard.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["MlflowTracker"]

log = logging.getLogger("shipyard.experiments")
_BATCH = 100  # params and tags per log_batch (MLflow's MAX_PARAMS_TAGS_PER_BATCH)
_METRICS = 1000  # metrics per log_batch (MAX_METRICS_PER_BATCH)
_DIGEST = 36  # MLflow's longest dataset digest (MAX_DATASET_DIGEST_SIZE)


@dataclass
class _Open:
    """What MLflow is told at the start (taken from the record when ``start`` is called)."""

    name: str
    experiment: str
    start_ms: int
    params: dict[str, str]
    tags: dict[str, str]
    channels: list[Channel]
    run_id: str | None  # a run already tracked in this store (a resumed run): go on with it


@dataclass
class _RunState:
    run_id: str | None = None
    steps: dict[str, int] = field(default_factory=dict)  # the next implicit step of each metric


class MlflowTracker:
    """The :class:`~shipyard.experiments.record.Tracker` that records runs in ``settings.tracking``.

    ``warn(text)``: told once when tracking stops working (default: the ``shipyard.experiments`` logger)."""

    def __init__(
        self,
        settings: Settings,
        *,
        warn: Callable[[str], None] | None = None,
        timeout_s: float = 60.0,
        live_after_s: float = 0.0,
    ) -> None:
        self.settings = settings
        # 0: live from the start. Else the background thread starts once a run has lasted this long, and a run
        # that ends before is handed to a child process (shipyard.experiments.sync) instead of being waited for.
        self.live_after_s = live_after_s
        self._live = live_after_s <= 0
        self._timer: threading.Timer | None = None
        self.uri = settings.tracking
        check_tracking_uri(self.uri)  # a SageMaker ARN without its plugin fails here, before anything runs
        self.timeout_s = timeout_s
        self._warn = warn or log.warning
        self._jobs: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._client: MlflowClient | None = None
        self._runs: dict[str, _RunState] = {}
        self._broken = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- the Tracker protocol (called by train(); each returns at once) --

    def start(self, run: TrainRun) -> None:
        resumed = run.tracking_run_id if run.tracking_run_id and run.tracking_uri == self.uri else None
        run.tracking_uri = self.uri
        state = self._runs.setdefault(run.name, _RunState())
        begun = run.started_at or run.created_at
        job = _Open(run.name, run.experiment, to_ms(begun.timestamp()), run_params(run), start_tags(run),
                    list(run.channels), resumed)  # fmt: skip
        self._submit("open", (run, state, job))
        if not self._live and self._timer is None:
            self._timer = threading.Timer(self.live_after_s, self._go_live)
            self._timer.daemon = True
            self._timer.start()

    def metric(self, run: TrainRun, point: MetricPoint) -> None:
        state = self._runs.setdefault(run.name, _RunState())
        step = next_step(state.steps, point)  # the same rule `shipyard runs --source local` reads with
        stamp = to_ms(point.timestamp or time.time())
        self._submit("metric", (state, point.name, float(point.value), stamp, step))

    def finish(self, run: TrainRun) -> None:
        if not self._live:  # a short run: its record goes to a child that writes it to MLflow; no waiting here
            with self._lock:
                if not self._live:
                    if self._timer is not None:
                        self._timer.cancel()
                    self._jobs = queue.Queue()
                    hand_off(self.settings, run)
                    return
        state = self._runs.setdefault(run.name, _RunState())
        end = run.ended_at.timestamp() if run.ended_at else time.time()
        status = MLFLOW_STATUS.get(run.status, "FAILED")
        self._submit("close", (state, final_tags(run), status, to_ms(end)))
        self.flush()

    # -- the background thread --

    def flush(self) -> bool:
        """Wait (``timeout_s`` at most) until everything asked so far reached the store; False when it did not."""
        done = threading.Event()
        self._submit("mark", done)
        if self._broken or done.wait(self.timeout_s):
            return not self._broken
        self._fail(f"it did not answer within {self.timeout_s:g} s")
        return False

    def _go_live(self) -> None:
        """The run has lasted ``live_after_s``: what piled up goes to the store, and the rest as it comes."""
        with self._lock:
            self._live = True
            if self._thread is None and not self._jobs.empty():
                self._thread = threading.Thread(target=self._work, name="shipyard-mlflow", daemon=True)
                self._thread.start()

    def _submit(self, kind: str, payload: Any) -> None:
        if self._broken:
            if kind == "mark":
                payload.set()
            return
        with self._lock:
            self._jobs.put((kind, payload))
            if self._thread is None and self._live:
                self._thread = threading.Thread(target=self._work, name="shipyard-mlflow", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            try:
                kind, payload = self._jobs.get(timeout=5.0)
            except queue.Empty:
                with self._lock:  # idle: the thread ends; the next call starts another
                    if self._jobs.empty():
                        self._thread = None
                        return
                continue
            metrics = [payload] if kind == "metric" else []
            while kind == "metric" and len(metrics) < _METRICS:  # the values that piled up go in one batch
                try:
                    kind, payload = self._jobs.get_nowait()
                except queue.Empty:
                    kind = ""
                    break
                if kind == "metric":
                    metrics.append(payload)
            self._do(metrics, kind, payload)

    def _do(self, metrics: list[Any], kind: str, payload: Any) -> None:
        try:
            if metrics and not self._broken:
                self._log_metrics(metrics)
            if kind == "open" and not self._broken:
                self._open(*payload)
            elif kind == "close" and not self._broken:
                self._close(*payload)
        except Exception as exc:  # the store failed: the run goes on, recorded in its own folder
            self._fail(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else exc!r}")
        finally:
            if kind == "mark":
                payload.set()

    def _fail(self, why: str) -> None:
        if self._broken:
            return
        self._broken = True
        self._warn(
            f"experiment tracking stopped: the MLflow store {self.uri} failed ({why}); the run goes on and is "
            f"recorded in {self.settings.runs_dir} (shipyard runs --source local lists it)"
        )
        with contextlib.suppress(queue.Empty):
            while True:  # drop what is left, but let every waiter go
                kind, payload = self._jobs.get_nowait()
                if kind == "mark":
                    payload.set()

    # -- MLflow calls (on the background thread only) --

    def _mlflow(self) -> MlflowClient:
        if self._client is None:
            why = probe(self.uri)
            if why is not None:
                raise ConnectionError(why)
            self._client = client_for(self.uri)
        return self._client

    def _open(self, run: TrainRun, state: _RunState, job: _Open) -> None:
        client = self._mlflow()
        if job.run_id is not None:
            client.get_run(job.run_id)  # it exists: go on with it
            state.run_id = job.run_id
        else:
            experiment = self._experiment_id(client, job.experiment)
            made = client.create_run(experiment, start_time=job.start_ms, tags=job.tags, run_name=job.name)
            state.run_id = made.info.run_id
        run.tracking_run_id = state.run_id
        self._log_params(client, state.run_id, job)
        if job.channels:
            client.log_inputs(state.run_id, datasets=_datasets(job.channels))

    def _log_params(self, client: MlflowClient, run_id: str, job: _Open) -> None:
        from mlflow.entities import Param, RunTag

        known = client.get_run(run_id).data.params if job.run_id else {}
        params = [Param(k, v) for k, v in job.params.items() if k not in known]
        tags = [RunTag(k, v) for k, v in job.tags.items()] if job.run_id else []
        for i in range(0, max(len(params), len(tags)), _BATCH):
            client.log_batch(run_id, params=params[i : i + _BATCH], tags=tags[i : i + _BATCH])

    def _experiment_id(self, client: MlflowClient, name: str) -> str:
        found = client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(client.create_experiment(name, artifact_location=artifact_location(self.settings, self.uri)))
        except Exception as exc:  # made at the same moment by another run
            if mlflow_error(exc) != "RESOURCE_ALREADY_EXISTS" or (found := client.get_experiment_by_name(name)) is None:
                raise
            return str(found.experiment_id)

    def _log_metrics(self, metrics: list[tuple[_RunState, str, float, int, int]]) -> None:
        from mlflow.entities import Metric

        client = self._mlflow()
        by_run: dict[str, list[Metric]] = {}
        for state, name, value, stamp, step in metrics:
            if state.run_id is not None:  # a run whose start was never told (or failed) has nowhere to go
                by_run.setdefault(state.run_id, []).append(Metric(name, value, stamp, step))
        for run_id, batch in by_run.items():
            client.log_batch(run_id, metrics=batch)

    def _close(self, state: _RunState, tags: dict[str, str], status: str, end_ms: int) -> None:
        from mlflow.entities import RunTag

        if state.run_id is None:
            return
        client = self._mlflow()
        items = [RunTag(k, v) for k, v in tags.items()]
        for i in range(0, len(items), _BATCH):
            client.log_batch(state.run_id, tags=items[i : i + _BATCH])
        client.set_terminated(state.run_id, status=status, end_time=end_ms)


def _datasets(channels: list[Channel]) -> list[Any]:
    """Each channel as an MLflow dataset input: its URI as the source, its data version as the digest."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = []
    for channel in channels:
        with warnings.catch_warnings():  # "can be interpreted in multiple ways": a local path is a local source
            warnings.simplefilter("ignore")
            source = resolve_dataset_source(channel.uri)
        # MetaDataset is concrete at run time; its stubs leave `profile` abstract
        dataset = MetaDataset(source, name=channel.name, digest=channel.version[:_DIGEST])  # type: ignore[abstract]
        tags = [InputTag(MLFLOW_DATASET_CONTEXT, channel.name)]
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), tags=tags))
    return inputs
