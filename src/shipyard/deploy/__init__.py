"""Deploy a bundle or an image to an endpoint: ``local`` (the default: the real image under Podman or
Docker, emulating SageMaker hosting) or ``sagemaker`` (IAM, ECR, S3, SageMaker, autoscaling, logs).

    >>> endpoint = shipyard.deploy("bundle/", name="digits")                  # doctest: +SKIP
    >>> endpoint.predict(X[:2])                                                 # doctest: +SKIP
    >>> endpoint.delete()                                                       # doctest: +SKIP
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

from shipyard.deploy.api import Deployer, StatusRow
from shipyard.deploy.base import CleanupReport, DeployRun, Plan
from shipyard.deploy.endpoint import Endpoint
from shipyard.deploy.options import DeployOptions
from shipyard.deploy.state import StateStore
from shipyard.settings import Settings

__all__ = [
    "CleanupReport",
    "DeployOptions",
    "DeployRun",
    "Deployer",
    "Endpoint",
    "Plan",
    "StatusRow",
    "deploy",
    "endpoint",
]


def deploy(
    source: str | Path,
    name: str,
    *,
    state: str | Path | None = None,
    update: bool = False,
    settings: Settings | None = None,
    **options: Any,
) -> Endpoint:
    """Deploy ``source`` (a bundle directory, a ``model.tar.gz`` or an image) as the endpoint ``name``.

    ``options`` are those of ``shipyard deploy``, named as the fields of :class:`DeployOptions`
    (``target="sagemaker"``, ``instance_type``, ``instance_count``, ``serverless="2048:10"``,
    ``autoscale="1:4"`` with ``max_rps``, ``env``, ``secrets``, ``data_capture_pct``, ``startup_timeout_s``,
    ``region``, ``role_arn``, ``ttl="2h"``, ``log_retention_days``, ``bucket``, ``registry_override``,
    ``image``, ``base_image``, ``engine``, ``port``, ``workers``, ``notify``, ``idle="4h"`` with
    ``idle_action="notify"|"delete"``, ``async_inference=True`` with ``async_output``, ``async_failure``,
    ``notify_success``, ``notify_error``, ``max_concurrent``, ``invocation_timeout``: then ``predict_async``);
    ``target`` defaults to ``local``. On sagemaker ``ttl`` and ``idle`` are
    enforced in AWS (docs/cost.md).
    ``update=True`` replaces the model of an existing endpoint, keeping every option not given here.
    ``settings`` (default: :meth:`Settings.from_env`) give the state file (unless ``state``) and the
    registry override. Returns an :class:`Endpoint` with ``.predict()``, ``.logs()`` and ``.delete()``.
    """
    settings = settings or Settings.from_env()
    deployer = Deployer(StateStore(state, settings=settings), settings=settings)
    if update:
        return deployer.update(name, str(source), **options)
    return deployer.deploy(DeployOptions.parse(str(source), name, **options))


def endpoint(name: str, *, state: str | Path | None = None, settings: Settings | None = None) -> Endpoint:
    """The endpoint deployed earlier under ``name``."""
    settings = settings or Settings.from_env()
    return Deployer(StateStore(state, settings=settings), settings=settings).get(name)


class _CallableModule(types.ModuleType):
    """``shipyard.deploy`` is this package *and* the function: ``shipyard.deploy("bundle/", name="x")``."""

    def __call__(self, source: str | Path, name: str, **options: Any) -> Endpoint:
        return deploy(source, name, **options)


sys.modules[__name__].__class__ = _CallableModule
