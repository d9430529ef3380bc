"""The ``sagemaker`` backend: Model Package Groups and versioned model packages (SageMaker's Model Registry).

``create`` packs the bundle (``bundle.archive.pack``), uploads it and the evaluation metrics under Shipyard's
bucket (``sagemaker-REGION-ACCOUNT``, the deploy target's; ``--bucket`` another) at
``shipyard/registry/GROUP/SHA/`` (content-addressed: the same bundle registered twice is one object), makes the
group on first use and calls ``CreateModelPackage`` (:func:`package_request`). The image is required there
(``InferenceSpecification.Containers[].Image``): a run's record carries it (by digest); for a plain bundle give
``--image URI`` (e.g. one ``shipyard build`` made and pushed). Approval is ``UpdateModelPackage``
(``ModelApprovalStatus``, ``ApprovalDescription``); the deployment history lives in
``CustomerMetadataProperties`` (``registry/metadata.py``), sent whole on every change.
"""

from __future__ import annotations

import contextlib
import functools
import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from shipyard.bundle.archive import pack
from shipyard.cloud.model_registry import ModelRegistryGateway
from shipyard.cloud.s3 import S3Gateway, default_bucket
from shipyard.cloud.session import Aws, tag_list
from shipyard.errors import RegistryError
from shipyard.registry import metadata
from shipyard.registry.base import check_status, find_group, find_version
from shipyard.registry.local import sha256_of
from shipyard.registry.model import PENDING, HistoryEntry, ModelGroup, ModelVersion, NewVersion
from shipyard.registry.sources import read_metrics
from shipyard.settings import Settings

__all__ = ["GROUP_TAG", "SageMakerRegistry", "from_described", "package_request", "require_image"]

GROUP_TAG = "shipyard:model-group"  # not shipyard:deployment: a registry object is no deployment's resource


def require_image(new: NewVersion) -> None:
    """InferenceSpecification needs an image: a RegistryError saying where one comes from when there is none."""
    if not new.image:
        raise RegistryError(
            "the sagemaker registry needs the version's image: give --image URI (an image `shipyard build` made and "
            "pushed to ECR), or register run:NAME of a run that recorded its image"
        )


def package_request(
    new: NewVersion, *, model_data_url: str, metrics_uri: str | None, model_sha256: str | None = None
) -> dict[str, Any]:
    """The ``CreateModelPackage`` request of ``new`` (its model already at ``model_data_url``)."""
    require_image(new)
    container: dict[str, Any] = {"Image": str(new.image), "ModelDataUrl": model_data_url}
    if new.image_digest:
        container["ImageDigest"] = new.image_digest
    inference: dict[str, Any] = {
        "Containers": [container],
        "SupportedContentTypes": new.content_types,
        "SupportedResponseMIMETypes": new.response_types,
    }
    if new.realtime_instance_types:
        inference["SupportedRealtimeInferenceInstanceTypes"] = new.realtime_instance_types
    if new.transform_instance_types:
        inference["SupportedTransformInstanceTypes"] = new.transform_instance_types
    draft = ModelVersion(**vars(new), model_sha256=model_sha256)
    request: dict[str, Any] = {
        "ModelPackageGroupName": new.group,
        "InferenceSpecification": inference,
        "CustomerMetadataProperties": metadata.encode(draft),
        "ModelApprovalStatus": PENDING,
        "Tags": tag_list({GROUP_TAG: new.group}),
    }
    if new.description:
        request["ModelPackageDescription"] = new.description[:1024]
    if metrics_uri:
        request["ModelMetrics"] = {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": metrics_uri}}
        }
    return request


def from_described(described: dict[str, Any], metrics: dict[str, float]) -> ModelVersion:
    """A version from ``DescribeModelPackage``'s answer (and the metrics its ModelQuality statistics hold)."""
    inference = described.get("InferenceSpecification") or {}
    container = (inference.get("Containers") or [{}])[0]
    fields = metadata.decode(dict(described.get("CustomerMetadataProperties") or {}))
    created = described.get("CreationTime")
    changed = described.get("LastModifiedTime")
    return ModelVersion(
        group=str(described["ModelPackageGroupName"]),
        version=int(described["ModelPackageVersion"]),
        status=str(described.get("ModelApprovalStatus") or PENDING),
        created_at=_time(created) or "",
        description=described.get("ModelPackageDescription"),
        approval_reason=described.get("ApprovalDescription"),
        status_changed_at=_time(changed),
        source=fields.pop("source", ""),
        bundle_path=fields.pop("bundle_path", ""),
        model=str(container.get("ModelDataUrl") or ""),
        image=container.get("Image"),
        image_digest=container.get("ImageDigest") or fields.pop("image_digest", None),
        content_types=list(inference.get("SupportedContentTypes") or []),
        response_types=list(inference.get("SupportedResponseMIMETypes") or []),
        realtime_instance_types=list(inference.get("SupportedRealtimeInferenceInstanceTypes") or []),
        transform_instance_types=list(inference.get("SupportedTransformInstanceTypes") or []),
        metrics=metrics,
        arn=str(described["ModelPackageArn"]),
        **{k: v for k, v in fields.items() if k != "image_digest"},
    )


