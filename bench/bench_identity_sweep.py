"""Benchmark: identity quality across world families and trap intensities, beside a
simple baseline, and the churn of a next-day run.

    .venv/bin/python bench/bench_identity_sweep.py --people 5000 --intensities 0.5,1,2

For each world family (``--families``: ``retail`` is the generator's default world;
any other is chosen with ``generate.family``, a setting only a generator with several
families has) and each intensity, a world of ``--people`` people is generated for the
run date D (the period ending D) into a new lakehouse, with the generator's trap
settings multiplied by the intensity (``family_share``, ``cafe_share``,
``placeholder_rate``, ``hotline_rate``, ``variant_rate`` and, where the generator has
it, ``kiosk_share``; each capped at 1; ``traps`` names them).

Each world is resolved as two days. Day 1: the landing rows whose time is before D
(each dataset's time column of the data contract, read in the format the generator
wrote; order items follow their orders; datasets without a time are kept whole) are
landed in that format as the landing of D-1, and ingest and identity run as of D-1
(identity from scratch: ``identity_s``). Day 2: the landing is replaced by all rows, and
ingest and identity run as of D (identity incremental, its default: ``churn.identity_s``).
Day 2 holds the whole world, so quality is scored on it, as before the split: the job by
``precis.identity.quality`` against the generator's truth (pairwise precision, recall
and F1 over records; the recall ceiling, the share of true pairs the person's own
records connect at all through identifiers that are one person's (the generator's traps
connect nothing), and the recall over those pairs), and, in the same session on
the same silver tables, the *simple baseline*: link every pair of identifiers seen in
one ``id_observations`` record, drop every identifier linked to more distinct values of
one strong type than its type's ``identity.types.*.max_linked`` (the job's own
``over_linked`` guard, the store hotline), then take the connected components of all
the rest, strong and weak alike; a record takes the component of its highest-priority
identifier that was not dropped, and one carrying only dropped identifiers is a person
of its own (as in the job: a receipt with only the store hotline on it).

Churn: the *untouched* people are the true people (``truth/record_person``) none of
whose records is new on day D (landed with a time at or after D's start). A record of
an untouched person *churned* when its ``one_id`` in ``gold/record_identity`` on day 2
is not the one of day 1 (or it has none any more). ``churn`` reports the untouched
people and their records with a ``one_id`` on day 1, the churned records (count and
share of those) and the untouched people they belong to, the churned records by trap
class (the ``kind``s of ``truth/traps`` among the record's valid identifiers, matched on
``id_type`` and ``id_key`` with PII hashed as ingest does, joined by ``+``; ``none``
when it carries no trap; placeholders are blocked at ingest, so they never name a
class), and the identity job's own log of day 2: ``gold/identity_changes`` rows of run
date D by ``change``, its mode and how many identifiers it reclustered. The baseline
has no state, so no churn.

Prints one JSON line per (family, intensity); record results in docs/benchmarks.md.
``bench_identity.py`` checks that an unchanged rerun changes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from precis import frames
from precis import tables as T
from precis.columns import ID_KEY, ID_TYPE, ID_VALUE, ONE_ID, ORDER_ID, RECORD_ID
from precis.config import DATASETS, Config, load_config
from precis.generate import arrange, landing_order
from precis.generate.landing import landed_columns
from precis.generate.settings import GenerateConfig
from precis.identity import links, quality, records
from precis.identity.components import components_of
from precis.ingest import conform
from precis.ingest import identifiers as ids
from precis.jobs import evaluate, generate, identity, ingest
from precis.keys import job_key
from precis.schemas import SPECS, TEMPORAL_TYPES
from precis.session import get_spark
from precis.storage import Lakehouse
from provenance import checkout

PROJECT = Path(__file__).resolve().parents[1]
# kiosk_share is a trap of the siloed family: scaled wherever the generator has it.
TRAPS = tuple(
    trap
    for trap in (
        "family_share",
        "cafe_share",
        "placeholder_rate",
        "hotline_rate",
        "variant_rate",
        "kiosk_share",
    )
    if trap in GenerateConfig.model_fields
)
# The generator's world without generate.family: named only for the other families, so
# it runs on a generator that has no such setting.
DEFAULT_FAMILY = "retail"
KEYS = list(T.RECORD_KEYS)


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
    # As in the job, a record carrying only dropped identifiers is nobody's known person.
    return records.record_one_ids(found, mapping, settings, nobody=dropped)


# ------------------------------------------------------------ the landing, cut in two
def read_landed(spark: SparkSession, name: str, fmt: str, path: str) -> DataFrame:
    """A landed dataset as the generator wrote it (``precis.generate.for_format``): csv as
    strings by its header, json with the contract's types but times as ISO-8601 text,
    parquet and delta typed. Written back in ``fmt``, the rows keep their schema."""
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.option("header", "true").option("multiLine", "true")
    if fmt == "json":
        text = [
            StructField(n, StringType() if isinstance(t, TEMPORAL_TYPES) else t)
            for n, t in landed_columns(name)
        ]
        reader = reader.schema(StructType(text))
    return reader.load(path)


def landed_time(name: str) -> Column | None:
    """When a landed row of ``name`` happened (None: the dataset has no time): the
    contract's ordering column, else its one date (campaign_spend)."""
    spec = SPECS[name]
    temporal = [n for n, t in spec.columns if isinstance(t, TEMPORAL_TYPES)]
    column = spec.order_by or (temporal[0] if len(temporal) == 1 else None)
    if column is None:
        return None
    # csv and json hold ISO-8601 text with its offset; the cast reads it as an instant.
    at = F.col(column).cast("timestamp")
    if name == "customers":  # ingest fills a missing consent_updated_at with signup_time
        at = F.coalesce(at, F.col("signup_time").cast("timestamp"))
    return at


