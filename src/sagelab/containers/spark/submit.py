"""`smspark-submit` (the SageMaker Spark image's entrypoint) and EMR's `spark-submit`, run on local Spark.

The image (aws/sagemaker-spark-container, smspark/cli.py and job.py) takes `--class`, `--jars`,
`--py-files`, `--files` (a folder means the files directly in it), `--local-spark-event-logs-dir`,
`--spark-event-logs-s3-uri` and `-v`, then the application and its arguments; it writes
configuration.json's classifications, starts YARN over the job's instances and runs
`spark-submit --master yarn --deploy-mode client ...`. Here the cluster is `local[*]` on this
machine, bound to 127.0.0.1, and the job's `s3://` and `s3a://` URIs are the project's store
(`sagelab.spark.storage`): what the application reads and writes is what the pipeline's other
steps see. Event logs are copied to the local folder when the application ends, `.inprogress`
dropped, as the image's publisher copies them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sagelab.containers.spark import configuration

__all__ = ["SubmitError", "Submission", "command", "parse_smspark", "parse_spark_submit", "run"]

# smspark-submit's options, as its click command declares them; every other option is refused, as there.
_SMSPARK_VALUED = {"--class", "--jars", "--py-files", "--files", "--spark-event-logs-s3-uri", "--local-spark-event-logs-dir"}
_FOLDER_OPTIONS = ("--jars", "--py-files", "--files")
# spark-submit's options that take a value (SparkSubmitOptionParser); the rest are flags.
_SPARK_SUBMIT_VALUED = {
    "--master", "--deploy-mode", "--class", "--name", "--jars", "--packages", "--exclude-packages", "--repositories", "--py-files",
    "--files", "--archives", "--conf", "-c", "--properties-file", "--driver-memory", "--driver-java-options", "--driver-library-path",
    "--driver-class-path", "--executor-memory", "--proxy-user", "--driver-cores", "--total-executor-cores", "--executor-cores",
    "--num-executors", "--principal", "--keytab", "--queue",
}  # fmt: skip
# What the cluster decides and local Spark replaces: the master, and where the driver runs.
_CLUSTER_OPTIONS = ("--master", "--deploy-mode")
EVENT_LOGS = "spark-events"  # the folder, in the job's work folder, Spark writes event logs to before they are copied
MESSAGE_FILE = "/opt/ml/output/message"  # where the image writes why it failed


class SubmitError(Exception):
    """The submission cannot run (a bad option, a missing file); the image's InputError."""


@dataclass
class Submission:
    """A spark-submit, before it is made local."""

    options: list[str] = field(default_factory=list)  # spark-submit options, in order: ["--class", "Main", "--jars", "a.jar,b.jar"]
    app: str = ""
    arguments: list[str] = field(default_factory=list)
    event_logs_dir: str | None = None  # --local-spark-event-logs-dir
    event_logs_uri: str | None = None  # --spark-event-logs-s3-uri
    dropped: list[str] = field(default_factory=list)  # cluster options local Spark replaces, for the log


def parse_smspark(argv: list[str]) -> Submission:
    """smspark-submit's arguments: its options (before the application, as click reads them), the application, its arguments.

    Raises:
        SubmitError: an option smspark-submit does not take, a missing value or application, a relative or missing path.
    """
    submission = Submission()
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        option, equals, inline = argv[index].partition("=")
        if option in ("-v", "--verbose") and not equals:
            submission.options.append("--verbose")
            index += 1
            continue
        if option not in _SMSPARK_VALUED:
            raise SubmitError(f"Couldn't parse input: no such option: {option} (smspark-submit takes {', '.join(sorted(_SMSPARK_VALUED))} "
                              "and -v; configure Spark through the configuration= classifications instead)")  # fmt: skip
        if not equals and index + 1 >= len(argv):
            raise SubmitError(f"Couldn't parse input: option {option} requires a value")
        value = inline if equals else argv[index + 1]
        if option == "--local-spark-event-logs-dir":
            submission.event_logs_dir = value
        elif option == "--spark-event-logs-s3-uri":
            submission.event_logs_uri = value
        elif option in _FOLDER_OPTIONS:
            submission.options += [option, _files(value)]
        else:
            submission.options += [option, value]
        index += 1 if equals else 2
    if index >= len(argv):
        raise SubmitError("Couldn't parse input: missing parameter: app (the Python file or jar to run)")
    submission.app, submission.arguments = argv[index], argv[index + 1 :]
    return submission


def parse_spark_submit(argv: list[str]) -> Submission:
    """An EMR step's `spark-submit ...` arguments (after the word itself): its options, the application, its arguments.

    Raises:
        SubmitError: an option without its value, or no application.
    """
    submission = Submission()
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        option, _, inline = argv[index].partition("=")
        valued = option in _SPARK_SUBMIT_VALUED
        if valued and not inline and index + 1 >= len(argv):
            raise SubmitError(f"spark-submit option {option} requires a value")
        value = (inline or argv[index + 1]) if valued else None
        step = 1 if not valued or inline else 2
        if option in _CLUSTER_OPTIONS:
            submission.dropped.append(f"{option} {value}")
        elif value is None:
            submission.options.append(option)
        else:
            submission.options += [option, value]
        index += step
    if index >= len(argv):
        raise SubmitError("spark-submit names no application (the Python file or jar to run)")
    submission.app, submission.arguments = argv[index], argv[index + 1 :]
    return submission


