"""ALS's parameters chosen honestly: a validation split that adapts to the data, a
successive-halving search over the grid, decay measured, and popularity to beat.

The split. Pairs a person first touched in the last ``validation_days`` before the run
date are held out (``time``) when at least ``validation_min_people`` people seen before
have such pairs; else each person with two or more items holds out the latest
``validation_share`` of them, at least one and never all (``latest``: by first touch,
ties to the higher item_id). The model trains on the rest of the evidence (decayed to
the day before the hold-out, or to the run date), and recommends ``eval_k`` items per
person, leaving out what the person touched in training and what they bought outside
the hold-out, as the job's lists do. Every person with held-out pairs who was seen in
training is scored (:mod:`precis.recommend.evaluation`).

The search. Every grid point is fitted with ``max_iter // halving`` iterations; the best
1 / ``halving`` of them again with ``max_iter``; with ``measure_decay`` the best of those
also without decay. No fit starts after ``search_seconds`` (at least one full fit runs).
The best NDCG@k of the full fits wins, ties going to the one fitted first. With
``require_lift`` ALS ships only when its paired NDCG@k lift over popularity is above
zero with 95% confidence; else the lists are popularity's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
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
#: The validation splits (module docstring).
SPLITS = ("time", "latest")


@dataclass(frozen=True)
class Trial:
    params: model.AlsParams
    half_life_days: float | None
    metrics: dict[str, float]
    lift: evaluation.Lift | None = None  # over popularity; full fits only

    @property
    def name(self) -> str:
        p = self.params
        decay = "" if self.half_life_days else " no decay"
        return f"als rank={p.rank} reg={p.reg_param} alpha={p.alpha} iter={p.max_iter}{decay}"

    def settings(self) -> dict[str, Any]:
        return {**self.params.as_dict(), "half_life_days": self.half_life_days}

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"params": self.settings(), "metrics": self.metrics}
        if self.lift is not None:
            out["lift"] = vars(self.lift)
        return out


@dataclass(frozen=True)
class Tuning:
    split: str  # one of SPLITS
    validation_from: dt.date | None  # the time split's first day
    validation_people: int
    k: int
    baseline: dict[str, float]  # popularity on the same split
    trials: tuple[Trial, ...]  # in the order fitted
    best: Trial  # the winning full fit
    require_lift: bool
    stopped_early: bool  # search_seconds ran out before every planned fit

    @property
    def key(self) -> str:
        return f"ndcg_at_{self.k}"

    @property
    def ships_als(self) -> bool:
        lift = self.best.lift
        return not self.require_lift or (lift is not None and lift.significant)

    @property
    def shipped(self) -> str:
        return "als" if self.ships_als else "popularity"

    def summary(self) -> str:
        lift = self.best.lift
        interval = f" (lift 95% CI {lift.ci_low:+.4f} to {lift.ci_high:+.4f})" if lift else ""
        return (
            f"{self.best.name}: NDCG@{self.k} {self.best.metrics[self.key]:.4f} vs popularity "
            f"{self.baseline[self.key]:.4f}{interval} over {self.validation_people:,} people "
            f"({self.split} split); ships {self.shipped}"
        )

    def metrics(self) -> dict[str, float]:
        """Popularity's and the chosen model's metrics on the validation split, the
        lift's interval, what ships and the split's size (MLflow, ``meta/model_metrics``)."""
        lift = self.best.lift
        return {
            **{f"popularity_{m}": v for m, v in self.baseline.items()},
            **{f"als_{m}": v for m, v in self.best.metrics.items()},
            **(
                {"lift_ndcg": lift.mean, "lift_ci_low": lift.ci_low, "lift_ci_high": lift.ci_high}
                if lift
                else {}
            ),
            "ships_als": float(self.ships_als),
            "validation_people": float(self.validation_people),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "validation_from": self.validation_from and self.validation_from.isoformat(),
            "validation_people": self.validation_people,
            "baseline": self.baseline,
            "best": self.best.as_dict(),
            "shipped": self.shipped,
            "stopped_early": self.stopped_early,
            "trials": [t.as_dict() for t in self.trials],
        }


@dataclass(frozen=True)
class _Split:
    kind: str
    validation_from: dt.date | None
    train_evidence: DataFrame  # EVIDENCE rows the model may learn from
    as_of: dt.date  # the day the training evidence is decayed to
    held: DataFrame  # one_id, item_id: the held-out pairs


@dataclass(frozen=True)
class _Scoring:
    """A split made ready to score fits on: its training ratings and hidden pairs."""

    split: _Split
    train: DataFrame  # user, item, confidence, decayed by half_life_days
    hidden: DataFrame  # user, item: never in a validation list
    relevant: DataFrame  # user, items: the held-out items of each scored person
    people: int  # people scored
    depth: int  # candidates asked of a model per person
    users: DataFrame
    items: DataFrame

    def ratings(self, half_life_days: float | None, configured: float | None) -> DataFrame:
        if half_life_days == configured:
            return self.train
        return _ratings(self.split, self.users, self.items, half_life_days)


def tune(
    evidence: DataFrame,
    bought: DataFrame | None,
    users: DataFrame,
    items: DataFrame,
    catalogue: int,
    settings: RecommendConfig,
    *,
    run_date: dt.date,
    on_trial: OnTrial | None = None,
) -> Tuning:
    """The search of the module docstring on the split that suits ``evidence``.

    ``users`` and ``items`` index every id of ``evidence``; ``bought``: one_id, item_id
    the lists leave out (or None); ``catalogue``: how many items.
    """
    cutoff = run_date - dt.timedelta(days=settings.validation_days - 1)
    train, held = model.time_split(evidence, cutoff)
    by_time = _Split(
        "time", cutoff, train, cutoff - dt.timedelta(days=1), held.select(ONE_ID, ITEM_ID)
    )
    with _scored(by_time, bought, users, items, settings) as scoring:
        if scoring.people >= settings.validation_min_people:
            return _search(scoring, catalogue, settings, on_trial)
    train, held = model.latest_split(evidence, settings.validation_share)
    by_person = _Split("latest", None, train, run_date, held)
    with _scored(by_person, bought, users, items, settings) as scoring:
        if scoring.people == 0:
            raise model.RecommendError(
                "nothing to tune on: no person has two or more items (and the time split "
                f"from {cutoff} holds nobody seen before it; recommend.validation_days = "
                f"{settings.validation_days})"
            )
        return _search(scoring, catalogue, settings, on_trial)


def _ratings(
    split: _Split, users: DataFrame, items: DataFrame, half_life_days: float | None
) -> DataFrame:
    confidence = interactions.confidence(split.train_evidence, split.as_of, half_life_days)
    return model.indexed(confidence, users, items)


def _pairs(pairs: DataFrame, users: DataFrame, items: DataFrame) -> DataFrame:
    """user, item of (one_id, item_id) pairs whose person and item both have an index."""
    return (
        pairs.join(users, ONE_ID, how="inner")
        .join(items, ITEM_ID, how="inner")
        .select("user", "item")
    )


@contextlib.contextmanager
def _scored(
    split: _Split,
    bought: DataFrame | None,
    users: DataFrame,
    items: DataFrame,
    settings: RecommendConfig,
) -> Iterator[_Scoring]:
    """The split's training ratings, hidden pairs and relevant items, kept for the block."""
    train = _ratings(split, users, items, settings.half_life_days)
    seen = train.select("user", "item")
    hidden = seen
    if bought is not None:
        # Bought outside the hold-out: the job's lists would leave these out too.
        outside = bought.join(split.held, [ONE_ID, ITEM_ID], how="left_anti")
        hidden = seen.unionByName(_pairs(outside, users, items))
    relevant = (
        _pairs(split.held.distinct(), users, items)
        # Cold starts get the popularity fallback, not a score.
        .join(seen.select("user").distinct(), "user", how="left_semi")
        .groupBy("user")
        .agg(F.collect_set("item").alias("items"))
    )
    with kept(train, hidden.distinct(), relevant) as (train, hidden, relevant):
        people, most = _scored_people(hidden, relevant.select("user"))
        depth = settings.eval_k + min(most, model.MAX_EXCLUDED)
        yield _Scoring(split, train, hidden, relevant, people, depth, users, items)


