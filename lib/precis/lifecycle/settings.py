"""Settings of RFM, CLV, stages and churn (the ``lifecycle`` job).

Each default is written once, here; ``conf/base.yaml`` is generated from it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from precis.settings import Section, check_model_name


class LifecycleStagesConfig(Section):
    """Lifecycle stage thresholds, in days before the run date (see docs/lifecycle.md)."""

    new_days: int = Field(30, ge=1)  # first purchase this recent: new
    active_days: int = Field(90, ge=1)  # last purchase this recent: active (or reactivated)
    churn_days: int = Field(180, ge=1)  # last purchase older than this: churned; between: at_risk

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleStagesConfig:
        if not self.new_days <= self.active_days < self.churn_days:
            raise ValueError(
                f"lifecycle.stages needs new_days <= active_days < churn_days "
                f"(got {self.new_days}, {self.active_days}, {self.churn_days})"
            )
        return self


class RfmSegmentRule(Section):
    """A named RFM segment: the recency and frequency score ranges it covers (inclusive)."""

    name: str = Field(min_length=1)
    r: tuple[int, int]
    f: tuple[int, int]

    @model_validator(mode="after")
    def _ranges(self) -> RfmSegmentRule:
        for key, (lo, hi) in (("r", self.r), ("f", self.f)):
            if not 1 <= lo <= hi <= 5:
                raise ValueError(
                    f"segment '{self.name}': {key} must be [low, high] within 1..5, got [{lo}, {hi}]"
                )
        return self


def _default_rfm_segments() -> tuple[RfmSegmentRule, ...]:
    # The usual recency x frequency grid of RFM analysis; every cell is covered once.
    grid = (
        ("champions", (5, 5), (4, 5)),
        ("loyal", (3, 4), (4, 5)),
        ("potential_loyalists", (4, 5), (2, 3)),
        ("new_customers", (5, 5), (1, 1)),
        ("promising", (4, 4), (1, 1)),
        ("need_attention", (3, 3), (3, 3)),
        ("about_to_sleep", (3, 3), (1, 2)),
        ("cannot_lose", (1, 2), (5, 5)),
        ("at_risk", (1, 2), (3, 4)),
        ("hibernating", (1, 2), (1, 2)),
    )
    return tuple(RfmSegmentRule(name=n, r=r, f=f) for n, r, f in grid)


class ChurnConfig(Section):
    enabled: bool = True
    # A buyer churns after a date when they make no paid order in the next horizon_days.
    horizon_days: int = Field(90, ge=7)
    # Gradient-boosted trees (Spark ML GBTClassifier).
    max_iter: int = Field(30, ge=1)
    max_depth: int = Field(4, ge=1, le=30)
    step_size: float = Field(0.1, gt=0.0, le=1.0)
    seed: int = 7
    # Log the fitted model to MLflow as a Spark ML model.
    log_model: bool = True
    # Register it under this name in the MLflow model registry (null: log only).
    registered_model_name: str | None = "precis-lifecycle-churn"

    @field_validator("registered_model_name")
    @classmethod
    def _model_name(cls, value: str | None) -> str | None:
        return check_model_name(value)


class LifecycleConfig(Section):
    """RFM, BG/NBD + Gamma-Gamma CLV, lifecycle stages and churn (the ``lifecycle`` job)."""

    # Unit of t_x, T and the fitted alpha; same-day purchases are one transaction either way.
    time_unit: Literal["day", "week"] = "week"
    # Expected purchases and CLV cover this many days after the run date.
    horizon_days: int = Field(365, ge=1)
    # Annual discount rate of future spend in the CLV.
    discount_rate: float = Field(0.1, ge=0.0, le=1.0)
    # CLV sums expected purchases over steps of this many days, each discounted.
    clv_step_days: int = Field(30, ge=1)
    # Validation: refit on data up to run_date - holdout_days, predict the holdout (0: off).
    holdout_days: int = Field(90, ge=0)
    # L2 penalty on the parameters (lifetimes' penalizer_coef); 0 is plain maximum likelihood.
    penalizer: float = Field(0.0, ge=0.0)
    # Stage thresholds in days before the run date (rules in docs/lifecycle.md).
    stages: LifecycleStagesConfig = LifecycleStagesConfig()
    # RFM segments: the first rule whose recency (r) and frequency (f) score ranges hold.
    rfm_segments: tuple[RfmSegmentRule, ...] = Field(default_factory=_default_rfm_segments)
    # Churn risk: gradient-boosted trees on behaviour.
    churn: ChurnConfig = ChurnConfig()

    @field_validator("rfm_segments")
    @classmethod
    def _unique_names(cls, value: tuple[RfmSegmentRule, ...]) -> tuple[RfmSegmentRule, ...]:
        names = [rule.name for rule in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"segment name(s) {twice} appear more than once")
        return value
