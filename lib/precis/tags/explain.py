"""Inputs behind one person's tag value: the rows a rule read, or the tags it combined."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.tags.compute import in_window
from precis.tags.definitions import DATASETS, AttributeDef, Tag, TagSet, WindowDef


def closure(tags: TagSet, name: str) -> list[Tag]:
    """The tag and every tag it reads, in evaluation order."""
    wanted = {name}
    for tag in reversed(tags.tags):
        if tag.name in wanted:
            wanted.update(tag.depends)
    return [t for t in tags.tags if t.name in wanted]


def input_rows(tag: Tag, data: DataFrame, as_of: dt.date) -> DataFrame:
    """The person's rows the tag read (``data`` already holds only that person's rows)."""
    spec = tag.spec
    if isinstance(spec, WindowDef):
        rows = in_window(data, spec, as_of)
        ds = DATASETS[spec.dataset]
        shown = [c for c in (*spec.where, spec.field) if c]
        key = [c for c in ds.fields if c.endswith("_id") and c not in shown][:1]
        return rows.select(F.col("_ts").alias(ds.time), *key, *dict.fromkeys(shown)).orderBy(
            ds.time, *key
        )
    if isinstance(spec, AttributeDef):
        # Identifier type only: the key of a PII identifier is a hash, but it says nothing here.
        return data.select("id_type", spec.field).orderBy("id_type", spec.field)
    raise AssertionError(tag.template)
