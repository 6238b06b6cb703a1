"""sagelab: run SageMaker pipeline definitions locally in seconds, and on SageMaker at scale."""

__version__ = "0.1.0"
