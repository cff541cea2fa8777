"""Checks of the models on later data: the BG/NBD holdout and the churn classifier.

Both refit on history up to an earlier date and compare with what happened after it,
so every number here is out of sample. Pure: frames and settings in, frames, pandas
tables and metrics out; logging them is the job's business.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import ONE_ID
from precis.frames import kept
from precis.lifecycle import btyd, churn, summary, value
from precis.lifecycle.settings import ChurnConfig
from precis.progress import log

JOB = "lifecycle"
#: Rows of the training data stored with the churn model as its input example.
MODEL_EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class Holdout:
    """BG/NBD refitted up to ``end`` and compared with the ``days`` after it."""

    end: dt.date
    days: int
    metrics: dict[str, float]  # holdout_people, _actual, _predicted, _mae, _rmse, _ratio
    params: dict[str, float]  # the calibration fit's BG/NBD parameters
    by_frequency: pd.DataFrame  # mean holdout transactions by calibration frequency
    curve: pd.DataFrame  # day, predicted, actual: cumulative repeat transactions

    @property
    def title(self) -> str:
        return f"BG/NBD holdout: calibration to {self.end}, {self.days} days"


@dataclass(frozen=True)
class Churn:
    """The churn classifier, its out-of-period metrics and everyone's risk at the run date."""

    model: PipelineModel
    metrics: dict[str, float]  # churn_* and churn_baseline_*
    scores: DataFrame  # one_id, churn_risk
    # A few training rows' features (numbers, never a one_id): the logged model's example.
    example: DataFrame | None


def holdout(
    orders: DataFrame,
    daily: DataFrame,
    *,
    run_date: dt.date,
    holdout_days: int,
    time_unit: str,
    penalizer: float,
) -> Holdout | None:
    """Refit up to run_date - holdout_days and compare the holdout with the prediction.

    None when switched off (``holdout_days`` 0) or when the calibration data cannot be fitted.
    """
    if holdout_days == 0:
        return None
    end = run_date - dt.timedelta(days=holdout_days)
    calibration = summary.person_summary(summary.transactions(orders, end), end, time_unit)
    with kept(calibration) as (calibration,):
        try:
            models, _ = value.fit(calibration, time_unit, penalizer)
        except btyd.FitError as exc:
            log.warning("[%s] holdout skipped: %s (calibration data up to %s)", JOB, exc, end)
            return None
        actual = summary.repeat_transactions_between(daily, end, run_date)
        rows = (
            calibration.join(actual, on=ONE_ID, how="left")
            .fillna(0, ["actual"])
            .groupBy("x", "t_x_days", "T_days", "actual")
            .agg(F.count(F.lit(1)).alias("people"))
            .toPandas()
        )
        errors, by_frequency, curve = value.holdout_table(rows, models, holdout_days)
        # The actual cumulative curve of the same cohort (calibration buyers only).
        cohort_days: pd.DataFrame = (
            daily.join(calibration.select(ONE_ID), on=ONE_ID, how="left_semi")
            .filter((F.col("order_date") > F.lit(end)) & (F.col("order_date") <= F.lit(run_date)))
            .groupBy(F.datediff("order_date", F.lit(end)).alias("day"))
            .agg(F.count(F.lit(1)).alias("n"))
            .toPandas()
        )
    curve["actual"] = [float(cohort_days.loc[cohort_days.day <= d, "n"].sum()) for d in curve.day]
    return Holdout(end, holdout_days, errors, dict(models.bg_nbd.params), by_frequency, curve)


def churn_model(
    orders: DataFrame,
    events: DataFrame | None,
    *,
    run_date: dt.date,
    settings: ChurnConfig,
    time_unit: str,
    penalizer: float,
) -> Churn | None:
    """Train at run_date - 2h, evaluate at run_date - h against BG/NBD, score at run_date.

    None when switched off, or when the training period has fewer than 10 buyers of
    either class.
    """
    if not settings.enabled:
        return None
    h = settings.horizon_days
    train_at, test_at = run_date - dt.timedelta(days=2 * h), run_date - dt.timedelta(days=h)
    with kept(churn.labelled(orders, events, train_at, h)) as (training,):
        classes = {
            r["label"]: r["n"]
            for r in training.groupBy("label").agg(F.count(F.lit(1)).alias("n")).collect()
        }
        if len(classes) < 2 or min(classes.values()) < 10:
            log.warning(
                "[%s] churn model skipped: buyers up to %s give %s (need at least 10 of each class)",
                JOB,
                train_at,
                {("churned" if k else "retained"): v for k, v in classes.items()} or "none",
            )
            return None
        model = churn.train(
            training,
            churn.ChurnSettings(
                h, settings.max_iter, settings.max_depth, settings.step_size, settings.seed
            ),
        )
        example = None
        if settings.log_model:
            # Taken while the training rows are kept, and detached from them: the job logs
            # the model after these rows are released.
            features = training.select(*churn.FEATURES)
            example = training.sparkSession.createDataFrame(
                features.limit(MODEL_EXAMPLE_ROWS).collect(), features.schema
            )
    test = churn.churn_probability(model, churn.labelled(orders, events, test_at, h))
    with kept(test) as (test,):
        metrics = {f"churn_{k}": v for k, v in churn.binary_metrics(test, "churn_risk").items()}
        metrics.update(_baselines(orders, test, test_at, h, time_unit, penalizer))
    current = churn.churn_probability(model, churn.features(orders, events, run_date)).select(
        ONE_ID, "churn_risk"
    )
    return Churn(model, metrics, current, example)


def _baselines(
    orders: DataFrame,
    test: DataFrame,
    test_at: dt.date,
    horizon_days: int,
    time_unit: str,
    penalizer: float,
) -> dict[str, float]:
    """BG/NBD fitted on the same history, read as churn scores on the test people.

    1 - P(alive) is the classic reading of the model; exp(-E[purchases in the horizon])
    also counts the living who buy rarely (P(alive) is 1 for everyone without a repeat
    purchase).
    """
    base = summary.person_summary(summary.transactions(orders, test_at), test_at, time_unit)
    try:
        models, triples = value.fit(base, time_unit, penalizer)
        scores = value.score_triples(
            orders.sparkSession, triples, models, horizon_days, horizon_days, 0.0
        )
    except btyd.FitError as exc:
        log.warning("[%s] churn baselines skipped: %s", JOB, exc)
        return {}
    baseline = (
        base.join(scores, on=value.TRIPLE, how="inner")
        .select(
            ONE_ID,
            (1.0 - F.col("p_alive")).alias("p_alive_churn"),
            F.exp(-F.col("expected_purchases")).alias("expected_churn"),
        )
        .join(test.select(ONE_ID, "label"), on=ONE_ID, how="inner")
    )
    metrics: dict[str, float] = {}
    for name in ("p_alive", "expected"):
        found = churn.binary_metrics(baseline, f"{name}_churn")
        metrics.update(
            {
                f"churn_baseline_{name}_{k}": v
                for k, v in found.items()
                if k not in ("people", "base_rate")
            }
        )
    return metrics
