"""generate: synthetic multi-source retail landing data with ground truth.

Writes every landing dataset of the data contract to ``cfg.landing_path(name)`` in
``cfg.landing_format(name)`` and the truth tables to ``<storage.root>/truth/``. The same
seed, config and end date give the same rows and the same files; reruns overwrite.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from precis import tables as T
from precis.config import DATASETS, Config
from precis.errors import ConfigError
from precis.frames import materialize, row_count
from precis.generate import arrange, build, for_format, landing_order
from precis.generate.build import STAGES, TRUTH_TABLES
from precis.progress import Progress, log
from precis.runner import job_main, one_writer
from precis.storage import Lakehouse
from precis.tracking import job_run

JOB = "generate"


def _observed(df: DataFrame, name: str) -> tuple[DataFrame, Observation]:
    # Counting while writing avoids a second pass over each dataset.
    observation = Observation(f"{JOB}_{name}")
    return df.observe(observation, F.count(F.lit(1)).alias("rows")), observation


# The generator's projections are wide. Past 8000 bytes of bytecode HotSpot stops
# JIT-compiling a method, and Spark's fused whole-stage methods run interpreted, several
# times slower; at this limit Spark splits them into compilable methods instead.
GENERATOR_SQL_CONF = {"spark.sql.codegen.hugeMethodLimit": "8000"}


@contextlib.contextmanager
def generator_conf(spark: SparkSession) -> Iterator[None]:
    """Apply GENERATOR_SQL_CONF for the duration of a run, then restore the session's values."""
    previous: dict[str, str | None] = {key: spark.conf.get(key, None) for key in GENERATOR_SQL_CONF}
    for key, value in GENERATOR_SQL_CONF.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, before in previous.items():
            if before is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, before)


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> dict[str, int]:
    g = cfg.generate
    end_date = g.end_date or cfg.run_date
    lake = Lakehouse.from_config(spark, cfg)
    progress = Progress(JOB, len(STAGES) + len(DATASETS) + len(TRUTH_TABLES))
    log.info(
        "[%s] %s people, %s items, %s days to %s, seed %s",
        JOB,
        f"{g.people:,}",
        f"{g.items:,}",
        g.days,
        end_date,
        g.seed,
    )

    def persist(df: DataFrame, name: str) -> DataFrame:
        # Materialize once and cut the lineage: later queries then plan against a small
        # plan instead of re-analyzing the whole generator (see precis.generate.build).
        # On local disk, not in the heap: a million people's events would fill a default
        # driver heap and leave the JVM collecting garbage instead of generating.
        with progress.step(f"simulate {name}") as step:
            kept, counted = materialize(df, [row_count()], storage_level=StorageLevel.DISK_ONLY)
            step.rows = int(counted["rows"])
        return kept

    def write_dataset(name: str) -> int:
        fmt = cfg.landing_format(name)
        shaped = for_format(generated.landing[name], name, fmt, name in generated.corrupted)
        observed, observation = _observed(shaped, name)
        lake.write_landing(
            arrange(observed, landing_order(name), g.partitions), cfg.landing_path(name), fmt
        )
        return int(observation.get["rows"])

    def write_truth(table: str) -> int:
        observed, observation = _observed(generated.truth[table], f"truth_{table}")
        # Truth rows come out of generation in a deterministic order already; merging
        # partitions instead of shuffling them keeps the files deterministic and cheap.
        lake.overwrite(observed.coalesce(g.partitions), T.TRUTH[table], evolve=True)
        return int(observation.get["rows"])

    targets = {name: cfg.landing_path(name) for name in DATASETS}
    foreign = lake.foreign_landing(targets, {n: cfg.landing_format(n) for n in DATASETS})
    if foreign and not g.replace_landing:
        raise ConfigError(
            f"generate would replace landing data it did not write: {', '.join(foreign)}; "
            "point storage.root (or landing.<dataset>.path) elsewhere, or set "
            "generate.replace_landing=true to replace it"
        )
    lake.claim_landing(targets, cfg.run_date)
    counts: dict[str, int] = {}
    with (
        generator_conf(spark),
        job_run(cfg, JOB, tags={"precis.generate.end_date": end_date.isoformat()}) as tracker,
    ):
        generated = build(spark, g, end_date, persist=persist)
        if generated.corrupted:
            log.info(
                "[%s] corrupting %.1f%% of %s (landed as all-string columns)",
                JOB,
                100 * g.corrupt_fraction,
                ", ".join(generated.corrupted),
            )
        for name in DATASETS:
            with progress.step(f"write landing/{name} ({cfg.landing_format(name)})") as step:
                fmt = cfg.landing_format(name)
                if name in generated.unplanted and not lake.has_landing(targets[name], fmt):
                    counts[f"landing.{name}"] = 0
                    step.detail = "nothing planted"
                    continue
                step.rows = counts[f"landing.{name}"] = write_dataset(name)
        for table in TRUTH_TABLES:
            with progress.step(f"write truth/{table}") as step:
                step.rows = counts[f"truth.{table}"] = write_truth(table)
        tracker.log_metrics({f"rows.{k}": v for k, v in counts.items()})
    log.info("[%s] truth tables in %s/truth", JOB, lake.root)
    progress.finish(f"{counts['landing.events']:,} events, {counts['landing.orders']:,} orders")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
