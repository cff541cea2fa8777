"""tags: tag profiles and audience segments from silver data resolved to ``one_id``.

Reads the tag definitions (``tags.definitions``) and segments (``tags.segments``),
validated before any Spark work; the silver datasets they name, ``gold/identity_map``,
``gold/identity_guards`` and, for model tags, ``gold/customer_value`` of the same run
date. Writes ``gold/profile_tags`` (tall) and ``gold/profiles`` (wide) by MERGE, so
only values that changed are rewritten and keep their computed time otherwise; every
change to ``gold/tag_changes``; per-tag coverage and distribution to ``gold/tag_stats``
and MLflow; consented segment members to ``gold/segments`` and an export per segment.

With ``tags.explain.id`` and ``tags.explain.tag`` set, prints how that person's value
came about (rule, version, inputs) instead, writing nothing and logging nothing.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

import yaml
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis.config import Config
from precis.consent import marketing_consent
from precis.errors import ConfigError, MissingDatasetError
from precis.frames import materialize, row_count
from precis.identity.resolve import isolated_identifiers
from precis.progress import Progress, log
from precis.runner import fail, job_main, parse_config
from precis.storage import Lakehouse
from precis.tags import compute, definitions, explain, history, segments, sources
from precis.tags.definitions import DATASETS, Segment, TagSet
from precis.tracking import JobRun, job_run

JOB = "tags"
TAGS, PROFILES, CHANGES, STATS, SEGMENTS = (
    "profile_tags",
    "profiles",
    "tag_changes",
    "tag_stats",
    "segments",
)
STEPS = 5
_KEEP = StorageLevel.MEMORY_AND_DISK


def load_definitions(cfg: Config) -> tuple[TagSet, tuple[Segment, ...]]:
    km = cfg.tags.kmeans
    return definitions.load(
        cfg.tags.definitions_path(), cfg.tags.segments_path(), extra=km.model_dump()
    )


# ------------------------------------------------------------------------- inputs
def _isolated(lake: Lakehouse) -> DataFrame | None:
    return (
        isolated_identifiers(lake.read("gold", "identity_guards"))
        if lake.exists("gold", "identity_guards")
        else None
    )


def _silver(lake: Lakehouse, tags: TagSet, consent_needed: bool) -> dict[str, DataFrame]:
    needed: dict[str, str] = {}  # silver table -> a tag that needs it
    for tag in tags.by_template(*definitions.WINDOWED, "attribute"):
        for table in DATASETS[tag.spec.dataset].needs:
            needed.setdefault(table, tag.name)
    silver = {}
    for table, tag in needed.items():
        if not lake.exists("silver", table):
            raise MissingDatasetError(
                f"tag '{tag}' reads silver/{table}, which is not under {lake.root}: run the ingest job first"
            )
        silver[table] = lake.read("silver", table)
    if consent_needed and "customers" not in silver and lake.exists("silver", "customers"):
        silver["customers"] = lake.read("silver", "customers")
    if lake.exists("silver", "items"):
        silver["items"] = lake.read("silver", "items")
    elif any(
        t.spec.field in ("category", "brand") for t in tags.by_template(*definitions.WINDOWED)
    ):
        log.warning("[%s] silver/items not found: category and brand tags have no values", JOB)
    return silver


def _customer_value(lake: Lakehouse, cfg: Config, tags: TagSet) -> DataFrame | None:
    users = tags.by_template("model", "kmeans")
    if not users:
        return None
    if not lake.exists("gold", "customer_value"):
        log.warning(
            "[%s] gold/customer_value not found (run lifecycle first): %s have no values",
            JOB,
            ", ".join(t.name for t in users),
        )
        return None
    cv = lake.read("gold", "customer_value")
    dates = [r[0] for r in cv.select("run_date").distinct().collect()]
    if dates != [cfg.run_date]:
        # Point in time: another date's scores would describe another moment (or the future).
        log.warning(
            "[%s] gold/customer_value is for run date(s) %s, not %s: %s have no values",
            JOB,
            sorted(map(str, dates)),
            cfg.run_date,
            ", ".join(t.name for t in users),
        )
        return None
    return cv


def _inputs(
    lake: Lakehouse, cfg: Config, tags: TagSet, identity_map: DataFrame, consent_needed: bool
):
    silver = _silver(lake, tags, consent_needed)
    needed = {t.spec.dataset for t in tags.by_template(*definitions.WINDOWED, "attribute")}
    if consent_needed and "customers" in silver:
        needed.add("customers")
    data = sources.build(silver, identity_map, needed, _isolated(lake))
    return data, _customer_value(lake, cfg, tags)


def base_values(
    cfg: Config,
    tags: Sequence,
    data: dict[str, DataFrame],
    cv: DataFrame | None,
    tracker: JobRun | None,
) -> tuple[dict[str, DataFrame], dict[str, Any]]:
    """One ``one_id`` + value frame per data-reading tag; model info for MLflow."""
    values: dict[str, DataFrame] = {}
    info: dict[str, Any] = {}
    for tag in tags:
        spec = tag.spec
        if tag.template in definitions.WINDOWED:
            values[tag.name] = compute.window_tag(data[spec.dataset], tag, cfg.run_date)
        elif tag.template == "attribute":
            values[tag.name] = compute.attribute_tag(data[spec.dataset], tag)
        elif tag.template == "model" and cv is not None:
            values[tag.name] = compute.model_tag(cv, tag)
        elif tag.template == "kmeans" and cv is not None:
            km = cfg.tags.kmeans
            found = compute.kmeans_tag(cv, tag, km.k_min, km.k_max, km.seed, km.max_iter)
            if found is None:
                log.warning(
                    "[%s] tag '%s': too few people with every feature to cluster", JOB, tag.name
                )
                continue
            values[tag.name] = found.frame
            info[tag.name] = {
                "k": found.k,
                "silhouettes": found.silhouettes,
                "centers": found.centers,
            }
            if tracker is not None:
                tracker.log_metrics(
                    {f"{tag.name}_k": found.k, f"{tag.name}_silhouette": found.silhouettes[found.k]}
                )
                for k, s in found.silhouettes.items():
                    tracker.log_metrics({f"{tag.name}_silhouette_k{k}": s})
    return values, info


# -------------------------------------------------------------------------- run
def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    tags, segs = load_definitions(cfg)
    problems = compute.check_expressions(
        spark, tags.tags, {f"segment '{s.name}'": s.spec.where for s in segs}
    )
    if problems:
        name, reason = problems[0]
        what = name if name.startswith("segment") else f"tag '{name}'"
        raise ConfigError(f"{what}: invalid Spark SQL: {reason}")
    if cfg.tags.explain.id:
        return run_explain(spark, cfg, tags)
    lake = Lakehouse.from_config(spark, cfg)
    progress = Progress(JOB, STEPS)
    computed_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    with job_run(cfg, JOB) as tracker:
        with progress.step("resolve inputs") as step:
            if not lake.exists("gold", "identity_map"):
                raise MissingDatasetError(
                    f"gold/identity_map not found under {lake.root}: run the identity job first"
                )
            identity_map = lake.read("gold", "identity_map")
            data, cv = _inputs(lake, cfg, tags, identity_map, consent_needed=bool(segs))
            data = {k: v.persist(_KEEP) for k, v in data.items()}
            step.rows = sum(v.count() for v in data.values())
            step.detail = ", ".join(sorted(data)) + (", customer_value" if cv is not None else "")
        with progress.step(f"compute {len(tags.tags)} tags") as step:
            values, models = base_values(cfg, tags.tags, data, cv, tracker)
            people = identity_map.select("one_id").distinct()
            wide, counted = materialize(
                compute.profile(people, values, tags.tags), [row_count()], storage_level=_KEEP
            )
            population = int(counted["rows"])
            step.rows = population
            step.detail = "people"
        with progress.step("write profile tags") as step:
            new = compute.tall(wide, tags.tags, computed_at, cfg.run_date).persist(_KEEP)
            old = lake.read("gold", TAGS) if lake.exists("gold", TAGS) else None
            diff = history.changes(
                old, new, cfg.run_date, tracker.key, computed_at
            ).localCheckpoint()
            change_counts = {
                r["tag"]: r["n"]
                for r in diff.groupBy("tag").agg(F.count(F.lit(1)).alias("n")).collect()
            }
            if change_counts:
                lake.append_log(diff, "gold", CHANGES, ["run_id", "one_id", "tag"])
            written = lake.merge_upsert(
                new,
                "gold",
                TAGS,
                ["one_id", "tag"],
                ignore=["computed_at", "run_date"],
                unique=True,
                delete_missing=True,
            )
            wide_out = wide.withColumn(
                "computed_at", F.lit(computed_at).cast("timestamp")
            ).withColumn("run_date", F.lit(cfg.run_date).cast("date"))
            profiles = _write_profiles(lake, wide_out)
            step.rows = sum(change_counts.values())
            step.detail = (
                f"changes {step.rows:,}; profile_tags {written['inserted']:,} inserted, {written['updated']:,} updated, "
                f"{written['deleted']:,} deleted; profiles {profiles}"
            )
        with progress.step("tag statistics") as step:
            table = history.stats(
                new, population, tags.tags, change_counts, cfg.run_date, tracker.key
            )
            lake.replace_where(table, "gold", STATS, f"run_date = '{cfg.run_date.isoformat()}'")
            rows = [r.asDict() for r in table.collect()]
            step.rows = len(rows)
            metrics = {"people": population, "changes": sum(change_counts.values())}
            for r in rows:
                metrics[f"coverage_{r['tag']}"] = r["coverage"]
                metrics[f"changes_{r['tag']}"] = r["changes"]
            tracker.log_metrics(metrics)
            tracker.log_dict({"stats": rows, "models": models}, "tag_stats.json")
            tracker.log_dict(
                {t.name: {"version": t.version, "type": t.type, **t.as_dict()} for t in tags.tags},
                "tag_definitions.json",
            )
        with progress.step(f"segments ({len(segs)})") as step:
            counts = _segments(
                lake, cfg, segs, wide, data.get("customers"), people, computed_at, tracker
            )
            step.rows = sum(counts.values())
            step.detail = ", ".join(f"{k} {v:,}" for k, v in counts.items())
        for frame in (new, wide, *data.values()):
            frame.unpersist()
        result = {
            "people": population,
            "coverage": {r["tag"]: r["coverage"] for r in rows},
            "changes": change_counts,
            "written": written,
            "segments": counts,
            "models": models,
        }
    progress.finish(
        f"{population:,} people, {len(tags.tags)} tags, {sum(change_counts.values()):,} changes"
    )
    return result


def _write_profiles(lake: Lakehouse, wide: DataFrame) -> str:
    if lake.exists("gold", PROFILES):
        existing = lake.read("gold", PROFILES).schema
        if [(f.name, f.dataType) for f in existing.fields] != [
            (f.name, f.dataType) for f in wide.schema.fields
        ]:
            # A tag was added, dropped or retyped: the wide table takes the new shape.
            lake.overwrite(wide, "gold", PROFILES, evolve=True)
            return "rebuilt (tag columns changed)"
    counts = lake.merge_upsert(
        wide,
        "gold",
        PROFILES,
        ["one_id"],
        ignore=["computed_at", "run_date"],
        unique=True,
        delete_missing=True,
    )
    return f"{counts['inserted']:,} inserted, {counts['updated']:,} updated, {counts['deleted']:,} deleted"


def _segments(
    lake: Lakehouse,
    cfg: Config,
    segs: tuple[Segment, ...],
    wide: DataFrame,
    customers: DataFrame | None,
    people: DataFrame,
    computed_at: dt.datetime,
    tracker: JobRun,
) -> dict[str, int]:
    if not segs:
        return {}
    if customers is None:
        log.warning(
            "[%s] silver/customers not found: nobody has marketing consent, segments are empty", JOB
        )
    consent = marketing_consent(customers, people)
    table = segments.members(wide, segs, consent, cfg.run_date, computed_at).persist(_KEEP)
    lake.merge_upsert(
        table,
        "gold",
        SEGMENTS,
        ["segment", "one_id"],
        ignore=["computed_at", "run_date"],
        unique=True,
        delete_missing=True,
    )
    found = {
        r["segment"]: r["n"]
        for r in table.groupBy("segment").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    counts = {s.name: int(found.get(s.name, 0)) for s in segs}
    if cfg.tags.export:
        _export(lake, cfg, table, counts)
    table.unpersist()
    tracker.log_metrics({f"segment_{k}": v for k, v in counts.items()})
    return counts


def _export(lake: Lakehouse, cfg: Config, table: DataFrame, counts: dict[str, int]) -> None:
    """Members per segment to <root>/exports/segments/run_date=<date>/segment=<name> (replaced)."""
    path = f"{lake.root}/exports/{SEGMENTS}/run_date={cfg.run_date.isoformat()}"
    rows = table.select("segment", "one_id", "segment_version", "run_date").orderBy(
        "segment", "one_id"
    )
    writer = rows.write.mode("overwrite").partitionBy("segment")
    tally = (
        lake.spark.createDataFrame(list(counts.items()), "segment string, people long")
        .coalesce(1)
        .write.mode("overwrite")
    )
    if cfg.tags.export_format == "csv":
        writer.option("header", True).csv(path)
        tally.option("header", True).csv(f"{path}/_counts")
    else:
        writer.parquet(path)
        tally.parquet(f"{path}/_counts")
    log.info("[%s] exported segments to %s", JOB, path)


# ----------------------------------------------------------------------- explain
def resolve_person(
    spark: SparkSession, cfg: Config, lake: Lakehouse, given: str
) -> tuple[str, str]:
    """(one_id, how it was found); an identifier's plain value is never returned or printed."""
    from precis import privacy
    from precis.ingest import identifiers as ids

    identity_map = lake.read("gold", "identity_map")
    id_type, sep, raw = given.partition(":")
    if sep and id_type in cfg.ingest.id_rules:
        rule = cfg.ingest.id_rules[id_type]
        key_col = ids.normalize(F.lit(raw), rule, cfg.ingest.default_country_code)
        pii = id_type in cfg.privacy.pii_types
        if pii:
            key_col = privacy.hmac_sha256_hex(key_col, privacy.resolve_key(cfg))
        id_key = spark.range(1).select(key_col.alias("k")).first()["k"]
        shown = (
            f"{id_type}:<keyed hash {id_key[:12]}...>" if pii and id_key else f"{id_type}:{id_key}"
        )
        found = (
            identity_map.filter((F.col("id_type") == id_type) & (F.col("id_key") == F.lit(id_key)))
            .select("one_id")
            .first()
        )
        if id_key is None or found is None:
            raise ConfigError(
                f"tags.explain.id: no person has identifier {shown if id_key else id_type + ' (not a valid value)'}"
            )
        return found["one_id"], f"from {shown}"
    if identity_map.filter(F.col("one_id") == F.lit(given)).limit(1).count() == 0:
        raise ConfigError(
            f"tags.explain.id: '{given}' is not a one_id in gold/identity_map (identifiers are written id_type:value, "
            f"types: {', '.join(sorted(cfg.ingest.id_rules))})"
        )
    return given, "one_id"


