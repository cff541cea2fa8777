"""Implicit-feedback ALS top-N per person, tuned and evaluated honestly: ``build``.

``build`` reads and writes nothing and logs nothing to MLflow: the ``recommend`` job
reads the inputs, logs the model, writes the lists and reports. Its Spark actions are
the algorithm's own: the dense indices, the tuning fits and their metrics, the final
fit (none when popularity ships), and the few popular items and example rows taken
while the ratings are computed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import ITEM_ID, ONE_ID, RUN_DATE, RUN_ID
from precis.consent import marketing_consent
from precis.frames import kept, kept_observed, row_count
from precis.identity.resolve import resolve
from precis.progress import Step, silent_step
from precis.recommend import interactions, model, top
from precis.recommend.settings import RecommendConfig
from precis.recommend.tuning import OnTrial, Trial, Tuning, tune

__all__ = [
    "RecommendInputs",
    "RecommendOutputs",
    "Trial",
    "Tuning",
    "build",
    "kept_table",
    "stamp",
]

Steps = Callable[[str], AbstractContextManager[Step]]
#: Rows of the ratings stored with the model as its input example.
MODEL_EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class RecommendInputs:
    identity_map: DataFrame
    events: DataFrame | None = None
    orders: DataFrame | None = None
    order_items: DataFrame | None = None
    customers: DataFrame | None = None  # marketing consent; absent: nobody consented


@dataclass(frozen=True)
class RecommendOutputs:
    lists: DataFrame  # top.LIST_COLUMNS, every one_id of the identity map
    model: ALSModel | None  # the chosen parameters trained on all the evidence; None:
    # popularity ships (ALS did not beat it on the validation split)
    example: DataFrame | None  # user, item: a few input rows to keep with the model
    tuning: Tuning
    people: int  # people with evidence
    items: int  # items with evidence
    interactions: int  # (person, item) pairs


def build(
    inputs: RecommendInputs,
    settings: RecommendConfig,
    *,
    run_date: dt.date,
    steps: Steps | None = None,
    on_trial: OnTrial | None = None,
) -> RecommendOutputs:
    """Top ``settings.top_n`` items for every person, from evidence up to ``run_date``.

    steps: ``Progress.step`` to report each step (three of them); on_trial: told each
    scored model of the tuning (popularity, then every grid point) with its metrics.
    """
    step = steps or silent_step
    if settings.als_blocks is None:
        # Settled once here, from the session, so that every fit of the run agrees.
        blocks = model.session_blocks(inputs.identity_map.sparkSession)
        settings = settings.model_copy(update={"als_blocks": blocks})
    evidence, bought = interactions.gather(
        inputs.identity_map,
        inputs.events,
        inputs.orders,
        inputs.order_items,
        settings,
        run_date,
    )
    exclude = bought if settings.exclude_purchased else None
    with contextlib.ExitStack() as scope:
        with step("interactions") as info:
            (evidence,) = scope.enter_context(kept(evidence))
            pairs = interactions.confidence(evidence, run_date, settings.half_life_days)
            users, n_users = model.sized_dense_index(pairs, ONE_ID, "user")
            items, n_items = model.sized_dense_index(pairs, ITEM_ID, "item")
            ratings, counted = scope.enter_context(
                kept_observed(model.indexed(pairs, users, items), [row_count()])
            )
            n_pairs = int(counted["rows"])
            info.rows, info.detail = n_pairs, f"{n_users:,} people x {n_items:,} items"
        with step("tune on the validation split") as info:
            tuning = tune(
                evidence,
                exclude,
                users,
                items,
                n_items,
                settings,
                run_date=run_date,
                on_trial=on_trial,
            )
            info.detail = tuning.summary()
        with step("train on everything") as info:
            fitted, chosen = None, tuning.best.half_life_days
            if tuning.ships_als:
                if chosen != settings.half_life_days:
                    pairs = interactions.confidence(evidence, run_date, chosen)
                    ratings = scope.enter_context(kept(model.indexed(pairs, users, items)))[0]
                fitted = model.train(ratings, tuning.best.params)
            extra = top.most_excluded(exclude)
            popular = top.popular_items(ratings, items, 2 * settings.top_n + extra)
            example = _example(ratings) if settings.log_model and fitted else None
            info.detail = (
                f"{tuning.best.settings()}"
                if fitted
                else "popularity ships: ALS did not beat it on the validation split"
            )
    lists = top.top_n(
        fitted,
        users,
        items,
        inputs.identity_map.select(ONE_ID).distinct(),
        popular,
        settings.top_n,
        exclude,
        extra,
    )
    customers = (
        resolve(inputs.customers, inputs.identity_map) if inputs.customers is not None else None
    )
    return RecommendOutputs(
        lists=top.with_consent(lists, marketing_consent(customers, inputs.identity_map)),
        model=fitted,
        example=example,
        tuning=tuning,
        people=n_users,
        items=n_items,
        interactions=n_pairs,
    )


def stamp(lists: DataFrame, *, model_version: str, run_id: str, run_date: dt.date) -> DataFrame:
    """The rows of gold/recommendations: the lists with the model and run that made them."""
    return lists.select(
        *top.LIST_COLUMNS,
        F.lit(model_version).alias("model_version"),
        F.lit(run_id).alias(RUN_ID),
        F.lit(run_date).alias(RUN_DATE),
        F.current_timestamp().alias("generated_at"),
    )


@contextlib.contextmanager
def kept_table(table: DataFrame) -> Iterator[tuple[DataFrame, dict[str, int]]]:
    """(the table computed once and kept for the block; its rows per source, if any)."""
    with kept_observed(table, top.source_counts()) as (computed, counts):
        yield computed, {s: int(counts[s]) for s in top.SOURCES if counts[s]}


def _example(ratings: DataFrame) -> DataFrame:
    """A few (user, item) rows of the ratings, held on the driver: indices, never ids."""
    rows = ratings.select("user", "item").limit(MODEL_EXAMPLE_ROWS)
    return ratings.sparkSession.createDataFrame(rows.collect(), rows.schema)
