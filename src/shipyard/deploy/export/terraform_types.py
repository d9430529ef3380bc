"""Each CloudFormation type of an export as the Terraform AWS provider's resources (argument names and block
shapes from the provider's docs: registry.terraform.io/providers/hashicorp/aws), with the ``import`` id each
takes (the format of the type's Import section there). A property with no rule here is written by the generic
shape rules of :meth:`.terraform_values.Translator.body` (its snake_case name); a type with no mapping is an
error naming it. The API Gateway front is in :mod:`.terraform_apigateway`."""

from __future__ import annotations

from shipyard.deploy.export import terraform_apigateway as apigateway
from shipyard.deploy.export.hcl import Block, Expr
from shipyard.deploy.export.model import Ref, Resource, Stack
from shipyard.deploy.export.terraform_values import Made, Mapping, Translator, ident, mapping_of, pick, snake
from shipyard.errors import ShipyardError

__all__ = ["MAPPING", "convert", "translator"]


# -- IAM, ECR, logs ---------------------------------------------------------------------------------------
def _role(tf: Translator, r: Resource) -> list[Made]:
    name = tf.name(r.logical_id)
    taken, rest = pick(r.properties, "AssumeRolePolicyDocument", "Policies", "ManagedPolicyArns")
    block = Block("resource", ("aws_iam_role", name))
    tf.body(block, rest, {"RoleName": "name", "MaxSessionDuration": "max_session_duration"})
    block.set("assume_role_policy", tf.json(taken["AssumeRolePolicyDocument"]))
    role = ident(r, "RoleName")
    made = [Made(block, role)]
    for policy in taken.get("Policies", []):
        policy_name = tf.live(policy["PolicyName"])
        inline = Block("resource", ("aws_iam_role_policy", f"{name}_{snake(policy_name)}"))
        inline.set("name", tf.hcl(policy["PolicyName"]))
        inline.set("role", Expr(f"aws_iam_role.{name}.id"))
        inline.set("policy", tf.json(policy["PolicyDocument"]))
        made.append(Made(inline, f"{role}:{policy_name}"))
    for i, arn in enumerate(taken.get("ManagedPolicyArns", [])):
        attach = Block("resource", ("aws_iam_role_policy_attachment", f"{name}_{i}"))
        attach.set("role", Expr(f"aws_iam_role.{name}.name"))
        attach.set("policy_arn", tf.hcl(arn))
        made.append(Made(attach, f"{role}/{tf.live(arn)}"))
    return made


def _repository(tf: Translator, r: Resource) -> list[Made]:
    name = tf.name(r.logical_id)
    taken, rest = pick(r.properties, "LifecyclePolicy", "RepositoryPolicyText")
    block = tf.body(
        Block("resource", ("aws_ecr_repository", name)),
        rest,
        {"RepositoryName": "name", "EmptyOnDelete": "force_delete"},
    )
    repository = ident(r, "RepositoryName")
    made = [Made(block, repository)]
    lifecycle = taken.get("LifecyclePolicy", {}).get("LifecyclePolicyText")
    if lifecycle is not None:
        policy = Block("resource", ("aws_ecr_lifecycle_policy", name))
        policy.set("repository", Expr(f"aws_ecr_repository.{name}.name"))
        policy.set("policy", tf.json(lifecycle))
        made.append(Made(policy, repository))
    if "RepositoryPolicyText" in taken:
        access = Block("resource", ("aws_ecr_repository_policy", name))
        access.set("repository", Expr(f"aws_ecr_repository.{name}.name"))
        access.set("policy", tf.json(taken["RepositoryPolicyText"]))
        made.append(Made(access, repository))
    return made


def _log_group(tf: Translator, r: Resource) -> list[Made]:
    block = tf.body(
        Block("resource", ("aws_cloudwatch_log_group", tf.name(r.logical_id))),
        r.properties,
        {"LogGroupName": "name", "KmsKeyId": "kms_key_id"},
    )
    return [Made(block, ident(r, "LogGroupName"))]


# -- SageMaker, autoscaling ------------------------------------------------------------------------------
def _model(tf: Translator, r: Resource) -> list[Made]:
    block = tf.body(
        Block("resource", ("aws_sagemaker_model", tf.name(r.logical_id))),
        r.properties,
        {
            "ModelName": "name",
            "Containers": "container",
            "Subnets": "subnets",
            "SecurityGroupIds": "security_group_ids",
        },
    )
    return [Made(block, tf.live(r.properties.get("ModelName", r.physical_id)))]


