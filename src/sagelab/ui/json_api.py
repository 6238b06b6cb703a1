"""The UI's JSON API under /api: what the pages show and do, for scripts too (its schema: /api/openapi.json).

Every route reads or acts through the Python API's backend of the UI's profile, as the CLI does; runs
started here go to worker processes (`sagelab.api.runs`), so the Stop button stops them as Ctrl-C stops
`sagelab run`. A user's mistake (an unknown execution, a bad parameter) is a 4xx answer whose `detail`
says what to fix (400 refused, 404 not found, 409 not in this state); the pages show it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from sagelab.api.backends import LocalBackend, SageMakerBackend
from sagelab.api.model import Execution, numbers
from sagelab.api.runs import Runs
from sagelab.config import Settings
from sagelab.errors import ExecutionError, SagelabError
from sagelab.ui import views
from sagelab.ui.preview import MAX_BYTES, preview

POLL = 0.5  # seconds between looks at a running execution's record, for its event stream
PAGE = 50


@dataclass
class UiState:
    """What every request of one `sagelab ui` shares."""

    settings: Settings
    backend: LocalBackend | SageMakerBackend
    runs: Runs | None  # None on SageMaker: runs start there from the CLI


def state(request: Request) -> UiState:
    found: UiState = request.app.state.ui
    return found


State = Annotated[UiState, Depends(state)]
Version = Annotated[int, Path(ge=1, le=2**31, description="A model package version: 1, 2, ...")]
# A user's mistake: 400 (refused, the detail says why), 404 (no such thing), 409 (not now); request validation's own is 422;
# 502: SageMaker's call failed (an AWS profile).
router = APIRouter(prefix="/api", responses={code: {"model": views.Problem, "description": what} for code, what in (
    (400, "Refused: `detail` says what to change"), (404, "No such execution, step, object, model or endpoint"), (409, "Not in this state"),
    (502, "SageMaker refused or failed a call the answer needed (an AWS profile)"))})


def _execution(ui: UiState, reference: str) -> Execution:
    try:
        return ui.backend.execution(reference)
    except ExecutionError as exc:
        raise HTTPException(404, str(exc)) from None
    except SagelabError as exc:  # SageMaker (or what stands for it) refused or failed a call: its words
        raise HTTPException(502, str(exc)) from None


@router.get("/pipelines", response_model=list[views.PipelineSummary], tags=["executions"])
def pipelines(ui: State) -> list[dict[str, Any]]:
    """Every pipeline with executions, the newest first."""
    try:
        return ui.backend.pipelines()
    except ExecutionError:
        return []  # nothing ran yet


@router.get("/executions", response_model=views.ExecutionPage, tags=["executions"])
def executions(ui: State, pipeline: str | None = None, offset: Annotated[int, Query(ge=0, le=10**12)] = 0,
               limit: Annotated[int, Query(ge=1, le=200)] = PAGE) -> views.ExecutionPage:  # fmt: skip
    """A page of executions, the newest first."""
    try:
        found = ui.backend.executions(pipeline, limit + 1, detail=False, offset=offset)
    except ExecutionError:
        found = []
    return views.ExecutionPage(items=[views.execution_summary(e) for e in found[:limit]], offset=offset, limit=limit, more=len(found) > limit)


@router.get("/executions/compare", response_model=views.Comparison, tags=["executions"])
def compare(ui: State, ids: Annotated[list[str], Query(min_length=1, max_length=20)]) -> views.Comparison:
    """Parameters and metrics of the executions named, side by side."""
    return views.comparison([_execution(ui, reference) for reference in ids])


@router.get("/executions/{reference}", response_model=views.ExecutionDetail, tags=["executions"])
def execution(ui: State, reference: str) -> views.ExecutionDetail:
    """One execution (an id, a unique start of one, or "latest") with its steps."""
    return views.execution_detail(_execution(ui, reference))


@router.get("/executions/{reference}/graph.svg", tags=["executions"], response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}}})  # fmt: skip
def graph(ui: State, reference: str) -> Response:
    """The execution's step graph, each step coloured by its status (the layout of `sagelab graph`)."""
    from sagelab.definition import parse
    from sagelab.docs.svg import graph_svg

    found = _execution(ui, reference)
    try:
        definition = parse(found.definition, source=f"execution {found.id}")
    except SagelabError as exc:
        raise HTTPException(400, str(exc)) from None
    svg = graph_svg(definition, found.pipeline, {s.name: s.status for s in found.steps.values()})
    return Response(svg, media_type="image/svg+xml")


