"""Read one sagemaker deployment's live resources into a :class:`~.model.Stack` (``shipyard export``).

Every resource the record owns is read back from AWS (Describe*/Get* only: an export changes nothing) and
written in CloudFormation's type and property shapes, in the order a stack creates them:

| logical id            | type                                        | read with                                      |
|-----------------------|---------------------------------------------|------------------------------------------------|
| Role                  | AWS::IAM::Role (inline policy in Policies)  | GetRole, ListRolePolicies, GetRolePolicy       |
| Repository            | AWS::ECR::Repository                        | DescribeRepositories, GetLifecyclePolicy       |
| LogGroup              | AWS::Logs::LogGroup                         | DescribeLogGroups                              |
| Model                 | AWS::SageMaker::Model (image by digest)     | DescribeModel, DescribeImages                  |
| EndpointConfig        | AWS::SageMaker::EndpointConfig              | DescribeEndpointConfig                         |
| Endpoint              | AWS::SageMaker::Endpoint                    | DescribeEndpoint                               |
| ScalableTarget        | AWS::ApplicationAutoScaling::ScalableTarget | DescribeScalableTargets                        |
| ScalingPolicy         | AWS::ApplicationAutoScaling::ScalingPolicy  | DescribeScalingPolicies                        |
| Topic (+Subscription) | AWS::SNS::Topic, AWS::SNS::Subscription     | ListSubscriptionsByTopic                       |
| Alarm<Metric>         | AWS::CloudWatch::Alarm                      | DescribeAlarms                                 |
| Dashboard             | AWS::CloudWatch::Dashboard                  | GetDashboard                                   |
| GuardRole, TtlSchedule, IdleAlarm, IdleRule, IdleStateMachine: the spend guards, when recorded                 |
| Api, ApiResource, ApiMethod, ApiDeployment, ApiStage, ApiKey, ApiUsagePlan, ApiUsagePlanKey, ApiRole: the       |
| public API (``expose``), when recorded: GetRestApi, GetResources, GetStages, GetMethod, GetUsagePlan, GetApiKey |

What a team changes is a parameter: ``DeploymentName`` (every name derived from the deployment's name becomes
``!Sub`` of it), ``InstanceType`` and ``InstanceCount`` (instance endpoints), ``MinInstances``/``MaxInstances``
(autoscaling), ``LogRetentionDays``, ``NotifyEmail`` (an email subscription); the account, region and partition
are the stack's own (``${AWS::AccountId}``, ``${AWS::Region}``, ``${AWS::Partition}``). Two things stay pinned
to what runs now: the model's image by its digest (``REPOSITORY@sha256:...``) and its artifact by its S3 URI.

Not exported: the S3 artifact and bucket (the bucket is shared by every deployment of the account and region;
the artifact is referenced, not copied), the API key's value and its Secrets Manager secret (a stack must not
hold a secret), and Shipyard's own tags (``shipyard forget`` removes them: the resources are the stack's then).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from shipyard.cloud.autoscaling import DIMENSION
from shipyard.cloud.scheduler import one_time_at
from shipyard.cloud.session import EXPIRES_TAG, TAG_KEY
from shipyard.deploy.export.model import GetAtt, Parameter, Ref, Resource, Stack, Sub
from shipyard.deploy.sagemaker.context import Context
from shipyard.deploy.sagemaker.names import VARIANT
from shipyard.deploy.state import Deployment
from shipyard.errors import DeployError

__all__ = ["IMPORT_IDENTIFIERS", "NOT_IMPORTABLE", "SHIPYARD_TAGS", "collect"]

SHIPYARD_TAGS = (TAG_KEY, EXPIRES_TAG)

# The ResourceIdentifier keys of CloudFormation resource import, per type: each type's ``primaryIdentifier``
# in its registry schema (the schemas cfn-lint ships, data/schemas/providers/us-east-1.json).
IMPORT_IDENTIFIERS: dict[str, tuple[str, ...]] = {
    "AWS::IAM::Role": ("RoleName",),
    "AWS::ECR::Repository": ("RepositoryName",),
    "AWS::Logs::LogGroup": ("LogGroupName",),
    "AWS::SageMaker::Model": ("ModelArn",),
    "AWS::SageMaker::EndpointConfig": ("EndpointConfigArn",),
    "AWS::SageMaker::Endpoint": ("EndpointArn",),
    "AWS::ApplicationAutoScaling::ScalableTarget": ("ResourceId", "ScalableDimension", "ServiceNamespace"),
    "AWS::ApplicationAutoScaling::ScalingPolicy": ("Arn", "ScalableDimension"),
    "AWS::SNS::Topic": ("TopicArn",),
    "AWS::SNS::Subscription": ("Arn",),
    "AWS::CloudWatch::Alarm": ("AlarmName",),
    "AWS::CloudWatch::Dashboard": ("DashboardName",),
    "AWS::Scheduler::Schedule": ("Name",),
    "AWS::Events::Rule": ("Arn",),
    "AWS::StepFunctions::StateMachine": ("Arn",),
    "AWS::ApiGateway::RestApi": ("RestApiId",),
    "AWS::ApiGateway::Resource": ("RestApiId", "ResourceId"),
    "AWS::ApiGateway::Method": ("RestApiId", "ResourceId", "HttpMethod"),
    "AWS::ApiGateway::Deployment": ("DeploymentId", "RestApiId"),
    "AWS::ApiGateway::Stage": ("RestApiId", "StageName"),
    "AWS::ApiGateway::ApiKey": ("APIKeyId",),
    "AWS::ApiGateway::UsagePlan": ("Id",),
    "AWS::ApiGateway::UsagePlanKey": ("Id",),
}
# Every type above has read and list handlers in its registry schema, which is what resource import needs. One
# resource cannot be imported all the same: an email subscription not confirmed yet has no ARN to name it by.
NOT_IMPORTABLE: dict[str, str] = {
    "AWS::SNS::Subscription": "an email subscription is importable by its ARN only once its mail was confirmed "
    "(until then SNS answers PendingConfirmation); CloudFormation creates it again (a new confirmation mail)",
}

_NAME = "DeploymentName"
_LOWER = "DeploymentNameLower"  # SageMaker's ARNs hold the name in lower case (an IAM policy's resources)
# Words of the AWS strings an export holds (ARNs, service principals, SDK integrations, paths): a deployment named
# one of them keeps its names literal, since a whole-word substitution would also rewrite
# ``sagemaker.amazonaws.com`` or ``aws-sdk:sagemaker:deleteEndpoint``
# fmt: off
_VOCABULARY = frozenset({
    "aws", "arn", "amazonaws", "com", "cn", "sagemaker", "states", "events", "scheduler", "cloudwatch", "logs",
    "log", "group", "iam", "sts", "sns", "ecr", "dkr", "s3", "apigateway", "execute", "api", "sdk", "endpoint",
    "endpoints", "alarm", "role", "rule", "schedule", "default", "statemachine", "model", "shipyard", "alltraffic",
    "application", "autoscaling", "runtime", "invocations", "variant", "partition", "region",
})
# fmt: on


def _word(text: str) -> re.Pattern[str]:
    """``text`` as a whole word: not inside a longer name (``a`` never matches in ``a-b``'s ``ab``)."""
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(text)}(?![A-Za-z0-9])")


