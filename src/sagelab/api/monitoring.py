"""Model monitoring of a local endpoint: its captured requests checked against a baseline, as a SageMaker
data-quality monitoring job checks them (`sagelab monitor run`).

The endpoint's data capture (DataCaptureConfig, or `sagelab deploy --capture`) wrote JSON lines under
its destination; their `endpointInput` records become the dataset, and Model Monitor's analyzer (the
one the QualityCheck steps run, `sagelab.containers.monitor`) computes its statistics and checks them
against the baseline's constraints and statistics: `constraint_violations.json` and `statistics.json`,
written where a monitoring schedule's job writes them: `<output>/<endpoint>/<schedule>/yyyy/mm/dd/hh/`.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.errors import EndpointError

if TYPE_CHECKING:
    from sagelab.config import Settings


@dataclass(frozen=True)
class MonitoringRun:
    endpoint: str
    records: int  # captured requests read
    rows: int  # data rows they held
    violations: list[dict[str, str]]
    output: str  # the S3 URI of the report folder
    skipped: int = 0  # captured requests whose data could not be read as CSV or JSON

    @property
    def status(self) -> str:
        """As a monitoring execution reports it."""
        return "CompletedWithViolations" if self.violations else "Completed"


def baseline_files(settings: Settings, baseline: str) -> tuple[str, str | None]:
    """The constraints.json (and statistics.json, when there) of a baseline folder or S3 prefix, as a QualityCheck step writes them."""
    from sagelab.containers.monitor import CONSTRAINTS, STATISTICS
    from sagelab.store import LocalStore

    folder = _local(LocalStore(settings.store), baseline)
    if not (folder / CONSTRAINTS).is_file():
        raise EndpointError(f"{baseline}: no {CONSTRAINTS} there; give the folder a QualityCheck step (or a baselining job) wrote")
    return str(folder / CONSTRAINTS), str(folder / STATISTICS) if (folder / STATISTICS).is_file() else None


def monitor_endpoint(settings: Settings, endpoint: str, *, constraints_uri: str, statistics_uri: str | None = None, output: str | None = None,
                     schedule: str = "on-demand", when: datetime | None = None, ground_truth_uri: str | None = None,
                     problem_type: str | None = None, window: tuple[datetime, datetime] | None = None) -> MonitoringRun:  # fmt: skip
    """Check what `endpoint` captured (within `window`, by inference time, if given) against a baseline's constraints
    (and statistics, for drift): files or s3:// URIs.

    With `ground_truth_uri` (where labels were uploaded as Model Monitor takes them: JSON lines of
    `{"groundTruthData": {"data", "encoding"}, "eventMetadata": {"eventId"}}`, the id an invocation's
    InferenceId, or its captured eventId), it is a model-quality check instead: each captured answer is
    matched with its label, and the `problem_type` (Regression, BinaryClassification,
    MulticlassClassification) metrics are checked against the baseline's.

    Raises:
        EndpointError: the endpoint captures nothing, nothing was captured yet (in the window), or the baseline is missing.
    """
    from sagelab.containers.monitor import BASELINE_CONSTRAINTS, BASELINE_STATISTICS, VIOLATIONS, MonitorError
    from sagelab.containers.monitor.analyzer import analyze
    from sagelab.store import LocalStore

    store = LocalStore(settings.store)
    files = _captured(settings, endpoint)
    constraints_file = _file(store, constraints_uri, "the baseline's constraints")
    header: list[str] | None
    if ground_truth_uri:
        if not problem_type:
            raise EndpointError("a model-quality check needs the problem type: Regression, BinaryClassification or MulticlassClassification")
        header, rows, records, skipped = _labelled_rows(files, _ground_truth(store, ground_truth_uri), window)
    else:
        constraints = json.loads(constraints_file.read_text(encoding="utf-8"))
        names = [str(f.get("name")) for f in constraints.get("features", []) if isinstance(f, dict)]
        rows, records, skipped = _captured_rows(files, window)
        header = names if rows and len(names) == max(len(r) for r in rows) else None
    if window is not None and not records:
        raise EndpointError(f"endpoint {endpoint} captured nothing between {window[0]:%Y-%m-%dT%H:%M:%SZ} and {window[1]:%Y-%m-%dT%H:%M:%SZ}")
    now = when or datetime.now(timezone.utc)
    output = output or f"s3://{settings.default_bucket}/monitoring"
    report_uri = f"{output.rstrip('/')}/{endpoint}/{schedule}/{now:%Y/%m/%d/%H}/"
    with tempfile.TemporaryDirectory(prefix="sagelab-monitor-") as scratch:
        dataset = Path(scratch) / "dataset"
        dataset.mkdir()
        with open(dataset / "captured.csv", "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            if header:
                writer.writerow(header)
            writer.writerows(rows)
        env = {"dataset_source": str(dataset), "output_path": str(store.path_of(report_uri)),
               "dataset_format": json.dumps({"csv": {"header": header is not None}}), BASELINE_CONSTRAINTS: str(constraints_file)}  # fmt: skip
        if ground_truth_uri:
            env.update(analysis_type="MODEL_QUALITY", problem_type=str(problem_type), inference_attribute="prediction", ground_truth_attribute="label")
        elif statistics_uri:
            env[BASELINE_STATISTICS] = str(_file(store, statistics_uri, "the baseline's statistics"))
        try:
            analyze(env)
        except MonitorError as exc:
            raise EndpointError(f"monitoring {endpoint}: {exc}") from None
    found = json.loads((store.path_of(report_uri) / VIOLATIONS).read_text(encoding="utf-8")).get("violations", [])
    return MonitoringRun(endpoint, records, len(rows), found, report_uri, skipped)


def _captured(settings: Settings, endpoint: str) -> list[Path]:
    from sagelab.serving.capture import captured_files
    from sagelab.serving.endpoints import Hosting

    hosting = Hosting(settings.state_dir, settings.region, settings.account)
    try:
        folder = hosting.capture_folder(endpoint)
    finally:
        hosting.close()
    if folder is None:
        raise EndpointError(f"endpoint {endpoint} captures no data: deploy it with --capture 100, or give its endpoint config a DataCaptureConfig")
    files = captured_files(folder, endpoint)
    if not files:
        raise EndpointError(f"endpoint {endpoint} has captured nothing yet under {folder / endpoint}: invoke it first")
    return files


def _ground_truth(store: Any, where: str) -> dict[str, list[str]]:
    """Event id → its labels (one per row of the request), from every JSON-lines file under `where`."""
    folder = _local(store, where)
    labels: dict[str, list[str]] = {}
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                event = str(record["eventMetadata"]["eventId"])
                values = _values(record["groundTruthData"])
                if values is None:
                    raise ValueError("unreadable")
            except (ValueError, KeyError, TypeError):
                raise EndpointError(f"{file}:{number}: not a ground-truth record; write "
                                    '{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<InferenceId>"}, '
                                    '"eventVersion": "0"}') from None  # fmt: skip
            labels[event] = values
    return labels


def _labelled_rows(files: list[Path], labels: dict[str, list[str]],
                   window: tuple[datetime, datetime] | None = None) -> tuple[list[str], list[list[str]], int, int]:  # fmt: skip
    """(prediction, label) rows of the captured answers that have labels; how many requests, how many without a label or readable answer."""
    rows: list[list[str]] = []
    records = skipped = 0
    for record in _records(files, window):
        records += 1
        metadata = record.get("eventMetadata", {})
        truth = labels.get(str(metadata.get("inferenceId") or metadata.get("eventId")))
        answer = record.get("captureData", {}).get("endpointOutput")
        predicted = _values(answer) if answer else None
        if truth is None or not predicted or len(truth) != len(predicted):
            skipped += 1
            continue
        rows.extend([guess, actual] for guess, actual in zip(predicted, truth))
    return ["prediction", "label"], rows, records, skipped


def _values(captured: dict[str, Any]) -> list[str] | None:
    """One value per row of a captured answer or a label: CSV lines' first field, or a JSON list's (or its `predictions`') items."""
    data, encoding = str(captured.get("data", "")), captured.get("encoding", "CSV")
    if encoding == "BASE64":
        data = base64.b64decode(data).decode("utf-8", "replace")
        encoding = "JSON" if str(captured.get("observedContentType", "")).split(";")[0].strip().endswith("json") else "CSV"
    if encoding == "CSV":
        return [row[0] for row in csv.reader(io.StringIO(data)) if row]
    try:
        document = json.loads(data)
    except ValueError:
        return None
    if isinstance(document, dict):
        document = document.get("predictions", document.get("outputs"))
    if not isinstance(document, list):
        return [str(document)] if document is not None else None
    return [str(item[0] if isinstance(item, list) and item else item) for item in document]


def _file(store: Any, where: str, what: str) -> Path:
    path = Path(store.path_of(where)) if where.startswith("s3://") else Path(where)
    if not path.is_file():
        raise EndpointError(f"{what}: {where} does not exist")
    return path


def _local(store: Any, where: str) -> Path:
    path = store.path_of(where.rstrip("/") + "/") if where.startswith("s3://") else Path(where)
    if not path.is_dir():
        raise EndpointError(f"baseline {where}: no such folder (give the folder holding constraints.json and statistics.json)")
    return Path(path)


def _records(files: list[Path], window: tuple[datetime, datetime] | None = None) -> Iterator[dict[str, Any]]:
    """Every captured record (one JSON line each) of the capture files, in order; with a window, those inferred within it."""
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                if window is None or window[0] <= _inference_time(record) < window[1]:
                    yield record


def _inference_time(record: dict[str, Any]) -> datetime:
    stamp = str(record.get("eventMetadata", {}).get("inferenceTime", ""))
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)  # a record without its time falls outside every window