def _endpoint_config(tf: Translator, r: Resource) -> list[Made]:
    block = tf.body(
        Block("resource", ("aws_sagemaker_endpoint_configuration", tf.name(r.logical_id))),
        r.properties,
        {"EndpointConfigName": "name", "KmsKeyId": "kms_key_arn"},
    )
    return [Made(block, tf.live(r.properties.get("EndpointConfigName", r.physical_id)))]


def _endpoint(tf: Translator, r: Resource) -> list[Made]:
    props = {k: v for k, v in r.properties.items() if k not in ("RetainAllVariantProperties", "RetainDeploymentConfig")}
    block = tf.body(
        Block("resource", ("aws_sagemaker_endpoint", tf.name(r.logical_id))), props, {"EndpointName": "name"}
    )
    return [Made(block, tf.live(r.properties.get("EndpointName", r.physical_id)))]


def _target_parts(tf: Translator, r: Resource) -> tuple[str, str, str]:
    """``(service namespace, resource id, scalable dimension)`` of a scalable target, live."""
    ids, props = r.import_identifier, r.properties
    return (
        ids.get("ServiceNamespace") or tf.live(props["ServiceNamespace"]),
        ids.get("ResourceId") or tf.live(props["ResourceId"]),
        ids.get("ScalableDimension") or tf.live(props["ScalableDimension"]),
    )


def _scalable_target(tf: Translator, r: Resource) -> list[Made]:
    block = tf.body(
        Block("resource", ("aws_appautoscaling_target", tf.name(r.logical_id))), r.properties, {"RoleARN": "role_arn"}
    )
    namespace, resource_id, dimension = _target_parts(tf, r)
    return [Made(block, f"{namespace}/{resource_id}/{dimension}")]


def _scaling_policy(tf: Translator, r: Resource) -> list[Made]:
    taken, rest = pick(r.properties, "ScalingTargetId", "PolicyName", "PolicyType")
    block = Block("resource", ("aws_appautoscaling_policy", tf.name(r.logical_id)))
    block.set("name", tf.hcl(taken["PolicyName"]))
    block.set("policy_type", tf.hcl(taken["PolicyType"]))
    target = taken.get("ScalingTargetId")
    if isinstance(target, Ref):
        address = tf.address(target.name)
        for attr in ("resource_id", "scalable_dimension", "service_namespace"):
            block.set(attr, Expr(f"{address}.{attr}"))
        namespace, resource_id, dimension = _target_parts(tf, tf.stack.resource(target.name))
    else:
        namespace, resource_id, dimension = (
            tf.live(rest[k]) for k in ("ServiceNamespace", "ResourceId", "ScalableDimension")
        )
    tf.body(block, rest)
    return [Made(block, f"{namespace}/{resource_id}/{dimension}/{tf.live(taken['PolicyName'])}")]


# -- SNS, CloudWatch -------------------------------------------------------------------------------------
def _topic(tf: Translator, r: Resource) -> list[Made]:
    name = tf.name(r.logical_id)
    taken, rest = pick(r.properties, "Subscription")
    block = tf.body(Block("resource", ("aws_sns_topic", name)), rest, {"TopicName": "name", "FifoTopic": "fifo_topic"})
    made = [Made(block, ident(r, "TopicArn"))]
    for i, subscription in enumerate(taken.get("Subscription", [])):
        inline = Block("resource", ("aws_sns_topic_subscription", f"{name}_{i}"))
        inline.set("topic_arn", Expr(f"aws_sns_topic.{name}.arn"))
        tf.body(inline, subscription)
        made.append(Made(inline, None, "a subscription is imported by its ARN, which this export does not know"))
    return made


def _subscription(tf: Translator, r: Resource) -> list[Made]:
    taken, rest = pick(r.properties, "FilterPolicy", "RedrivePolicy", "DeliveryPolicy")
    block = tf.body(Block("resource", ("aws_sns_topic_subscription", tf.name(r.logical_id))), rest)
    for key, item in taken.items():
        block.set(snake(key), tf.json(item))
    arn = ident(r, "Arn")
    if arn.startswith("arn:") and arn.count(":") >= 6:
        return [Made(block, arn)]
    return [Made(block, None, f"not confirmed yet ({arn}): a pending subscription has no ARN to import")]


