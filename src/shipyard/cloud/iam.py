"""IAM: the endpoint's execution role and its one inline policy."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import TAG_KEY, TRAINING_TAG, Aws
from shipyard.errors import SpecError

OWNER_TAGS = (TAG_KEY, TRAINING_TAG)  # the tags that say whose a role is

__all__ = ["IamGateway", "apigateway_trust_policy", "sagemaker_trust_policy", "service_trust_policy"]


def sagemaker_trust_policy(account: str) -> dict[str, Any]:
    """Only SageMaker may assume the role, and only on behalf of this account (confused-deputy guard)."""
    return service_trust_policy("sagemaker.amazonaws.com", account)


def apigateway_trust_policy(account: str) -> dict[str, Any]:
    """Only API Gateway may assume the role (a public API's integration role).

    No ``aws:SourceAccount`` condition here: API Gateway's own guide gives the integration role's trust policy
    without one, and nothing documents that API Gateway sets that key when it assumes an integration role (a
    condition it does not meet would make every call answer 500). The role cannot serve another account's API:
    naming it as an integration's credentials needs ``iam:PassRole`` in this account, and roles are not passed
    across accounts. ``account`` is kept for the signature shared with :func:`sagemaker_trust_policy`."""
    return service_trust_policy("apigateway.amazonaws.com", None)


def service_trust_policy(service: str, account: str | None) -> dict[str, Any]:
    """Only the AWS service ``service`` may assume the role; with ``account``, on behalf of that account only
    (the confused-deputy guard, for services that set ``aws:SourceAccount``)."""
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account}}
    return {"Version": "2012-10-17", "Statement": [statement]}


class IamGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("iam")

    def create_role(
        self, name: str, *, trust: dict[str, Any], path: str, tags: list[dict[str, str]], description: str
    ) -> str:
        """Create the role (or adopt it when it exists with the same ``shipyard:deployment`` tag: a resumed deploy);
        its ARN. A role of that name that is not this deployment's is refused, never taken over."""
        with aws_call(f"create the IAM role {name}"):
            try:
                answer = self.client.create_role(
                    RoleName=name,
                    Path=path,
                    AssumeRolePolicyDocument=json.dumps(trust),
                    Description=description,
                    MaxSessionDuration=3600,
                    Tags=tags,
                )
            except ClientError as exc:
                if error_code(exc) != "EntityAlreadyExists":
                    raise
                self._check_ours(name, tags)
                # A resumed deploy: the role is ours from the first attempt; bring its trust policy up to date.
                self.client.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
                return str(self.client.get_role(RoleName=name)["Role"]["Arn"])
        return str(answer["Role"]["Arn"])

    def _check_ours(self, name: str, tags: list[dict[str, str]]) -> None:
        """An existing role is adopted only when it carries the owner tags given (the deployment's, or the
        training run's) with the same values; anything else is somebody else's role."""
        given = {t["Key"]: t["Value"] for t in tags}
        wanted = {key: given[key] for key in OWNER_TAGS if key in given}
        found = {t["Key"]: t["Value"] for t in self.client.list_role_tags(RoleName=name).get("Tags", [])}
        if not wanted or any(found.get(key) != value for key, value in wanted.items()):
            owner = ", ".join(f"{key}={found[key]}" for key in OWNER_TAGS if key in found) or "no Shipyard tag"
            raise SpecError(
                f"the IAM role {name} exists and is not this one's ({owner}): Shipyard does not take a role over; "
                "delete or rename that role, or choose another name"
            )

    def put_policy(self, role: str, policy_name: str, document: dict[str, Any]) -> None:
        with aws_call(f"attach the policy {policy_name} to the role {role}"):
            self.client.put_role_policy(RoleName=role, PolicyName=policy_name, PolicyDocument=json.dumps(document))

    def get_policy(self, role: str, policy_name: str) -> dict[str, Any]:
        with aws_call(f"read the policy {policy_name} of the role {role}"):
            document = self.client.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
        return json.loads(document) if isinstance(document, str) else dict(document)

    def describe_role(self, name: str) -> dict[str, Any] | None:
        """GetRole's ``Role`` (its Path, trust policy as a document, description, MaxSessionDuration), or None."""
        with aws_call(f"read the IAM role {name}"):
            try:
                role = dict(self.client.get_role(RoleName=name)["Role"])
            except ClientError as exc:
                if error_code(exc) == "NoSuchEntity":
                    return None
                raise
        trust = role.get("AssumeRolePolicyDocument")
        if isinstance(trust, str):  # AWS answers it URL-encoded JSON (boto3 decodes it); moto sometimes plain
            role["AssumeRolePolicyDocument"] = json.loads(unquote(trust))
        return role

    def inline_policies(self, role: str) -> dict[str, dict[str, Any]]:
        """The role's inline policies: name → document (ListRolePolicies, then GetRolePolicy for each)."""
        with aws_call(f"list the inline policies of the role {role}"):
            names = list(self.client.list_role_policies(RoleName=role)["PolicyNames"])
        return {name: self.get_policy(role, name) for name in sorted(names)}

    def untag_role(self, name: str, keys: list[str]) -> None:
        with aws_call(f"remove the tags {', '.join(keys)} from the IAM role {name}"):
            self.client.untag_role(RoleName=name, TagKeys=keys)

    def role_arn(self, name: str) -> str | None:
        with aws_call(f"look up the IAM role {name}"):
            try:
                return str(self.client.get_role(RoleName=name)["Role"]["Arn"])
            except ClientError as exc:
                if error_code(exc) == "NoSuchEntity":
                    return None
                raise

    def tags(self, name: str) -> dict[str, str]:
        with aws_call(f"read the tags of the IAM role {name}"):
            tags = self.client.list_role_tags(RoleName=name)["Tags"]
        return {t["Key"]: t["Value"] for t in tags}

    def roles(self, path: str) -> list[str]:
        """Names of the roles under ``path``."""
        names: list[str] = []
        with aws_call(f"list the IAM roles under {path}"):
            for page in self.client.get_paginator("list_roles").paginate(PathPrefix=path):
                names.extend(role["RoleName"] for role in page["Roles"])
        return names

    def delete_role(self, name: str) -> bool:
        """Delete the role with its inline and attached policies; ``False`` when it was already gone."""
        with aws_call(f"delete the IAM role {name}"):
            try:
                for policy in self.client.list_role_policies(RoleName=name)["PolicyNames"]:
                    self.client.delete_role_policy(RoleName=name, PolicyName=policy)
                for policy in self.client.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
                    self.client.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
                self.client.delete_role(RoleName=name)
            except ClientError as exc:
                if error_code(exc) == "NoSuchEntity":
                    return False
                raise
        return True
