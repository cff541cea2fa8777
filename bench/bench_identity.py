"""Benchmark: the identity job on generated data, first run and unchanged reruns, with quality.

    .venv/bin/python bench/bench_identity.py --people 20000 --repeats 3

Generates and ingests once (not timed; ``--root`` reuses a lakehouse that already has
silver tables, and rebuilds its gold identity tables), then for each repeat runs identity on an empty gold (timed: "first"),
again on the same silver (timed: "rerun": incremental, so nothing is reclustered; the
same one_ids, nothing rewritten) and once more with ``identity.incremental=false``
(timed: "full_rerun": everything reclustered, the same result).
Scores the last result against the generator's truth (not timed) and prints one JSON
line with the medians and the scores; record results in docs/benchmarks.md.
``--components contraction,stars`` times both connected-components algorithms
(``identity.components``) in turn within each repeat, and fails unless their
``gold/identity_map`` digests are identical.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from precis import tables as T
from precis.config import Config, load_config
from precis.frames import digest
from precis.jobs import evaluate, generate, identity, ingest
from precis.session import get_spark
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]
# What the identity job writes: removed before each first run.
WRITTEN = (
    T.IDENTITY_MAP,
    T.RECORD_IDENTITY,
    T.IDENTITY_CHANGES,
    T.IDENTITY_GUARDS,
    T.IDENTITY_RUNS,
    T.IDENTITY_STATE,
    T.IDENTITY_RECORDS,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run-date", default="2026-03-31")
    parser.add_argument(
        "--root", help="lakehouse root (default: a temporary directory, removed afterwards)"
    )
    parser.add_argument(
        "--components",
        default="contraction",
        help="comma list of identity.components to time, alternating within each repeat "
        "(contraction, stars); their gold/identity_map must be identical",
    )
    args = parser.parse_args()
    algorithms = [a.strip() for a in args.components.split(",") if a.strip()]

    scratch = (
        Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="precis-bench-identity-"))
    )
    root = scratch / "lakehouse"
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [f"storage.root={root}", f"generate.people={args.people}", "mlflow.enabled=false"],
        run_date=args.run_date,
    )
    spark = get_spark(cfg)
    try:
        lake = Lakehouse.from_config(spark, cfg)
        if not lake.exists(T.ID_OBSERVATIONS):
            generate.run(spark, cfg)
            ingest.run(spark, cfg)

        def using(algorithm: str, **identity_settings: object) -> Config:
            settings = {"components": algorithm, **identity_settings}
            return cfg.model_copy(update={"identity": cfg.identity.model_copy(update=settings)})

        timed: dict[str, dict[str, list[float]]] = {
            a: {"first": [], "rerun": [], "full_rerun": []} for a in algorithms
        }
        maps: dict[str, dict] = {}
        stats = again = None
        for _ in range(args.repeats):
            for algorithm in algorithms:
                runs = timed[algorithm]
                for table in WRITTEN:
                    shutil.rmtree(root / table.layer / table.name, ignore_errors=True)
                t0 = time.perf_counter()
                stats = identity.run(spark, using(algorithm))
                runs["first"].append(time.perf_counter() - t0)
                maps[algorithm] = digest(lake.read(T.IDENTITY_MAP))
                t0 = time.perf_counter()
                again = identity.run(spark, using(algorithm))
                runs["rerun"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                full = identity.run(spark, using(algorithm, incremental=False))
                runs["full_rerun"].append(time.perf_counter() - t0)
                for name, out in (("rerun", again), ("full rerun", full)):
                    if out.changes or out.records_changed:
                        raise SystemExit(
                            f"{name} changed something: {out.changes}, {out.records_changed} records"
                        )
        if len({json.dumps(m, sort_keys=True) for m in maps.values()}) > 1:
            raise SystemExit(f"gold/identity_map differs between {', '.join(algorithms)}")
        assert stats is not None and again is not None
        first, rerun, full_rerun = (
            timed[algorithms[0]][k] for k in ("first", "rerun", "full_rerun")
        )
        scores = evaluate.evaluate_identity(lake, cfg) or {}
        print(
            json.dumps(
                {
                    "bench": "identity",
                    "command": " ".join(
                        [".venv/bin/python", "bench/bench_identity.py", *sys.argv[1:]]
                    ),
                    "people": args.people,
                    "identifiers": stats.identifiers,
                    "links": stats.links,
                    "records": stats.records,
                    "one_ids": stats.one_ids,
                    "repeats": args.repeats,
                    "first_median_s": round(statistics.median(first), 1),
                    "first_runs_s": [round(t, 1) for t in first],
                    "rerun_median_s": round(statistics.median(rerun), 1),
                    "rerun_runs_s": [round(t, 1) for t in rerun],
                    "rerun_reclustered": again.reclustered,
                    "full_rerun_median_s": round(statistics.median(full_rerun), 1),
                    "full_rerun_runs_s": [round(t, 1) for t in full_rerun],
                    "components": algorithms[0],
                    "by_components": {
                        a: {k: round(statistics.median(v), 1) for k, v in runs.items()}
                        for a, runs in timed.items()
                    },
                    "identity_map_identical": len(maps) > 1 or None,
                    **{k: round(v, 4) for k, v in scores.items()},
                    "guards": stats.guards,
                    "cores": os.cpu_count(),
                    "machine": platform.machine(),
                }
            )
        )
    finally:
        spark.stop()
        if not args.root:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
