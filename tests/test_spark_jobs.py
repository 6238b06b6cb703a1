"""Spark jobs in pipelines, run locally on real local Spark (pyspark with Java), ending in the store.

The SDK's PySparkProcessor and EMRStep definitions (tests/fixtures/sdk/v2/spark.json, made by
sagemaker 2.257.7) run unchanged; so do sagelab's own `spark_processing` and `emr` steps. What
smspark-submit and the configuration classifications do is checked against the image's own
rules (aws/sagemaker-spark-container, smspark/cli.py and config.py).
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path

import pytest

from sagelab.containers.spark import configuration, submit
from tests.conftest import sagelab

pytest.importorskip("pyspark", reason="the spark extra is not installed")
if shutil.which("java") is None:
    if os.environ.get("CI"):
        pytest.fail("CI has no Java: .ci/run installs it", pytrace=False)
    pytest.skip("no Java here (sagelab doctor says how to install it)", allow_module_level=True)

FIXTURE = Path(__file__).parent / "fixtures" / "sdk" / "v2"
SCRIPTS = Path(__file__).parent / "fixtures" / "sdk" / "scripts"
BUCKET = "sagemaker-us-east-1-123456789012"
ABALONE = "sex,length,rings\nM,0.455,15\nM,0.35,7\nF,0.53,9\nM,0.44,10\nI,0.33,7\nI,0.425,8\nF,0.53,20\nF,0.545,16\nM,0.475,9\nF,0.55,19\n"


def _expected_features() -> dict[tuple[str, str], tuple[int, float]]:
    """The job's answer, computed here without Spark: (sex, band) → (count, mean rings)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for line in ABALONE.splitlines()[1:]:
        sex, length, rings = line.split(",")
        band = "small" if float(length) < 0.4 else "medium" if float(length) < 0.6 else "large"
        groups.setdefault((sex, band), []).append(int(rings))
    return {key: (len(values), round(sum(values) / len(values), 3)) for key, values in groups.items()}


def _read_features(folder: Path) -> dict[tuple[str, str], tuple[int, float]]:
    import pyarrow.parquet as pq

    assert (folder / "_SUCCESS").is_file(), sorted(p.name for p in folder.iterdir())
    table = pq.read_table(folder).to_pylist()
    return {(row["sex"], row["band"]): (row["n"], row["mean_rings"]) for row in table}


def test_the_sdks_pyspark_processor_and_emr_step_run_unchanged(project: Path) -> None:
    from sagelab.config import load_settings
    from sagelab.definition import parse_file
    from sagelab.engines.local import LocalEngine

    engine = LocalEngine(load_settings(project))
    dump = FIXTURE / "spark.s3"
    for file in (p for p in dump.rglob("*") if p.is_file()):
        engine.store.put_file(f"s3://{file.relative_to(dump).as_posix()}", file)
    engine.store.put_bytes(f"s3://{BUCKET}/spark/input/abalone.csv", ABALONE.encode())
    for script in ("spark_features.py", "spark_udfs.py"):  # where the EMR step's spark-submit names them
        engine.store.put_file(f"s3://{BUCKET}/spark/code/{script}", SCRIPTS / script)

    execution = engine.start(parse_file(FIXTURE / "spark.json"), "SparkPipeline", {})

    assert execution.status == "Succeeded", [(s.name, s.failure_reason) for s in execution.steps.values()]
    store = project / ".sagelab" / "s3" / BUCKET / "spark" / execution.id
    assert _read_features(store / "features") == _expected_features() == _read_features(store / "emr-features")
    processing, emr = execution.steps["SparkFeatures"], execution.steps["EMRFeatures"]
    assert "shuffle partitions: 4" in Path(str(processing.log_path)).read_text()  # configuration.json's spark-defaults reached the job
    assert "shuffle partitions: 200" in Path(str(emr.log_path)).read_text()  # Spark's default: the EMR step sets none
    events = list((project / ".sagelab" / "s3" / BUCKET / "spark" / "events").iterdir())
    assert len(events) == 1 and events[0].name.startswith("local-") and not events[0].name.endswith(".inprogress")
    assert '"Event":"SparkListenerApplicationEnd"' in events[0].read_text()  # the whole log, published when the job ended
    assert emr.properties["ClusterId"] == "j-1ABCDEFGHIJKL" and emr.properties["Status"]["State"] == "COMPLETED"
    assert emr.properties["Config"]["Args"][0] == "spark-submit" and emr.properties["Id"].startswith("s-")


