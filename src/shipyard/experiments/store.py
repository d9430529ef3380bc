"""Reaching the MLflow tracking store: the one lazy import of MLflow, the URI checks, a quick health probe.

MLflow is the ``track`` extra (``pip install 'shipyard[track]'``): nothing imports it at module level, so the
core install never needs it. Any tracking URI MLflow knows works:

* ``sqlite:///PATH`` (the default, ``HOME/mlflow.db``: no server; MLflow 3.18 refuses a bare file store),
* ``http(s)://HOST:PORT`` (an MLflow tracking server: probed at ``/health`` first, so a dead one fails in
  seconds instead of MLflow's minutes of retries),
* SageMaker managed MLflow by its ARN (``arn:aws:sagemaker:REGION:ACCOUNT:mlflow-tracking-server/NAME`` or
  ``…:mlflow-app/…``), which MLflow reaches only through AWS's plugin (``pip install sagemaker-mlflow``: it
  registers the ``arn`` tracking store and signs requests with the AWS credentials).
"""

from __future__ import annotations

import importlib.util
import logging
import re
import urllib.error
import urllib.request
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import SettingsError, UsageError
from shipyard.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "INSTALL_HINT",
    "SAGEMAKER_ARN",
    "artifact_location",
    "check_tracking_uri",
    "client_for",
    "mlflow_available",
    "probe",
    "quiet_mlflow",
    "unreachable",
]

INSTALL_HINT = "pip install 'shipyard[track]'"
# SageMaker's pattern for an MLflow resource (AIMlflowConfig.MlflowResourceArn)
SAGEMAKER_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:mlflow-(app|tracking-server)/.+$")
_SETTING = "MLFLOW_TRACKING_URI"


def mlflow_available() -> bool:
    """Whether MLflow can be imported (found on the path; an ``import mlflow`` blocked or missing says no)."""
    try:
        return importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):
        return False


def quiet_mlflow() -> None:
    """MLflow's own INFO lines ("Creating initial MLflow database tables...") are not Shipyard's output."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def check_tracking_uri(uri: str) -> None:
    """Refuse, before anything runs, a tracking URI MLflow cannot use here (a SageMaker ARN without its plugin)."""
    if not uri.startswith("arn:"):
        return
    if not SAGEMAKER_ARN.match(uri):
        raise SettingsError(
            f"the tracking URI {uri!r} (MLFLOW_TRACKING_URI) is an ARN but not a SageMaker MLflow tracking server's "
            "(arn:aws:sagemaker:REGION:ACCOUNT:mlflow-tracking-server/NAME)",
            setting=_SETTING,
        )
    if not entry_points(group="mlflow.tracking_store", name="arn"):
        raise SettingsError(
            f"the tracking URI {uri} (MLFLOW_TRACKING_URI) is a SageMaker managed MLflow tracking server; MLflow "
            "reaches it only through AWS's plugin: pip install sagemaker-mlflow (it signs the requests with your AWS "
            "credentials)",
            setting=_SETTING,
        )


def probe(uri: str, timeout_s: float = 3.0) -> str | None:
    """Why the tracking server at an http(s) ``uri`` cannot be used now (None: it answers, or it is no server)."""
    if not uri.startswith(("http://", "https://")):
        return None
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s) as reply:
            reply.read(64)
        return None
    except urllib.error.HTTPError as exc:  # it answered: a server that protects /health is still a server
        return None if exc.code in (401, 403) else f"GET /health answered {exc.code}"
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", None) or exc)


def unreachable(uri: str, why: str) -> SettingsError:
    return SettingsError(
        f"the MLflow tracking server {uri} (MLFLOW_TRACKING_URI) cannot be reached ({why}); "
        "`shipyard runs --source local` lists "
        "Shipyard's own run records",
        setting=_SETTING,
    )


def client_for(uri: str) -> MlflowClient:
    """An MLflow client of the store at ``uri`` (a UsageError naming the extra when MLflow is not installed)."""
    check_tracking_uri(uri)
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise UsageError(f"MLflow is not installed: {INSTALL_HINT}") from None
    quiet_mlflow()
    if uri.startswith("sqlite:///"):  # SQLite makes the file, not its folder (a first run in a new home)
        Path(uri.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri)


def artifact_location(settings: Settings, uri: str) -> str | None:
    """Where a new experiment keeps artifacts: under Shipyard's home for a local store (MLflow's default is
    ``./mlruns`` in whatever folder the command ran in); the server's choice for a remote one."""
    if uri.startswith(("sqlite:", "file:", "/")):
        return (settings.shipyard_home / "mlartifacts").as_uri()
    return None


def mlflow_error(exc: BaseException) -> Any:
    """The error code of an MlflowException (``RESOURCE_ALREADY_EXISTS``...), else None."""
    return getattr(exc, "error_code", None)
