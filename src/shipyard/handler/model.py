"""The handler of bundles written by ``shipyard.save``: codecs and schema around a flavor's predictor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shipyard.bundle import Bundle
from shipyard.codecs import decoder_for, encoder_for
from shipyard.config import ServerConfig
from shipyard.errors import ModelNotReady
from shipyard.handler.base import Prepared
from shipyard.handler.flavors import flavor_module

__all__ = ["ModelHandler"]


class ModelHandler:
    def __init__(self, bundle: Bundle, config: ServerConfig) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.schema = bundle.manifest.input
        self.batchable = bundle.manifest.batchable
        self.config = config
        self.default_accept = config.default_accept
        # The server's setting (SHIPYARD_JSON_ENVELOPE) wins over the one the bundle was saved with.
        self.envelope = self.manifest.json_envelope if config.json_envelope is None else config.json_envelope
        self.description = f"{self.manifest.name} v{self.manifest.version} ({self.manifest.flavor})"
        self._flavor = flavor_module(self.manifest.flavor)  # the module only: its heavy imports come in load()
        self.preloadable = bool(getattr(self._flavor, "PRELOAD", False))
        self._predict: Any = None
        # SHIPYARD_STREAM_ROWS: every answer streamed, that many rows predicted and sent at a time (one JSON line
        # per row for JSON; see shipyard.serving.streaming)
        self.stream_rows = config.stream_rows
        self.streams = self.stream_rows > 0

    def load(self) -> None:
        module = self._flavor
        configure = getattr(module, "configure", None)
        if configure is not None:  # optional flavor hook, e.g. size torch's thread pool to this worker's cores
            configure(self.config)
        self._predict = module.load(self.bundle.path, self.manifest)

    def prepare(self, body: bytes, content_type: str | None, accept: str | None) -> Prepared:
        codec, media = decoder_for(content_type)
        answer = encoder_for(accept, media.essence, self.default_accept)
        inputs, rows = self.schema.coerce(codec.decode(body, media))
        return Prepared(inputs, rows, answer)

    def predict(self, inputs: Any) -> Any:
        if self._predict is None:
            raise ModelNotReady("the model is still loading")
        return self._predict(inputs)

    def finish(self, predictions: Any, prepared: Prepared) -> tuple[bytes, str]:
        codec = prepared.answer
        return codec.encode(predictions, envelope=self.envelope), codec.media_type

    def predict_stream(self, inputs: Any) -> Iterator[Any]:
        """The predictions of ``stream_rows`` rows at a time, each batch as soon as it is computed."""
        if self._predict is None:
            raise ModelNotReady("the model is still loading")
        take = inputs.iloc if type(inputs).__name__ == "DataFrame" else inputs
        size = max(1, self.stream_rows)
        for start in range(0, len(inputs), size):
            yield self._predict(take[start : start + size])

    def finish_chunk(self, predictions: Any, prepared: Prepared) -> tuple[bytes, str]:
        """One chunk's predictions: a JSON line per row for JSON (JSON Lines), else the Accept type's encoding."""
        codec = prepared.answer
        if codec.media_type not in ("application/json", "application/jsonlines"):
            return codec.encode(predictions, envelope=False), codec.media_type
        from shipyard.codecs.json import dumps

        rows = predictions.to_numpy() if hasattr(predictions, "to_numpy") else predictions
        rows = rows.tolist() if hasattr(rows, "tolist") else list(rows)
        return b"".join(dumps(row) + b"\n" for row in rows), "application/jsonlines"
