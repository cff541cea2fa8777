"""Benchmark: identity quality across trap intensities, against a simple baseline.

    .venv/bin/python bench/bench_identity_sweep.py --people 5000 --intensities 0.5,1,2

For each intensity a world of ``--people`` people is generated into a new lakehouse
with the generator's trap settings multiplied by it (``family_share``, ``cafe_share``,
``placeholder_rate``, ``hotline_rate``, ``variant_rate``, each capped at 1; ``--traps``
names them), then ingested and resolved by the identity job with its defaults. In the
same session the *simple baseline* resolves the same silver tables: link every pair
of identifiers seen in one ``id_observations`` record, drop every identifier linked to
more distinct values of one strong type than its type's ``identity.types.*.max_linked``
(the job's own ``over_linked`` guard, the store hotline), then take the connected
components of all the rest, strong and weak alike; a record takes the component of its
highest-priority identifier that was not dropped. Both are scored against the
generator's truth by ``precis.identity.quality`` (pairwise precision, recall and F1
over records; the recall ceiling, the share of true pairs the person's own records
connect at all, and the recall over those pairs).

Prints one JSON line per intensity; record results in docs/benchmarks.md. The
generator has one world family so far; the churn of a next-day run is not measured
here (``bench_identity.py`` checks that an unchanged rerun changes nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis import frames
from precis import tables as T
from precis.config import Config, load_config
from precis.identity import links, quality, records
from precis.identity.components import components_of
from precis.jobs import evaluate, generate, identity, ingest
from precis.session import get_spark
from precis.storage import Lakehouse
from provenance import checkout

PROJECT = Path(__file__).resolve().parents[1]
TRAPS = ("family_share", "cafe_share", "placeholder_rate", "hotline_rate", "variant_rate")


def log(message: str) -> None:
    print(f"[bench_identity_sweep {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr)


def baseline(silver: dict[str, DataFrame], cfg: Config) -> DataFrame:
    """dataset, source, record_id, one_id by the simple baseline (module docstring)."""
    settings = cfg.identity
    found = records.identified_records(silver)
    linked, _ = links.record_links(found, settings.max_ids_per_record)
    dropped = links.over_linked(linked, settings).select("node").distinct()
    kept = linked.join(dropped.withColumnRenamed("node", "src"), "src", how="left_anti").join(
        dropped.withColumnRenamed("node", "dst"), "dst", how="left_anti"
    )
    vertices = records.nodes(found).select(F.col("node").alias("id"))
    components = components_of(
        kept.select("src", "dst"),
        vertices,
        checkpoint_dir=frames.checkpoint_dir(found.sparkSession),
    )
    mapping = components.select(
        F.col("id").alias("node"),
        F.col("component").cast("string").alias("one_id"),
    ).join(dropped.withColumn("isolated", F.lit(True)), "node", how="left")
    mapping = mapping.fillna(False, ["isolated"])
    return records.record_one_ids(found, mapping, settings)


def one_world(spark, root: Path, people: int, intensity: float, run_date: str) -> dict:
    base = load_config(PROJECT / "conf" / "base.yaml", ["mlflow.enabled=false"])
    scaled = [
        f"generate.{trap}={min(1.0, getattr(base.generate, trap) * intensity)}" for trap in TRAPS
    ]
    cfg = load_config(
        PROJECT / "conf" / "base.yaml",
        [f"storage.root={root}", f"generate.people={people}", "mlflow.enabled=false", *scaled],
        run_date=run_date,
    )
    lake = Lakehouse.from_config(spark, cfg)
    generate.run(spark, cfg)
    ingest.run(spark, cfg)
    started = time.perf_counter()
    identity.run(spark, cfg)
    seconds = time.perf_counter() - started
    job = evaluate.evaluate_identity(lake, cfg) or {}
    silver = {
        name: lake.read(T.SILVER[name]) for name in records.SOURCES if lake.exists(T.SILVER[name])
    }
    truth = lake.read(T.RECORD_PERSON)
    groups = frames.cut(
        quality.evidence_groups(
            records.identified_records(silver), truth, frames.checkpoint_dir(spark)
        )
    )
    started = time.perf_counter()
    simple = frames.cut(baseline(silver, cfg))
    baseline_seconds = time.perf_counter() - started
    simple_scores = quality.pairwise_scores(simple, truth, groups)
    return {
        "intensity": intensity,
        "traps": {trap: getattr(cfg.generate, trap) for trap in TRAPS},
        "precis": {k: round(v, 4) for k, v in job.items()},
        "baseline": {k: round(v, 4) for k, v in simple_scores.items()},
        "identity_s": round(seconds, 1),
        "baseline_s": round(baseline_seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--intensities", default="0.5,1,2")
    parser.add_argument("--run-date", default="2026-03-31")
    parser.add_argument("--work", type=Path, default=None, help="keep the lakehouses here")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_identity_sweep-"))
    cfg = load_config(PROJECT / "conf" / "base.yaml", [f"storage.root={work}/session"])
    spark = get_spark(cfg)
    try:
        for value in args.intensities.split(","):
            intensity = float(value)
            root = work / f"intensity-{intensity:g}"
            shutil.rmtree(root, ignore_errors=True)
            log(f"intensity {intensity:g}: {args.people:,} people under {root}")
            result = one_world(spark, root, args.people, intensity, args.run_date)
            result.update(
                bench="identity_sweep",
                family="default",
                people=args.people,
                run_date=args.run_date,
                checkout=checkout("lib/precis/identity"),
                load_average=[round(v, 2) for v in os.getloadavg()],
                machine=f"{platform.machine()}, {os.cpu_count()} cpu",
            )
            print(json.dumps(result), flush=True)
    finally:
        spark.stop()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
