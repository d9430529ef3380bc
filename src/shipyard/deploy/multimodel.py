"""A multi-model endpoint's models: a directory of bundles and ``model.tar.gz`` files, or an S3 prefix of them.

``shipyard deploy --multi-model DIR|s3://bucket/prefix/ --name fleet`` serves every model there from one
endpoint (SageMaker's ``Mode: MultiModel``, ``ModelDataUrl`` the prefix); each request names its model
(``TargetModel``, the ``X-Amzn-SageMaker-Target-Model`` header): its path under the prefix, e.g. ``a.tar.gz``.
The ``local`` target mounts a copy of DIR at :data:`MODELS_MOUNT`, each model named as on SageMaker (a bundle
directory packed as ``NAME.tar.gz``), and the server (``serving/multimodel.py``) loads a model the first time it
is named. ``shipyard models add fleet BUNDLE`` packs a bundle next to the others.

One image serves them all: built from one of the models (the first by name: the fleet shares its requirements)
with the model not baked in, or ``--image``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.bundle import Bundle
from shipyard.bundle.archive import is_archive, pack
from shipyard.errors import BundleError, SpecError

if TYPE_CHECKING:
    from shipyard.deploy.api import Deployer
    from shipyard.deploy.state import Deployment

__all__ = [
    "MODELS_MOUNT",
    "MULTI_MODEL_ENV",
    "TARGET_MODEL_HEADER",
    "add_model",
    "add_to_directory",
    "archive_name",
    "image_source",
    "models_in",
]

MODELS_MOUNT = "/opt/ml/models"
TARGET_MODEL_HEADER = "X-Amzn-SageMaker-Target-Model"
MULTI_MODEL_ENV = {"SAGEMAKER_MULTI_MODEL": "true", "SHIPYARD_MODELS_DIR": MODELS_MOUNT}


def _is_bundle_dir(path: Path) -> bool:
    try:
        Bundle.open(path)
    except BundleError:
        return False
    return True


def models_in(directory: str | Path) -> list[Path]:
    """The models of a multi-model directory: its bundle directories and archives, by name."""
    root = Path(directory)
    if not root.is_dir():
        raise SpecError(f"--multi-model {directory}: not a directory of models", option="multi_model")
    return sorted(p for p in root.iterdir() if is_archive(p) or (p.is_dir() and _is_bundle_dir(p)))


def image_source(source: str, image: str | None) -> str:
    """What the endpoint's image is built from: ``image`` when given, else the first model of the directory."""
    if image:
        return image
    if source.startswith("s3://"):
        raise SpecError(
            f"--multi-model {source}: give --image (`shipyard build BUNDLE` of one of its models: the fleet shares "
            "its requirements), or deploy from a local directory of the models",
            option="image",
        )
    models = models_in(source)
    if not models:
        raise SpecError(
            f"--multi-model {source}: no model in it (bundle directories or model.tar.gz files); the image is built "
            "from the first one",
            option="multi_model",
        )
    return str(models[0])


def archive_name(bundle: str | Path, name: str | None = None) -> str:
    """The TargetModel a bundle is added as: ``name`` (``.tar.gz`` added when missing), else the bundle's."""
    path = Path(bundle)
    chosen = name or (path.name if is_archive(path) else f"{path.name}.tar.gz")
    if not chosen.endswith((".tar.gz", ".tgz", ".tar")):
        chosen += ".tar.gz"
    if chosen.startswith("/") or ".." in Path(chosen).parts or len(chosen) > 1024:
        raise SpecError(f"target model {chosen!r}: a relative path under the endpoint's models", option="name")
    return chosen


def packed(bundle: str | Path, directory: str | Path) -> Path:
    """``bundle`` as a ``model.tar.gz`` in ``directory`` (an archive is checked and copied as it is)."""
    path = Path(bundle)
    if is_archive(path):
        target = Path(directory) / path.name
        shutil.copyfile(path, target)
        return target
    Bundle.open(path)  # a clear error for a directory that is no bundle
    return pack(path, Path(directory) / "model.tar.gz")


def add_to_directory(bundle: str | Path, directory: str | Path, name: str | None = None) -> Path:
    """Pack ``bundle`` into the models directory as ``name``; refuses to replace a model (the servers that loaded
    it would keep the old one until it is unloaded)."""
    target = Path(directory) / archive_name(bundle, name)
    if target.exists():
        raise SpecError(f"{target} exists: give the new model another name (--as NAME)", option="name")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shipyard-models-", dir=target.parent) as tmp:
        archive = packed(bundle, tmp)
        archive.chmod(0o644)  # the server's workers run unprivileged
        archive.replace(target)
    return target


def add_model(deployer: Deployer, name: str, bundle: str | Path, as_name: str | None = None) -> tuple[str, str]:
    """``shipyard models add NAME BUNDLE``: ``bundle`` packed as a ``model.tar.gz`` next to the deployment's other
    models (copied into its directory on ``local``, uploaded under its S3 prefix on ``sagemaker``); the
    TargetModel it answers to and where it went."""
    record = deployer.record(name)
    options = record.options
    if options is None or not options.multi_model:
        raise SpecError(f"{name} is not a multi-model endpoint (deploy it with --multi-model DIR|s3://…/)")
    target_model = archive_name(bundle, as_name)
    if record.target != "sagemaker":  # the copy the container serves (deploy/local.py), else the directory given
        served = record.details.model_dir or options.source
        return target_model, str(add_to_directory(bundle, served, target_model))
    from shipyard.deploy.sagemaker.target import SageMakerTarget

    target = deployer.target("sagemaker")
    assert isinstance(target, SageMakerTarget)
    ctx = target.context(name, record.region, expires_at=record.expires_at)
    prefix = _models_url(record, ctx.names.prefix, options.source)
    bucket, _, key_prefix = prefix.removeprefix("s3://").partition("/")
    key = key_prefix + target_model
    if ctx.s3.head(bucket, key) is not None:
        raise SpecError(f"s3://{bucket}/{key} exists: give the new model another name (--as NAME)", option="name")
    with tempfile.TemporaryDirectory(prefix="shipyard-models-") as tmp:
        archive = packed(bundle, tmp)
        return target_model, ctx.s3.upload(archive, bucket, key, tags=ctx.tags)


def _models_url(record: Deployment, deployment_prefix: str, source: str) -> str:
    """The S3 prefix of a sagemaker multi-model deployment's models: the one given, or the one deploy uploaded to."""
    if source.startswith("s3://"):
        return source
    bucket = record.details.bucket
    if not bucket:
        raise SpecError(f"the record of {record.name} has no bucket; run `shipyard status --reconcile`")
    return f"s3://{bucket}/{deployment_prefix}models/"
