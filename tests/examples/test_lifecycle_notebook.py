"""examples/lifecycle/lifecycle.ipynb runs top to bottom in a real kernel: two training runs in the real training
container, compared from MLflow's store, the better one registered, approved, deployed on the local target (the
real image under Podman), invoked and cleaned up."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from infra.base_image import ensure_base_image

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "lifecycle" / "lifecycle.ipynb"


@pytest.mark.integration
def test_lifecycle_notebook_runs_every_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    endpoint = f"lifecycle-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SHIPYARD_LIFECYCLE_BASE", ensure_base_image())  # no registry here: a local Python base
    monkeypatch.setenv("SHIPYARD_LIFECYCLE_NAME", endpoint)
    monkeypatch.setenv("SHIPYARD_ENGINE", "podman")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    try:
        client.execute()  # raises CellExecutionError, with the failing cell and its traceback, if any cell fails
    finally:
        left = subprocess.run(
            ["podman", "ps", "-a", "--filter", f"label=dev.shipyard.deployment={endpoint}", "--format", "{{.Names}}"],
            capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        if left:
            subprocess.run(["podman", "rm", "-f", *left], capture_output=True)
    outputs = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "best run: digits-c1-0" in outputs  # C=1.0 beats C=0.0001 on the digits
    assert "source: mlflow" in outputs
    assert "PendingManualApproval" in outputs
    assert "history: ['deploy', 'cleanup']" in outputs
    assert "lifecycle complete" in outputs
    assert not left, f"the notebook left containers behind: {left}"
    images = [o for cell in notebook.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the accuracy plot was not displayed"
