"""The local target's public API: a front on 127.0.0.1 that behaves as API Gateway's REST API (``app``), run as
a detached process (``process``), reached as its callers reach it: ``HTTPTransport(url, exact=True)`` with the
key's ``x-api-key`` header."""

from shipyard.deploy.front.app import Front, FrontConfig, QuotaCounter, TokenBucket
from shipyard.deploy.front.process import FrontProcess, is_front, new_api_key, start_front, stop_front, write_key_file

__all__ = [
    "Front",
    "FrontConfig",
    "FrontProcess",
    "QuotaCounter",
    "TokenBucket",
    "is_front",
    "new_api_key",
    "start_front",
    "stop_front",
    "write_key_file",
]
