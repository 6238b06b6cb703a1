"""The UI's FastAPI app and its server on 127.0.0.1 (uvicorn, as `sagelab api` and the endpoints serve)."""

from __future__ import annotations

import webbrowser
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException
from fastapi.staticfiles import StaticFiles

from sagelab.api.backends import LocalBackend, backend_for
from sagelab.api.runs import Runs
from sagelab.config import Settings
from sagelab.loopback import listen
from sagelab.ui import json_api, pages


def create_app(settings: Settings) -> FastAPI:
    """The UI of the project and profile `settings` names; runs it starts stop when the app shuts down (Stopped, retryable)."""
    backend = backend_for(settings)
    runs = Runs(settings) if isinstance(backend, LocalBackend) else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if runs is not None:
            runs.close()

    app = FastAPI(title="sagelab ui", version=version("sagelab"), lifespan=lifespan, openapi_url="/api/openapi.json", docs_url=None, redoc_url=None,
                  description="The JSON API behind `sagelab ui`: executions, steps, their logs and outputs, the model registry, endpoints.")  # fmt: skip
    app.state.ui = json_api.UiState(settings, backend, runs)
    app.include_router(json_api.router)
    app.include_router(pages.router)

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return await http_exception_handler(request, exc)
        return pages.error_page(request, exc.status_code, str(exc.detail))

    app.mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static")
    return app


def serve(settings: Settings, port: int = 8766, *, open_browser: bool = True, ready: Callable[[str], None] | None = None) -> None:
    """Serve the UI on 127.0.0.1:`port` (0: any free port) until Ctrl-C; `ready` is told its URL first."""
    import uvicorn

    listening = listen(port, "sagelab ui")
    url = f"http://127.0.0.1:{listening.getsockname()[1]}"
    config = uvicorn.Config(create_app(settings), lifespan="on", access_log=False, log_level="warning", server_header=False)
    server = uvicorn.Server(config)
    if ready is not None:
        ready(url)
    if open_browser:
        webbrowser.open(url)
    try:
        server.run(sockets=[listening])
    finally:
        listening.close()
