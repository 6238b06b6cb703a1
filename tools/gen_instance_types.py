"""Regenerate src/sagelab/cost/instance_types.json from botocore's SageMaker model.

The catalog lists the `ml.*` types SageMaker accepts for each use: the instance-type enums of the
requests that take them. Run after upgrading boto3, to take AWS's new types in:

    python tools/gen_instance_types.py   (needs botocore installed)
"""

from __future__ import annotations

import json
from pathlib import Path

import botocore
import botocore.session

# sagelab's use → the enum of the request field that names the instance type for it.
ENUMS = {
    "training": "TrainingInstanceType",
    "processing": "ProcessingInstanceType",
    "hosting": "ProductionVariantInstanceType",
    "transform": "TransformInstanceType",
    "notebook": "InstanceType",  # CreateNotebookInstance
    "studio": "AppInstanceType",  # Studio apps (JupyterLab, Code Editor, kernel gateways)
}
OUT = Path(__file__).resolve().parents[1] / "src/sagelab/cost/instance_types.json"


def main() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    uses = {use: sorted(t for t in model.shape_for(shape).enum if t.startswith("ml.")) for use, shape in ENUMS.items()}
    document = {"source": f"botocore {botocore.__version__} SageMaker service model", "uses": uses}
    OUT.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    print(f"wrote {OUT}: {len(set().union(*uses.values()))} types ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
