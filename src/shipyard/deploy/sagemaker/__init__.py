"""The ``sagemaker`` target (see :mod:`.target`)."""

from shipyard.deploy.sagemaker.target import SageMakerTarget

__all__ = ["SageMakerTarget"]
