"""Batch transform: run a model's handlers over every file of a folder, as a SageMaker transform job does.

    python -m sagelab.serving.batch --model MODEL_DIR --input DIR --output DIR [--content-type T]
        [--accept A] [--split-type None|Line] [--batch-strategy SingleRecord|MultiRecord]
        [--assemble-with None|Line] [--max-payload-mb 6] [--input-filter JSONPATH]
        [--join-source None|Input] [--output-filter JSONPATH]

Every file under the input folder (recursively) becomes `<output>/<relative path>.out`, written
atomically. SplitType None sends a whole file as one request; Line splits it into records (one
a line; blank lines are skipped). SingleRecord sends one record a request; MultiRecord packs
records, joined with newlines, up to MaxPayloadInMB (0: no limit). Without a BatchStrategy or
MaxPayloadInMB, the model's /execution-parameters answer decides (MultiRecord, 6 MB), as
SageMaker asks the container. AssembleWith None concatenates the responses as they are; Line
ends each with exactly one newline. DataProcessing (InputFilter, JoinSource, OutputFilter) is
in dataprocessing.py; with a join or an output filter each response must hold one output per
record (one line each, or a JSON array of them).

A pipeline model (a .json description, see pipeline_model.py) is served by its own front server
for the job, and each request runs through its containers as an endpoint's would; the job's
Accept goes to the last container.

Like SageMaker, a failed file gets no output and the other files still run; the job then fails
naming each failed file and record. Not emulated: SplitType RecordIO/TFRecord, CompressionType
Gzip, MaxConcurrentTransforms (records are sent one request at a time, in order), and S3 inputs
(use the store to materialise them into a folder first).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sagelab.errors import ModelError, SagelabError
from sagelab.serving import dataprocessing as dp
from sagelab.serving.handlers import InferenceHandler, load_handler
from sagelab.serving.pipeline_model import is_pipeline_model
from sagelab.serving.protocol import Reply, ServingSettings

logger = logging.getLogger("sagelab.serving")
_CHOICES = {
    "split_type": ("None", "Line"),
    "batch_strategy": ("SingleRecord", "MultiRecord"),
    "assemble_with": ("None", "Line"),
    "join_source": ("None", "Input"),
}


@dataclass(frozen=True)
class TransformConfig:
    """The parts of a CreateTransformJob request that shape the requests and the output files."""

    content_type: str | None = None
    accept: str | None = None
    split_type: str = "None"
    batch_strategy: str | None = None
    assemble_with: str = "None"
    max_payload_mb: float | None = None
    input_filter: str | None = None
    join_source: str = "None"
    output_filter: str | None = None

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ModelError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.max_payload_mb is not None and self.max_payload_mb < 0:
            raise ModelError(f"max_payload_mb must be 0 (no limit) or more, got {self.max_payload_mb}")
        for path in (self.input_filter, self.output_filter):
            if path is not None:
                dp.compile_path(path)

    @property
    def processes_records(self) -> bool:
        return self.join_source == "Input" or (self.output_filter is not None and self.output_filter.strip() != "$")


@dataclass
class TransformResult:
    """What a transform wrote."""

    outputs: list[Path] = field(default_factory=list)
    records: int = 0
    requests: int = 0


class _RecordError(Exception):
    pass


class _Model(Protocol):
    """What a transform asks of a model: an InferenceHandler, or a RemoteModel for a pipeline model."""

    default_accept: str

    def handle(self, body: bytes, content_type: str | None = None, accept: str | None = None,
               headers: dict[str, str] | None = None) -> Reply: ...  # fmt: skip

    def execution_parameters(self, workers: int) -> Reply: ...


def _records(data: bytes, split_type: str) -> list[tuple[int, bytes]]:
    """(line number, record) pairs; the whole file is record 1 without splitting."""
    if split_type == "None":
        return [(1, data)]
    return [(n, line.rstrip(b"\r")) for n, line in enumerate(data.split(b"\n"), 1) if line.strip()]


def _where(records: list[tuple[int, bytes]], split_type: str) -> str:
    if split_type == "None":
        return "the whole file"
    first, last = records[0][0], records[-1][0]
    return f"line {first}" if first == last else f"lines {first}-{last}"


def _pack(records: list[tuple[int, bytes]], strategy: str, limit: int | None, split_type: str) -> list[list[tuple[int, bytes]]]:
    """Group records into requests: one each, or as many as fit in `limit` bytes."""
    for number, record in records:
        if limit is not None and len(record) > limit:
            what = "the file" if split_type == "None" else f"the record at line {number}"
            hint = "; split it with SplitType Line" if split_type == "None" else ""
            raise _RecordError(f"{what} is {len(record)} bytes, more than MaxPayloadInMB allows ({limit} bytes){hint}")
    if strategy == "SingleRecord":
        return [[r] for r in records]
    groups: list[list[tuple[int, bytes]]] = []
    size = 0
    for item in records:
        extra = len(item[1]) + (1 if groups and groups[-1] else 0)
        if groups and (limit is None or size + extra <= limit):
            groups[-1].append(item)
            size += extra
        else:
            groups.append([item])
            size = len(item[1])
    return groups


def _split_output(body: bytes, count: int, out_fmt: str) -> list[bytes]:
    """One output per record of a request: the lines of the response, or a JSON array's elements."""
    if count == 1:
        return [body.strip(b"\r\n")]
    lines = [line for line in body.splitlines() if line.strip()]
    if len(lines) == count:
        return lines
    if out_fmt == "json":
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, list) and len(document) == count:
            return [json.dumps(item).encode() for item in document]
    raise _RecordError(f"the response has {len(lines)} lines for {count} records; JoinSource and OutputFilter need one "
                       "output per record (a line each, or a JSON array): use SingleRecord or adjust output_fn")  # fmt: skip


