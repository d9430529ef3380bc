"""Secrets Manager: resolve secret names to ARNs, so the role may read exactly those (deploy, never the
values); and, in the image, read the values at start (:class:`SecretReader`, the server's SecretSource)."""

from __future__ import annotations

from collections.abc import Mapping

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import Aws, tag_list
from shipyard.errors import ShipyardError, SpecError

__all__ = ["SecretReader", "SecretsGateway"]


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

    def create(self, name: str, value: str, *, description: str, tags: Mapping[str, str]) -> str:
        """Keep ``value`` as the secret ``name`` (tagged); an existing one of that name gets the new value. Its ARN."""
        with aws_call(f"create the secret {name}", self.aws.region):
            try:
                answer = self.client.create_secret(
                    Name=name, SecretString=value, Description=description, Tags=tag_list(tags)
                )
            except ClientError as exc:
                if error_code(exc) != "ResourceExistsException":
                    raise
                answer = self.client.put_secret_value(SecretId=name, SecretString=value)
        return str(answer["ARN"])

    def untag(self, name: str, keys: list[str]) -> None:
        with aws_call(f"remove the tags {', '.join(keys)} from the secret {name}", self.aws.region):
            self.client.untag_resource(SecretId=name, TagKeys=keys)

    def tags(self, name: str) -> dict[str, str] | None:
        """The tags of the secret ``name``; ``None`` when there is no such secret."""
        with aws_call(f"look up the secret {name}", self.aws.region):
            try:
                found = self.client.describe_secret(SecretId=name)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return None
                raise
        return {t["Key"]: t["Value"] for t in found.get("Tags") or []}

    def read(self, name: str) -> str | None:
        """The value of the secret ``name``; ``None`` when there is no such secret."""
        with aws_call(f"read the secret {name}", self.aws.region):
            try:
                return str(self.client.get_secret_value(SecretId=name)["SecretString"])
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return None
                raise

    def delete(self, name: str) -> bool:
        """Delete ``name`` now, with no recovery window; ``False`` when it was already gone."""
        with aws_call(f"delete the secret {name}", self.aws.region):
            try:
                self.client.describe_secret(SecretId=name)  # moto answers a delete of a missing secret as done
                self.client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return False
                raise
        return True


class SecretReader:
    """The values, for :func:`shipyard.serving.secrets.load_secrets` (called as ``reader(name)``)."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("secretsmanager")

    def __call__(self, name: str) -> str | bytes:
        with aws_call(f"read the secret {name}", self.aws.region):
            try:
                answer = self.client.get_secret_value(SecretId=name)
            except ClientError as exc:  # a ShipyardError, not a CloudError: the server exits 1 (tests assert it)
                raise ShipyardError(
                    f"cannot read the secret {name!r} ({error_code(exc) or 'Unknown'}): the endpoint's role needs "
                    "secretsmanager:GetSecretValue on it, and the secret must exist in this region"
                ) from None
        if "SecretString" in answer:
            return str(answer["SecretString"])
        return bytes(answer["SecretBinary"])
