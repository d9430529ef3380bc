"""The names of a deployment's AWS resources, derived from its name (and a version per deploy/update)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from shipyard.cloud.logs import endpoint_log_group

__all__ = ["VARIANT", "Names", "new_version"]

VARIANT = "AllTraffic"
ROLE_PATH = "/shipyard/"
POLICY_NAME = "shipyard-endpoint"
_MAX = 63  # SageMaker model and endpoint-config names
_ROLE_MAX = 64


def new_version(now: datetime) -> str:
    """A sortable version for this deploy or update: ``20261123-130501``."""
    return now.strftime("%Y%m%d-%H%M%S")


def _fit(base: str, suffix: str, limit: int) -> str:
    """``base-suffix`` within ``limit`` characters; a long base is cut and keeps a hash of itself."""
    joined = f"{base}-{suffix}"
    if len(joined) <= limit:
        return joined
    digest = hashlib.sha256(base.encode()).hexdigest()[:6]
    room = limit - len(suffix) - len(digest) - 2
    return f"{base[:room].rstrip('-')}-{digest}-{suffix}"


@dataclass(frozen=True)
class Names:
    deployment: str

    @property
    def endpoint(self) -> str:
        return self.deployment

    @property
    def role(self) -> str:
        name = f"shipyard-{self.deployment}"
        if len(name) <= _ROLE_MAX:
            return name
        digest = hashlib.sha256(self.deployment.encode()).hexdigest()[:6]
        return f"{name[: _ROLE_MAX - 7].rstrip('-')}-{digest}"

    @property
    def repository(self) -> str:
        # ECR repository names are lower case.
        return f"shipyard/{self.deployment.lower()}"

    @property
    def log_group(self) -> str:
        return endpoint_log_group(self.deployment)

    @property
    def prefix(self) -> str:
        """The S3 key prefix of every object this deployment owns."""
        return f"shipyard/{self.deployment}/"

    @property
    def scaling_policy(self) -> str:
        return f"shipyard-{self.deployment}-invocations"

    # -- alarms, dashboard, notifications (deploy/sagemaker/alarms.py) ---------------------------------
    def alarm(self, metric: str) -> str:
        """``shipyard-NAME-ModelLatency``: one alarm per metric (CloudWatch alarm names: up to 255 characters)."""
        return f"shipyard-{self.deployment}-{metric}"

    @property
    def dashboard(self) -> str:
        return f"shipyard-{self.deployment}"

    @property
    def topic(self) -> str:
        """The SNS topic the alarms notify (``--notify EMAIL``); a given topic ARN is used as it is."""
        return f"shipyard-{self.deployment}-alarms"

    # -- the spend guards (deploy/sagemaker/guards.py) ------------------------------------------------------
    @property
    def ttl_schedule(self) -> str:
        """The one-time EventBridge Scheduler schedule that deletes the endpoint at its TTL (up to 64 characters)."""
        return _fit(f"shipyard-{self.deployment}", "ttl", 64)

    @property
    def idle(self) -> str:
        """The idle alarm's, EventBridge rule's and state machine's name: ``shipyard-NAME-idle`` (within the
        rule's 64 characters: a long name is cut and keeps a hash of itself)."""
        return _fit(f"shipyard-{self.deployment}", "idle", 64)

    @property
    def guard_role(self) -> str:
        """The role the TTL schedule and the idle state machine delete this endpoint with: ``shipyard-NAME.guard``
        (a dot, as :attr:`api_role`: no deployment's execution role can bear this name)."""
        name = f"shipyard-{self.deployment}.guard"
        if len(name) <= _ROLE_MAX:
            return name
        digest = hashlib.sha256(self.deployment.encode()).hexdigest()[:6]
        return f"{name[: _ROLE_MAX - 13].rstrip('-')}-{digest}.guard"

    # -- the public API (deploy/sagemaker/expose.py) -----------------------------------------------------
    @property
    def api(self) -> str:
        """The REST API's, usage plan's and API key's name."""
        return f"shipyard-{self.deployment}"

    @property
    def api_role(self) -> str:
        """The role API Gateway assumes to call InvokeEndpoint on this endpoint only: ``shipyard-NAME.api``. The
        dot is a character no deployment name has, so no other deployment's role (``shipyard-NAME-api`` is the
        execution role of a deployment called ``NAME-api``) can ever bear this name."""
        name = f"shipyard-{self.deployment}.api"
        if len(name) <= _ROLE_MAX:
            return name
        digest = hashlib.sha256(self.deployment.encode()).hexdigest()[:6]
        return f"{name[: _ROLE_MAX - 11].rstrip('-')}-{digest}.api"

    def model(self, version: str) -> str:
        return _fit(self.deployment, version, _MAX)

    def endpoint_config(self, version: str) -> str:
        return _fit(self.deployment, version, _MAX)

    def artifact_key(self, version: str) -> str:
        return f"{self.prefix}{version}/model.tar.gz"

    def capture_prefix(self) -> str:
        return f"{self.prefix}capture"