def test_authored_spark_steps_match_the_sdks_layout_and_run(project: Path) -> None:
    shutil.copytree(SCRIPTS, project / "jobs", ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))
    data = project / ".sagelab" / "s3" / "data" / "abalone"
    data.mkdir(parents=True)
    (data / "part-0.csv").write_text(ABALONE)
    (project / "pipeline.py").write_text(textwrap.dedent("""
        from sagelab.pipeline import ExecutionVariables, Join, Pipeline, emr, spark_processing

        features = spark_processing(
            "Features", code="jobs/spark_features.py", py_files=["jobs/spark_udfs.py"],
            arguments=["--input", "s3://data/abalone/", "--output", "s3://data/features/"],
            configuration=[{"Classification": "spark-defaults", "Properties": {"spark.sql.shuffle.partitions": "3"}}],
            event_logs=True, instance="ml.m5.xlarge", instance_count=2)
        on_emr = emr(
            "OnEMR", code="jobs/spark_features.py", py_files=["jobs/spark_udfs.py"], cluster_id="j-2ABCDEFGHIJKL",
            conf={"spark.sql.shuffle.partitions": "2"},
            arguments=["--input", "s3://data/abalone/", "--output", Join("/", ["s3://data/emr", ExecutionVariables.PIPELINE_EXECUTION_ID])],
            depends_on=[features])
        pipeline = Pipeline("spark-demo", [features, on_emr])
    """))
    definition = json.loads(sagelab("definition", "pipeline.py:pipeline", cwd=project).stdout)
    sdk = json.loads((FIXTURE / "spark.json").read_text())
    ours, theirs = definition["Steps"][0]["Arguments"], sdk["Steps"][0]["Arguments"]
    entrypoint = ["smspark-submit", "--py-files", "/opt/ml/processing/input/py-files", "--local-spark-event-logs-dir",
                  "/opt/ml/processing/spark-events/", "/opt/ml/processing/input/code/spark_features.py"]  # fmt: skip
    assert ours["AppSpecification"]["ContainerEntrypoint"] == entrypoint == theirs["AppSpecification"]["ContainerEntrypoint"]
    assert [i["InputName"] for i in ours["ProcessingInputs"]] == [i["InputName"] for i in theirs["ProcessingInputs"]]
    assert ours["AppSpecification"]["ImageUri"].split("/")[-1].startswith("sagemaker-spark-processing:3.5")
    events = ours["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]
    assert (events["LocalPath"], events["S3UploadMode"]) == ("/opt/ml/processing/spark-events/", "Continuous")
    hadoop = definition["Steps"][1]["Arguments"]["StepConfig"]["HadoopJarStep"]
    assert hadoop["Jar"] == "command-runner.jar" and hadoop["Args"][:5] == ["spark-submit", "--deploy-mode", "cluster", "--conf",
                                                                              "spark.sql.shuffle.partitions=2"]  # fmt: skip

    run = sagelab("run", "pipeline.py:pipeline", cwd=project)
    execution = run.stdout.split("Execution ")[1].split()[0]
    store = project / ".sagelab" / "s3"
    assert _read_features(store / "data" / "features") == _expected_features() == _read_features(store / "data" / "emr" / execution)
    default_bucket = next(store.glob("sagemaker-*"))  # event_logs=True: under the pipeline's execution, as outputs go
    assert [p.name[:6] for p in (default_bucket / "spark-demo" / execution / "Features" / "spark-events").iterdir()] == ["local-"]


def test_a_failing_spark_job_and_a_bad_configuration_fail_their_step_saying_why(project: Path) -> None:
    (project / "jobs").mkdir()
    (project / "jobs" / "boom.py").write_text("raise SystemExit('no rows in the input')\n")
    (project / "pipeline.py").write_text(textwrap.dedent("""
        from sagelab.pipeline import Pipeline, spark_processing

        boom = spark_processing("Boom", code="jobs/boom.py")
        bad = spark_processing("Bad", code="jobs/boom.py",
                               configuration={"Classification": "spark-env", "Properties": {}})
        pipeline = Pipeline("failing", [boom, bad])
    """))
    run = sagelab("run", "pipeline.py:pipeline", cwd=project, check=False)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    status = sagelab("status", "latest", "--json", cwd=project).stdout
    steps = {step["name"]: step for step in json.loads(status)["steps"]}
    assert "AlgorithmError" in steps["Boom"]["failure_reason"] and "no rows in the input" in steps["Boom"]["failure_reason"]
    assert "spark-env sets variables in a nested configuration" in steps["Bad"]["failure_reason"]


def test_emr_commands_other_than_spark_submit_fail_validation(project: Path) -> None:
    step = {"Name": "Script", "Type": "EMR", "Arguments": {"ClusterId": "j-1", "StepConfig": {
        "HadoopJarStep": {"Jar": "s3://us-east-1.elasticmapreduce/libs/script-runner/script-runner.jar", "Args": ["s3://b/run.sh"]}}}}
    (project / "emr.json").write_text(json.dumps({"Version": "2020-12-01", "Metadata": {}, "Parameters": [], "Steps": [step]}))
    result = sagelab("validate", "emr.json", cwd=project, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "/Steps/0/Arguments/StepConfig/HadoopJarStep/Jar: step Script: the jar" in result.stderr
    assert "command-runner.jar` with Args starting with spark-submit" in result.stderr


def test_smspark_submit_takes_the_images_options_and_expands_folders(tmp_path: Path) -> None:
    jars = tmp_path / "jars"
    jars.mkdir()
    (jars / "b.jar").write_bytes(b"")
    (jars / "a.jar").write_bytes(b"")
    (jars / "nested").mkdir()  # the image lists the files directly in the folder only
    parsed = submit.parse_smspark(["--class=com.example.Main", "--jars", str(jars), "-v", "--local-spark-event-logs-dir",
                                   "/opt/ml/processing/spark-events/", "/app.jar", "--x", "1"])  # fmt: skip
    assert parsed.options == ["--class", "com.example.Main", "--jars", f"{jars}/a.jar,{jars}/b.jar", "--verbose"]
    assert (parsed.app, parsed.arguments, parsed.event_logs_dir) == ("/app.jar", ["--x", "1"], "/opt/ml/processing/spark-events/")
    argv = submit.command(parsed, spark_submit="spark-submit", cores=2, store=tmp_path / "store", buckets={"b"}, work=tmp_path)
    assert argv[:3] == ["spark-submit", "--master", "local[2]"] and argv[-3:] == ["/app.jar", "--x", "1"]
    assert f"spark.hadoop.fs.viewfs.mounttable.b.linkFallback={(tmp_path / 'store' / 'b').as_uri()}" in argv
    assert f"spark.eventLog.dir={(tmp_path / 'spark-events').as_uri()}" in argv

    for argv, message in [(["--conf", "a=b", "/app.py"], "no such option: --conf"), (["--jars", "jars", "/app.py"], "must be an absolute path"),
                          (["--files", str(tmp_path / "missing"), "/app.py"], "does not exist"), (["-v"], "missing parameter: app")]:  # fmt: skip
        with pytest.raises(submit.SubmitError, match=message):
            submit.parse_smspark(argv)

    emr = submit.parse_spark_submit(["--master", "yarn", "--deploy-mode=cluster", "--conf", "a=b", "--supervise", "s3://b/app.py", "x"])
    assert (emr.options, emr.app, emr.arguments, emr.dropped) == (["--conf", "a=b", "--supervise"], "s3://b/app.py", ["x"],
                                                                  ["--master yarn", "--deploy-mode cluster"])  # fmt: skip


def test_configuration_classifications_become_the_files_spark_and_hadoop_read(tmp_path: Path) -> None:
    document = [
        {"Classification": "spark-defaults", "Properties": {"spark.executor.memory": "2g"}},
        {"Classification": "spark-env", "Properties": {}, "Configurations": [{"Classification": "export", "Properties": {"MODE": "x"}}]},
        {"Classification": "core-site", "Properties": {"fs.s3a.connection.maximum": "100"}},
        {"Classification": "yarn-site", "Properties": {"yarn.nodemanager.vmem-check-enabled": "false"}},
    ]
    conf = tmp_path / "configuration.json"
    conf.write_text(json.dumps(document))
    spark, hadoop = tmp_path / "spark", tmp_path / "hadoop"
    notes = configuration.write(configuration.load(conf), spark, hadoop)
    assert (spark / "spark-defaults.conf").read_text() == "spark.executor.memory 2g\n"
    assert (spark / "spark-env.sh").read_text() == "export MODE=x\n"
    assert "<name>fs.s3a.connection.maximum</name>\n    <value>100</value>" in (hadoop / "core-site.xml").read_text()
    assert len(notes) == 1 and "yarn-site" in notes[0] and "no effect locally" in notes[0]

    for bad, message in [({"Classification": "spark-default", "Properties": {}}, "unknown classification 'spark-default'"),
                         ({"Classification": "spark-defaults"}, "Classification and Properties"),
                         ({"Classification": "hive-env", "Properties": {}}, "hive-env sets variables in a nested configuration")]:  # fmt: skip
        conf.write_text(json.dumps(bad))
        with pytest.raises(configuration.ConfigurationError, match=message):
            configuration.load(conf)
