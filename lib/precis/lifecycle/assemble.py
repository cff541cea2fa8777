"""Customer value per person: the lifecycle job's pure entry, ``build``.

Silver orders (and events, for the churn features) resolve to ``one_id`` through the
identity map; BG/NBD and Gamma-Gamma are fitted on the distinct purchase summaries and
checked on a holdout; every person is scored (probability alive, expected purchases,
expected spend, CLV), given a lifecycle stage and an RFM segment, and a churn risk
from a classifier evaluated on a later period. No table is read or written here and
nothing is logged to MLflow: the job does that with what ``build`` returns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis.columns import ID_KEY, ID_TYPE, ONE_ID, RUN_DATE
from precis.frames import kept, materialize
from precis.identity.resolve import isolated_identifiers
from precis.lifecycle import btyd, evaluation, segments, summary, value
from precis.lifecycle.evaluation import Churn, Holdout
from precis.lifecycle.settings import LifecycleConfig
from precis.progress import log

JOB = "lifecycle"

#: The columns of ``gold/customer_value``, in order.
VALUE_COLUMNS = (
    ONE_ID,
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
    RUN_DATE,
)
PARAMS_SCHEMA = (
    "model string, param string, value double, run_id string, run_date date, time_unit string"
)


@dataclass(frozen=True)
class Inputs:
    orders: DataFrame  # silver/orders
    identity_map: DataFrame  # gold/identity_map
    guards: DataFrame | None = None  # gold/identity_guards: their isolated ids buy for nobody
    events: DataFrame | None = None  # silver/events: browsing features of the churn model


@dataclass(frozen=True)
class LifecycleOutputs:
    customer_value: DataFrame  # gold/customer_value: one row per one_id, computed once
    params: DataFrame  # this run's rows of gold/clv_model_params
    models: value.Models
    distinct_triples: int  # distinct (x, t_x, T) the fit and the scores ran on
    stages: dict[str, int]  # people per lifecycle stage present
    holdout: Holdout | None
    churn: Churn | None

    @property
    def fits(self) -> list[btyd.Fit]:
        gg = self.models.gamma_gamma
        return [self.models.bg_nbd] + ([gg] if gg else [])

    @property
    def people(self) -> int:
        return sum(self.stages.values())

    def metrics(self) -> dict[str, float]:
        """Everything numeric the run found: fits, holdout, churn and stage counts."""
        found: dict[str, float] = {}
        for f in self.fits:
            found.update({f"{f.model}_{k}": v for k, v in f.params.items()})
            found[f"{f.model}_log_likelihood"] = f.log_likelihood
            found[f"{f.model}_people"] = f.people
        if self.holdout:
            found.update(self.holdout.metrics)
            found.update({f"holdout_{k}": v for k, v in self.holdout.params.items()})
        if self.churn:
            found.update(self.churn.metrics)
        found.update({f"stage_{k}": v for k, v in self.stages.items()})
        return found

    def describe(self) -> list[str]:
        """One line each on the fits, the holdout, the churn model and the stages."""
        fits = "; ".join(
            f"{f.model} " + " ".join(f"{k}={v:.4g}" for k, v in f.params.items()) for f in self.fits
        )
        h = self.holdout.metrics if self.holdout else {}
        c = self.churn.metrics if self.churn else {}
        nan = float("nan")
        return [
            f"fit: {fits} ({self.distinct_triples:,} distinct summaries)",
            "holdout: "
            + (
                f"calibration to {self.holdout.end}: predicted {h['holdout_predicted']:,.0f} vs "
                f"actual {h['holdout_actual']:,.0f} repeat transactions, per-person MAE "
                f"{h['holdout_mae']:.3f}"
                if self.holdout
                else "skipped"
            ),
            "churn model: "
            + (
                f"AUC {c['churn_auc']:.3f}; BG/NBD baselines: 1 - P(alive) "
                f"{c.get('churn_baseline_p_alive_auc', nan):.3f}, "
                f"expected purchases {c.get('churn_baseline_expected_auc', nan):.3f}"
                if self.churn
                else "skipped"
            ),
            "stages: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.stages.items())),
        ]


def resolved_orders(inputs: Inputs) -> DataFrame:
    """``one_id``, ``order_id``, ``order_date``, ``amount``, ``refunded``."""
    isolated = isolated_identifiers(inputs.guards) if inputs.guards is not None else None
    return summary.resolve_orders(inputs.orders, inputs.identity_map, isolated)


def resolved_events(inputs: Inputs) -> DataFrame | None:
    """``one_id``, ``event_date``, ``event_type``; None without events."""
    if inputs.events is None:
        return None
    return (
        inputs.events.filter(F.col(ID_KEY).isNotNull())
        .join(
            inputs.identity_map.select(ID_TYPE, ID_KEY, ONE_ID),
            on=[ID_TYPE, ID_KEY],
            how="inner",
        )
        .select(ONE_ID, F.to_date("event_time").alias("event_date"), "event_type")
    )


def build(
    inputs: Inputs, settings: LifecycleConfig, *, run_date: dt.date, run_id: str
) -> LifecycleOutputs:
    """Customer value of every ``one_id`` as of ``run_date``; ``run_id`` tags the params rows.

    Raises ``btyd.FitError`` when BG/NBD cannot be fitted to the orders up to the date.
    """
    orders = resolved_orders(inputs)
    daily = summary.transactions(orders, run_date)
    person = summary.person_summary(daily, run_date, settings.time_unit)
    # Read by the fits, the holdout, the churn features, the quantiles and the scores.
    with kept(orders, daily, person) as (orders, daily, person):
        models, triples = value.fit(person, settings.time_unit, settings.penalizer)
        for fit in (models.bg_nbd, models.gamma_gamma):
            if fit is not None and not fit.converged:
                log.warning(
                    "[%s] %s: the optimizer reported no convergence; check the parameters",
                    JOB,
                    fit.model,
                )
        holdout = evaluation.holdout(
            orders,
            daily,
            run_date=run_date,
            holdout_days=settings.holdout_days,
            time_unit=settings.time_unit,
            penalizer=settings.penalizer,
        )
        churn = evaluation.churn_model(
            orders,
            resolved_events(inputs),
            run_date=run_date,
            settings=settings.churn,
            time_unit=settings.time_unit,
            penalizer=settings.penalizer,
        )
        scores = value.score_triples(
            orders.sparkSession,
            triples,
            models,
            settings.horizon_days,
            settings.clv_step_days,
            settings.discount_rate,
        )
        predicted = value.with_predictions(person, scores, models, len(triples))
        cuts = segments.quintile_cuts(person, ["recency_days", "orders", "total_spend"])
        rules = [(r.name, r.r, r.f) for r in settings.rfm_segments]
        table = customer_value(
            inputs.identity_map.select(ONE_ID).distinct(),
            segments.with_rfm(predicted, cuts, rules),
            churn.scores if churn else None,
            settings,
            run_date,
        )
        # Computed here, while the summaries are kept, so the write does not redo the
        # resolution and the summaries; the stage counts come from the same pass.
        table, counted = materialize(table, stage_counts())
    params = orders.sparkSession.createDataFrame(
        [(m, p, v, run_id, run_date, settings.time_unit) for m, p, v in models.rows()],
        PARAMS_SCHEMA,
    )
    return LifecycleOutputs(
        customer_value=table,
        params=params,
        models=models,
        distinct_triples=len(triples),
        stages={k: int(v) for k, v in counted.items() if v},
        holdout=holdout,
        churn=churn,
    )


def stage_counts() -> list[Column]:
    """People per lifecycle stage, one aggregate column named after each stage."""
    return [F.count_if(F.col("lifecycle_stage") == s).alias(s) for s in segments.STAGES]


def customer_value(
    people: DataFrame,
    scored: DataFrame,
    churn_scores: DataFrame | None,
    settings: LifecycleConfig,
    run_date: dt.date,
) -> DataFrame:
    """One row per ``one_id`` in ``people``: buyers' values, everyone's stage."""
    frame = people.join(scored, on=ONE_ID, how="left")
    if churn_scores is not None:
        frame = frame.join(churn_scores, on=ONE_ID, how="left")
    else:
        frame = frame.withColumn("churn_risk", F.lit(None).cast("double"))
    st = settings.stages
    stage = segments.lifecycle_stage(st.new_days, st.active_days, st.churn_days)
    return frame.select(
        ONE_ID,
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
        F.lit(settings.time_unit).alias("time_unit"),
        F.lit(settings.horizon_days).alias("horizon_days"),
        F.lit(run_date).alias(RUN_DATE),
    )
