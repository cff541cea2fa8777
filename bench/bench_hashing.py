"""Benchmark: keyed hashing with the key as data (a broadcast one-row join) against the
key's pads as literals of the plan (how hashing was done before; they leak the key).

    .venv/bin/python bench/bench_hashing.py --rows 2000000 --repeats 3

Hashes ``--rows`` generated email-like strings both ways in one session, alternating,
and XORs a hash of every digest (so every row is hashed). Prints one JSON line with the
medians; record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

import provenance
from precis import privacy
from precis.config import load_config
from precis.session import get_spark

PROJECT = Path(__file__).resolve().parents[1]
KEY = b"benchmark-key-not-a-secret"


def literal() -> Column:
    """The former method, for comparison only: the pads are literals of the plan."""
    inner, outer = privacy.pads(KEY)
    digest = F.unhex(F.sha2(F.concat(F.lit(inner), F.encode(F.col("v"), "UTF-8")), 256))
    return F.sha2(F.concat(F.lit(outer), digest), 256)


def timed(frame: DataFrame) -> float:
    t0 = time.perf_counter()
    frame.agg(F.bit_xor(F.xxhash64("h"))).collect()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="precis-bench-")) / "lakehouse"
    cfg = load_config(PROJECT / "conf" / "base.yaml", [f"storage.root={root}"])
    spark = get_spark(cfg)
    values = spark.range(args.rows).select(
        F.concat(F.lit("user"), F.col("id").cast("string"), F.lit("@example.com")).alias("v")
    )
    as_literal = values.select(literal().alias("h"))
    as_data = privacy.drop_key(
        privacy.with_key(values, KEY).withColumn("h", privacy.hmac_hex(F.col("v")))
    )
    assert as_literal.exceptAll(as_data.select("h")).limit(1).count() == 0  # same digests
    times: dict[str, list[float]] = {"literal": [], "join": []}
    for frame in (as_literal, as_data):  # warm-up: JIT and code generation
        timed(frame)
    for _ in range(args.repeats):
        times["literal"].append(timed(as_literal))
        times["join"].append(timed(as_data))
    medians = {k: round(statistics.median(v), 2) for k, v in times.items()}
    print(
        json.dumps(
            {
                "bench": "hashing",
                "rows": args.rows,
                "repeats": args.repeats,
                "literal_median_s": medians["literal"],
                "join_median_s": medians["join"],
                "ratio": round(medians["join"] / medians["literal"], 3),
                **provenance.machine(cfg.spark.master),
            }
        )
    )


if __name__ == "__main__":
    main()