@router.get("/executions/{reference}/events", tags=["executions"], response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})  # fmt: skip
async def events(ui: State, reference: str, request: Request) -> StreamingResponse:
    """Server-sent events: `execution` (the ExecutionDetail) whenever the execution or a step changes, until it ends."""
    first = await run_in_threadpool(_execution, ui, reference)

    async def stream() -> AsyncIterator[str]:
        shown = ""
        current = first
        while True:
            detail = views.execution_detail(current).model_dump_json()
            if detail != shown:
                shown = detail
                yield f"event: execution\ndata: {detail}\n\n"
            if current.finished or await request.is_disconnected():
                yield "event: end\ndata: {}\n\n"
                return
            await asyncio.sleep(POLL)
            current = await run_in_threadpool(_execution, ui, first.id)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get("/executions/{reference}/steps/{step}", response_model=views.StepDetail, tags=["steps"])
def step(ui: State, reference: str, step: str) -> views.StepDetail:
    """A step's arguments, properties, outputs, metrics and drift lines."""
    found = _execution(ui, reference)
    if step not in found.steps:
        raise HTTPException(404, f"execution {found.id} has no step {step!r}; its steps: {', '.join(found.steps)}")
    return views.step_detail(found, found.steps[step], _log_lines(ui, found, step))


def _log_lines(ui: UiState, found: Execution, step: str) -> list[str]:
    try:
        return list(ui.backend.log_lines(found, step))
    except SagelabError:
        return []


@router.get("/executions/{reference}/steps/{step}/log", response_class=PlainTextResponse, tags=["steps"])
def log(ui: State, reference: str, step: str) -> str:
    """The step's log so far."""
    found = _execution(ui, reference)
    try:
        return "\n".join(ui.backend.log_lines(found, step)) + "\n"
    except SagelabError as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/executions/{reference}/steps/{step}/log/stream", tags=["steps"], response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})  # fmt: skip
