"""Settings of campaign experiments; see docs/experiments.md.

Each default is written once, here.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from precis.errors import ConfigError
from precis.settings import ONE_ID_FORM, Section


class ExperimentsConfig(Section):
    """Campaign experiments: each arm against control, per metric (docs/experiments.md)."""

    # The arm every other arm of an experiment is compared with.
    control_arm: str = Field("control", min_length=1)
    # A person converts with a paid order in (assigned_at, assigned_at + window_days];
    # an experiment is judged once its last assignment's window has closed.
    window_days: int = Field(14, ge=1)
    # Pre-period revenue, CUPED's covariate: paid orders in the pre_days before assignment.
    pre_days: int = Field(28, ge=0)
    # CUPED with pre-period revenue, for a metric where it narrows the interval.
    cuped: bool = True
    # Also an always-valid interval, safe to look at every day (docs/experiments.md):
    # its mixing standard deviation, as a fraction of the control arm's standard
    # deviation of the metric. null: none.
    sequential_scale: float | None = Field(None, gt=0)
    # A one_id: print that person's part (assignments, orders near them, outcomes)
    # instead of judging; nothing is written. null: judge.
    explain: str | None = None

    @field_validator("explain")
    @classmethod
    def _one_id_only(cls, value: str | None) -> str | None:
        if value is None or ONE_ID_FORM.fullmatch(value):
            return value
        # A ConfigError, not a ValueError: pydantic's message would quote the value.
        raise ConfigError(
            "invalid config: experiments.explain takes a one_id, never an identifier "
            "(a command line or a file would keep it); find the one_id of a member id "
            "with notebooks/inspect_person.py"
        )
