"""CreatePipeline, UpdatePipeline, DescribePipeline, DeletePipeline and ListPipelines over the project's pipelines.

The pipelines the API knows are those created through it (`.sagelab/api.db`, every definition version
kept) and those `sagelab run` ran (from the execution records): a local run stands for the upsert
`sagelab run --profile aws` makes on SageMaker, so a pipeline run from the CLI is described and listed
here, its definition the one it last ran with. Where sagelab differs from SageMaker:
- a definition is checked as `sagelab validate` checks it (structure, references, each step's Arguments
  against its Create* request); steps the local engine cannot run (Lambda, Callback, ...) are accepted
  here and refused by StartPipelineExecution;
- PipelineDefinitionS3Location reads the object from the project's store; its VersionId is ignored;
- CreatedBy/LastModifiedBy are empty and PipelineStatus is always Active; Tags are kept but no
  tagging operation is served yet; a deleted pipeline's running executions run on to their end.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sagelab.awsapi.errors import ResourceNotFound, ValidationException
from sagelab.awsapi.operations import Context, created_between, newest_first, operation, page
from sagelab.awsapi.state import PipelineRow
from sagelab.errors import DefinitionError, ExecutionError, SagelabError


@dataclass(frozen=True)
class Pipeline:
    """A pipeline as the API describes it, made through the API or by `sagelab run`."""

    name: str
    definition: str
    role_arn: str
    created: float
    modified: float
    version: int
    last_run: float | None
    row: PipelineRow | None  # None: known from `sagelab run`'s records only

    @property
    def display_name(self) -> str:
        return self.row.display_name if self.row and self.row.display_name else self.name


def arn(context: Context, name: str) -> str:
    return context.arn(f"pipeline/{name.lower()}")


def recorded(context: Context) -> list[Any]:
    """Every pipeline execution record of the project, newest first (none when nothing has run yet); the one-step
    executions that ran a job (CreateTrainingJob, ...) belong to no pipeline."""
    from sagelab.engines.local import job_of

    try:
        records = context.backend.records()
    except ExecutionError:
        return []
    try:
        return [record for record in records.executions(limit=1 << 30) if job_of(record.pipeline) is None]
    finally:
        records.close()


def visible(context: Context, records: list[Any]) -> list[Any]:
    """The records that belong to a pipeline as it is now: none recorded before the pipeline was last deleted."""
    deleted = context.state.deletions()
    return [r for r in records if r.started > deleted.get(r.pipeline, 0.0)]


def pipelines(context: Context, records: list[Any] | None = None) -> dict[str, Pipeline]:
    """Every pipeline the project has, by name."""
    records = visible(context, recorded(context) if records is None else records)
    started_here = context.state.executions()
    runs: dict[str, list[Any]] = {}
    for record in records:
        runs.setdefault(record.pipeline, []).append(record)
    found = {}
    for row in context.state.pipelines():
        mine = runs.get(row.name, [])
        definition, modified = row.definition, row.modified
        newest = mine[0] if mine else None
        if newest and newest.id not in started_here and newest.started > row.modified and newest.definition != json.loads(row.definition):
            definition, modified = json.dumps(newest.definition), newest.started  # `sagelab run` ran another definition since
        found[row.name] = Pipeline(row.name, definition, row.role_arn, row.created, modified, row.version, newest.started if newest else None, row)
    for name, mine in runs.items():
        if name not in found:
            found[name] = Pipeline(name, json.dumps(mine[0].definition), context.settings.role_arn, mine[-1].started, mine[0].started, 1,
                                   mine[0].started, None)  # fmt: skip
    return found


def find(context: Context, name_or_arn: str, records: list[Any] | None = None) -> Pipeline:
    """The pipeline a PipelineName (or its ARN) names.

    Raises:
        ResourceNotFound: there is none.
    """
    known = pipelines(context, records)
    name = name_or_arn.split(":pipeline/", 1)[1].split("/", 1)[0] if name_or_arn.startswith("arn:") else name_or_arn
    found = known.get(name) or next((p for p in known.values() if p.name.lower() == name.lower() and name_or_arn.startswith("arn:")), None)
    if found is None:
        raise ResourceNotFound(f"Pipeline '{arn(context, name) if not name_or_arn.startswith('arn:') else name_or_arn}' does not exist.")
    return found


def _definition(context: Context, request: dict[str, Any], required: bool) -> str | None:
    """The definition a request gives, inline or in the store, checked as `sagelab validate` checks it."""
    inline, location = request.get("PipelineDefinition"), request.get("PipelineDefinitionS3Location")
    if inline is not None and location is not None:
        raise ValidationException("Both PipelineDefinition and PipelineDefinitionS3Location are present; give one of them")
    if inline is None and location is None:
        if required:
            raise ValidationException("Either PipelineDefinition or PipelineDefinitionS3Location should be provided")
        return None
    text = inline
    if location is not None:
        uri = f"s3://{location['Bucket']}/{location['ObjectKey']}"
        try:
            text = context.backend.get_bytes(uri).decode("utf-8")
        except (SagelabError, UnicodeDecodeError) as exc:
            raise ValidationException(f"PipelineDefinitionS3Location {uri} cannot be read from the local store: {exc}") from None
    from sagelab.definition import find_problems, parse

    source = f"the definition of pipeline {request['PipelineName']}"
    problems = find_problems(parse(str(text), source=source))
    if problems:
        raise DefinitionError(problems, source)
    return str(text)


@operation("CreatePipeline")
def create_pipeline(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Create a pipeline; a retried request (the same ClientRequestToken) gets the same answer, another of that name a ValidationException."""
    name = request["PipelineName"]
    definition = _definition(context, request, required=True)
    assert definition is not None
    existing = pipelines(context).get(name)
    if existing is not None and existing.row is not None and existing.row.client_token == request["ClientRequestToken"]:
        return {"PipelineArn": arn(context, name)}
    now = time.time()
    row = PipelineRow(name=name, definition=definition, role_arn=request["RoleArn"], created=now, modified=now,
                      display_name=request.get("PipelineDisplayName"), description=request.get("PipelineDescription"),
                      parallelism=request.get("ParallelismConfiguration", {}).get("MaxParallelExecutionSteps"),
                      tags=list(request.get("Tags", [])), client_token=request["ClientRequestToken"])  # fmt: skip
    if existing is not None or not context.state.create_pipeline(row):
        raise ValidationException(f"Pipeline names must be unique within an AWS account and region. Pipeline with name ({name}) already exists.")
    return {"PipelineArn": arn(context, name)}


