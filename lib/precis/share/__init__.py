"""Differentially private aggregates meant to leave the team: ``plan`` and ``build``.

``plan`` weighs a run against the privacy budget recorded so far (and raises before
anything is read when it does not fit); ``build`` computes the planned releases. Neither
reads, writes nor logs to MLflow: the ``share`` job does (docs/share.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis.attribution.settings import AttributionConfig
from precis.columns import RUN_DATE
from precis.errors import ConfigError
from precis.frames import cut_how, materialize
from precis.share import release
from precis.share.budget import LEDGER_SCHEMA, Plan, PrivacyBudgetError, ledger_rows, plan
from precis.share.noise import Calibration
from precis.share.release import ShareInputs
from precis.share.settings import ShareConfig
from precis.tags.templates import NUMERIC

__all__ = [
    "COLUMNS",
    "Plan",
    "PrivacyBudgetError",
    "ShareInputs",
    "ShareOutputs",
    "build",
    "check_keys",
    "plan",
]

_STAMP = ("epsilon", "delta", "mechanism", "released_at")
#: Columns of each release's table, in order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "segments": (RUN_DATE, "release_id", "segment", "people", "noise_sd", *_STAMP),
    "tags": (RUN_DATE, "release_id", "tag", "value", "people", "noise_sd", *_STAMP),
    "attribution": (
        RUN_DATE,
        "release_id",
        "channel",
        "model",
        "conversions",
        "revenue",
        "spend",
        "roi",
        "conversions_noise_sd",
        "revenue_noise_sd",
        "window_start",
        "window_end",
        *_STAMP,
    ),
}


@dataclass(frozen=True)
class ShareOutputs:
    tables: dict[str, DataFrame]  # release -> its released cells (COLUMNS[release])
    ledger: DataFrame  # this run's rows of meta/privacy_budget
    cells: dict[str, dict[str, int]]  # release -> {"released": n, "suppressed": n}
    plan: Plan

    def metrics(self) -> dict[str, float]:
        """Budget spent and left, cells released and suppressed: no cell's value."""
        found = self.plan.metrics()
        for name, counted in self.cells.items():
            found.update({f"cells_{k}_{name}": float(v) for k, v in counted.items()})
        return found


def check_keys(
    settings: ShareConfig, segments: Sequence[str], tag_types: Mapping[str, str]
) -> None:
    """ConfigError unless the enabled releases have keys: segments defined, shared tags
    defined (bins on numeric tags only). ``tag_types``: tag name -> type."""
    enabled = settings.enabled
    if "segments" in enabled and not segments:
        raise ConfigError(
            "share.releases.segments is on but tags.segments defines no segment: turn it off"
        )
    if "tags" not in enabled:
        return
    if not settings.tags:
        raise ConfigError("share.releases.tags is on but share.tags lists no tag: turn it off")
    for name, spec in settings.tags.items():
        if name not in tag_types:
            raise ConfigError(
                f"share.tags.{name}: no such tag (defined: {', '.join(sorted(tag_types))})"
            )
        if spec.bins and tag_types[name] not in NUMERIC:
            raise ConfigError(
                f"share.tags.{name}: bins need a numeric tag, but '{name}' is "
                f"{tag_types[name]}: list its values instead"
            )


def build(
    inputs: ShareInputs,
    settings: ShareConfig,
    found: Plan,
    *,
    segments: Sequence[str],
    attribution: AttributionConfig,
    release_id: str,
    released_at: dt.datetime,
    seed: int,
) -> ShareOutputs:
    """The releases ``found`` plans, noised with ``seed``; suppressed cells left out.

    segments: the configured segment names (the public keys of the segment table).
    attribution: the attribution settings (window, lookback, granularity, revenue).
    """
    tables: dict[str, DataFrame] = {}
    counted: dict[str, dict[str, int]] = {}
    session = None
    for budget in found.spends:
        name = budget.release
        if name == "segments" and inputs.segments is not None:
            noisy, calibrations = release.segment_sizes(
                inputs.segments, segments, settings, budget, seed
            )
        elif name == "tags" and inputs.profile_tags is not None:
            noisy, calibrations = release.tag_distribution(
                inputs.profile_tags, settings, budget, seed
            )
        elif name == "attribution":
            noisy, calibrations = release.attribution(
                inputs, settings, budget, seed, attribution, found.run_date
            )
        else:
            raise ValueError(f"release {name}: its input is missing")
        session = noisy.sparkSession
        # Computed once: the counts below and the table written are the same draws.
        kept, observed = materialize(
            noisy,
            [
                F.count_if(F.col("released")).alias("released"),
                F.count_if(~F.col("released")).alias("suppressed"),
            ],
            how=cut_how(session),
        )
        counted[name] = {k: int(v or 0) for k, v in observed.items()}
        stamps = {
            RUN_DATE: F.lit(found.run_date).cast("date"),
            "release_id": F.lit(release_id),
            **_noise_sd(calibrations),
            "epsilon": F.lit(budget.epsilon),
            "delta": F.lit(budget.delta),
            "mechanism": F.lit(settings.mechanism),
            "released_at": F.lit(released_at).cast("timestamp"),
        }
        released = kept.filter(F.col("released")).withColumns(stamps)
        tables[name] = released.select(*COLUMNS[name])
    if session is None:
        raise ValueError("build needs a plan that releases something")
    ledger = session.createDataFrame(ledger_rows(found, release_id, released_at), LEDGER_SCHEMA)
    return ShareOutputs(tables, ledger, counted, found)


def _noise_sd(calibrations: Mapping[str, Calibration]) -> dict[str, Column]:
    """The noise's standard deviation per value column (public: intervals need it)."""
    if set(calibrations) == {"people"}:
        return {"noise_sd": F.lit(calibrations["people"].sd)}
    return {f"{k}_noise_sd": F.lit(c.sd) for k, c in calibrations.items()}
