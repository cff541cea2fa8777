"""Person-level cells of each release, and the bounds on what one person contributes.

A *cell* is one key of a released table (a segment; a tag and value; a channel). Every
person's cells are first restricted to the public key domain, then bounded:

- a person counts at most once per cell (cells are distinct per person);
- at most ``max_cells`` cells per person and table: the first in the order of
  ``xxhash64(one_id, key)``, a per-person order that depends on nobody else's data;
- in attribution, a person's credit over all channels is scaled to at most one
  conversion and their revenue to at most ``revenue_clip``.

So one person changes a count table by at most ``max_cells`` (L1; sqrt of it in L2),
and the attribution table by at most 1 conversion and ``revenue_clip`` of revenue.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from precis.attribution import rules
from precis.columns import ONE_ID
from precis.share.settings import ShareTagConfig


def bound_contributions(cells: DataFrame, keys: Sequence[str], max_cells: int) -> DataFrame:
    """``cells`` with each person's distinct ``keys`` limited to the ``max_cells`` first in
    the order of ``xxhash64(one_id, *keys)`` (ties, which need a hash collision: by key).

    Other columns ride along; a person's rows must be unique per key (the first of
    several would be kept at random).
    """
    distinct = cells.dropDuplicates([ONE_ID, *keys])
    order = Window.partitionBy(ONE_ID).orderBy(F.xxhash64(ONE_ID, *keys), *keys)
    return (
        distinct.withColumn("_cell", F.row_number().over(order))
        .filter(F.col("_cell") <= max_cells)
        .drop("_cell")
    )


def in_domain(cells: DataFrame, domain: DataFrame, keys: Sequence[str]) -> DataFrame:
    """Cells whose keys are in the public domain (others are never released, so they
    must not use up a person's cells)."""
    return cells.join(F.broadcast(domain.select(*keys).distinct()), list(keys), how="left_semi")


# --------------------------------------------------------------------------- tags
def _number(edge: float) -> str:
    return str(int(edge)) if float(edge).is_integer() else repr(float(edge))


def bin_labels(edges: Sequence[float]) -> list[str]:
    """Labels of the bins of ``edges``: ``<e1``, ``[e1,e2)``, ..., ``>=en``."""
    names = [_number(e) for e in edges]
    inner = [f"[{a},{b})" for a, b in itertools.pairwise(names)]
    return [f"<{names[0]}", *inner, f">={names[-1]}"]


def bin_label(value: Column, edges: Sequence[float]) -> Column:
    """The bin label of a numeric ``value`` (null for null: no bin)."""
    labels = bin_labels(edges)
    out = F.when(value.isNull(), F.lit(None).cast("string"))
    for edge, label in zip(edges, labels, strict=False):
        out = out.when(value < F.lit(float(edge)), F.lit(label))
    return out.otherwise(F.lit(labels[-1]))


def tag_domain(tags: Mapping[str, ShareTagConfig]) -> list[tuple[str, str]]:
    """Every released (tag, value) cell, zero people or not."""
    return [
        (name, value)
        for name, spec in sorted(tags.items())
        for value in (spec.values or bin_labels(spec.bins))
    ]


def tag_cells(profile_tags: DataFrame, tags: Mapping[str, ShareTagConfig]) -> DataFrame:
    """``one_id``, ``tag``, ``value`` of the shared tags: numeric values as bin labels."""
    label: Column = F.lit(None).cast("string")
    for name, spec in sorted(tags.items()):
        value = (
            bin_label(F.col("value").try_cast("double"), spec.bins) if spec.bins else F.col("value")
        )
        label = F.when(F.col("tag") == name, value).otherwise(label)
    return (
        profile_tags.filter(F.col("tag").isin(*sorted(tags)))
        .select(ONE_ID, "tag", label.alias("value"))
        .filter(F.col("value").isNotNull())
    )


# -------------------------------------------------------------------- attribution
def person_credits(journey_rows: DataFrame, model: str, weights: rules.RuleSettings) -> DataFrame:
    """``one_id``, ``channel``, ``conversions``, ``revenue``: each person's credit per
    channel by a rule-based model, over their converting journeys.

    The model's own weights (``rules.touch_weights``) keep only the channel; carrying the
    person inside the channel column brings them through unchanged.
    """
    carried = journey_rows.withColumn("channel", F.struct(ONE_ID, F.col("channel").alias("label")))
    weighted = rules.touch_weights(carried, model, weights)
    return (
        weighted.select(
            F.col("channel")[ONE_ID].alias(ONE_ID),
            F.col("channel")["label"].alias("channel"),
            "weight",
            # A negative value would let one person move a total the other way unbounded.
            F.greatest(F.col("revenue"), F.lit(0.0)).alias("revenue"),
        )
        .groupBy(ONE_ID, "channel")
        .agg(
            F.sum("weight").alias("conversions"),
            F.sum(F.col("weight") * F.col("revenue")).alias("revenue"),
        )
    )


def clip_per_person(credits: DataFrame, revenue_clip: float) -> DataFrame:
    """Each person's credits scaled to at most 1 conversion and ``revenue_clip`` revenue
    in total over their channels (proportionally, so their split stays)."""
    person = Window.partitionBy(ONE_ID)
    conversions = F.sum("conversions").over(person)
    revenue = F.sum("revenue").over(person)
    clip = F.lit(float(revenue_clip))
    return credits.select(
        ONE_ID,
        "channel",
        (F.col("conversions") / F.greatest(conversions, F.lit(1.0))).alias("conversions"),
        F.when(revenue > clip, F.col("revenue") * clip / revenue)
        .otherwise(F.col("revenue"))
        .alias("revenue"),
    )
