"""Compiling text encoders (+ head) and PyTorch modules to ONNX: same answers, refused layouts, a torch-free server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch_models import Branchy, Numpyish, Scorer

import shipyard
from shipyard.bundle import Bundle
from shipyard.bundle.manifest import Manifest
from shipyard.errors import BundleError
from shipyard.handler.compile import Conversion
from shipyard.handler.compile import text as text_compile
from shipyard.handler.compile import torch as torch_compile
from shipyard.handler.flavors import _onnx_text, flavor_module
from shipyard.handler.flavors import sentence_transformers as text_flavor

LONG = " ".join(["the alarm should ring tomorrow at seven in the morning please"] * 40)  # 400 words, > 256 tokens
EDGE = ["", "   ", "café ünïcödé ☃ 東京", LONG, "a" * 1000]


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _served(bundle: Path, conversion: Conversion, method: str | None = None) -> Any:
    """The compiled text predictor for ``method`` (default: the served one)."""
    options = {**conversion.options, "method": method or conversion.options["method"]}
    manifest = Manifest(name="compiled", flavor="onnx", artifact=conversion.artifact, options=options)
    return _onnx_text.load(_session(bundle / conversion.artifact), bundle, manifest)


def _compiled_copy(source: Path, target: Path) -> tuple[Path, Conversion]:
    shutil.copytree(source, target)
    return target, text_compile.convert(None, target, Bundle.open(target).manifest)


@pytest.fixture(scope="module")
def compiled_intent(intent_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Conversion]:
    """The intent bundle (MiniLM + LogisticRegression) compiled from its saved files, as ``compile_bundle`` does."""
    return _compiled_copy(intent_bundle, tmp_path_factory.mktemp("compiled") / "intent")


@pytest.fixture(scope="module")
def check_texts(intent_data: Any) -> list[str]:
    generated = text_compile.generate(
        Manifest(name="intent", flavor="sentence_transformers"),
        intent_data.test_texts[:3],
        intent_data.test_texts,
        32,
        np.random.default_rng(0),
    )
    return [*intent_data.test_texts, *generated]


def test_intent_pipeline_compiles_to_one_graph(compiled_intent: tuple[Path, Conversion]) -> None:
    bundle, conversion = compiled_intent
    assert conversion.artifact == "model/model.onnx"
    assert conversion.files == ("model/model.onnx", "model/tokenizer.json")
    assert all((bundle / f).is_file() for f in conversion.files)
    assert set(conversion.packages) == {"onnxruntime", "numpy", "tokenizers"}
    assert conversion.methods == ("predict", "predict_proba")
    assert conversion.tolerance == 1e-5
    assert conversion.converter.startswith("torch.onnx ") and "skl2onnx" in conversion.converter
    options = conversion.options
    assert options["outputs"] == {"predict": "label", "predict_proba": "probabilities"}
    assert (options["max_seq_length"], options["pad_id"], options["pad_token"]) == (256, 0, "[PAD]")
    assert options["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in _session(bundle / conversion.artifact).get_outputs()] == ["label", "probabilities"]


def test_compiled_labels_and_probabilities_equal_native(
    compiled_intent: tuple[Path, Conversion], intent_pipeline: Any, check_texts: list[str]
) -> None:
    bundle, conversion = compiled_intent
    labels = _served(bundle, conversion)(np.asarray(check_texts))
    assert labels.tolist() == intent_pipeline.predict(check_texts).tolist()
    probabilities = _served(bundle, conversion, "predict_proba")(check_texts)
    assert probabilities.shape == (len(check_texts), 12)
    assert np.abs(probabilities - intent_pipeline.predict_proba(check_texts)).max() < 1e-5
    assert _served(bundle, conversion, "predict_proba")([]).shape == (0, 12)  # no texts, the right shape


def test_compiled_embeddings_equal_native(
    encoder: Any, intent_data: Any, check_texts: list[str], tmp_path: Path
) -> None:
    shipyard.save(encoder, tmp_path / "native", example=intent_data.test_texts[:2])
    bundle, conversion = _compiled_copy(tmp_path / "native", tmp_path / "embed")
    assert conversion.options["outputs"] == {"embed": "sentence_embedding"}
    assert conversion.methods == ("embed",)
    embeddings = _served(bundle, conversion)(check_texts)
    native = text_flavor.embed(encoder, check_texts, 32)
    assert embeddings.dtype == np.float32 and embeddings.shape == native.shape
    assert np.abs(embeddings - native).max() < 1e-5


def test_tokenizer_ids_equal_the_encoders(compiled_intent: tuple[Path, Conversion], encoder: Any) -> None:
    bundle, conversion = compiled_intent
    tokenizer = _onnx_text.tokenizer_for(bundle, conversion.options)
    for batch in ([text] for text in EDGE):
        encodings = tokenizer.encode_batch(batch)
        expected = encoder.preprocess(batch)
        assert [e.ids for e in encodings] == expected["input_ids"].tolist(), batch
        assert [e.attention_mask for e in encodings] == expected["attention_mask"].tolist()
        assert [e.type_ids for e in encodings] == expected["token_type_ids"].tolist()
    together = tokenizer.encode_batch(EDGE)  # padded to the longest (256 after truncation), not to 128
    assert [e.ids for e in together] == encoder.preprocess(EDGE)["input_ids"].tolist()
    assert len(together[0].ids) == 256


def test_generated_texts_cover_lengths_and_edge_cases(intent_data: Any) -> None:
    manifest = Manifest(name="intent", flavor="sentence_transformers")
    texts = text_compile.generate(manifest, intent_data.test_texts[:3], None, 64, np.random.default_rng(1))
    assert len(texts) == 64 and texts[:3] == ["", "   ", "café ünïcödé ☃ 東京"]
    lengths = [len(t.split()) for t in texts[3:]]
    assert min(lengths) == 1 and max(lengths) == 400
    vocabulary = {w for t in intent_data.test_texts[:3] for w in t.split()}
    assert {w for t in texts[3:] for w in t.split()} <= vocabulary
    again = text_compile.generate(manifest, intent_data.test_texts[:3], None, 64, np.random.default_rng(1))
    assert texts == again  # seeded: the check is reproducible


@pytest.mark.parametrize(
    ("layout", "reason"),
    [("cls", "pools with 'cls'; only mean pooling"), ("dense", "modules are Transformer, Pooling, Dense")],
)
def test_layouts_that_do_not_compile_say_why(encoder: Any, layout: str, reason: str, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer, models

    dimension = encoder.get_embedding_dimension()
    if layout == "cls":
        modules = [encoder[0], models.Pooling(dimension, pooling_mode="cls")]
    else:
        modules = [encoder[0], encoder[1], models.Dense(dimension, 16)]
    other = SentenceTransformer(modules=modules, device="cpu")
    with pytest.raises(BundleError, match=reason):
        text_compile.convert(other, tmp_path, Manifest(name="other", flavor="sentence_transformers"))
    assert not (tmp_path / "model" / "model.onnx").exists()


def test_served_text_predictor_imports_no_torch_transformers_or_sklearn(
    compiled_intent: tuple[Path, Conversion],
) -> None:
    bundle, conversion = compiled_intent
    code = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        import onnxruntime as ort
        from shipyard.bundle.manifest import Manifest
        from shipyard.handler.flavors import _onnx_text
        bundle = Path({str(bundle)!r})
        manifest = Manifest(name="c", flavor="onnx", artifact="model/model.onnx", options=json.loads(sys.argv[1]))
        session = ort.InferenceSession(str(bundle / "model/model.onnx"), providers=["CPUExecutionProvider"])
        labels = _onnx_text.load(session, bundle, manifest)(["wake me up at 7"]).tolist()
        heavy = ("torch", "transformers", "sentence_transformers", "sklearn", "scipy")
        heavy = sorted(m for m in heavy if m in sys.modules)
        print(json.dumps({{"labels": labels, "heavy": heavy}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(conversion.options)], capture_output=True, text=True, check=True
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["heavy"] == []
    assert len(answer["labels"]) == 1 and isinstance(answer["labels"][0], str)


# -- plain PyTorch modules --------------------------------------------------------------------------------------


def _rows(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=(count, 8)).astype(np.float32)


def _native(module: Any, rows: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return np.asarray(module(torch.as_tensor(rows)).numpy())


def _onnx_answers(bundle: Path, conversion: Conversion, rows: np.ndarray) -> np.ndarray:
    output = conversion.options["outputs"]["predict"]
    return np.asarray(_session(bundle / conversion.artifact).run([output], {"input": rows})[0])


def _saved(module: Any, path: Path, example: np.ndarray) -> tuple[Path, Manifest]:
    bundle = shipyard.save(module, path, example=example)
    return bundle.path, bundle.manifest


def test_torch_mlp_compiles_from_its_saved_bundle(tmp_path: Path) -> None:
    torch.manual_seed(0)
    scorer = Scorer().eval()
    path, manifest = _saved(scorer, tmp_path / "mlp", _rows(4))
    conversion = torch_compile.convert(None, path, manifest)
    assert conversion.options == {"outputs": {"predict": "output"}, "method": "predict"}
    assert conversion.packages == ("onnxruntime", "numpy") and conversion.methods == ("predict",)
    rows = _rows(1000, seed=1)  # a batch size the trace never saw
    assert np.abs(_onnx_answers(path, conversion, rows) - _native(scorer, rows)).max() <= 1e-5
    # the native predictor still loads: compiling added files, it replaced none
    np.testing.assert_allclose(flavor_module("torch").load(path, manifest)(rows[:5]), _native(scorer, rows[:5]))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_module_compiles(tmp_path: Path) -> None:
    torch.manual_seed(0)
    scripted = torch.jit.script(Scorer().eval())
    path, manifest = _saved(scripted, tmp_path / "scripted", _rows(4))
    conversion = torch_compile.convert(None, path, manifest)
    rows = _rows(100, seed=2)
    assert np.abs(_onnx_answers(path, conversion, rows) - _native(scripted, rows)).max() <= 1e-5


def test_data_dependent_branch_converts_but_differs_on_other_rows(tmp_path: Path) -> None:
    torch.manual_seed(0)
    branchy = Branchy().eval()
    low = _rows(4) * 0.1  # mean < 0.5: the trace takes the plain branch
    path, manifest = _saved(branchy, tmp_path / "branchy", low)
    conversion = torch_compile.convert(branchy, path, manifest)  # no export error: the branch is baked in
    assert np.abs(_onnx_answers(path, conversion, low) - _native(branchy, low)).max() <= 1e-5
    high = _rows(20) * 0.1 + 0.9  # mean > 0.5: eager takes the other branch, the graph does not
    difference = np.abs(_onnx_answers(path, conversion, high) - _native(branchy, high)).max(axis=1)
    assert (difference > 1e-3).all()


def test_forward_that_leaves_torch_loses_its_input(tmp_path: Path) -> None:
    path, manifest = _saved(Numpyish(), tmp_path / "numpyish", _rows(4))
    with pytest.raises(BundleError, match="the exported graph lost its input"):
        torch_compile.convert(None, path, manifest)
