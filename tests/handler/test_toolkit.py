"""SageMaker handler scripts (code/inference.py), driven the way the server drives them."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from shipyard.bundle import Bundle
from shipyard.config import ServerConfig
from shipyard.errors import BundleError, ModelError, NotAcceptable, RequestError, UnsupportedMediaType
from shipyard.handler import handler_for
from shipyard.handler.toolkit import ToolkitHandler

# Records what the toolkit functions receive, as JSON in the answer, so tests can look.
RECORDING = """
import json

def model_fn(model_dir):
    return {"dir": model_dir}

def input_fn(request_body, request_content_type):
    return {"body_type": type(request_body).__name__, "content_type": request_content_type,
            "body": request_body if isinstance(request_body, str) else request_body.hex()}

def predict_fn(data, model):
    return {"input": data, "model": model}

def output_fn(prediction, accept):
    prediction["accept"] = accept
    return json.dumps(prediction)
"""


def make_handler(tmp_path: Path, script: str, *, files: dict[str, str] | None = None, **config: Any) -> ToolkitHandler:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "inference.py").write_text(textwrap.dedent(script))
    for name, text in (files or {}).items():
        (code / name).write_text(textwrap.dedent(text))
    handler = handler_for(Bundle.open(tmp_path), ServerConfig.from_env({}, **config))
    assert isinstance(handler, ToolkitHandler)
    handler.load()
    return handler


def call(
    handler: ToolkitHandler, body: bytes, content_type: str | None, accept: str | None = None
) -> tuple[bytes, str]:
    prepared = handler.prepare(body, content_type, accept)
    return handler.finish(handler.predict(prepared.inputs), prepared)


def recorded(handler: ToolkitHandler, body: bytes, content_type: str | None, accept: str | None = None) -> Any:
    answer, _ = call(handler, body, content_type, accept)
    return orjson.loads(answer)


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


@pytest.mark.parametrize(
    ("content_type", "body", "body_type", "seen_type"),
    [
        ("application/json", b'{"x": 1}', "str", "application/json"),
        ("text/csv", b"1,2\n", "str", "text/csv"),
        ("text/csv; charset=utf-8", b"1,2\n", "str", "text/csv"),  # parameters stripped
        ("Application/JSON; charset=UTF-8", b"[1]", "str", "application/json"),
        ("application/x-npy", b"\x93NUMPY", "bytes", "application/x-npy"),
        ("application/octet-stream", b"\x00\x01", "bytes", "application/octet-stream"),
        ("image/jpeg", b"\xff\xd8", "bytes", "image/jpeg"),
        ("application/x-ndjson", b"{}\n", "bytes", "application/x-ndjson"),  # as sent, not Shipyard's alias
        (None, b"[1]", "str", "application/json"),
    ],
)
def test_input_fn_gets_str_for_json_and_csv_bytes_otherwise(
    tmp_path: Path, content_type: str | None, body: bytes, body_type: str, seen_type: str
) -> None:
    handler = make_handler(tmp_path, RECORDING)
    seen = recorded(handler, body, content_type, "application/json")["input"]
    assert seen["body_type"] == body_type
    assert seen["content_type"] == seen_type
    assert seen["body"] == (body.decode() if body_type == "str" else body.hex())


def test_text_in_another_charset_is_decoded(tmp_path: Path) -> None:
    handler = make_handler(tmp_path, RECORDING)
    seen = recorded(handler, "é,1\n".encode("latin-1"), "text/csv; charset=latin-1", "application/json")
    assert seen["input"]["body"] == "é,1\n"
    with pytest.raises(RequestError, match="not valid text"):
        call(handler, b"\xff\xfe", "application/json")


def test_model_fn_gets_the_bundle_directory(tmp_path: Path) -> None:
    handler = make_handler(tmp_path, RECORDING)
    assert recorded(handler, b"{}", "application/json")["model"] == {"dir": str(tmp_path)}


@pytest.mark.parametrize(
    ("accept", "seen"),
    [
        ("text/csv", "text/csv"),
        (None, "application/json"),  # missing: the request's own type
        ("*/*", "application/json"),
        ("", "application/json"),
    ],
)
def test_output_fn_accept(tmp_path: Path, accept: str | None, seen: str) -> None:
    handler = make_handler(tmp_path, RECORDING)
    answer, content_type = call(handler, b"{}", "application/json", accept)
    assert orjson.loads(answer)["accept"] == seen
    assert content_type == seen  # output_fn returned a bare body: it is the accepted type


def test_default_accept_setting(tmp_path: Path) -> None:
    handler = make_handler(tmp_path, RECORDING, default_accept="application/jsonlines")
    assert recorded(handler, b"{}", "application/json", "*/*")["accept"] == "application/jsonlines"


def test_output_fn_may_return_body_and_content_type(tmp_path: Path) -> None:
    handler = make_handler(
        tmp_path,
        """
        def model_fn(model_dir):
            return None
        def input_fn(body, content_type):
            return body
        def predict_fn(data, model):
            return data.upper()
        def output_fn(prediction, accept):
            return prediction.encode(), "text/plain; charset=utf-8"
        """,
    )
    assert call(handler, b'"abc"', "application/json", "application/json") == (b'"ABC"', "text/plain; charset=utf-8")


def test_transform_fn(tmp_path: Path) -> None:
    handler = make_handler(
        tmp_path,
        """
        def model_fn(model_dir):
            return 3
        def transform_fn(model, request_body, content_type, accept):
            return f"{model}|{request_body}|{content_type}|{accept}", "text/plain"
        """,
    )
    assert call(handler, b"1,2", "text/csv; charset=utf-8", "text/csv") == (b"3|1,2|text/csv|text/csv", "text/plain")


def test_missing_functions_use_the_defaults(tmp_path: Path) -> None:
    handler = make_handler(
        tmp_path,
        """
        import numpy as np

        class Doubler:
            def predict(self, data):
                return np.asarray(data) * 2

        def model_fn(model_dir):
            return Doubler()
        """,
    )
    assert call(handler, b"[[1, 2], [3, 4]]", "application/json") == (b"[[2,4],[6,8]]", "application/json")
    assert call(handler, b"1,2\n3,4\n", "text/csv") == (b"2.0,4.0\n6.0,8.0\n", "text/csv")
    answer, content_type = call(handler, npy(np.arange(3.0)), "application/x-npy", "application/x-npy")
    assert content_type == "application/x-npy"
    np.testing.assert_array_equal(np.load(io.BytesIO(answer)), [0.0, 2.0, 4.0])
    assert call(handler, b"[1]\n[2]\n", "application/jsonlines") == (b"[2]\n[4]\n", "application/jsonlines")
    assert call(handler, b"[1, 2]", "application/json", "text/csv") == (b"2\n4\n", "text/csv")


def test_default_predict_calls_a_callable_model(tmp_path: Path) -> None:
    handler = make_handler(
        tmp_path,
        """
        def model_fn(model_dir):
            return lambda data: data.sum()
        def output_fn(prediction, accept):
            return str(prediction)
        """,
    )
    assert call(handler, b"[1, 2, 3]", "application/json") == (b"6", "application/json")


def test_default_input_refuses_unknown_types_with_415(tmp_path: Path) -> None:
    handler = make_handler(tmp_path, "def model_fn(model_dir):\n    return lambda data: data\n")
    with pytest.raises(UnsupportedMediaType):
        handler.prepare(b"x", "text/plain", None)
    with pytest.raises(NotAcceptable):
        handler.prepare(b"[1]", "application/json", "image/png")


def test_input_fn_error_is_400(tmp_path: Path) -> None:
    handler = make_handler(
        tmp_path,
        """
        def model_fn(model_dir):
            return None
        def input_fn(body, content_type):
            raise ValueError(f"Unsupported content type: {content_type}")
        """,
    )
    with pytest.raises(
        RequestError, match="input_fn rejected the request: ValueError: Unsupported content type"
    ) as info:
        call(handler, b"{}", "application/json")
    assert info.value.http_status == 400


@pytest.mark.parametrize("failing", ["predict_fn", "output_fn"])
def test_predict_and_output_errors_are_500_with_the_message(tmp_path: Path, failing: str) -> None:
    handler = make_handler(
        tmp_path,
        f"""
        def model_fn(model_dir):
            return None
        def input_fn(body, content_type):
            return body
        def predict_fn(data, model):
            if "{failing}" == "predict_fn":
                raise KeyError("weights")
            return data
        def output_fn(prediction, accept):
            raise KeyError("weights")
        """,
    )
    with pytest.raises(ModelError, match=f"{failing} raised KeyError: 'weights'") as info:
        call(handler, b"{}", "application/json")
    assert info.value.http_status == 500
    assert isinstance(info.value.__cause__, KeyError)


def test_script_may_import_its_siblings(tmp_path: Path) -> None:
    handler = make_handler(
        tmp_path,
        """
        from helpers_for_test_toolkit import shout

        def model_fn(model_dir):
            return shout
        def predict_fn(data, model):
            return model(str(data.tolist()))
        def output_fn(prediction, accept):
            return prediction
        """,
        files={"helpers_for_test_toolkit.py": "def shout(text):\n    return text + '!'\n"},
    )
    assert call(handler, b"[1]", "application/json")[0] == b"[1]!"


def test_sagemaker_program_names_another_script(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "serve_me.py").write_text(
        "def model_fn(model_dir):\n    return None\ndef transform_fn(m, b, c, a):\n    return 'custom'\n"
    )
    config = ServerConfig.from_env({"SAGEMAKER_PROGRAM": "serve_me.py"})
    handler = handler_for(Bundle.open(tmp_path, config.program), config)
    handler.load()
    prepared = handler.prepare(b"{}", "application/json", None)
    assert handler.finish(handler.predict(prepared.inputs), prepared)[0] == b"custom"


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("def input_fn(body, content_type):\n    return body\n", "defines no model_fn"),
        ("import no_such_module_here\n", "importing inference.py failed: ModuleNotFoundError"),
        (
            "def model_fn(d):\n    return 1\ndef transform_fn(m, b, c, a):\n    return b\n"
            "def predict_fn(d, m):\n    return d\n",
            "defines transform_fn together with",
        ),
    ],
)
def test_bad_scripts_fail_to_load(tmp_path: Path, script: str, message: str) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text(script)
    handler = handler_for(Bundle.open(tmp_path), ServerConfig.from_env({}))
    with pytest.raises(BundleError, match=message):
        handler.load()


def test_model_fn_error_propagates(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text("def model_fn(d):\n    raise FileNotFoundError('model.pth')\n")
    handler = handler_for(Bundle.open(tmp_path), ServerConfig.from_env({}))
    with pytest.raises(FileNotFoundError, match=r"model\.pth"):
        handler.load()


def test_not_batchable_one_request_per_call(tmp_path: Path) -> None:
    handler = make_handler(tmp_path, RECORDING)
    assert handler.batchable is False
    assert handler.prepare(b"{}", "application/json", None).rows == 1