async def log_stream(ui: State, reference: str, step: str) -> StreamingResponse:
    """Server-sent events: `log` (a piece of the step's log, as JSON text) as it grows, then `end` once the execution ended."""
    found = await run_in_threadpool(_execution, ui, reference)

    def chunks() -> Iterator[str]:
        try:
            for _, chunk in ui.backend.log_chunks(found.id, step, follow=True):
                yield f"event: log\ndata: {json.dumps(chunk.decode('utf-8', 'replace'))}\n\n"
        except SagelabError as exc:
            yield f"event: missing\ndata: {json.dumps(str(exc))}\n\n"
        yield "event: end\ndata: {}\n\n"

    return StreamingResponse(iterate_in_threadpool(chunks()), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.post("/executions", response_model=views.Started, status_code=202, tags=["actions"])
def start(ui: State, request: views.StartRequest) -> views.Started:
    """Run a pipeline again with these parameters (its newest execution's definition), or from one step on."""
    runs = _runs(ui)
    try:
        newest = ui.backend.executions(request.pipeline, 1)
    except ExecutionError:
        newest = []
    if not newest:
        raise HTTPException(404, f"pipeline {request.pipeline!r} has no execution to take its definition from; run it once with `sagelab run`")
    order: dict[str, Any] = {"action": "start", "pipeline": request.pipeline, "definition": newest[0].definition,
                             "parameters": request.parameters}  # fmt: skip
    if request.from_step:
        reference = _execution(ui, request.reference or newest[0].id)
        order["select"] = {"from_step": request.from_step, "reference": reference.id}
    return views.Started(execution=_started(runs, order), pipeline=request.pipeline)


@router.post("/executions/{reference}/retry", response_model=views.Started, status_code=202, tags=["actions"])
def retry(ui: State, reference: str) -> views.Started:
    """Retry a Failed or Stopped execution: its failed and unfinished steps run again, as `sagelab retry` does."""
    found = _execution(ui, reference)
    return views.Started(execution=_started(_runs(ui), {"action": "retry", "execution": found.id}), pipeline=found.pipeline)


@router.post("/executions/{reference}/stop", response_model=views.Said, tags=["actions"])
def stop(ui: State, reference: str) -> views.Said:
    """Stop an execution this UI started (its running jobs are stopped; it ends Stopped and can be retried)."""
    found = _execution(ui, reference)
    if isinstance(ui.backend, SageMakerBackend):
        return views.Said(message=ui.backend.stop(found.arn))
    if found.finished:
        raise HTTPException(409, f"execution {found.id} is {found.status}: only a running one can be stopped")
    assert ui.runs is not None
    if not ui.runs.stop(found.id):
        raise HTTPException(409, f"execution {found.id} runs in another sagelab process; stop it with Ctrl-C in its terminal")
    return views.Said(message=f"stopping execution {found.id}")


def _runs(ui: UiState) -> Runs:
    if ui.runs is None:
        raise HTTPException(409, f"profile {ui.settings.profile} runs on SageMaker: start and retry its executions with `sagelab run --profile`")
    return ui.runs


def _started(runs: Runs, order: dict[str, Any]) -> str:
    try:
        return runs.start(order)
    except SagelabError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/objects/preview", response_model=views.Preview, tags=["objects"])
def object_preview(ui: State, uri: str) -> views.Preview:
    """The first rows of a small CSV, JSON or Parquet object (a step's output), or a note that it has none."""
    listed = _listing(ui, uri)
    if listed is not None and listed > MAX_BYTES:
        return views.Preview(uri=uri, size=listed, kind="binary", truncated=True)
    return preview(uri, _object(ui, uri))


@router.get("/objects/download", tags=["objects"], response_class=Response, responses={200: {"content": {"application/octet-stream": {}}}})
def download(ui: State, uri: str) -> Response:
    """The object's bytes, as a download."""
    name = uri.rstrip("/").rsplit("/", 1)[-1] or "object"
    return Response(_object(ui, uri), media_type="application/octet-stream", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/objects", response_model=list[str], tags=["objects"])
def objects(ui: State, uri: str) -> list[str]:
    """The URIs of the objects under a prefix (an output folder), the first 200."""
    try:
        return [info.uri for info in ui.backend.list(uri)[:200]]
    except SagelabError as exc:
        raise HTTPException(404, str(exc)) from None


def _listing(ui: UiState, uri: str) -> int | None:
    try:
        found = [info for info in ui.backend.list(uri) if info.uri == uri]
    except SagelabError:
        return None
    return found[0].size if found else None


def _object(ui: UiState, uri: str) -> bytes:
    if not uri.startswith("s3://"):
        raise HTTPException(400, f"{uri!r} is not an s3:// URI")
    try:
        return ui.backend.get_bytes(uri)
    except SagelabError as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/models", response_model=list[dict[str, Any]], tags=["models"])
def model_groups(ui: State) -> list[dict[str, Any]]:
    """Model package groups with their number of versions and latest approved version."""
    return ui.backend.models.groups()


@router.get("/models/{group}", response_model=list[dict[str, Any]], tags=["models"])
def versions(ui: State, group: str) -> list[dict[str, Any]]:
    """A group's versions, each with its status and the numbers of its model metrics reports (`metrics`)."""
    try:
        found = ui.backend.models.versions(group)
    except SagelabError as exc:
        raise HTTPException(404, str(exc)) from None
    return [{**views.jsonable(version), "metrics": _model_metrics(ui, f"{group}/{version.get('ModelPackageVersion')}")} for version in found]


def _model_metrics(ui: UiState, reference: str) -> dict[str, float]:
    """`<kind>.<report>.<json path>` → value for every number in the version's ModelMetrics reports (evaluation reports)."""
    try:
        described = ui.backend.models.describe(reference)
    except SagelabError:
        return {}
    found: dict[str, float] = {}
    for kind, reports in (described.get("ModelMetrics") or {}).items():
        for report, where in (reports or {}).items():
            uri = where.get("S3Uri") if isinstance(where, dict) else None
            if not isinstance(uri, str):
                continue
            try:
                document = json.loads(ui.backend.get_bytes(uri))
            except (SagelabError, ValueError):
                continue
            found.update({f"{kind}.{report}.{path}": value for path, value in numbers(document)})
    return found


@router.get("/models/{group}/{version}", response_model=dict[str, Any], tags=["models"])
def model_version(ui: State, group: str, version: Version) -> dict[str, Any]:
    """A version's DescribeModelPackage answer."""
    try:
        return ui.backend.models.describe(f"{group}/{version}")
    except SagelabError as exc:
        raise HTTPException(404, str(exc)) from None


@router.post("/models/{group}/{version}/status", response_model=dict[str, Any], tags=["models"])
def set_status(ui: State, group: str, version: Version, change: views.StatusChange) -> dict[str, Any]:
    """Approve or reject a version, with a reason, as `sagelab models approve|reject` does."""
    try:
        return ui.backend.models.set_status(f"{group}/{version}", change.status, change.reason)
    except SagelabError as exc:
        raise HTTPException(404 if "no model package" in str(exc) else 400, str(exc)) from None


@router.get("/endpoints", response_model=list[views.EndpointView], tags=["endpoints"])
def endpoints(ui: State) -> list[views.EndpointView]:
    """The endpoints: status, the model version they serve, uptime."""
    return [_endpoint_view({**e.to_dict(), "uptime": e.uptime}) for e in ui.backend.endpoints.list()]


def _endpoint_view(found: dict[str, Any]) -> views.EndpointView:
    shown = {"name", "status", "model", "url"}
    return views.EndpointView(name=found["name"], status=found["status"], model=found.get("model"), url=found.get("url"), uptime=found.get("uptime"),
                              details={k: v for k, v in found.items() if k not in shown})  # fmt: skip


@router.post("/endpoints", response_model=views.Said, status_code=201, tags=["endpoints"])
def deploy(ui: State, order: views.DeployRequest) -> views.Said:
    """Deploy an approved model version to an endpoint, as `sagelab deploy` does."""
    try:
        deployed = ui.backend.endpoints.deploy(order.model, order.name)
    except SagelabError as exc:
        raise HTTPException(400, str(exc)) from None
    return views.Said(message=f"endpoint {order.name} serves {order.model} at {getattr(deployed, 'url', '') or order.name}")


@router.delete("/endpoints/{name}", response_model=views.Said, tags=["endpoints"])
def delete_endpoint(ui: State, name: str) -> views.Said:
    """Stop and delete an endpoint."""
    try:
        return views.Said(message=ui.backend.endpoints.delete(name))
    except SagelabError as exc:
        raise HTTPException(404, str(exc)) from None


@router.post("/endpoints/{name}/invocations", response_model=views.InvocationResult, tags=["endpoints"])
def invoke(ui: State, name: str, invocation: views.Invocation) -> views.InvocationResult:
    """Send a payload to the endpoint, as `sagelab invoke` does; the model's own error comes back with its status."""
    try:
        answer = ui.backend.endpoints.invoke(name, invocation.body.encode(), invocation.content_type, invocation.accept)
    except SagelabError as exc:
        raise HTTPException(400, str(exc)) from None
    return views.InvocationResult(status=answer.status, content_type=answer.content_type, body=answer.body.decode("utf-8", "replace"))
