"""`TrainingRunner`: a CreateTrainingJob request run as its container would run it.

A job that names a script (sagemaker_program, or a ContainerEntrypoint) runs it in script mode,
as the framework containers do. A job that names none runs what its image runs by default:
`sagelab.containers.images` knows which prebuilt images do what (the built-in XGBoost
algorithm, for one, is emulated by `sagelab.containers.xgboost`).
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shlex
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

from sagelab.containers import contract, drivers, environments, frameworks, images
from sagelab.engines.local import pipes
from sagelab.engines.local.inputs import discard_inputs, download_input, manifest_objects
from sagelab.engines.local.job import Job, StepFailed, StepResult, now_iso
from sagelab.errors import StoreError
from sagelab.store.base import parse_s3_uri, relative_key
from sagelab.tarballs import UNSAFE, extract_all

_unknown_images: set[str] = set()  # images already reported as unknown, so each is named once per process
_unknown_lock = threading.Lock()


class TrainingRunner:
    """Channels and code laid out under /opt/ml, the entry point run, the model packed and uploaded."""

    def run(self, job: Job) -> StepResult:
        request = job.arguments
        started = time.time()
        # CreateTrainingJob takes string values; the pipeline service stringifies resolved parameters.
        raw = {key: contract.api_string(value) for key, value in request.get("HyperParameters", {}).items()}
        hyperparameters = {key: contract.decode_hyperparameter(value) for key, value in raw.items()}
        algorithm = request.get("AlgorithmSpecification", {})
        program = hyperparameters.get(contract.PROGRAM)
        image = str(algorithm.get("TrainingImage") or algorithm.get("AlgorithmName") or "")
        behaviour = images.identify(image)
        builtin = None if contract.runs_script(hyperparameters, algorithm) else _builtin_command(image, behaviour)
        if behaviour is None:
            _report_unknown(job, image)
        elif builtin and behaviour.metric_definitions:
            # SageMaker attaches a built-in algorithm's own metric definitions to the job (the request's come after).
            given = algorithm.get("MetricDefinitions", [])
            named = {definition.get("Name") for definition in given}
            own = [{"Name": n, "Regex": r} for n, r in behaviour.metric_definitions if n not in named]
            algorithm = {**algorithm, "MetricDefinitions": [*own, *given]}
        channels = request.get("InputDataConfig", [])
        resources = contract.resource_config(
            request.get("ResourceConfig", {}).get("InstanceType", "local"), request.get("ResourceConfig", {}).get("InstanceCount", 1)
        )
        default_mode = algorithm.get("TrainingInputMode", "File")
        pipes = [pipe for channel in channels if (pipe := _stage_channel(job, channel, default_mode, request)) is not None]
        self._install_code(job, hyperparameters.get(contract.SUBMIT_DIRECTORY))

        data_config = contract.input_data_config(channels, default_mode)
        config = job.root / contract.INPUT_CONFIG_DIR
        contract.write_json(config / "hyperparameters.json", raw)
        contract.write_json(config / "inputdataconfig.json", data_config)
        contract.write_json(config / "resourceconfig.json", resources)
        for folder in (contract.MODEL_DIR, contract.OUTPUT_DATA_DIR, contract.OUTPUT_INTERMEDIATE_DIR):
            (job.root / folder).mkdir(parents=True, exist_ok=True)
        env, args = contract.training_environment(
            job_name=job.job_name,
            hyperparameters=frameworks.hyperparameters(behaviour, hyperparameters, job.job_name),
            input_data_config=data_config,
            resources=resources,
            num_cpus=os.cpu_count() or 1,
            region=job.settings.region,
            framework_module=frameworks.training_module(behaviour),
        )
        env.update({str(k): contract.api_string(v) for k, v in request.get("Environment", {}).items()})
        env = frameworks.training_environment(behaviour, env)  # the image's variables and helper packages
        if builtin:  # the image's own program: a built-in algorithm
            argv = list(builtin)
        elif algorithm.get("ContainerEntrypoint"):  # the v3 SDK's ModelTrainer brings its own driver script
            argv = [contract.api_string(a) for a in [*algorithm["ContainerEntrypoint"], *algorithm.get("ContainerArguments", [])]]
        elif str(program).endswith(".py"):
            argv = ["python3", str(program), *args]
        else:  # a command (a shell script): the training toolkit makes it executable and runs it with sh
            script = job.root / contract.CODE_DIR / str(program)
            if script.is_file():
                script.chmod(script.stat().st_mode | 0o755)
            argv = ["/bin/sh", "-c", " ".join(shlex.quote(part) for part in [f"./{program}", *args])]
        timeout = request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        if drivers.is_function_step(algorithm) and (note := drivers.sdk_note(job.settings.environment)):
            job.log(note)
        # The SDK's drivers (@step, v3 ModelTrainer) name their requirements; the toolkit reads /opt/ml/code.
        sdk_requirements = drivers.requirements_folder(algorithm, job.root, job.companion("requirements"))
        code_dir = sdk_requirements or job.root / contract.CODE_DIR
        runtime = environments.prepare(job, behaviour, code_dir, mode=job.settings.environment, builtin=bool(builtin),
                                       job_folder=job.companion("python"))
        for pipe in pipes:
            pipe.start()
        try:
            code = job.run(argv, contract.container_path(contract.CODE_DIR), env, timeout, runtime.python)
        finally:
            for pipe in pipes:
                pipe.stop()
        if broken := [pipe.error for pipe in pipes if pipe.error]:
            raise StepFailed(f"ClientError: cannot stream {'; '.join(broken)}", properties=runtime.properties)
        if code != 0:
            failure = job.root / contract.FAILURE_FILE
            reason = failure.read_text(errors="replace").strip() if failure.is_file() else ""
            raise StepFailed(
                f"AlgorithmError: {reason or f'ExecuteUserScriptError: {program or argv[0]} exited with code {code}'}. "
                f"Last log lines:\n{job.log_tail()}",
                properties=runtime.properties,
            )

        output_path = request.get("OutputDataConfig", {}).get("S3OutputPath", f"s3://{job.settings.default_bucket}/")
        base = f"{output_path.rstrip('/')}/{job.job_name}/output"
        model_uri = f"{base}/model.tar.gz"
        published = [self._pack(job, job.root / contract.MODEL_DIR, model_uri)]
        if any((job.root / contract.OUTPUT_DATA_DIR).iterdir()):
            published.append(self._pack(job, job.root / contract.OUTPUT_DATA_DIR, f"{base}/output.tar.gz"))
        ended = time.time()
        properties: dict[str, Any] = {
            **request,
            "AlgorithmSpecification": algorithm,
            "TrainingJobName": job.job_name,
            "TrainingJobArn": job.arn("training-job"),
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": model_uri},
            "HyperParameters": raw,
            "FinalMetricDataList": final_metrics(job.log_path, algorithm, ended),
            "CreationTime": now_iso(started),
            "TrainingStartTime": now_iso(started),
            "TrainingEndTime": now_iso(ended),
            "LastModifiedTime": now_iso(ended),
            "TrainingTimeInSeconds": int(ended - started),
            "BillableTimeInSeconds": int(ended - started),
            **runtime.properties,
        }
        discard_inputs(job)
        return StepResult(properties, published)

    def _install_code(self, job: Job, submit_directory: Any) -> None:
        """Put the source directory at /opt/ml/code: a sourcedir.tar.gz or a prefix of files."""
        code = job.root / contract.CODE_DIR
        code.mkdir(parents=True, exist_ok=True)
        if not submit_directory:
            return
        uri = str(submit_directory)
        try:
            if uri.endswith((".tar.gz", ".tgz")):
                with tarfile.open(fileobj=io.BytesIO(job.store.get_bytes(uri)), mode="r:gz") as archive:
                    extract_all(archive, code)
            elif not job.store.download_prefix(uri, code):
                raise StepFailed(f"sagemaker_submit_directory {uri} holds no files")
        except StoreError as exc:
            raise StepFailed(f"sagemaker_submit_directory: {exc}") from None
        except UNSAFE as exc:
            raise StepFailed(f"sagemaker_submit_directory {uri} was refused: {exc}") from None
        except tarfile.TarError as exc:
            raise StepFailed(f"sagemaker_submit_directory {uri} is not a readable tar.gz: {exc}") from None

    def _pack(self, job: Job, folder: Path, uri: str) -> str:
        """Pack `folder` as a tar.gz with its files at the top, as SageMaker does, and upload it.

        Entries are sorted and their times zeroed, so the same model gives the same bytes
        and steps downstream of an unchanged training can be reused from the cache.
        """
        packed = job.root.with_name(f"{job.root.name}.{folder.name}.tar.gz")  # streamed: memory stays flat for any model size
        try:
            with open(packed, "wb") as file, gzip.GzipFile(filename="", fileobj=file, mode="wb", mtime=0) as zipped:
                with tarfile.open(fileobj=zipped, mode="w") as archive:
                    for path in sorted(folder.rglob("*")):
                        info = archive.gettarinfo(path, arcname=path.relative_to(folder).as_posix())
                        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                        if info.isfile():
                            with open(path, "rb") as data:
                                archive.addfile(info, data)
                        else:
                            archive.addfile(info)
            job.store.publish_file(uri, packed)
        finally:
            packed.unlink(missing_ok=True)
        job.log(f"output: {uri}")
        return uri


def _stage_channel(job: Job, channel: dict[str, Any], default_mode: str, request: dict[str, Any]) -> pipes.ChannelPipe | None:
    """Stage a channel at /opt/ml/input/data/<channel>; a Pipe-mode channel also gets the FIFOs it is streamed through."""
    name = channel["ChannelName"]
    source = channel.get("DataSource", {}).get("S3DataSource")
    if source is None:
        raise StepFailed(f"channel {name}: only S3DataSource channels run locally")
    uri, data_type = source["S3Uri"], source.get("S3DataType", "S3Prefix")
    mode = channel.get("InputMode") or default_mode
    count = request.get("ResourceConfig", {}).get("InstanceCount", 1)
    if source.get("S3DataDistributionType") == "ShardedByS3Key" and count > 1:
        job.log(f"channel {name}: ShardedByS3Key over {count} instances; one instance (algo-1) runs locally, so it gets every object")
    wrap = channel.get("RecordWrapperType") == "RecordIO"
    data = job.root / contract.INPUT_DATA_DIR
    fifos = contract.container_path(f"{contract.INPUT_DATA_DIR}/{name}") + "_0, _1, ..."
    if data_type == "AugmentedManifestFile":
        if mode != "Pipe":
            raise StepFailed(f"ClientError: channel {name}: an AugmentedManifestFile channel needs InputMode Pipe (SageMaker streams it only)")
        job.log(f"channel {name}: the attributes {source.get('AttributeNames', [])} of each line of {uri}, streamed through {fifos}")
        return pipes.ChannelPipe(data, name, pipes.augmented_records(job.store, uri, source.get("AttributeNames", []), wrap, name))
    download_input(job, uri, contract.container_path(f"{contract.INPUT_DATA_DIR}/{name}"), data_type, name)
    if mode != "Pipe":
        return None
    if data_type == "ManifestFile":
        uris = [listed for listed, _ in manifest_objects(job, uri, name)]
    else:
        key = parse_s3_uri(uri).key
        uris = sorted(info.uri for info in job.store.list(uri) if relative_key(key, info.key) is not None)
    job.log(f"channel {name}: Pipe mode, {len(uris)} object(s){' as RecordIO records' if wrap else ''} streamed through {fifos} (also staged as files)")
    return pipes.ChannelPipe(data, name, pipes.object_records(job.store, uris, wrap))


def _builtin_command(image: str, behaviour: images.ContainerBehaviour | None) -> tuple[str, ...]:
    """What a job that names no script runs: its image's train command, or a StepFailed saying why there is none."""
    if behaviour is None:
        raise StepFailed(
            f"image {image or '(none)'} is run without sagemaker_program, as a built-in algorithm, and sagelab does "
            f"not know what this image does. Built-in algorithms that run locally: {images.supported_algorithms()}. "
            "Framework images (scikit-learn, PyTorch, TensorFlow, Hugging Face, XGBoost) run a script: give the "
            "estimator an entry_point"
        )
    if behaviour.train_command is None:
        raise StepFailed(f"image {image} is run without sagemaker_program, but {behaviour.label} is {behaviour.note}. "
                         f"Built-in algorithms that run locally: {images.supported_algorithms()}")  # fmt: skip
    return behaviour.train_command


