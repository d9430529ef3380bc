"""Handler scripts for the PyTorch container, in the shapes of AWS's own examples, served over real HTTP.

The sagemaker-pytorch-inference-toolkit fills in what a script leaves out: a script with only ``model_fn``
(AWS's MNIST example) gets its default input/predict/output functions (a tensor on the model's device,
``model.eval()`` under ``torch.no_grad()``, tensors back to numpy); a script without ``model_fn`` gets
``torch.jit.load`` of the ``model.pt``/``model.pth`` beside ``code/``. Every answer is checked against the
same model run in this process.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import torch

from shipyard.bundle import Bundle
from shipyard.config import ServerConfig
from shipyard.errors import BundleError, RequestError
from shipyard.handler import handler_for

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

# The shape of AWS's PyTorch MNIST example: the network class and a model_fn that loads its state dict from
# model.pth; nothing else, so the container's defaults decode, predict and encode. model_fn returns the model
# in training mode (as the example does): the default predict_fn must switch it to eval (dropout off).
MNIST_SCRIPT = """
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=5)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(256, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 256)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        return F.log_softmax(self.fc2(x), dim=1)


def model_fn(model_dir):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = torch.nn.DataParallel(Net())
    with open(os.path.join(model_dir, "model.pth"), "rb") as f:
        model.load_state_dict(torch.load(f))
    return model.to(device)
"""

# A TorchScript model.pt beside a script that only parses the request and runs the model (no model_fn).
INPUT_PREDICT_SCRIPT = """
import json

import torch


def input_fn(request_body, request_content_type):
    if request_content_type != "application/json":
        raise ValueError(f"unsupported content type: {request_content_type}")
    return torch.tensor(json.loads(request_body)["inputs"], dtype=torch.float32)


def predict_fn(input_data, model):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    with torch.no_grad():
        return model(input_data.to(device))
"""

# Only predict_fn: it calls .to() on what the default input_fn hands it, so that must be a tensor.
PREDICT_ONLY_SCRIPT = """
import torch


def predict_fn(input_data, model):
    with torch.no_grad():
        return model(input_data.to(torch.device("cpu"))) * 10
