"""`EMRRunner`: an EMR step (AddJobFlowSteps on a cluster) whose command is spark-submit, run on local Spark.

SageMaker's EMRStep sends one StepConfig to an existing cluster (ClusterId) or a cluster it
creates (ClusterConfig). Its usual form, `command-runner.jar` with `spark-submit ...` as Args,
runs here as the cluster would run it, with `--master`/`--deploy-mode` replaced by local Spark
and the application's `s3://` URIs read from the project's store. Any other command (a custom
jar, `script-runner.jar`, a shell command) needs the cluster itself: `validate` refuses it.
The step's properties are EMR's DescribeStep `Step` shape, with ClusterId beside it.
"""

from __future__ import annotations

import secrets
import string
import time
from typing import Any

from sagelab.definition import Step
from sagelab.engines.local import spark
from sagelab.engines.local.job import Job, StepFailed, StepResult, now_iso
from sagelab.errors import Problem

COMMAND_RUNNER = "command-runner.jar"
_FIX = "locally, an EMR step runs `command-runner.jar` with Args starting with spark-submit; run other commands on EMR"


def command_problem(step: Step) -> Problem | None:
    """Why `validate` refuses an EMR step locally, from its literal StepConfig (expressions are checked when it runs)."""
    hadoop = step.arguments.get("StepConfig", {}).get("HadoopJarStep", {})
    jar, args = hadoop.get("Jar"), hadoop.get("Args") or []
    pointer = f"{step.pointer}/Arguments/StepConfig/HadoopJarStep"
    if jar is None:
        return Problem(f"{pointer}/Jar", f"step {step.name}: StepConfig names no HadoopJarStep.Jar; {_FIX}")
    if isinstance(jar, str) and jar != COMMAND_RUNNER:
        return Problem(f"{pointer}/Jar", f"step {step.name}: the jar {jar} needs an EMR cluster to run; {_FIX}")
    if isinstance(jar, str) and (not args or (isinstance(args[0], str) and args[0] != "spark-submit")):
        what = f"the command {args[0]!r}" if args else "no command (Args is empty)"
        return Problem(f"{pointer}/Args", f"step {step.name}: command-runner.jar runs {what}, which needs an EMR cluster; {_FIX}")
    return None


class EMRRunner:
    """spark-submit on local Spark, with the step's Args as the cluster's command-runner gets them."""

    def run(self, job: Job) -> StepResult:
        request = job.arguments
        config = request.get("StepConfig", {})
        hadoop = config.get("HadoopJarStep", {})
        args = [str(a) for a in hadoop.get("Args") or []]
        if hadoop.get("Jar") != COMMAND_RUNNER or not args or args[0] != "spark-submit":
            raise StepFailed(f"ClientError: {_FIX}; this step's jar is {hadoop.get('Jar')!r} with Args {args[:1]}")
        started = time.time()
        cluster = request.get("ClusterId") or _cluster_id()
        if "ClusterConfig" in request:
            job.log(f"a new EMR cluster ({_instances(request['ClusterConfig'])}) is local Spark on this machine here")
        else:
            job.log(f"EMR cluster {cluster} is local Spark on this machine here")
        job.log(f"spark-submit runs on local Spark {spark.pyspark_version()}, with the project's store as s3://")
        code = job.run(spark.spark_command(job, "spark-submit", args[1:]), "/opt/ml", {}, shown=spark.store_folder(job))
        step_id = "s-" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(13))
        if code != 0:
            raise StepFailed(f"Step {step_id} failed: spark-submit exited with code {code}. Last log lines:\n{job.log_tail()}")
        ended = time.time()
        properties: dict[str, Any] = {
            "ClusterId": cluster,
            "Id": step_id,
            "Name": job.step.name,
            "Config": {
                "Jar": hadoop.get("Jar"),
                "Properties": {item.get("Key"): item.get("Value") for item in hadoop.get("Properties") or []},
                "MainClass": hadoop.get("MainClass", ""),
                "Args": args,
            },
            "ActionOnFailure": config.get("ActionOnFailure", "CONTINUE"),
            "Status": {
                "State": "COMPLETED",
                "StateChangeReason": {},
                "Timeline": {"CreationDateTime": now_iso(started), "StartDateTime": now_iso(started), "EndDateTime": now_iso(ended)},
            },
        }
        if "ExecutionRoleArn" in request:
            properties["ExecutionRoleArn"] = request["ExecutionRoleArn"]
        return StepResult(properties)


def _cluster_id() -> str:
    """An id shaped like EMR's (j- and 13 characters), for a step that creates its cluster."""
    return "j-" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(13))


def _instances(cluster: dict[str, Any]) -> str:
    groups = cluster.get("Instances", {}).get("InstanceGroups") or []
    described = [f"{group.get('InstanceCount', 1)} × {group.get('InstanceType', '?')}" for group in groups if isinstance(group, dict)]
    return ", ".join(described) or "instance fleets"