def _captured_rows(files: list[Path], window: tuple[datetime, datetime] | None = None) -> tuple[list[list[str]], int, int]:
    """The data rows of every captured request (its CSV lines, or its JSON instances), how many requests, and how many were unreadable."""
    rows: list[list[str]] = []
    records = skipped = 0
    for record in _records(files, window):
        records += 1
        found = _rows(record.get("captureData", {}).get("endpointInput"))
        if found is None:
            skipped += 1
        else:
            rows.extend(found)
    return rows, records, skipped


def _rows(captured: dict[str, Any] | None) -> list[list[str]] | None:
    if not captured:
        return None
    data, encoding = str(captured.get("data", "")), captured.get("encoding")
    content_type = str(captured.get("observedContentType", "")).split(";")[0].strip().lower()
    if encoding == "BASE64":
        data = base64.b64decode(data).decode("utf-8", "replace")
        encoding = "CSV" if content_type == "text/csv" else "JSON" if content_type.endswith("json") else None
    if encoding == "CSV":
        return [row for row in csv.reader(io.StringIO(data)) if row]
    if encoding == "JSON":
        try:
            document = json.loads(data)
        except ValueError:
            return None
        instances = document.get("instances", document.get("inputs")) if isinstance(document, dict) else document
        if isinstance(instances, list) and instances and all(isinstance(i, list) for i in instances):
            return [[str(v) for v in instance] for instance in instances]
        if isinstance(instances, list) and instances and not any(isinstance(i, (list, dict)) for i in instances):
            return [[str(v) for v in instances]]
    return None
