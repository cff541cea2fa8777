"""Live profiles: the batch profile with the real-time tags overlaid.

``gold/profiles`` (the latest run date, one row per person, a column per batch tag) with
a column per real-time tag of ``gold/realtime_tags`` (a string, null where the stream
holds no value) and ``realtime_updated_at`` (the stream clock of the person's newest
real-time value). A person the stream has seen and the batch has not (a provisional
one_id, or someone new since the last batch run) has a row with real-time columns only.
A real-time tag named like a batch tag replaces it, as text, where the stream has a
value. Computed when read, not stored: it is as fresh as the two tables.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import ONE_ID

UPDATED = "realtime_updated_at"


def profiles_live(
    profiles: DataFrame | None, realtime_tags: DataFrame, names: Sequence[str]
) -> DataFrame:
    """``profiles`` (one snapshot; None: no batch profile yet) with ``names`` overlaid."""
    names = sorted(names)
    values: list[bool | float | int | str] = list(names)  # no pass to find them
    hot = (
        realtime_tags.groupBy(ONE_ID)
        .pivot("tag", values)
        .agg(F.first("value"))
        .join(
            realtime_tags.groupBy(ONE_ID).agg(F.max("updated_at").alias(UPDATED)),
            ONE_ID,
            how="inner",
        )
    )
    if profiles is None:
        return hot
    both = profiles.alias("b").join(hot.alias("h"), ONE_ID, how="full")
    kept = [F.col(f"b.`{c}`") for c in profiles.columns if c != ONE_ID and c not in names]
    replaced = [
        F.coalesce(F.col(f"h.`{n}`"), F.col(f"b.`{n}`").cast("string")).alias(n)
        if n in profiles.columns
        else F.col(f"h.`{n}`")
        for n in names
    ]
    return both.select(ONE_ID, *kept, *replaced, F.col(f"h.{UPDATED}"))
