"""Experiments: every training run recorded in MLflow (a local SQLite store by default), listed and compared."""
