"""PYTHONPATH root of the `sagemaker_containers` stand-in (the legacy toolkit, sagemaker-containers 2.8)."""
