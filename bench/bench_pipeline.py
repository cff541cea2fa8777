"""Benchmark: each job of the pipeline on a generated world, against a scan bound.

    .venv/bin/python bench/bench_pipeline.py --people 20000

Generates a world of ``--people`` people (not timed) into a new lakehouse, then, in one
Spark session with the jobs' own settings (``precis.session.get_spark``), times each job
of ``pipeline.jobs`` in order, for one run date, MLflow off. In the same run it times the
*scan bound*: one Spark job that reads every silver table once and aggregates it by
person (identifier) in one shuffle, the least any pipeline over this data must do. It
is timed after ingest (silver exists then) and repeated ``--bound-repeats`` times; the
median counts.

Prints one JSON line: per-job seconds, their total, the bound, total / bound, the rows
read by the bound, the driver memory setting and the JVM's peak resident memory, load
averages and the checkout. Record results in docs/benchmarks.md;
``bench/plot_pipeline.py`` draws them against world size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from functools import reduce
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis import jobs
from precis import tables as T
from precis.columns import ID_KEY, ID_TYPE
from precis.config import load_config
from precis.jobs import generate
from precis.session import get_spark
from precis.storage import Lakehouse
from provenance import checkout, machine

PROJECT = Path(__file__).resolve().parents[1]


def scan_bound(lake: Lakehouse) -> tuple[float, int]:
    """(seconds, rows read): every silver table read once, grouped by identifier.

    One shuffle over the union: the rows of each table keyed by their identifier (a
    table without one, such as items, by a constant), counted per key; the sum of the
    counts (the rows read) is the one action.
    """
    parts: list[DataFrame] = []
    for table in T.SILVER.values():
        if not lake.exists(table):
            continue
        df = lake.read(table)
        key = (
            F.concat_ws(":", ID_TYPE, ID_KEY)
            if {ID_TYPE, ID_KEY} <= set(df.columns)
            else F.lit(table.name)
        )
        parts.append(df.select(key.alias("key")))
    both: DataFrame = reduce(DataFrame.unionByName, parts)
    started = time.perf_counter()
    row = both.groupBy("key").agg(F.count(F.lit(1)).alias("n")).agg(F.sum("n")).first()
    return time.perf_counter() - started, int(row[0] or 0)


def jvm_peak_rss_gib() -> float | None:
    """Peak resident memory (VmHWM) of the JVM this process started, in GiB: what the
    local driver, which runs every task, really needed. None where /proc is missing."""
    me = str(os.getpid())
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == me and fields.get("Name", "").strip() == "java":
            return round(int(fields["VmHWM"].split()[0]) / 2**20, 2)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--run-date", default="2026-03-31")
    parser.add_argument("--bound-repeats", type=int, default=3)
    parser.add_argument(
        "--set", action="append", default=[], help="extra config overrides (key=value)"
    )
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="precis-bench-pipeline-")) / "lakehouse"
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={root}",
            f"generate.people={args.people}",
            "mlflow.enabled=false",
            *args.set,
        ],
        run_date=args.run_date,
    )
    spark: SparkSession = get_spark(cfg)
    load_before = os.getloadavg()
    started = time.perf_counter()
    generate.run(spark, cfg)
    generated = time.perf_counter() - started
    print(f"generate (not timed): {generated:.1f} s", file=sys.stderr, flush=True)

    lake = Lakehouse.from_config(spark, cfg)
    seconds: dict[str, float] = {}
    bounds: list[float] = []
    rows = 0
    for name in cfg.pipeline.jobs:
        module = jobs.load(name)
        started = time.perf_counter()
        module.run(spark, cfg)
        seconds[name] = round(time.perf_counter() - started, 1)
        print(f"{name}: {seconds[name]} s", file=sys.stderr, flush=True)
        if name == "ingest":
            for _ in range(args.bound_repeats):
                took, rows = scan_bound(lake)
                bounds.append(took)
            print(f"scan bound: {statistics.median(bounds):.1f} s", file=sys.stderr, flush=True)
    if not bounds:
        raise SystemExit("pipeline.jobs has no ingest: the scan bound needs silver tables")
    bound = statistics.median(bounds)
    total = sum(seconds.values())
    print(
        json.dumps(
            {
                "bench": "pipeline",
                "people": args.people,
                "jobs_s": seconds,
                "total_s": round(total, 1),
                "generate_s": round(generated, 1),
                "scan_bound_s": round(bound, 2),
                "scan_bound_runs_s": [round(b, 2) for b in bounds],
                "scan_bound_rows": rows,
                "total_over_bound": round(total / bound, 1),
                "load_before": [round(x, 1) for x in load_before],
                "driver_memory": spark.conf.get("spark.driver.memory", None),
                "jvm_peak_rss_gib": jvm_peak_rss_gib(),
                **machine(spark.conf.get("spark.master", "?") or "?"),
                "checkout": checkout("lib"),
            }
        )
    )


if __name__ == "__main__":
    main()