class _Substitute:
    """Literal account, region, partition and deployment name in a value read from AWS → ``!Sub`` of the
    stack's pseudo parameters and ``${DeploymentName}``; a string without any of them stays as it is."""

    def __init__(self, *, name: str, account: str, region: str, partition: str) -> None:
        # the name as given, and in lower case where SageMaker's ARNs have it so (a name with capitals)
        forms = [(name, _NAME)] + ([(name.lower(), _LOWER)] if name.lower() != name else [])
        self.names = [] if name.lower() in _VOCABULARY else [(_word(form), param) for form, param in forms]
        self.used: set[str] = set()
        self.literals = (
            (f"arn:{partition}:", "arn:${AWS::Partition}:"),
            (account, "${AWS::AccountId}"),
            (region, "${AWS::Region}"),
        )

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self(item) for item in value]
        return value

    def text(self, text: str) -> str | Sub:
        marked = text.replace("${", "${!")  # Fn::Sub's escape of a literal "${"
        for index, (literal, _) in enumerate(self.literals):
            marked = marked.replace(literal, f"\0{index}\0")
        for pattern, parameter in self.names:
            marked, count = pattern.subn("${" + parameter + "}", marked)
            if count:
                self.used.add(parameter)
        for index, (_, pseudo) in enumerate(self.literals):
            marked = marked.replace(f"\0{index}\0", pseudo)
        return Sub(marked) if marked != text.replace("${", "${!") else text