def set_aside(
    spark: SparkSession, cfg: Config, lake: Lakehouse, where: Path
) -> dict[str, DataFrame]:
    """Move the generated landing to ``where`` and read each dataset back from there."""
    where.mkdir(parents=True)
    rows = {}
    for name in DATASETS:
        fmt, path = cfg.landing_format(name), cfg.landing_path(name)
        if lake.has_landing(path, fmt):
            shutil.move(path, where / name)
            rows[name] = read_landed(spark, name, fmt, str(where / name))
    return rows


def land(
    lake: Lakehouse, cfg: Config, rows: dict[str, DataFrame], before: dt.datetime | None
) -> None:
    """Replace the landing with ``rows``, only those before ``before`` when given, each
    dataset in its format and laid out as the generator lays it out."""
    kept: dict[str, DataFrame] = {}
    for name, frame in rows.items():
        at = landed_time(name)
        if before is not None and at is not None:
            frame = frame.filter(at < F.lit(before))
        elif before is not None and name == "order_items" and "orders" in kept:
            frame = frame.join(kept["orders"].select(ORDER_ID), ORDER_ID, how="left_semi")
        kept[name] = frame
        shaped = arrange(frame, landing_order(name), cfg.generate.partitions)
        lake.write_landing(shaped, cfg.landing_path(name), cfg.landing_format(name))


def truth_key(name: str) -> tuple[Column, Column] | None:
    """(source, record_id) of a landed row of ``name`` as truth/record_person keys its
    record (None: the dataset holds no person's records)."""
    if name == "id_observations":
        return F.col("source"), F.col(RECORD_ID)
    if name in ("customers", "forget_requests"):
        return F.lit(name), F.concat_ws(":", ID_TYPE, ID_VALUE)
    if name in records.SOURCES:
        return F.lit(name), F.col(records.SOURCES[name][1])
    return None


def new_records(rows: dict[str, DataFrame], since: dt.datetime) -> DataFrame:
    """dataset, source, record_id (truth's keys) of the records landed at or after ``since``."""
    parts = []
    for name, frame in rows.items():
        key, at = truth_key(name), landed_time(name)
        if key is not None and at is not None:
            parts.append(
                frame.filter(at >= F.lit(since)).select(
                    F.lit(name).alias("dataset"), key[0].alias("source"), key[1].alias(RECORD_ID)
                )
            )
    return functools.reduce(DataFrame.unionByName, parts)


# -------------------------------------------------------------------------- churn
def hashed(frame: DataFrame, settings: conform.IdentifierSettings) -> DataFrame:
    """``frame`` with id_type, id_value as ingest stores them: id_type, id_key (null for
    a value ingest blocks or rejects), id_status."""
    typed = frame.withColumn(ID_TYPE, ids.kind(F.col(ID_TYPE)))
    # Computed once: an aggregate over the normalization's wide expression fails Spark's
    # code generation (it falls back, after a long stack trace).
    return frames.cut(conform.resolve_identifiers(typed, settings))


