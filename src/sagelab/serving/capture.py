"""Data capture: an endpoint's requests and responses written as SageMaker writes them, for monitoring.

An endpoint config's `DataCaptureConfig` reaches the server as the SAGELAB_DATA_CAPTURE variable
(JSON: the config, the endpoint and variant names, and the local folder its DestinationS3Uri maps
to). A sampled request and its response become one JSON line:

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "1,2,3", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "0.5", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "...", "inferenceTime": "2026-12-07T09:30:00Z", "inferenceId": "..."}, "eventVersion": "0"}

under `<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl`. Data is written as
text when its content type is one of CaptureContentTypeHeader's CSV or JSON types, else base64 (as
SageMaker does with no such header). Lines are gathered for a second and written as a new file each
time, atomically, so a monitoring run never reads half a file.
"""

from __future__ import annotations

import base64
import json
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sagelab.errors import EndpointError

CAPTURE_ENV = "SAGELAB_DATA_CAPTURE"
INFERENCE_ID_HEADER = "x-amzn-sagemaker-inference-id"
FLUSH_SECONDS = 1.0


@dataclass
class DataCapture:
    folder: Path  # the store folder DestinationS3Uri maps to
    endpoint: str
    variant: str
    sampling: float = 100.0  # percent of requests captured
    inputs: bool = True
    outputs: bool = True
    csv_types: tuple[str, ...] = ()
    json_types: tuple[str, ...] = ()
    _pending: list[str] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _writer: threading.Thread | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> DataCapture | None:
        """The capture a server was started with (SAGELAB_DATA_CAPTURE), or None."""
        raw = (os.environ if env is None else env).get(CAPTURE_ENV)
        if not raw:
            return None
        settings = json.loads(raw)
        config = settings["config"]
        modes = {option.get("CaptureMode") for option in config.get("CaptureOptions", [])} or {"Input", "Output"}
        header = config.get("CaptureContentTypeHeader") or {}
        return cls(Path(settings["folder"]), settings["endpoint"], settings["variant"], float(config.get("InitialSamplingPercentage", 100)),
                   bool(modes & {"Input", "InputAndOutput"}), bool(modes & {"Output", "InputAndOutput"}),
                   tuple(header.get("CsvContentTypes", [])), tuple(header.get("JsonContentTypes", [])))  # fmt: skip

    def record(self, body: bytes, content_type: str | None, response: bytes, response_type: str, inference_id: str | None) -> None:
        """Capture one request and its answer (when sampled); the file is written within a second."""
        if self.sampling < 100 and random.uniform(0, 100) >= self.sampling:
            return
        captured: dict[str, Any] = {}
        if self.inputs:
            captured["endpointInput"] = self._payload(body, content_type or "application/octet-stream", "INPUT")
        if self.outputs:
            captured["endpointOutput"] = self._payload(response, response_type, "OUTPUT")
        metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
        if inference_id:
            metadata["inferenceId"] = inference_id
        line = json.dumps({"captureData": captured, "eventMetadata": metadata, "eventVersion": "0"}, separators=(",", ":"))
        with self._lock:
            self._pending.append(line)
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_every_second, name="sagelab-data-capture", daemon=True)
                self._writer.start()

    def _payload(self, data: bytes, content_type: str, mode: str) -> dict[str, str]:
        base = content_type.split(";")[0].strip().lower()
        encoding = "CSV" if base in self.csv_types else "JSON" if base in self.json_types else "BASE64"
        text = base64.b64encode(data).decode("ascii") if encoding == "BASE64" else data.decode("utf-8", "replace")
        return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}

    def flush(self) -> None:
        """Write the lines gathered so far as one new file of the current hour (temp file, then rename)."""
        with self._lock:
            lines, self._pending = self._pending, []
        if not lines:
            return
        now = datetime.now(timezone.utc)
        folder = self.folder / self.endpoint / self.variant / now.strftime("%Y/%m/%d/%H")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{now.strftime('%M-%S')}-{now.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
        partial = folder / f".{name}.partial"
        partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(partial, folder / name)

    def _write_every_second(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            try:
                self.flush()
            except OSError as exc:  # a full disk loses captured records, never the answers
                print(f"data capture: cannot write under {self.folder}: {exc}", flush=True)


def quick_config(percent: float, destination: str) -> dict[str, Any]:
    """The DataCaptureConfig `sagelab deploy --capture PERCENT` sets: inputs and outputs, CSV and JSON kept as text."""
    if not 0 < percent <= 100:
        raise EndpointError(f"--capture must be a percentage above 0 and at most 100; got {percent:g}")
    return {"EnableCapture": True, "InitialSamplingPercentage": int(round(percent)), "DestinationS3Uri": destination,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}}  # fmt: skip


def capture_environment(config: dict[str, Any], endpoint: str, variant: str, folder: Path) -> dict[str, str]:
    """The server environment that turns capture on, for an enabled DataCaptureConfig (else none)."""
    if not config or config.get("EnableCapture") is False:
        return {}
    percent = config.get("InitialSamplingPercentage", 100)
    if not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
        raise EndpointError(f"DataCaptureConfig InitialSamplingPercentage must be between 0 and 100; got {percent!r}")
    return {CAPTURE_ENV: json.dumps({"config": config, "endpoint": endpoint, "variant": variant, "folder": str(folder)})}


def captured_files(folder: Path, endpoint: str) -> list[Path]:
    """Every capture file of an endpoint (all its variants), oldest first."""
    root = folder / endpoint
    return sorted((p for p in root.rglob("*.jsonl") if not p.name.startswith(".")), key=lambda p: p.relative_to(root).parts[1:]) if root.is_dir() else []
