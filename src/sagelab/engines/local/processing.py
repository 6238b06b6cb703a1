"""`ProcessingRunner`: a CreateProcessingJob request run as SageMaker's processing container would."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sagelab.containers import environments, frameworks, images
from sagelab.containers.contract import PROCESSING_CONFIG_DIR, api_string, job_path, resource_config, write_json
from sagelab.engines.local import spark
from sagelab.engines.local.inputs import discard_inputs, download_input, upload_output
from sagelab.engines.local.job import Job, StepFailed, StepResult, now_iso


class ProcessingRunner:
    """Inputs copied to their LocalPath, the container command run, outputs uploaded."""

    def run(self, job: Job) -> StepResult:
        request = job.arguments
        started = time.time()
        for item in request.get("ProcessingInputs", []):
            if "S3Input" not in item:
                raise StepFailed(f"input {item.get('InputName')}: only S3Input inputs run locally (DatasetDefinition does not)")
            source = item["S3Input"]
            if source.get("S3InputMode", "File") == "Pipe":
                job.log(f"input {item['InputName']}: Pipe mode runs as File mode locally (the files are at LocalPath)")
            download_input(job, source["S3Uri"], source["LocalPath"], source.get("S3DataType", "S3Prefix"), item["InputName"])
        outputs = request.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for item in outputs:
            if "S3Output" in item:
                _local(job, item["S3Output"]["LocalPath"], f"output {item['OutputName']}").mkdir(parents=True, exist_ok=True)
        config = job.root / PROCESSING_CONFIG_DIR
        resources = request.get("ProcessingResources", {}).get("ClusterConfig", {})
        write_json(config / "processingjobconfig.json", {**request, "ProcessingJobName": job.job_name})
        write_json(config / "resourceconfig.json", resource_config(resources.get("InstanceType", "local")))

        app = request.get("AppSpecification", {})
        entrypoint, arguments = app.get("ContainerEntrypoint"), app.get("ContainerArguments", [])
        if not entrypoint:
            raise StepFailed(
                f"image {app.get('ImageUri')} has no ContainerEntrypoint in the request, and sagelab does not "
                "know this image's own entrypoint; set ContainerEntrypoint (the SDK's ScriptProcessor does)"
            )
        image = images.identify(str(app.get("ImageUri") or ""))
        variables = {str(k): api_string(v) for k, v in request.get("Environment", {}).items()}
        # A ScriptProcessor on a framework image (the training image, typically) sees that image's helper packages.
        variables = frameworks.processing_environment(image, variables)
        timeout = request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        command = [api_string(a) for a in [*entrypoint, *arguments]]
        shown: tuple[Path, ...] = ()
        if image is not None and image.framework == "spark" and command[0] == "smspark-submit":
            command, shown = spark.spark_command(job, command[0], command[1:]), spark.store_folder(job)
            job.log(f"{image.label}: smspark-submit runs on local Spark {spark.pyspark_version()} (the image's is Spark {image.version or '?'}), "
                    "with the project's store as s3://")
        # An image sagelab emulates with its own code (Model Monitor, Clarify, Spark) runs on sagelab's packages, which that code needs.
        emulated = len(command) > 2 and command[:2] == ["python3", "-m"] and command[2].startswith("sagelab.")
        runtime = environments.prepare(job, image, environments.processing_code(request, job.root),
                                       mode="host" if emulated else job.settings.environment, builtin=emulated,
                                       job_folder=job.companion("python"))  # fmt: skip
        # Relative paths land in the job's own folder, never in the real filesystem root.
        code = job.run(command, "/opt/ml", variables, timeout, runtime.python, shown)
        if code != 0:
            raise StepFailed(f"AlgorithmError: the container command exited with code {code}. Last log lines:\n{job.log_tail()}",
                             properties=runtime.properties)

        published = []
        for item in outputs:
            if "S3Output" in item:
                target = item["S3Output"]["S3Uri"]
                upload_output(job, _local(job, item["S3Output"]["LocalPath"], f"output {item['OutputName']}"), target)
                published.append(target)
        ended = time.time()
        properties: dict[str, Any] = {
            **request,
            "ProcessingJobName": job.job_name,
            "ProcessingJobArn": job.arn("processing-job"),
            "ProcessingJobStatus": "Completed",
            "ExitMessage": "",
            "CreationTime": now_iso(started),
            "ProcessingStartTime": now_iso(started),
            "ProcessingEndTime": now_iso(ended),
            "LastModifiedTime": now_iso(ended),
            **runtime.properties,
        }
        discard_inputs(job)
        return StepResult(properties, published)


def _local(job: Job, container_path: str, what: str) -> Path:
    try:
        return job_path(job.root, container_path)
    except ValueError:
        raise StepFailed(f"{what}: LocalPath {container_path} must be under /opt/ml to run locally") from None
