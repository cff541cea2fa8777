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

A world too large to time in one sitting can be timed in parts, each job still timed
alone: ``--root DIR`` keeps the lakehouse (one that already holds a landing folder is
not generated again) and ``--jobs`` names the jobs to time, in pipeline order, the
earlier ones having run before on the same root; the bound is then timed first.

    .venv/bin/python bench/bench_pipeline.py --people 1000000 --root /data/p1m --jobs ingest
    .venv/bin/python bench/bench_pipeline.py --people 1000000 --root /data/p1m \\
        --jobs forget,identity,lifecycle,tags,recommend,attribution
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
    parser.add_argument("--bound-repeats", type=int, default=3, help="0: no scan bound")
    parser.add_argument(
        "--root",
        type=Path,
        help="the lakehouse (default: a new temporary one); one holding a landing folder "
        "is reused, not generated again",
    )
    parser.add_argument(
        "--jobs",
        help="comma-separated jobs of pipeline.jobs to time, in pipeline order "
        "(default: all); the others must have run on --root before",
    )
    parser.add_argument(
        "--set", action="append", default=[], help="extra config overrides (key=value)"
    )
    args = parser.parse_args()

    root = args.root or Path(tempfile.mkdtemp(prefix="precis-bench-pipeline-")) / "lakehouse"
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
    wanted = cfg.pipeline.jobs
    if args.jobs:
        asked = [j.strip() for j in args.jobs.split(",") if j.strip()]
        unknown = sorted(set(asked) - set(wanted))
        if unknown:
            raise SystemExit(
                f"--jobs: {', '.join(unknown)} not in pipeline.jobs ({', '.join(wanted)})"
            )
        wanted = tuple(j for j in cfg.pipeline.jobs if j in asked)
    spark: SparkSession = get_spark(cfg)
    load_before = os.getloadavg()
    generated = None
    if (root / "landing").is_dir() and args.root is not None:
        print(f"generate: {root / 'landing'} reused", file=sys.stderr, flush=True)
    else:
        started = time.perf_counter()
        generate.run(spark, cfg)
        generated = round(time.perf_counter() - started, 1)
        print(f"generate (not timed): {generated} s", file=sys.stderr, flush=True)

    lake = Lakehouse.from_config(spark, cfg)
    seconds: dict[str, float] = {}
    bounds: list[float] = []
    rows = 0

    def bound() -> None:
        nonlocal rows
        for _ in range(args.bound_repeats):
            took, rows = scan_bound(lake)
            bounds.append(took)
        if bounds:
            print(f"scan bound: {statistics.median(bounds):.1f} s", file=sys.stderr, flush=True)

    if "ingest" not in wanted and any(lake.exists(t) for t in T.SILVER.values()):
        bound()  # silver is already there: the bound first
    for name in wanted:
        module = jobs.load(name)
        started = time.perf_counter()
        module.run(spark, cfg)
        seconds[name] = round(time.perf_counter() - started, 1)
        print(f"{name}: {seconds[name]} s", file=sys.stderr, flush=True)
        if name == "ingest":
            bound()
    if args.bound_repeats and not bounds:
        raise SystemExit("no silver tables: the scan bound needs ingest to have run")
    scan = statistics.median(bounds) if bounds else None
    total = sum(seconds.values())
    print(
        json.dumps(
            {
                "bench": "pipeline",
                "people": args.people,
                "jobs_s": seconds,
                "total_s": round(total, 1),
                "generate_s": generated,
                "scan_bound_s": round(scan, 2) if scan else None,
                "scan_bound_runs_s": [round(b, 2) for b in bounds],
                "scan_bound_rows": rows,
                "total_over_bound": round(total / scan, 1) if scan else None,
                "root": str(root),
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
