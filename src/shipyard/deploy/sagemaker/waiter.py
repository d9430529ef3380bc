"""Wait for an endpoint to settle, with a live status line; on failure, say why and show its logs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shipyard.cloud.logs import LogsGateway
from shipyard.cloud.sagemaker import SageMakerGateway
from shipyard.deploy.base import FAILED, IN_SERVICE, Reporter
from shipyard.errors import DeployError, DeployFailed, ShipyardError

__all__ = ["log_tail", "wait_in_service"]

# UpdateRollbackFailed: a blue/green update and SageMaker's own rollback both failed (a mix of both configs serves).
_SETTLED = {IN_SERVICE, FAILED, "OutOfService", "UpdateRollbackFailed"}


def log_tail(logs: LogsGateway, group: str, since_ms: int | None, lines: int = 30) -> tuple[str, ...]:
    """The endpoint's last container log lines (empty when it wrote none, or the group is unreadable)."""
    try:
        return tuple(f"{e.stream}: {e.message}" for e in logs.tail(group, lines, since_ms=since_ms))
    except ShipyardError:  # the tail only decorates the real error; never replace that error with this one
        return ()


def wait_in_service(
    sagemaker: SageMakerGateway,
    logs: LogsGateway,
    *,
    endpoint: str,
    log_group: str,
    reporter: Reporter,
    timeout_s: float,
    poll_s: float,
    since_ms: int | None = None,
    watch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll ``DescribeEndpoint`` until InService; :class:`DeployFailed` (reason + log tail) when it fails.

    ``watch`` sees every answer first (a guarded update reports its traffic steps from them)."""
    started = time.monotonic()
    while True:
        described = sagemaker.describe_endpoint(endpoint)
        elapsed = time.monotonic() - started
        if described is None:
            raise DeployError(f"the endpoint {endpoint} disappeared while waiting for it (deleted elsewhere?)")
        if watch is not None:
            watch(described)
        state = str(described.get("EndpointStatus"))
        reporter.status(state, elapsed, str(described.get("FailureReason") or ""))
        if state in _SETTLED:
            if state == IN_SERVICE:
                return described
            reason = str(described.get("FailureReason") or "SageMaker gave no reason")
            tail = log_tail(logs, log_group, since_ms)
            raise DeployFailed(
                f"the endpoint {endpoint} is {state}: {reason}" + _hint(reason, tail),
                reason=reason,
                log_tail=tail,
            )
        if elapsed > timeout_s:
            tail = log_tail(logs, log_group, since_ms)
            raise DeployFailed(
                f"the endpoint {endpoint} is still {state} after {elapsed:.0f} s; it may still finish: watch it "
                f"with `shipyard status {endpoint}` and `shipyard logs {endpoint} --follow`",
                reason=f"still {state} after {elapsed:.0f} s",
                log_tail=tail,
            )
        time.sleep(poll_s)


def _hint(reason: str, tail: tuple[str, ...]) -> str:
    text = reason.lower()
    if "ping" in text or "health check" in text:
        hint = (
            "the container did not answer GET /ping in time: the model may load slowly (raise --startup-timeout), "
            "or the server crashed at start (see the log lines)"
        )
    elif "image" in text and ("not supported" in text or "manifest" in text or "architecture" in text):
        hint = "the image is not a single-platform linux/amd64 image; rebuild it with `shipyard build`"
    elif "s3" in text or "model data" in text or "modeldataurl" in text:
        hint = "SageMaker could not read model.tar.gz: check the role's S3 access and the object's KMS key"
    elif "assume" in text or "role" in text:
        hint = "SageMaker could not use the execution role; check its trust policy (or the role_arn given)"
    else:
        return "" if tail else " (the endpoint wrote no logs)"
    return f"; likely cause: {hint}" + ("" if tail else " (the endpoint wrote no logs)")