"""


def _net(script_globals: dict[str, Any]) -> torch.nn.Module:
    torch.manual_seed(0)
    net: torch.nn.Module = script_globals["Net"]()
    return net


def _mnist_classes() -> dict[str, Any]:
    scope: dict[str, Any] = {}
    exec(compile(MNIST_SCRIPT, "mnist_inference", "exec"), scope)
    return scope


class Scorer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.layers(x), dim=1)


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    torch.manual_seed(1)
    return Scorer().eval()


def _bundle(root: Path, script: str, files: dict[str, Any] | None = None) -> Path:
    (root / "code").mkdir(parents=True)
    (root / "code" / "inference.py").write_text(textwrap.dedent(script))
    for name, writer in (files or {}).items():
        writer(root / name)
    return root


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def _reference(model: torch.nn.Module, rows: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return np.asarray(model(torch.as_tensor(rows)).numpy())


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((5, 1, 28, 28)).astype(np.float32)


@pytest.mark.integration
def test_script_with_only_model_fn_gets_the_containers_defaults(
    tmp_path: Path, running_server: Any, images: np.ndarray
) -> None:
    net = _net(_mnist_classes())
    wrapped = torch.nn.DataParallel(net)
    bundle = _bundle(tmp_path / "mnist", MNIST_SCRIPT, {"model.pth": lambda p: torch.save(wrapped.state_dict(), p)})
    expected = _reference(net, images)
    server = running_server(bundle, timeout=120)

    # What PyTorchPredictor sends by default: NPY in (NumpySerializer), NPY out (NumpyDeserializer).
    answer = httpx.post(
        f"{server.url}/invocations",
        content=_npy(images),
        headers={"content-type": "application/x-npy", "accept": "application/x-npy"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-npy"
    np.testing.assert_allclose(np.load(io.BytesIO(answer.content)), expected, rtol=1e-5, atol=1e-5)

    # JSON in (float32 tensor, as the toolkit's torch.FloatTensor), JSON out (bare, as the toolkit's encoder).
    answer = httpx.post(f"{server.url}/invocations", content=orjson.dumps(images.tolist()), timeout=60)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(np.asarray(answer.json()), expected, rtol=1e-5, atol=1e-5)

    # Twice the same request: dropout is off (the default predict_fn called eval()).
    again = httpx.post(f"{server.url}/invocations", content=orjson.dumps(images.tolist()), timeout=60)
    assert again.json() == answer.json()

    wrong = httpx.post(f"{server.url}/invocations", content=b'[["a", "b"]]', timeout=60)
    assert wrong.status_code == 400 and "takes numbers" in wrong.json()["message"]


@pytest.mark.integration
def test_script_without_model_fn_loads_the_torchscript_model_pt(
    tmp_path: Path, running_server: Any, scorer: Scorer
) -> None:
    scripted = torch.jit.script(scorer)
    bundle = _bundle(tmp_path / "scripted", INPUT_PREDICT_SCRIPT, {"model.pt": lambda p: torch.jit.save(scripted, p)})
    rows = np.random.default_rng(2).normal(size=(7, 6)).astype(np.float32)
    server = running_server(bundle, timeout=120)
    answer = httpx.post(
        f"{server.url}/invocations",
        content=orjson.dumps({"inputs": rows.tolist()}),
        headers={"content-type": "application/json", "accept": "application/json"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(np.asarray(answer.json()), _reference(scorer, rows), rtol=1e-5, atol=1e-6)
    csv = httpx.post(f"{server.url}/invocations", content=b"1,2\n", headers={"content-type": "text/csv"}, timeout=60)
    assert csv.status_code == 400 and "unsupported content type: text/csv" in csv.json()["message"]


@pytest.mark.integration
def test_script_with_only_predict_fn_gets_a_tensor_from_the_default_input_fn(
    tmp_path: Path, running_server: Any, scorer: Scorer
) -> None:
    scripted = torch.jit.script(scorer)
    # the only .pth file of the model directory (no model.pt): the default model_fn takes it
    bundle = _bundle(tmp_path / "pth", PREDICT_ONLY_SCRIPT, {"model.pth": lambda p: torch.jit.save(scripted, p)})
    rows = np.random.default_rng(3).normal(size=(4, 6)).astype(np.float32)
    expected = _reference(scorer, rows) * 10
    server = running_server(bundle, timeout=120)
    for body, content_type in (
        (_npy(rows), "application/x-npy"),
        ("\n".join(",".join(map(str, r)) for r in rows.tolist()).encode(), "text/csv"),
    ):
        answer = httpx.post(
            f"{server.url}/invocations",
            content=body,
            headers={"content-type": content_type, "accept": "application/json"},
            timeout=60,
        )
        assert answer.status_code == 200, (content_type, answer.text)
        np.testing.assert_allclose(np.asarray(answer.json()), expected, rtol=1e-5, atol=1e-5)


# -- in process: the default functions themselves ----------------------------------------------------------------
MODE_SCRIPT = """
import torch