def silver_keyed(truth: DataFrame, settings: conform.IdentifierSettings) -> DataFrame:
    """truth/record_person keyed as gold/record_identity keys records: truth names a
    customers row by its landed id_type:id_value, silver by id_type:id_key."""
    customers = truth.filter(F.col("dataset") == "customers")
    parts = F.split(RECORD_ID, ":", 2)
    landed = customers.select(
        "dataset", "source", "person_id", parts[0].alias(ID_TYPE), parts[1].alias(ID_VALUE)
    )
    keyed = hashed(landed, settings).select(
        "dataset", "source", F.concat_ws(":", ID_TYPE, ID_KEY).alias(RECORD_ID), "person_id"
    )
    others = truth.filter(F.col("dataset") != "customers").select(*KEYS, "person_id")
    return others.unionByName(keyed)


def churn(lake: Lakehouse, cfg: Config, day1: DataFrame, new: DataFrame) -> dict:
    """The churn block of the module docstring; ``day1``: gold/record_identity of day 1,
    ``new``: the records new on the run date (``new_records``)."""
    settings = conform.IdentifierSettings.of(cfg.ingest, cfg.privacy.pii_types, job_key(lake, cfg))
    truth = lake.read(T.RECORD_PERSON)
    touched = truth.join(new, KEYS, how="left_semi").select("person_id").distinct()
    untouched = frames.cut(
        truth.select("person_id").distinct().join(touched, "person_id", how="left_anti")
    )
    theirs = silver_keyed(truth, settings).join(untouched, "person_id", how="left_semi")
    day2 = lake.read(T.RECORD_IDENTITY).select(*KEYS, F.col(ONE_ID).alias("day2"))
    compared = frames.cut(
        theirs.join(day1.select(*KEYS, F.col(ONE_ID).alias("day1")), KEYS).join(
            day2, KEYS, how="left"
        )
    )
    churned = frames.cut(compared.filter(~F.col("day1").eqNullSafe(F.col("day2"))))
    silver = {n: lake.read(T.SILVER[n]) for n in records.SOURCES if lake.exists(T.SILVER[n])}
    carried = records.identified_records(silver).select(*KEYS, ID_TYPE, ID_KEY)
    traps = quality.trap_keys(
        lake.read(T.TRUTH["traps"]), cfg.ingest, cfg.privacy.pii_types, job_key(lake, cfg)
    )
    classes = (
        churned.select(*KEYS, "person_id")
        .join(carried, KEYS, how="left")
        .join(traps, [ID_TYPE, ID_KEY], how="left")
        .groupBy(*KEYS, "person_id")
        .agg(F.array_join(F.array_sort(F.collect_set("kind")), "+").alias("trap"))
        .withColumn("trap", F.when(F.col("trap") == "", "none").otherwise(F.col("trap")))
        .groupBy("trap")
        .agg(F.count(F.lit(1)).alias("records"), F.countDistinct("person_id").alias("people"))
    )
    changes = (
        lake.read(T.IDENTITY_CHANGES)
        .filter(F.col("run_date") == F.lit(cfg.run_date))
        .groupBy("change")
        .count()
    )
    their_records, churned_records = compared.count(), churned.count()
    return {
        "untouched_people": untouched.count(),
        "untouched_records": their_records,
        "churned_records": churned_records,
        "churned_share": round(churned_records / their_records, 6) if their_records else 0.0,
        "churned_people": churned.select("person_id").distinct().count(),
        "by_trap": {
            r["trap"]: {"records": r["records"], "people": r["people"]}
            for r in classes.orderBy("trap").collect()
        },
        "identity_changes": {r["change"]: r["count"] for r in changes.orderBy("change").collect()},
    }


# -------------------------------------------------------------------------- a world
def world_config(root: Path, people: int, family: str, intensity: float, run_date: dt.date):
    """The world's config; fails (ConfigError) on a family the generator does not know."""
    chosen = [] if family == DEFAULT_FAMILY else [f"generate.family={family}"]
    # The family's own defaults are what the intensity multiplies.
    base = load_config(PROJECT / "conf" / "base.yaml", ["mlflow.enabled=false", *chosen])
    scaled = [
        f"generate.{trap}={min(1.0, getattr(base.generate, trap) * intensity)}" for trap in TRAPS
    ]
    return load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={root}",
            f"generate.people={people}",
            "mlflow.enabled=false",
            *chosen,
            *scaled,
        ],
        run_date=run_date,
    )