@operation("UpdatePipeline")
def update_pipeline(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Change a pipeline's definition (a new PipelineVersionId), display name, description, role or parallelism."""
    found = find(context, request["PipelineName"])
    definition = _definition(context, {**request, "PipelineName": found.name}, required=False)
    row = found.row or PipelineRow(name=found.name, definition=found.definition, role_arn=found.role_arn, created=found.created, modified=found.modified)
    changed = definition is not None and definition != row.definition
    parallelism = request.get("ParallelismConfiguration", {}).get("MaxParallelExecutionSteps", row.parallelism)
    updated = PipelineRow(name=row.name, definition=definition or found.definition, role_arn=request.get("RoleArn", row.role_arn),
                          created=row.created, modified=time.time(), version=row.version + 1 if changed else row.version,
                          display_name=request.get("PipelineDisplayName", row.display_name),
                          description=request.get("PipelineDescription", row.description), parallelism=parallelism,
                          tags=row.tags, client_token=row.client_token)  # fmt: skip
    context.state.update_pipeline(updated)
    return {"PipelineArn": arn(context, row.name), "PipelineVersionId": updated.version}


@operation("DescribePipeline")
def describe_pipeline(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """A pipeline and its definition (the current one, or PipelineVersionId's)."""
    found = find(context, request["PipelineName"])
    definition = found.definition
    if "PipelineVersionId" in request:
        kept = context.state.definition(found.name, request["PipelineVersionId"])
        if kept is None:
            raise ResourceNotFound(f"Pipeline '{arn(context, found.name)}' has no version {request['PipelineVersionId']} (its latest is {found.version}).")
        definition = kept
    parallelism = found.row.parallelism if found.row else None
    return {
        "PipelineArn": arn(context, found.name),
        "PipelineName": found.name,
        "PipelineDisplayName": found.display_name,
        "PipelineDefinition": definition,
        "PipelineDescription": found.row.description if found.row else None,
        "RoleArn": found.role_arn,
        "PipelineStatus": "Active",
        "CreationTime": found.created,
        "LastModifiedTime": found.modified,
        "LastRunTime": found.last_run,
        "CreatedBy": {},
        "LastModifiedBy": {},
        "ParallelismConfiguration": {"MaxParallelExecutionSteps": parallelism} if parallelism else None,
    }


@operation("DeletePipeline")
def delete_pipeline(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Delete a pipeline; its executions stay readable by ARN, and a later `sagelab run` of that name makes it anew."""
    found = find(context, request["PipelineName"])
    context.state.delete_pipeline(found.name, time.time())
    return {"PipelineArn": arn(context, found.name)}


@operation("ListPipelines")
def list_pipelines(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Pipeline summaries, newest first by default (SortBy Name or CreationTime), 10 a page unless MaxResults says otherwise."""
    prefix = request.get("PipelineNamePrefix", "")
    chosen = [p for p in pipelines(context).values() if p.name.startswith(prefix) and created_between(p.created, request)]
    if request.get("SortBy") == "Name":
        chosen.sort(key=lambda p: p.name, reverse=newest_first(request))
    else:
        chosen.sort(key=lambda p: p.created, reverse=newest_first(request))
    shown, following = page(chosen, request)
    summaries = [{"PipelineArn": arn(context, p.name), "PipelineName": p.name, "PipelineDisplayName": p.display_name,
                  "PipelineDescription": p.row.description if p.row else None, "RoleArn": p.role_arn, "CreationTime": p.created,
                  "LastModifiedTime": p.modified, "LastExecutionTime": p.last_run} for p in shown]  # fmt: skip
    return {"PipelineSummaries": summaries, "NextToken": following}
