"""lifecycle: customer value per person from paid orders resolved to ``one_id``.

Reads ``silver/orders`` (and ``silver/events`` for the churn features when present) up
to the end of the run date, ``gold/identity_map`` and ``gold/identity_guards``;
``precis.lifecycle.build`` fits BG/NBD and Gamma-Gamma, checks them on a holdout, scores
every person, assigns stages and RFM segments and trains the churn classifier. Writes
the run date's snapshot of ``gold/customer_value`` and its rows of
``gold/clv_model_params``, and its measured figures (holdout, churn) to
``meta/model_metrics``; metrics, the holdout plot and the churn model go to MLflow.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

from pyspark.sql import SparkSession

from precis import lifecycle, model_metrics
from precis import tables as T
from precis.config import ChurnConfig, Config
from precis.lifecycle import value
from precis.lifecycle.evaluation import Churn, Holdout
from precis.progress import Progress, log
from precis.runner import job_main, one_writer
from precis.storage import Lakehouse
from precis.tracking import JobRun, inputs_tag, job_run

JOB = "lifecycle"
STEPS = 3


def read_inputs(lake: Lakehouse, run_date: dt.date) -> lifecycle.Inputs:
    lake.require(T.ORDERS, job="ingest")
    lake.require(T.IDENTITY_MAP, job="identity")
    return lifecycle.Inputs(
        orders=lake.read_as_of(T.ORDERS, run_date),
        identity_map=lake.read(T.IDENTITY_MAP),
        guards=lake.read_if_exists(T.IDENTITY_GUARDS),
        events=lake.read_if_exists(T.EVENTS, as_of=run_date),
    )


@one_writer(JOB)
def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    lake = Lakehouse.from_config(spark, cfg)
    progress = Progress(JOB, STEPS)
    if not lake.exists(T.ORDERS) and lake.exists(T.IDENTITY_MAP):
        # A world of behaviour without orders (events and items only): no purchase to
        # model. Model tags stay empty, as before any lifecycle run.
        return progress.skipped(f"{T.ORDERS.ref} not found: customer value needs orders")
    with job_run(cfg, JOB, inputs_tag(lake.versions(T.READS[JOB]))) as tracker:
        with progress.step("read inputs"):
            inputs = read_inputs(lake, cfg.run_date)
        with progress.step("build customer value") as step:
            out = lifecycle.build(inputs, cfg.lifecycle, run_date=cfg.run_date, run_id=tracker.key)
            for line in out.describe():
                log.info("[%s] %s", JOB, line)
            step.rows, step.detail = out.people, f"people as of {cfg.run_date}"
        with progress.step("write gold") as step:
            written = lake.write_snapshot(out.customer_value, T.CUSTOMER_VALUE, cfg.run_date)
            lake.replace_where(
                out.params, T.CLV_MODEL_PARAMS, f"run_date = '{cfg.run_date.isoformat()}'"
            )
            lake.write_model_metrics(
                JOB, cfg.run_date, tracker.key, out.metrics(), holdout_curves(out.holdout)
            )
            step.rows, step.detail = written, f"customer_value snapshot {cfg.run_date}"
        result = {
            "people": out.people,
            "stages": out.stages,
            "params": {f.model: f.params for f in out.fits},
            "holdout": out.holdout.metrics if out.holdout else {},
            "churn": out.churn.metrics if out.churn else {},
            "written": written,
        }
        report(tracker, out, cfg.lifecycle.churn, result)
    for f in out.fits:
        print(f"{f.model}: " + "  ".join(f"{k}={v:.4f}" for k, v in f.params.items()))
    progress.finish(f"{result['people']:,} people")
    return result


def holdout_curves(holdout: Holdout | None) -> dict[str, model_metrics.Curve]:
    """The holdout plot's points, as ``meta/model_metrics`` keeps them."""
    if holdout is None:
        return {}
    by_frequency, curve = holdout.by_frequency, holdout.curve
    return {
        "holdout_by_frequency_actual": list(zip(by_frequency.frequency, by_frequency.actual_mean)),
        "holdout_by_frequency_predicted": list(
            zip(by_frequency.frequency, by_frequency.predicted_mean)
        ),
        "holdout_curve_actual": list(zip(curve.day, curve.actual)),
        "holdout_curve_predicted": list(zip(curve.day, curve.predicted)),
    }


def report(
    tracker: JobRun,
    out: lifecycle.LifecycleOutputs,
    churn_settings: ChurnConfig,
    result: dict[str, Any],
) -> None:
    """Metrics, the holdout's numbers and plot, the churn model and the result, to MLflow."""
    tracker.log_metrics(out.metrics())
    if out.holdout:
        _log_holdout(tracker, out.holdout)
    if out.churn:
        _log_churn_model(tracker, out.churn, churn_settings)
    tracker.log_dict(result, "lifecycle.json")


def _log_holdout(tracker: JobRun, holdout: Holdout) -> None:
    tracker.log_dict(
        {
            "by_frequency": holdout.by_frequency.to_dict("records"),
            "curve": holdout.curve.to_dict("records"),
        },
        "holdout/holdout.json",
    )
    figure = value.holdout_figure(holdout.by_frequency, holdout.curve, holdout.title)
    tracker.log_figure(figure, "holdout/holdout.png")


def _log_churn_model(tracker: JobRun, churn: Churn, settings: ChurnConfig) -> None:
    if settings.log_model and churn.example is not None:
        tracker.log_spark_model(
            churn.model, "churn_model", churn.example, settings.registered_model_name
        )


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
