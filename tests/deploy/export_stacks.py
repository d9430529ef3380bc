"""Stacks built by hand, in the shapes a digits deployment has (deploy/sagemaker/create.py, alarms.py, expose.py,
the guards): every resource type an export holds, with realistic properties, for the writers' checks."""

from __future__ import annotations

import json
from typing import Any

from shipyard.cloud.apigateway import MODEL_ERROR_TEMPLATE, PASSED_STATUSES, selection_pattern
from shipyard.deploy.export.model import GetAtt, Parameter, Ref, Resource, Stack, Sub

NAME, REGION, ACCOUNT = "digits", "eu-west-1", "123456789012"
VERSION = "20261203-050100"
DIGEST = "sha256:" + "ab" * 32
TAGS = [{"Key": "shipyard:deployment", "Value": NAME}, {"Key": "shipyard:managed-by", "Value": "shipyard"}]
DIMENSIONS = [{"Name": "EndpointName", "Value": Ref("DeploymentName")}, {"Name": "VariantName", "Value": "AllTraffic"}]


def _trust(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            }
        ],
    }


def _alarm(metric: str, **more: Any) -> dict[str, Any]:
    return {
        "AlarmName": Sub(f"shipyard-${{DeploymentName}}-{metric}"),
        "AlarmDescription": f"{metric} p99 above 1000 ms (the default: no `shipyard bench` yet)",
        "Namespace": "AWS/SageMaker",
        "MetricName": metric,
        "Dimensions": DIMENSIONS,
        "ExtendedStatistic": "p99",
        "Period": 60,
        "EvaluationPeriods": 5,
        "DatapointsToAlarm": 3,
        "Threshold": 1_000_000.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "Unit": "Microseconds",
        "AlarmActions": [Ref("Topic")],
        "OKActions": [Ref("Topic")],
        **more,
    }