class SageMakerRegistry:
    """The registry in SageMaker (``region``: the AWS configuration's unless given)."""

    name = "sagemaker"

    def __init__(
        self, settings: Settings | None = None, *, region: str | None = None, bucket: str | None = None
    ) -> None:
        self.settings = settings or Settings.from_env()
        self._region, self._bucket = region, bucket

    @functools.cached_property
    def aws(self) -> Aws:
        return Aws(self._region)

    @functools.cached_property
    def gateway(self) -> ModelRegistryGateway:
        return ModelRegistryGateway(self.aws)

    @property
    def where(self) -> str:
        return f"SageMaker's model registry in {self.aws.region}"

    # -- writing ----------------------------------------------------------------------------------------------
    def create(self, new: NewVersion) -> ModelVersion:
        require_image(new)  # before anything is uploaded
        s3 = S3Gateway(self.aws)
        bucket = self._bucket or default_bucket(self.aws.region, self.aws.account)
        if not s3.bucket_exists(bucket):
            s3.create_bucket(bucket)
        tags = {GROUP_TAG: new.group}
        with tempfile.TemporaryDirectory(prefix="shipyard-register-") as tmp:
            archive = pack(new.bundle_path, Path(tmp) / "model.tar.gz")
            digest = sha256_of(archive)
            prefix = f"shipyard/registry/{new.group}/{digest.removeprefix('sha256:')[:16]}/"
            model_url = s3.upload(archive, bucket, prefix + "model.tar.gz", tags=tags)
            metrics_uri = None
            if new.metrics:
                statistics = Path(tmp) / "evaluation.json"
                statistics.write_bytes(_statistics(new))
                metrics_uri = s3.upload(statistics, bucket, prefix + "evaluation.json", tags=tags)
        self.gateway.create_group(new.group, description=f"Shipyard model group {new.group}", tags=tag_list(tags))
        request = package_request(new, model_data_url=model_url, metrics_uri=metrics_uri, model_sha256=digest)
        arn = self.gateway.create_package(request)
        return self._read(arn)

    def set_status(self, group: str, number: int, status: str, reason: str | None) -> ModelVersion:
        version = self.version(group, number)
        check_status(version, status, reason)
        # the metadata again: moto empties CustomerMetadataProperties on an update that leaves it out (AWS keeps it)
        changes: dict[str, Any] = {
            "ModelApprovalStatus": status,
            "CustomerMetadataProperties": metadata.encode(version),
        }
        if reason:
            changes["ApprovalDescription"] = reason[:1024]
        self.gateway.update_package(str(version.arn), **changes)
        return self._read(str(version.arn))

    def add_history(self, group: str, number: int, entry: HistoryEntry) -> ModelVersion:
        version = self.version(group, number)
        version.history.append(entry)
        # the whole map: AWS merges what is sent into what is there, moto replaces it; either way all of it is kept
        self.gateway.update_package(str(version.arn), CustomerMetadataProperties=metadata.encode(version))
        return self._read(str(version.arn))

    def model_file(self, version: ModelVersion) -> Path:
        """The ModelDataUrl downloaded once into the cache (again when its sha256 no longer matches)."""
        cached = self.settings.cache_dir / "registry" / version.group / str(version.version) / "model.tar.gz"
        if not cached.is_file() or (version.model_sha256 and sha256_of(cached) != version.model_sha256):
            self.gateway.download(version.model, cached)
        return cached

    # -- reading ----------------------------------------------------------------------------------------------
    def _read(self, arn: str) -> ModelVersion:
        described = self.gateway.describe_package(arn)
        if described is None:
            raise RegistryError(f"the model package {arn} is gone from {self.where}")
        return from_described(described, self._metrics(described))

    def _metrics(self, described: dict[str, Any]) -> dict[str, float]:
        uri = (((described.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}).get("S3Uri")
        body = self.gateway.get_object(uri) if uri else None
        if body is None:
            return {}
        with contextlib.suppress(RegistryError):
            return read_metrics(body, str(uri))
        return {}

    def _group(self, name: str, summary: dict[str, Any]) -> ModelGroup:
        created = summary.get("CreationTime")
        versions = [self._read(str(p["ModelPackageArn"])) for p in self.gateway.list_packages(name)]
        return ModelGroup(
            name=name,
            created_at=_time(created) or "",
            description=summary.get("ModelPackageGroupDescription"),
            arn=summary.get("ModelPackageGroupArn"),
            versions=sorted(versions, key=lambda v: v.version),
        )

    def groups(self) -> list[ModelGroup]:
        return [self._group(str(s["ModelPackageGroupName"]), s) for s in self.gateway.list_groups()]

    def group(self, name: str) -> ModelGroup:
        summary = self.gateway.describe_group(name)
        if summary is None:
            names = [ModelGroup(str(s["ModelPackageGroupName"]), "") for s in self.gateway.list_groups()]
            return find_group(names, name, self.where)  # raises, naming the known groups
        return self._group(name, summary)

    def version(self, group: str, number: int) -> ModelVersion:
        described = None
        for name in dict.fromkeys((group.lower(), group)):  # AWS writes the group lowercased in the ARN; moto as given
            described = described or self.gateway.describe_package(
                self.aws.arn("sagemaker", f"model-package/{name}/{number}")
            )
        if described is None:
            return find_version(self.group(group), number, self.where)  # raises, naming the group's versions
        return from_described(described, self._metrics(described))


def _statistics(new: NewVersion) -> bytes:
    """The evaluation metrics as a model quality statistics file: the ``--metrics`` file itself when it is one
    (SageMaker's ``{"version": 0.0, "…_metrics": {NAME: {"value": V, ...}}}``), else that shape made of them."""
    if new.metrics_source and Path(new.metrics_source).is_file():
        original = Path(new.metrics_source).read_bytes()
        with contextlib.suppress(ValueError):
            document = json.loads(original)
            if isinstance(document, dict) and any(k.endswith("_metrics") for k in document):
                return original
    return json.dumps({"version": 0.0, "shipyard_metrics": {k: {"value": v} for k, v in new.metrics.items()}}).encode()


def _time(value: Any) -> str | None:
    """A time boto3 answered (a datetime) as ISO 8601."""
    return value.isoformat() if isinstance(value, datetime) else (str(value) if value else None)
