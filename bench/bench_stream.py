"""Benchmark: seconds from an event's landing to its trigger row, at 1,000 events a second.

    .venv/bin/python bench/bench_stream.py --seconds 120 --rate 1000 --people 20000 --interval 5

One local session on a new storage root. The bench writes an identity map of ``--people``
members (all with marketing consent) and a segment of a fifth of them, last seen 60 days
ago; then, for ``--seconds``, it lands one parquet file of ``--rate`` events a second
(written beside the landing folder, then renamed into it, so a file appears whole). One
event in a hundred is a first visit of a segment member, which fires one ``returning``
trigger; the others are views by the rest. Meanwhile the ``stream`` job runs with a
processing-time trigger of ``--interval`` seconds. A trigger's latency is its
``fired_at`` less the landing time of its event's file.

The baseline, measured first in the same session on the same landing pattern: a bare
stream over the files whose micro-batch only appends its rows to a Delta table with
their write time, the least a micro-batch pipeline over Delta costs on this machine.
Prints one JSON line: p50, p95 and max latency of the triggers and of the baseline's
rows, their ratios, the micro-batches and their median duration. Record results in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

import provenance
from precis import tables as T
from precis.config import Config, load_config
from precis.ingest.conform import IdentifierSettings, resolve_identifiers
from precis.jobs import stream
from precis.session import get_spark
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]
SEGMENT = "returning_bench"
EVENT_FIELDS = (
    ("event_id", pa.string()),
    ("event_time", pa.timestamp("us", tz="UTC")),  # read by Spark as a timestamp
    ("source", pa.string()),
    ("id_type", pa.string()),
    ("id_value", pa.string()),
    ("event_type", pa.string()),
    ("item_id", pa.string()),
    ("channel", pa.string()),
    ("properties", pa.string()),
)


def world(spark: SparkSession, cfg: Config, people: int) -> list[str]:
    """Identity map, customers and the segment; the members' member ids, in order."""
    lake = Lakehouse.from_config(spark, cfg)
    now = dt.datetime.now()
    ids = spark.range(people).select(
        F.lit("member_id").alias("id_type"),
        F.concat(F.lit("m"), F.col("id")).alias("id_value"),
        F.concat(F.lit("P"), F.col("id")).alias("one_id"),
        (F.col("id") % 5 == 0).alias("member"),
    )
    keyed = resolve_identifiers(ids, IdentifierSettings.from_config(cfg)).cache()
    away = F.when(F.col("member"), F.lit(now - dt.timedelta(days=60))).otherwise(F.lit(now))
    lake.overwrite(
        keyed.select(
            "id_type", "id_key", "one_id",
            F.lit(now - dt.timedelta(days=400)).alias("first_seen"), away.alias("last_seen"),
        ),
        T.IDENTITY_MAP,
    )  # fmt: skip
    lake.overwrite(
        keyed.select("id_type", "id_key", F.lit(True).alias("consent_marketing"),
                     F.lit(now - dt.timedelta(days=400)).alias("signup_time")),
        T.CUSTOMERS,
    )  # fmt: skip
    members = keyed.filter("member").select(F.lit(SEGMENT).alias("segment"), "one_id")
    lake.write_snapshot(members, T.SEGMENTS, cfg.run_date)
    return [f"m{i}" for i in range(0, people, 5)]


