"""Benchmark: the ``recommend`` job, default settings, on MovieLens-100k landed as a user would.

    .venv/bin/python bench/bench_recommend_landed.py
    .venv/bin/python bench/bench_recommend_landed.py --set recommend.search.max_trials=4

MovieLens-100k (``public_data.movielens_100k_ratings``: 943 users, 1,682 films, 100,000
ratings) is split at random per user, 75 % landed and 25 % held out (seed 42: the same
split as ``bench_recommend.py --dataset movielens100k``). Every landed rating becomes
one ``purchase`` event (``event_id`` user-item, ``event_time`` the rating's time,
``id_type`` member_id, ``item_id`` the film) in ``<root>/landing/events`` (parquet).
Then ``python -m precis`` runs ingest, identity and recommend for the run date
1998-04-22 (the last rating's day) with the default configuration and one override,
``recommend.event_weights.purchase=1`` (events are the only evidence here), plus any
``--set``. Each job is a process of its own and is timed whole (JVM start included).

The job's ``gold/recommendations`` lists are then scored on the held-out 25 % with
``precis.recommend.evaluation`` (precision, recall, NDCG and MAP at 10, coverage), with
popularity on the landed 75 % (``evaluation.popularity_lists``, landed items left out)
beside them, and the recommended items each person had already bought are counted.

Prints one JSON line; record results in docs/benchmarks.md and docs/recommend.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from provenance import checkout
from public_data import DEFAULT_CACHE, movielens_100k_ratings, per_user_split

PROJECT = Path(__file__).resolve().parents[1]
RUN_DATE = "1998-04-22"
K = 10
JOBS = ("ingest", "identity", "recommend")


def log(message: str) -> None:
    print(f"[bench_recommend_landed {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr)


def land(root: Path, cache: Path, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Write the landed 75 % as purchase events; (landed rows, held-out rows) of ratings."""
    raw = movielens_100k_ratings(cache)
    landed = per_user_split(raw[:, 0], 0.75, np.random.default_rng(seed))
    rows = raw[landed]
    user, item = rows[:, 0].astype(str), rows[:, 1].astype(str)
    events = pa.table(
        {
            "event_id": np.char.add(np.char.add(user, "-"), item),
            "event_time": pa.array(rows[:, 3] * 1_000_000, pa.timestamp("us", tz="UTC")),
            "source": pa.array(["movielens"] * len(rows)),
            "id_type": pa.array(["member_id"] * len(rows)),
            "id_value": user,
            "event_type": pa.array(["purchase"] * len(rows)),
            "item_id": item,
            "channel": pa.nulls(len(rows), pa.string()),
            "properties": pa.nulls(len(rows), pa.string()),
        }
    )
    folder = root / "landing" / "events"
    folder.mkdir(parents=True)
    pq.write_table(events, folder / "ratings.parquet")
    return rows, raw[~landed]


def run_jobs(root: Path, sets: list[str]) -> dict[str, float]:
    """Seconds of each job, run as ``python -m precis <job>`` from the project folder."""
    seconds = {}
    overrides = [f"storage.root={root}", "recommend.event_weights.purchase=1", *sets]
    for job in JOBS:
        command = [sys.executable, "-m", "precis", job, "--run-date", RUN_DATE]
        for value in overrides:
            command += ["--set", value]
        log(f"{job} ...")
        started = time.perf_counter()
        subprocess.run(command, cwd=PROJECT, check=True)
        seconds[job] = round(time.perf_counter() - started, 1)
    return seconds


def score(root: Path, landed: np.ndarray, held: np.ndarray) -> dict[str, Any]:
    """The job's lists and popularity scored on the held-out ratings."""
    from pyspark.sql import functions as F

    from precis.config import load_config
    from precis.recommend import evaluation
    from precis.session import get_spark

    spark = get_spark(load_config(overrides=[f"storage.root={root}"]))
    pairs = "user long, item long"
    train = spark.createDataFrame([(int(u), int(i)) for u, i in landed[:, :2]], pairs)
    test = spark.createDataFrame([(int(u), int(i)) for u, i in held[:, :2]], pairs)
    people = (
        spark.read.format("delta")
        .load(str(root / "gold" / "identity_map"))
        .filter(F.col("id_type") == "member_id")
        .select("one_id", F.col("id_key").cast("long").alias("user"))
    )
    rows = (
        spark.read.format("delta")
        .load(str(root / "gold" / "recommendations"))
        .filter(F.col("run_date") == F.lit(RUN_DATE).cast("date"))
        .join(people, "one_id", how="inner")
        .select("user", "rank", F.col("item_id").cast("long").alias("item"), "source")
    )
    lists = rows.groupBy("user").agg(
        F.array_sort(F.collect_list(F.struct("rank", "item"))).alias("_s")
    )
    lists = lists.select("user", F.col("_s.item").alias("items"))
    relevant = test.groupBy("user").agg(F.collect_set("item").alias("items"))
    catalogue = train.select("item").distinct().count()
    job = evaluation.ranking_metrics(lists, relevant, K)
    job["coverage"] = evaluation.coverage(lists, catalogue)
    popular = evaluation.popularity_lists(train, relevant.select("user"), K)
    popularity = evaluation.ranking_metrics(popular, relevant, K)
    popularity["coverage"] = evaluation.coverage(popular, catalogue)
    bought = rows.join(train, ["user", "item"], how="left_semi").count()
    sources = {r["source"]: r["count"] for r in rows.groupBy("source").count().collect()}
    spark.stop()
    return {
        "job": job,
        "popularity": popularity,
        "already_bought": bought,
        "sources": sources,
        "people_scored": len(np.unique(held[:, 0])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", default=[], help="a recommend override k=v")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--work", type=Path, default=None, help="lakehouse (default: a temp dir)")
    args = parser.parse_args(argv)
    root = args.work or Path(tempfile.mkdtemp(prefix="bench_recommend_landed-"))
    landed, held = land(root, args.cache, args.seed)
    log(f"{len(landed):,} ratings landed as events, {len(held):,} held out, under {root}")
    seconds = run_jobs(root, args.set)
    result = {
        "bench": "recommend_landed",
        "data": "movielens100k",
        "seed": args.seed,
        "sets": args.set,
        "landed": len(landed),
        "held_out": len(held),
        "seconds": seconds,
        **score(root, landed, held),
        "checkout": checkout("lib/precis/recommend"),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
        "date": dt.date.today().isoformat(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
