"""AWS, one gateway per service over boto3.

:class:`Aws` holds one account and region: a boto3 session, clients with the project's settings and a
count of the API calls made. Each gateway (:mod:`.iam`, :mod:`.ecr`, :mod:`.s3`, :mod:`.sagemaker`,
:mod:`.autoscaling`, :mod:`.logs`, :mod:`.secrets`, :mod:`.sts`) wraps one service: creates are explicit,
deletes are idempotent (a resource already gone is not an error), and every ``botocore`` error is turned
into a :class:`shipyard.errors.CloudError` where the call is made, with AWS's error code and what to do next.

boto3 is an optional dependency (``pip install 'shipyard[aws]'``); importing this package without it
raises a :class:`~shipyard.errors.CloudError` that says so.
"""

from __future__ import annotations

try:
    import boto3  # noqa: F401
except ImportError:  # pragma: no cover - the dev extra installs it
    from shipyard.errors import NEEDS_BOTO3, CloudError

    raise CloudError(NEEDS_BOTO3) from None

from shipyard.cloud.errors import aws_call, error_code, translate
from shipyard.cloud.session import TAG_KEY, Aws, deployment_tags, tag_list

__all__ = ["TAG_KEY", "Aws", "aws_call", "deployment_tags", "error_code", "tag_list", "translate"]