class Lander(threading.Thread):
    """Lands one file of ``rate`` events a second for ``seconds``; remembers when."""

    def __init__(self, folder: Path, rate: int, seconds: int, people: int, members: list[str]):
        super().__init__(daemon=True)
        self.folder, self.rate, self.seconds = folder, rate, seconds
        self.others = [f"m{i}" for i in range(people) if i % 5]
        self.members = iter(members)
        self.landed: dict[int, float] = {}
        self.staging = folder.parent / f".{folder.name}-staging"
        self.staging.mkdir(parents=True, exist_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(7)

    def land(self, n: int) -> None:
        now = dt.datetime.now(dt.UTC)
        rows = []
        for j in range(self.rate):
            visit = j % 100 == 0
            who = next(self.members) if visit else self.rng.choice(self.others)
            item = f"i{self.rng.randrange(5000)}"
            rows.append((f"f{n}-{j}", now, "web", "member_id", who, "view", item, None, None))
        table = pa.Table.from_pylist(
            [dict(zip([f for f, _ in EVENT_FIELDS], r, strict=True)) for r in rows],
            schema=pa.schema(list(EVENT_FIELDS)),
        )
        staged = self.staging / f"part-{n:05d}.parquet"
        pq.write_table(table, staged)
        os.rename(staged, self.folder / staged.name)
        self.landed[n] = time.time()

    def run(self) -> None:
        start = time.monotonic()
        for n in range(1, self.seconds + 1):
            self.land(n)
            time.sleep(max(0.0, start + n - time.monotonic()))


def quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": round(pick(0.5), 2), "p95": round(pick(0.95), 2), "max": round(ordered[-1], 2)}


def baseline(spark: SparkSession, root: Path, args: argparse.Namespace, people: int) -> dict:
    folder, table = root / "baseline" / "events", str(root / "baseline" / "table")
    lander = Lander(folder, args.rate, args.seconds, people, [f"m{i}" for i in range(0, people, 5)])
    lander.land(0)
    schema = spark.read.parquet(str(folder)).schema

    def append(df: DataFrame, batch_id: int) -> None:
        df.withColumn("written_at", F.current_timestamp()).write.format("delta").mode(
            "append"
        ).save(table)

    source = spark.readStream.schema(schema).parquet(str(folder))
    query = (
        source.writeStream.foreachBatch(append)
        .option("checkpointLocation", str(root / "baseline" / "checkpoint"))
        .trigger(processingTime=f"{args.interval} seconds")
        .start()
    )
    lander.start()
    lander.join()
    query.awaitTermination(args.interval * 3)
    query.stop()
    rows = (
        spark.read.format("delta").load(table)
        .select("event_id", F.unix_micros("written_at").alias("at")).collect()
    )  # fmt: skip
    lags = [r["at"] / 1e6 - lander.landed[int(r["event_id"][1:].split("-")[0])] for r in rows]
    return {"rows": len(rows), **quantiles([x for x in lags if x > -1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--interval", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="precis-bench-")) / "lakehouse"
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={root}",
            "mlflow.enabled=false",
            f"stream.trigger={args.interval} seconds",
            # Landing stops after --seconds; the rest drains what is left.
            f"stream.run_seconds={args.seconds + 6 * args.interval}",
            f"stream.returning.segment={SEGMENT}",
        ],
    )
    spark = get_spark(cfg)
    members = world(spark, cfg, args.people)
    base = baseline(spark, root, args, args.people)
    lander = Lander(Path(cfg.landing_path("events")), args.rate, args.seconds, args.people, members)
    lander.land(0)  # the stream reads the files' schema from what has landed
    lander.start()
    stream.run(spark, cfg)
    lander.join()
    lake = Lakehouse.from_config(spark, cfg)
    fired = lake.read(T.TRIGGERS).select("event_id", F.unix_micros("fired_at").alias("at"))
    lags = [
        r["at"] / 1e6 - lander.landed[int(r["event_id"][1:].split("-")[0])] for r in fired.collect()
    ]
    progress = lake.read(T.STREAM_PROGRESS).collect()
    durations = [(r["finished_at"] - r["started_at"]).total_seconds() for r in progress]
    result = {
        "benchmark": "stream",
        "seconds": args.seconds,
        "rate": args.rate,
        "people": args.people,
        "interval_s": args.interval,
        "events_landed": args.rate * (args.seconds + 1),
        "events_streamed": sum(r["rows"] for r in progress),
        "triggers": {"fired": len(lags), "expected": (args.seconds + 1) * args.rate // 100,
                     **quantiles(lags)},
        "baseline_rows": base,
        "ratio_p95": round(quantiles(lags)["p95"] / base["p95"], 2),
        "micro_batches": len(progress),
        "median_batch_s": round(statistics.median(durations), 2),
        "median_batch_rows": statistics.median(r["rows"] for r in progress),
        "checkout": provenance.checkout("lib"),
        **provenance.machine(spark.conf.get("spark.master", "local[*]")),
    }  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