class Mode(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        # what the default predict_fn ran the model under, and the input's dtype and device
        flags = [float(self.training), float(torch.is_grad_enabled()), float(x.dtype == torch.float32)]
        return torch.tensor([flags] * len(x)) + 0 * self.weight


def model_fn(model_dir):
    return Mode().train()
"""


def _handler(root: Path, script: str, files: dict[str, Any] | None = None) -> Any:
    bundle = Bundle.open(_bundle(root, script, files))
    handler = handler_for(bundle, ServerConfig.from_env({}))
    handler.load()
    return handler


def _call(handler: Any, body: bytes, content_type: str, accept: str = "application/json") -> Any:
    prepared = handler.prepare(body, content_type, accept)
    answer, _ = handler.finish(handler.predict(prepared.inputs), prepared)
    return orjson.loads(answer)


def test_default_predict_runs_eval_without_grad_on_float32(tmp_path: Path) -> None:
    handler = _handler(tmp_path, MODE_SCRIPT)
    assert _call(handler, b"[[1, 2], [3, 4]]", "application/json") == [[0.0, 0.0, 1.0]] * 2
    # a float64 NPY body: the toolkit keeps its dtype; the default predict_fn casts to the model's float32
    assert _call(handler, _npy(np.ones((1, 2))), "application/x-npy") == [[0.0, 0.0, 1.0]]


COUNTING_SCRIPT = """
import torch


class Counting(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)
        self.walks = 0

    def parameters(self, recurse=True):
        self.walks += 1  # the defaults read the device and the float dtype from here
        return super().parameters(recurse)

    def forward(self, x):
        return self.linear(x)


def model_fn(model_dir):
    return Counting()
"""


def test_the_device_and_float_dtype_are_read_once_at_load_not_per_request(tmp_path: Path) -> None:
    handler = _handler(tmp_path, COUNTING_SCRIPT)
    walks = handler.model.walks
    for body, content_type in ((b"[[1, 2], [3, 4]]", "application/json"), (_npy(np.ones((1, 2))), "application/x-npy")):
        assert np.shape(_call(handler, body, content_type)) in {(2, 1), (1, 1)}
    assert handler.model.walks == walks  # none per request (three walks of the parameters each, before)
    assert walks >= 1  # read at load


def test_default_model_fn_errors_are_clear(tmp_path: Path, scorer: Scorer) -> None:
    script = "def predict_fn(data, model):\n    return model(data)\n"
    with pytest.raises(BundleError, match=r"defines no model_fn.*model\.pt"):
        _handler(tmp_path / "none", script)
    scripted = torch.jit.script(scorer)
    two = {"a.pt": lambda p: torch.jit.save(scripted, p), "b.pth": lambda p: torch.jit.save(scripted, p)}
    with pytest.raises(BundleError, match=r"several model files \(a\.pt, b\.pth\)"):
        _handler(tmp_path / "two", script, two)
    state = {"model.pt": lambda p: torch.save(scorer.state_dict(), p)}
    with pytest.raises(BundleError, match=r"cannot load model\.pt as TorchScript"):
        _handler(tmp_path / "state", script, state)


def test_a_model_that_is_not_torch_keeps_the_scikit_learn_defaults(tmp_path: Path) -> None:
    handler = _handler(tmp_path, "def model_fn(model_dir):\n    return lambda data: [s.upper() for s in data]\n")
    with pytest.raises(RequestError, match="not valid JSON"):
        _call(handler, b"[1,", "application/json")
    # strings pass the sklearn container's decoder untouched (the torch default refuses them)
    assert _call(handler, b'["a", "b"]', "application/json") == ["A", "B"]


@pytest.mark.parametrize("content_type", ["application/jsonlines", "application/jsonl", "application/x-ndjson"])
def test_every_spelling_of_a_text_type_gives_float32(tmp_path: Path, content_type: str) -> None:
    # integers in a text body become float32, as torch.FloatTensor does in the toolkit, whatever the alias
    handler = _handler(tmp_path, MODE_SCRIPT)
    assert _call(handler, b"[1, 2]\n[3, 4]\n", content_type) == [[0.0, 0.0, 1.0]] * 2


NAMEDTUPLE_SCRIPT = """
from typing import NamedTuple

import torch


class Output(NamedTuple):
    scores: torch.Tensor
    labels: torch.Tensor


class Two(torch.nn.Module):
    def forward(self, x):
        return Output(x * 2, x.argmax(dim=1))


def model_fn(model_dir):
    return Two()
"""


def test_a_namedtuple_of_tensors_is_answered(tmp_path: Path) -> None:
    handler = _handler(tmp_path, NAMEDTUPLE_SCRIPT)
    assert _call(handler, b"[[1, 3], [4, 2]]", "application/json") == [[[2.0, 6.0], [8.0, 4.0]], [1, 0]]
