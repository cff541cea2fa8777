"""tags: tag profiles and audience segments from silver data resolved to ``one_id``.

Reads what the definitions need (facts up to the end of the run date, the run date's
``gold/customer_value`` for model tags), computes with ``precis.tags.build`` and writes the run date's snapshots of ``gold/profile_tags``, ``gold/profiles`` and
``gold/segments``, its rows of ``gold/tag_changes`` (against the snapshot before it) and
``gold/tag_stats``, and the segment exports (docs/tags.md); or explains one person's tag.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

from pyspark.sql import SparkSession

from precis import tables as T
from precis import tags as tagging
from precis.columns import RUN_DATE
from precis.config import Config
from precis.errors import ConfigError
from precis.keys import job_key
from precis.progress import Progress, log
from precis.runner import fail, job_main, one_writer, parse_config
from precis.storage import Lakehouse
from precis.tags import definitions, explain, sources
from precis.tags.templates import TagSet
from precis.tracking import JobRun, job_run

JOB = "tags"
STEPS = 5


def read_inputs(
    lake: Lakehouse, tags: TagSet, run_date: dt.date, *, consent: bool
) -> tagging.Inputs:
    lake.require(T.IDENTITY_MAP, job="identity")
    needed = sources.silver_tables(tags.tags)
    silver = {n: lake.read_as_of(T.SILVER[n], run_date) for n in needed if lake.exists(T.SILVER[n])}
    # An absent dataset's tags are skipped (build computes them from an empty table).
    absent = [T.SILVER[n].ref for n in needed if n not in silver]
    if skipped := sources.skipped_tags(tags.tags, absent):
        log.warning("[%s] skipped %s: no %s", JOB, ", ".join(sorted(skipped)), ", ".join(absent))
    for table in [T.ITEMS] + ([T.CUSTOMERS] if consent else []):
        if table.name not in silver and lake.exists(table):
            silver[table.name] = lake.read(table)
    return tagging.Inputs(
        identity_map=lake.read(T.IDENTITY_MAP),
        silver=silver,
        guards=lake.read_if_exists(T.IDENTITY_GUARDS),
        # Scores of another date would describe another moment: lifecycle must have run
        # for this one (never run at all: the model tags stay empty, with a warning).
        customer_value=lake.read_snapshot(T.CUSTOMER_VALUE, run_date, job="lifecycle")
        if lake.exists(T.CUSTOMER_VALUE) and tagging.reads_customer_value(tags.tags)
        else None,
        previous=lake.read_latest(T.PROFILE_TAGS, before=run_date),
        skipped=skipped,
    )


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    tags, segs = definitions.from_settings(cfg.tags)
    tagging.check_sql(spark, tags, segs)
    lake = Lakehouse.from_config(spark, cfg)
    if cfg.tags.explain.tag:
        return run_explain(lake, cfg, tags)
    progress = Progress(JOB, STEPS)
    with job_run(cfg, JOB) as tracker:
        with progress.step("read inputs") as step:
            inputs = read_inputs(lake, tags, cfg.run_date, consent=bool(segs))
            step.detail = ", ".join(sorted(inputs.silver))
        with progress.step(f"compute {len(tags.tags)} tags") as step:
            out = tagging.build(
                inputs, cfg.tags, tags, segs, run_date=cfg.run_date, run_id=tracker.key
            )
            step.rows, step.detail = out.people, "people"
        with progress.step("write profile tags") as step:
            on_date = f"{RUN_DATE} = DATE'{cfg.run_date.isoformat()}'"
            # Against the snapshot before this date: a rerun finds the same changes.
            lake.replace_where(out.changes, T.TAG_CHANGES, on_date)
            written = lake.write_snapshot(out.profile_tags, T.PROFILE_TAGS, cfg.run_date)
            # A tag added or dropped: its column joins (null in older snapshots) or stays.
            profiles = lake.write_snapshot(out.profiles, T.PROFILES, cfg.run_date, evolve=True)
            step.rows = out.changed
            step.detail = (
                f"changes {step.rows:,}; profile_tags {written:,} rows; profiles {profiles:,} rows"
            )
        with progress.step("tag statistics"):
            lake.replace_where(out.tag_stats, T.TAG_STATS, on_date, evolve=True)
        with progress.step(f"segments ({len(segs)})") as step:
            write_segments(lake, cfg, out)
            step.rows = sum(out.segment_counts.values())
            step.detail = ", ".join(f"{k} {v:,}" for k, v in out.segment_counts.items())
        result = report(tracker, out, tags, written)
    progress.finish(f"{out.people:,} people, {len(tags.tags)} tags, {out.changed:,} changes")
    return result


def write_segments(lake: Lakehouse, cfg: Config, out: tagging.TagsOutputs) -> None:
    if (found := out.segments) is None:
        return
    lake.write_snapshot(found.members, T.SEGMENTS, cfg.run_date)
    if cfg.tags.export:
        fmt, name = cfg.tags.export_format, T.SEGMENTS.name
        lake.export(found.export, name, cfg.run_date, fmt, partition_by=("segment",))
        lake.export(found.tally, name, cfg.run_date, fmt, subdir="_counts")
        lake.prune_exports(name, cfg.run_date, cfg.exports.retention_days)  # logs the path


def report(tracker: JobRun, out: tagging.TagsOutputs, tags: TagSet, written: int) -> dict[str, Any]:
    tracker.log_metrics(out.metrics())
    tracker.log_dict({"stats": out.stats_rows, "models": out.models}, "tag_stats.json")
    tracker.log_dict(tags.describe(), "tag_definitions.json")
    return out.summary(written)


def run_explain(lake: Lakehouse, cfg: Config, tags: TagSet) -> dict[str, Any]:
    ex = cfg.tags.explain
    person = explain.read_person(ex)  # stdin or the environment; first, before any reading
    inputs = read_inputs(lake, explain.chain(tags, ex), cfg.run_date, consent=False)
    # The stored value is the run date's (or the newest before it), not the one before.
    stored = lake.read_latest(T.PROFILE_TAGS, before=cfg.run_date + dt.timedelta(days=1))
    inputs = dataclasses.replace(inputs, previous=stored)
    ids, key = cfg.ingest, job_key(lake, cfg)  # the lakehouse's own key, or exit 2
    lookup = explain.PersonLookup(
        ids.id_rules, ids.default_country_code, cfg.privacy.pii_types, key
    )
    found = explain.explain_person(inputs, tags, ex, lookup, run_date=cfg.run_date, person=person)
    print("\n".join(found.lines), file=sys.stdout)
    return found.result


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Bad definitions fail here, before a JVM starts; run() checks them again for
    # notebooks and the pipeline, which call it directly.
    try:
        definitions.from_settings(parse_config(JOB, argv).tags)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except ConfigError as exc:
        return fail(JOB, exc)
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
