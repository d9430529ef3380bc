"""Compiling text encoders (+ head) and PyTorch modules to ONNX: same answers, refused layouts, a torch-free server."""

from __future__ import annotations

import json
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
from shipyard.bundle.manifest import Manifest
from shipyard.errors import BundleError
from shipyard.handler.compile import Conversion, compile_bundle
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


def _served(bundle: Path, manifest: Manifest, method: str | None = None) -> Any:
    """The compiled predictor for ``method`` (default: the served one), through the onnx flavor."""
    options = {**manifest.options, "method": method or manifest.options["method"]}
    return flavor_module("onnx").load(bundle, Manifest(**{**manifest.__dict__, "options": options}))


@pytest.fixture(scope="module")
def compiled_intent(
    intent_bundle: Path, intent_data: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Manifest]:
    """The saved intent bundle (MiniLM + LogisticRegression) compiled into a copy, checked on held-out texts."""
    target = tmp_path_factory.mktemp("compiled") / "intent"
    manifest = compile_bundle(intent_bundle, target, mode="onnx", check_rows=24, held_out=intent_data.test_texts)
    return target, manifest


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


def test_intent_pipeline_compiles_to_one_graph(compiled_intent: tuple[Path, Manifest], intent_data: Any) -> None:
    bundle, manifest = compiled_intent
    assert (manifest.flavor, manifest.artifact) == ("onnx", "model/model.onnx")
    compiled = manifest.compiled
    assert compiled["status"] == "onnx", compiled.get("reason")
    assert compiled["onnx_files"] == ["model/model.onnx", "model/tokenizer.json"]
    assert {r.split("==")[0] for r in compiled["onnx_requirements"]} == {"onnxruntime", "numpy", "tokenizers"}
    assert compiled["converter"].startswith("torch.onnx ") and "skl2onnx" in compiled["converter"]
    check = compiled["check"]
    assert check["methods"] == ["predict", "predict_proba"] and check["labels_equal"]
    assert check["rows"] == 3 + 24 + len(intent_data.test_texts) and check["tolerance"] == 1e-5
    assert 0 < check["max_abs_error"] < 1e-5 and check["first_difference"] == ""
    options = manifest.options
    assert options["outputs"] == {"predict": "label", "predict_proba": "probabilities"}
    assert (options["max_seq_length"], options["pad_id"], options["pad_token"]) == (256, 0, "[PAD]")
    assert options["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in _session(bundle / "model/model.onnx").get_outputs()] == ["label", "probabilities"]
    # the native form stays beside it, so a rebuild can choose
    assert (bundle / "model/encoder").is_dir() and (bundle / "model/head.joblib").is_file()
    assert manifest.as_native().flavor == "sentence_transformers"


def test_compiled_labels_and_probabilities_equal_native(
    compiled_intent: tuple[Path, Manifest], intent_pipeline: Any, check_texts: list[str]
) -> None:
    bundle, manifest = compiled_intent
    labels = _served(bundle, manifest)(np.asarray(check_texts))
    assert labels.tolist() == intent_pipeline.predict(check_texts).tolist()
    assert labels.dtype == intent_pipeline.predict(check_texts[:2]).dtype  # the classes' dtype (npy answers)
    probabilities = _served(bundle, manifest, "predict_proba")(check_texts)
    assert probabilities.shape == (len(check_texts), 12)
    assert np.abs(probabilities - intent_pipeline.predict_proba(check_texts)).max() < 1e-5
    assert _served(bundle, manifest, "predict_proba")([]).shape == (0, 12)  # no texts, the right shape


def test_compiled_embeddings_equal_native(
    encoder: Any, intent_data: Any, check_texts: list[str], tmp_path: Path
) -> None:
    bundle = shipyard.save(
        encoder, tmp_path / "embed", example=intent_data.test_texts[:2], compile="onnx", check_rows=8
    )
    manifest = bundle.manifest
    assert manifest.options["outputs"] == {"embed": "sentence_embedding"}
    assert manifest.compiled["check"]["methods"] == ["embed"]
    embeddings = _served(bundle.path, manifest)(check_texts)
    native = text_flavor.embed(encoder, check_texts, 32)
    assert embeddings.dtype == np.float32 and embeddings.shape == native.shape
    assert np.abs(embeddings - native).max() < 1e-5


def test_tokenizer_ids_equal_the_encoders(compiled_intent: tuple[Path, Manifest], encoder: Any) -> None:
    bundle, manifest = compiled_intent
    tokenizer = _onnx_text.tokenizer_for(bundle, manifest.options)
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


def _other_encoder(encoder: Any, layout: str) -> Any:
    from sentence_transformers import SentenceTransformer, models

    dimension = encoder.get_embedding_dimension()
    if layout == "cls":
        modules = [encoder[0], models.Pooling(dimension, pooling_mode="cls")]
    else:
        modules = [encoder[0], encoder[1], models.Dense(dimension, 16)]
    return SentenceTransformer(modules=modules, device="cpu")


@pytest.mark.parametrize(
    ("layout", "reason"),
    [("cls", "pools with 'cls'; only mean pooling"), ("dense", "modules are Transformer, Pooling, Dense")],
)
def test_layouts_that_do_not_compile_say_why(encoder: Any, layout: str, reason: str, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=reason):
        text_compile.convert(
            _other_encoder(encoder, layout), tmp_path, Manifest(name="x", flavor="sentence_transformers")
        )
    assert not (tmp_path / "model" / "model.onnx").exists()


def test_auto_keeps_the_native_encoder_and_records_why(encoder: Any, intent_data: Any, tmp_path: Path) -> None:
    other = _other_encoder(encoder, "cls")
    bundle = shipyard.save(other, tmp_path / "cls", example=intent_data.test_texts[:2], compile="auto")
    assert bundle.manifest.flavor == "sentence_transformers"
    assert bundle.manifest.compiled["status"] == "native"
    assert "only mean pooling" in bundle.manifest.compiled["reason"]
    assert not (tmp_path / "cls" / "model" / "model.onnx").exists()
    assert not (tmp_path / "cls" / "model" / "tokenizer.json").exists()
    with pytest.raises(BundleError, match=r"compile='onnx': .*only mean pooling"):
        shipyard.save(other, tmp_path / "strict", example=intent_data.test_texts[:2], compile="onnx")


def test_served_text_predictor_imports_no_torch_transformers_or_sklearn(compiled_intent: tuple[Path, Manifest]) -> None:
    bundle, _ = compiled_intent
    code = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        from shipyard.bundle import Bundle
        from shipyard.handler.flavors import flavor_module
        bundle = Bundle.open(Path({str(bundle)!r}))
        labels = flavor_module(bundle.manifest.flavor).load(bundle.path, bundle.manifest)(["wake me up at 7"])
        heavy = ("torch", "transformers", "sentence_transformers", "sklearn", "scipy")
        heavy = sorted(m for m in heavy if m in sys.modules)
        print(json.dumps({{"labels": labels.tolist(), "heavy": heavy, "tokenizers": "tokenizers" in sys.modules}}))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["heavy"] == [] and answer["tokenizers"]
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
    example = _rows(4)  # all below 10: the trace takes the plain branch
    path, manifest = _saved(branchy, tmp_path / "branchy", example)
    conversion = torch_compile.convert(branchy, path, manifest)  # no export error: the branch is baked in
    assert np.abs(_onnx_answers(path, conversion, example) - _native(branchy, example)).max() <= 1e-5
    large = _rows(20) * 20  # a batch with values past 10: eager takes the other branch, the graph does not
    difference = np.abs(_onnx_answers(path, conversion, large) - _native(branchy, large)).max(axis=1)
    assert (difference > 1e-3).all()


def test_the_check_catches_the_baked_branch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    branchy = Branchy().eval()
    held_out = _rows(10) * 20  # widens the generated rows' ranges past the branch's threshold
    bundle = shipyard.save(branchy, tmp_path / "auto", example=_rows(4), compile="auto", held_out=held_out)
    assert bundle.manifest.flavor == "torch" and bundle.manifest.compiled["status"] == "native"
    assert bundle.manifest.compiled["reason"].startswith("row 0 (example), predict: ")
    with pytest.raises(BundleError, match=r"compile='onnx': row 0 \(example\), predict: .* \(onnx\)"):
        shipyard.save(branchy, tmp_path / "onnx", example=_rows(4), compile="onnx", held_out=held_out)


def test_forward_that_leaves_torch_loses_its_input(tmp_path: Path) -> None:
    path, manifest = _saved(Numpyish(), tmp_path / "numpyish", _rows(4))
    with pytest.raises(BundleError, match="the exported graph lost its input"):
        torch_compile.convert(None, path, manifest)
    bundle = shipyard.save(Numpyish(), tmp_path / "auto", example=_rows(4), compile="auto")
    assert bundle.manifest.flavor == "torch"
    assert bundle.manifest.compiled["reason"].startswith("the exported graph lost its input")


def test_compiled_torch_bundle_serves_through_the_onnx_flavor(tmp_path: Path) -> None:
    torch.manual_seed(0)
    scorer = Scorer().eval()
    bundle = shipyard.save(scorer, tmp_path / "mlp", example=_rows(4), compile="onnx", check_rows=200)
    manifest = bundle.manifest
    assert manifest.flavor == "onnx" and manifest.compiled["status"] == "onnx"
    assert manifest.compiled["check"]["max_abs_error"] <= 1e-5
    rows = _rows(50, seed=3)
    predict = flavor_module("onnx").load(bundle.path, manifest)
    assert np.abs(predict(rows) - _native(scorer, rows)).max() <= 1e-5