class _Collector:
    def __init__(self, ctx: Context, record: Deployment) -> None:
        self.ctx, self.record = ctx, record
        account = record.details.account or ctx.aws.account
        self.partition = ctx.aws.identity().partition
        self.sub = _Substitute(name=record.name, account=account, region=ctx.aws.region, partition=self.partition)
        self.stack = Stack(
            deployment=record.name,
            region=ctx.aws.region,
            account=account,
            description=f"The Shipyard deployment {record.name} ({ctx.aws.region}), exported by shipyard export",
        )
        self.owned_topic: str | None = None  # the alarms' topic when Shipyard made it (Ref Topic in their actions)
        self.stack.parameters.append(
            Parameter(_NAME, "String", record.name, "the deployment's name: every resource's name derives from it")
        )
        self.stack.parameters.append(
            Parameter(_LOWER, "String", record.name.lower(), f"{_NAME} in lower case, as SageMaker's ARNs hold it")
        )

    def add(
        self,
        logical_id: str,
        type_: str,
        properties: dict[str, Any],
        *,
        kind: str,
        physical_id: str,
        identifier: dict[str, str],
        depends_on: tuple[str, ...] = (),
        comment: str = "",
    ) -> Resource:
        resource = Resource(
            logical_id=logical_id,
            type=type_,
            properties={k: v for k, v in properties.items() if v is not None},
            kind=kind,
            physical_id=physical_id,
            import_identifier=identifier,
            depends_on=depends_on,
            comment=comment,
        )
        self.stack.resources.append(resource)
        return resource

    def parameter(self, name: str, type_: str, default: str | int, description: str) -> Ref:
        self.stack.parameters.append(Parameter(name, type_, default, description))
        return Ref(name)

    # -- the endpoint and what it is made of -----------------------------------------------------------------
    def role(self, logical_id: str, name: str, kind: str, comment: str) -> Resource:
        role = self.ctx.iam.describe_role(name)
        if role is None:
            raise DeployError(f"the IAM role {name} of {self.record.name} is gone: nothing to export for it")
        policies = self.ctx.iam.inline_policies(name)
        properties = {
            "RoleName": self.sub(name),
            "Path": role.get("Path", "/"),
            "Description": self.sub(role["Description"]) if role.get("Description") else None,
            "MaxSessionDuration": role.get("MaxSessionDuration"),
            "AssumeRolePolicyDocument": self.sub(role["AssumeRolePolicyDocument"]),
            "Policies": [
                {"PolicyName": policy, "PolicyDocument": self.sub(document)} for policy, document in policies.items()
            ]
            or None,
        }
        return self.add(
            logical_id,
            "AWS::IAM::Role",
            properties,
            kind=kind,
            physical_id=name,
            identifier={"RoleName": name},
            comment=comment,
        )

    def repository(self) -> None:
        name = self.record.one("ecr-repository")
        described = self.ctx.ecr.describe(name) if name else None
        if name is None or described is None:
            return
        scanning = described.get("imageScanningConfiguration") or {}
        encryption = described.get("encryptionConfiguration") or {}
        properties: dict[str, Any] = {
            "RepositoryName": self.sub(name),
            "ImageScanningConfiguration": {"ScanOnPush": bool(scanning.get("scanOnPush", False))},
            "ImageTagMutability": described.get("imageTagMutability", "MUTABLE"),
            "EncryptionConfiguration": {"EncryptionType": encryption.get("encryptionType", "AES256")},
            "LifecyclePolicy": {"LifecyclePolicyText": json.dumps(self.ctx.ecr.lifecycle(name), separators=(",", ":"))},
        }
        self.add(
            "Repository",
            "AWS::ECR::Repository",
            properties,
            kind="ecr-repository",
            physical_id=name,
            identifier={"RepositoryName": name},
            comment="the image repository: scan on push, immutable tags",
        )

    def log_group(self) -> None:
        name = self.record.one("log-group")
        described = self.ctx.logs.describe(name) if name else None
        if name is None or described is None:
            return
        days = described.get("retentionInDays")
        retention = (
            self.parameter("LogRetentionDays", "Number", int(str(days)), "days the logs are kept") if days else None
        )
        self.add(
            "LogGroup",
            "AWS::Logs::LogGroup",
            {"LogGroupName": self.sub(name), "RetentionInDays": retention},
            kind="log-group",
            physical_id=name,
            identifier={"LogGroupName": name},
            comment="the endpoint's container output (SageMaker's own group never expires)",
        )

    def model(self) -> None:
        name = self.record.details.model
        described = self.ctx.sagemaker.describe_model(name) if name else None
        if name is None or described is None:
            raise DeployError(f"{self.record.name} has no model to export (its record names {name!r})")
        container = dict(described.get("PrimaryContainer") or {})
        primary: dict[str, Any] = {"Image": self.pinned(str(container["Image"]))}
        if container.get("Mode"):
            primary["Mode"] = container["Mode"]
        if container.get("ModelDataUrl"):
            primary["ModelDataUrl"] = container["ModelDataUrl"]  # pinned: the artifact of this version
        if container.get("Environment"):
            primary["Environment"] = self.sub(container["Environment"])
        role_arn = str(described["ExecutionRoleArn"])
        owned_role = any(r.owned for r in self.record.of("role"))
        properties = {
            "ModelName": self.sub(name),
            "ExecutionRoleArn": GetAtt("Role", "Arn") if owned_role else role_arn,
            "PrimaryContainer": primary,
            "EnableNetworkIsolation": described.get("EnableNetworkIsolation"),
        }
        arn = str(described["ModelArn"])
        self.add(
            "Model",
            "AWS::SageMaker::Model",
            properties,
            kind="model",
            physical_id=name,
            identifier={"ModelArn": arn},
            comment="the model of the version that runs now, pinned by image digest",
        )

    def pinned(self, image: str) -> str:
        """``REPOSITORY@sha256:...`` for the model's ``REPOSITORY:TAG`` (DescribeImages of the tag)."""
        if "@sha256:" in image:
            return image
        repository_uri, _, tag = image.rpartition(":")
        if not repository_uri or "/" in tag:
            raise DeployError(f"the model's image {image} has no tag to pin by digest")
        repository = repository_uri.split("/", 1)[1]
        digest = self.ctx.ecr.image_digest(repository, tag)
        if digest is None:
            raise DeployError(
                f"the model's image {image} is no longer in ECR (its lifecycle policy may have expired it): an "
                "export pins the image by its digest and cannot without it"
            )
        return f"{repository_uri}@{digest}"

    def endpoint_config(self) -> None:
        name = self.record.details.endpoint_config
        described = self.ctx.sagemaker.describe_endpoint_config(name) if name else None
        if name is None or described is None:
            raise DeployError(f"{self.record.name} has no endpoint config to export (its record names {name!r})")
        live = dict((described.get("ProductionVariants") or [{}])[0])
        variant: dict[str, Any] = {
            "VariantName": live.get("VariantName", VARIANT),
            "ModelName": GetAtt("Model", "ModelName"),
        }
        if live.get("ServerlessConfig"):
            serverless = live["ServerlessConfig"]
            variant["ServerlessConfig"] = {
                "MemorySizeInMB": serverless["MemorySizeInMB"],
                "MaxConcurrency": serverless["MaxConcurrency"],
            }
        else:
            variant["InstanceType"] = self.parameter(
                "InstanceType", "String", str(live["InstanceType"]), "the endpoint's instance type"
            )
            variant["InitialInstanceCount"] = self.parameter(
                "InstanceCount", "Number", int(live.get("InitialInstanceCount") or 1), "instances it starts with"
            )
            variant["InitialVariantWeight"] = float(live.get("InitialVariantWeight", 1.0))
            if live.get("ContainerStartupHealthCheckTimeoutInSeconds"):
                variant["ContainerStartupHealthCheckTimeoutInSeconds"] = live[
                    "ContainerStartupHealthCheckTimeoutInSeconds"
                ]
        properties: dict[str, Any] = {"EndpointConfigName": self.sub(name), "ProductionVariants": [variant]}
        capture = described.get("DataCaptureConfig")
        if capture:
            properties["DataCaptureConfig"] = self.sub(
                {
                    key: capture[key]
                    for key in (
                        "EnableCapture",
                        "InitialSamplingPercentage",
                        "DestinationS3Uri",
                        "CaptureOptions",
                        "CaptureContentTypeHeader",
                    )
                    if key in capture
                }
            )
        asynchronous = described.get("AsyncInferenceConfig")
        if asynchronous:  # deploy --async: OutputConfig, ClientConfig as described (the same shape in CloudFormation)
            properties["AsyncInferenceConfig"] = self.sub(
                {key: asynchronous[key] for key in ("OutputConfig", "ClientConfig") if key in asynchronous}
            )
        self.add(
            "EndpointConfig",
            "AWS::SageMaker::EndpointConfig",
            properties,
            kind="endpoint-config",
            physical_id=name,
            identifier={"EndpointConfigArn": str(described["EndpointConfigArn"])},
        )

    def endpoint(self) -> None:
        name = self.record.one("endpoint")
        described = self.ctx.sagemaker.describe_endpoint(name) if name else None
        if name is None or described is None:
            raise DeployError(
                f"the endpoint of {self.record.name} is gone (deleted by its TTL or idle guard, or by hand): "
                f"there is nothing live to export; `shipyard cleanup {self.record.name}` removes the rest"
            )
        properties = {
            "EndpointName": self.sub(name),
            "EndpointConfigName": GetAtt("EndpointConfig", "EndpointConfigName"),
        }
        self.add(
            "Endpoint",
            "AWS::SageMaker::Endpoint",
            properties,
            kind="endpoint",
            physical_id=name,
            identifier={"EndpointArn": str(described["EndpointArn"])},
        )

    def autoscaling(self) -> None:
        if not self.record.of("autoscaling"):
            return
        endpoint = self.ctx.names.endpoint
        target = self.ctx.scaling.target(endpoint, VARIANT)
        if target is None:
            return
        resource_id = str(target["ResourceId"])
        properties = {
            "ServiceNamespace": "sagemaker",
            "ResourceId": self.sub(resource_id),
            "ScalableDimension": DIMENSION,
            "MinCapacity": self.parameter("MinInstances", "Number", int(target["MinCapacity"]), "autoscaling's floor"),
            "MaxCapacity": self.parameter(
                "MaxInstances", "Number", int(target["MaxCapacity"]), "autoscaling's ceiling"
            ),
        }
        identifier = {"ResourceId": resource_id, "ScalableDimension": DIMENSION, "ServiceNamespace": "sagemaker"}
        self.add(
            "ScalableTarget",
            "AWS::ApplicationAutoScaling::ScalableTarget",
            properties,
            kind="autoscaling",
            physical_id=resource_id,
            identifier=identifier,
            depends_on=("Endpoint",),
            comment="the variant's instance count, between MinInstances and MaxInstances",
        )
        # the target-tracking policy (an async endpoint's scale-from-zero step policy is not exported yet)
        tracked = [
            p for p in self.ctx.scaling.policies(endpoint, VARIANT) if p["PolicyType"] == "TargetTrackingScaling"
        ]
        for policy in tracked[:1]:
            tracking = dict(policy.get("TargetTrackingScalingPolicyConfiguration") or {})
            config: dict[str, Any] = {"TargetValue": float(tracking["TargetValue"])}
            for key in ("PredefinedMetricSpecification", "CustomizedMetricSpecification", "ScaleInCooldown",
                        "ScaleOutCooldown", "DisableScaleIn"):  # fmt: skip
                if key in tracking:
                    config[key] = tracking[key]
            policy_properties: dict[str, Any] = {
                "PolicyName": self.sub(str(policy["PolicyName"])),
                "PolicyType": policy["PolicyType"],
                "ScalingTargetId": Ref("ScalableTarget"),
                "TargetTrackingScalingPolicyConfiguration": config,
            }
            self.add(
                "ScalingPolicy",
                "AWS::ApplicationAutoScaling::ScalingPolicy",
                policy_properties,
                kind="autoscaling",
                physical_id=str(policy["PolicyARN"]),
                identifier={"Arn": str(policy["PolicyARN"]), "ScalableDimension": DIMENSION},
            )

    # -- what watches it ----------------------------------------------------------------------------------------
    def topic(self) -> None:
        """The alarms' topic when Shipyard made it (``--notify EMAIL``; a given topic ARN stays as it is in the
        alarms' actions), and its email subscription."""
        for resource in self.record.of("sns-topic"):
            if not resource.owned:
                continue
            topic_name = resource.id.rsplit(":", 1)[-1]
            self.owned_topic = resource.id
            self.add(
                "Topic",
                "AWS::SNS::Topic",
                {"TopicName": self.sub(topic_name)},
                kind="sns-topic",
                physical_id=resource.id,
                identifier={"TopicArn": resource.id},
                comment="what the alarms notify",
            )
            emails = [s for s in self.ctx.sns.subscriptions(resource.id) if s.get("Protocol") == "email"]
            if emails:
                arn = str(emails[0].get("SubscriptionArn") or "")
                confirmed = arn.startswith("arn:")
                email = self.parameter("NotifyEmail", "String", str(emails[0]["Endpoint"]), "who the alarms mail")
                self.add(
                    "TopicSubscription",
                    "AWS::SNS::Subscription",
                    {"TopicArn": Ref("Topic"), "Protocol": "email", "Endpoint": email},
                    kind="sns-topic",
                    physical_id=arn,
                    identifier={"Arn": arn} if confirmed else {},
                    comment="" if confirmed else NOT_IMPORTABLE["AWS::SNS::Subscription"],
                )

    def alarm(self, logical_id: str, item: dict[str, Any], kind: str) -> None:
        properties: dict[str, Any] = {"AlarmName": self.sub(str(item["AlarmName"]))}
        for key in (
            "AlarmDescription",
            "Namespace",
            "MetricName",
            "Dimensions",
            "Period",
            "Statistic",
            "ExtendedStatistic",
            "Unit",
            "Threshold",
            "ComparisonOperator",
            "EvaluationPeriods",
            "DatapointsToAlarm",
            "TreatMissingData",
            "ActionsEnabled",
        ):
            if item.get(key) not in (None, "", []):
                properties[key] = self.sub(item[key])
        if item.get("Metrics"):
            properties["Metrics"] = [self.sub(_metric(query)) for query in item["Metrics"]]
        if "Threshold" in properties:
            properties["Threshold"] = float(properties["Threshold"])
        for key in ("AlarmActions", "OKActions"):
            if item.get(key):
                properties[key] = [Ref("Topic") if arn == self.owned_topic else arn for arn in item[key]]
        self.add(
            logical_id,
            "AWS::CloudWatch::Alarm",
            properties,
            kind=kind,
            physical_id=str(item["AlarmName"]),
            identifier={"AlarmName": str(item["AlarmName"])},
        )

    def alarms(self) -> None:
        names = [r.id for r in self.record.of("alarm")]
        prefix = self.ctx.names.alarm("")
        for item in self.ctx.cloudwatch.alarm_items(names) if names else []:
            metric = str(item["AlarmName"]).removeprefix(prefix)
            self.alarm(f"Alarm{_logical(metric)}", item, "alarm")
        board = self.record.one("dashboard")
        body = self.ctx.cloudwatch.get_dashboard(board) if board else None
        if board and body is not None:
            self.add(
                "Dashboard",
                "AWS::CloudWatch::Dashboard",
                {"DashboardName": self.sub(board), "DashboardBody": self.sub(body)},
                kind="dashboard",
                physical_id=board,
                identifier={"DashboardName": board},
            )

    # -- the spend guards -----------------------------------------------------------------------------------------
    def guards(self) -> None:
        guard_role = self.record.one("guard-role")
        if guard_role:
            self.role("GuardRole", guard_role, "guard-role", "the role the TTL schedule and idle guard delete with")
        role_ref = GetAtt("GuardRole", "Arn") if guard_role else None
        for resource in self.record.of("ttl-schedule"):
            schedule = self.ctx.scheduler.get(resource.id)
            if schedule is not None:
                self.schedule(resource.id, schedule, role_ref)
        for resource in self.record.of("idle-alarm"):
            for item in self.ctx.cloudwatch.alarm_items([resource.id]):
                self.alarm("IdleAlarm", item, "idle-alarm")
        machine_ref: Any = None
        for resource in self.record.of("state-machine"):
            machine = self.ctx.stepfunctions.describe(resource.id)
            if machine is None:
                continue
            properties = {
                "StateMachineName": self.sub(str(machine["name"])),
                "StateMachineType": machine.get("type", "STANDARD"),
                "DefinitionString": self.armed_definition(str(machine["definition"])),
                "RoleArn": role_ref or self.sub(str(machine["roleArn"])),
            }
            self.add(
                "IdleStateMachine",
                "AWS::StepFunctions::StateMachine",
                properties,
                kind="state-machine",
                physical_id=resource.id,
                identifier={"Arn": resource.id},
                comment="deletes the endpoint when the idle alarm fires (--idle-action delete)",
            )
            machine_ref = Ref("IdleStateMachine")
        for resource in self.record.of("idle-rule"):
            rule = self.ctx.events.describe_rule(resource.id)
            if rule is None:
                continue
            targets = [self.rule_target(t, machine_ref, role_ref) for t in self.ctx.events.targets(resource.id)]
            pattern = rule.get("EventPattern")
            properties = {
                "Name": self.sub(str(rule["Name"])),
                "Description": self.sub(rule["Description"]) if rule.get("Description") else None,
                "EventPattern": self.sub(json.loads(pattern)) if isinstance(pattern, str) else None,
                "State": rule.get("State", "ENABLED"),
                "Targets": targets or None,
            }
            self.add(
                "IdleRule",
                "AWS::Events::Rule",
                properties,
                kind="idle-rule",
                physical_id=resource.id,
                identifier={"Arn": str(rule["Arn"])},
                comment="hands the idle alarm's state change to the state machine",
            )

    def schedule(self, name: str, schedule: dict[str, Any], role_ref: Any) -> None:
        target = dict(schedule.get("Target") or {})
        cfn_target: dict[str, Any] = {
            "Arn": self.sub(target["Arn"]),
            "RoleArn": role_ref or self.sub(target["RoleArn"]),
        }
        for key in ("Input", "RetryPolicy", "DeadLetterConfig"):
            if target.get(key):
                cfn_target[key] = self.sub(target[key])
        window = dict(schedule.get("FlexibleTimeWindow") or {"Mode": "OFF"})
        expression: Any = str(schedule["ScheduleExpression"])
        at = one_time_at(expression)
        if at:  # a parameter: a new stack made from this template needs a time to come, or it deletes at once
            self.parameter(
                "TtlAt", "String", at,
                "when the TTL schedule deletes the endpoint (yyyy-mm-ddThh:mm:ss, in its time zone): a new stack "
                "needs a time still to come (a past one deletes the endpoint as soon as it exists)",
            )  # fmt: skip
            expression = Sub("at(${TtlAt})")
        properties = {
            "Name": self.sub(name),
            "GroupName": schedule.get("GroupName", "default"),
            "Description": self.sub(schedule["Description"]) if schedule.get("Description") else None,
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": schedule.get("ScheduleExpressionTimezone"),
            "FlexibleTimeWindow": window,
            "State": schedule.get("State", "ENABLED"),
            "Target": cfn_target,
        }
        self.add(
            "TtlSchedule",
            "AWS::Scheduler::Schedule",
            properties,
            kind="ttl-schedule",
            physical_id=name,
            identifier={"Name": name},
            comment="deletes the endpoint at its TTL (--ttl)",
        )

    def armed_definition(self, definition: str) -> str | Sub:
        """The idle state machine's definition with its Wait state's ``Timestamp`` (the time before which it
        deletes nothing: ``idle`` after the deploy) as the parameter ``IdleArmedAt``. Kept literal, a new stack
        made from this template would wait for a time long past, and the first ALARM of its fresh alarm (whose
        first window reaches back before the endpoint existed) would delete the new endpoint."""
        try:
            states = json.loads(definition).get("States") or {}
        except (json.JSONDecodeError, AttributeError):
            states = {}
        stamps = {str(v["Timestamp"]) for v in states.values() if isinstance(v, dict) and v.get("Timestamp")}
        value = self.sub.text(definition)
        if len(stamps) != 1:
            return value
        (stamp,) = stamps
        self.parameter(
            "IdleArmedAt", "String", stamp,
            "the idle state machine deletes nothing before this time (ISO 8601, UTC): for a new stack, a time "
            "the idle window after it is made",
        )  # fmt: skip
        template = value.template if isinstance(value, Sub) else value.replace("${", "${!")
        return Sub(template.replace(json.dumps(stamp), '"${IdleArmedAt}"'))

    def rule_target(self, target: dict[str, Any], machine_ref: Any, role_ref: Any) -> dict[str, Any]:
        cfn: dict[str, Any] = {"Id": target["Id"], "Arn": machine_ref or self.sub(target["Arn"])}
        if target.get("RoleArn"):
            cfn["RoleArn"] = role_ref or self.sub(target["RoleArn"])
        if target.get("Input"):
            cfn["Input"] = self.sub(target["Input"])
        return cfn

    # -- the public API -------------------------------------------------------------------------------------------
    def public_api(self) -> None:
        exposure = self.record.exposure
        if exposure is None or not exposure.api_id or not self.record.of("rest-api"):
            return
        api_role = self.record.one("api-role")
        if api_role:
            self.role("ApiRole", api_role, "api-role", "the role API Gateway calls InvokeEndpoint with")
        gateway, api_id = self.ctx.apigateway, exposure.api_id
        read = gateway.read_api(api_id)
        api = read["api"]
        self.add(
            "Api",
            "AWS::ApiGateway::RestApi",
            {
                "Name": self.sub(str(api["name"])),
                "Description": self.sub(api["description"]) if api.get("description") else None,
                "EndpointConfiguration": {"Types": list((api.get("endpointConfiguration") or {}).get("types", []))},
                "BinaryMediaTypes": list(api.get("binaryMediaTypes") or []) or None,
                "ApiKeySourceType": api.get("apiKeySource"),
            },
            kind="rest-api",
            physical_id=api_id,
            identifier={"RestApiId": api_id},
        )
        by_path = {str(r["path"]): r for r in read["resources"]}
        parent: Any = GetAtt("Api", "RootResourceId")
        segments = exposure.path.strip("/").split("/")
        leaf: dict[str, Any] = {}
        for depth, segment in enumerate(segments, start=1):
            path = "/" + "/".join(segments[:depth])
            leaf = by_path[path]
            logical_id = "ApiResource" if depth == len(segments) else f"ApiResource{depth}"
            self.add(
                logical_id,
                "AWS::ApiGateway::Resource",
                {"RestApiId": Ref("Api"), "ParentId": parent, "PathPart": segment},
                kind="rest-api",
                physical_id=str(leaf["id"]),
                identifier={"RestApiId": api_id, "ResourceId": str(leaf["id"])},
            )
            parent = Ref(logical_id)
        method = gateway.read_method(api_id, str(leaf["id"]), "POST")
        self.add(
            "ApiMethod",
            "AWS::ApiGateway::Method",
            self.method(method, api_role is not None),
            kind="rest-api",
            physical_id=f"{api_id}/{leaf['id']}/POST",
            identifier={"RestApiId": api_id, "ResourceId": str(leaf["id"]), "HttpMethod": "POST"},
        )
        stage = next((s for s in read["stages"] if s.get("stageName") == exposure.stage), None)
        if stage is None:
            return
        deployment_id = str(stage["deploymentId"])
        self.add(
            "ApiDeployment",
            "AWS::ApiGateway::Deployment",
            {
                "RestApiId": Ref("Api"),
                "Description": self.sub(stage["description"]) if stage.get("description") else None,
            },
            kind="rest-api",
            physical_id=deployment_id,
            identifier={"DeploymentId": deployment_id, "RestApiId": api_id},
            depends_on=("ApiMethod",),
        )
        self.add(
            "ApiStage",
            "AWS::ApiGateway::Stage",
            {
                "RestApiId": Ref("Api"),
                "StageName": stage["stageName"],
                "DeploymentId": Ref("ApiDeployment"),
                "Description": self.sub(stage["description"]) if stage.get("description") else None,
                "MethodSettings": _method_settings(stage) or None,
            },
            kind="rest-api",
            physical_id=str(stage["stageName"]),
            identifier={"RestApiId": api_id, "StageName": str(stage["stageName"])},
        )
        self.api_key()

    def method(self, method: dict[str, Any], own_role: bool) -> dict[str, Any]:
        integration = dict(method.get("methodIntegration") or {})
        responses = []
        for status, answer in sorted((integration.get("integrationResponses") or {}).items()):
            response: dict[str, Any] = {"StatusCode": status}
            for source, key in (
                ("selectionPattern", "SelectionPattern"),
                ("responseParameters", "ResponseParameters"),
                ("responseTemplates", "ResponseTemplates"),
                ("contentHandling", "ContentHandling"),
            ):
                if answer.get(source):
                    response[key] = answer[source]
            responses.append(response)
        cfn_integration: dict[str, Any] = {
            "Type": integration.get("type"),
            "IntegrationHttpMethod": integration.get("httpMethod"),
            "Uri": self.sub(integration.get("uri")),
            "Credentials": GetAtt("ApiRole", "Arn") if own_role else self.sub(integration.get("credentials")),
            "PassthroughBehavior": integration.get("passthroughBehavior"),
            "RequestParameters": integration.get("requestParameters") or None,
            "TimeoutInMillis": integration.get("timeoutInMillis"),
            "IntegrationResponses": responses or None,
        }
        method_responses = [
            {
                "StatusCode": status,
                **({"ResponseParameters": r["responseParameters"]} if r.get("responseParameters") else {}),
            }
            for status, r in sorted((method.get("methodResponses") or {}).items())
        ]
        return {
            "RestApiId": Ref("Api"),
            "ResourceId": Ref("ApiResource"),
            "HttpMethod": method.get("httpMethod", "POST"),
            "AuthorizationType": method.get("authorizationType", "NONE"),
            "ApiKeyRequired": bool(method.get("apiKeyRequired", False)),
            "RequestParameters": method.get("requestParameters") or None,
            "Integration": {k: v for k, v in cfn_integration.items() if v is not None},
            "MethodResponses": method_responses or None,
        }

    def api_key(self) -> None:
        exposure = self.record.exposure
        if exposure is None or not exposure.key_id or not exposure.usage_plan_id:
            return
        gateway = self.ctx.apigateway
        key = gateway.read_api_key(exposure.key_id)
        self.add(
            "ApiKey",
            "AWS::ApiGateway::ApiKey",
            {"Name": self.sub(str(key["name"])), "Enabled": bool(key.get("enabled"))},
            kind="api-key",
            physical_id=exposure.key_id,
            identifier={"APIKeyId": exposure.key_id},
            comment="a stack made from this template gets a new key value (the value is never exported)",
        )
        plan = gateway.read_usage_plan(exposure.usage_plan_id)
        throttle = plan.get("throttle") or {}
        quota = plan.get("quota") or {}
        properties = {
            "UsagePlanName": self.sub(str(plan["name"])),
            "Description": self.sub(plan["description"]) if plan.get("description") else None,
            "ApiStages": [{"ApiId": Ref("Api"), "Stage": Ref("ApiStage")}],
            "Throttle": {"RateLimit": float(throttle["rateLimit"]), "BurstLimit": int(throttle["burstLimit"])}
            if throttle
            else None,
            "Quota": {"Limit": int(quota["limit"]), "Period": quota["period"]} if quota else None,
        }
        self.add(
            "ApiUsagePlan",
            "AWS::ApiGateway::UsagePlan",
            properties,
            kind="usage-plan",
            physical_id=exposure.usage_plan_id,
            identifier={"Id": exposure.usage_plan_id},
        )
        plan_key = f"{exposure.key_id}:{exposure.usage_plan_id}"
        self.add(
            "ApiUsagePlanKey",
            "AWS::ApiGateway::UsagePlanKey",
            {"KeyId": Ref("ApiKey"), "KeyType": "API_KEY", "UsagePlanId": Ref("ApiUsagePlan")},
            kind="usage-plan",
            physical_id=plan_key,
            identifier={"Id": plan_key},
        )


