"""Spark from notebooks: real local Spark (pyspark) and a real Spark Connect server, started here on 127.0.0.1.

The Connect server is the one the pyspark distribution ships (SparkConnectServer through its
spark-submit), with token authentication as EMR Serverless and EMR on EKS expose it. The magics run
in a real Jupyter kernel through nbclient, as a notebook runs them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sagelab.config import load_settings
from sagelab.errors import ConfigError, SagelabError

pytest.importorskip("pyspark", reason="the spark extra is not installed")
if shutil.which("java") is None:
    if os.environ.get("CI"):
        pytest.fail("CI has no Java: .ci/run installs it", pytrace=False)
    pytest.skip("no Java here (sagelab doctor says how to install it)", allow_module_level=True)

ROWS = "".join(f"{i},{i * i}\n" for i in range(40))


@pytest.fixture(scope="module")
def connect() -> Iterator[tuple[str, str]]:
    """A Spark Connect server on 127.0.0.1 that takes one token: (its sc:// URL, the token)."""
    import pyspark

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = secrets.token_hex(16)
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    command = [str(submit), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
               "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
               "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1", "--conf", "spark.ui.enabled=false"]  # fmt: skip
    env = {**os.environ, "SPARK_CONNECT_AUTHENTICATE_TOKEN": token, "PYSPARK_PYTHON": sys.executable}
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Spark Connect server did not start (exit code {server.poll()})")
            time.sleep(0.5)
        yield f"sc://localhost:{port}", token
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def _listening_addresses(port: int) -> list[str]:
    """The local addresses sockets listen on at `port` (/proc/net/tcp and tcp6), as text."""
    import ipaddress

    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host (little-endian) order.
                ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                ip = ipaddress.ip_address(ordered)
                found.append(str(ip.ipv4_mapped) if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else str(ip))
    return found


@pytest.fixture
def spark_project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n\n[tool.sagelab]\nspark = "local[2]"\n')
    rows = tmp_path / ".sagelab" / "s3" / "raw-data" / "rows"
    rows.mkdir(parents=True)
    (rows / "part-0.csv").write_text("a,b\n" + ROWS)
    return tmp_path


def test_local_spark_reads_and_writes_the_stores_s3_uris(spark_project: Path) -> None:
    from sagelab.spark.sessions import SparkSessions

    sessions = SparkSessions(load_settings(spark_project))
    try:
        spark = sessions.session()
        raw = spark.read.option("header", True).option("inferSchema", True).csv("s3://raw-data/rows/")
        assert raw.count() == 40 and raw.selectExpr("sum(a)").first()[0] == sum(range(40))
        raw.write.mode("overwrite").parquet("s3a://raw-data/as-parquet/")
        raw.write.mode("overwrite").json("s3://sagemaker-us-east-1-000000000000/as-json/")  # the default bucket, mounted at start
        store = spark_project / ".sagelab" / "s3"
        assert list((store / "raw-data" / "as-parquet").glob("part-*.parquet")) and not list(store.rglob("*.crc"))
        assert spark.read.json("s3://sagemaker-us-east-1-000000000000/as-json/").count() == 40
        with pytest.raises(Exception, match="NoSuchBucketInTheLocalStore"):
            spark.range(3).write.parquet("s3://never-mounted/x")
        assert not Path("/x").exists() and not (store / "never-mounted").exists()
        sessions.mount("spark.range(3).write.parquet('s3://later/x')")  # what the magics do before each cell
        spark.range(3).write.parquet("s3://later/x")
        assert spark.read.parquet("s3://later/x").count() == 3 and (store / "later" / "x" / "_SUCCESS").is_file()
        assert ("Spark UI", spark.sparkContext.uiWebUrl) in sessions.info() and spark.sparkContext.uiWebUrl.startswith("http://127.0.0.1:")
        port = int(spark.sparkContext.uiWebUrl.rsplit(":", 1)[1])
        assert set(_listening_addresses(port)) == {"127.0.0.1"}  # the Spark UI on loopback only
    finally:
        sessions.stop()


def test_spark_connect_with_a_token_and_its_progress(connect: tuple[str, str], spark_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sagelab.spark.progress import watch
    from sagelab.spark.sessions import SparkSessions

    url, token = connect
    monkeypatch.setenv("SPARK_CONNECT_AUTHENTICATE_TOKEN", "not-the-token")
    refused = SparkSessions(load_settings(spark_project))
    refused.configure({"url": url})
    with pytest.raises(SagelabError, match=f"Spark Connect at {url} refused the session.*Invalid authentication token.*SPARK_CONNECT_AUTHENTICATE_TOKEN"):
        refused.session()

    monkeypatch.setenv("SPARK_CONNECT_AUTHENTICATE_TOKEN", token)
    sessions = SparkSessions(load_settings(spark_project))
    sessions.configure({"url": url, "conf": {"spark.sql.shuffle.partitions": "3"}})
    lines: list[str] = []
    try:
        spark = sessions.session()
        with watch(spark, lines.append):
            total = spark.range(200_000).repartition(4).selectExpr("sum(id) AS total").first()
        assert total is not None and total["total"] == sum(range(200_000))
        assert spark.conf.get("spark.sql.shuffle.partitions") == "3"
        assert lines and re.fullmatch(r"Spark: \d+ stages?, \d+ tasks? in [\d.]+ s", lines[-1]), lines
    finally:
        sessions.stop()


def test_settings_and_configure_refuse_what_they_cannot_use(tmp_path: Path) -> None:
    from sagelab.spark.sessions import SparkSessions

    (tmp_path / "pyproject.toml").write_text('[tool.sagelab]\nspark = "sc://spark.example:15002/;token=abc"\n')
    with pytest.raises(ConfigError, match="SPARK_CONNECT_AUTHENTICATE_TOKEN variable, never in a file"):
        load_settings(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.sagelab]\nspark = "yarn"\n')
    with pytest.raises(ConfigError, match='spark must be "local'):
        load_settings(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.sagelab]\nspark_conf = { "spark.driver.memory" = "2g", "spark.ui.enabled" = false }\n')
    sessions = SparkSessions(load_settings(tmp_path))
    assert sessions.conf == {"spark.driver.memory": "2g", "spark.ui.enabled": "false"}
    sessions.configure({"driverMemory": "3g", "executorCores": 2, "conf": {"spark.sql.shuffle.partitions": 8}})
    assert sessions.conf["spark.driver.memory"] == "3g" and sessions.conf["spark.executor.cores"] == "2"
    with pytest.raises(ConfigError, match="unknown option 'driverMem'"):
        sessions.configure({"driverMem": "3g"})


NOTEBOOK = [
    "%load_ext sagelab",
    '%%configure -f\n{"driverMemory": "1g", "conf": {"spark.sql.shuffle.partitions": "4"}}',
    '%%spark\nraw = spark.read.option("header", True).option("inferSchema", True).csv("s3://raw-data/rows/")\n'
    'raw.createOrReplaceTempView("raw")\nraw.count()',
    "%%sql -o top -n 5\nSELECT a, b FROM raw ORDER BY a DESC",
    "%%local\nlen(top), list(top.columns), int(top.a.max())",
    "import pandas as pd\nframe = pd.DataFrame({'k': [1, 2, 3]})",
    "%send_to_spark -i frame -t df -n frame",
    '%%spark\nframe.selectExpr("sum(k) AS total").write.mode("overwrite").json("s3://results/totals")',
    "%%sql -q -o joined\nSELECT COUNT(*) AS n FROM frame",
    "joined.n[0]",
    "%%sql -m sample -r 0.5 -n -1 -o sampled\nSELECT * FROM raw",
    '%%local\nfrom sagelab.notebook.plotting import line\nfigure = line(sampled, x="a", y="b", title="b = a², a sample of raw")\n'
    'figure.savefig("sampled.png")\nprint(figure.axes[0].get_title(loc="right"))',
    '%%spark\nfrom pyspark.sql import functions as F\nfrom sagelab.notebook.plotting import scatter\n'
    'waves = spark.range(2_000_000).withColumn("y", F.sin(F.col("id") / 100_000) + F.randn(seed=7) / 5)\n'
    'figure = scatter(waves, x="id", y="y", title="sin(id / 100,000) + noise")\nfigure.savefig("waves.png")\nprint(figure.axes[0].get_title(loc="right"))',
    "%info",
    "%logs",
    "%spark status",
    "%cleanup -f",
    "%spark status",
    '%%configure\n{"driverMem": "1g"}',
]


def _text(cell: Any) -> str:
    """Everything a cell showed: streams, results and displays (the last version of an updated display)."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output:
            parts.append(output.data.get("text/plain", ""))
    return "\n".join(parts)


def test_a_notebook_runs_the_magics_end_to_end(spark_project: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in NOTEBOOK])
    NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(spark_project)}}).execute()
    out = [_text(cell) for cell in notebook.cells]
    assert not [cell for cell in notebook.cells if any(o.output_type == "error" for o in cell.outputs)], out
    assert "started Spark" in out[2] and "Spark UI: http://127.0.0.1:" in out[2] and out[2].rstrip().endswith("40")
    assert re.search(r"Spark: \d+ stages?, \d+ tasks? in [\d.]+ s", out[2]), out[2]  # the cell's own progress, at its end a summary
    assert "the first 5 rows only: the query has more" in out[3] and "39" in out[3]
    assert "(5, ['a', 'b'], 39)" in out[4]
    assert "frame: a Spark DataFrame of 3 rows" in out[6]
    [written] = (spark_project / ".sagelab" / "s3" / "results" / "totals").glob("part-*.json")
    assert json.loads(written.read_text()) == {"total": 6}
    assert not [o for o in notebook.cells[8].outputs if o.output_type == "execute_result"]  # -q: no table
    assert out[9].strip() in ("3", "np.int64(3)")
    assert "a random sample of about 50% of the rows" in out[10] and "the first" not in out[10]
    assert re.search(r"\d+ points, all drawn", out[11]), out[11]  # %%sql -o's DataFrame, plotted in the notebook
    assert "2,000,000 points → 400×300 bins in Spark" in out[12], out[12]  # reduced in Spark, drawn from the bins
    for name in ("sampled.png", "waves.png"):
        image = (spark_project / name).read_bytes()
        assert image[:8] == b"\x89PNG\r\n\x1a\n" and len(image) > 10_000, (name, len(image))
    assert re.search(r"backend +local Spark", out[13]) and re.search(r"spark.sql.shuffle.partitions +4", out[13]), out[13]
    assert "driver log" in out[13] and out[14].strip()  # the driver's log, warnings and up
    assert "local: running (local[2])" in out[15] and "stopped the Spark session" in out[16] and "local: not started" in out[17]
    assert "unknown option 'driverMem'" in out[18] and "Traceback" not in out[18]
