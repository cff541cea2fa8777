"""ALS's parameters chosen honestly: a time split, every grid point, a popularity baseline.

Pairs a person first touched in the last ``validation_days`` before the run date are
held out; the model trains on the evidence before them (decayed to the day before the
hold-out) and recommends ``eval_k`` items per person, leaving out what the person
touched in training. Every person with held-out pairs who was seen in training is
scored (:mod:`precis.recommend.evaluation`); the best NDCG@k wins, ties going to the
earlier grid point.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import ITEM_ID, ONE_ID
from precis.frames import kept
from precis.recommend import evaluation, interactions, model
from precis.recommend.settings import RecommendConfig

#: Told each scored model as it is scored: its name and metrics (progress lines).
OnTrial = Callable[[str, Mapping[str, float]], None]


@dataclass(frozen=True)
class Trial:
    params: model.AlsParams
    metrics: dict[str, float]

    @property
    def name(self) -> str:
        p = self.params
        return f"als rank={p.rank} reg={p.reg_param} alpha={p.alpha}"

    def as_dict(self) -> dict[str, Any]:
        return {"params": self.params.as_dict(), "metrics": self.metrics}


@dataclass(frozen=True)
class Tuning:
    validation_from: dt.date
    validation_people: int
    k: int
    baseline: dict[str, float]  # popularity on the same split
    trials: tuple[Trial, ...]  # in grid order

    @property
    def key(self) -> str:
        return f"ndcg_at_{self.k}"

    @property
    def best(self) -> Trial:
        return max(self.trials, key=lambda t: t.metrics[self.key])  # max keeps the first of equals

    def summary(self) -> str:
        return (
            f"best {self.best.params.as_dict()}: NDCG@{self.k} {self.best.metrics[self.key]:.4f} "
            f"vs popularity {self.baseline[self.key]:.4f} over {self.validation_people:,} people"
        )

    def metrics(self) -> dict[str, float]:
        """Popularity's and the chosen model's metrics on the validation split, and the
        split's size (MLflow and ``meta/model_metrics``)."""
        return {
            **{f"popularity_{m}": v for m, v in self.baseline.items()},
            **{f"als_{m}": v for m, v in self.best.metrics.items()},
            "validation_people": float(self.validation_people),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "validation_from": self.validation_from.isoformat(),
            "validation_people": self.validation_people,
            "baseline": self.baseline,
            "best": self.best.as_dict(),
            "trials": [t.as_dict() for t in self.trials],
        }


def tune(
    evidence: DataFrame,
    users: DataFrame,
    items: DataFrame,
    catalogue: int,
    settings: RecommendConfig,
    *,
    run_date: dt.date,
    on_trial: OnTrial | None = None,
) -> Tuning:
    """Every grid point of ``settings.grid`` scored on the time split.

    ``users`` and ``items`` index every id of ``evidence``; ``catalogue``: how many items.
    """
    k = settings.eval_k
    cutoff_date = run_date - dt.timedelta(days=settings.validation_days - 1)
    train_ev, held = model.time_split(evidence, cutoff_date)
    train = model.indexed(
        interactions.confidence(
            train_ev, cutoff_date - dt.timedelta(days=1), settings.half_life_days
        ),
        users,
        items,
    )
    seen = train.select("user", "item").distinct()
    relevant = (
        held.select(ONE_ID, ITEM_ID)
        .distinct()
        .join(users, ONE_ID, how="inner")
        .join(items, ITEM_ID, how="inner")
        # Cold starts get the popularity fallback, not a score.
        .join(seen.select("user").distinct(), "user", how="left_semi")
        .groupBy("user")
        .agg(F.collect_set("item").alias("items"))
    )
    report = on_trial or (lambda name, metrics: None)
    with kept(train, seen, relevant) as (train, seen, relevant):
        eval_users = relevant.select("user")
        people, most_seen = _scored_people(seen, eval_users)
        if people == 0:
            raise model.RecommendError(
                f"nothing to tune on: no pair first seen after {cutoff_date} by a person seen "
                f"before it (recommend.validation_days = {settings.validation_days})"
            )
        depth = k + min(most_seen, model.MAX_EXCLUDED)

        popular = evaluation.popularity_lists(seen, eval_users, k)
        baseline = evaluation.ranking_metrics(popular, relevant, k)
        baseline[f"coverage_at_{k}"] = evaluation.coverage(popular, catalogue)
        report("popularity", baseline)

        trials = []
        grid = settings.grid
        for rank, reg, alpha in product(grid.rank, grid.reg_param, grid.alpha):
            params = model.AlsParams(
                rank,
                reg,
                alpha,
                settings.max_iter,
                settings.seed,
                settings.block_size,
                settings.als_blocks or model.SPARK_ALS_BLOCKS,
            )
            fitted = model.train(train, params)
            recs = model.recommend_all(fitted, eval_users, depth)
            lists = evaluation.top_lists(recs.join(seen, ["user", "item"], how="left_anti"), k)
            metrics = evaluation.ranking_metrics(lists, relevant, k)
            metrics[f"coverage_at_{k}"] = evaluation.coverage(lists, catalogue)
            trial = Trial(params, metrics)
            trials.append(trial)
            report(trial.name, metrics)
    return Tuning(cutoff_date, people, k, baseline, tuple(trials))


def _scored_people(seen: DataFrame, eval_users: DataFrame) -> tuple[int, int]:
    """(people scored, most training items any of them has).

    Every scored person was seen in training, so each has a group here.
    """
    row = (
        seen.join(eval_users, "user", how="left_semi")
        .groupBy("user")
        .count()
        .agg(F.count(F.lit(1)).alias("people"), F.max("count").alias("most"))
        .collect()[0]
    )
    return int(row["people"]), int(row["most"] or 0)
