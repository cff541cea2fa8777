"""One micro-batch of the speed layer: read the state, build, write, record progress.

:class:`MicroBatch` is the streaming query's ``foreachBatch`` handler. It holds only
plain settings (it is pickled where the query runs: to the Spark Connect server, say)
and builds its lakehouse from the micro-batch's own session. Every write is a keyed
MERGE and the progress row is written last, so a micro-batch replayed after a crash
(Spark replays the last one not committed to the checkpoint, with the same files)
computes the same rows from the same previous progress row and writes nothing twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from precis import faults
from precis import tables as T
from precis.columns import ONE_ID, RUN_ID
from precis.consent import marketing_consent
from precis.frames import row_count
from precis.identity.resolve import isolated_identifiers
from precis.identity.resolve import resolve as resolve_rows
from precis.ingest import conform
from precis.storage import Lakehouse
from precis.stream import activity as act
from precis.stream import hot
from precis.stream import triggers as tr
from precis.stream.settings import StreamConfig

JOB = "stream"
PROGRESS_COLUMNS = (
    "batch_id", RUN_ID, "started_at", "finished_at", "rows", "late_rows", "rejected_rows",
    "tags_changed", "triggers_fired", "clock", "watermark", "map_version", "reconciled",
    "latency_p50_s", "latency_p95_s",
)  # fmt: skip
PROGRESS_SCHEMA = (
    "batch_id long, run_id string, started_at timestamp, finished_at timestamp, "
    "rows long, late_rows long, rejected_rows long, tags_changed long, "
    "triggers_fired long, clock timestamp, watermark timestamp, map_version long, "
    "reconciled boolean, latency_p50_s double, latency_p95_s double"
)


@dataclass(frozen=True)
class Previous:
    """What the last finished micro-batch left: its clock, watermark and identity map."""

    clock: dt.datetime | None = None
    watermark: dt.datetime | None = None
    map_version: int | None = None

    @classmethod
    def of(cls, row: Row | dict[str, Any] | None) -> Previous:
        if row is None:
            return cls()
        return cls(row["clock"], row["watermark"], row["map_version"])


@dataclass(frozen=True)
class MicroBatch:
    settings: StreamConfig
    ids: conform.IdentifierSettings
    checks: conform.ValueChecks
    columns: dict[str, list[str]]  # landed columns per streamed dataset
    lake_args: tuple[Any, ...]  # Lakehouse's fields after the session
    run_id: str
    # The last micro-batch this handler finished: batch id -> its progress. A restarted
    # query (a new handler) reads it from meta/stream_progress instead.
    done: dict[int, Previous] = field(default_factory=dict, compare=False)

    def __call__(self, raw: DataFrame, batch_id: int) -> None:
        lake = Lakehouse(raw.sparkSession, *self.lake_args)
        with faults.running(JOB):
            row = self.process(lake, raw.persist(), batch_id)
            values = tuple(row[c] for c in PROGRESS_COLUMNS)
            lake.merge_upsert(
                lake.spark.createDataFrame([values], PROGRESS_SCHEMA), T.STREAM_PROGRESS
            )
        self.done.clear()
        self.done[batch_id] = Previous.of(row)

    def previous(self, lake: Lakehouse, batch_id: int) -> Previous:
        if batch_id - 1 in self.done:
            return self.done[batch_id - 1]
        return Previous.of(previous(lake, batch_id))

    def process(self, lake: Lakehouse, raw: DataFrame, batch_id: int) -> dict[str, Any]:
        """The micro-batch's writes; its progress row. ``raw`` is persisted: conforming
        reads it twice (valid rows, rejected rows), and is unpersisted here."""
        started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        prev = self.previous(lake, batch_id)
        suppressions = lake.read_if_exists(T.SUPPRESSIONS)
        found = act.conformed(raw, self.columns, self.ids, self.checks, suppressions, started)
        late = F.lit(False) if prev.watermark is None else F.col("at") < F.lit(prev.watermark)
        # Kept, and counted by an aggregation over the cache rather than observed: an
        # observed frame joined with itself (tags, triggers) breaks Spark Connect's client.
        rows = found.activity.withColumn("late", late).persist()
        stats = rows.agg(
            row_count(),
            F.count_if("late").alias("late_rows"),
            F.min(F.when(~F.col("late"), F.col("at"))).alias("min_at"),
            F.max(F.when(~F.col("late"), F.col("at"))).alias("max_at"),
            F.percentile_approx(F.unix_micros("landed_at"), 0.05).alias("landed_p05"),
            F.percentile_approx(F.unix_micros("landed_at"), 0.5).alias("landed_p50"),
        ).collect()[0]
        try:
            out = {
                "rows": int(stats["rows"]),
                "late_rows": int(stats["late_rows"]),
                "rejected_rows": found.rejected.count(),
            }
            raw.unpersist()
            seen = stats["max_at"]
            times = [t for t in (prev.clock, seen) if t is not None]
            if not times:  # nothing valid yet: no clock to compute anything at
                now, written = prev, Written(map_version=prev.map_version)
            else:
                clock = max(times)
                now = Previous(clock, self._watermark(clock))
                span = (stats["min_at"], seen)
                written = self.build_and_write(lake, rows.filter(~F.col("late")), prev, now, span)
                now = Previous(clock, now.watermark, written.map_version)
        finally:
            rows.unpersist()
            raw.unpersist()
        return self._row(batch_id, started, stats, out, now, written)

    def _watermark(self, clock: dt.datetime) -> dt.datetime:
        return clock - dt.timedelta(minutes=self.settings.watermark_minutes)

    def build_and_write(
        self,
        lake: Lakehouse,
        new_rows: DataFrame,
        prev: Previous,
        now: Previous,
        span: tuple[dt.datetime | None, dt.datetime | None],
    ) -> Written:
        """Activity, tags and triggers of one micro-batch at ``now``'s clock; ``span``:
        the first and last event time of ``new_rows``."""
        identity_map = lake.read_if_exists(T.IDENTITY_MAP)
        version = lake.version(T.IDENTITY_MAP) if identity_map is not None else None
        guards = lake.read_if_exists(T.IDENTITY_GUARDS)
        isolated = isolated_identifiers(guards) if guards is not None else None
        # Kept: written, then read for the tags and the triggers (one map lookup).
        new = act.resolve(new_rows.drop("late"), identity_map, isolated).persist()
        try:
            return self._write(lake, new, identity_map, isolated, version, prev, now, span)
        finally:
            new.unpersist()

    def _write(
        self,
        lake: Lakehouse,
        new: DataFrame,
        identity_map: DataFrame | None,
        isolated: DataFrame | None,
        version: int | None,
        prev: Previous,
        now: Previous,
        span: tuple[dt.datetime | None, dt.datetime | None],
    ) -> Written:
        s, clock = self.settings, now.clock
        assert clock is not None and now.watermark is not None
        # A replayed row (or an event landed again) has its time: only files of the
        # batch's span of event time can hold it. One row per key: ingest's dedup.
        lake.append_log(new, T.STREAM_ACTIVITY, within=_between("t.at", *span), unique=True)
        # A new identity map (an identity run since the last micro-batch): provisional
        # people get their one_id, merged people one, and every tag is recomputed.
        reconciled = prev.clock is not None and version != prev.map_version
        if reconciled:
            kept = act.resolve(lake.read(T.STREAM_ACTIVITY), identity_map, isolated)
            lake.merge_upsert(kept, T.STREAM_ACTIVITY, unique=True, delete_missing=True)
        store = lake.read(T.STREAM_ACTIVITY)
        held = lake.read_if_exists(T.REALTIME_TAGS)
        if reconciled and held is not None:
            people = store.select(ONE_ID).union(held.select(ONE_ID))
        else:
            people = hot.touched(store, new, s, prev.clock, clock)
        tags = hot.for_people(people, store, s, clock)
        updated = lake.merge_upsert(tags, T.REALTIME_TAGS, unique=True, delete_null="value")
        fired = self.fire(lake, new, store, identity_map, prev, now.watermark)
        if prev.clock is None or prev.clock.hour != clock.hour or prev.clock.date() != clock.date():
            # Hourly: rows past retention only cost reading; no window reaches them.
            cutoff = clock - dt.timedelta(hours=s.retention_hours)
            lake.delete_where(T.STREAM_ACTIVITY, _between("at", None, cutoff))
        return Written(sum(updated.values()), fired, version, reconciled)

    def fire(
        self,
        lake: Lakehouse,
        new: DataFrame,
        store: DataFrame,
        identity_map: DataFrame | None,
        prev: Previous,
        watermark: dt.datetime,
    ) -> int:
        """Write the triggers this micro-batch fires; how many were new."""
        s, candidates = self.settings, []
        if s.cart_abandoned.enabled:
            carts = tr.abandoned_carts(store, s.cart_abandoned, prev.watermark, watermark)
            candidates.append(tr.cart_rows(carts, s.cart_abandoned))
        segments = lake.read_current(T.SEGMENTS)
        if s.returning.enabled and segments is not None and identity_map is not None:
            members = segments.filter(F.col("segment") == s.returning.segment).select(ONE_ID)
            seen = tr.identifiers_of(identity_map, members)
            visits = tr.returning_visits(new, store, members, seen, s.returning)
            candidates.append(tr.returning_rows(visits))
        if not candidates or identity_map is None:
            return 0
        fired = candidates[0]
        for more in candidates[1:]:
            fired = fired.unionByName(more)
        fired = fired.persist()
        try:
            if fired.isEmpty():
                return 0
            who = fired.select(ONE_ID).distinct()
            customers = lake.read_if_exists(T.CUSTOMERS)
            if customers is not None:
                customers = resolve_rows(customers, tr.identifiers_of(identity_map, who))
            consent = marketing_consent(customers, who)
            # One row per trigger and event: each rule fires once per cart or visit.
            rows = tr.consented(fired, consent)
            return lake.append_log(rows, T.TRIGGERS, unique=True)["inserted"]
        finally:
            fired.unpersist()

    def _row(
        self,
        batch_id: int,
        started: dt.datetime,
        stats: Row,
        counts: dict[str, int],
        now: Previous,
        written: Written,
    ) -> dict[str, Any]:
        finished = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        # The landing time at quantile q is the latency at quantile 1 - q.
        now_s = finished.replace(tzinfo=dt.UTC).timestamp()
        p95, p50 = (
            None if t is None else now_s - int(t) / 1e6
            for t in (stats["landed_p05"], stats["landed_p50"])
        )
        return {
            "batch_id": batch_id, RUN_ID: self.run_id, "started_at": started,
            "finished_at": finished, **counts, "tags_changed": written.tags,
            "triggers_fired": written.fired, "clock": now.clock, "watermark": now.watermark,
            "map_version": written.map_version, "reconciled": written.reconciled,
            "latency_p50_s": p50, "latency_p95_s": p95,
        }  # fmt: skip


@dataclass(frozen=True)
class Written:
    tags: int = 0  # realtime_tags rows inserted, updated or deleted
    fired: int = 0
    map_version: int | None = None
    reconciled: bool = False


def _between(column: str, first: dt.datetime | None, last: dt.datetime | None) -> str:
    """SQL: ``column`` in [first, last] (an open end where None). In microseconds: a time
    written as text would be read in the session's time zone."""
    bounds = [
        f"{column} {op} timestamp_micros({int(t.timestamp() * 1e6)})"
        for op, t in ((">=", first), ("<=", last))
        if t is not None
    ]
    return " AND ".join(bounds) or "true"


def previous(lake: Lakehouse, batch_id: int) -> Row | None:
    """The progress row of the last micro-batch before ``batch_id`` (one row)."""
    if not lake.exists(T.STREAM_PROGRESS):
        return None
    rows = (
        lake.read(T.STREAM_PROGRESS)
        .filter(F.col("batch_id") < batch_id)
        .orderBy(F.col("batch_id").desc())
        .limit(1)
        .collect()
    )
    return rows[0] if rows else None
