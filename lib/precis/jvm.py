"""The one place that names the JVM packages the jobs need.

Versions derive from the installed Python packages, so ``pip install delta-spark==X``
and the Delta jars on the classpath cannot drift apart. Spark resolves the coordinates
from Maven Central through Ivy once and reuses its cache afterwards.

``python -m precis.jvm`` prints the ``--packages`` value for cluster users.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import sys


def _version(dist: str) -> str:
    return importlib.metadata.version(dist)


def scala_binary_version() -> str:
    # Spark 4 is built only for Scala 2.13; Spark 3.x defaults to 2.12.
    return "2.13" if int(_version("pyspark").split(".")[0]) >= 4 else "2.12"


def delta_packages() -> list[str]:
    return [f"io.delta:delta-spark_{scala_binary_version()}:{_version('delta-spark')}"]


def packages(extra: tuple[str, ...] = ()) -> list[str]:
    """Maven coordinates for ``spark.jars.packages`` / ``--packages``."""
    return [*delta_packages(), *extra]


def ivy_settings_path() -> str:
    """Ivy settings that resolve from the local Maven repository, then Maven Central only.

    Spark's built-in chain also asks repos.spark-packages.org, which is slow to fail
    behind a firewall and not needed for anything we use.
    """
    return str(importlib.resources.files("precis") / "resources" / "ivysettings.xml")


def log4j_config_path() -> str:
    """Quiet Spark logging (warnings only) for jobs launched by precis."""
    return str(importlib.resources.files("precis") / "resources" / "log4j2.properties")


if __name__ == "__main__":
    print(",".join(packages()))
    sys.exit(0)