def _execution_parameters(handler: _Model) -> dict[str, Any]:
    """What the model's GET /execution-parameters answers; SageMaker uses it for unset job fields."""
    try:
        parameters = json.loads(handler.execution_parameters(1).body or b"{}")
    except Exception:  # a user's execution_parameters_fn that fails or answers oddly: use the defaults
        return {}
    return parameters if isinstance(parameters, dict) else {}


class _FileTransform:
    """Turns one input file into the bytes of its .out file."""

    def __init__(self, handler: _Model, config: TransformConfig) -> None:
        self.handler = handler
        self.config = config
        parameters = _execution_parameters(handler)
        self.strategy = config.batch_strategy or ("MultiRecord" if parameters.get("BatchStrategy") == "MULTI_RECORD" else "SingleRecord")
        payload_mb = config.max_payload_mb if config.max_payload_mb is not None else float(parameters.get("MaxPayloadInMB", 6))
        self.limit = int(payload_mb * 1048576) if payload_mb > 0 else None
        self.filter = dp.input_filter(config.input_filter, config.content_type)
        self.fmt = self.out_fmt = ""
        if config.processes_records:
            self.fmt = dp.record_format(config.content_type)
            self.out_fmt = dp.record_format(config.accept or handler.default_accept)
            if config.split_type == "Line" and config.assemble_with != "Line":
                raise ModelError("JoinSource Input and OutputFilter need AssembleWith Line when SplitType is Line")
        self.requests = 0

    def run(self, data: bytes) -> tuple[bytes, int]:
        config = self.config
        records = _records(data, config.split_type)
        if self.filter is not None:
            filtered = []
            for number, raw in records:
                try:
                    filtered.append((number, self.filter(raw)))
                except ValueError as exc:
                    raise _RecordError(f"{_where([(number, raw)], config.split_type)}: InputFilter {config.input_filter}: {exc}") from None
            sent = filtered
        else:
            sent = records
        originals = dict(records)
        pieces: list[bytes] = []
        for group in _pack(sent, self.strategy, self.limit, config.split_type):
            body = group[0][1] if len(group) == 1 else b"\n".join(record for _, record in group)
            reply = self.handler.handle(body, config.content_type, config.accept)
            self.requests += 1
            if reply.status >= 400:
                message = reply.body.decode("utf-8", "replace").strip()
                raise _RecordError(f"{_where(group, config.split_type)}: the model answered {reply.status}: {message}")
            if not config.processes_records:
                pieces.append(reply.body)
                continue
            try:
                outputs = _split_output(reply.body, len(group), self.out_fmt)
                for (number, _), output in zip(group, outputs):
                    pieces.append(self._record_output(originals[number], output))
            except (_RecordError, ValueError) as exc:
                raise _RecordError(f"{_where(group, config.split_type)}: {exc}") from None
        if config.assemble_with == "Line":
            return b"".join(piece.rstrip(b"\r\n") + b"\n" for piece in pieces), len(records)
        return b"".join(pieces), len(records)

    def _record_output(self, original: bytes, output: bytes) -> bytes:
        config = self.config
        if config.join_source == "Input":
            value: Any = dp.join(dp.parse_record(original, self.fmt), output, self.fmt, self.out_fmt)
            fmt = self.fmt
        else:
            value, fmt = dp.parse_record(output, self.out_fmt), self.out_fmt
        return dp.dump_record(dp.apply_path(config.output_filter, value), fmt)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def transform(model: Path | InferenceHandler, input_path: Path, output_dir: Path,
              config: TransformConfig | None = None, settings: ServingSettings | None = None) -> TransformResult:  # fmt: skip
    """Run a batch transform over every file under `input_path` (or that one file).

    Args:
        model: a model folder or model.tar.gz, a pipeline model's description (.json), or a
            handler already loaded.
        input_path: a folder (walked recursively) or a single file.
        output_dir: where `<relative path>.out` files go.
        config: the job's content types, splitting, batching, assembly and filters.
        settings: serving settings for loading the model (default: SAGEMAKER_* variables).

    Raises:
        ModelError: a setting is wrong, or some files failed (each named, with the record);
            the files that succeeded are written.
    """
    config = config or TransformConfig()
    if not isinstance(model, InferenceHandler) and is_pipeline_model(model):
        from sagelab.serving.remote import pipeline_front

        with pipeline_front(Path(model), settings or ServingSettings.from_env()) as remote:
            return _transform(remote, Path(input_path), Path(output_dir), config)
    handler = model if isinstance(model, InferenceHandler) else load_handler(Path(model), settings or ServingSettings.from_env())
    return _transform(handler, Path(input_path), Path(output_dir), config)


