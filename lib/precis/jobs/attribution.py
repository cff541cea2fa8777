"""attribution: credit for conversions per channel by seven models, side by side.

Reads ``silver/touchpoints`` and ``silver/orders`` up to the end of the run date,
``gold/identity_map`` (and ``gold/identity_guards``, ``silver/campaign_spend`` up to the
run date, when present);
``precis.attribution.build`` cuts each person's touches into journeys at their
conversions and credits the conversions of the window by five rule-based models, an
exactly solved Markov chain and Shapley values, with cost per conversion and ROI where
spend is known. Writes this run date's rows of ``gold/attribution`` (MERGE by run date,
model and channel: an unchanged rerun rewrites nothing); a comparison plot and every
number go to MLflow.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

from pyspark.sql import SparkSession

from precis import attribution
from precis import tables as T
from precis.attribution import report
from precis.config import Config
from precis.progress import Progress, written_detail
from precis.runner import job_main, one_writer
from precis.storage import Lakehouse
from precis.tracking import JobRun, job_run

JOB = "attribution"
STEPS = 5  # three in build, then the write and the report


def read(lake: Lakehouse, run_date: dt.date) -> attribution.AttributionInputs:
    lake.require(T.TOUCHPOINTS, T.ORDERS, job="ingest")
    lake.require(T.IDENTITY_MAP, job="identity")
    return attribution.AttributionInputs(
        touchpoints=lake.read_as_of(T.TOUCHPOINTS, run_date),
        orders=lake.read_as_of(T.ORDERS, run_date),
        identity_map=lake.read(T.IDENTITY_MAP),
        guards=lake.read_if_exists(T.IDENTITY_GUARDS),
        campaign_spend=lake.read_if_exists(T.CAMPAIGN_SPEND, as_of=run_date),
    )


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    lake = Lakehouse.from_config(spark, cfg)
    ac = cfg.attribution
    progress = Progress(JOB, STEPS)
    absent = [t.ref for t in (T.TOUCHPOINTS, T.ORDERS) if not lake.exists(t)]
    if absent and lake.exists(T.IDENTITY_MAP):
        # No touchpoints or no conversions: nothing to attribute in this world.
        return progress.skipped(f"{', '.join(absent)} not found: attribution needs both")
    with job_run(cfg, JOB) as tracker:
        out = attribution.build(
            read(lake, cfg.run_date),
            ac,
            run_date=cfg.run_date,
            run_id=tracker.key,
            steps=progress.step,
        )
        with progress.step("write gold") as step:
            written = lake.merge_run_date(out.table, T.ATTRIBUTION, cfg.run_date)
            step.detail = written_detail(written)
        with progress.step("report") as step:
            _report(tracker, out, ac.log_plot)
            step.detail = (
                "metrics, credits and plot logged" if ac.log_plot else "metrics and credits logged"
            )
    print("credited conversions by model:")
    print(report.conversions_text(out.credits, ac.models))
    progress.finish(
        f"{out.counts['converting_journeys']:,} conversions credited by {len(ac.models)} models"
    )
    return {"counts": out.counts, "models": out.models, "written": written, "credits": out.credits}


def _report(tracker: JobRun, out: attribution.AttributionOutputs, plot: bool) -> None:
    """Counts, every model's shares, the whole table and the comparison plot."""
    tracker.log_metrics(out.counts)
    if "markov" in out.models:
        found = out.models["markov"]
        tracker.log_metrics(
            {
                "markov_conversion_probability": found["conversion_probability"],
                "markov_states": found["states"],
            }
        )
    tracker.log_metrics(report.share_metrics(out.credits))
    tracker.log_dict(
        {
            "counts": out.counts,
            **out.models,
            "credits": out.credits.astype(str).to_dict("records"),
        },
        "attribution.json",
    )
    if plot:
        title = f"Attribution {out.window.start} to {out.window.end}"
        tracker.log_figure(report.comparison_figure(out.credits, title), "attribution.png")


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
