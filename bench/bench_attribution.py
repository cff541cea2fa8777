"""Benchmark: the attribution models on 1M journeys against ChannelAttribution.

    .venv/bin/python bench/bench_attribution.py --journeys 1000000 --repeats 3

Simulates ``--journeys`` people with one journey each (not timed; written as parquet
under ``--work`` by size and seed): 1 + Poisson-like many touches (mean 2.5, at most 12)
over the 25 days before the run date from six channels with exposure shares
0.22/0.24/0.28/0.10/0.06/0.10 and planted per-touch lifts; a person converts on the run
date with probability 1 - prod(1 - lift) over their touches, for a revenue ~ 50-250.
Then, after ``--warmup`` untimed repeats (JIT and code generation; the job pays them
once per process), each repeat times on Spark what the attribution job does:

- ``journeys``: touches and conversions -> journey touch rows -> one summary row per
  journey (persisted, counted), as the job keeps them;
- ``models``: every model of ``attribution.models`` (by default all seven), as the job
  runs them (``precis.attribution.models.credits``): the five rule-based models in one
  aggregation; the distinct paths, from which order-1 Markov (the chain solved exactly,
  removal effects of every channel, conversions and revenue) and exact Shapley over
  2^6 coalitions (the channel sets) are computed.

ChannelAttribution (test extra; GPL, never imported by precis) then runs on the same
aggregated paths: ``markov_model(order=1)`` with its defaults and ``heuristic_models``.
Our exact solve alone (driver, on the collected transitions) is timed beside it. Prints
one JSON line; record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from provenance import checkout

PROJECT = Path(__file__).resolve().parents[1]

CHANNELS = ("search", "social", "display", "email", "affiliate", "direct")
EXPOSURE = (0.22, 0.24, 0.28, 0.10, 0.06, 0.10)
LIFT = (0.10, 0.04, 0.01, 0.07, 0.05, 0.08)


def _choice(u: str) -> str:
    """Spark SQL: the channel whose cumulative exposure first exceeds ``u``."""
    cases, cum = [], 0.0
    for name, share in zip(CHANNELS[:-1], EXPOSURE[:-1]):
        cum += share
        cases.append(f"WHEN {u} < {cum!r} THEN '{name}'")
    return f"CASE {' '.join(cases)} ELSE '{CHANNELS[-1]}' END"


def simulate(spark, work: Path, journeys: int, seed: int, run_date: dt.date) -> tuple[Path, Path]:
    from pyspark.sql import functions as F

    base = work / f"attribution_{journeys}_{seed}_{run_date}"
    touches_path, conversions_path = base / "touches", base / "conversions"
    if (base / "_done").exists():
        return touches_path, conversions_path
    noon = dt.datetime.combine(run_date, dt.time(12))
    people = spark.range(journeys, numPartitions=8).select(
        F.concat(F.lit("p"), F.col("id").cast("string")).alias("one_id"),
        # 1 + geometric with mean 1.5 touches beyond the first, capped at 12.
        F.least(
            F.lit(12), F.lit(1) + F.floor(F.log(F.rand(seed)) / F.log(F.lit(0.6))).cast("int")
        ).alias("n"),
    )
    touches = (
        people.select("one_id", F.explode(F.sequence(F.lit(1), "n")).alias("k"))
        .withColumn("_u", F.rand(seed + 2))  # one draw per touch, compared with every cut
        .select(
            "one_id",
            F.concat("one_id", F.lit("-"), F.col("k").cast("string")).alias("touch_id"),
            (F.lit(noon) - F.make_dt_interval(secs=F.rand(seed + 1) * F.lit(25 * 86400.0))).alias(
                "at"
            ),
            F.expr(_choice("_u")).alias("channel"),
        )
    )
    touches.write.mode("overwrite").parquet(str(touches_path))
    lift = F.create_map(
        *[x for c, lift_c in zip(CHANNELS, LIFT) for x in (F.lit(c), F.lit(lift_c))]
    )
    stored = spark.read.parquet(str(touches_path))
    odds = stored.groupBy("one_id").agg(
        F.sum(F.log(F.lit(1.0) - lift[F.col("channel")])).alias("log_keep")
    )
    conversions = odds.filter(F.rand(seed + 3) < F.lit(1.0) - F.exp("log_keep")).select(
        "one_id",
        F.concat(F.lit("o"), "one_id").alias("order_id"),
        F.lit(noon).alias("at"),
        F.round(F.lit(50.0) + F.rand(seed + 4) * 200.0, 2).alias("revenue"),
    )
    conversions.write.mode("overwrite").parquet(str(conversions_path))
    (base / "_done").touch()
    return touches_path, conversions_path


def bench(args: argparse.Namespace) -> dict[str, object]:
    import pandas as pd
    from pyspark import StorageLevel

    from precis.attribution import journeys as jr
    from precis.attribution import markov, models
    from precis.config import load_config
    from precis.session import get_spark

    run_date = dt.date.fromisoformat(args.run_date)
    work = Path(args.work)
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [f"storage.root={work / 'lakehouse'}", "mlflow.enabled=false", *args.set],
        run_date=args.run_date,
    )
    spark = get_spark(cfg)
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    touches_path, conversions_path = simulate(spark, work, args.journeys, args.seed, run_date)
    simulate_s = time.perf_counter() - t0
    window = jr.AnalysisWindow.ending(run_date, 30, 30)
    timings: dict[str, list[float]] = {k: [] for k in ("journeys", "models", "total")}
    settings = cfg.attribution
    facts: dict[str, object] = {}
    for repeat in range(-args.warmup, args.repeats):
        touches = spark.read.parquet(str(touches_path))
        conversions = spark.read.parquet(str(conversions_path))
        start = time.perf_counter()
        summaries = jr.summaries(jr.journey_touches(touches, conversions, window)).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        summaries.count()
        t_journeys = time.perf_counter()
        credited, found, _ = models.credits(summaries, settings)
        t_models = time.perf_counter()
        took = {
            "journeys": t_journeys - start,
            "models": t_models - t_journeys,
            "total": t_models - start,
        }
        if repeat >= 0:  # warm-up repeats (JIT, code generation) are not counted
            for key, value in took.items():
                timings[key].append(value)
        print(
            f"{'repeat' if repeat >= 0 else 'warm-up'} {repeat + 1}/{args.repeats}: "
            + ", ".join(f"{k} {v:.1f}s" for k, v in took.items()),
            file=sys.stderr,
        )
        if repeat == args.repeats - 1:
            paths = jr.paths_of(summaries).toPandas()
            moves = markov.transitions(jr.paths_of(summaries), 1).toPandas()
            facts = {
                "touch_rows": jr.touch_rows_of(summaries).count(),
                "journeys": summaries.count(),
                "converting": summaries.filter("converted").count(),
                "distinct_paths": len(paths),
                "channel_sets": found["shapley"]["channel_sets"],
                "markov_states": found["markov"]["states"],
                "models": list(settings.models),
            }
            ours = {
                model: dict(zip(frame["channel"], frame["conversions"]))
                for model, frame in credited.groupby("model")
            }
        summaries.unpersist()
    spark.stop()
    # The exact solve alone, on the same transitions: the part comparable with a driver library.
    solve_times = []
    for _ in range(args.repeats):
        s = time.perf_counter()
        markov.solve(moves)
        solve_times.append(time.perf_counter() - s)
    out: dict[str, object] = {
        "journeys": args.journeys,
        **facts,
        "simulate_s": round(simulate_s, 1),
        **{f"{k}_s_median": round(statistics.median(v), 2) for k, v in timings.items()},
        "markov_solve_only_s_median": round(statistics.median(solve_times), 3),
        "ours_markov": {k: round(v, 1) for k, v in ours["markov"].items()},
        "ours_shapley": {k: round(v, 1) for k, v in ours["shapley"].items()},
    }
    try:
        import ChannelAttribution as ca
    except ImportError:
        out["channelattribution"] = "not installed (pip install ChannelAttribution==2.2.5)"
    else:
        data = pd.DataFrame(
            {
                "path": [" > ".join(p) for p in paths["path"]],
                "conv": paths["conversions"].astype(float),
                "value": paths["revenue"].astype(float),
                "null": paths["nulls"].astype(float),
            }
        )
        times, heur = [], []
        for _ in range(args.repeats):
            s = time.perf_counter()
            theirs = ca.markov_model(
                data,
                "path",
                "conv",
                var_value="value",
                var_null="null",
                order=1,
                verbose=0,
                flg_pro=False,
            )
            times.append(time.perf_counter() - s)
            s = time.perf_counter()
            ca.heuristic_models(data, "path", "conv", var_value="value", flg_pro=False)
            heur.append(time.perf_counter() - s)
        theirs_map = dict(zip(theirs["channel_name"], theirs["total_conversions"]))
        out["channelattribution_markov_s_median"] = round(statistics.median(times), 2)
        out["channelattribution_heuristic_s_median"] = round(statistics.median(heur), 2)
        out["channelattribution_markov"] = {k: round(float(v), 1) for k, v in theirs_map.items()}
        total = sum(ours["markov"].values())
        out["markov_max_relative_gap"] = round(
            max(abs(theirs_map[c] - v) / v for c, v in ours["markov"].items() if v >= 0.01 * total),
            4,
        )
    out.update(
        {
            "repeats": args.repeats,
            "warmup": args.warmup,
            "machine": f"{os.cpu_count()} cores, {platform.machine()}",
            "load_at_start": round(load_start, 2),
            "load_at_end": round(os.getloadavg()[0], 2),
            "commit": checkout("lib/precis/attribution"),
            "python": platform.python_version(),
        }
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed repeats first")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--run-date", default="2026-03-31")
    parser.add_argument("--work", default="/tmp/precis-bench")
    parser.add_argument("--set", action="append", default=[], help="config override (repeatable)")
    args = parser.parse_args()
    print(json.dumps(bench(args)))


if __name__ == "__main__":
    main()