def _files(value: str) -> str:
    """A comma-separated list with each folder replaced by the files directly in it (smspark's _get_list_of_files)."""
    expanded = []
    for part in value.split(","):
        if re.match(r"^s3a?://", part):
            expanded.append(part)
            continue
        path = Path(part.removeprefix("file://"))
        if not path.is_absolute():
            raise SubmitError(f"file path {part} must be an absolute path to a file or directory")
        if not path.exists():
            raise SubmitError(f"file path {part} does not exist")
        if path.is_dir():
            files = sorted(str(entry) for entry in path.iterdir() if entry.is_file())
            if not files:
                raise SubmitError(f"Found zero files in {part}")
            expanded.extend(files)
        else:
            expanded.append(str(path))
    return ",".join(expanded)


def command(submission: Submission, *, spark_submit: str, cores: int, store: Path, buckets: set[str], work: Path) -> list[str]:
    """The local spark-submit: on local[cores], bound to 127.0.0.1, s3:// and s3a:// on the store, event logs where asked."""
    from sagelab.spark import storage

    properties = {
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        **storage.conf(store, buckets),
    }
    if submission.event_logs_uri or submission.event_logs_dir:
        target = re.sub(r"^s3://", "s3a://", submission.event_logs_uri) if submission.event_logs_uri else (work / EVENT_LOGS).as_uri()
        # One uncompressed file per application, as the image's Spark 3 writes them (Spark 4 rolls and compresses by default).
        properties.update({"spark.eventLog.enabled": "true", "spark.eventLog.dir": target, "spark.eventLog.rolling.enabled": "false",
                           "spark.eventLog.compress": "false"})  # fmt: skip
    conf = [part for key, value in properties.items() for part in ("--conf", f"{key}={value}")]
    return [spark_submit, "--master", f"local[{cores}]", *conf, *submission.options, submission.app, *submission.arguments]


def run(submission: Submission, *, store: Path, conf_file: Path | None, work: Path) -> int:
    """Write the configuration, run the submission on local Spark, publish its event logs; spark-submit's exit code.

    Raises:
        SubmitError: pyspark is missing.
        configuration.ConfigurationError: configuration.json is not EMR's format.
    """
    try:
        import pyspark
    except ImportError:
        raise SubmitError('local Spark needs pyspark next to sagelab: pip install "sagelab[spark]"') from None
    spark_conf, hadoop_conf = work / "spark-conf", work / "hadoop-conf"
    for folder in (spark_conf, hadoop_conf):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    # Under the job's own settings (appended after these, so they win), as the image sizes its driver for the instance.
    (spark_conf / "spark-defaults.conf").write_text(f"spark.ui.enabled false\nspark.driver.memory {_driver_memory()}\n")
    if conf_file is not None:
        print(f"[sagelab] reading user configuration from {conf_file}", flush=True)
        for note in configuration.write(configuration.load(conf_file), spark_conf, hadoop_conf):
            print(f"[sagelab] {note}", flush=True)
    buckets = {entry.name for entry in store.iterdir() if entry.is_dir() and not entry.name.startswith(".")} if store.is_dir() else set()
    cores = os.cpu_count() or 1
    argv = command(submission, spark_submit=str(Path(pyspark.__file__).parent / "bin" / "spark-submit"), cores=cores, store=store,
                   buckets=buckets | _mentioned(submission), work=work)  # fmt: skip
    if submission.dropped:
        print(f"[sagelab] {' '.join(submission.dropped)}: the cluster is local[{cores}] on this machine", flush=True)
    env = {**os.environ, "SPARK_CONF_DIR": str(spark_conf), "HADOOP_CONF_DIR": str(hadoop_conf), "SPARK_LOCAL_IP": "127.0.0.1",
           "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}  # fmt: skip
    env.pop("SPARK_HOME", None)  # pyspark's own distribution, whatever the machine's SPARK_HOME names
    (work / EVENT_LOGS).mkdir(exist_ok=True)
    print(f"[sagelab] running spark submit command: {' '.join(argv)}", flush=True)
    code = subprocess.call(argv, env=env)
    if submission.event_logs_dir and not submission.event_logs_uri:
        _publish_event_logs(work / EVENT_LOGS, Path(submission.event_logs_dir))
    return code


def _mentioned(submission: Submission) -> set[str]:
    """Buckets the submission's own words name: an output bucket that does not exist yet still needs its mount."""
    from sagelab.spark import storage

    return storage.mentioned(" ".join([*submission.options, submission.app, *submission.arguments, submission.event_logs_uri or ""]))


def _publish_event_logs(source: Path, target: Path) -> None:
    """Copy the event logs to the job's local folder, without `.inprogress`, as the image's SparkEventLogPublisher does."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(source.iterdir()):
        if entry.is_file():
            shutil.copyfile(entry, target / entry.name.replace(".inprogress", ""))


def _driver_memory() -> str:
    """Half this machine's memory (at least 1 GB): local Spark's executors run inside the driver."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "1g"
    return f"{max(1024, total // 2 // 2**20)}m"
