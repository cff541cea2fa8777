"""stream: the speed layer. Hot tags and marketing triggers as events and orders land.

Reads the events (and orders) landing folders as a stream; each micro-batch goes through
ingest's conforming and hashing, resolves people through ``gold/identity_map``
(provisional one_ids for identifiers it lacks), and MERGEs ``gold/realtime_tags``,
``gold/triggers``, the activity it keeps (``meta/stream_activity``) and one progress
row per micro-batch (``meta/stream_progress``); ``precis.stream.micro`` is the
micro-batch. ``stream.trigger: available_now`` processes what has landed and stops (for
schedulers: run it after each landing); an interval runs a micro-batch that often until
stopped (or for ``stream.run_seconds``). The query's checkpoint is
``<storage.root>/_checkpoints/stream``: a restart takes up where the last finished
micro-batch ended.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from precis import tables as T
from precis.columns import RUN_ID
from precis.config import Config
from precis.ingest import conform
from precis.keys import job_key
from precis.progress import Progress, log
from precis.runner import job_main, one_writer
from precis.storage import Lakehouse, streams
from precis.stream import live
from precis.stream.activity import DATASETS
from precis.stream.micro import JOB, MicroBatch
from precis.stream.settings import interval_seconds
from precis.tracking import JobRun, job_run

#: Progress columns logged to MLflow for each micro-batch (step: the batch id).
METRICS = ("rows", "late_rows", "rejected_rows", "tags_changed", "triggers_fired",
           "latency_p50_s", "latency_p95_s")  # fmt: skip
POLL_SECONDS = 5


def checkpoint(cfg: Config) -> str:
    return f"{cfg.root}/_checkpoints/{JOB}"


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    lake = Lakehouse.from_config(spark, cfg)
    settings = conform.IdentifierSettings.of(cfg.ingest, cfg.privacy.pii_types, job_key(lake, cfg))
    source, columns = streams.landing_streams(spark, cfg, list(DATASETS), required="events")
    interval = interval_seconds(cfg.stream.trigger)
    progress = Progress(JOB, 1)
    with job_run(cfg, JOB) as tracker:
        tracker.log_params(cfg.stream.model_dump())
        handler = MicroBatch(
            cfg.stream, settings, conform.ValueChecks.of(cfg.ingest), columns,
            (lake.root, lake.register_tables, lake.database_prefix, lake.snapshot_days,
             lake.vacuum_hours),
            tracker.key,
        )  # fmt: skip
        with progress.step(f"stream ({cfg.stream.trigger})") as step:
            query = streams.start(source, handler, checkpoint(cfg), interval, f"precis_{JOB}")
            rows = watch(query, lake, tracker, cfg.stream.run_seconds)
            step.rows = sum(r["rows"] for r in rows)
            step.detail = f"{len(rows)} micro-batches"
    totals = {m: sum(r[m] or 0 for r in rows) for m in METRICS[:5]}
    progress.finish(
        f"{totals['rows']:,} rows, {totals['late_rows']:,} late, "
        f"{totals['triggers_fired']:,} triggers fired"
    )
    return {"batches": len(rows), **totals}


def watch(
    query: StreamingQuery, lake: Lakehouse, tracker: JobRun, run_seconds: float | None
) -> list[dict[str, Any]]:
    """Wait for the query (until it ends, or ``run_seconds``), logging each finished
    micro-batch's progress row to MLflow; this run's progress rows."""
    seen: dict[int, dict[str, Any]] = {}
    stop_at = None if run_seconds is None else time.monotonic() + run_seconds
    try:
        while query.isActive:
            query.awaitTermination(POLL_SECONDS)
            _log_new(lake, tracker, seen)
            if stop_at is not None and time.monotonic() >= stop_at:
                query.stop()
    except KeyboardInterrupt:
        query.stop()  # a service stopped by hand (Ctrl-C): the checkpoint is consistent
    query.awaitTermination()  # raises the micro-batch's error, if one failed
    _log_new(lake, tracker, seen)
    return [seen[b] for b in sorted(seen)]


def _log_new(lake: Lakehouse, tracker: JobRun, seen: dict[int, dict[str, Any]]) -> None:
    if not lake.exists(T.STREAM_PROGRESS):
        return
    done = max(seen, default=-1)
    rows = (
        lake.read(T.STREAM_PROGRESS)
        .filter((F.col(RUN_ID) == tracker.key) & (F.col("batch_id") > done))
        .collect()
    )
    for row in sorted(rows, key=lambda r: r["batch_id"]):
        found = row.asDict()
        seen[found["batch_id"]] = found
        # Here, not in the micro-batch: over Spark Connect that runs on the server.
        log.info(
            "[stream] batch %d: %s rows (%s late, %s rejected), %s tag values changed, "
            "%s triggers, watermark %s, latency p95 %.1f s",
            found["batch_id"], f"{found['rows']:,}", f"{found['late_rows']:,}",
            f"{found['rejected_rows']:,}", f"{found['tags_changed']:,}",
            f"{found['triggers_fired']:,}", found["watermark"], found["latency_p95_s"] or 0.0,
        )  # fmt: skip
        metrics = {m: found[m] for m in METRICS if found[m] is not None}
        tracker.log_metrics(metrics, step=found["batch_id"])


def live_profiles(spark: SparkSession, cfg: Config) -> DataFrame:
    """The batch profile with the real-time tags overlaid (``precis.stream.live``)."""
    lake = Lakehouse.from_config(spark, cfg)
    lake.require(T.REALTIME_TAGS, job=JOB)
    tags = lake.read(T.REALTIME_TAGS)
    return live.profiles_live(lake.read_current(T.PROFILES), tags, list(cfg.stream.tags))


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
