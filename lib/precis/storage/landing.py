"""Landing files: list what landed under a dataset's path and read it as landed.

Part of :mod:`precis.storage` (the lakehouse's I/O); ingest uses these.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis.columns import SOURCE_FILE
from precis.errors import ConfigError
from precis.settings import local_file_path
from precis.storage.delta import last_commit


@dataclass(frozen=True)
class LandingFile:
    """One landed file (or, for a Delta landing table, one table version)."""

    path: str
    size: int
    modified: int  # epoch milliseconds, or the table version for Delta


def list_landing_files(spark: SparkSession, path: str, fmt: str) -> list[LandingFile]:
    """Data files under ``path`` (recursively), skipping ``_SUCCESS``, ``.crc`` and the like.

    Empty when the path does not exist: the dataset is absent. Files are listed by Spark
    itself (the ``binaryFile`` source, reading no content), so the listing works on any
    file system the session can read and over Spark Connect; Spark's file index skips
    names starting with ``_`` or ``.`` (partition folders such as ``day=1`` excepted).
    """
    if fmt == "delta":
        commit = last_commit(spark, path)
        if commit is None:
            return []
        version = int(commit["version"])
        return [LandingFile(f"{path}@v{version}", 0, version)]
    try:
        listing = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .load(path)
            .select("path", "length", F.unix_millis("modificationTime").alias("modified"))
            .collect()
        )
    except AnalysisException as exc:
        if (exc.getCondition() or "") == "PATH_NOT_FOUND" or "PATH_NOT_FOUND" in str(exc):
            return []
        raise
    return sorted(
        (LandingFile(r["path"], int(r["length"]), int(r["modified"])) for r in listing),
        key=lambda f: f.path,
    )


def read_landing(
    spark: SparkSession, files: Sequence[LandingFile], fmt: str, base_path: str
) -> DataFrame:
    """Read the given landing files as landed, with ``_source_file`` naming each row's file.

    csv and json are read as strings (no inference): ingest does the typing, so a bad
    value becomes a quarantine reason instead of a reader error or a silent null.
    """
    if fmt == "delta":
        # The version listed, not the latest: ingest reads a batch twice (bronze, silver).
        version = files[0].modified
        df = spark.read.format("delta").option("versionAsOf", version).load(base_path)
        return df.withColumn(SOURCE_FILE, F.lit(files[0].path))
    reader = spark.read.format(fmt).option("basePath", base_path)
    if fmt == "csv":
        reader = (
            reader.option("header", "true")
            .option("inferSchema", "false")
            .option("mode", "PERMISSIVE")
        )
    elif fmt == "json":
        reader = reader.option("primitivesAsString", "true").option("mode", "PERMISSIVE")
    df = reader.load([f.path for f in files])
    return df.withColumn(SOURCE_FILE, F.col("_metadata.file_path"))


def rewrite_landing_without(
    spark: SparkSession,
    where: str,
    fmt: str,
    mark: Callable[[DataFrame], DataFrame],
    flag: str,
) -> dict[str, int]:
    """Rewrite every landing file under ``where`` holding rows that ``mark`` flags (it
    adds the boolean column ``flag``) without those rows; rows removed per file path.

    One pass over the dataset finds the files; each is then read on its own, as its owner
    wrote it, so its columns and values come back as they were (``rewrite_landed_file``).
    A Delta landing table is rewritten as a whole.
    """
    files = list_landing_files(spark, where, fmt)
    if not files:
        return {}
    targets = [where]
    if fmt != "delta":
        hits = mark(read_landing(spark, files, fmt, where)).filter(F.col(flag))
        targets = [r[0] for r in hits.select(SOURCE_FILE).distinct().collect()]
    removed: dict[str, int] = {}
    for path in sorted(targets):
        own = read_landed_file(spark, path, fmt)
        marked = mark(own)
        gone = marked.filter(F.col(flag)).count()
        if gone:
            rewrite_landed_file(marked.filter(~F.col(flag)).select(*own.columns), path, fmt)
            removed[path] = gone
    return removed


def read_landed_file(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    """One landed file as its owner wrote it, for rewriting it (``rewrite_landed_file``):
    csv by its own header as strings, json with its types inferred, parquet and a Delta
    landing table (its latest version) as typed."""
    if fmt == "csv":
        return spark.read.option("header", "true").option("inferSchema", "false").csv(path)
    return spark.read.format(fmt).load(path)


def rewrite_landed_file(rows: DataFrame, path: str, fmt: str) -> int:
    """Replace the landed file ``path`` by ``rows`` (same name, same format, one file);
    the number of rows it now holds. A file left with no row is deleted; a Delta landing
    table (``path`` its folder) gets a new version holding ``rows``.

    For the ``forget`` job's ``forget.rewrite_landing``. Spark writes the rows into a
    hidden folder beside the file (names starting with ``.`` are never listed as landing
    data, so a crash leaves nothing ingest would read), then the finished file replaces
    the original by a rename on the same file system: readers see the old file or the new
    one, never half of one. Renaming needs the file system of the process running the
    job: local disk, or a mount such as Databricks' ``/dbfs`` and ``/Volumes``.
    """
    if fmt == "delta":
        # A new version of the table without the rows; its history is the owner's.
        kept = rows.count()
        rows.write.format("delta").mode("overwrite").save(path)
        return kept
    local = _local_file(path)
    kept = rows.count()
    if kept == 0:
        local.unlink()
        return 0
    staging = local.with_name(f".precis-rewrite-{local.name}")
    shutil.rmtree(staging, ignore_errors=True)  # left by a crashed attempt
    writer = rows.coalesce(1).write.mode("overwrite").format(fmt)
    if fmt == "csv":
        # Values as landed: Spark's csv writer trims them unless told not to.
        writer = (
            writer.option("header", "true")
            .option("ignoreLeadingWhiteSpace", "false")
            .option("ignoreTrailingWhiteSpace", "false")
        )
    if fmt in ("csv", "json") and local.name.endswith(".gz"):
        writer = writer.option("compression", "gzip")
    writer.save(str(staging))
    (part,) = staging.glob("part-*")
    part.replace(local)  # a rename on one file system: atomic
    shutil.rmtree(staging)
    return kept


def _local_file(path: str) -> Path:
    local = local_file_path(path)
    if local is None or not Path(local).is_file():
        raise ConfigError(
            f"forget.rewrite_landing: cannot rewrite {path}: landing files are rewritten "
            "through the file system of the process running the job (local disk, /dbfs, "
            "/Volumes), and this file is not there; remove the person's rows from it "
            "yourself, or turn forget.rewrite_landing off (meta/suppressions keeps them "
            "out of every later ingest either way)"
        )
    return Path(local)