def run_explain(spark: SparkSession, cfg: Config, tags: TagSet) -> dict[str, Any]:
    ex = cfg.tags.explain
    tag = tags[ex.tag]
    lake = Lakehouse.from_config(spark, cfg)
    if not lake.exists("gold", "identity_map"):
        raise MissingDatasetError(
            f"gold/identity_map not found under {lake.root}: run the identity job first"
        )
    one_id, how = resolve_person(spark, cfg, lake, ex.id)
    chain = explain.closure(tags, tag.name)
    mine = (
        lake.read("gold", "identity_map").filter(F.col("one_id") == F.lit(one_id)).localCheckpoint()
    )
    sub = TagSet(tuple(chain), tags.source)
    data, cv = _inputs(lake, cfg, sub, mine, consent_needed=False)
    mine_cv = cv.filter(F.col("one_id") == F.lit(one_id)) if cv is not None else None
    values, _ = base_values(cfg, [t for t in chain if t.template != "kmeans"], data, mine_cv, None)
    wide = compute.profile(
        mine.select("one_id"), values, [t for t in chain if t.template != "kmeans"] or chain
    )
    now = {
        k: v for k, v in (wide.first().asDict() if wide.columns else {}).items() if k != "one_id"
    }
    stored = None
    if lake.exists("gold", TAGS):
        stored = (
            lake.read("gold", TAGS)
            .filter((F.col("one_id") == one_id) & (F.col("tag") == tag.name))
            .first()
        )

    out = sys.stdout
    print(f"tag {tag.name}: {tag.template} -> {tag.type}, rule version {tag.version}", file=out)
    if tag.spec.description:
        print(f"  meaning: {tag.spec.description}", file=out)
    rule = {k: v for k, v in tag.as_dict().items() if k != "description"}
    print(
        "  rule:    "
        + yaml.safe_dump(rule, default_flow_style=True, sort_keys=False, width=10_000).strip(),
        file=out,
    )
    print(f"person {one_id} ({how}), run date {cfg.run_date}", file=out)
    if stored is None:
        print("  stored:  no value in gold/profile_tags", file=out)
    else:
        current = (
            "current rule"
            if stored["rule_version"] == tag.version
            else f"OUTDATED rule (now {tag.version})"
        )
        print(
            f"  stored:  {stored['value']} (computed {stored['computed_at']}, run date {stored['run_date']}, "
            f"rule version {stored['rule_version']}: {current})",
            file=out,
        )
    if tag.template != "kmeans":
        print(f"  recomputed for {cfg.run_date}: {now.get(tag.name)}", file=out)
    inputs: list[dict[str, Any]] = []
    spec = tag.spec
    if tag.template in definitions.WINDOWED:
        start, end = compute.window_bounds(cfg.run_date, spec.window_days)
        print(
            f"  window:  {start or 'all history'} .. {end} (inclusive), dataset {spec.dataset}: "
            f"{DATASETS[spec.dataset].description}"
            + (f", where {spec.where}" if spec.where else ""),
            file=out,
        )
        rows = explain.input_rows(tag, data[spec.dataset], cfg.run_date)
        total = rows.count()
        inputs = [r.asDict() for r in rows.limit(ex.rows).collect()]
        print(
            f"  inputs:  {total} row(s)" + (f", first {ex.rows}" if total > ex.rows else ""),
            file=out,
        )
    elif tag.template == "attribute":
        rows = (
            explain.input_rows(tag, data[spec.dataset], cfg.run_date)
            if spec.dataset in data
            else None
        )
        inputs = [r.asDict() for r in rows.limit(ex.rows).collect()] if rows is not None else []
        print(
            f"  inputs:  {len(inputs)} {spec.dataset} row(s), combined by {spec.combine}", file=out
        )
    elif tag.template in ("model", "kmeans"):
        fields = [spec.field] if tag.template == "model" else list(spec.features)
        if mine_cv is None:
            print(f"  inputs:  gold/{spec.source} for {cfg.run_date} not available", file=out)
        else:
            inputs = [r.asDict() for r in mine_cv.select("run_date", *fields).collect()]
            print(f"  inputs:  gold/{spec.source} row of the person", file=out)
    else:
        inputs = [{d: now.get(d) for d in tag.depends}]
        if tag.template == "bucket":
            print(
                "  buckets: " + ", ".join(f"{b.label} [{b.min}, {b.max})" for b in spec.buckets),
                file=out,
            )
        print("  inputs:  tags " + ", ".join(tag.depends), file=out)
    for row in inputs:
        print("    " + "  ".join(f"{k}={v}" for k, v in row.items()), file=out)
    return {
        "one_id": one_id,
        "tag": tag.name,
        "version": tag.version,
        "value": now.get(tag.name),
        "stored": stored["value"] if stored is not None else None,
        "inputs": inputs,
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Bad definitions fail here, before a JVM starts; run() checks them again for
    # notebooks and the pipeline, which call it directly.
    try:
        load_definitions(parse_config(JOB, argv))
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except ConfigError as exc:
        return fail(JOB, exc)
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
