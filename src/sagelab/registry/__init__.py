"""The local model registry: model package groups, numbered versions, approvals.

It mirrors SageMaker's Model Registry: what `DescribeModelPackage` returns is what a
version's `describe()` returns, so pipeline steps and commands read the same shapes.
"""

from sagelab.registry.registry import APPROVAL_STATUSES, ModelPackage, Registry

__all__ = ["APPROVAL_STATUSES", "ModelPackage", "Registry"]
