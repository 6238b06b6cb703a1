"""Local Spark's one system requirement, Java 17 or newer: where it is, and how to get it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

JAVA_FIX = "install Java 17 or newer: `sudo apt-get install openjdk-17-jre-headless` (Debian, Ubuntu) or `brew install openjdk@17` (macOS)"


def java() -> str | None:
    """The java that pyspark's launcher starts (JAVA_HOME's, else the first on PATH), or None."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")
