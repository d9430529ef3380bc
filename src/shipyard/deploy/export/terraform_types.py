"""Each CloudFormation type of an export as the Terraform AWS provider's resources (argument names and block
shapes from the provider's docs), with the ``import`` id each takes, and the translation of a Stack's values:
``Ref``/``GetAtt`` → ``aws_x.y.attr`` / ``var.x``, ``Sub`` → an interpolated string, JSON documents →
``jsonencode(...)``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipyard.deploy.export.hcl import Block, Call, Expr, string
from shipyard.deploy.export.model import GetAtt, Ref, Resource, Stack, Sub
from shipyard.deploy.export.references import SUB_NAME
from shipyard.errors import ShipyardError

__all__ = ["MAPPING", "Made", "Translator", "convert", "snake"]

# values that are maps of strings in the provider (attributes `x = {...}`, not blocks)
_MAPS = {"Environment", "RequestParameters", "ResponseParameters", "RequestTemplates", "ResponseTemplates",
         "RequestModels", "ResponseModels", "Variables", "InputPathsMap"}  # fmt: skip
_PSEUDO = {
    "AWS::Region": "var.region",
    "AWS::AccountId": "data.aws_caller_identity.current.account_id",
    "AWS::Partition": "data.aws_partition.current.partition",
    "AWS::URLSuffix": "data.aws_partition.current.dns_suffix",
}


def snake(name: str) -> str:
    """CloudFormation's ``MemorySizeInMB`` → ``memory_size_in_mb``; a logical id → a Terraform name."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return re.sub(r"[^a-z0-9_]", "_", spaced.lower()).strip("_")


@dataclass(frozen=True)
class Made:
    """One Terraform resource written for a Stack resource, and the id ``import`` attaches it with."""

    block: Block
    import_id: str | None  # None: not importable (said in a comment)
    note: str = ""

    @property
    def address(self) -> str:
        return f"{self.block.labels[0]}.{self.block.labels[1]}"


@dataclass(frozen=True)
class Mapping:
    """A CloudFormation type's main Terraform resource, what its ``Ref`` and ``GetAtt`` read there, and the
    function writing it (and its companions: inline policies, targets, responses)."""

    type: str
    ref: str
    attrs: dict[str, str]
    convert: Callable[[Translator, Resource], list[Made]]
    companions: tuple[str, ...] = ()


