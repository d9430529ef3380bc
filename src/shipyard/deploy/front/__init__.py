"""The local target's public API: a front on 127.0.0.1 that behaves as API Gateway's REST API (``app``), run as
a detached process (``process``), reached by :class:`FrontTransport`."""

from shipyard.deploy.front.app import Front, FrontConfig, QuotaCounter, TokenBucket
from shipyard.deploy.front.process import FrontProcess, is_front, new_api_key, start_front, stop_front, write_key_file
from shipyard.deploy.front.transport import FrontTransport

__all__ = [
    "Front",
    "FrontConfig",
    "FrontProcess",
    "FrontTransport",
    "QuotaCounter",
    "TokenBucket",
    "is_front",
    "new_api_key",
    "start_front",
    "stop_front",
    "write_key_file",
]
