"""Regenerate src/sagelab/definition/describe_shapes.json from botocore's SageMaker model.

Step properties are the Describe* responses of the step's job type. The validator checks
`{"Get": "Steps.S.<path>"}` against these shapes without importing botocore at run time.

    python tools/gen_describe_shapes.py   (needs botocore installed)

Each shape becomes: a dict of member → shape for structures, `["list", item]` for lists,
`["map", value]` for maps, and a type name ("string", "integer", ...) for scalars.
"""

from __future__ import annotations

import json
from pathlib import Path

import botocore.session

# Step type → the response shapes its properties follow (their members merged, as the SDK's
# `Properties(shape_names=[...])` does: a Tuning step also lists its TrainingJobSummaries).
STEP_SHAPES = {
    "Processing": ("DescribeProcessingJobResponse",),
    "Training": ("DescribeTrainingJobResponse",),
    "Transform": ("DescribeTransformJobResponse",),
    "Tuning": ("DescribeHyperParameterTuningJobResponse", "ListTrainingJobsForHyperParameterTuningJobResponse"),
    "Model": ("DescribeModelOutput",),
    "RegisterModel": ("DescribeModelPackageOutput",),
    "EndpointConfig": ("DescribeEndpointConfigOutput",),
    "Endpoint": ("DescribeEndpointOutput",),
    "AutoML": ("DescribeAutoMLJobResponse",),
}
MAX_DEPTH = 12
OUT = Path(__file__).resolve().parents[1] / "src/sagelab/definition/describe_shapes.json"


def convert(shape, depth: int = 0):  # type: ignore[no-untyped-def]
    if depth > MAX_DEPTH:
        return "any"
    if shape.type_name == "structure":
        return {name: convert(member, depth + 1) for name, member in shape.members.items()}
    if shape.type_name == "list":
        return ["list", convert(shape.member, depth + 1)]
    if shape.type_name == "map":
        return ["map", convert(shape.value, depth + 1)]
    return shape.type_name


def main() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shapes = {step: {k: v for name in names for k, v in convert(model.shape_for(name)).items()} for step, names in STEP_SHAPES.items()}
    OUT.write_text(json.dumps(shapes, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
