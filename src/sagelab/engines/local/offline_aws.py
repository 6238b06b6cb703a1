"""AWS as a SageMaker SDK pipeline sees it while its definition is built for a local run: no network, no account.

`pipeline.definition()` of an SDK `Pipeline` talks to AWS: `default_bucket()` asks STS for the
account and S3 for the bucket, and each step's code (a processing script, a training
`source_dir`) is uploaded to S3 and named in the definition by its S3 URI. While sagelab
imports a pipeline module and calls `definition()`, `offline_aws` stands in for AWS, with
throwaway credentials and the profile's region:
- S3 (`AWS_ENDPOINT_URL_S3`) is the project's store served on 127.0.0.1, so the uploaded code
  is where the local run reads it;
- STS GetCallerIdentity answers with the profile's account and role, so the default bucket is
  `sagemaker-<region>-<account>` as in the local engine's ARNs. The SDK asks it at an explicit
  AWS endpoint that no variable redirects, so the answer comes from a botocore handler that
  every botocore session made meanwhile registers (`sagelab.caller_identity`);
- any other AWS call (`AWS_ENDPOINT_URL`: SageMaker, IAM, ...) gets an error naming the service
  and the operation, which the loader reports as the definition's failure;
- HTTP(S)_PROXY points at the same stand-in, which refuses every tunnel: clients that read the
  proxy variables when they connect (requests: the SDK's telemetry; botocore; a new urllib
  opener) cannot leave the machine, and the loggers that would only report the stand-in are quiet.
The environment is put back as it was afterwards.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from sagelab.caller_identity import CallerIdentity, identity_xml

if TYPE_CHECKING:
    from sagelab.config import Settings
    from sagelab.store import LocalStore

# Credentials and profiles that would otherwise sign with, or reach for, a real account.
_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
            "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy")  # fmt: skip
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
# Loggers that would only report the stand-in: a traceback per telemetry request refused, and the
# endpoints and credentials botocore found in the variables set here.
_QUIET = ("sagemaker.telemetry", "botocore.configprovider", "botocore.credentials")


@contextmanager
def offline_aws(settings: Settings, store: LocalStore) -> Iterator[None]:
    """While it lasts, AWS clients made in this process reach the store as S3 and a local STS, and nothing else."""
    from sagelab.store.s3_server import S3Server

    with S3Server(store) as s3, _StandIn(settings) as standin, CallerIdentity(settings.account, settings.role_arn):
        values = {
            "AWS_ENDPOINT_URL": standin.endpoint,
            "AWS_ENDPOINT_URL_S3": s3.endpoint,
            "AWS_ACCESS_KEY_ID": "SAGELAB" + secrets.token_hex(6).upper(),
            "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
            "AWS_DEFAULT_REGION": settings.region,
            "AWS_REGION": settings.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "HTTP_PROXY": standin.endpoint,
            "HTTPS_PROXY": standin.endpoint,
            "NO_PROXY": "127.0.0.1,localhost,::1",
        }
        saved = {name: os.environ.get(name) for name in (*values, *_CLEARED)}
        loggers = {logger: logger.level for logger in map(logging.getLogger, _QUIET)}
        try:
            for name in _CLEARED:
                os.environ.pop(name, None)
            os.environ.update(values)
            for logger in loggers:
                logger.setLevel(logging.CRITICAL)
            yield
        finally:
            for logger, level in loggers.items():
                logger.setLevel(level)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class _StandIn:
    """STS's GetCallerIdentity for the profile's account, and a clear refusal for every other AWS call."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> _StandIn:
        settings = self.settings

        class Handler(Refusals):
            account, role = settings.account, settings.role_arn

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll: shutdown() waits for the loop to look, and the default half second would be added to every load.
        threading.Thread(target=self._server.serve_forever, args=(0.005,), name="sagelab-offline-aws", daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class Refusals(BaseHTTPRequestHandler):
    """Answers STS GetCallerIdentity with `account` and `role`, and every other AWS call with `refusal`'s error."""

    account = ""
    role = ""
    code = "UnavailableOffline"
    protocol_version = "HTTP/1.1"

    def refusal(self, service: str, action: str) -> str:
        return (f"{service} {action} is not available while sagelab builds a pipeline definition for a local run "
                "(only S3, on the project's store, and STS GetCallerIdentity are): build the definition without it, "
                "or run the pipeline on SageMaker with --profile")  # fmt: skip

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("http://"):  # a request through the proxy (HTTP_PROXY points here)
            return self.do_CONNECT()
        scope = _SCOPE.search(self.headers.get("Authorization", ""))
        service = scope.group(1) if scope else "an AWS service"
        target = self.headers.get("X-Amz-Target")
        action = target.rsplit(".", 1)[-1] if target else (parse_qs(body.decode("utf-8", "replace")).get("Action") or [self.command + " " + self.path])[0]
        if service == "sts" and action == "GetCallerIdentity":
            return self._caller_identity()
        message = self.refusal(service, action)
        if target or "json" in self.headers.get("Content-Type", ""):
            self._send(400, json.dumps({"__type": self.code, "message": message}).encode(), "application/x-amz-json-1.1")
        else:
            error = f"<ErrorResponse><Error><Type>Sender</Type><Code>{self.code}</Code><Message>{escape(message)}</Message></Error></ErrorResponse>"
            self._send(400, error.encode(), "text/xml")

    do_GET = do_PUT = do_DELETE = do_HEAD = do_POST

    def do_CONNECT(self) -> None:
        """A proxy tunnel or request (HTTP(S)_PROXY point here): refused, so nothing leaves the machine."""
        self._send(403, f"sagelab builds this pipeline definition offline: no connection to {self.path}".encode(), "text/plain")

    def _caller_identity(self) -> None:
        """For clients of sessions made before the offline window began (they lack `CallerIdentity`'s handler)."""
        self._send(200, identity_xml(self.account, self.role).encode(), "text/xml")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the loader reports what failed."""
