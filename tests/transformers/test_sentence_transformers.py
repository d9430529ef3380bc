"""The sentence_transformers flavor: a real MiniLM encoder + LogisticRegression head, saved, loaded, served."""

from __future__ import annotations

import concurrent.futures
import os
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

import shipyard
from shipyard.bundle import Bundle
from shipyard.config import ServerConfig
from shipyard.errors import BundleError
from shipyard.handler.flavors import detect, flavor_module
from shipyard.handler.flavors import sentence_transformers as flavor
from shipyard.handler.flavors._torch import threads_for


def _post(url: str, body: bytes, content_type: str = "application/json", accept: str | None = None) -> httpx.Response:
    headers = {"content-type": content_type}
    if accept:
        headers["accept"] = accept
    return httpx.post(f"{url}/invocations", content=body, headers=headers, timeout=60)


def test_detects_the_encoder_and_the_pipeline(encoder: Any, intent_pipeline: Any) -> None:
    assert detect(intent_pipeline) == "sentence_transformers"
    assert detect(encoder) == "sentence_transformers"  # before the torch flavor: it is an nn.Module too


def test_bundle_layout_manifest_and_example(intent_bundle: Path, intent_pipeline: Any, intent_data: Any) -> None:
    bundle = Bundle.open(intent_bundle)
    manifest = bundle.manifest
    assert manifest.flavor == "sentence_transformers"
    assert manifest.options == {"batch_size": 32, "method": "predict", "head": "model/head.joblib"}
    assert manifest.input.kind == "tensor" and manifest.input.dtype == "string"
    assert (intent_bundle / "model" / "encoder" / "model.safetensors").is_file()
    assert (intent_bundle / "model" / "head.joblib").is_file()
    pinned = bundle.requirements()
    assert any(re.fullmatch(r"sentence-transformers==\S+", line) for line in pinned)
    assert any(line.startswith("torch==") for line in pinned)
    example = bundle.example()
    assert example is not None
    assert example["predictions"] == list(intent_pipeline.predict(intent_data.test_texts[:3]))


def test_every_file_of_the_bundle_is_readable_by_other_users(intent_bundle: Path) -> None:
    """A container's workers run unprivileged: transformers writes model.safetensors 0600, save must not keep that."""
    modes = {p.relative_to(intent_bundle).as_posix(): p.stat().st_mode & 0o777 for p in intent_bundle.rglob("*")}
    assert "model/encoder/model.safetensors" in modes
    unreadable = {name: oct(mode) for name, mode in modes.items() if mode & 0o004 == 0}
    closed = {name: oct(mode) for name, mode in modes.items() if (intent_bundle / name).is_dir() and mode & 0o005 != 5}
    assert not unreadable and not closed
    assert intent_bundle.stat().st_mode & 0o777 == 0o755


def test_loaded_bundle_equals_the_notebook_model(intent_bundle: Path, intent_pipeline: Any, intent_data: Any) -> None:
    bundle = Bundle.open(intent_bundle)
    predict = flavor_module("sentence_transformers").load(bundle.path, bundle.manifest)
    texts = intent_data.test_texts
    assert list(predict(np.asarray(texts))) == list(intent_pipeline.predict(texts))
    accuracy = np.mean(np.asarray(predict(np.asarray(texts))) == np.asarray(intent_data.test_labels))
    assert accuracy >= 0.8  # a real classifier, not a constant


def test_length_sorted_embedding_keeps_order_and_values(encoder: Any, intent_data: Any) -> None:
    texts = [*intent_data.test_texts[:40], "a much longer text " * 20, "hi"]
    ours = flavor.embed(encoder, texts, batch_size=8)
    reference = encoder.encode(texts, batch_size=64, convert_to_numpy=True)
    assert ours.shape == reference.shape == (len(texts), 384)
    np.testing.assert_allclose(ours, reference, atol=2e-5)
    # each row is the embedding of its own text, whatever the batch around it
    alone = flavor.embed(encoder, [texts[-1]], batch_size=8)[0]
    np.testing.assert_allclose(ours[-1], alone, atol=2e-5)


