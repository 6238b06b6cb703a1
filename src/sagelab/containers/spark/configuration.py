"""EMR application configuration (configuration.json): classifications → the Spark and Hadoop files they set.

The SageMaker Spark image reads `/opt/ml/processing/input/conf/configuration.json` (the SDK's
`configuration=`; EMR's format: Classification, Properties, nested Configurations) and writes
each classification into its file before spark-submit runs (smspark/config.py). Locally the
files go into a SPARK_CONF_DIR and a HADOOP_CONF_DIR of the job's own. Spark reads
`spark-defaults`, `spark-env`, `spark-log4j`, `spark-metrics`, `spark-hive-site` and Hadoop's
`core-site` as on the image; the YARN, Hive-daemon and Hadoop-daemon classifications configure
services local Spark does not start, so they are written and reported as having no effect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

__all__ = ["CLASSIFICATIONS", "CONF_LOCATIONS", "Configuration", "ConfigurationError", "load", "write"]

EMR_CONFIGURE_APPS = "https://docs.aws.amazon.com/emr/latest/ReleaseGuide/emr-configure-apps.html"
# Where the image looks for the file, in order (smspark/config_path_utils.py).
CONF_LOCATIONS = ("/opt/ml/input/data/conf/configuration.json", "/opt/ml/processing/input/conf/configuration.json")


@dataclass(frozen=True)
class _Target:
    folder: str  # "spark" (SPARK_CONF_DIR) or "hadoop" (HADOOP_CONF_DIR)
    file: str
    format: str  # conf, properties, xml, env
    local: bool  # whether local Spark reads it


# Classification → its file, as smspark/config.py writes them (log4j 2 file names: Spark 3.3 and later read those).
CLASSIFICATIONS: dict[str, _Target] = {
    "spark-defaults": _Target("spark", "spark-defaults.conf", "conf", True),
    "spark-env": _Target("spark", "spark-env.sh", "env", True),
    "spark-log4j": _Target("spark", "log4j2.properties", "properties", True),
    "spark-metrics": _Target("spark", "metrics.properties", "properties", True),
    "spark-hive-site": _Target("spark", "hive-site.xml", "xml", True),
    "core-site": _Target("hadoop", "core-site.xml", "xml", True),
    "hadoop-env": _Target("hadoop", "hadoop-env.sh", "env", False),
    "hadoop-log4j": _Target("hadoop", "log4j.properties", "properties", False),
    "hive-env": _Target("hadoop", "hive-env.sh", "env", False),
    "hive-log4j": _Target("hadoop", "hive-log4j2.properties", "properties", False),
    "hive-exec-log4j": _Target("hadoop", "hive-exec-log4j2.properties", "properties", False),
    "hive-site": _Target("hadoop", "hive-site.xml", "xml", False),
    "yarn-env": _Target("hadoop", "yarn-env.sh", "env", False),
    "yarn-site": _Target("hadoop", "yarn-site.xml", "xml", False),
}


class ConfigurationError(ValueError):
    """configuration.json is not EMR's configuration format; the message says where and how to fix it."""


@dataclass(frozen=True)
class Configuration:
    """One classification with its properties (and, for the *-env ones, its `export` sub-configurations)."""

    classification: str
    properties: Mapping[str, str]
    exports: Mapping[str, str]  # from the nested {"Classification": "export"} entries

    @property
    def target(self) -> _Target:
        return CLASSIFICATIONS[self.classification]


def load(path: Path) -> list[Configuration]:
    """The classifications in a configuration.json (one object or a list of them), checked as the image checks them.

    Raises:
        ConfigurationError: the file is not JSON, or an entry is not a known classification with Properties.
    """
    try:
        document = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not JSON: {exc}") from None
    entries = document if isinstance(document, list) else [document]
    return [_parse(entry, f"{path}[{index}]" if isinstance(document, list) else str(path)) for index, entry in enumerate(entries)]


def _parse(entry: Any, where: str) -> Configuration:
    if not isinstance(entry, dict) or "Classification" not in entry or "Properties" not in entry:
        raise ConfigurationError(f"{where}: each configuration is an object with Classification and Properties (see {EMR_CONFIGURE_APPS})")
    unknown = set(entry) - {"Classification", "Properties", "Configurations"}
    if unknown:
        raise ConfigurationError(f"{where}: unknown key {sorted(unknown)[0]!r}; a configuration has Classification, Properties and Configurations")
    name = entry["Classification"]
    if name not in CLASSIFICATIONS:
        raise ConfigurationError(f"{where}: unknown classification {name!r}; one of {', '.join(CLASSIFICATIONS)}")
    properties = _properties(entry["Properties"], f"{where} {name}")
    exports: dict[str, str] = {}
    nested = entry.get("Configurations") or []
    if CLASSIFICATIONS[name].format == "env":
        if not nested:
            raise ConfigurationError(f"{where}: {name} sets variables in a nested configuration: "
                                     f'"Configurations": [{{"Classification": "export", "Properties": {{...}}}}]')  # fmt: skip
        for inner in nested:
            if not isinstance(inner, dict) or inner.get("Classification") != "export":
                raise ConfigurationError(f"{where}: {name}'s nested configurations must be the 'export' classification")
            exports.update(_properties(inner.get("Properties", {}), f"{where} {name} export"))
    return Configuration(name, properties, exports)


def _properties(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigurationError(f"{where}: Properties must be an object of names to values")
    return {str(key): str(item) for key, item in value.items()}


def write(configurations: list[Configuration], spark_conf: Path, hadoop_conf: Path) -> list[str]:
    """Write each classification into its file under the two folders, appending as the image does; returns notes for the log."""
    notes = []
    for configuration in configurations:
        target = configuration.target
        folder = spark_conf if target.folder == "spark" else hadoop_conf
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / target.file
        if target.format == "xml":
            _write_xml(path, configuration.properties)
        else:
            with open(path, "a", encoding="utf-8") as file:
                file.write(_text(target.format, configuration))
        if not target.local:
            notes.append(f"configuration {configuration.classification}: written to {path}, but it configures a service local Spark does "
                         "not start (YARN, Hive, Hadoop daemons), so it has no effect locally")  # fmt: skip
    return notes


def _text(form: str, configuration: Configuration) -> str:
    if form == "env":
        return "".join(f"export {key}={value}\n" for key, value in configuration.exports.items())
    separator = " " if form == "conf" else "="
    return "".join(f"{key}{separator}{value}\n" for key, value in configuration.properties.items())


def _write_xml(path: Path, properties: Mapping[str, str]) -> None:
    """Add properties to a Hadoop XML file, before its closing tag (a new file when there is none)."""
    entries = "".join(f"  <property>\n    <name>{escape(key)}</name>\n    <value>{escape(value)}</value>\n  </property>\n"
                      for key, value in properties.items())  # fmt: skip
    if path.is_file():
        text = path.read_text().replace("</configuration>", f"{entries}</configuration>")
    else:
        text = f'<?xml version="1.0"?>\n<?xml-stylesheet type="text/xsl" href="configuration.xsl"?>\n<configuration>\n{entries}</configuration>\n'
    path.write_text(text)
