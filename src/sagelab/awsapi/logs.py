"""CloudWatch Logs over the jobs' logs (service `logs`, AWS JSON 1.1 `X-Amz-Target: Logs_20140328.<Operation>`):
DescribeLogGroups, DescribeLogStreams, GetLogEvents and FilterLogEvents.

Each job of `job_records` with a log is a stream where SageMaker puts it: group `/aws/sagemaker/TrainingJobs`
(ProcessingJobs, TransformJobs), stream `<job name>/algo-1-<epoch of its start>`; a tuning job's training jobs are
training jobs. Its events are the log file's lines (a line longer than 256 KiB is cut in pieces, as CloudWatch cuts
events), a line still being written becoming one once it is whole or its job has ended.

A log file has no time per line: an event is stamped when this server first reads it, with the file's modification
time (no later than now, no earlier than the previous event or the job's start), so stamps only grow and a stamp once
given stays while the server runs. That is what the SageMaker SDK's `logs=True` loop needs: it asks again from the
last stamp it printed, skipping the events of that stamp it printed already. `nextForwardToken` and
`nextBackwardToken` are positions in the stream: at the end, the forward token comes back unchanged.

Where sagelab differs from CloudWatch: filter patterns are terms (`ERROR`, `"a phrase"`, `?either`, `-not`) or a
`%regular expression%`; JSON and space-delimited patterns are refused, naming them. A group exists once a job of its
type has run.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shlex
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelab.awsapi.errors import ApiError
from sagelab.awsapi.job_records import FINISHED, KINDS, Kind, jobs
from sagelab.awsapi.operations import Context, operation

_GROUPS = {kind.log_group: kind for kind in KINDS.values() if kind.log_group}
_LONGEST = 256 * 1024  # bytes: CloudWatch's largest event
_PAGE_BYTES = 1 << 20  # an answer holds at most 1 MiB of events, 26 bytes each besides its message (CloudWatch's count)
_TOKEN = re.compile(r"^([fb])/(\d+)$")


def _invalid(message: str) -> ApiError:
    return ApiError(message, code="InvalidParameterException")


def _not_found(message: str) -> ApiError:
    return ApiError(message, code="ResourceNotFoundException")


@dataclass(frozen=True)
class Stream:
    """A job's log as a log stream."""

    name: str
    path: Path
    created: float
    finished: bool


@dataclass
class _Index:
    """The events of one log file found so far: where each line is and its stamp (milliseconds)."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)
    scanned: int = 0  # bytes of whole lines indexed
    lock: threading.Lock = field(default_factory=threading.Lock)


_indexes: OrderedDict[Path, _Index] = OrderedDict()  # the most recently read files (the stamps they were given)
_indexes_lock = threading.Lock()
_KEPT = 512


def _group(request: dict[str, Any]) -> str:
    identifier = request.get("logGroupName") or request.get("logGroupIdentifier")
    if not identifier:
        raise _invalid("Either logGroupName or logGroupIdentifier must be given")
    return str(identifier).split(":log-group:", 1)[-1].removesuffix(":*")


def _streams(context: Context, group: str) -> tuple[Kind, list[Stream]]:
    """The group's job logs, oldest job first.

    Raises:
        ApiError: ResourceNotFoundException for a group no job of this project logs to.
    """
    kind = _GROUPS.get(group)
    found = jobs(context, kind) if kind else []
    if kind is None or not found:
        raise _not_found("The specified log group does not exist.")
    streams = []
    for job in found:
        path = job.log(context)
        if path is not None and path.is_file() and path.stat().st_size > 0:  # a stream appears when its container first writes
            streams.append(Stream(f"{job.name}/algo-1-{int(job.created)}", path, job.created, job.status in FINISHED))
    return kind, streams


def _index(stream: Stream) -> _Index:
    """The stream's events, indexed up to the end of the file's last whole line (or its end, once the job has ended)."""
    with _indexes_lock:
        index = _indexes.get(stream.path)
        if index is None:
            index = _indexes[stream.path] = _Index()
        _indexes.move_to_end(stream.path)
        while len(_indexes) > _KEPT:
            _indexes.popitem(last=False)
    with index.lock:
        try:
            with open(stream.path, "rb") as log:
                info = os.fstat(log.fileno())
                if info.st_size < index.scanned:  # replaced or truncated: index it anew
                    index.starts, index.ends, index.stamps, index.scanned = [], [], [], 0
                # New lines were written by the file's last change: stamped with it, never before an earlier stamp or the job's start.
                written = min(int(info.st_mtime * 1000), int(time.time() * 1000))
                stamp = max(index.stamps[-1] if index.stamps else 0, int(stream.created * 1000), written)
                log.seek(index.scanned)
                while piece := log.readline(_LONGEST):
                    whole = piece.endswith(b"\n") or len(piece) == _LONGEST or stream.finished
                    if not whole:
                        break  # the line is still being written
                    index.starts.append(index.scanned)
                    index.scanned += len(piece)
                    index.ends.append(index.scanned - (1 if piece.endswith(b"\n") else 0))
                    index.stamps.append(stamp)
        except OSError:
            pass
    return index


def _messages(stream: Stream, index: _Index, positions: list[int]) -> list[str]:
    """The messages of the events at `positions` (ascending), read in one go."""
    if not positions:
        return []
    first = index.starts[positions[0]]
    with open(stream.path, "rb") as log:
        log.seek(first)
        block = log.read(index.ends[positions[-1]] - first)
    return [block[index.starts[i] - first : index.ends[i] - first].decode("utf-8", "replace").rstrip("\r") for i in positions]


def _in_time(stamp: int, request: dict[str, Any]) -> bool:
    """startTime is inclusive, endTime exclusive (milliseconds since the epoch)."""
    start, end = request.get("startTime"), request.get("endTime")
    return (start is None or stamp >= start) and (end is None or stamp < end)


def _within_bytes(sizes: list[int], from_end: bool) -> int:
    """How many events (from the start, or from the end) fit in one answer's megabyte."""
    total, count = 0, 0
    for size in reversed(sizes) if from_end else sizes:
        total += size + 26
        if total > _PAGE_BYTES and count:
            break
        count += 1
    return count


