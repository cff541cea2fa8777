"""What the guards removed, as ``gold/identity_guards`` rows, and the counts a run reports.

A row names the identifier (and for a link, the other end) by type and key, never by
node id. Placeholders are counted per dataset and type as ingest blocked them; an
oversized record is one row. An incremental run carries over the last run's rows of
the identifiers it did not recluster, so every run date's audit is complete.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis.columns import ID_KEY, ID_TYPE, RECORD_ID, RUN_DATE, RUN_ID
from precis.frames import cut
from precis.identity.graph import AUDIT_SCHEMA
from precis.identity.records import blocked_counts, node_id

COLUMNS = ("guard", ID_TYPE, ID_KEY, "other_type", "other_key", "detail", "records")
ROWS_SCHEMA = f"run_date date, run_id string, {AUDIT_SCHEMA}"
# Every guard that writes rows; placeholders are counted in rows, the others in
# identifiers or links.
GUARDS = (
    "placeholder",
    "record_too_large",
    "over_linked",
    "rule_block",
    "never_link",
    "force_link",
    "type_limit",
    "weak_ambiguous",
    # Not a removal: a weak identifier that joined two clusters, one row per cluster.
    "weak_bridge",
)
# Recounted on every run rather than carried over.
RECOUNTED = ("placeholder", "record_too_large")


def guard_rows(
    audit: DataFrame,
    oversized: DataFrame,
    ids: DataFrame,
    silver: Mapping[str, DataFrame],
    *,
    run_date: dt.date,
    run_id: str,
) -> DataFrame:
    """run_date, run_id and :data:`AUDIT_SCHEMA` rows of this run's guards.

    audit: guard, node, other, detail, records (``graph.resolve``). oversized: source,
    record_id, ids (``links.record_links``). ids: node, id_type, id_key.
    """
    keyed = ids.select("node", ID_TYPE, ID_KEY)
    described = (
        audit.join(keyed, "node", how="left")
        .join(
            keyed.withColumnsRenamed({"node": "other", ID_TYPE: "other_type", ID_KEY: "other_key"}),
            "other",
            how="left",
        )
        .select(*COLUMNS)
    )
    big = oversized.select(
        F.lit("record_too_large").alias("guard"),
        F.lit(None).cast("string").alias(ID_TYPE),
        F.lit(None).cast("string").alias(ID_KEY),
        F.lit(None).cast("string").alias("other_type"),
        F.lit(None).cast("string").alias("other_key"),
        F.format_string("%s record %s carries %d identifiers", "source", RECORD_ID, "ids").alias(
            "detail"
        ),
        F.lit(1).cast("long").alias("records"),
    )
    placeholders = blocked_counts(silver).select(
        F.lit("placeholder").alias("guard"),
        ID_TYPE,
        F.lit(None).cast("string").alias(ID_KEY),
        F.lit(None).cast("string").alias("other_type"),
        F.lit(None).cast("string").alias("other_key"),
        F.format_string("%s rows with a placeholder value (blocked at ingest)", "dataset").alias(
            "detail"
        ),
        F.col("count").alias("records"),
    )
    return (
        described.unionByName(big)
        .unionByName(placeholders)
        .select(F.lit(run_date).alias(RUN_DATE), F.lit(run_id).alias(RUN_ID), "*")
    )


def carried_guards(
    previous: DataFrame | None, reclustered: DataFrame, *, run_date: dt.date, run_id: str
) -> DataFrame:
    """The last run's guard rows of identifiers this run did not recluster: their guards'
    decisions stand. previous: ``gold/identity_guards`` as stored, or None."""
    if previous is None:
        return reclustered.sparkSession.createDataFrame([], ROWS_SCHEMA)
    latest = previous.agg(F.max(RUN_DATE)).collect()[0][0]
    carried = (
        previous.filter((F.col(RUN_DATE) == F.lit(latest)) & ~F.col("guard").isin(*RECOUNTED))
        .withColumn("node", node_id())
        .join(reclustered, "node", how="left_anti")
        .select(F.lit(run_date).alias(RUN_DATE), F.lit(run_id).alias(RUN_ID), *COLUMNS)
    )
    # Pinned: this run date's rows of the same table are replaced with these.
    return cut(carried)


def guard_metrics() -> list[Column]:
    """Aggregates over guard rows for :func:`guard_counts`, observed while they are computed."""
    metrics = [F.count(F.lit(1)).alias("rows")]
    for guard in GUARDS:
        mine = F.col("guard") == guard
        metrics.append(F.count_if(mine).alias(guard))
        metrics.append(F.sum(F.when(mine, F.col("records"))).alias(f"{guard}_records"))
    return metrics


def guard_counts(observed: Mapping[str, Any]) -> dict[str, int]:
    """Guard -> rows (placeholder) or identifiers and links (the others), for the guards
    that wrote any row."""
    if sum(int(observed[g]) for g in GUARDS) != int(observed["rows"]):
        raise ValueError(f"guard rows of a guard not in {GUARDS}")
    return {
        guard: int(observed[f"{guard}_records"] if guard == "placeholder" else observed[guard])
        for guard in GUARDS
        if observed[guard]
    }
