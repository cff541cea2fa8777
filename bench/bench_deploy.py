"""Benchmark: the whole pipeline on one small world, run locally, on a standalone cluster
and over Spark Connect.

    .venv/bin/python bench/bench_deploy.py --people 1000 --repeats 1

Each repeat runs the demo pipeline (``--config demo.yaml``: generate included) three
ways, each into a new lakehouse, one after the other on this machine:

- ``local``: ``python -m precis pipeline`` (classic local Spark, ``spark.master`` local[*]);
- ``standalone``: ``./spark-submit.sh pipeline`` in client mode against a standalone
  master with two workers of one core each (separate JVMs);
- ``connect``: ``python -m precis pipeline`` as a client of a Spark Connect server
  (local[*]) started with the same settings; the server's start-up is not timed.

The cluster and the server are started from the installed pyspark (tests/services.py),
as in tests/test_deploy.py. Prints one JSON line: per mode the wall seconds of the
pipeline process and of each job (from its ``[pipeline] i/n: job for date done in`` lines),
the median over repeats, and the load average before and after. Record the results in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests"))

from precis.config import load_config
from provenance import checkout
from services import connect_server, standalone_cluster

DONE = re.compile(r"\[pipeline\] \d+/\d+: (\w+) for [0-9-]+ done in ([0-9.]+)s")
MODES = ("local", "standalone", "connect")


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    started = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-4000:]}")
    jobs = {name: float(seconds) for name, seconds in DONE.findall(out.stderr + out.stdout)}
    return {"wall": wall, **jobs}


def once(mode: str, people: int, run_date: str, scratch: Path) -> dict[str, float]:
    root = scratch / mode / "lakehouse"
    args = [
        "pipeline",
        "--config",
        "demo.yaml",
        "--set",
        f"generate.people={people}",
        "--set",
        f"storage.root={root}",
        "--run-date",
        run_date,
        "--set",
        "mlflow.enabled=false",
    ]
    drop = ("SPARK_REMOTE", "SPARK_MASTER", "PYSPARK_GATEWAY_PORT", "PRECIS_ENV")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    if mode == "local":
        return timed([sys.executable, "-m", "precis", *args], env, scratch)
    if mode == "standalone":
        with standalone_cluster(scratch / mode / "cluster", workers=2) as cluster:
            # The local run's 8 shuffle partitions, not a cluster's 200.
            extra = ["--set", "spark.conf.spark.sql.shuffle.partitions=8"]
            return timed(
                [str(PROJECT / "spark-submit.sh"), "--executor-memory", "1g", *args, *extra],
                {**env, "SPARK_MASTER": cluster.master},
                scratch,
            )
    cfg = load_config(overrides=[f"storage.root={root}"])
    with connect_server(cfg, scratch / mode / "server", master="local[*]") as url:
        return timed([sys.executable, "-m", "precis", *args], {**env, "SPARK_REMOTE": url}, scratch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--run-date", default="2026-03-31")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated subset of " + ", ".join(MODES)
    )
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SystemExit(f"unknown mode(s) {sorted(unknown)}; modes: {', '.join(MODES)}")

    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    for i in range(args.repeats):
        for mode in modes:
            scratch = Path(tempfile.mkdtemp(prefix=f"precis-bench-deploy-{mode}-"))
            runs[mode].append(once(mode, args.people, args.run_date, scratch))
            print(
                f"repeat {i + 1} {mode}: {runs[mode][-1]['wall']:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    medians = {
        mode: {key: round(statistics.median(r[key] for r in results), 1) for key in results[0]}
        for mode, results in runs.items()
    }
    print(
        json.dumps(
            {
                "bench": "deploy",
                "people": args.people,
                "repeats": args.repeats,
                "median_s": medians,
                "load_before": [round(x, 1) for x in load_before],
                "load_after": [round(x, 1) for x in os.getloadavg()],
                "cores": os.cpu_count(),
                "machine": platform.machine(),
                "checkout": checkout("lib"),
            }
        )
    )


if __name__ == "__main__":
    main()