def _transform(handler: _Model, input_path: Path, output_dir: Path, config: TransformConfig) -> TransformResult:
    job = _FileTransform(handler, config)
    if input_path.is_file():
        files = [(input_path, Path(input_path.name))]
    elif input_path.is_dir():
        files = [(p, p.relative_to(input_path)) for p in sorted(input_path.rglob("*")) if p.is_file()]
    else:
        raise ModelError(f"no input at {input_path}")
    if not files:
        raise ModelError(f"{input_path} has no files to transform")
    result, failures = TransformResult(), []
    for path, relative in files:
        try:
            data, count = job.run(path.read_bytes())
        except _RecordError as exc:
            failures.append(f"{relative}: {exc}")
            continue
        target = output_dir / relative.parent / f"{relative.name}.out"
        _write_atomically(target, data)
        result.outputs.append(target)
        result.records += count
    result.requests = job.requests
    if failures:
        listed = "\n".join(f"  - {failure}" for failure in failures)
        raise ModelError(f"batch transform failed for {len(failures)} of {len(files)} files (no output written for them):\n{listed}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sagelab.serving.batch", description="Batch transform over a folder, as SageMaker runs it.")
    parser.add_argument("--model", required=True, type=Path, help="model folder or model.tar.gz")
    parser.add_argument("--input", required=True, type=Path, help="input folder (read recursively) or file")
    parser.add_argument("--output", required=True, type=Path, help="output folder")
    parser.add_argument("--content-type", help="TransformInput.ContentType")
    parser.add_argument("--accept", help="TransformOutput.Accept")
    parser.add_argument("--split-type", default="None", choices=_CHOICES["split_type"])
    parser.add_argument("--batch-strategy", default=None, choices=_CHOICES["batch_strategy"], help="default: the model's execution parameters")
    parser.add_argument("--assemble-with", default="None", choices=_CHOICES["assemble_with"])
    parser.add_argument("--max-payload-mb", type=float, default=None, help="default: the model's execution parameters (6); 0: no limit")
    parser.add_argument("--input-filter", help="JSONPath selecting what is sent, e.g. '$[1:]' or '$.features'")
    parser.add_argument("--join-source", default="None", choices=_CHOICES["join_source"])
    parser.add_argument("--output-filter", help="JSONPath selecting what is written, e.g. \"$['id','SageMakerOutput']\"")
    args = parser.parse_args(argv)
    from sagelab.serving.server import configure_logging

    configure_logging()
    try:
        config = TransformConfig(args.content_type, args.accept, args.split_type, args.batch_strategy, args.assemble_with,
                                 args.max_payload_mb, args.input_filter, args.join_source, args.output_filter)  # fmt: skip
        result = transform(args.model, args.input, args.output, config)
    except SagelabError as exc:
        print(f"sagelab: {exc}", file=sys.stderr)
        return 1
    print(f"transformed {len(result.outputs)} files ({result.records} records, {result.requests} requests) into {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
