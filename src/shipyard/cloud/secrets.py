"""Secrets Manager: resolve secret names to ARNs, so the role may read exactly those (never the values)."""

from __future__ import annotations

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import Aws
from shipyard.errors import SpecError

__all__ = ["SecretsGateway"]


class SecretsGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("secretsmanager")

    def arn(self, name: str) -> str:
        """The full ARN of the secret ``name`` (DescribeSecret reads metadata only, not the value)."""
        with aws_call(f"look up the secret {name}", self.aws.region):
            try:
                return str(self.client.describe_secret(SecretId=name)["ARN"])
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    raise SpecError(
                        f"--secret {name}: no such secret in Secrets Manager in {self.aws.region}; create it "
                        f"(aws secretsmanager create-secret --name {name} ...) or check --region"
                    ) from None
                raise
