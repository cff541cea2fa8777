"""Identity quality: statistics of the clusters, and scores against a ground truth.

Pairwise scores count pairs of records: precision is the share of record pairs put
under one ``one_id`` that truly belong to one person, recall the share of true
same-person pairs that share a ``one_id``. They are computed from counts per
(one_id, person) cell, so no pair is ever materialized.

Recall against every true pair is capped by the data: a cookie that never logged in
carries no evidence of whose it is. ``linkable_recall`` counts only the pairs that the
person's own records connect (two records are linkable when a chain of records of that
person, each sharing an identifier with the next, joins them), which is what an
identity graph can recover at best; ``recall_ceiling`` is the share of all true pairs
that are linkable. Identifiers that are no one person's (the generator's traps: a store
hotline typed on strangers' receipts, a family tablet) are no evidence and join nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis.columns import ID_KEY, ID_TYPE, ONE_ID, RECORD_ID
from precis.frames import cut
from precis.identity.components import components_of
from precis.ingest.conform import IdentifierSettings, resolve_identifiers
from precis.ingest.identifiers import kind
from precis.ingest.settings import IngestConfig

# Identifiers per one_id, as histogram buckets (upper bounds).
SIZE_BUCKETS = (1, 2, 3, 5, 10, 20, 50, 100, 1000)

# Records whose key in the truth is a plain identifier value (customers, forget
# requests) cannot be matched to record_identity, which holds only the hash.
SCORED_DATASETS = ("id_observations", "events", "orders", "touchpoints")


def _pairs(n: F.Column) -> F.Column:
    return n * (n - 1) / 2


KEYS = ["dataset", "source", RECORD_ID]


def evidence_groups(
    records: DataFrame,
    truth: DataFrame,
    checkpoint_dir: str | None = None,
    shared: DataFrame | None = None,
) -> DataFrame:
    """dataset, source, record_id, person_id, group: records of one person connected by
    shared identifiers (``group`` is the same for linkable records of one person).

    records: dataset, source, record_id, node, id_type, id_key (one row per record and
    identifier, as ``precis.identity.records.identified_records``). A record and an
    identifier are vertices; the identifier vertex is per person, so a family device
    does not connect two people's records here. shared: id_type, id_key of identifiers
    that are no one person's (the generator's traps, :func:`trap_keys`): they are no
    evidence of whose a record is, so they connect nothing, and a record carrying only
    such identifiers is in no group (linkable to nothing).
    """
    if shared is not None:
        records = records.join(
            F.broadcast(shared.select(ID_TYPE, ID_KEY).distinct()),
            [ID_TYPE, ID_KEY],
            how="left_anti",
        )
    owned = records.select(*KEYS, "node").join(truth.select(*KEYS, "person_id"), KEYS, how="inner")
    record_vertex = F.xxhash64(F.lit("record"), *[F.col(k) for k in KEYS])
    edges = owned.select(record_vertex.alias("src"), F.xxhash64("person_id", "node").alias("dst"))
    components = components_of(edges, checkpoint_dir=checkpoint_dir)
    return (
        owned.select(*KEYS, "person_id", record_vertex.alias("id"))
        .dropDuplicates(KEYS)
        .join(components, "id", how="inner")
        .select(
            *KEYS,
            "person_id",
            F.concat_ws("/", "person_id", F.col("component").cast("string")).alias("group"),
        )
    )


def pairwise_scores(
    predicted: DataFrame, truth: DataFrame, groups: DataFrame | None = None
) -> dict[str, float]:
    """predicted: dataset, source, record_id, one_id; truth: dataset, source, record_id,
    person_id. Scored over records present in both (records without a valid identifier
    have no one_id and are not counted). With ``groups`` (:func:`evidence_groups`) the
    linkable recall and the recall ceiling are scored too."""
    both = (
        predicted.filter(F.col("dataset").isin(*SCORED_DATASETS))
        .select(*KEYS, ONE_ID)
        .join(truth.select(*KEYS, "person_id"), KEYS, how="inner")
    )
    if groups is not None:
        both = both.join(groups.select(*KEYS, "group"), KEYS, how="left")
    else:
        both = both.withColumn("group", F.lit(None).cast("string"))
    cells = both.groupBy(ONE_ID, "person_id", "group").agg(F.count(F.lit(1)).alias("n")).cache()
    try:
        by_person = cells.groupBy(ONE_ID, "person_id").agg(F.sum("n").alias("n"))
        agreed = by_person.agg(F.sum(_pairs(F.col("n")))).collect()[0][0] or 0.0
        per_id = by_person.groupBy(ONE_ID).agg(
            F.sum("n").alias("n"), F.count(F.lit(1)).alias("people")
        )
        predicted_pairs, records, most_people = per_id.agg(
            F.sum(_pairs(F.col("n"))), F.sum("n"), F.max("people")
        ).collect()[0]
        true_pairs = (
            by_person.groupBy("person_id")
            .agg(F.sum("n").alias("n"))
            .agg(F.sum(_pairs(F.col("n"))))
            .collect()[0][0]
        )
        linked = cells.filter(F.col("group").isNotNull())
        agreed_linkable = linked.agg(F.sum(_pairs(F.col("n")))).collect()[0][0] or 0.0
        linkable_pairs = (
            linked.groupBy("group")
            .agg(F.sum("n").alias("n"))
            .agg(F.sum(_pairs(F.col("n"))))
            .collect()[0][0]
        )
    finally:
        cells.unpersist()
    precision = agreed / predicted_pairs if predicted_pairs else 1.0
    recall = agreed / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    scores = {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "records_scored": float(records or 0),
        "max_people_in_one_id": float(most_people or 0),
    }
    if groups is not None:
        scores["linkable_recall"] = (
            float(agreed_linkable / linkable_pairs) if linkable_pairs else 1.0
        )
        scores["recall_ceiling"] = float(linkable_pairs / true_pairs) if true_pairs else 1.0
    return scores


def one_id_sizes(identity_map: DataFrame) -> dict[str, Any]:
    """``one_ids``, ``largest_one_id`` and the histogram buckets (:func:`size_histogram`)
    of an identity map, in one aggregation."""
    sizes = identity_map.groupBy(ONE_ID).agg(F.count(F.lit(1)).alias("size"))
    return sizes.agg(*size_metrics()).collect()[0].asDict()


def size_metrics(size: str = "size") -> list[Column]:
    """Aggregates over one row per one_id (``size``: its identifiers): ``one_ids``,
    ``largest_one_id`` and the histogram buckets read by :func:`size_histogram`."""
    metrics = [F.count(F.lit(1)).alias("one_ids"), F.max(size).alias("largest_one_id")]
    for i, (lower, upper) in enumerate(_buckets()):
        within = F.col(size) >= lower if upper is None else F.col(size).between(lower, upper)
        metrics.append(F.count_if(within).alias(f"size_{i}"))
    return metrics


def size_histogram(observed: Mapping[str, Any]) -> dict[str, int]:
    """Number of one_ids by identifiers per one_id: {"1": n, "2": n, "4-5": ...}, from
    the values of :func:`size_metrics`."""
    return {
        _label(lower, upper): int(observed[f"size_{i}"] or 0)
        for i, (lower, upper) in enumerate(_buckets())
    }


def _buckets() -> list[tuple[int, int | None]]:
    """(lower, upper) bounds of the histogram buckets; the last one has no upper bound."""
    lowers = [1, *(upper + 1 for upper in SIZE_BUCKETS)]
    return [*zip(lowers, SIZE_BUCKETS, strict=False), (lowers[-1], None)]


def _label(lower: int, upper: int | None) -> str:
    if upper is None:
        return f">{lower - 1}"
    return str(upper) if upper == lower else f"{lower}-{upper}"


def trap_keys(
    traps: DataFrame, ingest: IngestConfig, pii_types: Sequence[str], key: bytes
) -> DataFrame:
    """kind, id_type, id_key of the generator's ``truth/traps`` (placeholders, hotlines,
    cafe cookies, family devices, kiosks), normalized and hashed as ingest stores them;
    a value ingest blocks (a placeholder) has no key and is left out."""
    settings = IdentifierSettings.of(ingest, pii_types, key)
    typed = traps.withColumn(ID_TYPE, kind(F.col(ID_TYPE)))
    # Computed before the distinct: an aggregate over the normalization's wide
    # expression fails Spark's code generation (it falls back, after a long stack trace).
    return (
        cut(resolve_identifiers(typed, settings))
        .filter(F.col(ID_KEY).isNotNull())
        .select("kind", ID_TYPE, ID_KEY)
        .distinct()
    )
