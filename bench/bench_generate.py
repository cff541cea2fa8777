"""Benchmark: the generate job end to end, each repeat in a fresh process (a cold JVM).

    .venv/bin/python bench/bench_generate.py --people 20000 --repeats 3

Each repeat runs ``python -m precis generate`` for the given number of people into a new
lakehouse, as a user would, and times it twice: the whole process (JVM start, Ivy, job)
and the job itself (``run``, from the job's own "finished in" line). MLflow is off
unless ``--mlflow``: it is not part of generating. Prints one JSON line with medians;
record results in docs/generate.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
FINISHED = re.compile(r"\[generate\] finished in ([0-9.]+)s: ([0-9,]+) events, ([0-9,]+) orders")


def run_once(
    people: int, root: Path, run_date: str, mlflow: bool, extra: list[str]
) -> tuple[float, float, str]:
    command = [
        sys.executable,
        "-m",
        "precis",
        "generate",
        "--run-date",
        run_date,
        "--set",
        f"storage.root={root}",
        "--set",
        f"generate.people={people}",
        "--set",
        f"mlflow.enabled={'true' if mlflow else 'false'}",
    ]
    for item in extra:
        command += ["--set", item]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"generate failed with exit code {done.returncode}")
    match = FINISHED.search(done.stderr)
    if not match:
        raise SystemExit("no 'finished in' line in the job output")
    return wall, float(match.group(1)), f"{match.group(2)} events, {match.group(3)} orders"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run-date", default="2026-03-31")
    parser.add_argument("--mlflow", action="store_true", help="keep MLflow tracking on")
    parser.add_argument(
        "--root", help="scratch directory (default: a temporary directory, removed afterwards)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="dotted.key=value",
        help="extra config override passed to the job; repeatable",
    )
    args = parser.parse_args()

    scratch = Path(args.root or tempfile.mkdtemp(prefix="precis-bench-generate-"))
    walls, jobs, volume = [], [], ""
    try:
        for i in range(args.repeats):
            root = scratch / f"run{i}" / "lakehouse"
            wall, job, volume = run_once(
                args.people, root, args.run_date, args.mlflow, args.overrides
            )
            walls.append(wall)
            jobs.append(job)
            shutil.rmtree(root.parent, ignore_errors=True)
    finally:
        if not args.root:
            shutil.rmtree(scratch, ignore_errors=True)

    print(
        json.dumps(
            {
                "bench": "generate",
                "people": args.people,
                "volume": volume,
                "repeats": args.repeats,
                "process_median_s": round(statistics.median(walls), 1),
                "job_median_s": round(statistics.median(jobs), 1),
                "job_runs_s": [round(j, 1) for j in jobs],
                "cores": os.cpu_count(),
                "machine": platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
