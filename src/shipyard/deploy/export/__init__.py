"""``shipyard export``: a deployment as infrastructure as code (CloudFormation, CDK, Terraform).

:mod:`.model` is the one description every writer reads: a :class:`~.model.Stack` of resources in
CloudFormation's own types and property shapes, with parameters for what a team changes. :func:`.collect.collect`
reads it from the deployment's record and its live resources; each writer (``cloudformation``, ``cdk``,
``terraform``: a module with ``write(stack, directory) -> list[Path]``) turns it into one format.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

from shipyard.errors import DeployError, SpecError

if TYPE_CHECKING:
    from shipyard.deploy.export.model import Stack
    from shipyard.deploy.sagemaker.context import Context
    from shipyard.deploy.state import Deployment

__all__ = ["FORMATS", "export", "write_files", "writer"]

FORMATS = ("cloudformation", "cdk", "terraform")

Writer = Callable[["Stack", Path], list[Path]]


def writer(format: str) -> Writer:
    """The ``write`` of the format's module (imported when asked for: each pulls in only what it needs)."""
    if format not in FORMATS:
        raise SpecError(f"--format {format!r}: one of {', '.join(FORMATS)}", option="format")
    try:
        module = importlib.import_module(f"shipyard.deploy.export.{format}")
    except ModuleNotFoundError as exc:  # a writer's own dependency (pyyaml for cloudformation)
        raise DeployError(f"the {format} export needs {exc.name}: pip install 'shipyard[aws]'") from None
    return cast(Writer, module.write)


def write_files(directory: Path, files: dict[str, str]) -> list[Path]:
    """Each writer's last step: ``files`` (name → text, in order) written into ``directory`` (made if missing)
    as UTF-8; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def export(ctx: Context, record: Deployment, format: str, directory: Path) -> list[Path]:
    """Read ``record``'s live resources (:func:`.collect.collect`) and write them in ``format`` into
    ``directory``; the files written. Only reads AWS."""
    from shipyard.deploy.export.collect import collect

    write = writer(format)  # an unknown format stops before any call to AWS
    return write(collect(ctx, record), directory)
