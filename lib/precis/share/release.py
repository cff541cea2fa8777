"""Each release's noisy cells: true totals over the public key domain, plus noise.

Every function returns the release's cells *before* suppression: the keys, the noisy
values (rounded, never below 0) and ``released`` (the noisy count of people reaches
``share.min_count``). The true totals never leave the plan: only noisy columns are
selected. Cells come from the public domain (configured segments, tag values and bins,
channels), so a cell that no person is in is released (or suppressed) like any other
and the set of keys says nothing about the data.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis import tables as T
from precis.attribution import journeys, report, rules
from precis.attribution.settings import AttributionConfig
from precis.columns import ONE_ID
from precis.errors import MissingDatasetError
from precis.identity.resolve import isolated_identifiers, resolve
from precis.share import cells
from precis.share.budget import Spend
from precis.share.noise import Calibration, add_noise, derive_seed
from precis.share.settings import ShareConfig, ShareTagConfig


@dataclass(frozen=True)
class ShareInputs:
    """What the enabled releases read; the others stay None."""

    segments: DataFrame | None = None  # gold/segments of the run date
    profile_tags: DataFrame | None = None  # gold/profile_tags of the run date
    touchpoints: DataFrame | None = None  # silver, up to the end of the run date
    orders: DataFrame | None = None
    identity_map: DataFrame | None = None
    guards: DataFrame | None = None
    campaign_spend: DataFrame | None = None


def noisy_counts(
    bounded: DataFrame,
    domain: DataFrame,
    keys: Sequence[str],
    calibration: Calibration,
    seed: int,
    min_count: int,
) -> DataFrame:
    """``keys``, ``people`` (noisy), ``released`` of every domain cell; ``bounded``: a
    row per person and cell, already bounded."""
    counts = bounded.groupBy(*keys).agg(F.count(F.lit(1)).alias("_true"))
    full = add_noise(domain.join(counts, list(keys), how="left"), "_noise", calibration, seed)
    noisy = F.coalesce(F.col("_true"), F.lit(0)) + F.col("_noise")
    return (
        # Post-processing costs no privacy: whole people, never fewer than none.
        full.withColumn("people", F.greatest(F.round(noisy), F.lit(0.0)).cast("long"))
        .select(*keys, "people")
        .withColumn("released", F.col("people") >= F.lit(min_count))
    )


def count_calibration(settings: ShareConfig, budget: Spend, cells_per_person: int) -> Calibration:
    """A count table's mechanism when a person is in at most ``cells_per_person`` cells:
    L1 sensitivity that many, L2 its square root."""
    k = max(min(settings.max_cells_per_person, cells_per_person), 1)
    return Calibration.of(settings.mechanism, k, math.sqrt(k), budget.epsilon, budget.delta)


def segment_sizes(
    members: DataFrame, names: Sequence[str], settings: ShareConfig, budget: Spend, seed: int
) -> tuple[DataFrame, dict[str, Calibration]]:
    """People per configured segment (``gold/segments`` of the run date: consented people)."""
    domain = members.sparkSession.createDataFrame([(n,) for n in names], "segment string")
    keys = ["segment"]
    found = cells.in_domain(members.select(ONE_ID, *keys), domain, keys)
    bounded = cells.bound_contributions(found, keys, settings.max_cells_per_person)
    calibration = count_calibration(settings, budget, len(names))
    noisy = noisy_counts(
        bounded, domain, keys, calibration, derive_seed(seed, "segments"), settings.min_count
    )
    return noisy, {"people": calibration}


def tag_distribution(
    profile_tags: DataFrame, settings: ShareConfig, budget: Spend, seed: int
) -> tuple[DataFrame, dict[str, Calibration]]:
    """People per shared tag and value (or bin), from ``gold/profile_tags`` of the run
    date: a person has at most one value per tag."""
    tags: Mapping[str, ShareTagConfig] = settings.tags
    domain = profile_tags.sparkSession.createDataFrame(
        cells.tag_domain(tags), "tag string, value string"
    )
    keys = ["tag", "value"]
    found = cells.in_domain(cells.tag_cells(profile_tags, tags), domain, keys)
    bounded = cells.bound_contributions(found, keys, settings.max_cells_per_person)
    calibration = count_calibration(settings, budget, len(tags))
    noisy = noisy_counts(
        bounded, domain, keys, calibration, derive_seed(seed, "tags"), settings.min_count
    )
    return noisy, {"people": calibration}


def attribution(
    inputs: ShareInputs,
    settings: ShareConfig,
    budget: Spend,
    seed: int,
    ac: AttributionConfig,
    run_date: dt.date,
) -> tuple[DataFrame, dict[str, Calibration]]:
    """Credited conversions and revenue per channel (half the table's budget each), with
    campaign spend and ROI = (revenue - spend) / spend."""
    window = journeys.AnalysisWindow.ending(run_date, ac.window_days, ac.lookback_days)
    touchpoints, orders, people = inputs.touchpoints, inputs.orders, inputs.identity_map
    if touchpoints is None or orders is None or people is None:
        raise ValueError("the attribution release reads touchpoints, orders and identity_map")
    isolated = isolated_identifiers(inputs.guards) if inputs.guards is not None else None
    touches = journeys.touches(resolve(touchpoints, people, isolated), ac.granularity)
    conversions = journeys.checked_conversions(
        resolve(orders, people, isolated), ac.revenue, ac.conversion_filter
    )
    position = ac.position_based
    weights = rules.RuleSettings(
        ac.time_decay_half_life_days, position.first, position.middle, position.last
    )
    credits = cells.person_credits(
        journeys.journey_touches(touches, conversions, window), settings.attribution_model, weights
    )
    paid = (
        report.spend_by_channel(inputs.campaign_spend, window.start, window.end, ac.granularity)
        if inputs.campaign_spend is not None
        else None
    )
    domain = _channels(touchpoints, settings.channels, paid)
    keys = ["channel"]
    bounded = cells.clip_per_person(
        cells.bound_contributions(
            cells.in_domain(credits, domain, keys), keys, settings.max_cells_per_person
        ),
        settings.revenue_clip,
    )
    half = Spend(budget.release, budget.dataset, budget.epsilon / 2, budget.delta / 2)
    clip = settings.revenue_clip
    found = {
        "conversions": Calibration.of(settings.mechanism, 1.0, 1.0, half.epsilon, half.delta),
        "revenue": Calibration.of(settings.mechanism, clip, clip, half.epsilon, half.delta),
    }
    totals = bounded.groupBy(*keys).agg(
        F.sum("conversions").alias("_conversions"), F.sum("revenue").alias("_revenue")
    )
    full = domain.join(totals, keys, how="left")
    for name, calibration in found.items():
        full = add_noise(
            full, f"_{name}_noise", calibration, derive_seed(seed, "attribution", name)
        )
    conversions_noisy = F.coalesce(F.col("_conversions"), F.lit(0.0)) + F.col("_conversions_noise")
    revenue_noisy = F.coalesce(F.col("_revenue"), F.lit(0.0)) + F.col("_revenue_noise")
    noisy = (
        full.withColumn(
            "conversions", F.greatest(F.round(conversions_noisy), F.lit(0.0)).cast("long")
        )
        .withColumn("revenue", F.greatest(F.round(revenue_noisy, 2), F.lit(0.0)))
        .select(*keys, "conversions", "revenue")
    )
    # Spend is business data, not personal: released as it is, without noise.
    spent = F.col("spend")
    priced = (
        noisy.join(paid, keys, how="left")
        if paid is not None
        else noisy.withColumn("spend", F.lit(None).cast("double"))
    )
    return (
        priced.select(
            *keys,
            F.lit(settings.attribution_model).alias("model"),
            "conversions",
            "revenue",
            "spend",
            F.when(spent > 0, (F.col("revenue") - spent) / spent).alias("roi"),
            F.lit(window.start).alias("window_start"),
            F.lit(window.end).alias("window_end"),
        ).withColumn("released", F.col("conversions") >= F.lit(settings.min_count)),
        found,
    )


def _channels(like: DataFrame, channels: Sequence[str], paid: DataFrame | None) -> DataFrame:
    """The released channels: configured, or those with spend in the window."""
    if channels:
        return like.sparkSession.createDataFrame([(c,) for c in channels], "channel string")
    if paid is None:
        raise MissingDatasetError(
            f"share.channels is empty and {T.CAMPAIGN_SPEND.ref} is absent: list the channels "
            "to release in share.channels"
        )
    return paid.select("channel").distinct()