def _search(
    scoring: _Scoring,
    catalogue: int,
    settings: RecommendConfig,
    on_trial: OnTrial | None,
) -> Tuning:
    k, report = settings.eval_k, on_trial or (lambda name, metrics: None)
    eval_users, relevant, hidden = scoring.relevant.select("user"), scoring.relevant, scoring.hidden
    started, trials = time.monotonic(), []

    def out_of_time() -> bool:
        limit = settings.search_seconds
        return limit is not None and time.monotonic() - started > limit

    popular = evaluation.popularity_lists(scoring.train, eval_users, k, hidden=hidden)
    with kept(popular) as (popular,):
        baseline = evaluation.ranking_metrics(popular, relevant, k)
        baseline[f"coverage_at_{k}"] = evaluation.coverage(popular, catalogue)
        report("popularity", baseline)

        def fit(params: model.AlsParams, half_life: float | None, full: bool) -> Trial:
            fitted = model.train(scoring.ratings(half_life, settings.half_life_days), params)
            recs = model.recommend_all(fitted, eval_users, scoring.depth)
            lists = evaluation.top_lists(recs.join(hidden, ["user", "item"], how="left_anti"), k)
            with kept(lists) as (lists,):
                metrics = evaluation.ranking_metrics(lists, relevant, k)
                metrics[f"coverage_at_{k}"] = evaluation.coverage(lists, catalogue)
                lift = evaluation.ndcg_lift(lists, popular, relevant, k) if full else None
            trial = Trial(params, half_life, metrics, lift)
            trials.append(trial)
            report(trial.name, metrics)
            return trial

        def ndcg(trial: Trial) -> float:
            return trial.metrics[f"ndcg_at_{k}"]

        grid = settings.grid
        points = [
            model.AlsParams(
                rank,
                reg,
                alpha,
                settings.max_iter,
                settings.seed,
                settings.block_size,
                settings.als_blocks or model.SPARK_ALS_BLOCKS,
            )
            for rank, reg, alpha in product(grid.rank, grid.reg_param, grid.alpha)
        ]
        planned, half_life = len(points), settings.half_life_days
        quick = max(1, settings.max_iter // settings.halving)
        if len(points) > 1 and quick < settings.max_iter:
            first: list[Trial] = []
            for point in points:
                if first and out_of_time():
                    break
                first.append(fit(replace(point, max_iter=quick), half_life, full=False))
            keep = math.ceil(len(points) / settings.halving)
            # sorted() is stable: of equal scores the earlier grid point goes on.
            survivors = sorted(first, key=ndcg, reverse=True)[:keep]
            points = [replace(t.params, max_iter=settings.max_iter) for t in survivors]
            planned += len(points)
        finals: list[Trial] = []
        for point in points:
            if finals and out_of_time():
                break
            finals.append(fit(point, half_life, full=True))
        best = max(finals, key=ndcg)  # max keeps the first of equals
        if settings.measure_decay and half_life is not None:
            planned += 1
            if not out_of_time():
                finals.append(fit(best.params, None, full=True))
                best = max(finals, key=ndcg)
    return Tuning(
        split=scoring.split.kind,
        validation_from=scoring.split.validation_from,
        validation_people=scoring.people,
        k=k,
        baseline=baseline,
        trials=tuple(trials),
        best=best,
        require_lift=settings.require_lift,
        stopped_early=len(trials) < planned,
    )


def _scored_people(hidden: DataFrame, eval_users: DataFrame) -> tuple[int, int]:
    """(people scored, most hidden items any of them has).

    Every scored person was seen in training, so each has a group here.
    """
    row = (
        hidden.join(eval_users, "user", how="left_semi")
        .groupBy("user")
        .count()
        .agg(F.count(F.lit(1)).alias("people"), F.max("count").alias("most"))
        .collect()[0]
    )
    return int(row["people"]), int(row["most"] or 0)
