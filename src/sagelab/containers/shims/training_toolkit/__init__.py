"""PYTHONPATH root of the `sagemaker_training` stand-in (sagemaker-training, the current toolkit)."""
