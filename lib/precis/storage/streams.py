"""Landing folders read as streams, and the streaming query that feeds a micro-batch handler.

Part of :mod:`precis.storage` (the lakehouse's I/O); the ``stream`` job uses these. A file
stream reads each landed file once, in the order files appear; which files are done is
kept in the query's checkpoint, so a restart picks up exactly where the last finished
micro-batch stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.types import StringType, StructField, StructType

from precis.columns import CORRUPT_RECORD, LANDED_AT, SOURCE_FILE, STREAM_DATASET
from precis.config import Config
from precis.errors import MissingDatasetError
from precis.schemas import SPECS
from precis.storage.landing import _path_not_found, list_landing_files


def _schema(spark: SparkSession, dataset: str, path: str, fmt: str) -> StructType:
    """The schema a landing stream reads: csv and json as strings (ingest's typing turns
    a bad value into a reason, as for batches); parquet as its files are, or the
    contract's types before any file has landed."""
    spec = SPECS[dataset]
    if fmt in ("csv", "json"):
        fields = [StructField(c, StringType()) for c in spec.column_names]
        return StructType([*fields, StructField(CORRUPT_RECORD, StringType())])
    try:
        found = spark.read.option("recursiveFileLookup", "true").parquet(path).schema
    except AnalysisException as exc:
        if _path_not_found(exc) or "UNABLE_TO_INFER_SCHEMA" in str(exc):
            return spec.schema
        raise
    return found


def landing_stream(
    spark: SparkSession, dataset: str, path: str, fmt: str, max_files: int | None = None
) -> tuple[DataFrame, list[str]]:
    """(the landed rows of ``dataset`` under ``path`` as a stream, its landed columns).

    Rows carry ``_source_file``, ``_landed_at`` and ``_dataset``; csv files must hold the
    contract's columns in the contract's order (a stream has one schema; the header is
    checked), json and parquet match columns by name.
    """
    if fmt == "delta":
        reader = spark.readStream.format("delta")
        if max_files:
            reader = reader.option("maxFilesPerTrigger", max_files)
        df = reader.load(path)
        columns = list(df.columns)
        source, landed = F.lit(f"{path}@stream"), F.current_timestamp()
    else:
        schema = _schema(spark, dataset, path, fmt)
        reader = spark.readStream.format(fmt).schema(schema).option("recursiveFileLookup", "true")
        if max_files:
            reader = reader.option("maxFilesPerTrigger", max_files)
        if fmt in ("csv", "json"):
            reader = reader.option("mode", "PERMISSIVE").option(
                "columnNameOfCorruptRecord", CORRUPT_RECORD
            )
        if fmt == "csv":
            reader = reader.option("header", "true").option("enforceSchema", "false")
        try:
            df = reader.load(path)
        except AnalysisException as exc:
            if _path_not_found(exc):
                raise MissingDatasetError(f"no landing folder for {dataset} at {path}") from None
            raise
        columns = [c for c in schema.fieldNames() if c != CORRUPT_RECORD]
        source = F.col("_metadata.file_path")
        landed = F.col("_metadata.file_modification_time")
    out = df.select(
        "*",
        source.alias(SOURCE_FILE),
        landed.alias(LANDED_AT),
        F.lit(dataset).alias(STREAM_DATASET),
    )
    return out, columns


def landing_streams(
    spark: SparkSession, cfg: Config, datasets: Sequence[str], required: str
) -> tuple[DataFrame, dict[str, list[str]]]:
    """The landed rows of ``datasets`` as one stream, and each one's landed columns. A
    file dataset with nothing landed yet is left out, except ``required``, which fails
    naming its folder."""
    frames, columns = [], {}
    for dataset in datasets:
        path, fmt = cfg.landing_path(dataset), cfg.landing_format(dataset)
        if fmt != "delta" and not list_landing_files(spark, path, fmt):
            if dataset == required:
                raise MissingDatasetError(
                    f"no {dataset} have landed at {path}: the stream reads {dataset} as they land"
                )
            continue
        frame, columns[dataset] = landing_stream(
            spark, dataset, path, fmt, cfg.stream.max_files_per_trigger
        )
        frames.append(frame)
    return union(frames), columns


def union(streams: Sequence[DataFrame]) -> DataFrame:
    """The streams as one (columns by name; a column one lacks is null there)."""
    out = streams[0]
    for more in streams[1:]:
        out = out.unionByName(more, allowMissingColumns=True)
    return out


def start(
    df: DataFrame,
    handler: Callable[[DataFrame, int], Any],
    checkpoint: str,
    interval_seconds: float | None,
    name: str,
) -> StreamingQuery:
    """Feed each micro-batch of ``df`` to ``handler``; ``interval_seconds`` None: what has
    landed, then stop (available-now), else a micro-batch every so many seconds."""
    writer = df.writeStream.foreachBatch(handler).option("checkpointLocation", checkpoint)
    if interval_seconds is None:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{interval_seconds:g} seconds")
    return writer.queryName(name).start()
