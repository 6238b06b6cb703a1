"""Serving models as SageMaker does: the inference server, batch transform, local endpoints."""
