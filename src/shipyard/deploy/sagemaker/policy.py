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

__all__ = ["execution_policy"]


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
    if secret_arns:
        statements.append(
            {
                "Sid": "ReadSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": sorted(secret_arns),
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def _always(
    *, partition: str, region: str, account: str, repository: str, bucket: str, prefix: str, log_group: str
) -> list[dict[str, Any]]:
    """The statements every endpoint's role has: pull its image, read its model, write its logs."""
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
        {
            "Sid": "ReadModel",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"arn:{partition}:s3:::{bucket}/{prefix}*",
        },
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            "Resource": [
                f"arn:{partition}:logs:{region}:{account}:log-group:{log_group}",
                f"arn:{partition}:logs:{region}:{account}:log-group:{log_group}:log-stream:*",
            ],
        },
    ]
