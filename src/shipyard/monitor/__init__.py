"""Monitoring after launch: baselines, drift and data-quality checks, model quality, reports.

Works on SageMaker data-capture files (what ``SHIPYARD_CAPTURE_DESTINATION`` makes the server write, or what
SageMaker itself wrote) and on plain data files, and writes Model Monitor's file formats. Needs the
``monitor`` extra (pyarrow, scipy, matplotlib)::

    from shipyard.monitor import make_baseline, run_check
    make_baseline(Path("train.parquet"), Path("baseline"), exclude=["label"])
    result = run_check(Path("capture"), Path("baseline"), Path("monitoring"), since="24h")
    result.violations

See docs/monitor.md.
"""

from __future__ import annotations

from shipyard.monitor.baseline import BaselineResult, make_baseline
from shipyard.monitor.check import CheckResult, run_check

__all__ = ["BaselineResult", "CheckResult", "make_baseline", "run_check"]
