"""Benchmark: ingest of generated landing data, first run and no-op rerun.

    .venv/bin/python bench/bench_ingest.py --people 20000 --repeats 3

Generates landing data once (not timed), then for each repeat ingests it into an empty
bronze/silver (timed: "full"), then ingests again with nothing new (timed: "rerun").
Prints one JSON line with the medians; record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from precis.config import load_config
from precis.jobs import generate, ingest
from precis.session import get_spark

PROJECT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run-date", default="2026-03-31")
    parser.add_argument("--root", help="lakehouse root (default: a temporary directory)")
    args = parser.parse_args()

    root = Path(args.root or tempfile.mkdtemp(prefix="precis-bench-")) / "lakehouse"
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [f"storage.root={root}", f"generate.people={args.people}", "mlflow.enabled=false"],
        run_date=args.run_date,
    )
    spark = get_spark(cfg)
    generate.run(spark, cfg)

    full, rerun, rows = [], [], 0
    for _ in range(args.repeats):
        for layer in ("bronze", "silver", "meta"):
            shutil.rmtree(root / layer, ignore_errors=True)
        t0 = time.perf_counter()
        summaries = ingest.run(spark, cfg)
        full.append(time.perf_counter() - t0)
        rows = sum(s.rows_in for s in summaries.values())
        t0 = time.perf_counter()
        ingest.run(spark, cfg)
        rerun.append(time.perf_counter() - t0)

    print(
        json.dumps(
            {
                "bench": "ingest",
                "people": args.people,
                "landed_rows": rows,
                "repeats": args.repeats,
                "full_median_s": round(statistics.median(full), 1),
                "rerun_median_s": round(statistics.median(rerun), 1),
                "cores": os.cpu_count(),
                "machine": platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