def test_save_with_head_keyword_and_embeddings_only(encoder: Any, intent_pipeline: Any, tmp_path: Path) -> None:
    with_head = shipyard.save(encoder, tmp_path / "kw", head=intent_pipeline.head, example=["set an alarm"])
    assert with_head.manifest.options["head"] == "model/head.joblib"
    embeddings = shipyard.save(encoder, tmp_path / "emb", example=["set an alarm", "play jazz"])
    assert embeddings.manifest.options["method"] == "embed"
    assert embeddings.manifest.output["shape"] == [-1, 384]
    proba = shipyard.save(intent_pipeline, tmp_path / "proba", method="predict_proba", example=["play jazz"])
    assert proba.manifest.output["shape"] == [-1, len(intent_pipeline.head.classes_)]


def test_clear_errors(encoder: Any, intent_pipeline: Any, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="needs a head"):
        shipyard.save(encoder, tmp_path / "a", method="predict", example=["x"])
    with pytest.raises(BundleError, match="must be a SentenceTransformer"):
        shipyard.TextPipeline(object())
    with pytest.raises(BundleError, match="not both"):
        shipyard.save(intent_pipeline, tmp_path / "b", head=intent_pipeline.head, example=["x"])
    with pytest.raises(BundleError, match="one of predict"):
        shipyard.save(intent_pipeline, tmp_path / "c", method="transform", example=["x"])


def test_threads_are_sized_to_the_worker() -> None:
    assert threads_for(ServerConfig(workers=1, model_threads=3)) == 3
    cores = len(os.sched_getaffinity(0))
    assert threads_for(ServerConfig(workers=1)) == cores
    assert threads_for(ServerConfig(workers=cores * 2)) == 1


@pytest.mark.integration
def test_server_answers_equal_in_process(intent_server: Any, intent_pipeline: Any, intent_data: Any) -> None:
    texts = intent_data.test_texts
    expected = list(intent_pipeline.predict(texts))
    response = _post(intent_server.url, orjson.dumps({"instances": texts}))
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}
    csv_body = "\n".join(f'"{t}"' for t in texts).encode()
    response = _post(intent_server.url, csv_body, "text/csv")
    assert response.status_code == 200, response.text
    assert response.text.splitlines() == expected
    lines = b"".join(orjson.dumps(t) + b"\n" for t in texts)
    response = _post(intent_server.url, lines, "application/jsonlines")
    assert [orjson.loads(line) for line in response.content.splitlines()] == expected
    # one bare string is one row
    response = _post(intent_server.url, orjson.dumps(texts[0]))
    assert response.json() == {"predictions": expected[:1]}


@pytest.mark.integration
def test_batching_changes_no_answer(intent_server: Any, intent_pipeline: Any, intent_data: Any) -> None:
    """64 requests in flight at once, one text each: the server stacks them, every answer stays the same."""
    texts = intent_data.train_texts[:128] + intent_data.test_texts
    expected = list(intent_pipeline.predict(texts))

    def metric(name: str) -> float:
        body = httpx.get(f"{intent_server.url}/metrics", timeout=10).text
        return sum(float(line.split()[-1]) for line in body.splitlines() if line.startswith(name + " "))

    before_calls, before_requests = metric("shipyard_batch_requests_count"), metric("shipyard_batch_requests_sum")
    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(lambda t: _post(intent_server.url, orjson.dumps([t])).json()["predictions"][0], texts))
    assert answers == expected
    calls = metric("shipyard_batch_requests_count") - before_calls
    requests = metric("shipyard_batch_requests_sum") - before_requests
    assert requests == len(texts)
    assert calls < requests  # some model calls did serve several requests at once


@pytest.mark.integration
def test_bad_requests_are_400(intent_server: Any) -> None:
    response = _post(intent_server.url, b'{"instances": [[1, 2]]}')
    assert response.status_code == 400
    assert "1-D" in response.json()["message"] or "strings" in response.json()["message"]
    response = _post(intent_server.url, b"[]")
    assert response.status_code == 400


def test_scores_do_not_depend_on_the_batch(intent_pipeline: Any, intent_data: Any) -> None:
    """What the server's stacking does to one text's scores: float32 rounding at most, never a different label."""
    texts = intent_data.test_texts[:64]
    together = intent_pipeline.predict_proba(texts)
    alone = np.vstack([intent_pipeline.predict_proba([text]) for text in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert (together.argmax(axis=1) == alone.argmax(axis=1)).all()