def _alarm(tf: Translator, r: Resource) -> list[Made]:
    props = dict(r.properties)
    block = Block("resource", ("aws_cloudwatch_metric_alarm", tf.name(r.logical_id)))
    dimensions = props.pop("Dimensions", None)
    queries = props.pop("Metrics", None)
    tf.body(block, props, {"EvaluateLowSampleCountPercentile": "evaluate_low_sample_count_percentiles"})
    if dimensions:
        block.set("dimensions", {d["Name"]: tf.hcl(d["Value"]) for d in dimensions})
    for query in queries or []:
        entry = dict(query)
        stat = entry.pop("MetricStat", None)
        inner = tf.body(Block("metric_query"), entry)
        if stat is not None:
            metric = Block("metric")
            found = dict(stat["Metric"])
            dims = found.pop("Dimensions", None)
            tf.body(metric, {**found, **{k: v for k, v in stat.items() if k != "Metric"}})
            if dims:
                metric.set("dimensions", {d["Name"]: tf.hcl(d["Value"]) for d in dims})
            inner.add(metric)
        block.add(inner)
    return [Made(block, ident(r, "AlarmName"))]


def _dashboard(tf: Translator, r: Resource) -> list[Made]:
    block = Block("resource", ("aws_cloudwatch_dashboard", tf.name(r.logical_id)))
    block.set("dashboard_name", tf.hcl(r.properties["DashboardName"]))
    block.set("dashboard_body", tf.json(r.properties["DashboardBody"]))
    return [Made(block, ident(r, "DashboardName"))]


# -- the guards: Scheduler, EventBridge, Step Functions --------------------------------------------------
def _schedule(tf: Translator, r: Resource) -> list[Made]:
    props = dict(r.properties)
    target = dict(props.pop("Target"))
    block = tf.body(Block("resource", ("aws_scheduler_schedule", tf.name(r.logical_id))), props)
    data = target.pop("Input", None)
    inner = tf.body(Block("target"), target)
    if data is not None:
        inner.set("input", tf.json(data))
    block.add(inner)
    group = tf.live(props.get("GroupName", "default"))
    return [Made(block, f"{group}/{ident(r, 'Name')}")]


def _rule(tf: Translator, r: Resource) -> list[Made]:
    name = tf.name(r.logical_id)
    props = dict(r.properties)
    targets = props.pop("Targets", [])
    pattern = props.pop("EventPattern", None)
    block = tf.body(Block("resource", ("aws_cloudwatch_event_rule", name)), props)
    if pattern is not None:
        block.set("event_pattern", tf.json(pattern))
    rule = tf.live(props.get("Name", r.physical_id))
    bus = tf.live(props.get("EventBusName", "default"))
    prefix = "" if bus == "default" else f"{bus}/"
    made = [Made(block, f"{prefix}{rule}")]
    for target in targets:
        entry = dict(target)
        target_id = tf.live(entry.pop("Id"))
        inner = Block("resource", ("aws_cloudwatch_event_target", f"{name}_{snake(target_id)}"))
        inner.set("rule", Expr(f"aws_cloudwatch_event_rule.{name}.name"))
        if bus != "default":
            inner.set("event_bus_name", bus)
        inner.set("target_id", target_id)
        data = entry.pop("Input", None)
        tf.body(inner, entry)
        if data is not None:
            inner.set("input", tf.json(data))
        made.append(Made(inner, f"{prefix}{rule}/{target_id}"))
    return made


def _state_machine(tf: Translator, r: Resource) -> list[Made]:
    props = dict(r.properties)
    if "DefinitionSubstitutions" in props:
        raise ShipyardError(
            f"the Terraform export cannot write DefinitionSubstitutions of {r.logical_id} (export it as CloudFormation)"
        )
    definition = props.pop("DefinitionString", None) or props.pop("Definition", None)
    block = tf.body(
        Block("resource", ("aws_sfn_state_machine", tf.name(r.logical_id))),
        props,
        {"StateMachineName": "name", "StateMachineType": "type"},
    )
    block.set("definition", tf.json(definition))
    return [Made(block, ident(r, "Arn"))]


def convert(tf: Translator, resource: Resource) -> list[Made]:
    """The Terraform resources of one Stack resource (the main one first), each with its import id."""
    made = mapping_of(tf.table, resource).convert(tf, resource)
    if resource.depends_on:
        # on everything written for the other resource: DependsOn ApiMethod is on its integration and responses
        # too (a deployment of a method without its integration fails), as CloudFormation's Method holds them
        needs = []
        for logical_id in resource.depends_on:
            other = tf.resource(logical_id)
            needs += [Expr(one.address) for one in mapping_of(tf.table, other).convert(tf, other)]
        made[0].block.set("depends_on", needs)
    return made


