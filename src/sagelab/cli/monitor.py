"""`sagelab monitor run`: a local endpoint's captured data checked against a baseline, as a monitoring job does."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

monitor_app = typer.Typer(help="Model monitoring of local endpoints: their captured data against a baseline.", no_args_is_help=True)


@monitor_app.command("run")
def run(
    endpoint: Annotated[str, typer.Argument(help="A local endpoint that captures data (sagelab deploy --capture, or DataCaptureConfig).")],
    baseline: Annotated[str, typer.Option(help="The folder or s3:// prefix holding constraints.json (and statistics.json, for drift): "
                                               "what a QualityCheck step or a baselining job wrote.")],
    output: Annotated[Optional[str], typer.Option(help="Where reports go (default s3://BUCKET/monitoring); "
                                                       "under it ENDPOINT/on-demand/yyyy/mm/dd/hh/.")] = None,
    ground_truth: Annotated[Optional[str], typer.Option("--ground-truth", help="Where labels were uploaded (JSON lines of groundTruthData with the "
                                                                              "invocation's InferenceId): a model-quality check instead.")] = None,
    problem_type: Annotated[Optional[str], typer.Option("--problem-type", help="With --ground-truth: Regression, BinaryClassification or "
                                                                               "MulticlassClassification.")] = None,
    profile: Annotated[str, typer.Option("--profile", help="A profile from [tool.sagelab.profiles] in pyproject.toml.")] = "local",
) -> None:
    """Check everything the endpoint captured against the baseline: constraint_violations.json and statistics.json, as Model Monitor writes them."""
    from sagelab.api.monitoring import baseline_files, monitor_endpoint
    from sagelab.config import load_settings

    settings = load_settings(profile=profile)
    constraints, statistics = baseline_files(settings, baseline)
    done = monitor_endpoint(settings, endpoint, constraints_uri=constraints, statistics_uri=statistics, output=output,
                            ground_truth_uri=ground_truth, problem_type=problem_type)  # fmt: skip
    skipped = f" ({done.skipped} {'without a label or a readable answer' if ground_truth else 'unreadable as CSV or JSON'}, left out)" if done.skipped else ""
    print(f"{done.endpoint}: {done.records} captured requests, {done.rows} rows{skipped}")
    for violation in done.violations:
        print(f"  {violation.get('feature_name')}: {violation.get('constraint_check_type')}: {violation.get('description')}")
    print(f"{done.status}: {len(done.violations)} violation(s); reports in {done.output}")
