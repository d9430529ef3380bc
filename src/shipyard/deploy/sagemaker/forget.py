"""``shipyard forget NAME`` on ``sagemaker``: Shipyard stops managing a deployment and deletes nothing.

The record goes from the state file; on AWS, every resource keeps running. Only Shipyard's own tags go
(``shipyard:deployment``, ``shipyard:expires-at``): they are what ``status --reconcile`` rebuilds a record from and
what ``status --all`` counts as Shipyard's, so with them left the next ``--reconcile`` would take the deployment
back (and a ``cleanup`` would then delete resources a CloudFormation stack or Terraform now owns). Untagged: the
endpoint, endpoint configs and models (SageMaker DeleteTags), the ECR repository, the roles (execution, API, guard),
the log group, the model artifacts in S3, the alarms and the topic, the REST API, its stage, usage plan, key and the
key's secret. The scalable target keeps its tags (reconcile finds it through its endpoint only, never by tag).
Nothing else is changed: no resource is deleted, no setting touched. Each untag is idempotent, so a forget stopped
half-way (the record is dropped last) is finished by running it again.
"""

from __future__ import annotations

from collections.abc import Callable

from shipyard.cloud.session import EXPIRES_TAG, TAG_KEY
from shipyard.deploy.sagemaker.context import Context
from shipyard.deploy.state import Deployment

__all__ = ["SHIPYARD_TAGS", "untag"]

SHIPYARD_TAGS = [TAG_KEY, EXPIRES_TAG]


def untag(ctx: Context, record: Deployment) -> list[str]:
    """Remove Shipyard's tags from every tagged resource ``record`` owns; what was untagged (``kind id``)."""
    done: list[str] = []
    for resource in record.resources:
        if not resource.owned:
            continue
        step = _untagger(ctx, record, resource.kind, resource.id)
        if step is not None:
            step()
            done.append(f"{resource.kind} {resource.id}")
    return done


def _untagger(ctx: Context, record: Deployment, kind: str, ident: str) -> Callable[[], None] | None:
    keys = SHIPYARD_TAGS
    sagemaker = {"endpoint": "endpoint", "endpoint-config": "endpoint-config", "model": "model"}
    if kind in sagemaker:
        # SageMaker writes names lower-cased in its ARNs
        arn = ctx.aws.arn("sagemaker", f"{sagemaker[kind]}/{ident.lower()}")
        return lambda: ctx.sagemaker.untag(arn, keys)
    if kind == "ecr-repository":
        arn = ctx.aws.arn("ecr", f"repository/{ident}")
        return lambda: ctx.ecr.untag(arn, keys)
    if kind in {"role", "api-role", "guard-role"}:
        return lambda: ctx.iam.untag_role(ident, keys)
    if kind == "s3-prefix":
        bucket, _, prefix = ident.removeprefix("s3://").partition("/")

        def objects() -> None:
            ctx.s3.untag_prefix(bucket, prefix, keys)

        return objects
    if kind == "log-group":
        return lambda: ctx.logs.untag(ident, keys)
    if kind in {"alarm", "idle-alarm", "scaling-alarm"}:
        arn = ctx.aws.arn("cloudwatch", f"alarm:{ident}")
        return lambda: ctx.cloudwatch.untag(arn, keys)
    if kind == "sns-topic":
        return lambda: ctx.sns.untag(ident, keys)
    if kind == "api-key-secret":
        return lambda: ctx.secrets.untag(ident, keys)
    api = f"arn:{ctx.aws.identity().partition}:apigateway:{ctx.aws.region}::"
    if kind == "rest-api":
        stage = record.exposure.stage if record.exposure else None

        def api_and_stage() -> None:
            ctx.apigateway.untag(f"{api}/restapis/{ident}", keys)
            if stage:
                ctx.apigateway.untag(f"{api}/restapis/{ident}/stages/{stage}", keys)

        return api_and_stage
    if kind == "usage-plan":
        return lambda: ctx.apigateway.untag(f"{api}/usageplans/{ident}", keys)
    if kind == "api-key":
        return lambda: ctx.apigateway.untag(f"{api}/apikeys/{ident}", keys)
    return None  # found by name only (dashboard, schedule, rule, state machine), or untagged
