"""Settings of the budget plan and the attribution calibration (the ``budget`` job).

Each default is written once, here; ``conf/base.yaml`` is generated from it. What a
conversion is, the lookback and the rule models' weights are attribution's settings.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from precis.settings import Section


class BudgetChannelConfig(Section):
    """Bounds of one channel's daily spend in the plan."""

    # null: the channel's lowest and highest daily spend in the window (a curve is not
    # trusted beyond the spend it was fitted on).
    min: float | None = Field(None, ge=0.0)
    max: float | None = Field(None, gt=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> BudgetChannelConfig:
        if self.max is not None and self.min is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


class BudgetConfig(Section):
    """Budget plan and attribution calibration (the ``budget`` job); see docs/budget.md."""

    # Days of spend and attributed outcomes, ending on the run date, the curves are fitted on.
    window_days: int = Field(90, ge=14)
    # The rule-based attribution model whose daily credit per channel the curves follow
    # (the calibration table says which model is nearest to measured incrementality).
    model: Literal["first_touch", "last_touch", "linear", "time_decay", "position_based"] = (
        "last_touch"
    )
    # Daily budget to split across the paid channels; null: the window's mean daily spend.
    total: float | None = Field(None, gt=0.0)
    # Per channel (by name): bounds of its daily spend in the plan.
    channels: dict[str, BudgetChannelConfig] = Field(default_factory=dict)
    # Compare every attribution model with the channel holdout experiments (experiments
    # whose arms name a channel in silver/experiments) judged by the run date.
    calibrate: bool = True
    # A plot of the fitted curves with the current and suggested spend to MLflow.
    log_plot: bool = True
