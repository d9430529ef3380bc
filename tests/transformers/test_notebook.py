"""examples/intent/intent.ipynb runs top to bottom in a real kernel: train, save, serve, invoke, bench, clean up."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "intent" / "intent.ipynb"


@pytest.mark.integration
def test_intent_notebook_runs_every_cell() -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, with the failing cell and its traceback, if any cell fails
    outputs = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "all equal to the in-process predictions" in outputs
    assert "accuracy:" in outputs
    assert "server exited with 0" in outputs
