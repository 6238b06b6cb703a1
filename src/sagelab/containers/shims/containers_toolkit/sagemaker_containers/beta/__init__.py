"""`sagemaker_containers.beta`: holds `framework`."""
