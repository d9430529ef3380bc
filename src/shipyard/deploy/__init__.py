"""Deploy a bundle or an image to an endpoint: ``local`` (the default: the real image under Podman or
Docker, emulating SageMaker hosting) or ``sagemaker`` (IAM, ECR, S3, SageMaker, autoscaling, logs).

    >>> endpoint = shipyard.deploy("bundle/", name="digits")                  # doctest: +SKIP
    >>> endpoint.predict(X[:2])                                                 # doctest: +SKIP
    >>> endpoint.delete()                                                       # doctest: +SKIP
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from shipyard.deploy.api import Deployer, StatusRow
from shipyard.deploy.base import CleanupReport, Plan
from shipyard.deploy.endpoint import Endpoint
from shipyard.deploy.spec import DeploySpec, options_from
from shipyard.deploy.state import StateStore

__all__ = ["CleanupReport", "DeploySpec", "Deployer", "Endpoint", "Plan", "StatusRow", "deploy", "endpoint"]


def deploy(
    source: str | Path,
    name: str,
    *,
    target: str | None = None,
    instance_type: str | None = None,
    instance_count: int | None = None,
    serverless: str | None = None,
    autoscale: str | None = None,
    max_rps: float | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
    data_capture: int | None = None,
    startup_timeout: int | None = None,
    region: str | None = None,
    role_arn: str | None = None,
    ttl: str | None = None,
    image: str | None = None,
    port: int | None = None,
    state: str | Path | None = None,
    update: bool = False,
) -> Endpoint:
    """Deploy ``source`` (a bundle directory, a ``model.tar.gz`` or an image) as the endpoint ``name``.

    The same options as ``shipyard deploy`` (``target`` defaults to ``local``); ``update=True`` replaces the
    model of an existing endpoint, keeping every setting not given here. Returns an :class:`Endpoint` with
    ``.predict()``, ``.logs()`` and ``.delete()``.
    """
    options = options_from(
        target=target,
        instance_type=instance_type,
        instance_count=instance_count,
        serverless=serverless,
        autoscale=autoscale,
        max_rps=max_rps,
        env=env,
        secrets=secrets,
        data_capture=data_capture,
        startup_timeout=startup_timeout,
        region=region,
        role_arn=role_arn,
        ttl=ttl,
        image=image,
        port=port,
    )
    deployer = Deployer(StateStore(state))
    if update:
        return deployer.update(name, str(source), **options)
    return deployer.deploy(DeploySpec(source=str(source), name=name, **options))


def endpoint(name: str, *, state: str | Path | None = None) -> Endpoint:
    """The endpoint deployed earlier under ``name``."""
    return Deployer(StateStore(state)).get(name)


class _CallableModule(types.ModuleType):
    """``shipyard.deploy`` is this package *and* the function: ``shipyard.deploy("bundle/", name="x")``."""

    def __call__(self, source: str | Path, name: str, **options: Any) -> Endpoint:
        return deploy(source, name, **options)


sys.modules[__name__].__class__ = _CallableModule