def _metric(query: dict[str, Any]) -> dict[str, Any]:
    """One item of an alarm's Metrics (metric math) in CloudFormation's MetricDataQuery shape."""
    out: dict[str, Any] = {"Id": query["Id"]}
    for key in ("Expression", "Label", "ReturnData", "Period"):
        if key in query:
            out[key] = query[key]
    stat = query.get("MetricStat")
    if stat:
        metric = stat["Metric"]
        out["MetricStat"] = {
            "Metric": {
                "Namespace": metric["Namespace"],
                "MetricName": metric["MetricName"],
                "Dimensions": [{"Name": d["Name"], "Value": d["Value"]} for d in metric.get("Dimensions", [])],
            },
            "Period": stat["Period"],
            "Stat": stat["Stat"],
        }
    return out


def _method_settings(stage: dict[str, Any]) -> list[dict[str, Any]]:
    """The stage's throttle (``*/*``) in CloudFormation's MethodSetting shape."""
    settings = []
    for key, setting in sorted((stage.get("methodSettings") or {}).items()):
        resource_path, _, http_method = key.rpartition("/")
        item: dict[str, Any] = {
            "ResourcePath": "/" + resource_path.strip("/") if resource_path != "*" else "/*",
            "HttpMethod": http_method,
        }
        if "throttlingRateLimit" in setting:
            item["ThrottlingRateLimit"] = float(setting["throttlingRateLimit"])
        if "throttlingBurstLimit" in setting:
            item["ThrottlingBurstLimit"] = int(setting["throttlingBurstLimit"])
        settings.append(item)
    return settings


