"""Benchmark: the test suite's Spark settings, each against what it replaces.

    .venv/bin/python bench/bench_test_session.py --compare jit --rounds 3 --repeats 1
    .venv/bin/python bench/bench_test_session.py --compare files --rounds 3 --repeats 2

Each variant runs in a process of its own, so in a JVM of its own, with the test suite's
Spark settings (``tests/spark-conf``, ``local[2]``, one shuffle partition) and the
variant's on top: it generates ``tests/worlds.py``'s 100-person world (not timed), then,
``--rounds`` times, runs the crash tests' jobs (``worlds.JOBS``: ingest, identity,
lifecycle, tags, recommend) on a fresh copy of its landing folder. A round is the same
work each time; the first pays for the JVM's warm-up, the later ones are what a test
worker that runs for an hour pays.

``--compare jit``, the driver's JIT:

- ``quick``: ``-XX:TieredStopAtLevel=1`` (C1 only), what tests/spark-conf gives the
  processes the suite starts for a job or a few;
- ``tiered``: the JVM's default (C1, then C2 for hot code), what the suite's own session
  uses (tests/conftest.py).

``--compare files``, what every table write costs besides its data:

- ``defaults``: Hadoop's and Delta's defaults, as the jobs run: Delta's log written
  through Hadoop's checksummed local FileContext (a ``.crc`` file beside each commit
  file, and a ``chmod`` or ``readlink`` process started for each file's permissions and
  each rename) and Delta's checksum file after each commit;
- ``suite``: what tests/spark-conf sets instead: the raw local FileContext and no
  checksum file.

Prints one JSON line: per variant and round the wall seconds and the CPU seconds of the
session's JVM (read from /proc; Linux only), medians over repeats, the ratio of the first
variant's CPU to the second's over the later rounds, and the load average before and
after. Record the results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests"))

from provenance import checkout

JIT = "spark.driver.defaultJavaOptions"


def _files(file_context: str, checksum: bool) -> dict[str, str]:
    return {
        "spark.hadoop.fs.AbstractFileSystem.file.impl": f"org.apache.hadoop.fs.local.{file_context}",
        "spark.databricks.delta.writeChecksumFile.enabled": str(checksum).lower(),
    }


#: Per comparison, its two variants' settings, given to the session's builder.
COMPARISONS: dict[str, dict[str, dict[str, str]]] = {
    "jit": {"quick": {JIT: "-XX:TieredStopAtLevel=1"}, "tiered": {JIT: "-XX:+TieredCompilation"}},
    "files": {"defaults": _files("LocalFs", True), "suite": _files("RawLocalFs", False)},
}


def _descendants(pid: int) -> list[int]:
    table = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in table.splitlines():
        child, parent = (int(x) for x in line.split())
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (the JVM is the session's child)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def variant(settings: dict[str, str], rounds: int, scratch: Path) -> list[dict[str, float]]:
    """In this process: one session, the world, then ``rounds`` runs of the jobs."""
    os.environ["SPARK_CONF_DIR"] = str(PROJECT / "tests" / "spark-conf")
    from services import suite_session_builder
    from worlds import JOBS, copy_world, generate_world, run_job

    builder = suite_session_builder(scratch / "warehouse", scratch / "checkpoints")
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    landed = generate_world(spark, scratch / "world")
    results = []
    for i in range(rounds):
        root = copy_world(landed, scratch / f"round-{i}")
        jvms = _descendants(os.getpid())
        cpu, started = _cpu_seconds(jvms), time.perf_counter()
        for job in JOBS:
            run_job(root, job)
        results.append({"wall": time.perf_counter() - started, "cpu": _cpu_seconds(jvms) - cpu})
        print(f"  round {i + 1}: {results[-1]}", file=sys.stderr, flush=True)
    spark.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", choices=sorted(COMPARISONS), default="jit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    variants = COMPARISONS[args.compare]
    if args.variant:  # a child: one variant in its own JVM
        scratch = Path(tempfile.mkdtemp(prefix=f"precis-bench-session-{args.variant}-"))
        print(json.dumps(variant(variants[args.variant], args.rounds, scratch)))
        return

    load_before = os.getloadavg()
    runs: dict[str, list[list[dict[str, float]]]] = {name: [] for name in variants}
    for i in range(args.repeats):
        for name in variants:  # alternating, so drifting load hits both
            print(f"repeat {i + 1} {name}", file=sys.stderr, flush=True)
            command = [sys.executable, __file__, "--compare", args.compare, "--variant", name]
            out = subprocess.run(
                [*command, "--rounds", str(args.rounds)],
                stdout=subprocess.PIPE,
                text=True,
                check=True,
            )
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    medians = {
        name: [
            {k: round(statistics.median(r[i][k] for r in repeats), 1) for k in ("wall", "cpu")}
            for i in range(args.rounds)
        ]
        for name, repeats in runs.items()
    }
    later = {name: sum(r["cpu"] for r in rounds[1:]) for name, rounds in medians.items()}
    first, second = variants
    print(
        json.dumps(
            {
                "bench": f"test_session_{args.compare}",
                "rounds": args.rounds,
                "repeats": args.repeats,
                "median_by_round": medians,
                f"later_rounds_cpu_ratio_{first}_to_{second}": (
                    round(later[first] / later[second], 2) if later[second] else None
                ),
                "load_before": [round(x, 1) for x in load_before],
                "load_after": [round(x, 1) for x in os.getloadavg()],
                "cores": os.cpu_count(),
                "machine": platform.machine(),
                "checkout": checkout("tests"),
            }
        )
    )


if __name__ == "__main__":
    main()
