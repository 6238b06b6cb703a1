"""The Spark session of a notebook or script: set up from the profile, changed by `%%configure`, started on first use.

`spark = "local[*]"` (the default) starts pyspark on this machine, bound to 127.0.0.1, with the
project's `s3://` URIs mapped onto its store (`storage`), its warehouse and driver log under
`.sagelab/spark/`; `spark = "sc://host:port"` connects to a Spark Connect server (EMR Serverless,
EMR on EKS, `start-connect-server.sh`), with the token from SPARK_CONNECT_AUTHENTICATE_TOKEN.
`spark = "livy+http://host:8998"` is a Livy server (EMR on EC2): Spark runs there, so this process
has no SparkSession, and these settings become the Livy session's request (`sagelab.spark.livy`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.errors import ConfigError, SagelabError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sagelab.config import Settings


# sparkmagic's %%configure keys (Livy's session request) → Spark properties.
_CONFIGURE_KEYS = {
    "driverMemory": "spark.driver.memory",
    "driverCores": "spark.driver.cores",
    "executorMemory": "spark.executor.memory",
    "executorCores": "spark.executor.cores",
    "numExecutors": "spark.executor.instances",
    "name": "spark.app.name",
}
# Livy's session request fields with no local meaning: accepted on a Livy profile only.
LIVY_ONLY_KEYS = ("jars", "pyFiles", "files", "archives", "queue", "proxyUser", "heartbeatTimeoutInSecond", "ttl", "idleTimeout")
_LOG4J = """\
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
"""


class SparkSessions:
    """One Spark session at a time, for the profile's settings and what `configure` changed."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.conf: dict[str, str] = dict(settings.spark_conf)
        self.request: dict[str, Any] = {}  # %%configure's session-request fields as given (driverMemory, jars, ...): Livy's request
        self._session: SparkSession | None = None

    @property
    def target(self) -> str:
        """`local[*]`, `local[N]`, `sc://host:port` or `livy+http(s)://host:port`."""
        return self.settings.spark

    @property
    def local(self) -> bool:
        return self.target.startswith("local")

    @property
    def livy(self) -> bool:
        """Spark runs on a Livy server, and only statements reach it (`sagelab.spark.livy`)."""
        return self.target.startswith("livy+")

    @property
    def livy_conf(self) -> dict[str, str]:
        """The Spark properties of a Livy session request: `conf` without those its own fields set (Livy maps driverMemory, ...)."""
        mapped = {_CONFIGURE_KEYS[key] for key in self.request if key in _CONFIGURE_KEYS}
        return {key: value for key, value in self.conf.items() if key not in mapped}

    @property
    def running(self) -> bool:
        return self._session is not None

    @property
    def folder(self) -> Path:
        """Where local Spark keeps its warehouse and driver log."""
        return self.settings.state_dir / "spark"

    @property
    def log_path(self) -> Path:
        return self.folder / "driver.log"

    def configure(self, options: dict[str, Any]) -> None:
        """Apply sparkmagic's %%configure options (driverMemory, executorCores, conf, ...) and `url` to the next session.

        On a Livy profile Livy's other session-request fields (jars, pyFiles, queue, ...) are taken too.

        Raises:
            ConfigError: a session is running (stop it first), or an option is unknown.
        """
        if self.running:
            raise ConfigError("a Spark session is running: %%configure -f restarts it with these settings")
        if "url" in options:  # first: it decides which options the rest may be
            from sagelab.config import spark_target

            self.settings = replace(self.settings, spark=spark_target(options["url"], "%%configure url:"))
        for key, value in options.items():
            if key == "conf":
                if not isinstance(value, dict):
                    raise ConfigError(f'%%configure conf must be an object of Spark properties; got {value!r}')
                self.conf.update({str(k): str(v) for k, v in value.items()})
            elif key in _CONFIGURE_KEYS:
                self.conf[_CONFIGURE_KEYS[key]] = str(value)
                self.request[key] = value
            elif key in LIVY_ONLY_KEYS and self.livy:
                self.request[key] = value
            elif key in LIVY_ONLY_KEYS:
                raise ConfigError(f"%%configure: {key} is a Livy session option, and this profile's Spark is {self.target}")
            elif key == "kind" and self.livy:
                if value != "pyspark":
                    raise ConfigError(f'%%configure kind: sagelab\'s Livy sessions are "pyspark" (Python cells); got {value!r}')
            elif key != "url":
                known = ", ".join(["conf", "url", *_CONFIGURE_KEYS, *(LIVY_ONLY_KEYS if self.livy else ())])
                raise ConfigError(f"%%configure: unknown option {key!r}; known: {known}")

    def session(self) -> SparkSession:
        """The running session, started now if there is none (saying so, with the Spark UI's address).

        Raises:
            SagelabError: the profile's Spark is a Livy server, which takes statements and hands out no SparkSession.
        """
        if self.livy:
            raise SagelabError(f"the profile's Spark is a Livy server ({self.target}): it runs %%spark and %%sql cells "
                               "(`%load_ext sagelab`), and there is no SparkSession in this process")
        if self._session is None:
            self._session = self._start_local() if self.local else self._start_connect()
            where = f"Spark UI: {self._session.sparkContext.uiWebUrl or _UI_OFF}" if self.local else "Spark Connect"
            print(f"started Spark {self._session.version} ({self.target}); {where}", flush=True)
        return self._session

    def stop(self) -> bool:
        """Stop the session; False when none was running."""
        session, self._session = self._session, None
        if session is None:
            return False
        session.stop()
        # pyspark leaves this set after a Spark Connect session, and a local session started later in the process
        # (a notebook that switches back with %%configure -f) would then try to be a Connect client.
        os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
        return True

    def mount(self, text: str) -> None:
        """Mount the buckets `text` names (a cell, before it runs), on local Spark."""
        from sagelab.spark import storage

        if self._session is not None and self.local:
            storage.mount(self._session, self.settings.store, storage.mentioned(text))

    def info(self) -> list[tuple[str, str]]:
        """What `%%info` shows: the backend, the session and the settings the next one starts with."""
        rows = [("backend", "local Spark" if self.local else "Spark Connect"), ("master" if self.local else "url", self.target)]
        if self._session is None:
            rows.append(("session", "not started (the first %%spark or %%sql cell starts it)"))
        else:
            rows.append(("session", "running"))
            rows.append(("Spark", self._session.version))
            if self.local:
                context = self._session.sparkContext
                rows += [("application", context.applicationId), ("Spark UI", context.uiWebUrl or "off"), ("driver log", str(self.log_path)),
                         ("s3://", f"the store, {self.settings.store}")]  # fmt: skip
        rows += [(key, value) for key, value in sorted(self.conf.items())]
        return rows

    def log_tail(self, lines: int = 100) -> str:
        """The end of local Spark's driver log."""
        if not self.local:
            return f"Spark Connect ({self.target}): the driver's log is the server's; read it where the server runs"
        if not self.log_path.is_file():
            return "no driver log yet: the session has not started"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _start_local(self) -> SparkSession:
        from pyspark.sql import SparkSession

        from sagelab.spark import storage

        os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)  # see stop()
        # The Spark UI listens on every interface unless the JVM is started with this: keep it on loopback.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        from sagelab.spark.java import JAVA_FIX, java

        if java() is None:
            raise SagelabError(f"local Spark needs Java, and there is none on PATH or in JAVA_HOME: {JAVA_FIX}")
        self.folder.mkdir(parents=True, exist_ok=True)
        log4j = self.folder / "log4j2.properties"
        log4j.write_text(_LOG4J.format(log=self.log_path))
        options = {
            "spark.app.name": f"sagelab {self.settings.root.name}",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            # Said outright: a JVM that an earlier session in this process started keeps that session's settings as defaults.
            # Off when that JVM lacks SPARK_LOCAL_IP (a bare pyspark session came first): its UI would listen on every interface.
            "spark.ui.enabled": "true" if _jvm_on_loopback() else "false",
            "spark.ui.showConsoleProgress": "false",  # the cell shows progress (progress.watch)
            "spark.sql.warehouse.dir": str(self.folder / "warehouse"),
            "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={log4j.as_uri()} -Dderby.system.home={self.folder}",
            **storage.conf(self.settings.store, storage.buckets(self.settings.store, self.settings.default_bucket)),
            **self.conf,
        }
        builder = SparkSession.builder.master(self.target)
        for key, value in options.items():
            builder = builder.config(key, value)
        try:
            return builder.getOrCreate()
        except Exception as exc:  # noqa: BLE001 - pyspark's launcher errors: say what to read
            raise SagelabError(f"local Spark did not start: {str(exc).splitlines()[0]} (the driver log: {self.log_path})") from None

    def _start_connect(self) -> SparkSession:
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.remote(self.target)
        for key, value in self.conf.items():
            builder = builder.config(key, value)
        session = None
        try:
            session = builder.getOrCreate()
            session.version  # noqa: B018 - the first call to the server: a wrong token or address fails here, not in a user's cell
        except Exception as exc:  # noqa: BLE001 - gRPC's errors: one line naming the server
            import re

            if session is not None:
                session.stop()  # else pyspark hands the refused session out again

            details = re.search(r'details = "([^"]*)"', str(exc))
            reason = details.group(1) if details else str(exc).splitlines()[0]
            hint = " (the token comes from SPARK_CONNECT_AUTHENTICATE_TOKEN)" if "authentication" in reason.lower() else ""
            raise SagelabError(f"Spark Connect at {self.target} refused the session or did not answer: {reason}{hint}") from None
        return session


_UI_OFF = ("off: this process's Java was started by an earlier Spark session without SPARK_LOCAL_IP=127.0.0.1, and its UI "
           "would listen on every interface; restart the kernel to have it")


def _jvm_on_loopback() -> bool:
    """Whether the JVM local Spark runs in keeps its UI on loopback: a JVM not started yet will (SPARK_LOCAL_IP is set first)."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None:
        return True
    return gateway.jvm.java.lang.System.getenv("SPARK_LOCAL_IP") in ("127.0.0.1", "localhost")
