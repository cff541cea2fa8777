"""Landing files: list what landed under a dataset's path and read it as landed.

Part of :mod:`precis.storage` (the lakehouse's I/O); ingest uses these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis.columns import SOURCE_FILE
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
        df = spark.read.format("delta").load(base_path)
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
