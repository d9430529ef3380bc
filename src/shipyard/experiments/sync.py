"""A short run is written to MLflow after it ends, by a process of its own: the user does not wait for MLflow.

Importing MLflow and opening its SQLite store take seconds of CPU (about 3 s and 2 s on a 2-core machine): for a
run of a few seconds that is most of what ``shipyard train`` would add to the script's own time, and on two cores
it slows the script itself. So :class:`~shipyard.experiments.tracking.MlflowTracker` goes live (its background
thread) only once a run has lasted ``live_after_s``; a run that ends before hands its record to
``python -m shipyard.experiments.sync NAME``, a detached child that replays it through the same tracker (start,
every metric point with its own timestamp, finish), so MLflow ends up holding exactly what live tracking writes.

While the child works, ``HOME/runs/NAME/.tracking-pending`` holds its pid; readers of the store
(``shipyard runs``) call :func:`wait_for_pending` first, so a listing right after a run sees it. The child's
output (a store that failed, say) is in ``HOME/runs/NAME/tracking.log``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from shipyard.experiments.record import RunStore, Tracker, TrainRun
from shipyard.settings import Settings

__all__ = ["PENDING", "hand_off", "main", "replay", "wait_for_pending"]

PENDING = ".tracking-pending"


def hand_off(settings: Settings, run: TrainRun) -> None:
    """Save ``run``'s record and start the child that writes it to ``settings.tracking``; returns at once."""
    store = RunStore(settings)
    store.save(run)
    folder = store.folder(run.name)
    marker = folder / PENDING
    marker.write_text("starting\n")
    env = settings.child_env(
        {
            "SHIPYARD_HOME": str(settings.shipyard_home),
            "SHIPYARD_STATE": str(settings.state_path),
            "MLFLOW_TRACKING_URI": settings.tracking,
        }
    )
    with (folder / "tracking.log").open("ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "shipyard.experiments.sync", run.name],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # outlives the command, and its Ctrl-C
        )
    marker.write_text(f"{child.pid}\n")


def wait_for_pending(settings: Settings, timeout_s: float = 120.0) -> list[str]:
    """Wait until no run is being written to MLflow by its child (at most ``timeout_s``); the runs still pending."""
    deadline = time.monotonic() + timeout_s
    while True:
        pending = [marker for marker in settings.runs_dir.glob(f"*/{PENDING}") if _alive(marker)]
        if not pending or time.monotonic() > deadline:
            return [marker.parent.name for marker in pending]
        time.sleep(0.1)


def _alive(marker: Path) -> bool:
    """Whether the marker's child still runs; a stale marker (its child gone) is removed."""
    try:
        text = marker.read_text().strip()
    except OSError:
        return False
    if text == "starting":
        return True
    try:
        os.kill(int(text), 0)
        with contextlib.suppress(OSError):
            state = Path(f"/proc/{int(text)}/stat").read_text().split()[2]
            if state == "Z":  # exited, not yet reaped by the parent that started it
                raise ProcessLookupError
        return True
    except (ValueError, ProcessLookupError, PermissionError):
        marker.unlink(missing_ok=True)
        return False


def replay(tracker: Tracker, run: TrainRun) -> TrainRun:
    """Tell ``tracker`` about a recorded run as train() does while it runs: start, each metric point, finish."""
    points, run.metrics = list(run.metrics), []
    tracker.start(run)
    for point in points:
        run.metrics.append(point)
        tracker.metric(run, point)
    tracker.finish(run)
    return run


def main(name: str) -> int:
    """The child: replay the run's record through a live tracker, then note the MLflow run's id in the record."""
    from shipyard.experiments.tracking import MlflowTracker

    settings = Settings.from_env()
    store = RunStore(settings)
    try:
        run = store.load(name)
        replay(MlflowTracker(settings, warn=lambda text: print(text, flush=True)), run)
        if run.tracking_run_id:
            latest = store.load(name)  # the command may have saved it since
            latest.tracking_uri, latest.tracking_run_id = run.tracking_uri, run.tracking_run_id
            store.save(latest)
        return 0
    finally:
        (settings.runs_dir / name / PENDING).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
