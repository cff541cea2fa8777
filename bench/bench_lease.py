"""Benchmark: what a lease costs (meta/leases), against a one-row Delta append.

    .venv/bin/python bench/bench_lease.py --repeats 5

Each repeat, in one local session on a new storage root: appends one row to a Delta
table (the baseline), takes and gives back one job's lease (what ``ingest`` run alone
pays), takes and gives back a pipeline's leases (itself and the nine jobs of the demo
pipeline, in one statement) and renews a held lease once (what a run pays every quarter
of ``runner.lease_seconds``). Prints one JSON line: per action the median seconds, the
Spark jobs it ran and its ratio to the append; the first repeat (table creation, JIT
warm-up) is left out of the medians. Record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import provenance
from precis.config import load_config
from precis.session import get_spark
from precis.storage.lease import Lease

PROJECT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="precis-bench-")) / "lakehouse"
    # The demo profile: its pipeline runs nine jobs.
    cfg = load_config(PROJECT / "conf" / "demo.yaml", [f"storage.root={root}"])
    spark = get_spark(cfg)
    pipeline_jobs = ("pipeline", *cfg.pipeline.jobs)
    tracker = spark.sparkContext.statusTracker()
    table = str(root / "bench" / "append")

    def one_job() -> None:
        lease = Lease(spark, str(root), "ingest", cfg.runner.lease_seconds)
        lease.acquire(0)
        lease.release()

    def pipeline() -> None:
        lease = Lease(spark, str(root), pipeline_jobs, cfg.runner.lease_seconds)
        lease.acquire(0)
        lease.release()

    held = Lease(spark, str(root), "share", cfg.runner.lease_seconds)
    held.acquire(0)
    actions: dict[str, Callable[[], object]] = {
        "append": lambda: spark.range(1).write.format("delta").mode("append").save(table),
        "one_job": one_job,
        "pipeline": pipeline,
        "renew": held.renew,
    }
    seconds: dict[str, list[float]] = {name: [] for name in actions}
    jobs: dict[str, list[int]] = {name: [] for name in actions}
    for _ in range(args.repeats):
        for name, action in actions.items():
            before = len(tracker.getJobIdsForGroup(None))
            started = time.perf_counter()
            action()
            seconds[name].append(time.perf_counter() - started)
            jobs[name].append(len(tracker.getJobIdsForGroup(None)) - before)
    held.release()
    median = {name: statistics.median(v[1:] or v) for name, v in seconds.items()}
    print(
        json.dumps(
            {
                "benchmark": "lease",
                "repeats": args.repeats,
                "median_seconds": {k: round(v, 3) for k, v in median.items()},
                "spark_jobs": {k: statistics.median(v[1:] or v) for k, v in jobs.items()},
                "ratio_to_append": {k: round(v / median["append"], 2) for k, v in median.items()},
                "runs": {k: [round(s, 3) for s in v] for k, v in seconds.items()},
                "checkout": provenance.checkout("lib/precis/storage/lease.py"),
                **provenance.machine(spark.conf.get("spark.master", "?") or "?"),
            }
        )
    )
    spark.stop()


if __name__ == "__main__":
    main()