def _report_unknown(job: Job, image: str) -> None:
    """Say once per image that sagelab runs it as a generic script-mode container."""
    with _unknown_lock:
        if image in _unknown_images:
            return
        _unknown_images.add(image)
    job.log(f"image {image or '(none)'} is not one of SageMaker's images that sagelab knows; "
            "it is run as a script-mode training container")  # fmt: skip


def final_metrics(log_path: Path, algorithm: dict[str, Any], timestamp: float) -> list[dict[str, Any]]:
    """FinalMetricDataList: the last value each MetricDefinitions regex matched in the log.

    The regexes read the log as SageMaker's do, in CloudWatch, where a control character shows
    as `#` and its octal code: a tab is `#011` (so the built-in XGBoost regexes match).
    """
    definitions = algorithm.get("MetricDefinitions", [])
    if not definitions:
        return []
    patterns = {}
    for definition in definitions:
        try:
            patterns[definition["Name"]] = re.compile(definition["Regex"])
        except re.error:
            continue
    last: dict[str, float] = {}
    if log_path.is_file():
        with open(log_path, encoding="utf-8", errors="replace") as log:  # a line at a time, as CloudWatch holds log events
            while line := log.readline(_LONGEST_EVENT):  # a longer line is cut in pieces, as CloudWatch cuts events
                line = _CONTROL.sub(lambda match: f"#{ord(match[0]):03o}", line.rstrip("\n"))
                for name, pattern in patterns.items():
                    values = [m[0] if isinstance(m, tuple) else m for m in pattern.findall(line)]
                    numbers = [float(v) for v in values if contract.is_number(v)]
                    if numbers:
                        last[name] = numbers[-1]
    return [{"MetricName": name, "Value": last[name], "Timestamp": now_iso(timestamp)} for name in patterns if name in last]


_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # every control character but the newline
_LONGEST_EVENT = 256 * 1024  # characters: CloudWatch Logs' event size limit

