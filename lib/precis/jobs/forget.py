"""forget: remove people from every table of every layer, and keep them out.

Requests come from silver ``forget_requests`` (landed), ``forget.file`` and
``forget.one_ids``; each means the whole person (``precis.forget``). The run first adds
the person's identifiers to ``meta/suppressions`` (ingest drops their rows from then
on, replays included), then deletes their rows from bronze, quarantine, silver, gold,
meta, truth and the export files, purges the tables' history (REORG, VACUUM with
``forget.retention_hours``) and records what it removed in ``meta/forget_log``.
``gold/identity_map`` and ``gold/record_identity`` go last: a run that dies halfway
finds the person through them again, and the log marks a request done only at the end.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from functools import partial, reduce
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from precis import forget, privacy
from precis import tables as T
from precis.config import Config
from precis.forget import erase
from precis.frames import cut
from precis.ingest import protect
from precis.ingest.conform import IdentifierSettings
from precis.keys import job_key
from precis.progress import Progress
from precis.runner import job_main, one_writer
from precis.schemas import SPECS
from precis.storage import Lakehouse, rewrite_landing_without
from precis.tracking import job_run

JOB = "forget"
STEPS = 5


def read_requests(
    spark: SparkSession, cfg: Config, lake: Lakehouse, settings: IdentifierSettings
) -> DataFrame:
    found = [forget.one_id_requests(spark, cfg.forget.one_ids)]
    stored = lake.read_if_exists(T.SILVER["forget_requests"])
    if stored is not None:
        found.append(forget.stored_requests(stored))
    if cfg.forget.file:
        reader = spark.read.format(cfg.forget.file_format)
        if cfg.forget.file_format == "csv":
            reader = reader.option("header", "true")
        found.append(forget.keyed_requests(reader.load(cfg.forget.file), settings))
    return reduce(DataFrame.unionByName, found)


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    lake = Lakehouse.from_config(spark, cfg)
    key = job_key(lake, cfg)
    settings = IdentifierSettings.of(cfg.ingest, cfg.privacy.pii_types, key)
    progress = Progress(JOB, STEPS)
    at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with job_run(cfg, JOB) as tracker:
        with progress.step("find the people") as step:
            todo = cut(
                forget.pending(
                    read_requests(spark, cfg, lake, settings), lake.read_if_exists(T.FORGET_LOG)
                )
            )
            keys = sorted(r[0] for r in todo.select(forget.REQUEST_KEY).collect())
            if not keys:
                step.detail = "no pending request"
                progress.finish()
                return {"requests": 0, "removed": {}}
            who, pairs = forget.person(
                todo,
                lake.read_if_exists(T.IDENTITY_MAP),
                lake.read_if_exists(T.RECORD_IDENTITY),
                lake.read_if_exists(T.ORDERS),
                lake.read_if_exists(T.RECORD_PERSON),
            )
            who = who.computed()
            people = who.one_ids.count()
            step.rows, step.detail = people, f"{len(keys)} request(s), {people} people"
        with progress.step("suppress their identifiers"):
            lake.append_log(
                forget.suppression_rows(pairs, todo, privacy.fingerprint(key), cfg.run_date, at),
                T.SUPPRESSIONS,
            )
        with progress.step("delete their rows") as step:
            removed = erase.delete_everywhere(lake, who, settings)
            removed.update(lake.forget_in_exports(who.one_ids))
            step.rows = sum(removed.values())
            step.detail = f"{len(removed)} table(s) and export folder(s)"
        with progress.step("rewrite landing files") as step:
            if cfg.forget.rewrite_landing:
                rewritten = rewrite_landing(spark, cfg, lake, settings)
                removed.update(rewritten)
                step.rows = sum(rewritten.values())
                step.detail = f"{len(rewritten)} landing file(s) rewritten"
            else:
                step.detail = "left as landed (forget.rewrite_landing is false)"
        with progress.step("purge history") as step:
            for table in T.DECLARED:
                if removed.get(table.ref):
                    lake.purge_history(table, cfg.forget.retention_hours)
            step.detail = f"VACUUM RETAIN {cfg.forget.retention_hours} HOURS"
        rows = forget.log_rows(removed, keys, people, (tracker.key, cfg.run_date, at))
        lake.append_log(spark.createDataFrame(rows, forget.LOG_SCHEMA), T.FORGET_LOG)
        tracker.log_metrics(
            {"requests": len(keys), "people": people, "rows_removed": sum(removed.values())}
        )
    progress.finish()
    return {"requests": len(keys), "people": people, "removed": removed}


def rewrite_landing(
    spark: SparkSession, cfg: Config, lake: Lakehouse, settings: IdentifierSettings
) -> dict[str, int]:
    """Rows removed per landing file (``landing/<dataset>:<path>``): each landing file
    holding a row that ingest would now suppress is rewritten without those rows."""
    suppressions = lake.read(T.SUPPRESSIONS)
    removed: dict[str, int] = {}
    for dataset, spec in SPECS.items():
        fmt, where = cfg.landing_format(dataset), cfg.landing_path(dataset)
        mark = partial(protect.flagged, spec=spec, settings=settings, suppressions=suppressions)
        encoding = cfg.landing_encoding(dataset)
        found = rewrite_landing_without(spark, where, fmt, mark, protect.FLAG, encoding)
        for path, n in found.items():
            removed[f"landing/{dataset}:{path}"] = n
    return removed


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
