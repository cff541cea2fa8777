"""Benchmark: loading a job's config (``precis.config.load_config`` of conf/base.yaml with
one override) with the YAML parser precis uses against PyYAML's pure-Python one.

    .venv/bin/python bench/bench_config.py --repeats 50

No Spark: every job run and every test that builds a config pays this, in Python, before
Spark starts. The two parsers alternate, each after one warm-up load; the config each
gives must be equal. Prints one JSON line with the medians; record results in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import yaml

import provenance
from precis import settings
from precis.config import Config, load_config

PROJECT = Path(__file__).resolve().parents[1]


def load() -> tuple[Config, float]:
    t0 = time.perf_counter()
    cfg = load_config(PROJECT / "conf" / "base.yaml", ["storage.root=/tmp/bench-config"])
    return cfg, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    used = settings._SAFE_LOADER
    loaders = {"used": used, "pure_python": yaml.SafeLoader}
    times: dict[str, list[float]] = {name: [] for name in loaders}
    configs = {}
    for name, loader in loaders.items():  # warm-up: imports and caches
        settings._SAFE_LOADER = loader
        configs[name] = load()[0]
    assert configs["used"] == configs["pure_python"], "the parsers disagree on conf/base.yaml"
    for _ in range(args.repeats):
        for name, loader in loaders.items():
            settings._SAFE_LOADER = loader
            times[name].append(load()[1])
    settings._SAFE_LOADER = used
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    print(
        json.dumps(
            {
                "bench": "config",
                "loader": used.__name__,
                "repeats": args.repeats,
                "used_median_ms": round(medians["used"], 1),
                "pure_python_median_ms": round(medians["pure_python"], 1),
                "ratio": round(medians["pure_python"] / medians["used"], 2),
                "checkout": provenance.checkout("lib/precis/settings.py"),
                **provenance.machine("none"),
            }
        )
    )


if __name__ == "__main__":
    main()