_NAME = {"Arn": "arn"}
MAPPING: dict[str, Mapping] = {
    "AWS::IAM::Role": Mapping("aws_iam_role", "name", {"Arn": "arn", "RoleId": "unique_id"}, _role,
                              ("aws_iam_role_policy", "aws_iam_role_policy_attachment")),
    "AWS::ECR::Repository": Mapping("aws_ecr_repository", "name", {"Arn": "arn", "RepositoryUri": "repository_url"},
                                    _repository, ("aws_ecr_lifecycle_policy", "aws_ecr_repository_policy")),
    "AWS::Logs::LogGroup": Mapping("aws_cloudwatch_log_group", "name", _NAME, _log_group),
    "AWS::SageMaker::Model": Mapping("aws_sagemaker_model", "arn", {"ModelName": "name", "ModelArn": "arn"}, _model),
    "AWS::SageMaker::EndpointConfig": Mapping("aws_sagemaker_endpoint_configuration", "arn",
                                              {"EndpointConfigName": "name", "EndpointConfigArn": "arn"},
                                              _endpoint_config),
    "AWS::SageMaker::Endpoint": Mapping("aws_sagemaker_endpoint", "arn",
                                        {"EndpointName": "name", "EndpointArn": "arn"}, _endpoint),
    "AWS::ApplicationAutoScaling::ScalableTarget": Mapping("aws_appautoscaling_target", "id", {"Id": "id"},
                                                           _scalable_target),
    "AWS::ApplicationAutoScaling::ScalingPolicy": Mapping("aws_appautoscaling_policy", "arn", _NAME, _scaling_policy),
    "AWS::SNS::Topic": Mapping("aws_sns_topic", "arn", {"TopicArn": "arn", "TopicName": "name"}, _topic,
                               ("aws_sns_topic_subscription",)),
    "AWS::SNS::Subscription": Mapping("aws_sns_topic_subscription", "arn", _NAME, _subscription),
    "AWS::CloudWatch::Alarm": Mapping("aws_cloudwatch_metric_alarm", "alarm_name", _NAME, _alarm),
    "AWS::CloudWatch::Dashboard": Mapping("aws_cloudwatch_dashboard", "dashboard_name", {}, _dashboard),
    "AWS::Scheduler::Schedule": Mapping("aws_scheduler_schedule", "name", _NAME, _schedule),
    "AWS::Events::Rule": Mapping("aws_cloudwatch_event_rule", "name", _NAME, _rule, ("aws_cloudwatch_event_target",)),
    "AWS::StepFunctions::StateMachine": Mapping("aws_sfn_state_machine", "arn", {"Arn": "arn", "Name": "name"},
                                                _state_machine),
    "AWS::ApiGateway::RestApi": Mapping("aws_api_gateway_rest_api", "id",
                                        {"RestApiId": "id", "RootResourceId": "root_resource_id"}, apigateway.rest_api),
    "AWS::ApiGateway::Resource": Mapping("aws_api_gateway_resource", "id", {"ResourceId": "id"},
                                         apigateway.api_resource),
    "AWS::ApiGateway::Method": Mapping("aws_api_gateway_method", "id", {}, apigateway.method,
                                       ("aws_api_gateway_method_response", "aws_api_gateway_integration",
                                        "aws_api_gateway_integration_response")),
    "AWS::ApiGateway::Deployment": Mapping("aws_api_gateway_deployment", "id", {"DeploymentId": "id"},
                                           apigateway.deployment),
    "AWS::ApiGateway::Stage": Mapping("aws_api_gateway_stage", "stage_name", {}, apigateway.stage,
                                      ("aws_api_gateway_method_settings",)),
    "AWS::ApiGateway::ApiKey": Mapping("aws_api_gateway_api_key", "id", {"APIKeyId": "id"}, apigateway.api_key),
    "AWS::ApiGateway::UsagePlan": Mapping("aws_api_gateway_usage_plan", "id", {"Id": "id"}, apigateway.usage_plan),
    "AWS::ApiGateway::UsagePlanKey": Mapping("aws_api_gateway_usage_plan_key", "id", {"Id": "id"},
                                             apigateway.usage_plan_key),
}  # fmt: skip


def translator(stack: Stack) -> Translator:
    """The translator of ``stack``'s values against this module's mapping."""
    return Translator(stack, MAPPING)
