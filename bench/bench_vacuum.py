"""Benchmark: VACUUM LITE against a full VACUUM after a small DELETE, as ``forget`` does.

    .venv/bin/python bench/bench_vacuum.py --rows 100000 --files 20 --repeats 3

Writes a Delta table of ``--rows`` rows in ``--files`` files, then, ``--repeats`` times
for each mode (alternating): deletes one row (one file rewritten) and vacuums with 0
hours of history, full or LITE. Prints one JSON line with the medians; record results in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from pyspark.sql import functions as F

import provenance
from precis.config import load_config
from precis.session import get_spark
from precis.storage.delta import delta_table

PROJECT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="precis-bench-")) / "lakehouse"
    cfg = load_config(PROJECT / "conf" / "base.yaml", [f"storage.root={root}"])
    spark = get_spark(cfg)
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    path = str(root / "silver" / "bench_vacuum")
    rows = spark.range(args.rows).withColumn("v", F.sha2(F.col("id").cast("string"), 256))
    rows.repartition(args.files).write.format("delta").save(path)
    ref = delta_table(path)
    times: dict[str, list[float]] = {"full": [], "lite": []}
    for i in range(args.repeats * 2):
        mode = "full" if i % 2 == 0 else "lite"
        spark.sql(f"DELETE FROM {ref} WHERE id = {i}").collect()
        started = time.perf_counter()
        spark.sql(f"VACUUM {ref} {'LITE ' if mode == 'lite' else ''}RETAIN 0 HOURS").collect()
        times[mode].append(time.perf_counter() - started)
    medians = {k: round(statistics.median(v), 2) for k, v in times.items()}
    print(
        json.dumps(
            {
                "bench": "vacuum",
                "rows": args.rows,
                "files": args.files,
                "repeats": args.repeats,
                "full_median_s": medians["full"],
                "lite_median_s": medians["lite"],
                "ratio": round(medians["full"] / medians["lite"], 2),
                "runs": {k: [round(t, 2) for t in v] for k, v in times.items()},
                **provenance.machine(cfg.spark.master),
            }
        )
    )


if __name__ == "__main__":
    main()
