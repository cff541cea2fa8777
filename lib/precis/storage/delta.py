"""Delta tables by path, through SQL only (works over Spark Connect too)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlparse

from pyspark.errors import AnalysisException
from pyspark.sql import Row, SparkSession

from precis.session import is_remote
from precis.settings import local_file_path


def delta_table(path: str) -> str:
    """The SQL name of the Delta table at ``path``: delta.`<path>`."""
    return "delta.`" + path.replace("`", "``") + "`"


#: Errors that mean "no Delta table here" (no such path, or not a Delta table).
_NOT_A_TABLE = (
    "DELTA_TABLE_ONLY_OPERATION",
    "DELTA_MISSING_DELTA_TABLE",
    "PATH_NOT_FOUND",
    "DELTA_TABLE_NOT_FOUND",
)


def _not_a_table(exc: AnalysisException) -> bool:
    return (exc.getCondition() or "") in _NOT_A_TABLE or any(c in str(exc) for c in _NOT_A_TABLE)


def is_table(spark: SparkSession, path: str) -> bool:
    """Whether a Delta table is at ``path``.

    The catalog's lookup loads (and caches) the table's log: a few milliseconds once
    loaded, where reading its history takes a Spark job each time (about 0.1 s on tiny
    tables, and every job asks for dozens of tables)."""
    try:
        return bool(spark.catalog.tableExists(delta_table(path)))
    except AnalysisException as exc:
        if _not_a_table(exc):
            return False
        raise


#: What makes a folder a Delta table: a commit or a checkpoint in its ``_delta_log``.
_LOG_ENTRY = re.compile(r"^[0-9]{20}\.(json|checkpoint\..+)$")


def has_log(folder: str) -> bool:
    """Whether ``folder``, on this machine's file system, holds a Delta table."""
    try:
        with os.scandir(f"{folder}/_delta_log") as entries:
            return any(_LOG_ENTRY.match(entry.name) for entry in entries)
    except (FileNotFoundError, NotADirectoryError):
        return False


@dataclass
class LocalLogs:
    """Whether a lakehouse's tables are folders of this machine's disk, as Spark sees
    them: unknown (None) until a table Spark found or wrote is looked for there.

    Spark takes about 60 ms to say that a table is missing (Delta fails to load its
    log, and the error crosses to Python), and a job's first run asks about tens of
    missing tables; the disk answers in microseconds. Only a classic session's paths
    without a scheme or with ``file:`` can be this machine's; a path Spark resolves on
    another file system (a cluster's HDFS default) shows no log here, so it stays
    with Spark."""

    local: bool | None = None

    def confirm(self, spark: SparkSession, path: str) -> None:
        """``path`` holds a table, as Spark has just said or written."""
        if self.local is None:
            # Not DBFS through its /dbfs mount: this machine's own disk only.
            local = not is_remote(spark) and urlparse(path).scheme in ("", "file")
            self.local = local and has_log(str(local_file_path(path)))

    def exists(self, path: str) -> bool | None:
        """Whether a table is at ``path``, from the disk; None while the disk is not
        known to be Spark's."""
        return has_log(str(local_file_path(path))) if self.local else None


def last_commit(spark: SparkSession, path: str) -> Row | None:
    """The newest entry of the Delta log at ``path`` (``version``, ``operationMetrics``,
    ...), or None when there is no Delta table there."""
    try:
        return spark.sql(f"DESCRIBE HISTORY {delta_table(path)} LIMIT 1").first()
    except AnalysisException as exc:
        if _not_a_table(exc):
            return None
        raise


def vacuum(spark: SparkSession, path: str, hours: int) -> None:
    """VACUUM the Delta table at ``path``, keeping ``hours`` of history.

    LITE first: it finds the files to delete in the table's log instead of listing its
    folder, and on a small table takes a few seconds where a full VACUUM takes half a
    minute. Delta refuses LITE when the log no longer reaches back to the last VACUUM
    (or, for a table never vacuumed, to its first version); then the full VACUUM runs.
    """
    ref = delta_table(path)
    try:
        spark.sql(f"VACUUM {ref} LITE RETAIN {hours} HOURS").collect()
    except Exception as exc:  # DELTA_CANNOT_VACUUM_LITE: an illegal-state error, not analysis
        if "VACUUM_LITE" not in str(exc):
            raise
        spark.sql(f"VACUUM {ref} RETAIN {hours} HOURS").collect()
