"""Real-time tags: what ``stream.tags`` declares, over the activity the stream keeps.

Every tag is a function of the activity rows and the stream's clock (the latest event
time seen): a count of the rows in the ``window_minutes`` ending at the clock, or a
field of the person's latest row. Computing them for everyone at a clock gives exactly
what the stream holds at that clock, because a micro-batch recomputes every person whose
value may have changed since the previous clock: those with new rows, and those with a
row leaving one of the windows (``touched``). Pure functions over DataFrames.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis.columns import ITEM_ID, ONE_ID
from precis.stream.settings import HotTagConfig, StreamConfig

TAG_COLUMNS = (ONE_ID, "tag", "value", "updated_at")
_FIELD = {"time": "at", "item": ITEM_ID, "channel": "channel"}


def _stamp(clock: dt.datetime) -> Column:
    return F.lit(clock).cast("timestamp")


def _matches(tag: HotTagConfig) -> Column:
    """Rows of the tag's dataset (paid orders for orders) and event types."""
    cond = F.col("dataset") == tag.dataset
    if tag.event_types and tag.dataset == "events":
        cond = cond & F.col("kind").isin(*tag.event_types)
    return cond


def _value(tag: HotTagConfig, settings: StreamConfig, clock: dt.datetime) -> Column:
    minutes = tag.window_minutes or settings.retention_hours * 60
    inside = _matches(tag) & (F.col("at") > _stamp(clock - dt.timedelta(minutes=minutes)))
    if tag.template == "count":
        found = F.count_if(inside)
        return F.when(found > 0, found.cast("string"))
    assert tag.field is not None
    field = F.col(_FIELD[tag.field])
    # Among rows at the same time, the greatest id: the same row on every run.
    latest = F.max_by(F.when(inside, field), F.when(inside, F.struct("at", "activity_id")))
    return latest.cast("string")


def tags(activity: DataFrame, settings: StreamConfig, clock: dt.datetime) -> DataFrame:
    """Every tag of every person in ``activity`` at ``clock`` (``TAG_COLUMNS``; null
    ``value`` where the person has none): one aggregation, whatever the number of tags.
    Rows after the clock are not read."""
    names = sorted(settings.tags)
    values = [_value(settings.tags[n], settings, clock).alias(n) for n in names]
    per_person = activity.filter(F.col("at") <= _stamp(clock)).groupBy(ONE_ID).agg(*values)
    pairs = F.array(*[F.struct(F.lit(n).alias("tag"), F.col(n).alias("value")) for n in names])
    return per_person.select(ONE_ID, F.inline(pairs)).withColumn("updated_at", _stamp(clock))


def for_people(
    people: DataFrame, activity: DataFrame, settings: StreamConfig, clock: dt.datetime
) -> DataFrame:
    """``tags`` of ``people`` (one_id), one row per person and tag, null where the person
    has no value, including people with no activity left: a MERGE of these rows deletes
    the values that are gone."""
    mine = activity.join(people.distinct(), ONE_ID, how="left_semi")
    names = F.array(*[F.lit(n) for n in sorted(settings.tags)])
    grid = people.distinct().select(ONE_ID, F.explode(names).alias("tag"))
    found = tags(mine, settings, clock).drop("updated_at")
    out = grid.join(found, [ONE_ID, "tag"], how="left")
    return out.withColumn("updated_at", _stamp(clock)).select(*TAG_COLUMNS)


def touched(
    activity: DataFrame,
    new: DataFrame,
    settings: StreamConfig,
    before: dt.datetime | None,
    clock: dt.datetime,
) -> DataFrame:
    """The people (one_id) whose tags may differ between clocks ``before`` and ``clock``:
    those with ``new`` rows, and those with a row whose age passes one of the windows
    (a row at ``at`` leaves a window of ``w`` minutes once the clock passes ``at + w``).
    Everyone in ``activity`` when there is no earlier clock."""
    if before is None:
        return activity.select(ONE_ID).union(new.select(ONE_ID)).distinct()
    leaving = F.lit(False)
    for minutes in settings.window_minutes:
        w = dt.timedelta(minutes=minutes)
        leaving = leaving | F.col("at").between(_stamp(before - w), _stamp(clock - w))
    # ``between`` includes the earlier bound: a person recomputed once more than needed.
    left = activity.filter(leaving).select(ONE_ID)
    return left.union(new.select(ONE_ID)).distinct()
