"""What AWS's own service models say, read without an AWS call (botocore ships them)."""

from __future__ import annotations

import functools

import botocore.session

__all__ = ["hosting_instance_types"]


@functools.cache
def hosting_instance_types() -> tuple[str, ...]:
    """The instance types SageMaker hosting accepts (``ProductionVariantInstanceType`` in botocore's model)."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return tuple(model.shape_for("ProductionVariantInstanceType").enum)