def _logical(text: str) -> str:
    """A logical id's part: letters and digits only (``Invocation5XXErrors`` stays as it is)."""
    return re.sub(r"[^A-Za-z0-9]", "", text) or "X"


def collect(ctx: Context, record: Deployment) -> Stack:
    """The :class:`Stack` of ``record``'s live resources (a sagemaker deployment; see the module's table)."""
    if record.target != "sagemaker":
        raise DeployError(f"{record.name} runs on {record.target}: only sagemaker deployments are exported")
    collector = _Collector(ctx, record)
    steps: list[Callable[[], Any]] = []
    role = next((r for r in record.of("role") if r.owned), None)
    if role is not None:
        steps.append(lambda: collector.role("Role", role.id, "role", "the endpoint's execution role"))
    steps += [collector.repository, collector.log_group, collector.model, collector.endpoint_config]
    steps += [collector.endpoint, collector.autoscaling]
    for step in steps:
        step()
    collector.topic()
    collector.alarms()
    collector.guards()
    collector.public_api()
    stack = collector.stack
    # a name parameter nothing derives from is left out (a name of AWS's own vocabulary stays literal; the lower
    # case form exists only for a name with capitals)
    stack.parameters = [p for p in stack.parameters if p.name not in {_NAME, _LOWER} or p.name in collector.sub.used]
    stack.outputs["EndpointName"] = GetAtt("Endpoint", "EndpointName")
    if any(r.logical_id == "Api" for r in stack.resources) and record.exposure is not None:
        stack.outputs["ApiUrl"] = Sub(
            f"https://${{Api}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{record.exposure.stage}/"
            f"{record.exposure.path.strip('/')}"
        )
    return stack
