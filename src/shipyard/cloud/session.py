"""One AWS account and region: a boto3 session, its clients, and a count of the API calls they make."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from shipyard.cloud.errors import aws_call
from shipyard.errors import CredentialsError, SpecError
from shipyard.version import __version__

__all__ = [
    "EXPERIMENT_TAG",
    "EXPIRES_TAG",
    "TAG_KEY",
    "TRAINING_TAG",
    "Aws",
    "Identity",
    "deployment_tags",
    "tag_list",
    "training_tags",
]

TAG_KEY = "shipyard:deployment"
"""Every resource Shipyard creates carries this tag, with the deployment's name as its value."""
EXPIRES_TAG = "shipyard:expires-at"
"""... and this one when the deployment has a time to live (ISO 8601, UTC)."""


TRAINING_TAG = "shipyard:training-run"
"""Every resource a training run creates (its job, role, repository, uploads) carries this tag, with the run's
name as its value ..."""
EXPERIMENT_TAG = "shipyard:experiment"
"""... and this one, with its experiment's name."""


def training_tags(run: str, experiment: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags of every resource of the training run ``run``; the user's ``extra`` tags first (ours win)."""
    return {**(extra or {}), TRAINING_TAG: run, EXPERIMENT_TAG: experiment}


def deployment_tags(name: str, expires_at: str | None = None) -> dict[str, str]:
    """The tags of every resource of the deployment ``name``."""
    return {TAG_KEY: name, **({EXPIRES_TAG: expires_at} if expires_at else {})}


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """``tags`` in the ``[{"Key": ..., "Value": ...}]`` shape most AWS APIs take."""
    return [{"Key": key, "Value": value} for key, value in tags.items()]


@dataclass(frozen=True)
class Identity:
    account: str
    arn: str
    partition: str


class Aws:
    """boto3 clients for one region, created once each, with every API call counted in :attr:`calls`.

    Retries follow boto3's usual settings (``AWS_MAX_ATTEMPTS``, ``AWS_RETRY_MODE``, the profile); the
    endpoint follows ``AWS_ENDPOINT_URL`` (which is how the tests point boto3 at a moto server).
    """

    def __init__(
        self,
        region: str | None = None,
        *,
        profile: str | None = None,
        session: Any = None,
        connect_timeout_s: float | None = None,
        max_attempts: int | None = None,
    ) -> None:
        """``connect_timeout_s`` and ``max_attempts`` bound how long an unreachable AWS takes to give up
        (botocore's defaults: 60 s per connection attempt, several attempts), for callers that go on without
        AWS, such as a dry run."""
        self._config = Config(user_agent_extra=f"shipyard/{__version__}")
        if connect_timeout_s is not None:
            self._config = self._config.merge(Config(connect_timeout=connect_timeout_s, read_timeout=30))
        if max_attempts is not None:
            self._config = self._config.merge(Config(retries={"total_max_attempts": max_attempts, "mode": "standard"}))
        with aws_call("read the AWS configuration"):
            self.session = session or boto3.Session(profile_name=profile, region_name=region)
        # boto3 reads AWS_DEFAULT_REGION and the config file, not AWS_REGION (which the other SDKs, Shipyard's
        # settings and the message below name): take it too, so the region a user set is the one used
        resolved = region or self.session.region_name or os.environ.get("AWS_REGION") or None
        if not resolved:
            raise SpecError(
                "no AWS region given, and none configured: set AWS_REGION (e.g. us-east-1)", option="region"
            )
        self.region: str = resolved
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()  # the chunking client calls from many threads
        self._clients: dict[str, Any] = {}
        self._identity: Identity | None = None

    def client(self, service: str, *, region: str | None = None) -> Any:
        """The (cached) boto3 client for ``service`` in this region, or in ``region`` for a service whose
        endpoints exist in a few regions only whatever the deployment's (the Price List API)."""
        where = region or self.region
        key = service if where == self.region else f"{service}@{where}"
        client = self._clients.get(key)
        if client is None:
            with aws_call(f"set up the {service} client", where):
                client = self.session.client(service, region_name=where, config=self._config)
            # Counted when the call's parameters are built: botocore emits that event to every handler, where
            # ``before-call`` stops at the first answer (a test's scripted one would go uncounted).
            client.meta.events.register("before-parameter-build", self._count)
            self._clients[key] = client
        return client

    def runtime_client(self, *, read_timeout_s: float, connections: int) -> Any:
        """A new sagemaker-runtime client for many concurrent invocations: ``connections`` pooled connections,
        a read time-out of ``read_timeout_s``, and no retries of its own: its caller retries, with backoff
        and a budget it sees (botocore's standard mode would otherwise retry a throttled call 2 more times
        out of sight, and a read time-out as well)."""
        config = Config(
            user_agent_extra=f"shipyard/{__version__}",
            retries={"total_max_attempts": 1, "mode": "standard"},
            read_timeout=read_timeout_s,
            connect_timeout=10,
            max_pool_connections=max(1, connections),
        )
        with aws_call("set up the sagemaker-runtime client", self.region):
            client = self.session.client("sagemaker-runtime", region_name=self.region, config=config)
        client.meta.events.register("before-parameter-build", self._count)
        return client

    def _count(self, model: Any, **_: Any) -> None:
        with self._calls_lock:
            self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def check_region(self, service: str = "sagemaker") -> None:
        """:class:`SpecError` when ``service`` does not exist in this region (a typo, or a region it lacks)."""
        known: set[str] = set()
        for partition in self.session.get_available_partitions():
            known.update(self.session.get_available_regions(service, partition_name=partition))
        if known and self.region not in known:
            raise SpecError(
                f"region {self.region!r} has no {service} service; choose one of: {', '.join(sorted(known))}",
                option="region",
            )

    def check_credentials(self) -> None:
        """:class:`CredentialsError` when boto3 finds no credentials at all (nothing is sent to AWS)."""
        with aws_call("read the AWS credentials", self.region):
            credentials = self.session.get_credentials()
        if credentials is None:
            raise CredentialsError(
                "no AWS credentials found: set AWS_PROFILE (after `aws configure` or `aws sso login`) or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use the local target, which needs none"
            )

    def identity(self) -> Identity:
        """Who the credentials belong to (STS GetCallerIdentity, asked once): also proves region access."""
        if self._identity is None:
            with aws_call(f"check the AWS credentials in {self.region}", self.region):
                answer = self.client("sts").get_caller_identity()
            arn = str(answer["Arn"])
            self._identity = Identity(account=str(answer["Account"]), arn=arn, partition=arn.split(":")[1])
        return self._identity

    @property
    def account(self) -> str:
        return self.identity().account

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        """``arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`` for this account and region."""
        ident = self.identity()
        return ":".join(
            ["arn", ident.partition, service, self.region if region else "", ident.account if account else "", resource]
        )
