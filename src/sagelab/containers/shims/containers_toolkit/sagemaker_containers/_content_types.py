"""`sagemaker_containers._content_types` (`beta.framework.content_types`)."""

from sagelab.containers.shims.codecs import ANY, CSV, JSON, NPY, OCTET_STREAM, UTF8_TYPES

__all__ = ["ANY", "CSV", "JSON", "NPY", "OCTET_STREAM", "UTF8_TYPES"]
