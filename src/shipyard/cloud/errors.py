"""botocore's exceptions, translated once, into Shipyard's error tree, with what to do next."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from shipyard.errors import AccessDenied, AwsUnreachable, CloudError, CredentialsError, ShipyardError

__all__ = ["DENIED", "REFUSED_CREDENTIALS", "aws_call", "error_code", "translate"]

REFUSED_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "AuthFailure",
}
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
_THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}


def error_code(exc: BaseException) -> str | None:
    """AWS's error code of a botocore ``ClientError`` (``None`` for anything else)."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def translate(exc: BaseException, action: str, region: str | None = None) -> ShipyardError:
    """A :class:`ShipyardError` for a botocore exception raised while trying to ``action``."""
    where = f" in {region}" if region else ""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CredentialsError(
            f"cannot {action}: no AWS credentials found. Set AWS_PROFILE (after `aws configure` or "
            "`aws sso login`) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or deploy to the local target (no AWS)"
        )
    if isinstance(exc, CredentialRetrievalError | TokenRetrievalError | SSOError):
        return CredentialsError(
            f"cannot {action}: the AWS credentials could not be loaded ({exc}); refresh them "
            "(`aws sso login`, new keys) or deploy to the local target"
        )
    if isinstance(exc, NoRegionError):
        return CloudError(f"cannot {action}: no AWS region; give one or set AWS_REGION", option="region")
    if isinstance(exc, BotoConnectionError):  # no answer at all: DNS, refused, timed out, proxy, TLS
        return AwsUnreachable(
            f"cannot {action}: AWS is not reachable{where} ({exc}); check the network and the region", option="region"
        )
    if not isinstance(exc, ClientError):
        if isinstance(exc, BotoCoreError):
            return CloudError(f"cannot {action}: {exc}")
        return CloudError(f"cannot {action}: {type(exc).__name__}: {exc}")
    code = error_code(exc) or "Unknown"
    message = exc.response.get("Error", {}).get("Message") or str(exc)
    operation = exc.operation_name
    text = f"cannot {action} ({operation}: {code}: {message})"
    if code in REFUSED_CREDENTIALS:
        return CredentialsError(
            f"{text}. AWS refused the credentials{where}: refresh them (`aws sso login`, new keys), or, if "
            "they work in other regions, this account has no access to this region (an opt-in region must "
            "be enabled in the account settings); choose another region",
            aws_code=code,
            operation=operation,
            option="region",
        )
    if code in DENIED:
        return AccessDenied(
            f"{text}. Your AWS identity lacks this permission: grant it (docs/deploy.md lists every "
            "permission a deploy needs), or reuse an execution role made by an administrator",
            aws_code=code,
            operation=operation,
            option="role_arn",
        )
    if code in _THROTTLED:
        return CloudError(f"{text}. AWS throttled the call: wait and retry", aws_code=code, operation=operation)
    if code == "ResourceLimitExceeded":
        return CloudError(
            f"{text}. An account quota is reached: delete unused endpoints (`shipyard status`), choose another "
            "instance type, or request more in the Service Quotas console",
            aws_code=code,
            operation=operation,
        )
    return CloudError(text, aws_code=code, operation=operation)


@contextmanager
def aws_call(action: str, region: str | None = None) -> Iterator[None]:
    """Translate botocore exceptions raised in the block (``with aws_call("create the role"): ...``)."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, action, region) from exc
