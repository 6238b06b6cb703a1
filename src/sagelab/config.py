"""Settings from `[tool.sagelab]` in the project's pyproject.toml.

    [tool.sagelab]
    store = ".sagelab/s3"        # where the local object store keeps s3:// objects
    region = "us-east-1"         # the region local runs pretend to be in
    account = "000000000000"     # the account id in ARNs and the default bucket name
    concurrency = 4              # steps run at once (default: the CPU count)
    cache = "content"            # reuse step runs: "sagemaker" (CacheConfig, the default), "content", "off"
    environment = "image"        # steps run on their image's packages ("image", the default) or sagelab's ("host")
    bucket = "my-team-bucket"    # where pipelines keep code and outputs (default: SageMaker's default bucket)
    role = "arn:aws:iam::123456789012:role/SageMakerRole"   # the execution role written into steps
    instance_type = "ml.m5.large"   # step defaults for pipelines written with sagelab.pipeline
    instance_count = 1
    volume_size_gb = 30
    spark = "local[*]"           # notebooks' Spark: local[N] on this machine, "sc://host:port" (Spark Connect) or
                                 # "livy+http://host:8998" (Livy, EMR on EC2)
    spark_conf = { "spark.driver.memory" = "4g" }   # Spark properties of that session
    endpoint_log_mb = 10         # a local endpoint's log is rotated past this size (it keeps at most twice it)

    [tool.sagelab.profiles.local]   # a profile overrides any of the keys above
    concurrency = 2

    [tool.sagelab.profiles.aws]     # a profile that runs on SageMaker, with its data in S3
    engine = "sagemaker"
    region = "eu-west-1"
    account = "123456789012"
    role = "arn:aws:iam::123456789012:role/SageMakerRole"
    bucket = "my-team-bucket"
    aws_profile = "ml-dev"          # the boto3 profile; credentials only ever come from boto3's chain
    s3_endpoint_url = "http://127.0.0.1:8333"   # optional: MinIO or another S3-compatible store
    tags = { team = "ml" }
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from sagelab.errors import ConfigError

STATE_DIR = ".sagelab"


@dataclass(frozen=True)
class Settings:
    """Where a project keeps its state, and how local runs behave."""

    root: Path
    store: Path
    region: str = "us-east-1"
    account: str = "000000000000"
    concurrency: int = os.cpu_count() or 1
    bucket: str | None = None
    role: str | None = None
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    volume_size_gb: int = 30
    cache: str = "sagemaker"
    environment: str = "image"  # "image": a step runs on its image's packages (docs/containers.md); "host": on sagelab's
    engine: str = "local"  # "sagemaker" runs pipelines on SageMaker Pipelines
    aws_profile: str | None = None
    s3_endpoint_url: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    spark: str = "local[*]"  # where notebooks' Spark runs: local[N] (pyspark here), sc://host:port (Spark Connect), livy+http(s)://host:port
    spark_conf: tuple[tuple[str, str], ...] = ()  # Spark properties for that session, e.g. spark.driver.memory
    profile: str = "local"
    endpoint_log_mb: int = 10  # a local endpoint's log rotates past this many MB

    @property
    def endpoint_log_bytes(self) -> int:
        return self.endpoint_log_mb * 1024 * 1024

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def default_bucket(self) -> str:
        """The configured bucket, else SageMaker's default bucket `sagemaker-<region>-<account>`."""
        return self.bucket or f"sagemaker-{self.region}-{self.account}"

    @property
    def role_arn(self) -> str:
        return self.role or f"arn:aws:iam::{self.account}:role/SageMakerRole"


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder holding pyproject.toml, or `start` itself when there is none."""
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return here


def load_settings(root: Path | None = None, profile: str = "local") -> Settings:
    """Read `[tool.sagelab]`, apply the profile, and check every value."""
    root = find_project_root(root)
    table = _read_table(root / "pyproject.toml")
    profiles = table.pop("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError("pyproject.toml [tool.sagelab] profiles must be a table of tables")
    if profile != "local" and profile not in profiles:
        known = ", ".join(["local", *profiles]) or "local"
        raise ConfigError(f"profile {profile!r} is not defined; add [tool.sagelab.profiles.{profile}] or use one of: {known}")
    values = {**table, **profiles.get(profile, {})}
    known_keys = ({f.name for f in fields(Settings)} - {"root", "profile"}) | {"parity"}  # parity: an error that says what replaced it
    for key in values:
        if key not in known_keys:
            raise ConfigError(f"pyproject.toml [tool.sagelab]: unknown key {key!r}; known keys: {', '.join(sorted(known_keys))}")
    settings = Settings(root=root, store=root / STATE_DIR / "s3", profile=profile)
    return replace(settings, **_checked(values, root))


def _checked(values: dict[str, Any], root: Path) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    where = "pyproject.toml [tool.sagelab]"
    for key, value in values.items():
        if key in ("concurrency", "instance_count", "volume_size_gb", "endpoint_log_mb"):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{where} {key} must be a whole number of at least 1; got {value!r}")
            checked[key] = value
        elif key == "bucket":
            if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", value):
                raise ConfigError(f"{where} bucket must be an S3 bucket name such as my-team-bucket; got {value!r}")
            checked[key] = value
        elif key == "role":
            if not isinstance(value, str) or not value.startswith("arn:aws"):
                raise ConfigError(f"{where} role must be an IAM role ARN (arn:aws:iam::<account>:role/<name>); got {value!r}")
            checked[key] = value
        elif key == "cache":
            if value not in ("sagemaker", "content", "off"):
                raise ConfigError(f'{where} cache must be "sagemaker", "content" or "off"; got {value!r}')
            checked[key] = value
        elif key == "environment":
            if value not in ("image", "host"):
                raise ConfigError(f'{where} environment must be "image" (steps run on their image\'s packages) or "host" '
                                  f"(on sagelab's own); got {value!r}")
            checked[key] = value
        elif key == "parity":
            raise ConfigError(f'{where} parity is gone: steps run on their image\'s packages by default now. Remove it, or write '
                              'environment = "host" to run steps on sagelab\'s own packages')
        elif key == "engine":
            if value not in ("local", "sagemaker"):
                raise ConfigError(f'{where} engine must be "local" or "sagemaker"; got {value!r}')
            checked[key] = value
        elif key in ("aws_profile", "s3_endpoint_url"):
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where} {key} must be a string; got {value!r}")
            if key == "s3_endpoint_url" and not value.startswith(("http://", "https://")):
                raise ConfigError(f"{where} s3_endpoint_url must be an http(s):// URL; got {value!r}")
            checked[key] = value
        elif key == "tags":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ConfigError(f'{where} tags must be a table of strings, e.g. tags = {{ team = "ml" }}; got {value!r}')
            checked[key] = tuple(sorted(value.items()))
        elif key == "spark":
            checked[key] = spark_target(value, where)
        elif key == "spark_conf":
            if not isinstance(value, dict) or not all(isinstance(v, (str, int, float, bool)) for v in value.values()):
                raise ConfigError(f'{where} spark_conf must be a table of Spark properties, e.g. spark_conf = {{ "spark.driver.memory" = "4g" }}; '
                                  f"got {value!r}")
            checked[key] = tuple(sorted((k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()))
        elif key == "instance_type":
            if not isinstance(value, str) or not value.startswith("ml."):
                raise ConfigError(f"{where} instance_type must be a SageMaker instance type such as ml.m5.large; got {value!r}")
            checked[key] = value
        elif key == "store":
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where} store must be a folder path; got {value!r}")
            checked[key] = (root / value).absolute()
        elif key == "region":
            if not isinstance(value, str) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", value):
                raise ConfigError(f"{where} region must look like us-east-1; got {value!r}")
            checked[key] = value
        elif key == "account":
            if not isinstance(value, str) or not re.fullmatch(r"\d{12}", value):
                raise ConfigError(f'{where} account must be 12 digits in quotes, such as "123456789012"; got {value!r}')
            checked[key] = value
    return checked


def spark_target(value: Any, where: str) -> str:
    """A valid `spark` setting: local[*], local[N], sc://host:port or livy+http(s)://host:port, with no secret in it."""
    if isinstance(value, str) and re.match(r"https?://", value):
        raise ConfigError(f"{where} spark {value!r} does not say which protocol it speaks: write livy+{value} for a Livy server "
                          '(EMR on EC2), or "sc://host:port" for Spark Connect')
    if not isinstance(value, str) or not re.fullmatch(r"local(\[(\*|\d+)\])?|sc://[^/;]+(/.*)?|livy\+https?://[^/?#\s]+(/[^?#\s]*)?", value):
        raise ConfigError(f'{where} spark must be "local[*]" (or local[N]: Spark on this machine), "sc://host:port" '
                          f'(a Spark Connect server) or "livy+http://host:8998" (a Livy server; livy+https:// with TLS); got {value!r}')
    if "token=" in value:
        raise ConfigError(f"{where} spark names a token: put it in the SPARK_CONNECT_AUTHENTICATE_TOKEN variable, never in a file")
    if value.startswith("livy+") and "@" in value.split("/")[2]:
        raise ConfigError(f"{where} spark names a Livy user or password: put them in the SAGELAB_LIVY_USER and SAGELAB_LIVY_PASSWORD "
                          "variables, never in a file")
    return value


def _read_table(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    table = document.get("tool", {}).get("sagelab", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.sagelab] must be a table")
    return dict(table)
