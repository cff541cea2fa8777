"""Delta tables by path, through SQL only (works over Spark Connect too)."""

from __future__ import annotations

from pyspark.errors import AnalysisException
from pyspark.sql import Row, SparkSession


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
