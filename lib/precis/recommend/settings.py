"""Settings of ALS recommendations (the ``recommend`` job).

Each default is written once, here; ``conf/base.yaml`` is generated from it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from precis.settings import Section, check_model_name


class RecommendGridConfig(Section):
    """Hyper-parameters tried on the validation split (every combination).

    Spark's regParam is scaled by each person's (item's) number of pairs, so the same
    values suit small and large data; alpha scales the confidence 1 + alpha * weight.
    """

    rank: tuple[int, ...] = (16, 64)
    reg_param: tuple[float, ...] = (0.1, 0.5, 2.0)
    alpha: tuple[float, ...] = (2.0, 5.0, 20.0)

    @field_validator("rank", "reg_param", "alpha")
    @classmethod
    def _positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(v <= 0 for v in value):
            raise ValueError(f"needs at least one value, all positive (got {list(value)})")
        return value


class RecommendConfig(Section):
    """Implicit ALS top-N recommendations (the ``recommend`` job)."""

    # Weight of one event of each type on an item; 0 or absent: not evidence. Purchases
    # come from paid order lines (order_weight), so checkout 'purchase' events weigh 0.
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "view": 1.0,
            "click": 1.0,
            "add_to_cart": 3.0,
            "favorite": 4.0,
            "purchase": 0.0,
        }
    )
    order_weight: float = Field(5.0, ge=0.0)  # each line of a paid order
    # Evidence loses half its weight every half_life_days before the run date (null: no decay).
    half_life_days: float | None = Field(90.0, gt=0.0)
    # Only evidence from the last lookback_days counts (null: all).
    lookback_days: int | None = Field(365, ge=1)
    top_n: int = Field(10, ge=1, le=1000)
    # Leave out items the person already bought: lines of paid orders and events of these
    # types, up to the run date (in the lists and in the tuning's validation lists).
    exclude_purchased: bool = True
    purchase_event_types: tuple[str, ...] = ("purchase",)
    # Tuning: pairs first seen in the last validation_days are held out; k of the metrics.
    validation_days: int = Field(14, ge=1)
    eval_k: int = Field(10, ge=1)
    # Fewer people than this with held-out pairs in that time split: hold out each
    # person's latest validation_share of items instead (at least one; people with 2+).
    validation_min_people: int = Field(200, ge=1)
    validation_share: float = Field(0.2, gt=0.0, lt=1.0)
    # ALS hyperparameters: every combination is tried; the best NDCG@k wins.
    grid: RecommendGridConfig = RecommendGridConfig()
    max_iter: int = Field(10, ge=1)
    # Successive halving: every grid point is first fitted with max_iter // halving
    # iterations, and only the best 1 / halving of them with max_iter (1: all with max_iter).
    halving: int = Field(3, ge=1)
    # No new fit starts after this many seconds of tuning; the best so far wins (null: no limit).
    search_seconds: float | None = Field(900.0, gt=0.0)
    # Also fit the best grid point without decay; half_life_days is kept only if it
    # validates better.
    measure_decay: bool = True
    # Ship ALS only when its NDCG@k beats popularity's with 95% confidence (paired over
    # the validation people); else the lists are popularity's (source 'popularity').
    require_lift: bool = True
    seed: int = 17
    # recommendForAll multiplies blocks of this many factor rows (no user x item join).
    block_size: int = Field(4096, ge=256)
    # ALS splits users and items into this many blocks each (null: one per core of a
    # local session, else Spark's 10). Each block is a task of every iteration, and
    # top-N multiplies every user block with every item block, so on a few cores more
    # blocks than cores is work with nothing to run it.
    als_blocks: int | None = Field(None, ge=1)
    # Register the chosen model under this name in the MLflow model registry (null: log only).
    registered_model_name: str | None = "precis-recommend-als"
    log_model: bool = True
    # Also write top-N lists of people with marketing consent to <root>/exports/recommendations.
    export: bool = True
    export_format: Literal["csv", "parquet"] = "parquet"

    @field_validator("event_weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if v < 0}
        if bad:
            raise ValueError(f"event weights must be >= 0, got {bad}")
        return value

    @field_validator("registered_model_name")
    @classmethod
    def _model_name(cls, value: str | None) -> str | None:
        return check_model_name(value)
