"""identity: silver identifiers -> one stable ``one_id`` per person.

Reads the identified silver datasets, the operators' rules and what the last run left;
``precis.identity.build`` links identifiers seen together, applies the guards,
clusters and names the clusters after the previous run's ids (see ``precis.identity``).
Writes ``gold/identity_map``, ``gold/record_identity`` (MERGE: only changed rows are
rewritten), appends ``gold/identity_changes``, and replaces this run date's rows of
``gold/identity_guards``; ``meta/identity_runs`` keeps per-run statistics, and
``meta/identity_state`` and ``meta/identity_records`` what the next run needs to
recluster only the components that new or changed records touch.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession

from precis import frames
from precis import tables as T
from precis.config import Config, IdentityRulesConfig
from precis.errors import MissingDatasetError
from precis.identity import IdentityInputs, IdentityOutputs, PreviousRun, Stats, build, records
from precis.identity.incremental import with_map_version
from precis.identity.report import metrics, render, runs_row
from precis.ingest.conform import IdentifierSettings
from precis.keys import job_key
from precis.progress import Progress, log
from precis.runner import job_main, one_writer
from precis.storage import Lakehouse
from precis.tracking import job_run

JOB = "identity"
STEPS = 7  # six in build, then the writes


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> Stats:
    lake = Lakehouse.from_config(spark, cfg)
    inputs = read(lake, cfg.identity.rules)
    # Ingest's normalization and key (the lakehouse's own), only to hash operators' rules.
    key = job_key(lake, cfg) if inputs.rules is not None else None
    hashing = IdentifierSettings.of(cfg.ingest, cfg.privacy.pii_types, key) if key else None
    progress = Progress(JOB, STEPS)
    changed_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with job_run(cfg, JOB) as tracker:
        out = build(
            inputs,
            cfg.identity,
            run_date=cfg.run_date,
            run_id=tracker.key,
            changed_at=changed_at,
            hashing=hashing,
            checkpoint_dir=frames.checkpoint_dir(spark),
            steps=progress.step,
            on_iteration=_iteration,
        )
        with progress.step("write gold") as step:
            stats = write(lake, out, cfg.run_date)
            step.detail = (
                f"map +{stats.map_inserted:,} ~{stats.map_updated:,} -{stats.map_deleted:,}, "
                f"records changed {stats.records_changed:,}"
            )
        row = runs_row(
            spark, stats, run_id=tracker.key, run_date=cfg.run_date, finished_at=changed_at
        )
        lake.append_log(row, T.IDENTITY_RUNS)
        tracker.log_metrics(metrics(stats))
        tracker.log_dict(dataclasses.asdict(stats), "identity_stats.json")
    print(render(stats))
    progress.finish(f"{stats.one_ids:,} one_ids")
    return stats


def read(lake: Lakehouse, rules: IdentityRulesConfig) -> IdentityInputs:
    # Whichever identified datasets exist: a shop with only orders is a normal world,
    # each order's identifier evidence on its own (links need id_observations).
    silver = {
        name: lake.read(T.SILVER[name]) for name in records.SOURCES if lake.exists(T.SILVER[name])
    }
    if not silver:
        names = ", ".join(f"silver/{name}" for name in records.SOURCES)
        raise MissingDatasetError(
            f"identity needs at least one identified dataset ({names}) under {lake.root}: "
            "land one and run the ingest job first"
        )
    previous_map = lake.read_if_exists(T.IDENTITY_MAP)
    rules_table, rules_source = _rules(lake, rules)
    return IdentityInputs(
        silver=silver,
        previous=PreviousRun(
            identity_map=previous_map,
            map_version=lake.version(T.IDENTITY_MAP) if previous_map is not None else None,
            changes=lake.read_if_exists(T.IDENTITY_CHANGES),
            guards=lake.read_if_exists(T.IDENTITY_GUARDS),
            state=lake.read_if_exists(T.IDENTITY_STATE),
            records=lake.read_if_exists(T.IDENTITY_RECORDS),
        ),
        rules=rules_table,
        rules_source=rules_source,
    )


def _rules(lake: Lakehouse, rules: IdentityRulesConfig) -> tuple[DataFrame | None, str]:
    """The operators' rules table as read (the configured file, else the meta table)."""
    if rules.path is None:
        return lake.read_if_exists(T.IDENTITY_RULES), lake.path(T.IDENTITY_RULES)
    reader = lake.spark.read.format(rules.format)
    if rules.format == "csv":
        reader = reader.option("header", "true")
    return reader.load(rules.path), rules.path


def write(lake: Lakehouse, out: IdentityOutputs, run_date: dt.date) -> Stats:
    """Write every output; the statistics with the MERGE's counts."""

    def merge(df: DataFrame, table: T.Table) -> dict[str, int]:
        # Each frame is the table's whole new content, one row per key.
        return lake.merge_upsert(df, table, unique=True, delete_missing=True)

    # Changes first: a rerun after a crash between the two finds the old map again and
    # the same changes; after the map, it finds no change and keeps these.
    lake.append_log(out.changes, T.IDENTITY_CHANGES)
    mapped = merge(out.identity_map, T.IDENTITY_MAP)
    resolved = merge(out.record_identity, T.RECORD_IDENTITY)
    lake.replace_where(out.guards, T.IDENTITY_GUARDS, f"run_date = '{run_date.isoformat()}'")
    merge(with_map_version(out.state, lake.version(T.IDENTITY_MAP)), T.IDENTITY_STATE)
    merge(out.record_state, T.IDENTITY_RECORDS)
    return dataclasses.replace(
        out.stats,
        map_inserted=mapped["inserted"],
        map_updated=mapped["updated"],
        map_deleted=mapped["deleted"],
        records_changed=sum(resolved.values()),
    )


def _iteration(iteration: int, remaining: int) -> None:
    log.info("[%s]   components iteration %d: %s links left", JOB, iteration, f"{remaining:,}")


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