def _rate_alarm() -> dict[str, Any]:
    def stat(metric_id: str, metric: str) -> dict[str, Any]:
        return {
            "Id": metric_id,
            "MetricStat": {
                "Metric": {"Namespace": "AWS/SageMaker", "MetricName": metric, "Dimensions": DIMENSIONS},
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": False,
        }

    return {
        "AlarmName": Sub("shipyard-${DeploymentName}-Invocation4XXErrors"),
        "AlarmDescription": "more than 10 % of the requests answered 4xx",
        "Metrics": [
            {
                "Id": "rate",
                "Expression": "IF(invocations > 0, 100 * FILL(errors, 0) / invocations, 0)",
                "Label": "Invocation4XXErrors rate (%)",
                "ReturnData": True,
            },
            stat("errors", "Invocation4XXErrors"),
            stat("invocations", "Invocations"),
        ],
        "EvaluationPeriods": 5,
        "DatapointsToAlarm": 3,
        "Threshold": 10.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "AlarmActions": [Ref("Topic")],
        "OKActions": [Ref("Topic")],
    }


def _dashboard() -> str:
    dims = ["EndpointName", NAME, "VariantName", "AllTraffic"]
    widget = {
        "type": "metric",
        "x": 0,
        "y": 0,
        "width": 12,
        "height": 6,
        "properties": {
            "title": "invocations (per minute)",
            "metrics": [["AWS/SageMaker", "Invocations", *dims, {"stat": "Sum", "label": "Invocations Sum"}]],
            "region": REGION,
            "period": 60,
            "view": "timeSeries",
        },
    }
    return json.dumps({"widgets": [widget]})


def _resource(logical_id: str, type_: str, kind: str, physical: str, props: dict[str, Any], **more: Any) -> Resource:
    return Resource(logical_id, type_, props, kind, physical, **more)


def _execution_role() -> Resource:
    statements = [
        {
            "Sid": "PullImage",
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": Sub("arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/shipyard/digits"),
        },
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {
            "Sid": "ReadModel",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::sagemaker-{REGION}-{ACCOUNT}/shipyard/{NAME}/*",
        },
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": Sub(
                "arn:aws:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/sagemaker/Endpoints/digits:*"
            ),
        },
    ]
    return _resource(
        "Role",
        "AWS::IAM::Role",
        "role",
        f"shipyard-{NAME}",
        {
            "RoleName": Sub("shipyard-${DeploymentName}"),
            "Path": "/shipyard/",
            "Description": f"SageMaker execution role of the Shipyard deployment {NAME}",
            "AssumeRolePolicyDocument": _trust("sagemaker.amazonaws.com"),
            "Policies": [
                {
                    "PolicyName": "shipyard-endpoint",
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                }
            ],
            "Tags": TAGS,
        },
        import_identifier={"RoleName": f"shipyard-{NAME}"},
        comment="the endpoint's execution role: pull this image, read this artifact, write this log group",
    )


def _serving(serverless: bool) -> list[Resource]:
    """Repository → log group → model → endpoint config → endpoint (→ autoscaling for instances)."""
    lifecycle = {
        "rules": [
            {
                "rulePriority": 1,
                "description": "keep the last 10 images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10},
                "action": {"type": "expire"},
            }
        ]
    }
    model = f"{NAME}-{VERSION}"
    variant: dict[str, Any] = {"VariantName": "AllTraffic", "ModelName": GetAtt("Model", "ModelName")}
    if serverless:
        variant["ServerlessConfig"] = {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    else:
        variant.update(
            InstanceType=Ref("InstanceType"),
            InitialInstanceCount=Ref("InstanceCount"),
            InitialVariantWeight=1.0,
            ContainerStartupHealthCheckTimeoutInSeconds=600,
        )
    config: dict[str, Any] = {"EndpointConfigName": model, "ProductionVariants": [variant], "Tags": TAGS}
    if not serverless:
        config["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": 20,
            "DestinationS3Uri": f"s3://sagemaker-{REGION}-{ACCOUNT}/shipyard/{NAME}/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"], "CsvContentTypes": ["text/csv"]},
        }
        config["AsyncInferenceConfig"] = {  # deploy --async (collect.py passes it through)
            "OutputConfig": {
                "S3OutputPath": f"s3://sagemaker-{REGION}-{ACCOUNT}/async/{NAME}/output",
                "S3FailurePath": f"s3://sagemaker-{REGION}-{ACCOUNT}/async/{NAME}/failure",
                "NotificationConfig": {"SuccessTopic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{NAME}-done"},
            },
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
        }
    container: dict[str, Any] = {
        "Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/shipyard/{NAME}@{DIGEST}",
        "Environment": {"SAGEMAKER_REGION": REGION},
    }
    if not serverless:
        container["ModelDataUrl"] = f"s3://sagemaker-{REGION}-{ACCOUNT}/shipyard/{NAME}/{VERSION}/model.tar.gz"
    made = [
        _resource(
            "Repository",
            "AWS::ECR::Repository",
            "ecr-repository",
            f"shipyard/{NAME}",
            {
                "RepositoryName": f"shipyard/{NAME}",
                "ImageScanningConfiguration": {"ScanOnPush": True},
                "ImageTagMutability": "IMMUTABLE",
                "LifecyclePolicy": {"LifecyclePolicyText": json.dumps(lifecycle)},
                "Tags": TAGS,
            },
            import_identifier={"RepositoryName": f"shipyard/{NAME}"},
        ),
        _resource(
            "LogGroup",
            "AWS::Logs::LogGroup",
            "log-group",
            f"/aws/sagemaker/Endpoints/{NAME}",
            {"LogGroupName": Sub("/aws/sagemaker/Endpoints/${DeploymentName}"), "RetentionInDays": 30, "Tags": TAGS},
            import_identifier={"LogGroupName": f"/aws/sagemaker/Endpoints/{NAME}"},
        ),
        _resource(
            "Model",
            "AWS::SageMaker::Model",
            "model",
            model,
            {
                "ModelName": model,
                "ExecutionRoleArn": GetAtt("Role", "Arn"),
                "PrimaryContainer": container,
                "Tags": TAGS,
            },
            import_identifier={"ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{model}"},
            comment="pinned by the image's digest and the artifact's S3 URI",
        ),
        _resource(
            "EndpointConfig",
            "AWS::SageMaker::EndpointConfig",
            "endpoint-config",
            model,
            config,
            import_identifier={"EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{model}"},
        ),
        _resource(
            "Endpoint",
            "AWS::SageMaker::Endpoint",
            "endpoint",
            NAME,
            {
                "EndpointName": Ref("DeploymentName"),
                "EndpointConfigName": GetAtt("EndpointConfig", "EndpointConfigName"),
                "Tags": TAGS,
            },
            import_identifier={"EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{NAME}"},
            depends_on=("LogGroup",),
        ),
    ]
    if serverless:
        return made
    scaling_id = f"endpoint/{NAME}/variant/AllTraffic"
    dimension = "sagemaker:variant:DesiredInstanceCount"
    return [
        *made,
        _resource(
            "ScalableTarget",
            "AWS::ApplicationAutoScaling::ScalableTarget",
            "autoscaling",
            scaling_id,
            {
                "MaxCapacity": 4,
                "MinCapacity": 1,
                "ResourceId": Sub("endpoint/${Endpoint.EndpointName}/variant/AllTraffic"),
                "ScalableDimension": dimension,
                "ServiceNamespace": "sagemaker",
            },
            import_identifier={
                "ResourceId": scaling_id,
                "ScalableDimension": dimension,
                "ServiceNamespace": "sagemaker",
            },
        ),
        _resource(
            "ScalingPolicy",
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            "autoscaling",
            f"shipyard-{NAME}-invocations",
            {
                "PolicyName": f"shipyard-{NAME}-invocations",
                "PolicyType": "TargetTrackingScaling",
                "ScalingTargetId": Ref("ScalableTarget"),
                "TargetTrackingScalingPolicyConfiguration": {
                    "TargetValue": 100.0,
                    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                    "ScaleInCooldown": 300,
                    "ScaleOutCooldown": 60,
                },
            },
            import_identifier={
                "Arn": f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:scalingPolicy:1234:resource/sagemaker/"
                f"{scaling_id}:policyName/shipyard-{NAME}-invocations",
                "ScalableDimension": dimension,
            },
        ),
    ]


def _watching(serverless: bool) -> list[Resource]:
    """The topic and its mail, two alarms (one plain, one metric math) and the dashboard."""
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:shipyard-{NAME}-alarms"
    metric = "ModelSetupTime" if serverless else "ModelLatency"
    return [
        _resource(
            "Topic",
            "AWS::SNS::Topic",
            "sns-topic",
            topic_arn,
            {"TopicName": f"shipyard-{NAME}-alarms", "Tags": TAGS},
            import_identifier={"TopicArn": topic_arn},
        ),
        _resource(
            "TopicSubscription",
            "AWS::SNS::Subscription",
            "sns-topic",
            f"{topic_arn}:0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
            {"TopicArn": Ref("Topic"), "Protocol": "email", "Endpoint": "ops@example.com"},
            import_identifier={"Arn": f"{topic_arn}:0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"},
        ),
        _resource(
            f"Alarm{metric}",
            "AWS::CloudWatch::Alarm",
            "alarm",
            f"shipyard-{NAME}-{metric}",
            _alarm(metric),
            import_identifier={"AlarmName": f"shipyard-{NAME}-{metric}"},
        ),
        _resource(
            "AlarmInvocation4XXErrors",
            "AWS::CloudWatch::Alarm",
            "alarm",
            f"shipyard-{NAME}-Invocation4XXErrors",
            _rate_alarm(),
            import_identifier={"AlarmName": f"shipyard-{NAME}-Invocation4XXErrors"},
        ),
        _resource(
            "Dashboard",
            "AWS::CloudWatch::Dashboard",
            "dashboard",
            f"shipyard-{NAME}",
            {"DashboardName": f"shipyard-{NAME}", "DashboardBody": _dashboard()},
            import_identifier={"DashboardName": f"shipyard-{NAME}"},
        ),
    ]


def _guards() -> list[Resource]:
    """--ttl 3d and --idle 4h --idle-action delete: the schedule, the idle alarm, rule and state machine."""
    endpoint_arn = Sub("arn:aws:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/digits")
    guard_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DeleteEndpoint",
                "Effect": "Allow",
                "Action": "sagemaker:DeleteEndpoint",
                "Resource": endpoint_arn,
            },
            {
                "Sid": "StartIdleMachine",
                "Effect": "Allow",
                "Action": "states:StartExecution",
                "Resource": Sub(
                    "arn:aws:states:${AWS::Region}:${AWS::AccountId}:stateMachine:shipyard-${DeploymentName}-idle"
                ),
            },
        ],
    }
    trust = _trust("scheduler.amazonaws.com")
    trust["Statement"][0]["Principal"]["Service"] = [
        "scheduler.amazonaws.com",
        "events.amazonaws.com",
        "states.amazonaws.com",
    ]
    definition = {
        "Comment": "delete the idle endpoint digits",
        "StartAt": "DeleteEndpoint",
        "States": {
            "DeleteEndpoint": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sagemaker:deleteEndpoint",
                "Parameters": {"EndpointName": NAME},
                "End": True,
            }
        },
    }
    machine_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:shipyard-{NAME}-idle"
    return [
        _resource(
            "GuardRole",
            "AWS::IAM::Role",
            "guard-role",
            f"shipyard-{NAME}.guard",
            {
                "RoleName": Sub("shipyard-${DeploymentName}.guard"),
                "Path": "/shipyard/",
                "AssumeRolePolicyDocument": trust,
                "Policies": [{"PolicyName": "shipyard-guard", "PolicyDocument": guard_policy}],
                "Tags": TAGS,
            },
            import_identifier={"RoleName": f"shipyard-{NAME}.guard"},
        ),
        _resource(
            "TtlSchedule",
            "AWS::Scheduler::Schedule",
            "ttl-schedule",
            f"shipyard-{NAME}-ttl",
            {
                "Name": f"shipyard-{NAME}-ttl",
                "Description": "--ttl 3d: delete the endpoint digits at its expiry",
                "ScheduleExpression": "at(2026-12-06T05:01:00)",
                "ScheduleExpressionTimezone": "UTC",
                "FlexibleTimeWindow": {"Mode": "OFF"},
                "State": "ENABLED",
                "Target": {
                    "Arn": "arn:aws:scheduler:::aws-sdk:sagemaker:deleteEndpoint",
                    "RoleArn": GetAtt("GuardRole", "Arn"),
                    "Input": json.dumps({"EndpointName": NAME}),
                    "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
                },
            },
            import_identifier={"Name": f"shipyard-{NAME}-ttl"},
        ),
        _resource(
            "IdleAlarm",
            "AWS::CloudWatch::Alarm",
            "idle-alarm",
            f"shipyard-{NAME}-idle",
            {
                "AlarmName": f"shipyard-{NAME}-idle",
                "AlarmDescription": "no invocations for 4 hours (--idle 4h)",
                "Namespace": "AWS/SageMaker",
                "MetricName": "Invocations",
                "Dimensions": DIMENSIONS,
                "Statistic": "Sum",
                "Period": 3600,
                "EvaluationPeriods": 4,
                "Threshold": 0.0,
                "ComparisonOperator": "LessThanOrEqualToThreshold",
                "TreatMissingData": "breaching",
                "AlarmActions": [Ref("Topic")],
            },
            import_identifier={"AlarmName": f"shipyard-{NAME}-idle"},
        ),
        _resource(
            "IdleRule",
            "AWS::Events::Rule",
            "idle-rule",
            f"shipyard-{NAME}-idle",
            {
                "Name": f"shipyard-{NAME}-idle",
                "Description": "the idle alarm went to ALARM: delete the endpoint",
                "EventPattern": {
                    "source": ["aws.cloudwatch"],
                    "detail-type": ["CloudWatch Alarm State Change"],
                    "resources": [GetAtt("IdleAlarm", "Arn")],
                    "detail": {"state": {"value": ["ALARM"]}},
                },
                "State": "ENABLED",
                "Targets": [
                    {"Id": "delete-endpoint", "Arn": Ref("IdleStateMachine"), "RoleArn": GetAtt("GuardRole", "Arn")}
                ],
            },
            import_identifier={"Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/shipyard-{NAME}-idle"},
        ),
        _resource(
            "IdleStateMachine",
            "AWS::StepFunctions::StateMachine",
            "state-machine",
            machine_arn,
            {
                "StateMachineName": f"shipyard-{NAME}-idle",
                "StateMachineType": "STANDARD",
                "RoleArn": GetAtt("GuardRole", "Arn"),
                "DefinitionString": json.dumps(definition),
                "Tags": TAGS,
            },
            import_identifier={"Arn": machine_arn},
        ),
    ]


def _front() -> list[Resource]:
    """shipyard expose --auth api-key --quota 10000/month: the REST API, its key and usage plan, its role."""
    api_id, resource_id, key_id, plan_id = "a1b2c3d4e5", "r5s6t7", "k9l8m7n6o5", "p1q2r3"
    headers = ("Content-Type", "Accept")
    header = "method.response.header.Content-Type"
    responses: list[dict[str, Any]] = []
    for status in ("200", *PASSED_STATUSES):
        response: dict[str, Any] = {
            "StatusCode": status,
            "ContentHandling": "CONVERT_TO_BINARY",
            "ResponseParameters": {header: "integration.response.header.Content-Type"},
        }
        if status != "200":
            response["SelectionPattern"] = selection_pattern(status)
        if status == "424":
            response.update(
                ContentHandling="CONVERT_TO_TEXT", ResponseTemplates={"application/json": MODEL_ERROR_TEMPLATE}
            )
        responses.append(response)
    invoke = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeEndpoint",
                "Effect": "Allow",
                "Action": "sagemaker:InvokeEndpoint",
                "Resource": Sub("arn:aws:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/digits"),
            }
        ],
    }
    stage_tags = [*TAGS]
    return [
        _resource(
            "ApiRole",
            "AWS::IAM::Role",
            "api-role",
            f"shipyard-{NAME}-api",
            {
                "RoleName": f"shipyard-{NAME}-api",
                "Path": "/shipyard/",
                "AssumeRolePolicyDocument": _trust("apigateway.amazonaws.com"),
                "Policies": [{"PolicyName": "shipyard-invoke-endpoint", "PolicyDocument": invoke}],
                "Tags": TAGS,
            },
            import_identifier={"RoleName": f"shipyard-{NAME}-api"},
        ),
        _resource(
            "Api",
            "AWS::ApiGateway::RestApi",
            "rest-api",
            api_id,
            {
                "Name": f"shipyard-{NAME}",
                "Description": f"the public API of the Shipyard deployment {NAME}",
                "EndpointConfiguration": {"Types": ["REGIONAL"]},
                "BinaryMediaTypes": ["*/*"],
                "ApiKeySourceType": "HEADER",
                "Tags": TAGS,
            },
            import_identifier={"RestApiId": api_id},
        ),
        _resource(
            "ApiResource",
            "AWS::ApiGateway::Resource",
            "rest-api",
            resource_id,
            {"RestApiId": Ref("Api"), "ParentId": GetAtt("Api", "RootResourceId"), "PathPart": "invocations"},
            import_identifier={"RestApiId": api_id, "ResourceId": resource_id},
        ),
        _resource(
            "ApiMethod",
            "AWS::ApiGateway::Method",
            "rest-api",
            "POST",
            {
                "RestApiId": Ref("Api"),
                "ResourceId": Ref("ApiResource"),
                "HttpMethod": "POST",
                "AuthorizationType": "NONE",
                "ApiKeyRequired": True,
                "RequestParameters": {f"method.request.header.{h}": False for h in headers},
                "Integration": {
                    "Type": "AWS",
                    "IntegrationHttpMethod": "POST",
                    "Uri": Sub(
                        "arn:aws:apigateway:${AWS::Region}:runtime.sagemaker:path//endpoints/"
                        "${Endpoint.EndpointName}/invocations"
                    ),
                    "Credentials": GetAtt("ApiRole", "Arn"),
                    "PassthroughBehavior": "WHEN_NO_MATCH",
                    "RequestParameters": {
                        f"integration.request.header.{h}": f"method.request.header.{h}" for h in headers
                    },
                    "TimeoutInMillis": 29000,
                    "IntegrationResponses": responses,
                },
                "MethodResponses": [
                    {"StatusCode": status, "ResponseParameters": {header: False}}
                    for status in ("200", *PASSED_STATUSES)
                ],
            },
            import_identifier={"RestApiId": api_id, "ResourceId": resource_id, "HttpMethod": "POST"},
        ),
        _resource(
            "ApiDeployment",
            "AWS::ApiGateway::Deployment",
            "rest-api",
            "d7e8f9",
            {"RestApiId": Ref("Api"), "Description": f"shipyard expose {NAME}"},
            import_identifier={"RestApiId": api_id, "DeploymentId": "d7e8f9"},
            depends_on=("ApiMethod",),
        ),
        _resource(
            "ApiStage",
            "AWS::ApiGateway::Stage",
            "rest-api",
            "v1",
            {
                "RestApiId": Ref("Api"),
                "StageName": "v1",
                "DeploymentId": Ref("ApiDeployment"),
                "Description": f"shipyard expose {NAME}",
                "MethodSettings": [
                    {"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": 10.0, "ThrottlingBurstLimit": 20}
                ],
                "Tags": stage_tags,
            },
            import_identifier={"RestApiId": api_id, "StageName": "v1"},
        ),
        _resource(
            "ApiKey",
            "AWS::ApiGateway::ApiKey",
            "api-key",
            key_id,
            {"Name": f"shipyard-{NAME}", "Enabled": True, "Tags": TAGS},
            import_identifier={"APIKeyId": key_id},
            comment="the key's value stays in Secrets Manager (shipyard/digits/api-key), not in the template",
        ),
        _resource(
            "ApiUsagePlan",
            "AWS::ApiGateway::UsagePlan",
            "usage-plan",
            plan_id,
            {
                "UsagePlanName": f"shipyard-{NAME}",
                "Description": f"throttle and quota of shipyard-{NAME}",
                "ApiStages": [{"ApiId": Ref("Api"), "Stage": Ref("ApiStage")}],
                "Throttle": {"RateLimit": 10.0, "BurstLimit": 20},
                "Quota": {"Limit": 10000, "Period": "MONTH"},
                "Tags": TAGS,
            },
            import_identifier={"Id": plan_id},
        ),
        _resource(
            "ApiUsagePlanKey",
            "AWS::ApiGateway::UsagePlanKey",
            "usage-plan",
            f"{plan_id}:{key_id}",
            {"KeyId": Ref("ApiKey"), "KeyType": "API_KEY", "UsagePlanId": Ref("ApiUsagePlan")},
            import_identifier={"Id": f"{plan_id}:{key_id}"},
        ),
    ]


def digits_stack(*, serverless: bool = False) -> Stack:
    """Every resource an export holds: serving, watching, the guards and the public front (instances by default;
    ``serverless``: ServerlessConfig, no autoscaling or data capture, and ModelSetupTime's alarm)."""
    parameters = [Parameter("DeploymentName", "String", NAME, "the deployment's name (the endpoint's)")]
    if not serverless:
        parameters += [
            Parameter("InstanceType", "String", "ml.m5.large", "the instances' type", ("ml.m5.large", "ml.m5.xlarge")),
            Parameter("InstanceCount", "Number", 1, "how many instances the endpoint starts with"),
        ]
    resources = [_execution_role(), *_serving(serverless), *_watching(serverless), *_guards(), *_front()]
    return Stack(
        deployment=NAME,
        region=REGION,
        account=ACCOUNT,
        description=f"the Shipyard deployment {NAME}, exported by shipyard export",
        parameters=parameters,
        resources=resources,
        outputs={
            "EndpointName": GetAtt("Endpoint", "EndpointName"),
            "InvokeUrl": Sub("https://${Api}.execute-api.${AWS::Region}.amazonaws.com/v1/invocations"),
        },
    )
