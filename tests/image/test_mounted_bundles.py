"""Bundles written by ``shipyard.save`` and mounted into a real container whose workers drop privileges.

The digits image runs as SageMaker runs it: root starts the server, which drops to the image's unprivileged
user (SHIPYARD_RUN_AS) before loading the model, and ``verify --bundle`` mounts the directory read-only at
/opt/ml/model with its modes as they are on the host. A bundle is only servable if that user can read every
file of it; and ``verify`` must read the answers of a bundle saved with bare JSON.
"""

from __future__ import annotations

import os
from pathlib import Path

import joblib
import numpy as np
import orjson
import pytest

import shipyard
from shipyard.image import BuildResult
from shipyard.image.verify import VerifyOptions, verify

pytestmark = pytest.mark.integration


def _digits(digits_bundle: Path) -> tuple[object, np.ndarray]:
    rows = np.asarray(orjson.loads((digits_bundle / "example.json").read_bytes())["instances"])
    return joblib.load(digits_bundle / "model" / "model.joblib"), rows


def _statuses(report: object) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}  # type: ignore[attr-defined]


def test_a_bundle_saved_under_a_private_umask_serves_with_dropped_privileges(
    digits_image: BuildResult, digits_bundle: Path, tmp_path: Path
) -> None:
    model, rows = _digits(digits_bundle)
    previous = os.umask(0o077)  # every file the flavor writes is 0600, every directory 0700
    try:
        bundle = shipyard.save(model, tmp_path / "private", example=rows)
    finally:
        os.umask(previous)
    report = verify(digits_image.image, VerifyOptions(bundle=bundle.path, timeout=90, scan_layers=False))
    statuses = _statuses(report)
    assert report.passed, report.to_dict()
    assert statuses["non-root"] == "pass" and statuses["predictions"] == "pass"


def test_verify_reads_a_bundle_that_answers_bare_json(
    digits_image: BuildResult, digits_bundle: Path, tmp_path: Path
) -> None:
    model, rows = _digits(digits_bundle)
    bundle = shipyard.save(model, tmp_path / "bare", example=rows, json_envelope=False)
    report = verify(digits_image.image, VerifyOptions(bundle=bundle.path, timeout=90, scan_layers=False))
    assert _statuses(report)["predictions"] == "pass", report.to_dict()
