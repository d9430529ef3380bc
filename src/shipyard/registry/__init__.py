"""The model registry: versioned model packages (local: a file in Shipyard's home; sagemaker: Model Package Groups)."""
