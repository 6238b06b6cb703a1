"""The Python API: run pipelines and read their executions from notebooks and scripts, here or on SageMaker.

    >>> import sagelab
    >>> execution = sagelab.run("pipelines/diabetes.py:pipeline", parameters={"MseThreshold": 4000})  # doctest: +SKIP
    >>> execution.status, execution.outputs["Preprocess"]["train"]  # doctest: +SKIP
    >>> execution.read("Preprocess/train", header=None)   # a DataFrame  # doctest: +SKIP
    >>> sagelab.executions("diabetes")                     # one row per execution: parameters, metrics  # doctest: +SKIP

The profile (`[tool.sagelab.profiles]` in pyproject.toml) picks where executions run and are read:
this machine, or SageMaker Pipelines; the objects handed back are the same either way. The CLI
asks the same backends (`sagelab.api.backends`).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sagelab.api.model import Execution, Step

if TYPE_CHECKING:
    import pandas

__all__ = ["Execution", "Run", "Step", "execution", "executions", "run"]


def run(pipeline: Any, parameters: Mapping[str, Any] | None = None, *, profile: str = "local", name: str | None = None,
        cache: str | None = None, wait: bool = True, progress: bool = True) -> Execution | Run:  # fmt: skip
    """Run a pipeline to its end (or, with `wait=False`, in the background) and return its execution.

    Args:
        pipeline: a definition JSON file or `module:attribute` (as `sagelab run` takes), a sagelab or
            SageMaker SDK `Pipeline` object, or a definition as a dict or JSON string.
        parameters: values for the pipeline's parameters, by name.
        profile: where it runs: "local" (this machine) or a profile of `[tool.sagelab.profiles]`.
        name: the pipeline's name (default: the file's or attribute's, or the object's `name`).
        cache: "sagemaker" (honour CacheConfig), "content" or "off"; default: [tool.sagelab] cache. Local runs only.
        wait: False returns a `Run` at once; its `wait()` gives the execution.
        progress: print a line as each step changes status.

    Raises:
        DefinitionError, ParameterError, ConfigError: the pipeline, its parameters or the profile are wrong.
    """
    from sagelab.api.backends import backend_for
    from sagelab.api.loading import load_pipeline
    from sagelab.config import load_settings

    settings = load_settings(profile=profile)
    backend = backend_for(settings)
    loaded = load_pipeline(pipeline, settings, name=name)
    values = dict(parameters or {})
    if not wait:
        return Run(lambda: backend.start(loaded, values, cache=cache, listener=_printer() if progress else None))
    return backend.start(loaded, values, cache=cache, listener=_printer() if progress else None)


def execution(reference: str = "latest", *, profile: str = "local") -> Execution:
    """An execution by id (or a unique start of one), ARN, or "latest".

    Raises:
        ExecutionError: no such execution (or nothing has run in this project yet).
    """
    from sagelab.api.backends import backend_for
    from sagelab.config import load_settings

    return backend_for(load_settings(profile=profile)).execution(reference)


def executions(pipeline: str | None = None, *, profile: str = "local", limit: int = 50) -> pandas.DataFrame:
    """The newest executions as a DataFrame, one row each, to compare runs: `id`, `pipeline`, `status`,
    `started`, `ended`, `duration`, then `params.<name>` and `metrics.<name>` columns (as `Execution.metrics`
    names them: `Train.validation:rmse`, `Evaluate.evaluation.regression_metrics.mse.value`).

    On SageMaker each execution costs a few API calls (its parameters, definition and jobs); keep `limit` small there.
    """
    try:
        import pandas as pd
    except ImportError:
        from sagelab.errors import ExecutionError

        raise ExecutionError("sagelab.executions() returns a pandas DataFrame: pip install pandas") from None
    from sagelab.api.backends import backend_for
    from sagelab.config import load_settings

    rows = []
    for found in backend_for(load_settings(profile=profile)).executions(pipeline, limit):
        row: dict[str, Any] = {"id": found.id, "pipeline": found.pipeline, "status": found.status, "started": found.started,
                               "ended": found.ended, "duration": found.duration}  # fmt: skip
        row.update({f"params.{key}": value for key, value in found.parameters.items()})
        row.update({f"metrics.{key}": value for key, value in found.metrics.items()})
        rows.append(row)
    columns = ["id", "pipeline", "status", "started", "ended", "duration"]
    return pd.DataFrame(rows, columns=[*columns, *sorted({key for row in rows for key in row} - set(columns))])


class Run:
    """A run going on in the background (`sagelab.run(..., wait=False)`)."""

    def __init__(self, start: Any) -> None:
        self._result: Execution | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(start,), name="sagelab-run", daemon=True)
        self._thread.start()

    def _work(self, start: Any) -> None:
        try:
            self._result = start()
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
            self._error = exc

    @property
    def done(self) -> bool:
        """Whether the run has ended (`wait()` then returns at once)."""
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> Execution:
        """The finished execution; raises what the run raised (a bad definition, parameters, ...).

        Raises:
            TimeoutError: it is still running after `timeout` seconds.
        """
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the run is still going after {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def _printer() -> Any:
    """A listener printing one line when a step changes status, for terminals and notebooks alike."""
    said: dict[str, str] = {}

    def listener(execution: Any, state: Any) -> None:
        if state is None or said.get(state.name) == state.status:
            return
        said[state.name] = state.status
        took = f" in {state.ended - state.started:.1f}s" if state.ended and state.started else ""
        reason = f": {state.failure_reason.splitlines()[0]}" if state.failure_reason else ""
        print(f"{execution.pipeline} {execution.id} {state.name}: {state.status}{took}{reason}", file=sys.stdout, flush=True)

    return listener
