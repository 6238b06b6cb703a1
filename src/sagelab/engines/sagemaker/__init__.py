"""The SageMaker engine: the same definition the local engine runs, on SageMaker Pipelines.

Needs boto3 (`pip install 'sagelab[aws]'`), imported only when the first AWS client is built.
Credentials come only from boto3's chain (the profile's `aws_profile`, environment, SSO,
instance roles). docs/aws.md lists the IAM permissions each command needs.
"""

from sagelab.engines.sagemaker.aws_errors import iam_action, is_not_found
from sagelab.engines.sagemaker.clients import AwsClients
from sagelab.engines.sagemaker.engine import Listener, SageMakerEngine
from sagelab.engines.sagemaker.hosting import Deployment, Endpoints
from sagelab.engines.sagemaker.registry import ModelRegistry
from sagelab.engines.sagemaker.snapshot import FINISHED, ExecutionSnapshot, StepSnapshot

__all__ = [
    "AwsClients",
    "Deployment",
    "Endpoints",
    "ExecutionSnapshot",
    "FINISHED",
    "Listener",
    "ModelRegistry",
    "SageMakerEngine",
    "StepSnapshot",
    "iam_action",
    "is_not_found",
]
