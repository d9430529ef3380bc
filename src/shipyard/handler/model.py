"""The handler of bundles written by ``shipyard.save``: codecs and schema around a flavor's predictor."""

from __future__ import annotations

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
