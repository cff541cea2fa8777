"""lifecycle: customer value per person from paid orders resolved to ``one_id``.

Reads ``silver/orders`` (and ``silver/events`` for the churn features when present),
``gold/identity_map`` and ``gold/identity_guards``. Fits BG/NBD and Gamma-Gamma by
maximum likelihood on the distinct purchase summaries, checks the fit on a holdout,
scores every person (probability alive, expected purchases, expected spend, CLV),
assigns lifecycle stages and RFM segments, and trains a churn classifier evaluated on a
later period against BG/NBD's probability alive. Writes ``gold/customer_value`` (MERGE
by ``one_id``: an unchanged rerun rewrites nothing) and this run date's rows of
``gold/clv_model_params``; metrics, the holdout plot and the churn model go to MLflow.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis import tables as T
from precis.config import Config
from precis.identity.resolve import isolated_identifiers
from precis.lifecycle import btyd, churn, segments, summary, value
from precis.progress import Progress, log
from precis.runner import job_main
from precis.storage import Lakehouse
from precis.tracking import JobRun, job_run

JOB = "lifecycle"
STEPS = 6
_KEEP = StorageLevel.MEMORY_AND_DISK
#: Rows of the training data stored with the churn model as its input example.
MODEL_EXAMPLE_ROWS = 5

VALUE_COLUMNS = (
    "one_id",
    "lifecycle_stage",
    "rfm_segment",
    "rfm_score",
    "r_score",
    "f_score",
    "m_score",
    "recency_days",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "orders",
    "total_spend",
    "first_purchase",
    "last_purchase",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "clv",
    "churn_risk",
    "time_unit",
    "horizon_days",
    "run_date",
)


def _inputs(lake: Lakehouse) -> tuple[DataFrame, DataFrame, DataFrame | None]:
    lake.require(T.ORDERS, job="ingest")
    lake.require(T.IDENTITY_MAP, job="identity")
    identity_map = lake.read(T.IDENTITY_MAP)
    isolated = (
        isolated_identifiers(lake.read(T.IDENTITY_GUARDS))
        if lake.exists(T.IDENTITY_GUARDS)
        else None
    )
    orders = summary.resolve_orders(lake.read(T.ORDERS), identity_map, isolated)
    events = None
    if lake.exists(T.EVENTS):
        events = (
            lake.read(T.EVENTS)
            .filter(F.col("id_key").isNotNull())
            .join(identity_map.select("id_type", "id_key", "one_id"), ["id_type", "id_key"])
            .select("one_id", F.to_date("event_time").alias("event_date"), "event_type")
        )
    return orders, identity_map, events


def _holdout(
    cfg: Config, orders: DataFrame, daily: DataFrame, tracker: JobRun
) -> tuple[dict[str, float], dt.date | None]:
    """Refit up to run_date - holdout_days and compare the holdout with the prediction."""
    lc = cfg.lifecycle
    if lc.holdout_days == 0:
        return {}, None
    end = cfg.run_date - dt.timedelta(days=lc.holdout_days)
    calibration = summary.person_summary(
        summary.transactions(orders, end), end, lc.time_unit
    ).persist(_KEEP)
    try:
        models, _ = value.fit(calibration, lc.time_unit, lc.penalizer)
    except btyd.FitError as exc:
        log.warning("[%s] holdout skipped: %s (calibration data up to %s)", JOB, exc, end)
        calibration.unpersist()
        return {}, None
    actual = summary.repeat_transactions_between(daily, end, cfg.run_date)
    rows = (
        calibration.join(actual, "one_id", "left")
        .fillna(0, ["actual"])
        .groupBy("x", "t_x_days", "T_days", "actual")
        .agg(F.count(F.lit(1)).alias("people"))
        .toPandas()
    )
    errors, by_frequency, curve = value.holdout_table(rows, models, lc.holdout_days)
    # The actual cumulative curve of the same cohort (calibration buyers only).
    cohort_days: pd.DataFrame = (
        daily.join(calibration.select("one_id"), "one_id", "left_semi")
        .filter((F.col("order_date") > F.lit(end)) & (F.col("order_date") <= F.lit(cfg.run_date)))
        .groupBy(F.datediff("order_date", F.lit(end)).alias("day"))
        .agg(F.count(F.lit(1)).alias("n"))
        .toPandas()
    )
    curve["actual"] = [float(cohort_days.loc[cohort_days.day <= d, "n"].sum()) for d in curve.day]
    calibration.unpersist()
    tracker.log_metrics(errors)
    tracker.log_metrics({f"holdout_{k}": v for k, v in models.bg_nbd.params.items()})
    tracker.log_dict(
        {"by_frequency": by_frequency.to_dict("records"), "curve": curve.to_dict("records")},
        "holdout/holdout.json",
    )
    tracker.log_figure(
        value.holdout_figure(
            by_frequency, curve, f"BG/NBD holdout: calibration to {end}, {lc.holdout_days} days"
        ),
        "holdout/holdout.png",
    )
    return errors, end


def _churn(
    spark: SparkSession,
    cfg: Config,
    orders: DataFrame,
    events: DataFrame | None,
    tracker: JobRun,
) -> tuple[DataFrame | None, dict[str, float]]:
    """Train at run_date - 2h, evaluate at run_date - h against 1 - p_alive, score at run_date."""
    lc, settings = cfg.lifecycle, cfg.lifecycle.churn
    if not settings.enabled:
        return None, {}
    h = settings.horizon_days
    train_at, test_at = cfg.run_date - dt.timedelta(days=2 * h), cfg.run_date - dt.timedelta(days=h)
    training = churn.labelled(orders, events, train_at, h).persist(_KEEP)
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
        training.unpersist()
        return None, {}
    model = churn.train(
        training,
        churn.ChurnSettings(
            h, settings.max_iter, settings.max_depth, settings.step_size, settings.seed
        ),
    )
    if settings.log_model:
        # The input example is a few training rows' FEATURES: numbers, never the one_id.
        example = training.select(*churn.FEATURES).limit(MODEL_EXAMPLE_ROWS)
        tracker.log_spark_model(model, "churn_model", example, settings.registered_model_name)
    training.unpersist()
    test = churn.churn_probability(model, churn.labelled(orders, events, test_at, h)).persist(_KEEP)
    metrics = {f"churn_{k}": v for k, v in churn.binary_metrics(test, "churn_risk").items()}
    # Baselines from BG/NBD fitted on the same history: 1 - P(alive), as the classic
    # reading of the model, and exp(-E[purchases in the horizon]), which also counts
    # the living who buy rarely (P(alive) is 1 for everyone without a repeat purchase).
    base = summary.person_summary(summary.transactions(orders, test_at), test_at, lc.time_unit)
    try:
        models, triples = value.fit(base, lc.time_unit, lc.penalizer)
        scores = value.score_triples(spark, triples, models, h, h, 0.0)
        baseline = (
            base.join(scores, value.TRIPLE)
            .select(
                "one_id",
                (1.0 - F.col("p_alive")).alias("p_alive_churn"),
                F.exp(-F.col("expected_purchases")).alias("expected_churn"),
            )
            .join(test.select("one_id", "label"), "one_id")
        )
        for name in ("p_alive", "expected"):
            found = churn.binary_metrics(baseline, f"{name}_churn")
            metrics.update(
                {
                    f"churn_baseline_{name}_{k}": v
                    for k, v in found.items()
                    if k not in ("people", "base_rate")
                }
            )
    except btyd.FitError as exc:
        log.warning("[%s] churn baselines skipped: %s", JOB, exc)
    test.unpersist()
    tracker.log_metrics(metrics)
    current = churn.churn_probability(model, churn.features(orders, events, cfg.run_date)).select(
        "one_id", "churn_risk"
    )
    return current, metrics


def customer_value(
    people: DataFrame, scored: DataFrame, churn_scores: DataFrame | None, cfg: Config
) -> DataFrame:
    """One row per ``one_id`` in ``people``: buyers' values, everyone's stage."""
    lc = cfg.lifecycle
    frame = people.join(scored, "one_id", "left")
    if churn_scores is not None:
        frame = frame.join(churn_scores, "one_id", "left")
    else:
        frame = frame.withColumn("churn_risk", F.lit(None).cast("double"))
    stage = segments.lifecycle_stage(
        lc.stages.new_days, lc.stages.active_days, lc.stages.churn_days
    )
    return frame.select(
        "one_id",
        stage.alias("lifecycle_stage"),
        "rfm_segment",
        "rfm_score",
        "r_score",
        "f_score",
        "m_score",
        "recency_days",
        F.col("x").alias("frequency"),
        F.col("t_x").alias("recency"),
        "T",
        "monetary_value",
        F.coalesce(F.col("orders"), F.lit(0)).alias("orders"),
        F.coalesce(F.col("total_spend"), F.lit(0.0)).alias("total_spend"),
        "first_purchase",
        "last_purchase",
        "p_alive",
        "expected_purchases",
        "expected_spend",
        "clv",
        "churn_risk",
        F.lit(lc.time_unit).alias("time_unit"),
        F.lit(lc.horizon_days).alias("horizon_days"),
        F.lit(cfg.run_date).alias("run_date"),
    )


def run(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    lake = Lakehouse.from_config(spark, cfg)
    lc = cfg.lifecycle
    progress = Progress(JOB, STEPS)
    with job_run(cfg, JOB) as tracker:
        run_id = tracker.key
        with progress.step("purchase summaries") as step:
            orders, identity_map, events = _inputs(lake)
            orders = orders.persist(_KEEP)
            daily = summary.transactions(orders, cfg.run_date).persist(_KEEP)
            person = summary.person_summary(daily, cfg.run_date, lc.time_unit).persist(_KEEP)
            step.rows = person.count()
            step.detail = f"buyers as of {cfg.run_date}"
        with progress.step("fit BG/NBD and Gamma-Gamma") as step:
            models, triples = value.fit(person, lc.time_unit, lc.penalizer)
            fits = [models.bg_nbd] + ([models.gamma_gamma] if models.gamma_gamma else [])
            step.detail = (
                "; ".join(
                    f"{f.model} " + " ".join(f"{k}={v:.4g}" for k, v in f.params.items())
                    for f in fits
                )
                + f" ({len(triples):,} distinct summaries)"
            )
            for f in fits:
                tracker.log_metrics({f"{f.model}_{k}": v for k, v in f.params.items()})
                tracker.log_metrics(
                    {f"{f.model}_log_likelihood": f.log_likelihood, f"{f.model}_people": f.people}
                )
                if not f.converged:
                    log.warning(
                        "[%s] %s: the optimizer reported no convergence; check the parameters",
                        JOB,
                        f.model,
                    )
        with progress.step("holdout validation") as step:
            holdout, end = _holdout(cfg, orders, daily, tracker)
            step.detail = (
                f"calibration to {end}: predicted {holdout['holdout_predicted']:,.0f} vs actual "
                f"{holdout['holdout_actual']:,.0f} repeat transactions, per-person MAE {holdout['holdout_mae']:.3f}"
                if holdout
                else "skipped"
            )
        with progress.step("churn model") as step:
            churn_scores, churn_metrics = _churn(spark, cfg, orders, events, tracker)
            step.detail = (
                f"AUC {churn_metrics['churn_auc']:.3f}; BG/NBD baselines: 1 - P(alive) "
                f"{churn_metrics.get('churn_baseline_p_alive_auc', float('nan')):.3f}, "
                f"expected purchases {churn_metrics.get('churn_baseline_expected_auc', float('nan')):.3f}"
                if churn_metrics
                else "skipped"
            )
        with progress.step("score people") as step:
            scores = value.score_triples(
                spark, triples, models, lc.horizon_days, lc.clv_step_days, lc.discount_rate
            )
            predicted = value.with_predictions(person, scores, models)
            cuts = segments.quintile_cuts(person, ["recency_days", "orders", "total_spend"])
            rules = [(r.name, r.r, r.f) for r in lc.rfm_segments]
            scored = segments.with_rfm(predicted, cuts, rules)
            people = identity_map.select("one_id").distinct()
            table = customer_value(people, scored, churn_scores, cfg).persist(_KEEP)
            stages = {
                r["lifecycle_stage"]: r["n"]
                for r in table.groupBy("lifecycle_stage")
                .agg(F.count(F.lit(1)).alias("n"))
                .collect()
            }
            step.rows = sum(stages.values())
            step.detail = ", ".join(f"{k} {v:,}" for k, v in sorted(stages.items()))
        with progress.step("write gold") as step:
            counts = lake.merge_upsert(
                table, T.CUSTOMER_VALUE, unique=True, delete_missing=True
            )
            params = spark.createDataFrame(
                [(m, p, v, run_id, cfg.run_date, lc.time_unit) for m, p, v in models.rows()],
                "model string, param string, value double, run_id string, run_date date, time_unit string",
            )
            lake.replace_where(params, T.CLV_MODEL_PARAMS, f"run_date = '{cfg.run_date.isoformat()}'")
            step.detail = f"customer_value {counts['inserted']:,} inserted, {counts['updated']:,} updated, {counts['deleted']:,} deleted"
        table.unpersist()
        for frame in (person, daily, orders):
            frame.unpersist()
        result = {
            "people": sum(stages.values()),
            "stages": stages,
            "params": {f.model: f.params for f in fits},
            "holdout": holdout,
            "churn": churn_metrics,
            "written": counts,
        }
        tracker.log_metrics({f"stage_{k}": v for k, v in stages.items()})
        tracker.log_dict(result, "lifecycle.json")
    for f in fits:
        print(f"{f.model}: " + "  ".join(f"{k}={v:.4f}" for k, v in f.params.items()))
    progress.finish(f"{result['people']:,} people")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
