"""One exception tree for the whole project.

Every error Shipyard raises derives from :class:`ShipyardError`. Each class carries the HTTP status the
server answers with and the exit code the CLI leaves with, so errors are mapped to responses and exit
codes in exactly one place (the ASGI app's edge and the CLI's ``main``)::

    ShipyardError                  500 / exit 1
    ├── BundleError                    a bundle cannot be written, read or loaded (exit 2)
    ├── RequestError               400 the request is wrong
    │   ├── SchemaMismatch         400 it does not match the bundle's schema
    │   ├── UnsupportedMediaType   415 no codec for its Content-Type
    │   ├── NotAcceptable          406 no codec for its Accept
    │   └── PayloadTooLarge        413 over SAGEMAKER_MAX_PAYLOAD_IN_MB
    ├── ModelError                 500 the model (or the user's handler) raised
    ├── Overloaded                 503 the queue is full (Retry-After)
    ├── ModelNotReady              503 still loading
    ├── InferenceTimeout           504 over SAGEMAKER_MODEL_SERVER_TIMEOUT
    └── ClientError                    the client got an error answer (exit 4)
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BundleError",
    "ClientError",
    "InferenceTimeout",
    "ModelError",
    "ModelNotReady",
    "NotAcceptable",
    "Overloaded",
    "PayloadTooLarge",
    "RequestError",
    "SchemaMismatch",
    "ShipyardError",
    "UnsupportedMediaType",
]


class ShipyardError(Exception):
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1
    code: ClassVar[str] = "InternalError"


class BundleError(ShipyardError):
    exit_code = 2
    code = "BundleError"


class RequestError(ShipyardError):
    http_status = 400
    code = "BadRequest"


class SchemaMismatch(RequestError):
    code = "SchemaMismatch"


class UnsupportedMediaType(RequestError):
    http_status = 415
    code = "UnsupportedMediaType"


class NotAcceptable(RequestError):
    http_status = 406
    code = "NotAcceptable"


class PayloadTooLarge(RequestError):
    http_status = 413
    code = "PayloadTooLarge"


class ModelError(ShipyardError):
    code = "ModelError"


class Overloaded(ShipyardError):
    http_status = 503
    code = "Overloaded"


class ModelNotReady(ShipyardError):
    http_status = 503
    code = "ModelNotReady"


class InferenceTimeout(ShipyardError):
    http_status = 504
    code = "Timeout"


class ClientError(ShipyardError):
    exit_code = 4
    code = "ClientError"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
