"""Regenerate src/sagelab/definition/request_shapes.json from botocore's SageMaker model.

A step's Arguments are the request of the SageMaker API call the pipeline makes for it
(CreateProcessingJob for a Processing step, ...). The validator checks them against these
shapes — member names, types, enums, required members, ranges — without importing botocore.

    python tools/gen_request_shapes.py   (needs botocore installed)

The file holds `requests` (step type → [operation, input shape, members the pipeline fills in])
and `shapes` (name → shape) for every shape reachable from those inputs. A shape is
`{"type": "structure", "members": {name: ref}, "required": [...]}`, `{"type": "list", "member": ref}`,
`{"type": "map", "key": ref, "value": ref}` or a scalar `{"type": "string", "enum": [...]}`, with
`min`/`max` where botocore has them. A ref is a shape name, or a bare type name ("string",
"integer", ...) for a scalar with no constraint. Patterns are left out: they are Java regular
expressions, and botocore does not check them either.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.session

# Step type → the API operation SageMaker Pipelines calls for it, and the members the pipeline
# service fills in itself (the SDK never writes a job's name into a definition).
STEP_REQUESTS = {
    "Processing": ("CreateProcessingJob", ("ProcessingJobName",)),
    "QualityCheck": ("CreateProcessingJob", ("ProcessingJobName",)),
    "ClarifyCheck": ("CreateProcessingJob", ("ProcessingJobName",)),
    "Training": ("CreateTrainingJob", ("TrainingJobName",)),
    "Transform": ("CreateTransformJob", ("TransformJobName",)),
    "Tuning": ("CreateHyperParameterTuningJob", ("HyperParameterTuningJobName",)),
    "Model": ("CreateModel", ("ModelName",)),
    "RegisterModel": ("CreateModelPackage", ()),
    "EndpointConfig": ("CreateEndpointConfig", ("EndpointConfigName",)),
    "Endpoint": ("CreateEndpoint", ("EndpointName",)),
    "AutoML": ("CreateAutoMLJob", ("AutoMLJobName",)),
}
OUT = Path(__file__).resolve().parents[1] / "src/sagelab/definition/request_shapes.json"


def convert(shape: Any, shapes: dict[str, Any]) -> str:
    """The ref of `shape`, adding it (and what it reaches) to `shapes`."""
    constraints = {key: shape.metadata[key] for key in ("min", "max") if key in shape.metadata}
    if shape.type_name not in ("structure", "list", "map") and not constraints and not getattr(shape, "enum", None):
        return str(shape.type_name)
    if shape.name in shapes:
        return str(shape.name)
    entry: dict[str, Any] = {"type": shape.type_name, **constraints}
    shapes[shape.name] = entry  # before the members: shapes can be recursive
    if shape.type_name == "structure":
        entry["members"] = {name: convert(member, shapes) for name, member in shape.members.items()}
        if shape.required_members:
            entry["required"] = list(shape.required_members)
    elif shape.type_name == "list":
        entry["member"] = convert(shape.member, shapes)
    elif shape.type_name == "map":
        entry["key"], entry["value"] = convert(shape.key, shapes), convert(shape.value, shapes)
    elif getattr(shape, "enum", None):
        entry["enum"] = list(shape.enum)
    return str(shape.name)


def main() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shapes: dict[str, Any] = {}
    requests = {}
    for step, (operation, filled) in STEP_REQUESTS.items():
        requests[step] = [operation, convert(model.operation_model(operation).input_shape, shapes), list(filled)]
    document = {"botocore": botocore.__version__, "requests": requests, "shapes": dict(sorted(shapes.items()))}
    OUT.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(shapes)} shapes, botocore {botocore.__version__})")


if __name__ == "__main__":
    main()
