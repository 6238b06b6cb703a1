"""What SageMaker's check images do in a QualityCheck or ClarifyCheck step, emulated.

`python3 -m sagelab.containers.monitor analyzer` stands in for Model Monitor's analyzer image
(sagemaker-model-monitor-analyzer): it reads the dataset its Environment names and writes
statistics.json and constraints.json (data quality, or model quality when analysis_type is
MODEL_QUALITY), and constraint_violations.json when given a baseline to check against.
`python3 -m sagelab.containers.monitor clarify` stands in for Clarify's processing image on a
data bias analysis: the pre-training bias metrics in analysis.json. See docs/containers.md.
"""

ANALYZER_COMMAND = ("python3", "-m", "sagelab.containers.monitor", "analyzer")
CLARIFY_COMMAND = ("python3", "-m", "sagelab.containers.monitor", "clarify")
# What the jobs write in their output folder, under the names SageMaker's images use.
STATISTICS = "statistics.json"
CONSTRAINTS = "constraints.json"
VIOLATIONS = "constraint_violations.json"
ANALYSIS = "analysis.json"
# Environment variables naming the previous baseline's files, as a monitoring job's do.
BASELINE_STATISTICS = "baseline_statistics"
BASELINE_CONSTRAINTS = "baseline_constraints"


class MonitorError(Exception):
    """A problem with the job's data or configuration: the job fails with this message."""
