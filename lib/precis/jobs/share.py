"""share: differentially private aggregates meant to leave the team.

Weighs the run against the privacy budget recorded in ``meta/privacy_budget`` (a release
that does not fit fails before anything is read or written), reads the run date's
``gold/segments`` and ``gold/profile_tags`` snapshots and the person-level data the
attribution job reads, and noises the aggregates with ``precis.share.build``. Records the
budget first, then replaces the run date's rows of ``gold/shared_segment_sizes``,
``gold/shared_tag_distribution`` and ``gold/shared_attribution``, and exports them. A run
date already released is reused and spends nothing, unless ``share.force`` (docs/share.md).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from precis import share
from precis import tables as T
from precis.columns import RUN_DATE
from precis.config import Config
from precis.progress import Progress, log
from precis.runner import job_main, one_writer
from precis.share.noise import fresh_seed
from precis.storage import Lakehouse
from precis.tags import definitions
from precis.tracking import job_run

JOB = "share"
STEPS = 3


def read(lake: Lakehouse, run_date: dt.date, releases: Sequence[str]) -> share.ShareInputs:
    snapshot = {"segments": T.SEGMENTS, "tags": T.PROFILE_TAGS}
    found = {
        name: lake.read_snapshot(table, run_date, job="tags")
        for name, table in snapshot.items()
        if name in releases
    }
    inputs = share.ShareInputs(segments=found.get("segments"), profile_tags=found.get("tags"))
    if "attribution" not in releases:
        return inputs
    lake.require(T.TOUCHPOINTS, T.ORDERS, job="ingest")
    lake.require(T.IDENTITY_MAP, job="identity")
    return share.ShareInputs(
        segments=inputs.segments,
        profile_tags=inputs.profile_tags,
        touchpoints=lake.read_as_of(T.TOUCHPOINTS, run_date),
        orders=lake.read_as_of(T.ORDERS, run_date),
        identity_map=lake.read(T.IDENTITY_MAP),
        guards=lake.read_if_exists(T.IDENTITY_GUARDS),
        campaign_spend=lake.read_if_exists(T.CAMPAIGN_SPEND, as_of=run_date),
    )


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    sc = cfg.share
    tags, segments = definitions.from_settings(cfg.tags)
    names = [s.name for s in segments]
    share.check_keys(sc, names, {t.name: t.type for t in tags.tags})
    lake = Lakehouse.from_config(spark, cfg)
    progress = Progress(JOB, STEPS)
    on_date = f"{RUN_DATE} = DATE'{cfg.run_date.isoformat()}'"
    with job_run(cfg, JOB) as tracker:
        with progress.step("privacy budget") as step:
            recorded = lake.read_if_exists(T.PRIVACY_BUDGET)
            ledger = [r.asDict() for r in recorded.collect()] if recorded is not None else []
            found = share.plan(ledger, sc, cfg.run_date)
            step.detail = (
                f"asks epsilon {found.epsilon:g} for {', '.join(found.releases) or 'nothing'}; "
                f"spent {found.spent_epsilon:g} of {found.budget_epsilon:g}"
                + (f"; reused: {', '.join(found.reused)}" if found.reused else "")
            )
        cells: dict[str, dict[str, int]] = {}
        metrics = found.metrics()
        with progress.step("release") as step:
            if found.spends:
                out = share.build(
                    read(lake, cfg.run_date, found.releases),
                    sc,
                    found,
                    segments=names,
                    attribution=cfg.attribution,
                    release_id=tracker.key,
                    released_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    # Not logged anywhere: whoever holds the seed can subtract the noise.
                    seed=sc.seed if sc.seed is not None else fresh_seed(),
                )
                # The budget first: a write that fails after it leaves budget spent for
                # nothing, never a release that was not counted.
                lake.append_log(out.ledger, T.PRIVACY_BUDGET)
                for name, table in out.tables.items():
                    lake.replace_where(table, T.SHARED[name], on_date)
                cells, metrics = out.cells, out.metrics()
            step.rows = sum(c["released"] for c in cells.values())
            step.detail = ", ".join(
                f"{k} {c['released']} released, {c['suppressed']} suppressed"
                for k, c in cells.items()
            )
        with progress.step("export") as step:
            step.detail = export(lake, cfg) if sc.export else "off (share.export)"
        tracker.log_metrics(metrics)
    progress.finish(
        f"epsilon {found.epsilon:g} spent, {metrics['epsilon_remaining']:g} left"
        if found.spends
        else f"{cfg.run_date} already released: reused, nothing spent (share.force=true to redo)"
    )
    return {
        "released": list(found.releases),
        "reused": list(found.reused),
        "cells": cells,
        "metrics": metrics,
    }


def export(lake: Lakehouse, cfg: Config) -> str:
    """The run date's stored release of every enabled table, to the export folder."""
    written = []
    for name in cfg.share.enabled:
        stored = lake.read_if_exists(T.SHARED[name])
        if stored is None:
            log.warning("[%s] %s is not there: nothing to export", JOB, T.SHARED[name].ref)
            continue
        rows = stored.filter(F.col(RUN_DATE) == F.lit(cfg.run_date))
        path = lake.export(rows, JOB, cfg.run_date, cfg.share.export_format, subdir=name)
        written.append(path)
    return ", ".join(written) or "nothing"


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
