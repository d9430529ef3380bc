"""The multi-model server (SAGEMAKER_MULTI_MODEL=true) over real HTTP: SageMaker's management API, every kind of
model, LRU eviction under a small memory budget, 507, 404, 409, delete, metrics, and two workers that share one
registration."""

from __future__ import annotations

import shutil
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
from sklearn.tree import DecisionTreeClassifier

import shipyard
from infra.server import Server, ServerFactory
from shipyard.bundle.archive import pack

BALLAST = """
import json

import numpy as np


def model_fn(model_dir):
    megabytes = int(open(model_dir + "/megabytes").read())
    return np.ones(megabytes * 131072)  # float64: written, so resident


def input_fn(body, content_type):
    return json.loads(body)


def predict_fn(data, model):
    return {"megabytes": model.nbytes // 1048576, "echo": data}


def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
"""


def ballast(directory: Path, megabytes: int) -> Path:
    """A toolkit handler directory (code/inference.py) whose model holds ``megabytes`` MB."""
    (directory / "code").mkdir(parents=True)
    (directory / "code" / "inference.py").write_text(textwrap.dedent(BALLAST))
    (directory / "megabytes").write_text(str(megabytes))
    return directory


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DecisionTreeClassifier]:
    """A second model trained here: a depth-2 tree on 4 features."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    path = tmp_path_factory.mktemp("tiny") / "bundle"
    shipyard.save(model, path, example=X[:3], name="tiny")
    return path, model


def multi_model_server(servers: ServerFactory, models_dir: Path, **env: str) -> Server:
    settings = {"SAGEMAKER_MULTI_MODEL": "true", "SHIPYARD_MODELS_DIR": str(models_dir), **env}
    return servers(models_dir, env=settings)


def register(server: Server, name: str, url: Path | str) -> httpx.Response:
    return httpx.post(f"{server.url}/models", json={"model_name": name, "url": str(url)}, timeout=60)


def invoke(server: Server, name: str, instances: object) -> httpx.Response:
    return httpx.post(f"{server.url}/models/{name}/invoke", json={"instances": instances}, timeout=60)


def metric(server: Server, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            if key == name or key.startswith(name + "{") or key == name + "_total" or key.startswith(name + "_total{"):
                total += float(value)
    return total


def test_every_kind_of_model_serves_from_one_endpoint(
    running_server: ServerFactory,
    tmp_path: Path,
    digits_bundle: Path,
    digits_rows: list[list[float]],
    tiny_bundle: tuple[Path, DecisionTreeClassifier],
) -> None:
    """A flavor bundle, a second model trained here, a toolkit inference.py directory and a model.tar.gz, each
    registered with POST /models and answering its own predictions; /ping is 200 before any model."""
    models = tmp_path / "models"
    models.mkdir()
    archive = pack(digits_bundle, models / "digits.tar.gz")
    toolkit = ballast(tmp_path / "toolkit", 1)
    server = multi_model_server(running_server, models)
    assert httpx.get(f"{server.url}/ping").status_code == 200
    assert httpx.get(f"{server.url}/models").json() == {"models": []}

    tiny_path, tiny_model = tiny_bundle
    for name, url in (("digits", digits_bundle), ("tiny", tiny_path), ("toolkit", toolkit), ("archive", archive)):
        answer = register(server, name, url)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": f'Model "{name}" registered'}
    listed = httpx.get(f"{server.url}/models").json()["models"]
    assert listed == sorted(
        [
            {"modelName": "archive", "modelUrl": str(archive)},
            {"modelName": "digits", "modelUrl": str(digits_bundle)},
            {"modelName": "tiny", "modelUrl": str(tiny_path)},
            {"modelName": "toolkit", "modelUrl": str(toolkit)},
        ],
        key=lambda m: m["modelName"],
    )

    digits = invoke(server, "digits", digits_rows)
    assert digits.status_code == 200, digits.text
    assert invoke(server, "archive", digits_rows).json() == digits.json()
    X = np.random.default_rng(1).normal(size=(6, 4))
    tiny = invoke(server, "tiny", X.tolist())
    assert tiny.status_code == 200, tiny.text
    body = tiny.json()
    predictions = body["predictions"] if isinstance(body, dict) else body
    assert [int(p) for p in predictions] == tiny_model.predict(X).tolist()
    toolkit_answer = httpx.post(f"{server.url}/models/toolkit/invoke", json={"x": 1}, timeout=30)
    assert toolkit_answer.json() == {"megabytes": 1, "echo": {"x": 1}}

    # /invocations: X-Amzn-SageMaker-Target-Model, a name under the models directory on first use
    by_header = httpx.post(
        f"{server.url}/invocations",
        json={"instances": digits_rows},
        headers={"X-Amzn-SageMaker-Target-Model": "digits.tar.gz"},
        timeout=60,
    )
    assert by_header.status_code == 200, by_header.text
    assert by_header.json() == digits.json()
    assert httpx.get(f"{server.url}/models/digits.tar.gz").json()["modelUrl"] == str(archive.resolve())
    missing = httpx.post(
        f"{server.url}/invocations", json={"instances": digits_rows}, headers={"X-Amzn-SageMaker-Target-Model": "nope"}
    )
    assert missing.status_code == 404
    escape = httpx.post(f"{server.url}/invocations", json={}, headers={"X-Amzn-SageMaker-Target-Model": "../toolkit"})
    assert escape.status_code == 404  # never outside the models directory
    no_header = httpx.post(f"{server.url}/invocations", json={"instances": digits_rows})
    assert no_header.status_code == 400
    assert "X-Amzn-SageMaker-Target-Model" in no_header.json()["message"]


def test_404_409_and_delete(running_server: ServerFactory, tmp_path: Path, digits_bundle: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    server = multi_model_server(running_server, models)
    assert register(server, "a", tmp_path / "missing").status_code == 404
    assert httpx.get(f"{server.url}/models/a").status_code == 404  # a failed registration leaves nothing
    assert register(server, "a", digits_bundle).status_code == 200
    again = register(server, "a", digits_bundle)
    assert again.status_code == 409
    assert again.json()["error"] == "ModelExists"
    described = httpx.get(f"{server.url}/models/a")  # the contract's Get Model API: one object, not a list
    assert described.status_code == 200 and described.json() == {"modelName": "a", "modelUrl": str(digits_bundle)}
    assert httpx.get(f"{server.url}/models/nope").status_code == 404  # not loaded (registered): 404
    bad = httpx.post(f"{server.url}/models", content=b'{"name": "x"}')
    assert bad.status_code == 400
    deleted = httpx.delete(f"{server.url}/models/a")
    assert deleted.status_code == 200 and deleted.json() == {"status": 'Model "a" unregistered'}
    assert httpx.delete(f"{server.url}/models/a").status_code == 404
    assert invoke(server, "a", [[0.0] * 64]).status_code == 404
    assert httpx.get(f"{server.url}/models").json() == {"models": []}
    assert metric(server, "shipyard_model_unloads") == 1
    assert register(server, "a", digits_bundle).status_code == 200  # the name is free again


def test_the_model_list_pages_as_the_contract_says(
    running_server: ServerFactory, tmp_path: Path, digits_bundle: Path
) -> None:
    """List Model API: SageMaker pages with next_page_token while the answer has a nextPageToken."""
    models = tmp_path / "models"
    models.mkdir()
    server = multi_model_server(running_server, models)
    for name in ("c", "a", "b"):
        assert register(server, name, digits_bundle).status_code == 200
    first = httpx.get(f"{server.url}/models", params={"limit": 2}).json()
    assert [m["modelName"] for m in first["models"]] == ["a", "b"]
    second = httpx.get(f"{server.url}/models", params={"limit": 2, "next_page_token": first["nextPageToken"]}).json()
    assert [m["modelName"] for m in second["models"]] == ["c"] and "nextPageToken" not in second
    assert "nextPageToken" not in httpx.get(f"{server.url}/models").json()  # 100 a page by default
    for bad in ({"limit": 0}, {"limit": "x"}, {"next_page_token": "-1"}):
        assert httpx.get(f"{server.url}/models", params=bad).status_code == 400


def test_a_300_character_name_is_served_and_one_over_1024_is_400(
    running_server: ServerFactory, tmp_path: Path, digits_bundle: Path
) -> None:
    """The registry's file names are fixed-length (a name's hex was over 255 bytes: OSError 36, a 500)."""
    models = tmp_path / "models"
    models.mkdir()
    server = multi_model_server(running_server, models)
    long = "m" * 290 + "/v1.tar.gz"
    assert len(long) == 300
    assert register(server, long, digits_bundle).status_code == 200
    described = httpx.get(f"{server.url}/models/{long}")
    assert described.status_code == 200 and described.json() == {"modelName": long, "modelUrl": str(digits_bundle)}
    assert httpx.get(f"{server.url}/models").json() == {"models": [{"modelName": long, "modelUrl": str(digits_bundle)}]}
    answer = httpx.post(
        f"{server.url}/invocations", json={"instances": [[0.0] * 64]}, headers={"X-Amzn-SageMaker-Target-Model": long}
    )
    assert answer.status_code == 200, answer.text
    assert register(server, long, digits_bundle).status_code == 409
    unknown = httpx.post(  # not registered, and no file of that name can exist under the models directory: 404
        f"{server.url}/invocations", json={}, headers={"X-Amzn-SageMaker-Target-Model": "n" * 300}
    )
    assert unknown.status_code == 404, unknown.text
    assert httpx.delete(f"{server.url}/models/{long}").status_code == 200
    too_long = "x" * 1025
    refused = register(server, too_long, digits_bundle)
    assert refused.status_code == 400 and "1024" in refused.json()["message"], refused.text
    assert httpx.get(f"{server.url}/models/{too_long}").status_code == 400
    invoked = httpx.post(f"{server.url}/invocations", json={}, headers={"X-Amzn-SageMaker-Target-Model": too_long})
    assert invoked.status_code == 400 and "1024" in invoked.json()["message"]
    assert register(server, "y" * 1024, digits_bundle).status_code == 200  # TargetModel's limit itself is fine


def test_least_recently_used_is_unloaded_and_507_when_one_model_does_not_fit(
    running_server: ServerFactory, tmp_path: Path
) -> None:
    """A 100 MB budget and 35 MB models: the third load unloads the least recently used; a 150 MB model is 507
    and left unregistered; /metrics counts loads, evictions, hits and misses."""
    models = tmp_path / "models"
    for name in ("a", "b", "c"):
        ballast(models / name, 35)
    ballast(models / "big", 150)
    server = multi_model_server(running_server, models, SHIPYARD_MODEL_MEMORY_MB="100")

    def call(name: str) -> httpx.Response:
        return httpx.post(
            f"{server.url}/invocations", json={"n": name}, headers={"X-Amzn-SageMaker-Target-Model": name}, timeout=60
        )

    caches = []
    for name in ("a", "b", "a", "c"):  # a was used after b: b is the least recently used when c loads
        answer = call(name)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"megabytes": 35, "echo": {"n": name}}
        caches.append(answer.headers["x-shipyard-model-cache"])
    assert caches == ["miss", "miss", "hit", "miss"]

    def loaded(name: str) -> bool:
        """Loaded in the (one) worker now: its "model loaded" and "model unloaded" lines replayed (GET /models/NAME
        says registered, SageMaker's "loaded")."""
        described = httpx.get(f"{server.url}/models/{name}").json()
        assert described == {"modelName": name, "modelUrl": str((models / name).resolve())}
        now = False
        for line in server.log_lines():
            if line.get("model") == name and line.get("message") in ("model loaded", "model unloaded"):
                now = line["message"] == "model loaded"
        return now

    assert [loaded(n) for n in ("a", "b", "c")] == [True, False, True]
    assert metric(server, "shipyard_model_loads") == 3
    assert metric(server, "shipyard_model_misses") == 3
    assert metric(server, "shipyard_model_hits") == 1
    assert metric(server, "shipyard_models_loaded") == 2
    assert 70 << 20 <= metric(server, "shipyard_model_memory_bytes") <= 100 << 20
    assert metric(server, "shipyard_model_memory_budget_bytes") == 100 << 20
    lines = [line for line in server.log_lines() if line.get("message") == "model unloaded"]
    assert [(line["model"], line["reason"]) for line in lines] == [("b", "evicted")]

    assert call("b").status_code == 200  # loaded again; a is now the least recently used
    assert [loaded(n) for n in ("a", "b", "c")] == [False, True, True]

    big = call("big")
    assert big.status_code == 507, big.text
    assert big.json()["error"] == "InsufficientMemory"
    assert httpx.get(f"{server.url}/models/big").status_code == 404  # unregistered again
    assert register(server, "big", models / "big").status_code == 507
    assert metric(server, "shipyard_model_load_failures") == 2
    assert [loaded(n) for n in ("b", "c")] == [True, True]  # what was evicted for it comes back on use only


def test_two_workers_serve_one_registration(running_server: ServerFactory, tmp_path: Path, digits_bundle: Path) -> None:
    """POST /models reaches one worker; every worker serves the model (each loads it on its first request), and
    DELETE on one worker unloads it on the others."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(digits_bundle, models / "digits")
    server = multi_model_server(running_server, models, SAGEMAKER_MODEL_SERVER_WORKERS="2")
    assert register(server, "d", models / "digits").status_code == 200
    body = orjson.dumps({"instances": [[0.0] * 64]})

    def one(_: int) -> int:
        with httpx.Client() as client:  # a new connection each time: the kernel hands it to either worker
            return client.post(
                f"{server.url}/models/d/invoke", content=body, headers={"content-type": "application/json"}
            ).status_code

    workers: set[int] = set()
    with ThreadPoolExecutor(8) as pool:
        for _ in range(10):
            assert set(pool.map(one, range(40))) == {200}
            workers = {line["worker"] for line in server.log_lines() if line.get("message") == "model loaded"}
            if workers == {0, 1}:
                break
    assert workers == {0, 1}
    assert httpx.delete(f"{server.url}/models/d").status_code == 200
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(one, range(20))) == {404}
    unloaded = server.wait_log(
        lambda line: (
            line.get("message") == "model unloaded"
            and line.get("reason") == "deleted"
            and len([x for x in server.log_lines() if x.get("message") == "model unloaded"]) == 2
        ),
        timeout=5,
    )
    assert unloaded["model"] == "d"


def test_shipyard_invoke_a_url_with_target_model(
    running_server: ServerFactory, tmp_path: Path, digits_bundle: Path, digits_rows: list[list[float]]
) -> None:
    """``shipyard invoke URL --target-model NAME`` sends X-Amzn-SageMaker-Target-Model to the server."""
    from infra.cli import shipyard as run_shipyard

    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(digits_bundle, models / "digits")
    server = multi_model_server(running_server, models)
    request = tmp_path / "request.json"
    request.write_bytes(orjson.dumps({"instances": digits_rows[:2]}))
    done = run_shipyard("invoke", server.url, "--data", str(request), "--target-model", "digits", "--raw")
    assert done.returncode == 0, done.stdout + done.stderr
    assert orjson.loads(done.stdout) == invoke(server, "digits", digits_rows[:2]).json()
    without = run_shipyard("invoke", server.url, "--data", str(request), "--raw")
    assert without.returncode != 0 and "X-Amzn-SageMaker-Target-Model" in " ".join(
        (without.stdout + without.stderr).split()
    )


def test_shipyard_serve_multi_model_serves_a_directory(
    running_server: ServerFactory, tmp_path: Path, digits_bundle: Path, digits_rows: list[list[float]]
) -> None:
    """``shipyard serve DIR --multi-model``: DIR is the models' directory (no bundle at DIR itself)."""
    from infra.server import BIN

    models = tmp_path / "models"
    models.mkdir()
    pack(digits_bundle, models / "d.tar.gz")
    command = [str(BIN / "shipyard"), "serve", str(models), "--multi-model", "--port", "0", "--workers", "1"]
    server = running_server(models, command=command)
    answer = httpx.post(
        f"{server.url}/invocations",
        json={"instances": digits_rows[:2]},
        headers={"X-Amzn-SageMaker-Target-Model": "d.tar.gz"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-shipyard-model-cache"] == "miss"
