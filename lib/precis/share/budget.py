"""The privacy budget: what releases have spent, and whether the next one fits.

Every release of the ``share`` job records one row per table in ``meta/privacy_budget``
(``release_id``, ``run_date``, ``released_at``, ``dataset``, ``mechanism``, ``epsilon``,
``delta``). The privacy loss of releases about the same people adds up (basic
composition), so a release is allowed only while the sum over every recorded row plus
what it asks stays within ``share.budget_epsilon`` and ``share.budget_delta``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from precis import tables as T
from precis.columns import RUN_DATE
from precis.errors import ConfigError, PrecisError
from precis.share.settings import ShareConfig

#: Columns of meta/privacy_budget, in order.
LEDGER_SCHEMA = (
    "release_id string, run_date date, released_at timestamp, dataset string, "
    "mechanism string, epsilon double, delta double"
)
# Sums of floats: 10 releases of 0.1 must fit a budget of 1.0.
_SLACK = 1e-9


class PrivacyBudgetError(PrecisError):
    """A release would spend more privacy budget than ``share.budget_*`` allows."""


@dataclass(frozen=True)
class Spend:
    release: str  # segments, tags or attribution
    dataset: str  # the table it fills, layer/name
    epsilon: float
    delta: float


@dataclass(frozen=True)
class Plan:
    """What a run releases and spends, against what is spent already."""

    run_date: dt.date
    mechanism: str
    spends: tuple[Spend, ...]  # releases made now
    reused: tuple[str, ...]  # releases of the run date already recorded: kept, free
    spent_epsilon: float  # before this run, over every recorded release
    spent_delta: float
    budget_epsilon: float
    budget_delta: float

    @property
    def releases(self) -> tuple[str, ...]:
        return tuple(s.release for s in self.spends)

    @property
    def epsilon(self) -> float:
        return sum(s.epsilon for s in self.spends)

    @property
    def delta(self) -> float:
        return sum(s.delta for s in self.spends)

    def get(self, release: str) -> Spend:
        return next(s for s in self.spends if s.release == release)

    def metrics(self) -> dict[str, float]:
        """What the run spends and what is left, for MLflow."""
        spent = self.spent_epsilon + self.epsilon
        return {
            "epsilon_spent": self.epsilon,
            "delta_spent": self.delta,
            "epsilon_spent_total": spent,
            "epsilon_remaining": self.budget_epsilon - spent,
            "delta_remaining": self.budget_delta - self.spent_delta - self.delta,
            "releases_reused": float(len(self.reused)),
        }


def table_share(settings: ShareConfig) -> tuple[float, float]:
    """(epsilon, delta) of each enabled table: the release's, split evenly."""
    tables = len(settings.enabled)
    delta = (settings.delta or 0.0) / tables if settings.mechanism == "gaussian" else 0.0
    return settings.epsilon / tables, delta


def plan(ledger: Sequence[Mapping[str, Any]], settings: ShareConfig, run_date: dt.date) -> Plan:
    """The run's plan from the recorded rows of meta/privacy_budget (``ledger``).

    A table already released for ``run_date`` is reused (nothing spent) unless
    ``share.force``. Raises ``PrivacyBudgetError`` when the rest would exceed the budget.
    """
    if not settings.enabled:
        raise ConfigError("share.releases: every release is off, so there is nothing to share")
    epsilon, delta = table_share(settings)
    done = {r["dataset"] for r in ledger if r[RUN_DATE] == run_date}
    spends, reused = [], []
    for release in settings.enabled:
        dataset = T.SHARED[release].ref
        if dataset in done and not settings.force:
            reused.append(release)
        else:
            spends.append(Spend(release, dataset, epsilon, delta))
    found = Plan(
        run_date,
        settings.mechanism,
        tuple(spends),
        tuple(reused),
        sum(float(r["epsilon"]) for r in ledger),
        sum(float(r["delta"]) for r in ledger),
        settings.budget_epsilon,
        settings.budget_delta,
    )
    _within_budget(found, releases=len({r["release_id"] for r in ledger}))
    return found


def _within_budget(found: Plan, releases: int) -> None:
    if not found.spends:  # a rerun reusing its release spends nothing, whatever the budget
        return
    over_epsilon = found.spent_epsilon + found.epsilon > found.budget_epsilon * (1 + _SLACK)
    over_delta = found.spent_delta + found.delta > found.budget_delta * (1 + _SLACK) + _SLACK
    if not (over_epsilon or over_delta):
        return
    raise PrivacyBudgetError(
        f"privacy budget exceeded, nothing released: releasing {', '.join(found.releases)} "
        f"for {found.run_date} asks epsilon {found.epsilon:g} (delta {found.delta:g}), but "
        f"{releases} earlier release(s) in {T.PRIVACY_BUDGET.ref} spent epsilon "
        f"{found.spent_epsilon:g} of share.budget_epsilon {found.budget_epsilon:g} (delta "
        f"{found.spent_delta:g} of share.budget_delta {found.budget_delta:g}). Release less "
        "(share.releases.*, a smaller share.epsilon) or, if your privacy policy allows a "
        "larger total loss, raise the budget: --set share.budget_epsilon=<total> "
        "(share.budget_delta=<total> for delta)"
    )


def ledger_rows(found: Plan, release_id: str, released_at: dt.datetime) -> list[tuple[Any, ...]]:
    """The rows this run adds to meta/privacy_budget (``LEDGER_SCHEMA``)."""
    return [
        (release_id, found.run_date, released_at, s.dataset, found.mechanism, s.epsilon, s.delta)
        for s in found.spends
    ]
