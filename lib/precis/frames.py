"""Compute a frame once, keep it, and read counters gathered while computing it.

Iterative and multi-step jobs cut lineage on purpose (checkpoints) and count what they
produced without a second pass (``observe``). Spark Connect (4.0) does not deliver the
metrics observed while a checkpoint is computed, so there the same aggregates are taken
from the checkpointed rows: a pass over data already computed, not a recomputation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from precis.columns import INGEST_RUN_ID, INGESTED_AT, RUN_ID, SOURCE_FILE

How = Literal["local", "reliable", "persist"]

#: Where a session keeps reliable checkpoints (Spark 4 reads it when the session starts).
CHECKPOINT_DIR = "spark.checkpoint.dir"

# Frames read more than once within a step: in memory while it fits, spilled to local
# disk beyond (a recomputation would reread and rejoin the inputs).
KEEP = StorageLevel.MEMORY_AND_DISK
# Frames as large as a job's input itself (a landed batch, typed): on local disk only.
# Cached in memory, such a frame fills the storage memory with its own blocks, which
# Spark does not evict to make room for more blocks of the same frame, and leaves the
# stage that computes it without execution memory: a million-people ingest failed so
# with a 4 GB local driver. Read back two or three times, a disk copy still beats
# recomputing it (reading, parsing and hashing the landed files again).
SPILLED = StorageLevel.DISK_ONLY


def checkpoint_dir(spark: SparkSession) -> str | None:
    """The session's reliable checkpoint directory, or None: then only local checkpoints
    (kept by the executors) are available."""
    try:
        return spark.conf.get(CHECKPOINT_DIR, None) or None
    except Exception:
        return None


def cut_how(spark: SparkSession) -> How:
    """How :func:`cut` checkpoints in this session: ``reliable`` on a cluster with a
    checkpoint directory, ``local`` on a ``local[...]`` master (there an executor loss is
    the driver's loss too, so local checkpoints are as safe and cheaper) or without one."""
    try:
        master = spark.conf.get("spark.master", "") or ""
    except Exception:
        master = ""
    return how_to_cut(master, checkpoint_dir(spark))


def how_to_cut(master: str, directory: str | None) -> How:
    """:func:`cut_how` for a session's master URL and checkpoint directory."""
    return "local" if master.startswith("local") or not directory else "reliable"


def cut(frame: DataFrame) -> DataFrame:
    """``frame`` computed now, with its lineage cut where it must survive an executor loss.

    For rows a recomputation would not reproduce (ids numbered by partition or by a
    window over ties, random draws) and for results a later step rereads many times: a
    local checkpoint kept by an executor is lost with it, and Spark then recomputes the
    lineage, which could give other ids than those already used. On a cluster the rows
    go to the session's checkpoint directory (:func:`cut_how`).
    """
    return materialize(frame, [], how=cut_how(frame.sparkSession))[0]


@contextmanager
def kept(*frames: DataFrame, level: StorageLevel = KEEP) -> Iterator[tuple[DataFrame, ...]]:
    """Persist ``frames`` for the block, and release them when it ends, error or not.

        with kept(orders, daily) as (orders, daily):
            ...

    Persisting is lazy: the first action inside the block computes and keeps them.
    """
    persisted = tuple(frame.persist(level) for frame in frames)
    try:
        yield persisted
    finally:
        for frame in persisted:
            frame.unpersist()


def materialize(
    frame: DataFrame,
    metrics: Sequence[Column],
    *,
    how: How = "local",
    storage_level: StorageLevel | None = None,
) -> tuple[DataFrame, dict[str, Any]]:
    """(the frame computed once, ``{alias: value}`` of the aggregate ``metrics`` over it).

    ``how``: ``local`` checkpoint (kept by the executors, ``storage_level`` if given),
    ``reliable`` checkpoint (files in the session's checkpoint directory), or ``persist``
    (cached; lineage kept). ``metrics`` are aliased aggregate columns.
    """
    observation = Observation()  # unnamed: unique, as frames of one loop share a plan
    observed = frame.observe(observation, *metrics) if metrics else frame
    if how == "persist":
        kept = observed.persist(storage_level) if storage_level else observed.persist()
        kept.count()
    elif how == "reliable":
        kept = observed.checkpoint(eager=True)
    else:
        kept = observed.localCheckpoint(eager=True, storageLevel=storage_level)
    if not metrics:
        return kept, {}
    values = observation.get
    if not values:
        # Spark Connect: the checkpoint's job reported no metrics.
        values = kept.agg(*metrics).collect()[0].asDict()
    return kept, values


@contextmanager
def kept_observed(
    frame: DataFrame, metrics: Sequence[Column], level: StorageLevel = KEEP
) -> Iterator[tuple[DataFrame, dict[str, Any]]]:
    """``frame`` computed once and kept for the block, with the aggregate ``metrics``
    observed while computing it; released when the block ends, error or not.

        with kept_observed(rows, [row_count()]) as (rows, counted):
            ...
    """
    if type(frame).__module__.startswith("pyspark.sql.connect"):
        # Spark Connect keeps the observation in every plan built on the kept frame, and
        # a plan that reaches it twice (a self-join) fails on the repeated metric name;
        # so there the metrics are one pass over the kept rows instead.
        with kept(frame, level=level) as (computed,):
            yield computed, computed.agg(*metrics).collect()[0].asDict()
        return
    observation = Observation()  # unnamed: unique, as frames of one loop share a plan
    with kept(frame.observe(observation, *metrics), level=level) as (computed,):
        computed.count()  # computes and keeps it: the metrics are observed on the way
        values = observation.get or computed.agg(*metrics).collect()[0].asDict()
        yield computed, values


def row_count() -> Column:
    """The ``rows`` metric: how many rows the frame has."""
    return F.count(F.lit(1)).alias("rows")


#: Columns that say when or by which run a row was written, or from which landed file:
#: new in every run by design, so digests leave them out.
VOLATILE = frozenset(
    {
        SOURCE_FILE,
        INGEST_RUN_ID,
        INGESTED_AT,
        RUN_ID,
        "computed_at",
        "generated_at",
        "changed_at",
        "created_at",
        "model_version",
    }
)


def digest(frame: DataFrame, ignore: frozenset[str] = VOLATILE) -> dict[str, Any]:
    """Row count and the sum of a 64-bit hash of each row (columns in ``ignore`` left
    out): independent of row order and file layout, and any changed value changes it
    (barring a hash collision). Two runs' outputs compare by their digests."""
    columns = sorted(c for c in frame.columns if c not in ignore)
    # to_json of a struct keeps every type (maps, arrays, doubles) as text exactly.
    row_hash = F.xxhash64(F.to_json(F.struct(*columns))).cast("decimal(38,0)")
    row = frame.agg(F.count(F.lit(1)).alias("rows"), F.sum(row_hash).alias("sum")).collect()[0]
    return {"rows": int(row["rows"]), "digest": str(row["sum"]), "columns": columns}
