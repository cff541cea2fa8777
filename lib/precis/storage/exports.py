"""How long activation exports live: dated export folders past retention are deleted.

Part of :class:`precis.storage.Lakehouse` (a mixin). An export is a folder
``<root>/exports/<name>/run_date=<date>`` that activation tools pick up; a person who
withdraws consent (or is forgotten) is absent from the next one, so deleting the older
folders bounds how long they stay in any export file. The tags and recommend jobs prune
right after they export (``exports.retention_days``).

Folders are listed with Spark's ``binaryFile`` source and an old folder is emptied by
overwriting it with no rows, which deletes its files and leaves an empty folder behind
(skipped by later listings). Spark does both on any file system the session can write
(local disk, HDFS, S3, ADLS, DBFS) and over Spark Connect alike, without the JVM.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.errors import AnalysisException
from pyspark.sql import functions as F

from precis.progress import log
from precis.settings import local_file_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_DATED = re.compile(r"^run_date=(\d{4}-\d{2}-\d{2})$")


class Exports:
    if TYPE_CHECKING:  # what the mixin uses of Lakehouse
        spark: SparkSession
        root: str

        def export_path(self, name: str, run_date: dt.date) -> str: ...

    def export_dates(self, name: str) -> list[dt.date]:
        """The run dates with an export folder of ``name`` that holds data, oldest first."""
        return _dates_listed_by_spark(self.spark, f"{self.root}/exports/{name}")

    def prune_exports(self, name: str, run_date: dt.date, days: int) -> list[dt.date]:
        """Delete the export folders of ``name`` dated more than ``days`` days before
        ``run_date`` (the one exactly ``days`` before stays); returns their dates.

        Called right after ``run_date``'s export is written, and logs its path. Folders of
        later dates (a backfill of an older date) and anything not named
        ``run_date=<date>`` are left alone.
        """
        cutoff = run_date - dt.timedelta(days=days)
        old = [d for d in self.export_dates(name) if d < cutoff]
        for day in old:
            _empty_by_spark(self.spark, self.export_path(name, day))
        log.info(
            "exported %s; %d older export folder(s) deleted (before %s)",
            self.export_path(name, run_date),
            len(old),
            cutoff.isoformat(),
        )
        return old


def _date(name: str) -> dt.date | None:
    found = _DATED.match(name)
    if found is None:
        return None
    try:
        return dt.date.fromisoformat(found.group(1))
    except ValueError:  # run_date=2026-02-30
        return None


# ------------------------------------------------------------------ Spark Connect
def _dates_listed_by_spark(spark: SparkSession, folder: str) -> list[dt.date]:
    """Dates of the folders under ``folder`` holding a non-empty file (an emptied one
    holds none)."""
    try:
        files = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .load(folder)
            .filter(F.col("length") > 0)
            .select("path")
            .collect()
        )
    except AnalysisException as exc:
        if "PATH_NOT_FOUND" in (exc.getCondition() or "") + str(exc):
            return []
        raise
    prefix = folder.rstrip("/").rsplit("/", 1)[-1] + "/"
    dates = set()
    for row in files:
        # .../exports/<name>/run_date=<date>/...: the folder right below the export's own.
        rest = row["path"].split("/" + prefix, 1)[-1]
        day = _date(rest.split("/", 1)[0])
        if day is not None:
            dates.add(day)
    return sorted(dates)


def _empty_by_spark(spark: SparkSession, path: str) -> None:
    # An overwrite deletes everything under the path before it writes; no rows are written.
    spark.createDataFrame([], "value string").write.mode("overwrite").text(path)


def write_export_files(df: DataFrame, path: str, fmt: str, partition_by: Sequence[str]) -> None:
    """Replace the files of an export folder: csv with a header, or parquet.

    On a file system this process sees (local disk, ``/dbfs``, ``/Volumes``) the export
    is written whole to ``<export>/_staging/<random>`` first and then renamed into
    place: a crash while writing leaves the previous export as it was, and the rerun
    replaces it. Elsewhere (object stores, Spark Connect) the files are written in
    place by Spark's committer, which writes ``_SUCCESS`` last: readers should wait for it.
    """
    from precis.session import is_remote

    local = None if is_remote(df.sparkSession) else local_file_path(path)
    staging = f"{path.split('/run_date=', 1)[0]}/_staging"
    target = path if local is None else f"{staging}/{uuid.uuid4().hex}"
    writer = df.write.mode("overwrite")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if fmt == "csv":
        writer.option("header", True).csv(target)
    else:
        writer.parquet(target)
    if local is None:
        return
    staged = Path(str(local_file_path(target)))
    if not staged.is_dir():
        # A path without a scheme that Spark resolved on another file system (a cluster's
        # HDFS default): this process cannot rename there, so write in place after all.
        log.warning("export %s: not on this machine's file system, written in place", path)
        if fmt == "csv":
            writer.option("header", True).csv(path)
        else:
            writer.parquet(path)
        _empty_by_spark(df.sparkSession, staging)
        return
    _swap(staged, Path(local))
    shutil.rmtree(str(local_file_path(staging)), ignore_errors=True)  # and what a crash left


def _swap(staged: Path, target: Path) -> None:
    """Put the folder ``staged`` where ``target`` is: two renames, the old one set aside
    under a hidden name (which Spark and the export listing skip) and then deleted."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex}")
    if target.exists():
        target.rename(old)
    staged.rename(target)
    shutil.rmtree(old, ignore_errors=True)
