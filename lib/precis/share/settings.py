"""Settings of differentially private releases (the ``share`` job).

Each default is written once, here; ``conf/base.yaml`` is generated from it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from precis.settings import Section

#: Releases a run can make, in the order they are made and recorded.
RELEASES = ("segments", "tags", "attribution")


class ShareTagConfig(Section):
    """The public key domain of one tag's distribution: its values, or numeric bins."""

    # Categorical tag: every value released (zero people included, then noised and
    # thresholded); values outside the list are not counted.
    values: tuple[str, ...] = ()
    # Numeric tag: bin edges e1 < e2 < ...; cells "<e1", "[e1,e2)", ..., ">=en".
    bins: tuple[float, ...] = ()

    @model_validator(mode="after")
    def _one_domain(self) -> ShareTagConfig:
        if bool(self.values) == bool(self.bins):
            raise ValueError("a shared tag needs either values (categorical) or bins (numeric)")
        if any(a >= b for a, b in itertools.pairwise(self.bins)):
            raise ValueError(f"bins must increase strictly (got {list(self.bins)})")
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"values listed twice: {list(self.values)}")
        return self


class ShareReleasesConfig(Section):
    """Which tables a release holds."""

    segments: bool = True  # people per segment (gold/segments of the run date)
    tags: bool = True  # people per tag value or bin (gold/profile_tags of the run date)
    attribution: bool = True  # credited conversions, revenue and ROI per channel


def _default_tags() -> dict[str, ShareTagConfig]:
    return {
        "lifecycle_stage": ShareTagConfig(
            values=("prospect", "new", "reactivated", "active", "at_risk", "churned")
        ),
        "clv_tier": ShareTagConfig(values=("low", "medium", "high")),
        "price_sensitivity": ShareTagConfig(values=("low", "medium", "high")),
        "high_value": ShareTagConfig(values=("true", "false")),
        "spend_365d": ShareTagConfig(bins=(0.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0)),
        "order_count_365d": ShareTagConfig(bins=(1.0, 2.0, 3.0, 5.0, 10.0)),
    }


class ShareConfig(Section):
    """Differentially private aggregates for outside the team (the ``share`` job)."""

    # Privacy loss of one run date's release, split evenly over its tables (an
    # attribution table: half to conversions, half to revenue). Smaller: more noise.
    epsilon: float = Field(1.0, gt=0.0)
    mechanism: Literal["laplace", "gaussian"] = "laplace"
    # Gaussian only (required there, in (0, 1)): the release's delta, split like epsilon.
    delta: float | None = Field(None, validate_default=True)
    # Cells whose noisy count of people is below this are not released.
    min_count: int = Field(10, ge=0)
    # A person counts in at most this many cells of each table (chosen by a hash order).
    max_cells_per_person: int = Field(6, ge=1)
    # A person's attributed revenue is clipped to this total (their credit to 1 conversion).
    revenue_clip: float = Field(2000.0, gt=0.0)
    # Lifetime budget over every release recorded in meta/privacy_budget.
    budget_epsilon: float = Field(10.0, gt=0.0)
    budget_delta: float = Field(1e-5, ge=0.0, lt=1.0)
    # Seed of the noise; null: a fresh random seed per release, recorded nowhere. A fixed
    # seed lets anyone holding the config reproduce the noise: for tests only.
    seed: int | None = None
    # A run date already released is reused and spends nothing; true: release it again
    # (fresh noise, spends the budget again).
    force: bool = False
    releases: ShareReleasesConfig = ShareReleasesConfig()
    # Tags whose distribution is released, each with its public values or bins; a tag
    # set to null is dropped (files merge over these defaults).
    tags: dict[str, ShareTagConfig] = Field(default_factory=_default_tags)
    # Channels released (the key domain); empty: the channels with campaign spend in the
    # attribution window (business data, not personal).
    channels: tuple[str, ...] = ()
    # Rule by which a person's conversions credit channels (window, lookback, granularity,
    # revenue and conversion filter come from attribution.*). Markov and Shapley credit
    # channels, not people, so they cannot bound a person's contribution.
    attribution_model: Literal[
        "first_touch", "last_touch", "linear", "time_decay", "position_based"
    ] = "last_touch"
    # Released tables to <root>/exports/share/run_date=<date>/<release>/.
    export: bool = True
    export_format: Literal["csv", "parquet"] = "csv"

    @field_validator("tags", mode="before")
    @classmethod
    def _drop_nulls(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: v for k, v in value.items() if v is not None}
        return value

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"channels listed twice: {list(value)}")
        return value

    @field_validator("delta")
    @classmethod
    def _delta(cls, value: float | None, info: ValidationInfo) -> float | None:
        if info.data.get("mechanism") == "gaussian" and (value is None or not 0 < value < 1):
            raise ValueError("share.delta must be in (0, 1) with mechanism gaussian")
        return value

    @property
    def enabled(self) -> tuple[str, ...]:
        """The releases switched on, in ``RELEASES`` order."""
        return tuple(r for r in RELEASES if getattr(self.releases, r))

    @model_validator(mode="after")
    def _mechanism(self) -> ShareConfig:
        if self.mechanism == "gaussian":
            # The classic bound sigma = s * sqrt(2 ln(1.25/delta)) / epsilon holds for
            # epsilon <= 1 only: each table's share must stay within it.
            tables = max(len(self.enabled), 1)
            if self.epsilon / tables > 1.0:
                raise ValueError(
                    f"share.epsilon {self.epsilon} over {tables} table(s) gives "
                    f"{self.epsilon / tables:g} per table; the Gaussian bound needs at most 1"
                )
        return self
