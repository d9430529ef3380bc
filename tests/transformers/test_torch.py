"""The torch flavor: an eager module from a local file (travels by value) and a TorchScript module, saved and served."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import torch
from torch_models import Scorer

import shipyard
from shipyard.bundle import Bundle
from shipyard.errors import BundleError
from shipyard.handler.flavors import detect, flavor_module


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    torch.manual_seed(0)
    return Scorer().eval()


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)


def _reference(model: Any, rows: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return np.asarray(model(torch.as_tensor(rows)).numpy())


def test_eager_module_round_trip(scorer: Scorer, rows: np.ndarray, tmp_path: Path) -> None:
    assert detect(scorer) == "torch"
    bundle = shipyard.save(scorer, tmp_path / "eager", example=rows[:4], batch_size=16)
    assert bundle.manifest.artifact == "model/weights.pt"
    # the pickle holds the structure only: the weights live in weights.pt
    assert (tmp_path / "eager" / "model" / "module.pkl").stat().st_size < 20_000
    assert set(torch.load(tmp_path / "eager" / "model" / "weights.pt", weights_only=True)) == set(scorer.state_dict())
    predict = flavor_module("torch").load(bundle.path, bundle.manifest)
    np.testing.assert_allclose(predict(rows), _reference(scorer, rows), rtol=1e-6, atol=1e-7)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # still supported, deprecated upstream
def test_torchscript_round_trip(scorer: Scorer, rows: np.ndarray, tmp_path: Path) -> None:
    scripted = torch.jit.script(scorer)
    bundle = shipyard.save(scripted, tmp_path / "scripted", example=rows[:4])
    assert bundle.manifest.artifact == "model/model.pt"
    predict = flavor_module("torch").load(bundle.path, bundle.manifest)
    np.testing.assert_allclose(predict(rows), _reference(scorer, rows), rtol=1e-6, atol=1e-7)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_saving_an_eager_module_leaves_its_class_untouched(scorer: Scorer, rows: np.ndarray, tmp_path: Path) -> None:
    # save() loads the bundle back to check it; cloudpickle used to overwrite the live class's methods with
    # copies whose source is "<dynamic-code>", so torch.jit.script(scorer) failed after a save.
    forward = Scorer.forward
    shipyard.save(scorer, tmp_path / "eager", example=rows[:4])
    assert Scorer.forward is forward
    assert inspect.getsource(Scorer.__init__).lstrip().startswith("def __init__")
    scripted = torch.jit.script(scorer)
    np.testing.assert_allclose(_reference(scripted, rows), _reference(scorer, rows), rtol=1e-6, atol=1e-7)


def test_errors_are_clear(scorer: Scorer, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a torch dtype"):
        shipyard.save(scorer, tmp_path / "bad", dtype="float99", example=np.zeros((1, 8), np.float32))
    bundle = shipyard.save(scorer, tmp_path / "ok", example=np.zeros((1, 8), np.float32))
    torch.save({"other": torch.zeros(1)}, tmp_path / "ok" / "model" / "weights.pt")
    with pytest.raises(BundleError, match="does not fit"):
        flavor_module("torch").load(bundle.path, Bundle.open(bundle.path).manifest)


@pytest.mark.integration
def test_served_module_answers_like_in_process(
    scorer: Scorer, rows: np.ndarray, tmp_path: Path, running_server: Any
) -> None:
    bundle = shipyard.save(scorer, tmp_path / "served", example=rows[:4])
    server = running_server(bundle.path, timeout=120)
    response = httpx.post(f"{server.url}/invocations", content=orjson.dumps({"instances": rows.tolist()}), timeout=60)
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(np.asarray(response.json()["predictions"]), _reference(scorer, rows), atol=1e-6)
    wrong = httpx.post(f"{server.url}/invocations", content=b"[[1, 2, 3]]", timeout=60)
    assert wrong.status_code == 400 and "8 features" in wrong.json()["message"]