def scores(lake: Lakehouse, cfg: Config) -> tuple[dict, dict, float]:
    """(the job's scores, the baseline's, the baseline's seconds) on the same evidence
    groups (``evaluate.evidence``: the generator's traps are no evidence)."""
    job = evaluate.evaluate_identity(lake, cfg) or {}
    silver = {
        name: lake.read(T.SILVER[name]) for name in records.SOURCES if lake.exists(T.SILVER[name])
    }
    truth = lake.read(T.RECORD_PERSON)
    groups = evaluate.evidence(lake, cfg, truth)
    started = time.perf_counter()
    simple = frames.cut(baseline(silver, cfg))
    seconds = round(time.perf_counter() - started, 1)
    return job, quality.pairwise_scores(simple, truth, groups), seconds


def timed(job, spark: SparkSession, cfg: Config):
    started = time.perf_counter()
    out = job(spark, cfg)
    return out, round(time.perf_counter() - started, 1)


def one_world(spark: SparkSession, cfg: Config, intensity: float) -> dict:
    root, run_date = Path(cfg.root), cfg.run_date
    lake = Lakehouse.from_config(spark, cfg)
    day1_cfg = cfg.for_date(run_date - dt.timedelta(days=1))
    # The generator's days are UTC days (precis.generate.period).
    start = dt.datetime.combine(run_date, dt.time(), dt.UTC)
    generate.run(spark, cfg)
    generated = set_aside(spark, cfg, lake, root / "generated")
    land(lake, cfg, generated, before=start)
    ingest.run(spark, day1_cfg)
    _, seconds = timed(identity.run, spark, day1_cfg)
    day1 = frames.cut(lake.read(T.RECORD_IDENTITY).select(*KEYS, ONE_ID))
    land(lake, cfg, generated, before=None)
    ingest.run(spark, cfg)
    stats, day2_seconds = timed(identity.run, spark, cfg)

    job, simple_scores, baseline_seconds = scores(lake, cfg)
    changed = churn(lake, cfg, day1, new_records(generated, start))
    changed.update(mode=stats.mode, reclustered=stats.reclustered, identity_s=day2_seconds)
    return {
        "intensity": intensity,
        "traps": {trap: getattr(cfg.generate, trap) for trap in TRAPS},
        "precis": {k: round(v, 4) for k, v in job.items()},
        "baseline": {k: round(v, 4) for k, v in simple_scores.items()},
        "identity_s": seconds,
        "baseline_s": baseline_seconds,
        "churn": changed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--intensities", default="0.5,1,2")
    parser.add_argument("--families", default="retail,siloed")
    parser.add_argument("--run-date", type=dt.date.fromisoformat, default=dt.date(2026, 3, 31))
    parser.add_argument("--work", type=Path, default=None, help="keep the lakehouses here")
    args = parser.parse_args(argv)
    families = args.families.split(",")
    if "family" not in GenerateConfig.model_fields and set(families) - {DEFAULT_FAMILY}:
        parser.error(f"this generator has no generate.family: only --families {DEFAULT_FAMILY}")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_identity_sweep-"))
    # Every world's config first, so a family the generator does not know fails now.
    worlds = [
        (family, intensity, world_config(root, args.people, family, intensity, args.run_date))
        for family in families
        for intensity in map(float, args.intensities.split(","))
        for root in [work / f"{family}-intensity-{intensity:g}"]
    ]
    cfg = load_config(PROJECT / "conf" / "base.yaml", [f"storage.root={work}/session"])
    spark = get_spark(cfg)
    try:
        for family, intensity, world in worlds:
            shutil.rmtree(world.root, ignore_errors=True)
            log(f"{family} at intensity {intensity:g}: {args.people:,} people under {world.root}")
            # The jobs print their summaries: stdout keeps the JSON lines only.
            with contextlib.redirect_stdout(sys.stderr):
                result = one_world(spark, world, intensity)
            result.update(
                bench="identity_sweep",
                family=family,
                people=args.people,
                run_date=args.run_date.isoformat(),
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
