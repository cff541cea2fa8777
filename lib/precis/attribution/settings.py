"""Settings of multi-touch attribution (the ``attribution`` job).

Each default is written once, here; ``conf/base.yaml`` is generated from it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from precis.settings import Section
from precis.sqlcheck import ConfigSqlError, check_expression


class AttributionPositionConfig(Section):
    """position_based shares of the first touch, the touches between and the last touch."""

    first: float = Field(0.4, ge=0.0, le=1.0)
    middle: float = Field(0.2, ge=0.0, le=1.0)
    last: float = Field(0.4, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _sum_to_one(self) -> AttributionPositionConfig:
        if abs(self.first + self.middle + self.last - 1.0) > 1e-9 or self.first + self.last == 0:
            raise ValueError(
                f"attribution.position_based: first + middle + last must be 1 with first + last > 0 "
                f"(got {self.first} + {self.middle} + {self.last})"
            )
        return self


class AttributionMarkovConfig(Section):
    order: int = Field(1, ge=1, le=3)  # channels of history per state
    # Collapse a channel repeated in a row into one step (off: repeats are self-transitions).
    collapse_repeats: bool = False


class AttributionShapleyConfig(Section):
    # Worth of a coalition: conversions (or conversion rate) of journeys inside it.
    worth: Literal["conversions", "rate"] = "conversions"
    max_exact_channels: int = Field(15, ge=1, le=20)  # beyond: sampled channel orders
    samples: int = Field(2000, ge=10)
    seed: int = 11


ATTRIBUTION_MODELS = (
    "first_touch",
    "last_touch",
    "linear",
    "time_decay",
    "position_based",
    "markov",
    "shapley",
)


class AttributionConfig(Section):
    """Multi-touch attribution (the ``attribution`` job); see docs/attribution.md."""

    # Conversions in the window_days ending on the run date (inclusive) are attributed.
    window_days: int = Field(90, ge=1)
    # A journey holds the touches at most lookback_days before its conversion.
    lookback_days: int = Field(30, ge=1)
    # channel, or campaign (channel:campaign_id).
    granularity: Literal["channel", "campaign"] = "channel"
    # Which orders convert (Spark SQL over silver/orders; null: paid orders) and their value.
    conversion_filter: str | None = None
    revenue: str = "amount"
    models: tuple[str, ...] = ATTRIBUTION_MODELS
    time_decay_half_life_days: float = Field(7.0, gt=0.0)
    position_based: AttributionPositionConfig = AttributionPositionConfig()
    markov: AttributionMarkovConfig = AttributionMarkovConfig()
    shapley: AttributionShapleyConfig = AttributionShapleyConfig()
    # A comparison plot of the models to MLflow.
    log_plot: bool = True

    @field_validator("conversion_filter", "revenue")
    @classmethod
    def _allowed_sql(cls, value: str | None, info: ValidationInfo) -> str | None:
        # The text becomes code in F.expr: only allowed functions, no subquery (docs/privacy.md).
        if value is not None:
            try:
                check_expression(value, f"attribution.{info.field_name}")
            except ConfigSqlError as exc:
                raise ValueError(exc.reason) from None  # the error names the key already
        return value

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in value if m not in ATTRIBUTION_MODELS]
        if unknown or not value:
            raise ValueError(
                f"unknown model(s) {unknown or '(none given)'}; expected some of {list(ATTRIBUTION_MODELS)}"
            )
        if len(set(value)) != len(value):
            raise ValueError(f"models listed twice: {list(value)}")
        return value
