"""Batch transform (``shipyard transform``): a whole dataset through the model, SageMaker's way, on both targets.

``options.py`` (:class:`TransformOptions`), ``engine.py`` (what SageMaker does between S3 and the container,
which the local target does itself), ``filters.py`` (DataProcessing's JSONPath), ``local.py`` (the container),
``sagemaker.py`` (CreateTransformJob), ``cost.py`` (the job's estimate). The record rules are
client/records.py's.
"""

from __future__ import annotations

from shipyard.deploy.transform.engine import FileFailure, FileResult, Progress, TransformResult
from shipyard.deploy.transform.options import TransformOptions

__all__ = ["FileFailure", "FileResult", "Progress", "TransformOptions", "TransformResult"]
