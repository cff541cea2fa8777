"""Spark <-> model glue: fit on aggregated summaries, score people, check a holdout.

The fits collect only the distinct summaries with their counts
(``summary.bg_nbd_counts`` / ``summary.gamma_gamma_counts``). Predictions also depend
on a person only through (x, t_x, T): they are computed once per distinct triple on
the driver and joined back, so no Python runs per person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis.lifecycle import btyd, summary
from precis.progress import log

TRIPLE = ["x", "t_x_days", "T_days"]


@dataclass(frozen=True)
class Models:
    bg_nbd: btyd.Fit
    gamma_gamma: btyd.Fit | None  # None: not fitted (no repeat buyers, or no spread in spend)
    time_unit: str

    def rows(self) -> list[tuple[str, str, float]]:
        fits = [self.bg_nbd] + ([self.gamma_gamma] if self.gamma_gamma else [])
        return [row for fit in fits for row in fit.rows()]


def _triples(person_summary: DataFrame) -> pd.DataFrame:
    triples: pd.DataFrame = summary.bg_nbd_counts(person_summary).toPandas()
    return triples.sort_values(TRIPLE, ignore_index=True)


def fit(
    person_summary: DataFrame, time_unit: str, penalizer: float = 0.0
) -> tuple[Models, pd.DataFrame]:
    """Both models from one summary; also returns the distinct triples (for scoring)."""
    unit = float(summary.UNIT_DAYS[time_unit])
    triples = _triples(person_summary)
    if triples.empty:
        raise btyd.FitError("bg_nbd: no paid orders up to this date")
    bg = btyd.fit_bg_nbd(
        triples.x, triples.t_x_days / unit, triples.T_days / unit, triples.people, penalizer
    )
    counts: pd.DataFrame = summary.gamma_gamma_counts(person_summary).toPandas()
    spend = counts.sort_values(["x", "m"], ignore_index=True)
    gg = None
    if spend.empty:
        log.warning(
            "gamma_gamma: no repeat buyer with a positive amount; expected spend = mean order value"
        )
    else:
        try:
            gg = btyd.fit_gamma_gamma(spend.x, spend.m, spend.people, penalizer)
        except btyd.FitError as exc:
            # Spend that varies no more between people than within them drives q and
            # gamma to infinity: the model does not apply, the CLV still needs a spend.
            log.warning("%s; expected spend = mean order value", exc)
    return Models(bg, gg, time_unit), triples


def score_triples(
    spark: SparkSession,
    triples: pd.DataFrame,
    models: Models,
    horizon_days: int,
    step_days: int,
    annual_discount: float,
) -> DataFrame:
    """Per distinct triple: ``p_alive``, ``expected_purchases`` over the horizon and
    ``discounted_purchases`` (the same purchases, each discounted to today)."""
    unit = float(summary.UNIT_DAYS[models.time_unit])
    x = triples.x.to_numpy(float)
    t_x = triples.t_x_days.to_numpy(float) / unit
    T = triples.T_days.to_numpy(float) / unit
    params = models.bg_nbd.params
    per_unit = (1.0 + annual_discount) ** (unit / 365.0) - 1.0
    with np.errstate(all="ignore"):
        scored = pd.DataFrame(
            {
                "x": triples.x.astype("int32"),
                "t_x_days": triples.t_x_days.astype("int32"),
                "T_days": triples.T_days.astype("int32"),
                "p_alive": btyd.probability_alive(params, x, t_x, T),
                "expected_purchases": btyd.expected_purchases(
                    params, horizon_days / unit, x, t_x, T
                ),
                "discounted_purchases": btyd.discounted_value(
                    params,
                    np.ones_like(x),
                    x,
                    t_x,
                    T,
                    horizon_days / unit,
                    step_days / unit,
                    per_unit,
                ),
            }
        )
    bad = ~np.isfinite(scored[["p_alive", "expected_purchases", "discounted_purchases"]]).all(
        axis=1
    )
    if bad.any():
        row = scored[bad].iloc[0]
        raise btyd.FitError(
            f"bg_nbd: predictions are not finite for x={row.x}, t_x={row.t_x_days} d, T={row.T_days} d "
            f"with {params}"
        )
    schema = "x int, t_x_days int, T_days int, p_alive double, expected_purchases double, discounted_purchases double"
    return spark.createDataFrame(scored, schema)


#: Scores of fewer distinct triples than this are broadcast to the people they score.
BROADCAST_TRIPLES = 200_000


def with_predictions(
    person_summary: DataFrame, scores: DataFrame, models: Models, triples: int
) -> DataFrame:
    """Summary + ``p_alive``, ``expected_purchases``, ``expected_spend``, ``clv``.

    ``triples``: how many rows ``scores`` has (``score_triples`` made them on the driver,
    so the caller knows without asking Spark).
    """
    small = triples < BROADCAST_TRIPLES
    joined = person_summary.join(F.broadcast(scores) if small else scores, on=TRIPLE, how="left")
    if models.gamma_gamma is None:
        spend = F.col("total_spend") / F.col("orders")
    else:
        p, q, gamma = (models.gamma_gamma.params[k] for k in btyd.PARAMS[btyd.GAMMA_GAMMA])
        x = F.col("x").cast("double")
        m = F.coalesce(F.col("monetary_value"), F.lit(0.0))
        # Gamma-Gamma's conditional mean: the population mean shrunk toward the person's.
        spend = F.lit(p) * (F.lit(gamma) + x * m) / (F.lit(p) * x + F.lit(q - 1.0))
    return (
        joined.withColumn("expected_spend", spend)
        .withColumn("clv", F.col("expected_spend") * F.col("discounted_purchases"))
        .drop("discounted_purchases")
    )


# ---------------------------------------------------------------------- validation
def holdout_table(
    calibration: pd.DataFrame, models: Models, holdout_days: int, step_days: int = 7
) -> tuple[dict[str, float], pd.DataFrame, pd.DataFrame]:
    """Predicted vs actual repeat transactions in the holdout.

    ``calibration``: one row per distinct (``x``, ``t_x_days``, ``T_days``, ``actual``)
    of the calibration buyers, ``actual`` = a person's transactions in the holdout,
    ``people`` = how many people share the row. Returns the per-person errors, the
    comparison by calibration frequency (7 = 7 or more) and the predicted cumulative
    repeat transactions of the whole cohort every ``step_days`` (column ``predicted``).
    """
    unit = float(summary.UNIT_DAYS[models.time_unit])
    x = calibration.x.to_numpy(float)
    t_x = calibration.t_x_days.to_numpy(float) / unit
    T = calibration.T_days.to_numpy(float) / unit
    people = calibration.people.to_numpy(float)
    actual = calibration.actual.to_numpy(float)
    params = models.bg_nbd.params
    days = np.arange(step_days, holdout_days + 1, step_days)
    if len(days) == 0 or days[-1] != holdout_days:
        days = np.append(days, holdout_days)
    with np.errstate(all="ignore"):
        predicted = btyd.expected_purchases(params, holdout_days / unit, x, t_x, T)
        cumulative = [
            float(np.dot(people, btyd.expected_purchases(params, d / unit, x, t_x, T)))
            for d in days
        ]
    total = people.sum()
    errors = {
        "holdout_people": float(total),
        "holdout_actual": float(np.dot(people, actual)),
        "holdout_predicted": float(np.dot(people, predicted)),
        "holdout_mae": float(np.dot(people, np.abs(predicted - actual)) / total),
        "holdout_rmse": float(np.sqrt(np.dot(people, (predicted - actual) ** 2) / total)),
    }
    errors["holdout_ratio"] = (
        errors["holdout_predicted"] / errors["holdout_actual"]
        if errors["holdout_actual"]
        else float("nan")
    )
    frame = pd.DataFrame(
        {
            "frequency": np.minimum(x, 7).astype(int),
            "people": people,
            "predicted": predicted * people,
            "actual": actual * people,
        }
    )
    by_frequency = frame.groupby("frequency").sum().reset_index()
    by_frequency["predicted_mean"] = by_frequency.predicted / by_frequency.people
    by_frequency["actual_mean"] = by_frequency.actual / by_frequency.people
    curve = pd.DataFrame({"day": days.astype(int), "predicted": cumulative})
    return errors, by_frequency, curve


def holdout_figure(by_frequency: pd.DataFrame, curve: pd.DataFrame, title: str):
    """Two panels: mean holdout transactions by calibration frequency; cumulative curve
    (``curve`` needs an ``actual`` column beside ``holdout_table``'s ``day`` and ``predicted``)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a cluster driver
    from matplotlib import pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [f"{int(f)}+" if f == 7 else str(int(f)) for f in by_frequency.frequency]
    positions = np.arange(len(labels))
    left.plot(positions, by_frequency.actual_mean, "o-", label="actual")
    left.plot(positions, by_frequency.predicted_mean, "s--", label="BG/NBD")
    left.set_xticks(positions, labels)
    left.set_xlabel("repeat transactions in calibration")
    left.set_ylabel("mean transactions in holdout")
    left.legend()
    right.plot(curve.day, curve.actual, "o-", label="actual")
    right.plot(curve.day, curve.predicted, "s--", label="BG/NBD")
    right.set_xlabel("days into holdout")
    right.set_ylabel("cumulative repeat transactions")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig
