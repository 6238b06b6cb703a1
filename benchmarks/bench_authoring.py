"""Import the authoring library and build a 10-step definition: sagelab.pipeline vs the SageMaker SDK.

Usage: python benchmarks/bench_authoring.py [--runs 10] [--sdk-python /path/to/venv/bin/python]

Both sides are timed inside a fresh interpreter, from just before the first import of the
authoring library to the finished definition JSON; sagelab is also timed as a whole process.
The SDK needs an AWS session even to build, so its side runs inside moto's mock_aws (moto
is imported and started before the clock starts, and no step uploads code). The SDK side is
skipped when --sdk-python (default: /work/venvs/sdk2/bin/python, see tests/fixtures/sdk/README.md)
does not exist.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

STEPS = 10

SAGELAB = f"""
import time
start = time.perf_counter()
from sagelab.pipeline import Parameter, Pipeline, processing
count = Parameter.integer("Count", 1)
steps, previous = [], None
for i in range({STEPS}):
    step = processing(f"Step{{i}}", command=["python3", "-c", "pass"], image="123456789012.dkr.ecr.us-east-1.amazonaws.com/img:1",
                      instance_count=count, outputs=["out"], inputs={{"in": previous.outputs["out"]}} if previous else None)
    steps.append(step)
    previous = step
text = Pipeline("Bench", steps, bucket="bench-bucket", region="us-east-1", role="arn:aws:iam::123456789012:role/R").definition()
print(time.perf_counter() - start)
"""

SDK = f"""
import os, time
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
import boto3, moto
mock = moto.mock_aws(); mock.start()
boto3.client("s3").create_bucket(Bucket="bench-bucket")
start = time.perf_counter()
from sagemaker.processing import Processor, ProcessingOutput, ProcessingInput
from sagemaker.workflow.parameters import ParameterInteger
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.steps import ProcessingStep
session = PipelineSession(boto_session=boto3.Session(region_name="us-east-1"), default_bucket="bench-bucket")
count = ParameterInteger(name="Count", default_value=1)
steps, previous = [], None
for i in range({STEPS}):
    processor = Processor(role="arn:aws:iam::123456789012:role/R", image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/img:1",
                          entrypoint=["python3", "-c", "pass"], instance_count=count, instance_type="ml.m5.large",
                          sagemaker_session=session)
    inputs = [ProcessingInput(source=previous.properties.ProcessingOutputConfig.Outputs["out"].S3Output.S3Uri,
                              destination="/opt/ml/processing/input/in", input_name="in")] if previous else None
    args = processor.run(inputs=inputs, outputs=[ProcessingOutput(output_name="out", source="/opt/ml/processing/output/out")])
    step = ProcessingStep(name=f"Step{{i}}", step_args=args)
    steps.append(step)
    previous = step
text = Pipeline(name="Bench", parameters=[count], steps=steps, sagemaker_session=session).definition()
print(time.perf_counter() - start)
"""


def run(python: str, code: str, cwd: Path) -> tuple[float, float]:
    """(seconds inside the interpreter, seconds for the whole process)."""
    start = time.perf_counter()
    done = subprocess.run([python, "-c", code], cwd=cwd, capture_output=True, text=True)
    total = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"FAILED with {python}:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1]), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--sdk-python", default="/work/venvs/sdk2/bin/python")
    args = parser.parse_args()
    import compileall

    import sagelab

    compileall.compile_dir(Path(sagelab.__file__).parent, quiet=1)  # as a wheel install would have it
    cwd = Path(__file__).resolve().parent
    sides = {"sagelab.pipeline": (sys.executable, SAGELAB)}
    if Path(args.sdk_python).exists():
        version = subprocess.run([args.sdk_python, "-c", "import importlib.metadata as m; print(m.version('sagemaker'))"],
                                 capture_output=True, text=True).stdout.strip()  # fmt: skip
        sides[f"sagemaker SDK {version}"] = (args.sdk_python, SDK)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for round_ in range(args.runs + 1):
        for name, (python, code) in sides.items():
            result = run(python, code, cwd)
            if round_:  # the first round warms the OS caches
                samples[name].append(result)
    print(f"import + build a {STEPS}-step definition, {args.runs} runs each (median)\n")
    print(f"{'':<28}{'in-process s':>14}{'whole process s':>17}")
    medians = {}
    for name, values in samples.items():
        inside, whole = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
        medians[name] = inside
        print(f"{name:<28}{inside:>14.3f}{whole:>17.3f}")
    ours = medians["sagelab.pipeline"]
    print(f"\nsagelab import + build: {ours:.3f} s   target < 0.2 s  {'PASS' if ours < 0.2 else 'MISS'}")
    for name, value in medians.items():
        if name != "sagelab.pipeline":
            print(f"{name} / sagelab: {value / ours:.1f}x")


if __name__ == "__main__":
    main()
