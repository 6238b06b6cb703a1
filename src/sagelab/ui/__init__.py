"""`sagelab ui`: the project's pipelines, executions, models and endpoints in a browser, on 127.0.0.1.

A FastAPI app over the Python API (`sagelab.api.backends`), so it reads what the CLI reads, locally or,
with an AWS profile, on SageMaker. Its JSON API (`/api/...`, described at `/api/openapi.json`) is what
the pages use: server-rendered HTML (`templates/`) with a little JavaScript (`static/app.js`) for what
changes while a page is open — a running execution's graph and a step's log, streamed as server-sent events.

Modules: `views` (the JSON shapes), `json_api` (the routes under /api), `actions` (runs the UI starts,
as `sagelab run` processes of their own), `preview` (a small object's first rows), `pages` (the HTML),
`app` (the app and its server).
"""

from __future__ import annotations

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from sagelab.ui import app

        return getattr(app, name)
    raise AttributeError(name)
