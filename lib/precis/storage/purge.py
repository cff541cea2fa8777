"""Deleting rows for good: by key, by age, from history and from export files.

Part of :class:`precis.storage.Lakehouse` (a mixin). A Delta DELETE only unlinks files:
the rows stay readable by time travel until a VACUUM removes the files, and with
deletion vectors the files are not even rewritten until a REORG purges them.
``purge_history`` does both. The rows to delete are given as a frame joined in a MERGE,
never as literals, so no deleted value lands in the table's commit log.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import ONE_ID
from precis.frames import cut
from precis.storage.delta import delta_table, vacuum
from precis.storage.exports import write_export_files
from precis.tables import Table

if TYPE_CHECKING:
    from pyspark.sql import Row, SparkSession

# Delta refuses a VACUUM that keeps less than this unless its safety check is off.
_DELTA_SAFE_HOURS = 168
_RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
_EXPORT_DIR = re.compile(r"^(.*/exports/[^/]+/run_date=[^/]+)/(.*)$")


class Purge:
    if TYPE_CHECKING:  # what the mixin uses of Lakehouse
        spark: SparkSession
        root: str
        vacuum_hours: int

        def path(self, table: Table) -> str: ...
        def exists(self, table: Table) -> bool: ...
        def read(self, table: Table, version: int | None = None) -> DataFrame: ...
        def _sql_with(self, df: DataFrame, statement: Callable[[str], str]) -> Row: ...

    def delete_matching(self, table: Table, matches: DataFrame, on: Sequence[str]) -> int:
        """Delete the rows whose ``on`` columns equal a row of ``matches`` (null-safe);
        the number deleted. Nothing when the table or one of the columns is absent."""
        if not self.exists(table):
            return 0
        if any(c not in self.read(table).columns for c in on):
            return 0
        condition = " AND ".join(f"t.`{c}` <=> s.`{c}`" for c in on)
        result = self._sql_with(
            matches.select(*on).distinct(),
            lambda source: (
                f"MERGE INTO {delta_table(self.path(table))} t USING {source} s "
                f"ON {condition} WHEN MATCHED THEN DELETE"
            ),
        )
        return int(result["num_deleted_rows"] or 0)

    def purge_history(self, table: Table, hours: int) -> None:
        """Make deleted rows unreadable: purge deletion vectors, then VACUUM keeping
        ``hours`` of history (below Delta's 168-hour floor its safety check is turned
        off for this VACUUM only)."""
        if not self.exists(table):
            return
        ref = delta_table(self.path(table))
        properties = self.spark.sql(f"SHOW TBLPROPERTIES {ref}").collect()
        if any(r[0] == "delta.enableDeletionVectors" and r[1] == "true" for r in properties):
            self.spark.sql(f"REORG TABLE {ref} APPLY (PURGE)")
        if hours >= _DELTA_SAFE_HOURS:
            vacuum(self.spark, self.path(table), hours)
            return
        before = self.spark.conf.get(_RETENTION_CHECK, "true")
        self.spark.conf.set(_RETENTION_CHECK, "false")
        try:
            vacuum(self.spark, self.path(table), hours)
        finally:
            self.spark.conf.set(_RETENTION_CHECK, before or "true")

    def expire(self, table: Table, column: str, before: dt.date) -> int:
        """Delete rows whose ``column`` is before ``before`` and, when there were any,
        vacuum after ``vacuum_hours`` (retention of rows such as bronze's)."""
        if not self.exists(table) or column not in self.read(table).columns:
            return 0
        ref = delta_table(self.path(table))
        done = self.spark.sql(
            f"DELETE FROM {ref} WHERE `{column}` < TIMESTAMP'{before.isoformat()} 00:00:00'"
        ).collect()
        deleted = int(done[0][0] or 0) if done else 0
        if deleted:
            vacuum(self.spark, self.path(table), self.vacuum_hours)
        return deleted

    def export_folders(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """Every export written: (folder of one run date, format, partition columns)."""
        try:
            files = (
                self.spark.read.format("binaryFile")
                .option("recursiveFileLookup", "true")
                .load(f"{self.root}/exports")
                .select("path")
                .collect()
            )
        except AnalysisException as exc:  # no exports folder yet
            if "PATH_NOT_FOUND" in str(exc):
                return []
            raise
        found: dict[str, tuple[str, tuple[str, ...]]] = {}
        for row in files:
            match = _EXPORT_DIR.match(row["path"])
            if not match or not row["path"].endswith((".parquet", ".csv")):
                continue
            folder, rest = match.groups()
            dirs = rest.split("/")[:-1]
            # Plain folders (a release name) extend the export; key=value ones partition it.
            while dirs and "=" not in dirs[0]:
                folder = f"{folder}/{dirs.pop(0)}"
            parts = tuple(p.split("=", 1)[0] for p in dirs)
            fmt = "parquet" if row["path"].endswith(".parquet") else "csv"
            found[folder] = (fmt, parts)
        return sorted((folder, fmt, parts) for folder, (fmt, parts) in found.items())

    def forget_in_exports(self, one_ids: DataFrame) -> dict[str, int]:
        """Rewrite every export folder holding any of ``one_ids`` without their rows;
        rows removed per folder (folders without them are left alone)."""
        removed: dict[str, int] = {}
        people = one_ids.select(F.col(ONE_ID).cast("string").alias("_forget_id")).distinct()
        for folder, fmt, partitions in self.export_folders():
            reader = self.spark.read.format(fmt)
            if fmt == "csv":
                reader = reader.option("header", "true")
            rows = reader.load(folder)
            if ONE_ID not in rows.columns:
                continue
            hit = F.col(ONE_ID).cast("string") == F.col("_forget_id")
            marked = rows.join(F.broadcast(people), hit, how="left")
            gone = marked.filter(F.col("_forget_id").isNotNull()).count()
            if not gone:
                continue
            # The kept rows are computed before the folder is replaced: Spark will not
            # overwrite a path its plan still reads.
            kept = cut(marked.filter(F.col("_forget_id").isNull()).drop("_forget_id"))
            write_export_files(kept, folder, fmt, partitions)
            removed[folder] = gone
        return removed
