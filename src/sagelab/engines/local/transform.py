"""`TransformRunner`: a CreateTransformJob request run as SageMaker's batch transform does."""

from __future__ import annotations

import time
from typing import Any

from sagelab.engines.local.deploy import materialize
from sagelab.engines.local.hosting import hosting_for, model_container
from sagelab.engines.local.inputs import download_input, upload_output
from sagelab.engines.local.job import Job, StepFailed, StepResult, now_iso
from sagelab.errors import EndpointError, SagelabError

_INPUT = "/opt/ml/transform/input"
_OUTPUT = "/opt/ml/transform/output"


class TransformRunner:
    """The model's handlers over every input object; `<input>.out` files uploaded to S3OutputPath."""

    def run(self, job: Job) -> StepResult:
        from sagelab.serving.archive import extract_model

        request = job.arguments
        started = time.time()
        hosting = hosting_for(job)
        try:
            container = model_container(hosting, str(request.get("ModelName")))
            model, env = materialize(job.store, job.settings, container)
        except EndpointError as exc:
            raise StepFailed(str(exc)) from None
        finally:
            hosting.close()
        try:
            extract_model(model, job.root / "model")
        except SagelabError as exc:
            raise StepFailed(f"model data {container['ModelDataUrl']}: {exc}") from None
        source = request.get("TransformInput", {})
        s3 = source.get("DataSource", {}).get("S3DataSource", {})
        download_input(job, s3.get("S3Uri", ""), _INPUT, s3.get("S3DataType", "S3Prefix"), "transform input")
        output = request.get("TransformOutput", {})
        argv = [
            "python3", "-m", "sagelab.serving.batch", "--model", "/opt/ml/model", "--input", _INPUT, "--output", _OUTPUT,
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
        variables = {**env, **{str(k): str(v) for k, v in request.get("Environment", {}).items()}}
        code = job.run(argv, "/opt/ml", variables)
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
        return StepResult(properties, [target])
