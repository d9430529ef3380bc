"""Experiments: every training run recorded in MLflow (a local SQLite store by default), listed and compared."""

from __future__ import annotations

from shipyard.settings import Settings
from shipyard.train.record import Tracker

__all__ = ["tracker_for"]


def tracker_for(settings: Settings) -> Tracker | None:
    """The tracker that records runs in ``settings.tracking`` (None when the ``track`` extra is missing)."""
    return None  # filled in by the experiments work
