"""Step caching: reuse a previous successful run of a step instead of running it again.

Two modes, chosen per run:
- "sagemaker" (default): as SageMaker does, only steps with CacheConfig Enabled are cached,
  keyed by their resolved arguments, and an entry lives for the step's ExpireAfter.
- "content": every job step is cached, and the key also holds the content of the step's
  code and input data (with this execution's id left out), so a changed script or input
  invalidates exactly the steps downstream of it. Entries do not expire unless the step
  sets ExpireAfter.
- "off": nothing is reused.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from sagelab.definition import Step
from sagelab.engines.local.records import CacheEntry, Records
from sagelab.errors import ExecutionError, StoreError
from sagelab.store import ObjectStore, parse_s3_uri

MODES = ("sagemaker", "content", "off")
CACHEABLE = {"Processing", "Training", "Transform", "Tuning"}
_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def expire_after_seconds(duration: str) -> float:
    """Seconds in an ISO-8601 duration such as P30D or PT1H (a month counts 30 days, a year 365)."""
    match = _DURATION.match(duration or "")
    if not match or duration in ("P", "PT"):
        raise ExecutionError(f"ExpireAfter {duration!r} is not an ISO-8601 duration such as P30D, PT12H or P1DT6H")
    years, months, weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return ((((years * 365 + months * 30 + weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60) + seconds


@dataclass(frozen=True)
class Decision:
    """Whether a step is taken from the cache, and why (shown in the run view)."""

    key: str | None
    hit: CacheEntry | None
    note: str


class StepCache:
    def __init__(self, records: Records, store: ObjectStore, mode: str, pipeline: str, environment: str = "image") -> None:
        if mode not in MODES:
            raise ExecutionError(f"cache mode {mode!r} is not one of {', '.join(MODES)}")
        self.records, self.store, self.mode, self.pipeline = records, store, mode, pipeline
        self.environment = environment  # a run on the images' packages never reuses one on sagelab's own, nor back
        self._digests: dict[str, str] = {}

    def decide(self, step: Step, arguments: dict[str, Any], execution_id: str, now: float) -> Decision:
        configured = step.cache_config is not None and step.cache_config.enabled
        if step.type not in CACHEABLE or self.mode == "off" or (self.mode == "sagemaker" and not configured):
            return Decision(None, None, "caching is off for this step")
        key = self._key(step, arguments, execution_id)
        expire = step.cache_config.expire_after if step.cache_config and step.cache_config.expire_after else None
        horizon = now - expire_after_seconds(expire) if expire else 0.0
        entry = self.records.cache_get(key, horizon)
        if entry is not None and self._outputs_exist(entry):
            return Decision(key, entry, f"cached: reused from execution {entry.execution_id}")
        history = self.records.cache_history(self.pipeline, step.name)
        if any(k == key for k, _ in history):
            return Decision(key, None, "ran: its earlier run expired or its outputs are gone")
        if history:
            what = "code or input data changed" if self.mode == "content" else "arguments changed"
            return Decision(key, None, f"ran: its {what} since the last run")
        return Decision(key, None, "ran: no earlier run to reuse")

    def save(self, decision: Decision, step: Step, execution_id: str, properties: dict[str, Any], outputs: list[str]) -> None:
        if decision.key is not None:
            self.records.cache_put(decision.key, self.pipeline, step.name, execution_id, properties, outputs)

    def _key(self, step: Step, arguments: dict[str, Any], execution_id: str) -> str:
        keyed: dict[str, Any] = {"Type": step.type, "Arguments": arguments, **({"Environment": "host"} if self.environment == "host" else {})}
        text = json.dumps(keyed, sort_keys=True, default=str)
        if self.mode == "content":
            # Inputs are known by their content, wherever they are; outputs of this execution
            # are named after it, so its id is left out.
            for uri in sorted(input_uris(step.type, arguments), key=len, reverse=True):
                text = re.sub(re.escape(uri) + r'(?=\\?")', self._digest(uri), text)
            text = text.replace(execution_id, "{PipelineExecutionId}")
        return hashlib.sha256(text.encode()).hexdigest()

    def _digest(self, uri: str) -> str:
        """The content of the objects under `uri`, or the URI itself when nothing is there."""
        if uri not in self._digests:
            digest = hashlib.sha256()
            try:
                objects = list(self.store.list(uri))
            except StoreError:
                objects = []
            for info in objects:
                digest.update(info.key[len(parse_s3_uri(uri).key) :].encode() + b"\0")
                with self.store.open(info.uri) as stream:
                    for chunk in iter(lambda: stream.read(1 << 20), b""):
                        digest.update(chunk)
            self._digests[uri] = f"content:{digest.hexdigest()}" if objects else uri
        return self._digests[uri]

    def _outputs_exist(self, entry: CacheEntry) -> bool:
        """A reused run's outputs must still be in the store (gc may have removed them)."""
        for uri in entry.outputs:
            if uri.startswith("s3://"):
                try:
                    next(iter(self.store.list(uri)))
                except (StopIteration, StoreError):
                    return False
        return True


def input_uris(step_type: str, arguments: dict[str, Any]) -> list[str]:
    """The S3 URIs a job reads: processing inputs, training channels and code, transform input."""
    uris: list[Any] = []
    if step_type == "Processing":
        uris = [i.get("S3Input", {}).get("S3Uri") for i in arguments.get("ProcessingInputs", [])]
    elif step_type == "Training":
        uris = _training_uris(arguments, "HyperParameters")
    elif step_type == "Tuning":
        definitions = arguments.get("TrainingJobDefinitions") or [arguments.get("TrainingJobDefinition") or {}]
        uris = [uri for definition in definitions for uri in _training_uris(definition, "StaticHyperParameters")]
    elif step_type == "Transform":
        uris = [arguments.get("TransformInput", {}).get("DataSource", {}).get("S3DataSource", {}).get("S3Uri")]
    return [u for u in uris if isinstance(u, str) and u.startswith("s3://")]


def _training_uris(job: dict[str, Any], hyperparameters: str) -> list[Any]:
    """A training job's channels and its code (`sagemaker_submit_directory`, JSON-quoted by the v2 SDK)."""
    uris: list[Any] = [c.get("DataSource", {}).get("S3DataSource", {}).get("S3Uri") for c in job.get("InputDataConfig", [])]
    submit = job.get(hyperparameters, {}).get("sagemaker_submit_directory")
    uris.append(json.loads(submit) if isinstance(submit, str) and submit.startswith('"') else submit)
    return uris
