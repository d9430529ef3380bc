"""SageMaker handler scripts (``code/inference.py``), called exactly as the SageMaker inference toolkit does.

``model_fn(model_dir)`` once at start; then per request ``input_fn(body, content_type)``,
``predict_fn(data, model)``, ``output_fn(prediction, accept)``, any of which may be missing (defaults
below), or a single ``transform_fn(model, body, content_type, accept)``. As in the toolkit, JSON and CSV
bodies arrive as ``str``, other types as ``bytes``; ``output_fn`` may return a body or
``(body, content_type)``.

Three things are friendlier than the toolkit: the content type handed to the script has its parameters
stripped (``text/csv; charset=utf-8`` arrives as ``text/csv``), an exception raised in ``input_fn``
answers 400 (it is about the request), not 500, and the default ``input_fn`` reads CSV that starts with a
byte order mark (Excel's "CSV UTF-8"), where the toolkit's ``np.genfromtxt`` reads the first cell as the text
``"\ufeff1.5"`` and makes a column of strings. A script's own ``input_fn`` gets the body as the toolkit
decodes it, ``body.decode("utf-8")``, BOM included.

Defaults are the framework container's. For a ``torch.nn.Module`` (what ``model_fn`` returned, or the
TorchScript ``model.pt`` loaded when the script has no ``model_fn``) they are the PyTorch container's (see
:mod:`shipyard.handler.pytorch`). For any other model, the scikit-learn container's: ``input_fn`` decodes JSON,
CSV, NPY and JSON Lines into a numpy array where it can, and NPZ as the toolkit does (a scipy sparse matrix
for ``scipy.sparse.save_npz`` bodies, the array of a one-array ``numpy.savez`` body); ``predict_fn`` calls
``model.predict(data)`` or ``model(data)``; ``model_fn`` is required. For both, ``output_fn`` encodes the
prediction (bare, without an envelope; tensors as numpy) as the ``Accept`` type, or the request's type when
Accept is missing or ``*/*`` (JSON for a request in NPZ, which no encoder writes).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.bundle import Bundle
from shipyard.codecs import decoder_for, encoder_for, parse_media_type
from shipyard.codecs.csv import CSVRows
from shipyard.config import ServerConfig
from shipyard.errors import BundleError, ModelError, ModelNotReady, RequestError, ShipyardError
from shipyard.handler import pytorch
from shipyard.handler.base import Prepared

__all__ = ["ToolkitHandler"]

_TEXT_TYPES = {"application/json", "text/csv"}
_FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")
_STREAMS = "+streams"  # in loaded_state: the script's predict_fn or transform_fn is a generator function


class ToolkitHandler:
    batchable = False
    preloadable = False  # model_fn is the user's: it may start threads, so it loads in each worker

    def __init__(self, bundle: Bundle, config: ServerConfig) -> None:
        script = bundle.handler_script
        if script is None:
            raise BundleError(f"{bundle.path}/code/{bundle.program} does not exist")
        self.bundle = bundle
        self.script = script
        self.default_accept = config.default_accept
        self.description = f"{bundle.manifest.name} (handler code/{script.name})"
        self.functions: dict[str, Any] = {}
        self.model: Any = None
        self.pytorch = False  # model_fn gave a torch.nn.Module: the PyTorch container's defaults apply
        self._placement: pytorch.Placement | None = None  # such a model's device and float dtype
        self._loaded = False
        # predict_fn (or transform_fn) is a generator function: each request is answered as a stream of chunks
        # (see predict_stream and the server's shipyard.serving.streaming)
        self.streams = False

    def load(self) -> None:
        module = _import_script(self.script)
        self.functions = {name: getattr(module, name) for name in _FUNCTIONS if callable(getattr(module, name, None))}
        if "transform_fn" in self.functions and {"input_fn", "predict_fn", "output_fn"} & set(self.functions):
            raise BundleError(
                f"{self.script.name} defines transform_fn together with input_fn/predict_fn/output_fn; keep one style"
            )
        model_fn = self.functions.get("model_fn")
        if model_fn is not None:
            self.model = model_fn(str(self.bundle.path))
        else:
            found = pytorch.model_file(self.bundle.path)
            if found is None:
                raise BundleError(
                    f"{self.script.name} defines no model_fn(model_dir), and {self.bundle.path} holds no TorchScript "
                    f"{pytorch.DEFAULT_MODEL_FILE} for the PyTorch container's default model_fn to load"
                )
            self.model = pytorch.default_model_fn(str(self.bundle.path), path=found)
        self.pytorch = pytorch.is_torch_model(self.model)
        # read once: the defaults move and cast every request's tensor to them
        self._placement = pytorch.Placement.of(self.model) if self.pytorch else None
        self.streams = any(
            inspect.isgeneratorfunction(self.functions.get(name)) for name in ("predict_fn", "transform_fn")
        )
        self._loaded = True

    def loaded_state(self) -> tuple[str, ...]:
        """What :meth:`prepare` and :meth:`finish` need of a load made in another process (the model's): the
        names of the functions the script defines, and whether it streams."""
        return tuple(sorted(self.functions)) + ((_STREAMS,) if self.streams else ())

    def adopt(self, names: tuple[str, ...]) -> None:
        """Take :meth:`loaded_state` from the process that loaded the script (here the functions are only names)."""
        if not self._loaded:
            self.functions = dict.fromkeys(name for name in names if name != _STREAMS)
            self.streams = _STREAMS in names

    def prepare(self, body: bytes, content_type: str | None, accept: str | None) -> Prepared:
        media = parse_media_type(content_type)
        essence = media.essence if media else "application/json"
        custom_input = "input_fn" in self.functions or "transform_fn" in self.functions
        custom_output = "output_fn" in self.functions or "transform_fn" in self.functions
        if not custom_input:
            decoder_for(content_type)  # 415 now, before the body reaches the compute thread
        answer_codec = None if custom_output else encoder_for(accept, essence, self.default_accept)
        # The script sees the type as the client sent it, less its parameters: not Shipyard's canonical
        # spelling (a script testing for "application/x-ndjson" must not get "application/jsonlines").
        sent = content_type.partition(";")[0].strip().lower() if media and content_type else essence
        wanted = accept if accept and accept.strip() not in ("*/*", "") else (self.default_accept or sent)
        data: Any = body
        if essence in _TEXT_TYPES:
            try:
                data = body.decode(media.charset if media else "utf-8")
            except (LookupError, UnicodeDecodeError) as exc:
                raise RequestError(f"body is not valid text: {exc}") from None
        return Prepared((data, sent, wanted, content_type), 1, answer_codec)

    def predict(self, inputs: Any) -> Any:
        if not self._loaded:
            raise ModelNotReady("the model is still loading")
        data, essence, accept, raw_type = inputs
        transform_fn = self.functions.get("transform_fn")
        if transform_fn is not None:
            return _call(transform_fn, self.model, data, essence, accept)
        prediction = self._predicted(data, essence, raw_type)
        output_fn = self.functions.get("output_fn")
        if output_fn is None:
            return prediction
        return _call(output_fn, prediction, accept)

    def predict_stream(self, inputs: Any) -> Iterator[Any]:
        """The chunks of a streaming script's answer, as its generator yields them: ``output_fn`` applied to
        each when the script has one (the server encodes the others with the Accept type, see
        :meth:`finish_chunk`). An error raised while the generator runs is a ModelError, as in :meth:`predict`."""
        if not self._loaded:
            raise ModelNotReady("the model is still loading")
        data, essence, accept, raw_type = inputs
        transform_fn = self.functions.get("transform_fn")
        if transform_fn is not None:
            chunks = _call(transform_fn, self.model, data, essence, accept)
            output_fn = None
        else:
            chunks = self._predicted(data, essence, raw_type)
            output_fn = self.functions.get("output_fn")
        if not isinstance(chunks, Iterator):  # a generator function always gives one; be kind to the rest
            chunks = iter([chunks])
        name = "transform_fn" if transform_fn is not None else "predict_fn"
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except ShipyardError:
                raise
            except Exception as exc:
                raise ModelError(f"{name} raised {type(exc).__name__}: {exc}") from exc
            yield chunk if output_fn is None else _call(output_fn, chunk, accept)

    def _predicted(self, data: Any, essence: str, raw_type: str | None) -> Any:
        input_fn = self.functions.get("input_fn")
        try:
            if input_fn is not None:
                decoded = input_fn(data, essence)
            else:
                decoded = _default_input(data, raw_type)
                if self._placement is not None:
                    decoded = pytorch.to_tensor(decoded, raw_type, self.model, self._placement)
        except ShipyardError:
            raise
        except Exception as exc:
            raise RequestError(f"input_fn rejected the request: {type(exc).__name__}: {exc}") from exc
        predict_fn = self.functions.get("predict_fn")
        if predict_fn is not None:
            prediction = _call(predict_fn, decoded, self.model)
        elif self._placement is not None:
            prediction = _call(pytorch.default_predict, decoded, self.model, self._placement)
        else:
            prediction = _call(_default_predict, decoded, self.model)
        return prediction

    def finish(self, predictions: Any, prepared: Prepared) -> tuple[bytes, str]:
        codec = prepared.answer
        if codec is not None:
            return codec.encode(_plain(predictions), envelope=False), codec.media_type
        _, essence, accept, _ = prepared.inputs
        body, content_type = (
            predictions if isinstance(predictions, tuple) and len(predictions) == 2 else (predictions, None)
        )
        if content_type is None:
            content_type = accept if accept and "*" not in accept else essence
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes | bytearray | memoryview):
            from shipyard.codecs.json import dumps

            body, content_type = dumps(_plain(body)), "application/json"
        return bytes(body), str(content_type)

    def finish_chunk(self, chunk: Any, prepared: Prepared) -> tuple[bytes, str]:
        """One chunk of a stream as bytes, and the stream's content type. Without an ``output_fn`` each chunk is
        encoded as the Accept type asks; for JSON (the default) that is one JSON document per line, JSON Lines,
        so a reader splitting the stream at newlines gets whole records whatever the chunking on the way.
        ``output_fn``'s result (a body or ``(body, content_type)``) goes out as it is."""
        codec = prepared.answer
        if codec is not None and codec.media_type in _JSON_STREAMED:
            from shipyard.codecs.json import dumps

            return dumps(_plain(chunk)) + b"\n", STREAM_JSON
        return self.finish(chunk, prepared)


STREAM_JSON = "application/jsonlines"
_JSON_STREAMED = {"application/json", "application/jsonlines"}


def _import_script(script: Path) -> Any:
    code_dir = str(script.parent)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)  # the script may import its siblings (model.py, utils.py)
    spec = importlib.util.spec_from_file_location(script.stem, script)
    if spec is None or spec.loader is None:
        raise BundleError(f"cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[script.stem] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise BundleError(f"importing {script.name} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _call(function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except ShipyardError:
        raise
    except Exception as exc:
        raise ModelError(f"{getattr(function, '__name__', 'handler')} raised {type(exc).__name__}: {exc}") from exc


def _default_input(data: Any, content_type: str | None) -> Any:
    codec, media = decoder_for(content_type)
    payload = codec.decode(data.encode() if isinstance(data, str) else data, media)
    if isinstance(payload, CSVRows):
        try:
            return np.asarray(payload, dtype=np.float64)
        except ValueError:
            return np.asarray(payload)
    if isinstance(payload, list):
        try:
            return np.asarray(payload)
        except ValueError:
            return payload
    return payload


def _default_predict(data: Any, model: Any) -> Any:
    if hasattr(model, "predict"):
        return model.predict(data)
    if callable(model):
        return model(data)
    raise ModelError("no predict_fn is defined and the object model_fn returned has no predict()")


def _plain(value: Any) -> Any:
    value = pytorch.to_numpy(value)  # a tensor (the PyTorch container's default output_fn turns it into numpy)
    return value.tolist() if isinstance(value, np.ndarray) and value.dtype == object else value
