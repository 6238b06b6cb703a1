"""The UI's HTML pages: rendered on the server from the JSON API's own functions and shapes (`json_api`),
with `static/app.js` streaming what changes (a running execution, a step's log) and sending the forms to /api."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from sagelab.ui import json_api
from sagelab.ui.charts import line_chart, scatter_chart
from sagelab.ui.json_api import State

templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
router = APIRouter(include_in_schema=False)


def _page(request: Request, name: str, **context: Any) -> HTMLResponse:
    ui: json_api.UiState = request.app.state.ui
    return templates.TemplateResponse(request, name, {"profile": ui.settings.profile, "root": str(ui.settings.root), **context})


TITLES = {400: "Refused", 404: "Not found", 409: "Not now", 422: "Refused", 502: "SageMaker did not answer as expected"}


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    """A page's error as a page (the API's stay JSON): what went wrong, in the words the API gives."""
    page = _page(request, "error.html", status=status, title=TITLES.get(status, "Error"), detail=detail)
    page.status_code = status
    return page


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/executions")


@router.get("/executions", response_class=HTMLResponse)
def executions(request: Request, ui: State, pipeline: str | None = None, offset: Annotated[int, Query(ge=0, le=10**12)] = 0) -> HTMLResponse:
    page = json_api.executions(ui, pipeline, offset, json_api.PAGE)
    return _page(request, "executions.html", page=page, pipelines=json_api.pipelines(ui), pipeline=pipeline, can_run=ui.runs is not None)


@router.get("/executions/{reference}", response_class=HTMLResponse)
def execution(request: Request, ui: State, reference: str) -> HTMLResponse:
    detail = json_api.execution(ui, reference)
    return _page(request, "execution.html", execution=detail, can_run=ui.runs is not None)


@router.get("/executions/{reference}/steps/{step}", response_class=HTMLResponse)
def step(request: Request, ui: State, reference: str, step: str) -> HTMLResponse:
    detail = json_api.step(ui, reference, step)
    return _page(request, "step.html", step=detail, can_run=ui.runs is not None)


@router.get("/compare", response_class=HTMLResponse)
def compare(request: Request, ui: State, ids: Annotated[list[str], Query()] = [], x: str | None = None,  # noqa: B006 - FastAPI's default
            y: str | None = None) -> Response:  # fmt: skip
    if len(ids) < 2:
        return _page(request, "compare.html", comparison=None, charts=[], scatter="", x=x, y=y, ids=ids)
    comparison = json_api.compare(ui, ids)
    labels = [e.id[:8] for e in comparison.executions]
    charts = [line_chart(name, labels, {name: values}) for name, values in comparison.metrics.items()]
    scatter = ""
    if x in comparison.parameters and y in comparison.metrics:
        points = [(float(px), float(py), label) for px, py, label in zip(comparison.parameters[x], comparison.metrics[y], labels)
                  if _number(px) and py is not None]  # fmt: skip
        scatter = scatter_chart(f"{y} against {x}", x, y, points)
    return _page(request, "compare.html", comparison=comparison, charts=charts, scatter=scatter, x=x, y=y, ids=ids)


def _number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool)


@router.get("/models", response_class=HTMLResponse)
def models(request: Request, ui: State) -> HTMLResponse:
    return _page(request, "models.html", groups=json_api.model_groups(ui))


@router.get("/models/{group}", response_class=HTMLResponse)
def model_group(request: Request, ui: State, group: str) -> HTMLResponse:
    versions = json_api.versions(ui, group)
    names = sorted({name for version in versions for name in version["metrics"]})
    labels = [f"v{version.get('ModelPackageVersion')}" for version in versions]
    charts = [line_chart(name, labels, {name: [version["metrics"].get(name) for version in versions]}) for name in names]
    return _page(request, "model_group.html", group=group, versions=versions, metric_names=names, charts=charts)


@router.get("/endpoints", response_class=HTMLResponse)
def endpoints(request: Request, ui: State) -> HTMLResponse:
    approved = []
    for group in json_api.model_groups(ui):
        try:
            approved += [f"{group['ModelPackageGroupName']}/{v.get('ModelPackageVersion')}" for v in ui.backend.models.versions(group["ModelPackageGroupName"])
                         if v.get("ModelApprovalStatus") == "Approved"]  # fmt: skip
        except Exception:  # noqa: BLE001,S112 - a group that cannot be read offers nothing to deploy
            continue
    listed = json_api.endpoints(ui)
    samples = {e.name: _sample(ui, e.model) for e in listed}
    return _page(request, "endpoints.html", endpoints=listed, approved=approved, samples=samples)


def _sample(ui: json_api.UiState, model: str | None) -> str:
    """The first line of the version's SamplePayloadUrl object (CreateModelPackage's sample payload), if it has one."""
    if not model:
        return ""
    try:
        uri = ui.backend.models.describe(model).get("SamplePayloadUrl")
        if not uri:
            return ""
        data = ui.backend.get_bytes(str(uri))
    except Exception:  # noqa: BLE001 - no sample: the form starts empty
        return ""
    if data[:2] == b"\x1f\x8b":  # SageMaker's sample payloads are often a .tar.gz of payload files: the first file's
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                first = next((member for member in archive if member.isfile()), None)
                data = archive.extractfile(first).read() if first else b""  # type: ignore[union-attr]
        except (tarfile.TarError, OSError):
            return ""
    text = data.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else ""
