"""Inside the image: the ``train`` entry point (SageMaker's training contract) and ``log_metric``.

Runs where ``serving/`` runs (no boto3, no engine, no CLI): it reads ``/opt/ml/input/config``, sets the ``SM_*``
environment the way SageMaker's training toolkit does, and runs the training script.
"""
