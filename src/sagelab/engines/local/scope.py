"""`ExecutionScope`: what expressions see during one local execution."""

from __future__ import annotations

import json
from typing import Any

from sagelab.definition import ExpressionError, PipelineDefinition
from sagelab.definition.expressions import walk
from sagelab.errors import StoreError
from sagelab.engines.local.job import now_iso
from sagelab.store import ObjectStore


class ExecutionScope:
    """Parameters, execution variables, and the properties of the steps that have finished."""

    def __init__(
        self, definition: PipelineDefinition, parameters: dict[str, Any], variables: dict[str, Any], store: ObjectStore
    ) -> None:
        self.definition = definition
        self.parameters = parameters
        self.variables = variables
        self.store = store
        self.properties: dict[str, dict[str, Any]] = {}

    def parameter(self, name: str) -> Any:
        return self.parameters[name]

    def execution_variable(self, name: str) -> Any:
        if name == "CurrentDateTime":
            return now_iso()
        return self.variables[name]

    def step_properties(self, name: str) -> dict[str, Any]:
        if name not in self.properties:
            raise ExpressionError(f"step {name} has not run, so its properties do not exist")
        return self.properties[name]

    def property_file_uri(self, step: str, name: str) -> str:
        declared = {f.name: f for f in self.definition.step(step).property_files}
        if name not in declared:
            raise ExpressionError(f"step {step} declares no property file {name}")
        output = walk(self.step_properties(step), ["ProcessingOutputConfig", "Outputs", declared[name].output_name], f"Steps.{step}")
        return f"{output['S3Output']['S3Uri'].rstrip('/')}/{declared[name].file_path}"

    def read_json(self, uri: str) -> Any:
        try:
            return json.loads(self.store.get_bytes(uri))
        except StoreError as exc:
            raise ExpressionError(f"Std:JsonGet: {exc}") from None
        except ValueError as exc:
            raise ExpressionError(f"Std:JsonGet: {uri} is not valid JSON: {exc}") from None
