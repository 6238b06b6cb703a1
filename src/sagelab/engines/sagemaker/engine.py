"""Pipelines on SageMaker: upload what a definition refers to, upsert it, start, watch, stop, retry, logs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.config import Settings
from sagelab.engines.sagemaker.aws_errors import is_not_found
from sagelab.engines.sagemaker.clients import AwsClients, clean, token
from sagelab.engines.sagemaker.logs import step_logs
from sagelab.engines.sagemaker.snapshot import ExecutionSnapshot, execution_snapshot
from sagelab.errors import AwsError, ConfigError, ExecutionError

if TYPE_CHECKING:
    from sagelab.engines.sagemaker.hosting import Endpoints
    from sagelab.engines.sagemaker.registry import ModelRegistry

Listener = Callable[[ExecutionSnapshot], None]
# Wraps one upload: given its URI and size, a context whose value (if not None) is fed the bytes sent.
TransferProgress = Callable[[str, int], AbstractContextManager[Callable[[int], None] | None]]
ParameterValue = str | int | float | bool
PIPELINE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_S3_URI = re.compile(r"^s3://([^/]+)/(.+)$")


class SageMakerEngine:
    """Runs a pipeline definition on SageMaker Pipelines, the same JSON the local engine runs.

    Example (needs AWS credentials)::

        loaded = load("examples/diabetes/pipeline.py:pipeline")
        engine = SageMakerEngine(load_settings(profile="aws"))
        arn = engine.submit(json.dumps(loaded.definition.raw), loaded.name, {"MseThreshold": "2500"}, loaded.artifacts)
        status = engine.watch(arn, print)
    """

    def __init__(self, settings: Settings, session: Any | None = None, *, endpoint_url: str | None = None,
                 clients: AwsClients | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.clients = clients or AwsClients(settings, session, endpoint_url=endpoint_url)

    @property
    def sagemaker(self) -> Any:
        return self.clients.client("sagemaker")

    @property
    def s3(self) -> Any:
        return self.clients.client("s3")

    @property
    def logs_client(self) -> Any:
        return self.clients.client("logs")

    @cached_property
    def registry(self) -> ModelRegistry:
        """The model registry on SageMaker, sharing this engine's clients."""
        from sagelab.engines.sagemaker.registry import ModelRegistry

        return ModelRegistry(self.settings, clients=self.clients)

    @cached_property
    def endpoints(self) -> Endpoints:
        """SageMaker endpoints, sharing this engine's clients."""
        from sagelab.engines.sagemaker.hosting import Endpoints

        return Endpoints(self.settings, clients=self.clients, registry=self.registry)

    def submit(self, definition_json: str, name: str, parameters: Mapping[str, ParameterValue] | None = None,
               artifacts: Mapping[str, Path | bytes] | None = None, *, description: str | None = None,
               display_name: str | None = None, progress: TransferProgress | None = None) -> str:  # fmt: skip
        """Check the parameters against the definition, upload its artifacts, upsert it and start it.

        Returns the execution ARN; `watch` follows it to the end.
        Raises ParameterError for an unknown or ill-typed parameter, AwsError when AWS refuses.
        """
        from sagelab.definition import parse

        parse(definition_json, source=f"pipeline {name}").typed_parameters(dict(parameters or {}))
        self.upload(artifacts or {}, progress)
        self.upsert(definition_json, name, description)
        return self.start(name, parameters, display_name)

    def upload(self, artifacts: Mapping[str, Path | bytes], progress: TransferProgress | None = None) -> list[str]:
        """Upload the code and data a definition refers to (S3 URI → local file or bytes).

        Their keys are named by content, so a key that exists (HeadObject) is skipped.
        Returns the URIs uploaded; each upload runs inside `progress(uri, size)`, whose
        callback (if any) is fed the bytes sent.
        """
        uploaded: list[str] = []
        for uri, source in artifacts.items():
            bucket, key = _split(uri)
            try:
                self.clients.call("s3", "HeadObject", uri, Bucket=bucket, Key=key)
                continue
            except AwsError as exc:
                if not is_not_found(exc):
                    raise
            if not isinstance(source, bytes) and not Path(source).is_file():
                raise ExecutionError(f"{source} does not exist; the definition refers to it as {uri}")
            size = len(source) if isinstance(source, bytes) else Path(source).stat().st_size
            with progress(uri, size) if progress is not None else nullcontext() as sent:
                if isinstance(source, bytes):
                    self.clients.call("s3", "PutObject", uri, Bucket=bucket, Key=key, Body=source)
                else:
                    self.clients.upload_file(Path(source), bucket, key, sent)
            uploaded.append(uri)
        return uploaded

    def upsert(self, definition_json: str, name: str, description: str | None = None) -> str:
        """Create the pipeline, or update it when it exists; returns the pipeline ARN.

        The PipelineDefinition sent is `definition_json` unchanged. Tags from settings go on create.
        """
        if not PIPELINE_NAME.match(name):
            suggestion = re.sub(r"[^a-zA-Z0-9]+", "-", name).strip("-") or "my-pipeline"
            raise ExecutionError(
                f"pipeline name {name!r} is not valid on SageMaker: letters, digits and hyphens, starting with a "
                f"letter or digit, at most 256 characters; e.g. {suggestion!r}"
            )
        request: dict[str, Any] = {"PipelineName": name, "PipelineDefinition": definition_json, "RoleArn": self._role()}
        if description is not None:
            request["PipelineDescription"] = description
        tags = [{"Key": key, "Value": value} for key, value in self.settings.tags]
        try:
            created = self.clients.call("sagemaker", "CreatePipeline", f"pipeline {name}", **request,
                                        ClientRequestToken=token(), **({"Tags": tags} if tags else {}))  # fmt: skip
            return str(created["PipelineArn"])
        except AwsError as exc:
            # SageMaker answers a ValidationException ("... already exists") for an existing pipeline.
            if not (exc.code == "ResourceInUse" or (exc.code == "ValidationException" and "already exists" in (exc.detail or ""))):
                raise
        updated = self.clients.call("sagemaker", "UpdatePipeline", f"pipeline {name}", **request)
        return str(updated["PipelineArn"])

    def start(self, name: str, parameters: Mapping[str, ParameterValue] | None = None, display_name: str | None = None) -> str:
        """Start an execution (StartPipelineExecution); returns its ARN. Values are sent as strings."""
        request: dict[str, Any] = {"PipelineName": name, "ClientRequestToken": token()}
        if parameters:
            request["PipelineParameters"] = [{"Name": key, "Value": _text(value)} for key, value in parameters.items()]
        if display_name:
            request["PipelineExecutionDisplayName"] = display_name
        return str(self.clients.call("sagemaker", "StartPipelineExecution", f"pipeline {name}", **request)["PipelineExecutionArn"])

    def executions(self, name: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The newest executions (PipelineExecutionSummary dicts, plus PipelineName) of one pipeline or all."""
        if limit < 1:
            return []
        names = [name] if name else self.pipeline_names()
        found: list[dict[str, Any]] = []
        for pipeline in names:
            pages = self.clients.pages("sagemaker", "ListPipelineExecutions", f"pipeline {pipeline}", PipelineName=pipeline,
                                       SortBy="CreationTime", SortOrder="Descending",
                                       PaginationConfig={"MaxItems": limit, "PageSize": min(limit, 100)})  # fmt: skip
            for page in pages:
                found.extend({**summary, "PipelineName": pipeline} for summary in page.get("PipelineExecutionSummaries", []))
        found.sort(key=lambda summary: _timestamp(summary.get("StartTime")), reverse=True)
        return found[:limit]

    def pipeline_names(self) -> list[str]:
        """The names of the account's pipelines in the profile's region."""
        return [p["PipelineName"] for page in self.clients.pages("sagemaker", "ListPipelines", "pipelines") for p in page.get("PipelineSummaries", [])]

    def find_execution(self, reference: str, pipeline: str | None = None) -> str:
        """The ARN of `reference`: an ARN, an execution id, or "latest" (of `pipeline`, or of all)."""
        if reference.startswith("arn:"):
            return reference
        recent = self.executions(pipeline, limit=100)
        if reference == "latest" and recent:
            return str(recent[0]["PipelineExecutionArn"])
        for summary in recent:
            if summary["PipelineExecutionArn"].rsplit("/", 1)[-1] == reference:
                return str(summary["PipelineExecutionArn"])
        where = f"pipeline {pipeline}" if pipeline else "any pipeline"
        raise ExecutionError(f"no execution {reference!r} among the 100 newest of {where}; pass the execution ARN")

    def describe(self, execution_arn: str) -> dict[str, Any]:
        """DescribePipelineExecution."""
        return clean(self.clients.call("sagemaker", "DescribePipelineExecution", execution_arn, PipelineExecutionArn=execution_arn))

    def steps(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's steps in start order: StepName, StepStatus, StartTime, EndTime, FailureReason,
        Metadata (the job, e.g. Metadata.ProcessingJob.Arn) and whatever else SageMaker reports."""
        steps: list[dict[str, Any]] = []
        pages = self.clients.pages("sagemaker", "ListPipelineExecutionSteps", execution_arn,
                                   PipelineExecutionArn=execution_arn, SortOrder="Ascending")  # fmt: skip
        for page in pages:
            for step in page.get("PipelineExecutionSteps", []):
                steps.append({"StartTime": None, "EndTime": None, "FailureReason": None, "Metadata": {}, **step})
        return steps

    def snapshot(self, execution_arn: str) -> ExecutionSnapshot:
        """The execution and its steps now."""
        return execution_snapshot(self.describe(execution_arn), self.steps(execution_arn))

    def watch(self, execution_arn: str, listener: Listener, poll: float = 5.0) -> str:
        """Poll the execution until it ends, calling `listener(snapshot)` whenever something changed.

        Returns the final status (Succeeded, Failed, Stopped or CompletedWithFailures).
        KeyboardInterrupt reaches the caller, which may then `stop` the execution.
        """
        last: ExecutionSnapshot | None = None
        while True:
            current = self.snapshot(execution_arn)
            if current != last:
                listener(current)
                last = current
            if current.finished:
                return current.status
            time.sleep(poll)

    def stop(self, execution_arn: str) -> None:
        """StopPipelineExecution: running steps are stopped, the execution ends Stopped."""
        self.clients.call("sagemaker", "StopPipelineExecution", execution_arn, PipelineExecutionArn=execution_arn, ClientRequestToken=token())

    def retry(self, execution_arn: str) -> str:
        """RetryPipelineExecution: run the failed or stopped steps again, in the same execution; returns its ARN."""
        response = self.clients.call("sagemaker", "RetryPipelineExecution", execution_arn,
                                     PipelineExecutionArn=execution_arn, ClientRequestToken=token())  # fmt: skip
        return str(response["PipelineExecutionArn"])

    def logs(self, execution_arn: str, step: str, *, page_size: int | None = None) -> Iterator[str]:
        """The CloudWatch log lines of the job `step` ran in this execution."""
        steps = self.steps(execution_arn)
        chosen = [s for s in steps if s["StepName"] == step] or [s for s in steps if s["StepName"].lower() == step.lower()]
        if len(chosen) != 1:
            from difflib import get_close_matches

            names = [s["StepName"] for s in steps]
            close = get_close_matches(step, names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ExecutionError(f"execution {execution_arn.rsplit('/', 1)[-1]} has no step {step!r}{hint}; "
                                 f"its steps: {', '.join(names) or 'none has started yet'}")  # fmt: skip
        return step_logs(self.clients, chosen[-1], page_size)

    def _role(self) -> str:
        if self.settings.role is None and self.settings.account == "000000000000":
            raise ConfigError(
                f"profile {self.settings.profile!r} has no role: set role = \"arn:aws:iam::<account>:role/<name>\" "
                f"(the role SageMaker runs the pipeline as) in [tool.sagelab.profiles.{self.settings.profile}]"
            )
        return self.settings.role_arn


def _split(uri: str) -> tuple[str, str]:
    match = _S3_URI.match(uri)
    if match is None:
        raise ExecutionError(f"artifact {uri!r} is not an s3://bucket/key URI")
    return match.group(1), match.group(2)


def _text(value: ParameterValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _timestamp(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else 0.0
