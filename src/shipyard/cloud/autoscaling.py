"""Application Auto Scaling for an endpoint variant: a scalable target and one target-tracking policy."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import Aws

__all__ = ["DIMENSION", "METRIC", "AutoscalingGateway", "resource_id"]

DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"


def resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


class AutoscalingGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("application-autoscaling")

    def attach(
        self,
        endpoint: str,
        variant: str,
        *,
        minimum: int,
        maximum: int,
        target_invocations_per_minute: float,
        policy_name: str,
        tags: dict[str, str],
        scale_in_cooldown_s: int = 300,
        scale_out_cooldown_s: int = 60,
        metric: dict[str, Any] | None = None,
    ) -> str:
        """Register the variant as a scalable target and track ``InvocationsPerInstance`` (or ``metric``, a
        ``CustomizedMetricSpecification``, at ``target_invocations_per_minute``); the policy ARN."""
        tracked: dict[str, Any] = (
            {"CustomizedMetricSpecification": metric}
            if metric is not None
            else {"PredefinedMetricSpecification": {"PredefinedMetricType": METRIC}}
        )
        resource = resource_id(endpoint, variant)
        with aws_call(f"set up autoscaling for {resource}", self.aws.region):
            self.client.register_scalable_target(
                ServiceNamespace="sagemaker",
                ResourceId=resource,
                ScalableDimension=DIMENSION,
                MinCapacity=minimum,
                MaxCapacity=maximum,
                Tags=tags,
            )
            answer = self.client.put_scaling_policy(
                PolicyName=policy_name,
                ServiceNamespace="sagemaker",
                ResourceId=resource,
                ScalableDimension=DIMENSION,
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": float(target_invocations_per_minute),
                    **tracked,
                    "ScaleInCooldown": scale_in_cooldown_s,
                    "ScaleOutCooldown": scale_out_cooldown_s,
                },
            )
        return str(answer["PolicyARN"])

    def attach_step(self, endpoint: str, variant: str, *, policy_name: str, cooldown_s: int = 300) -> str:
        """A step scaling policy that adds one instance each time its alarm fires (an async endpoint's way out
        of zero instances, on ``HasBacklogWithoutCapacity``); the variant must be a scalable target already.
        The policy's ARN, for the alarm's action."""
        with aws_call(f"add the scale-from-zero policy to {resource_id(endpoint, variant)}", self.aws.region):
            answer = self.client.put_scaling_policy(
                PolicyName=policy_name,
                ServiceNamespace="sagemaker",
                ResourceId=resource_id(endpoint, variant),
                ScalableDimension=DIMENSION,
                PolicyType="StepScaling",
                StepScalingPolicyConfiguration={
                    "AdjustmentType": "ChangeInCapacity",
                    "MetricAggregationType": "Average",
                    "Cooldown": cooldown_s,
                    "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}],
                },
            )
        return str(answer["PolicyARN"])

    def target(self, endpoint: str, variant: str) -> dict[str, Any] | None:
        with aws_call("describe the scalable target", self.aws.region):
            found = self.client.describe_scalable_targets(
                ServiceNamespace="sagemaker", ResourceIds=[resource_id(endpoint, variant)], ScalableDimension=DIMENSION
            )["ScalableTargets"]
        return dict(found[0]) if found else None

    def policies(self, endpoint: str, variant: str) -> list[dict[str, Any]]:
        with aws_call("describe the scaling policies", self.aws.region):
            return list(
                self.client.describe_scaling_policies(
                    ServiceNamespace="sagemaker", ResourceId=resource_id(endpoint, variant), ScalableDimension=DIMENSION
                )["ScalingPolicies"]
            )

    def detach(self, endpoint: str, variant: str) -> bool:
        """Remove the policies and deregister the target; ``False`` when there was nothing to remove."""
        resource = resource_id(endpoint, variant)
        removed = False
        with aws_call(f"remove autoscaling from {resource}", self.aws.region):
            for policy in self.policies(endpoint, variant):
                self.client.delete_scaling_policy(
                    PolicyName=policy["PolicyName"],
                    ServiceNamespace="sagemaker",
                    ResourceId=resource,
                    ScalableDimension=DIMENSION,
                )
                removed = True
            try:
                self.client.deregister_scalable_target(
                    ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=DIMENSION
                )
                removed = True
            except ClientError as exc:
                # AWS answers ObjectNotFoundException; moto a ValidationException "No scalable target found"
                if error_code(exc) != "ObjectNotFoundException" and "no scalable target" not in str(exc).lower():
                    raise
        return removed
