"""SageMaker: models, endpoint configs, endpoints, and invoking them (sagemaker-runtime)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.runtime import invoke_endpoint
from shipyard.cloud.session import Aws
from shipyard.errors import CloudError

__all__ = ["Invocation", "SageMakerGateway", "describe_or_none", "is_missing"]

# An execution role made seconds ago may not be assumable yet (IAM is eventually consistent).
_ROLE_NOT_READY = ("could not assume role", "not authorized to assume", "unable to assume")


def is_missing(exc: BaseException) -> bool:
    """SageMaker answers ``ValidationException: Could not find ...`` for a resource that does not exist."""
    if error_code(exc) not in {"ValidationException", "ResourceNotFound"}:
        return False
    message = str(exc).lower()
    return "could not find" in message or "does not exist" in message or "not found" in message


def describe_or_none(what: str, region: str | None, call: Callable[[], Mapping[str, Any]]) -> dict[str, Any] | None:
    """One SageMaker Describe* ``call``: its answer, or None when there is no such ``what`` (``is_missing``)."""
    with aws_call(f"describe the {what}", region):
        try:
            return dict(call())
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise


@dataclass(frozen=True)
class Invocation:
    body: bytes
    content_type: str
    seconds: float
    invoked_variant: str | None


class SageMakerGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("sagemaker")

    # -- create -----------------------------------------------------------------------------------------
    def create_model(
        self,
        name: str,
        *,
        image: str,
        role_arn: str,
        model_data_url: str | None,
        environment: dict[str, str],
        tags: list[dict[str, str]],
        role_wait_s: float = 60.0,
        mode: str = "SingleModel",
    ) -> str:
        container: dict[str, Any] = {"Image": image, "Mode": mode, "Environment": environment}
        if model_data_url:
            container["ModelDataUrl"] = model_data_url
        deadline = time.monotonic() + role_wait_s
        delay = 2.0
        with aws_call(f"create the SageMaker model {name}", self.aws.region):
            while True:
                try:
                    answer = self.client.create_model(
                        ModelName=name,
                        PrimaryContainer=container,
                        ExecutionRoleArn=role_arn,
                        EnableNetworkIsolation=False,  # the server fetches --secret values itself at start
                        Tags=tags,
                    )
                    return str(answer["ModelArn"])
                except ClientError as exc:
                    message = str(exc).lower()
                    if not any(m in message for m in _ROLE_NOT_READY) or time.monotonic() + delay > deadline:
                        raise
                    time.sleep(delay)
                    delay = min(delay * 2, 10.0)

    def create_endpoint_config(
        self,
        name: str,
        *,
        variant: dict[str, Any],
        data_capture: dict[str, Any] | None,
        tags: list[dict[str, str]],
        async_inference: dict[str, Any] | None = None,
    ) -> str:
        args: dict[str, Any] = {"EndpointConfigName": name, "ProductionVariants": [variant], "Tags": tags}
        if data_capture:
            args["DataCaptureConfig"] = data_capture
        if async_inference:
            args["AsyncInferenceConfig"] = async_inference
        with aws_call(f"create the endpoint config {name}", self.aws.region):
            return str(self.client.create_endpoint_config(**args)["EndpointConfigArn"])

    def create_endpoint(self, name: str, *, config: str, tags: list[dict[str, str]]) -> str:
        with aws_call(f"create the endpoint {name}", self.aws.region):
            return str(
                self.client.create_endpoint(EndpointName=name, EndpointConfigName=config, Tags=tags)["EndpointArn"]
            )

    def update_endpoint(self, name: str, *, config: str, deployment_config: dict[str, Any] | None = None) -> None:
        """UpdateEndpoint to ``config``; ``deployment_config``: its DeploymentConfig (blue/green traffic routing,
        the alarms to roll back on), else SageMaker's default (blue/green, all at once, no bake)."""
        args: dict[str, Any] = {"EndpointName": name, "EndpointConfigName": config}
        if deployment_config:
            args["DeploymentConfig"] = deployment_config
        with aws_call(f"update the endpoint {name} to the config {config}", self.aws.region):
            self.client.update_endpoint(**args)

    # -- read -------------------------------------------------------------------------------------------
    def _describe(self, what: str, call: str, **key: str) -> dict[str, Any] | None:
        method = getattr(self.client, call)
        return describe_or_none(f"{what} {next(iter(key.values()))}", self.aws.region, lambda: method(**key))

    def describe_endpoint(self, name: str) -> dict[str, Any] | None:
        return self._describe("endpoint", "describe_endpoint", EndpointName=name)

    def describe_endpoint_config(self, name: str) -> dict[str, Any] | None:
        return self._describe("endpoint config", "describe_endpoint_config", EndpointConfigName=name)

    def describe_model(self, name: str) -> dict[str, Any] | None:
        return self._describe("model", "describe_model", ModelName=name)

    def tags(self, arn: str) -> dict[str, str]:
        with aws_call(f"read the tags of {arn}", self.aws.region):
            tags = self.client.list_tags(ResourceArn=arn).get("Tags", [])
        return {t["Key"]: t["Value"] for t in tags}

    def untag(self, arn: str, keys: list[str]) -> None:
        with aws_call(f"remove the tags {', '.join(keys)} from {arn}", self.aws.region):
            self.client.delete_tags(ResourceArn=arn, TagKeys=keys)

    def list(self, kind: str, name_contains: str = "") -> list[dict[str, Any]]:
        """``kind``: ``endpoints``, ``endpoint_configs`` or ``models`` (summaries, every page)."""
        key = {"endpoints": "Endpoints", "endpoint_configs": "EndpointConfigs", "models": "Models"}[kind]
        args = {"NameContains": name_contains} if name_contains else {}
        found: list[dict[str, Any]] = []
        with aws_call(f"list the SageMaker {kind.replace('_', ' ')}", self.aws.region):
            for page in self.client.get_paginator(f"list_{kind}").paginate(**args):
                found.extend(page[key])
        return found

    # -- delete (idempotent) ----------------------------------------------------------------------------
    def _delete(self, what: str, call: str, **key: str) -> bool:
        with aws_call(f"delete the {what} {next(iter(key.values()))}", self.aws.region):
            try:
                getattr(self.client, call)(**key)
            except ClientError as exc:
                if is_missing(exc):
                    return False
                raise
        return True

    def delete_endpoint(self, name: str) -> bool:
        return self._delete("endpoint", "delete_endpoint", EndpointName=name)

    def delete_endpoint_config(self, name: str) -> bool:
        return self._delete("endpoint config", "delete_endpoint_config", EndpointConfigName=name)

    def delete_model(self, name: str) -> bool:
        return self._delete("model", "delete_model", ModelName=name)

    # -- invoke -----------------------------------------------------------------------------------------
    def invoke(self, endpoint: str, body: bytes, *, content_type: str, accept: str | None = None) -> Invocation:
        """``InvokeEndpoint`` once (:func:`shipyard.cloud.runtime.invoke_endpoint`); :class:`CloudError` for any
        answer but a success. The tool itself invokes through a transport (``shipyard.client.sagemaker``)."""
        answer = invoke_endpoint(
            self.aws.client("sagemaker-runtime"), endpoint, body, content_type=content_type, accept=accept
        )
        if answer.outcome != "ok":
            error = answer.error.get("Error", {})
            message = str(error.get("Message") or answer.message or answer.outcome)
            raise CloudError(f"cannot invoke the endpoint {endpoint}: {message}", aws_code=error.get("Code"))
        return Invocation(answer.body, answer.content_type, answer.seconds, answer.variant)