@operation("GetLogEvents", service="logs")
def get_log_events(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """A stream's events forward from the start (startFromHead) or a forward token, or backward from its end or a backward token."""
    _, streams = _streams(context, _group(request))
    stream = next((s for s in streams if s.name == request["logStreamName"]), None)
    if stream is None:
        raise _not_found("The specified log stream does not exist.")
    index = _index(stream)
    count = len(index.stamps)
    token = request.get("nextToken")
    direction, position = ("f", 0) if request.get("startFromHead") else ("b", count)
    if token:
        parsed = _TOKEN.match(token)
        if parsed is None or int(parsed.group(2)) > count:
            raise _invalid("The specified nextToken is invalid.")
        direction, position = parsed.group(1), int(parsed.group(2))
    limit = int(request.get("limit") or 10000)
    if direction == "f":
        chosen = [i for i in range(position, count) if _in_time(index.stamps[i], request)][:limit]
    else:
        chosen = [i for i in range(position) if _in_time(index.stamps[i], request)][-limit:]
    messages = _messages(stream, index, chosen)
    fits = _within_bytes([len(m.encode()) for m in messages], from_end=direction == "b")
    if direction == "f":
        chosen, messages = chosen[:fits], messages[:fits]
    else:
        chosen, messages = chosen[len(chosen) - fits :], messages[len(messages) - fits :]
    events = [{"timestamp": index.stamps[i], "message": m, "ingestionTime": index.stamps[i]} for i, m in zip(chosen, messages)]
    return {"events": events, "nextForwardToken": f"f/{chosen[-1] + 1 if chosen else position}",
            "nextBackwardToken": f"b/{chosen[0] if chosen else position}"}  # fmt: skip


@operation("DescribeLogStreams", service="logs")
def describe_log_streams(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """The group's streams by name (or by their last event's time), 50 a page unless `limit` says fewer."""
    group = _group(request)
    prefix = request.get("logStreamNamePrefix", "")
    by_time = request.get("orderBy") == "LastEventTime"
    if by_time and prefix:
        raise _invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
    _, streams = _streams(context, group)
    group_arn = f"arn:aws:logs:{context.settings.region}:{context.settings.account}:log-group:{group}"
    described = []
    for stream in streams:
        if not stream.name.startswith(prefix):
            continue
        stamps = _index(stream).stamps
        entry: dict[str, Any] = {"logStreamName": stream.name, "creationTime": int(stream.created * 1000), "storedBytes": 0,
                                 "arn": f"{group_arn}:log-stream:{stream.name}"}  # fmt: skip
        if stamps:
            entry.update(firstEventTimestamp=stamps[0], lastEventTimestamp=stamps[-1], lastIngestionTime=stamps[-1])
        described.append(entry)
    described.sort(key=lambda s: (s.get("lastEventTimestamp", 0), s["logStreamName"]) if by_time else s["logStreamName"],
                   reverse=bool(request.get("descending")))  # fmt: skip
    shown, following = _page(described, request, 50)
    return {"logStreams": shown, "nextToken": following}


@operation("DescribeLogGroups", service="logs")
def describe_log_groups(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """The job log groups that exist in this project (a job of their type has run), by name."""
    prefix = request.get("logGroupNamePrefix", "")
    groups = []
    for name, kind in sorted(_GROUPS.items()):
        found = jobs(context, kind)
        if found and name.startswith(prefix):
            arn = f"arn:aws:logs:{context.settings.region}:{context.settings.account}:log-group:{name}"
            groups.append({"logGroupName": name, "creationTime": int(found[0].created * 1000), "storedBytes": 0, "arn": f"{arn}:*",
                           "logGroupArn": arn, "logGroupClass": "STANDARD"})  # fmt: skip
    shown, following = _page(groups, request, 50)
    return {"logGroups": shown, "nextToken": following}


@operation("FilterLogEvents", service="logs")
def filter_log_events(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Events of the group's streams (logStreamNames, or logStreamNamePrefix) matching filterPattern in the time range,
    by time across the streams, 10,000 a page (or `limit`)."""
    if request.get("logStreamNames") and request.get("logStreamNamePrefix"):
        raise _invalid("logStreamNames and logStreamNamePrefix are mutually exclusive; give one of them")
    _, streams = _streams(context, _group(request))
    if request.get("logStreamNames"):
        streams = [s for s in streams if s.name in request["logStreamNames"]]
    else:
        streams = [s for s in streams if s.name.startswith(request.get("logStreamNamePrefix", ""))]
    matches = _pattern(str(request.get("filterPattern", "")))
    found = []
    for stream in streams:
        index = _index(stream)
        positions = [i for i in range(len(index.stamps)) if _in_time(index.stamps[i], request)]
        for i, message in zip(positions, _messages(stream, index, positions)):
            if matches(message):
                stamp = index.stamps[i]
                found.append({"logStreamName": stream.name, "timestamp": stamp, "message": message, "ingestionTime": stamp,
                              "eventId": f"{stamp:013d}{zlib.crc32(stream.name.encode()):010d}{i:010d}"})  # fmt: skip
    found.sort(key=lambda e: (e["timestamp"], e["logStreamName"], e["eventId"]))
    shown, following = _page(found, request, 10000)
    fits = _within_bytes([len(e["message"].encode()) for e in shown], from_end=False)
    if fits < len(shown):
        start = _offset(request.get("nextToken"))
        shown, following = shown[:fits], _token(start + fits)
    return {"events": shown, "searchedLogStreams": [{"logStreamName": s.name, "searchedCompletely": True} for s in streams], "nextToken": following}


def _pattern(pattern: str) -> Any:
    """A filter pattern as a test of a message: terms all present (`?term`: any of these; `-term`: absent), or a %regex%."""
    pattern = pattern.strip()
    if not pattern:
        return lambda message: True
    if len(pattern) > 1 and pattern.startswith("%") and pattern.endswith("%"):
        try:
            compiled = re.compile(pattern[1:-1])
        except re.error as exc:
            raise _invalid(f"Invalid regular expression in filterPattern {pattern!r}: {exc}") from None
        return lambda message: compiled.search(message) is not None
    if pattern[0] in "{[":
        raise _invalid(f"sagelab's local API does not serve JSON or space-delimited filter patterns ({pattern!r}); filter with terms "
                       '(ERROR, "a phrase", ?either, -not) or a %regular expression%')  # fmt: skip
    try:
        terms = shlex.split(pattern)
    except ValueError as exc:
        raise _invalid(f"Invalid filterPattern {pattern!r}: {exc}") from None
    anyof = [t[1:] for t in terms if t.startswith("?") and len(t) > 1]
    excluded = [t[1:] for t in terms if t.startswith("-") and len(t) > 1]
    required = [t for t in terms if not (t.startswith(("?", "-")) and len(t) > 1)]
    return lambda message: (all(t in message for t in required) and not any(t in message for t in excluded)
                            and (not anyof or any(t in message for t in anyof)))  # fmt: skip


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _invalid("The specified nextToken is invalid.") from None


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _page(items: list[Any], request: dict[str, Any], default: int) -> tuple[list[Any], str | None]:
    """One page of `items` (`limit` of them) and the token of the next, if there is one."""
    start = _offset(request.get("nextToken"))
    end = start + int(request.get("limit") or default)
    return items[start:end], _token(end) if end < len(items) else None
