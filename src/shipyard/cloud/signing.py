"""SigV4 for the public API's ``--auth iam``: the headers that sign one request to ``execute-api``.

The client floor cannot import botocore, so a :class:`SigV4Signer` is handed to
:class:`~shipyard.client.transport.HTTPTransport` as a plain callable (its ``sign`` hook): given the method,
the URL, the headers and the body of one request, it answers the headers to add (Authorization, X-Amz-Date
and, for temporary credentials, X-Amz-Security-Token). The credentials are the session's, read per request,
so refreshed ones are used as they come.
"""

from __future__ import annotations

from collections.abc import Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from shipyard.cloud.errors import aws_call
from shipyard.cloud.session import Aws
from shipyard.errors import CredentialsError

__all__ = ["SIGNED_HEADERS", "SigV4Signer"]

SIGNED_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")


class SigV4Signer:
    """``signer(method, url, headers, body) -> headers to add`` for one AWS service (``execute-api``)."""

    def __init__(self, aws: Aws, service: str = "execute-api") -> None:
        self.region = aws.region
        self.service = service
        with aws_call("read the AWS credentials", aws.region):
            self._credentials = aws.session.get_credentials()
        if self._credentials is None:
            raise CredentialsError(
                "--auth iam signs each request with your AWS credentials, and none were found: set AWS_PROFILE "
                "or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            )

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        with aws_call("sign the request", self.region):
            SigV4Auth(self._credentials.get_frozen_credentials(), self.service, self.region).add_auth(request)
        return {name: str(request.headers[name]) for name in SIGNED_HEADERS if name in request.headers}
