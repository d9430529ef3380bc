"""The execution role's one inline policy: exactly what this endpoint needs, on exactly its resources.

| statement     | actions                                          | resource                                  |
|---------------|--------------------------------------------------|-------------------------------------------|
| PullImage     | ecr:BatchGetImage, GetDownloadUrlForLayer, ...   | this repository's ARN                     |
| EcrLogin      | ecr:GetAuthorizationToken                        | ``*`` (the action has no resource ARN)    |
| ReadModel     | s3:GetObject                                     | ``arn:aws:s3:::BUCKET/shipyard/NAME/*``   |
| WriteCapture  | s3:PutObject (only with --data-capture)          | ``.../shipyard/NAME/capture/*``           |
| WriteLogs     | logs:CreateLogStream, PutLogEvents, Describe...  | this endpoint's log group                 |
| ReadSecrets   | secretsmanager:GetSecretValue (only --secret)    | the named secrets' ARNs                   |
"""

from __future__ import annotations

from typing import Any

__all__ = ["execution_policy", "pull_image_statements", "write_logs_statement"]


def execution_policy(
    *,
    partition: str,
    region: str,
    account: str,
    repository: str,
    bucket: str,
    prefix: str,
    log_group: str,
    secret_arns: list[str],
    capture_prefix: str | None,
    alarm_names: list[str] | None = None,
    models_url: str | None = None,
) -> dict[str, Any]:
    statements = _always(
        partition=partition,
        region=region,
        account=account,
        repository=repository,
        bucket=bucket,
        prefix=prefix,
        log_group=log_group,
    )
    if capture_prefix:
        statements.append(
            {
                "Sid": "WriteCapture",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"arn:{partition}:s3:::{bucket}/{capture_prefix}/*",
            }
        )
    if models_url:  # a multi-model endpoint's own S3 prefix: SageMaker reads each TargetModel with the role
        models_bucket, _, models_prefix = models_url.removeprefix("s3://").partition("/")
        statements.append(
            {
                "Sid": "ReadMultiModels",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"arn:{partition}:s3:::{models_bucket}/{models_prefix}*",
            }
        )
    if secret_arns:
        statements.append(
            {
                "Sid": "ReadSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": sorted(secret_arns),
            }
        )
    if alarm_names:
        # SageMaker's deployment guardrails read the rollback alarms with the endpoint's execution role
        # ("Auto-Rollback Configuration and Monitoring": cloudwatch:DescribeAlarms on the alarms given).
        statements.append(
            {
                "Sid": "ReadRollbackAlarms",
                "Effect": "Allow",
                "Action": "cloudwatch:DescribeAlarms",
                "Resource": [f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}" for name in alarm_names],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def pull_image_statements(*, partition: str, region: str, account: str, repository: str) -> list[dict[str, Any]]:
    """Pull one ECR repository's images (an endpoint's or a training job's role)."""
    return [
        {
            "Sid": "PullImage",
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": f"arn:{partition}:ecr:{region}:{account}:repository/{repository}",
        },
        {
            # GetAuthorizationToken takes no resource: AWS documents "*" as its only valid resource.
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
    ]


def write_logs_statement(
    *, partition: str, region: str, account: str, log_group: str, create_group: bool = False
) -> dict[str, Any]:
    """Write to one log group's streams (and create the group, where SageMaker makes it on first use)."""
    actions = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    return {
        "Sid": "WriteLogs",
        "Effect": "Allow",
        "Action": (["logs:CreateLogGroup"] if create_group else []) + actions,
        "Resource": [
            f"arn:{partition}:logs:{region}:{account}:log-group:{log_group}",
            f"arn:{partition}:logs:{region}:{account}:log-group:{log_group}:log-stream:*",
        ],
    }


def _always(
    *, partition: str, region: str, account: str, repository: str, bucket: str, prefix: str, log_group: str
) -> list[dict[str, Any]]:
    """The statements every endpoint's role has: pull its image, read its model, write its logs."""
    return [
        *pull_image_statements(partition=partition, region=region, account=account, repository=repository),
        {
            "Sid": "ReadModel",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"arn:{partition}:s3:::{bucket}/{prefix}*",
        },
        write_logs_statement(partition=partition, region=region, account=account, log_group=log_group),
    ]
