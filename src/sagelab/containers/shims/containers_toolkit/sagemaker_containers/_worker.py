"""`sagemaker_containers._worker` (`beta.framework.worker`): the Response an output_fn may return."""

from sagelab.containers.shims.codecs import Response

__all__ = ["Response"]
