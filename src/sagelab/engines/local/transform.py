"""`TransformRunner`: a CreateTransformJob request run as SageMaker's batch transform does."""

from __future__ import annotations

import time
from typing import Any

from sagelab.containers.contract import api_string
from sagelab.engines.local.deploy import LocalContainer, materialize_all, with_environments
from sagelab.engines.local.hosting import hosting_for, model_containers
from sagelab.engines.local.inputs import discard_inputs, download_input, upload_output
from sagelab.engines.local.job import Job, StepFailed, StepResult, now_iso
from sagelab.errors import EndpointError, SagelabError
from sagelab.serving.pipeline_model import ContainerModel, PipelineModel
from sagelab.serving.protocol import PYTHON_ENV

_INPUT = "/opt/ml/transform/input"
_OUTPUT = "/opt/ml/transform/output"


class TransformRunner:
    """The model's handlers over every input object; `<input>.out` files uploaded to S3OutputPath."""

    def run(self, job: Job) -> StepResult:
        request = job.arguments
        started = time.time()
        hosting = hosting_for(job)
        try:
            containers, mode = model_containers(job, hosting, str(request.get("ModelName")))
            local = materialize_all(job.store, job.settings, containers, job)
        except EndpointError as exc:
            raise StepFailed(str(exc)) from None
        finally:
            hosting.close()
        if mode != "Serial":
            raise StepFailed(f"ValidationException: model {request.get('ModelName')} runs its containers in {mode} mode; "
                             "a transform job sends each record through every container (InferenceExecutionConfig Mode Serial)")  # fmt: skip
        try:
            model, env = _place(job, local)
        except EndpointError as exc:
            raise StepFailed(f"ClientError: {exc}") from None
        python = env.get(PYTHON_ENV)  # one container: the batch command loads its handler, so it runs on that environment
        source = request.get("TransformInput", {})
        s3 = source.get("DataSource", {}).get("S3DataSource", {})
        download_input(job, s3.get("S3Uri", ""), _INPUT, s3.get("S3DataType", "S3Prefix"), "transform input")
        output = request.get("TransformOutput", {})
        argv = [
            "python3", "-m", "sagelab.serving.batch", "--model", model, "--input", _INPUT, "--output", _OUTPUT,
            "--content-type", str(source.get("ContentType", "application/octet-stream")),
            "--split-type", str(source.get("SplitType", "None")),
            "--batch-strategy", str(request.get("BatchStrategy", "MultiRecord")),
            "--assemble-with", str(output.get("AssembleWith", "None")),
            "--max-payload-mb", str(request.get("MaxPayloadInMB", 6)),
        ]  # fmt: skip
        if output.get("Accept"):
            argv += ["--accept", str(output["Accept"])]
        processing = request.get("DataProcessing", {})
        for key, flag in (("InputFilter", "--input-filter"), ("OutputFilter", "--output-filter"), ("JoinSource", "--join-source")):
            if processing.get(key):
                argv += [flag, str(processing[key])]
        variables = {**env, **{str(k): api_string(v) for k, v in request.get("Environment", {}).items()}}
        code = job.run(argv, "/opt/ml", variables, interpreter=python)
        if code != 0:
            raise StepFailed(f"ClientError: the transform exited with code {code}. Last log lines:\n{job.log_tail()}")
        target = str(output.get("S3OutputPath", ""))
        upload_output(job, job.root / "transform" / "output", target)
        ended = time.time()
        properties: dict[str, Any] = {
            **request,
            "TransformJobName": job.job_name,
            "TransformJobArn": job.arn("transform-job"),
            "TransformJobStatus": "Completed",
            "CreationTime": now_iso(started),
            "TransformStartTime": now_iso(started),
            "TransformEndTime": now_iso(ended),
        }
        discard_inputs(job)
        return StepResult(properties, [target])


def _place(job: Job, local: list[LocalContainer]) -> tuple[str, dict[str, str]]:
    """Extract the model data as SageMaker does, and say what the batch command serves.

    One container: its model at /opt/ml/model, its environment the job's. Several: each model in
    `models/<hostname>` of the job's folder, described with its own environment in a pipeline
    model file that the batch command serves through every container. A container whose code
    holds a requirements.txt runs on an environment with it installed (SAGELAB_SERVING_PYTHON).

    Raises:
        EndpointError: pip could not install a container's requirements.txt.
    """
    from sagelab.serving.archive import extract_model

    folders = []
    for container in local:
        target = job.root / "model" if len(local) == 1 else job.root / "models" / container.hostname
        try:
            if container.model.is_dir():
                target.mkdir(parents=True, exist_ok=True)  # no model data: an empty /opt/ml/model
            else:
                extract_model(container.model, target)
        except SagelabError as exc:
            raise StepFailed(f"model data {container.model_data_url} of {container.hostname}: {exc}") from None
        folders.append(target)
    local = with_environments(local, job, folders, deploy=False, mode=job.settings.environment)
    if len(local) == 1:
        return "/opt/ml/model", local[0].environment
    pipeline = PipelineModel(tuple(ContainerModel(c.hostname, str(folder), c.environment, c.image) for c, folder in zip(local, folders)))
    return str(pipeline.save(job.root / "models" / "pipeline-model.json")), {}
