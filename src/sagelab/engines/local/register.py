"""`RegisterModelRunner`: a CreateModelPackage request added to the local model registry."""

from __future__ import annotations

from sagelab.engines.local.deploy import open_registry
from sagelab.engines.local.job import Job, StepFailed, StepResult
from sagelab.errors import RegistryError


class RegisterModelRunner:
    """Registers a new version (PendingManualApproval unless the request says otherwise)."""

    def run(self, job: Job) -> StepResult:
        registry = open_registry(job.settings)
        try:
            package = registry.register(job.arguments, generated_by=job.execution_arn)
        except RegistryError as exc:
            raise StepFailed(f"ValidationException: {exc}") from None
        finally:
            registry.close()
        job.log(f"registered {package.ref} ({package.status})")
        return StepResult(package.describe(), [package.arn])
