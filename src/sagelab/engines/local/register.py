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
            package = registry.registered_by(job.arguments, job.execution_arn)
            if package is not None:  # the execution was interrupted after registering: retrying makes no second version
                job.log(f"{package.ref} was registered by this execution before it was interrupted; reusing it")
            else:
                package = registry.register(job.arguments, generated_by=job.execution_arn)
                job.log(f"registered {package.ref} ({package.status})")
        except RegistryError as exc:
            raise StepFailed(f"ValidationException: {exc}") from None
        finally:
            registry.close()
        return StepResult(package.describe(), [package.arn])