@dataclass
class Translator:
    """Turns a Stack's values into HCL against the names the writer gives its resources."""

    stack: Stack
    uses: set[str] = field(default_factory=set)  # the data sources used ("aws_caller_identity", "aws_partition")

    def name(self, logical_id: str) -> str:
        """The Terraform name of a logical id: ``AlarmInvocation4XXErrors`` → ``alarm_invocation4xx_errors``."""
        spaced = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z0-9])(?=[A-Z][a-z])", "_", logical_id)
        return re.sub(r"[^a-z0-9_]", "_", spaced.lower()).strip("_")

    def address(self, logical_id: str) -> str:
        resource = self._resource(logical_id)
        return f"{_mapping(resource).type}.{self.name(logical_id)}"

    def _resource(self, logical_id: str) -> Resource:
        try:
            return self.stack.resource(logical_id)
        except KeyError:
            raise ShipyardError(
                f"the Terraform export: a reference names {logical_id}, no resource of the stack"
            ) from None

    # -- references ------------------------------------------------------------------------------------
    def reference(self, name: str, attribute: str | None) -> str:
        """The HCL expression of ``Ref name`` (attribute None) or ``GetAtt name.attribute``."""
        if attribute is None and name in _PSEUDO:
            if _PSEUDO[name].startswith("data."):
                self.uses.add(_PSEUDO[name].split(".")[1])
            return _PSEUDO[name]
        if attribute is None and any(p.name == name for p in self.stack.parameters):
            return f"var.{snake(name)}"
        resource = self._resource(name)
        mapping = _mapping(resource)
        if attribute is None:
            return f"{self.address(name)}.{mapping.ref}"
        if attribute not in mapping.attrs:
            raise ShipyardError(
                f"the Terraform export cannot write GetAtt {name}.{attribute}: {mapping.type} has no such attribute "
                "here (export it as CloudFormation instead, or report it)"
            )
        return f"{self.address(name)}.{mapping.attrs[attribute]}"

    def sub(self, template: str) -> str:
        """A Sub as an interpolated HCL string: ``${Endpoint.EndpointName}`` → ``${aws_sagemaker_endpoint...}``."""
        out, last = [], 0

        def literal(text: str) -> str:  # ${!Name} is CloudFormation's literal ${Name}
            return string(text.replace("${!", "${"))[1:-1]

        for found in SUB_NAME.finditer(template):
            out.append(literal(template[last : found.start()]))
            out.append("${" + self.reference(found.group(1), found.group(2)) + "}")
            last = found.end()
        out.append(literal(template[last:]))
        return '"' + "".join(out) + '"'

    def hcl(self, item: Any) -> Any:
        """``item`` with its intrinsics as expressions (for hcl.value)."""
        if isinstance(item, Ref):
            return Expr(self.reference(item.name, None))
        if isinstance(item, GetAtt):
            return Expr(self.reference(item.logical_id, item.attribute))
        if isinstance(item, Sub):
            return Expr(self.sub(item.template))
        if isinstance(item, dict):
            return {k: self.hcl(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [self.hcl(v) for v in item]
        return item

    def json(self, item: Any) -> Expr | Call:
        """A JSON document (given as a value, or as a string of JSON) as ``jsonencode(...)``."""
        if isinstance(item, str):
            try:
                item = json.loads(item)
            except ValueError:
                return Expr(string(item))
        if isinstance(item, Sub):  # a JSON text with ${...} in its strings: the document, its strings interpolated
            try:
                parsed = json.loads(item.template)
            except ValueError:
                return Expr(self.sub(item.template))
            if not _keys_plain(parsed):
                return Expr(self.sub(item.template))
            return Call("jsonencode", self.hcl(_subs(parsed)))
        return Call("jsonencode", self.hcl(item))

    # -- the live values (for import ids) ---------------------------------------------------------------
    def live(self, item: Any) -> str:
        """The live value of ``item``: a parameter's default, another resource's physical id, a Sub filled."""
        if isinstance(item, Ref):
            parameter = next((p for p in self.stack.parameters if p.name == item.name), None)
            if parameter is not None:
                return str(parameter.default)
            if item.name == "AWS::Region":
                return self.stack.region
            if item.name == "AWS::AccountId":
                return self.stack.account
            return self._resource(item.name).physical_id
        if isinstance(item, GetAtt):
            return self._resource(item.logical_id).physical_id
        if isinstance(item, Sub):
            return SUB_NAME.sub(
                lambda m: self.live(GetAtt(m.group(1), m.group(2)) if m.group(2) else Ref(m.group(1))), item.template
            )
        return str(item)

    # -- bodies ----------------------------------------------------------------------------------------
    def body(self, block: Block, props: dict[str, Any], renames: dict[str, str] | None = None) -> Block:
        """CloudFormation's properties as the provider's: snake_case names (``renames`` first), a struct as a
        nested block, a list of structs as repeated blocks, ``Tags`` as a map, maps as attributes."""
        renames = renames or {}
        for key, item in props.items():
            name = renames.get(key, snake(key))
            if key == "Tags":
                block.set("tags", {t["Key"]: self.hcl(t["Value"]) for t in item})
            elif key in _MAPS or isinstance(item, Ref | GetAtt | Sub):
                block.set(name, self.hcl(item))
            elif isinstance(item, dict):
                block.add(self.body(Block(name), item, renames))
            elif isinstance(item, list) and item and all(isinstance(x, dict) for x in item):
                for entry in item:
                    block.add(self.body(Block(name), entry, renames))
            else:
                block.set(name, self.hcl(item))
        return block


def _subs(item: Any) -> Any:
    """A document parsed from a Sub's JSON text, each string holding ``${`` a Sub again."""
    if isinstance(item, str):
        return Sub(item) if "${" in item else item
    if isinstance(item, dict):
        return {key: _subs(value) for key, value in item.items()}
    if isinstance(item, list):
        return [_subs(value) for value in item]
    return item


def _keys_plain(item: Any) -> bool:
    """No key of the document holds ``${`` (a key cannot be interpolated in an HCL object written as such)."""
    if isinstance(item, dict):
        return all("${" not in key and _keys_plain(value) for key, value in item.items())
    if isinstance(item, list):
        return all(_keys_plain(value) for value in item)
    return True


def _mapping(resource: Resource) -> Mapping:
    if resource.type not in MAPPING:
        raise ShipyardError(
            f"the Terraform export has no mapping for {resource.type} ({resource.logical_id}): "
            "export it as CloudFormation instead, or report it"
        )
    return MAPPING[resource.type]


def _ident(resource: Resource, key: str) -> str:
    return resource.import_identifier.get(key) or resource.physical_id


def _pick(props: dict[str, Any], *keys: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(the given keys, the rest)`` of ``props``."""
    return {k: v for k, v in props.items() if k in keys}, {k: v for k, v in props.items() if k not in keys}


# -- IAM, ECR, logs ---------------------------------------------------------------------------------------
def _role(tf: Translator, r: Resource) -> list[Made]:
    name = tf.name(r.logical_id)
    taken, rest = _pick(r.properties, "AssumeRolePolicyDocument", "Policies", "ManagedPolicyArns")
    block = Block("resource", ("aws_iam_role", name))
    tf.body(block, rest, {"RoleName": "name", "MaxSessionDuration": "max_session_duration"})
    block.set("assume_role_policy", tf.json(taken["AssumeRolePolicyDocument"]))
    role = _ident(r, "RoleName")
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
    taken, rest = _pick(r.properties, "LifecyclePolicy", "RepositoryPolicyText")
    block = tf.body(
        Block("resource", ("aws_ecr_repository", name)),
        rest,
        {"RepositoryName": "name", "EmptyOnDelete": "force_delete"},
    )
    repository = _ident(r, "RepositoryName")
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
    return [Made(block, _ident(r, "LogGroupName"))]


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
    taken, rest = _pick(r.properties, "ScalingTargetId", "PolicyName", "PolicyType")
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
    taken, rest = _pick(r.properties, "Subscription")
    block = tf.body(Block("resource", ("aws_sns_topic", name)), rest, {"TopicName": "name", "FifoTopic": "fifo_topic"})
    made = [Made(block, _ident(r, "TopicArn"))]
    for i, subscription in enumerate(taken.get("Subscription", [])):
        inline = Block("resource", ("aws_sns_topic_subscription", f"{name}_{i}"))
        inline.set("topic_arn", Expr(f"aws_sns_topic.{name}.arn"))
        tf.body(inline, subscription)
        made.append(Made(inline, None, "a subscription is imported by its ARN, which this export does not know"))
    return made


def _subscription(tf: Translator, r: Resource) -> list[Made]:
    taken, rest = _pick(r.properties, "FilterPolicy", "RedrivePolicy", "DeliveryPolicy")
    block = tf.body(Block("resource", ("aws_sns_topic_subscription", tf.name(r.logical_id))), rest)
    for key, item in taken.items():
        block.set(snake(key), tf.json(item))
    arn = _ident(r, "Arn")
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
    return [Made(block, _ident(r, "AlarmName"))]


def _dashboard(tf: Translator, r: Resource) -> list[Made]:
    block = Block("resource", ("aws_cloudwatch_dashboard", tf.name(r.logical_id)))
    block.set("dashboard_name", tf.hcl(r.properties["DashboardName"]))
    block.set("dashboard_body", tf.json(r.properties["DashboardBody"]))
    return [Made(block, _ident(r, "DashboardName"))]


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
    return [Made(block, f"{group}/{_ident(r, 'Name')}")]


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
    return [Made(block, _ident(r, "Arn"))]


# -- API Gateway -----------------------------------------------------------------------------------------
def _rest_api(tf: Translator, r: Resource) -> list[Made]:
    props = dict(r.properties)
    policy = props.pop("Policy", None)
    block = tf.body(
        Block("resource", ("aws_api_gateway_rest_api", tf.name(r.logical_id))),
        props,
        {"ApiKeySourceType": "api_key_source"},
    )
    if policy is not None:
        block.set("policy", tf.json(policy))
    return [Made(block, _ident(r, "RestApiId"))]


def _api_id(tf: Translator, r: Resource) -> str:
    return r.import_identifier.get("RestApiId") or tf.live(r.properties["RestApiId"])


def _api_resource(tf: Translator, r: Resource) -> list[Made]:
    block = tf.body(Block("resource", ("aws_api_gateway_resource", tf.name(r.logical_id))), r.properties)
    return [Made(block, f"{_api_id(tf, r)}/{_ident(r, 'ResourceId')}")]


def _method(tf: Translator, r: Resource) -> list[Made]:
    name = tf.name(r.logical_id)
    props = dict(r.properties)
    integration = dict(props.pop("Integration", {}))
    responses = props.pop("MethodResponses", [])
    where: dict[str, Any] = {k: props[k] for k in ("RestApiId", "ResourceId") if k in props}
    api = _api_id(tf, r)
    resource_id = r.import_identifier.get("ResourceId") or tf.live(props["ResourceId"])
    method = r.import_identifier.get("HttpMethod") or tf.live(props["HttpMethod"])
    key = f"{api}/{resource_id}/{method}"
    block = tf.body(Block("resource", ("aws_api_gateway_method", name)), props, {"AuthorizationType": "authorization"})
    made = [Made(block, key)]
    head: dict[str, Any] = {**where, "HttpMethod": Expr(f"aws_api_gateway_method.{name}.http_method")}
    for response in responses:
        status = tf.live(response["StatusCode"])
        inner = tf.body(Block("resource", ("aws_api_gateway_method_response", f"{name}_{snake(status)}")), head)
        tf.body(inner, response)
        made.append(Made(inner, f"{key}/{status}"))
    if integration:
        answers = integration.pop("IntegrationResponses", [])
        inner = tf.body(Block("resource", ("aws_api_gateway_integration", name)), head)
        tf.body(inner, integration, {"TimeoutInMillis": "timeout_milliseconds", "Uri": "uri"})
        made.append(Made(inner, key))
        for answer in answers:
            status = tf.live(answer["StatusCode"])
            reply = tf.body(
                Block("resource", ("aws_api_gateway_integration_response", f"{name}_{snake(status)}")), head
            )
            tf.body(reply, answer)
            needs = [f"aws_api_gateway_integration.{name}"]
            if any(tf.live(m["StatusCode"]) == status for m in responses):
                needs.append(f"aws_api_gateway_method_response.{name}_{snake(status)}")
            reply.set("depends_on", [Expr(n) for n in needs])
            made.append(Made(reply, f"{key}/{status}"))
    return made


def _deployment(tf: Translator, r: Resource) -> list[Made]:
    block = tf.body(Block("resource", ("aws_api_gateway_deployment", tf.name(r.logical_id))), r.properties)
    return [Made(block, f"{_api_id(tf, r)}/{_ident(r, 'DeploymentId')}")]


def _method_path(setting: dict[str, Any], tf: Translator) -> str:
    """MethodSettings' ``/*`` + ``*`` → ``*/*``; ``/~1a/b`` + ``POST`` → ``a/b/POST`` (the provider's method_path)."""
    path = tf.live(setting.get("ResourcePath", "/*")).lstrip("/").replace("~1", "/")
    return f"{path}/{tf.live(setting.get('HttpMethod', '*'))}"


def _stage(tf: Translator, r: Resource) -> list[Made]:
    name = tf.name(r.logical_id)
    props = dict(r.properties)
    settings = props.pop("MethodSettings", [])
    block = tf.body(
        Block("resource", ("aws_api_gateway_stage", name)), props, {"TracingEnabled": "xray_tracing_enabled"}
    )
    api, stage = _api_id(tf, r), r.import_identifier.get("StageName") or tf.live(props["StageName"])
    made = [Made(block, f"{api}/{stage}")]
    for i, setting in enumerate(settings):
        path = _method_path(setting, tf)
        inner = Block("resource", ("aws_api_gateway_method_settings", name if len(settings) == 1 else f"{name}_{i}"))
        inner.set("rest_api_id", tf.hcl(props["RestApiId"]))
        inner.set("stage_name", Expr(f"aws_api_gateway_stage.{name}.stage_name"))
        inner.set("method_path", path)
        values = {k: v for k, v in setting.items() if k not in ("ResourcePath", "HttpMethod")}
        inner.add(tf.body(Block("settings"), values, {"CacheTtlInSeconds": "cache_ttl_in_seconds"}))
        made.append(Made(inner, f"{api}/{stage}/{path}"))
    return made


def _api_key(tf: Translator, r: Resource) -> list[Made]:
    props = {k: v for k, v in r.properties.items() if k not in ("StageKeys", "GenerateDistinctId")}
    block = tf.body(Block("resource", ("aws_api_gateway_api_key", tf.name(r.logical_id))), props)
    return [Made(block, _ident(r, "APIKeyId"))]


def _usage_plan(tf: Translator, r: Resource) -> list[Made]:
    block = tf.body(
        Block("resource", ("aws_api_gateway_usage_plan", tf.name(r.logical_id))),
        r.properties,
        {"UsagePlanName": "name", "Quota": "quota_settings", "Throttle": "throttle_settings"},
    )
    return [Made(block, _ident(r, "Id"))]


def _usage_plan_key(tf: Translator, r: Resource) -> list[Made]:
    block = tf.body(Block("resource", ("aws_api_gateway_usage_plan_key", tf.name(r.logical_id))), r.properties)
    plan, key = tf.live(r.properties["UsagePlanId"]), tf.live(r.properties["KeyId"])
    return [Made(block, f"{plan}/{key}")]


def convert(tf: Translator, resource: Resource) -> list[Made]:
    """The Terraform resources of one Stack resource (the main one first), each with its import id."""
    made = _mapping(resource).convert(tf, resource)
    if resource.depends_on:
        made[0].block.set("depends_on", [Expr(tf.address(other)) for other in resource.depends_on])
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
                                        {"RestApiId": "id", "RootResourceId": "root_resource_id"}, _rest_api),
    "AWS::ApiGateway::Resource": Mapping("aws_api_gateway_resource", "id", {"ResourceId": "id"}, _api_resource),
    "AWS::ApiGateway::Method": Mapping("aws_api_gateway_method", "id", {}, _method,
                                       ("aws_api_gateway_method_response", "aws_api_gateway_integration",
                                        "aws_api_gateway_integration_response")),
    "AWS::ApiGateway::Deployment": Mapping("aws_api_gateway_deployment", "id", {"DeploymentId": "id"}, _deployment),
    "AWS::ApiGateway::Stage": Mapping("aws_api_gateway_stage", "stage_name", {}, _stage,
                                      ("aws_api_gateway_method_settings",)),
    "AWS::ApiGateway::ApiKey": Mapping("aws_api_gateway_api_key", "id", {"APIKeyId": "id"}, _api_key),
    "AWS::ApiGateway::UsagePlan": Mapping("aws_api_gateway_usage_plan", "id", {"Id": "id"}, _usage_plan),
    "AWS::ApiGateway::UsagePlanKey": Mapping("aws_api_gateway_usage_plan_key", "id", {"Id": "id"}, _usage_plan_key),
}  # fmt: skip
