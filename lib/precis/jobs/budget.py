"""budget: next period's daily budget per channel, and attribution against incrementality.

Reads ``silver/touchpoints``, ``silver/orders`` and ``silver/campaign_spend`` up to the
end of the run date, ``gold/identity_map`` (and ``gold/identity_guards``, and for the
calibration ``silver/experiment_assignments``, ``silver/experiments`` and
``gold/experiment_results``, when present); ``precis.budget.build`` fits a response
curve per paid channel to its daily spend and attributed outcome over the window, splits
the daily budget by them and, for every channel holdout experiment judged, compares each
attribution model's credit with the conversions the holdout measured. Writes this run
date's rows of ``gold/budget_plan`` and ``gold/attribution_calibration`` (MERGE by run
date: an unchanged rerun rewrites nothing); the curves' plot and every number go to
MLflow.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis import budget
from precis import tables as T
from precis.budget import report
from precis.columns import RUN_DATE
from precis.config import Config
from precis.progress import Progress, written_detail
from precis.runner import job_main, one_writer
from precis.storage import Lakehouse
from precis.tracking import JobRun, job_run

JOB = "budget"
STEPS = 5  # three in build, then the writes and the report


def read(lake: Lakehouse, run_date: dt.date) -> budget.BudgetInputs:
    lake.require(T.TOUCHPOINTS, T.ORDERS, T.CAMPAIGN_SPEND, job="ingest")
    lake.require(T.IDENTITY_MAP, job="identity")
    return budget.BudgetInputs(
        touchpoints=lake.read_as_of(T.TOUCHPOINTS, run_date),
        orders=lake.read_as_of(T.ORDERS, run_date),
        campaign_spend=lake.read_as_of(T.CAMPAIGN_SPEND, run_date),
        identity_map=lake.read(T.IDENTITY_MAP),
        guards=lake.read_if_exists(T.IDENTITY_GUARDS),
        assignments=lake.read_if_exists(T.EXPERIMENT_ASSIGNMENTS, as_of=run_date),
        arms=lake.read_if_exists(T.EXPERIMENTS),
        results=_results(lake, run_date),
    )


def _results(lake: Lakehouse, run_date: dt.date) -> DataFrame | None:
    found = lake.read_if_exists(T.EXPERIMENT_RESULTS)
    # Judgements of later run dates are not known on this one (a backfill).
    return None if found is None else found.filter(F.col(RUN_DATE) <= F.lit(run_date))


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    lake = Lakehouse.from_config(spark, cfg)
    progress = Progress(JOB, STEPS)
    absent = [t.ref for t in (T.TOUCHPOINTS, T.ORDERS, T.CAMPAIGN_SPEND) if not lake.exists(t)]
    if absent and lake.exists(T.IDENTITY_MAP):
        return progress.skipped(f"{', '.join(absent)} not found: a budget plan needs all three")
    settings = budget.Settings(cfg.budget, cfg.attribution, cfg.experiments)
    with job_run(cfg, JOB) as tracker:
        out = budget.build(
            read(lake, cfg.run_date),
            settings,
            run_date=cfg.run_date,
            run_id=tracker.key,
            steps=progress.step,
        )
        with progress.step("write gold") as step:
            written = {"plan": lake.merge_run_date(out.plan, T.BUDGET_PLAN, cfg.run_date)}
            if out.calibration is not None:
                written["calibration"] = lake.merge_run_date(
                    out.calibration, T.ATTRIBUTION_CALIBRATION, cfg.run_date
                )
            step.detail = "; ".join(f"{k}: {written_detail(v)}" for k, v in written.items())
        with progress.step("report") as step:
            _report(tracker, out, cfg)
            step.detail = (
                "metrics, plan and plot logged"
                if cfg.budget.log_plot
                else "metrics and plan logged"
            )
    print(
        f"daily budget per channel ({cfg.budget.model} credit, {out.window.start} to {cfg.run_date}):"
    )
    print(report.text(out.plan_rows))
    if out.calibration_rows is not None:
        print("attribution models by distance to measured incrementality:")
        print(report.calibration_text(out.calibration_rows))
    metrics = report.metrics(out.plan_rows, out.calibration_rows)
    progress.finish(
        f"expected revenue {metrics['expected_revenue']:,.2f} a day against "
        f"{metrics['current_revenue']:,.2f} for the current split"
    )
    return {
        "metrics": metrics,
        "plan": out.plan_rows,
        "calibration": out.calibration_rows,
        "written": written,
    }


def _report(tracker: JobRun, out: budget.BudgetOutputs, cfg: Config) -> None:
    tracker.log_params(cfg.budget.model_dump())
    tracker.log_metrics(report.metrics(out.plan_rows, out.calibration_rows))
    tracker.log_dict(
        {
            "plan": out.plan_rows.astype(str).to_dict("records"),
            "calibration": (
                out.calibration_rows.astype(str).to_dict("records")
                if out.calibration_rows is not None
                else None
            ),
        },
        "budget.json",
    )
    if cfg.budget.log_plot:
        title = f"Response curves {out.window.start} to {cfg.run_date}"
        tracker.log_figure(
            report.curves_figure(out.plan_rows, out.points, out.curves, title), "budget.png"
        )


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
