"""Identity quality: statistics of the clusters, and scores against a ground truth.

Pairwise scores count pairs of records: precision is the share of record pairs put
under one ``one_id`` that truly belong to one person, recall the share of true
same-person pairs that share a ``one_id``. They are computed from counts per
(one_id, person) cell, so no pair is ever materialized.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# Identifiers per one_id, as histogram buckets (upper bounds).
SIZE_BUCKETS = (1, 2, 3, 5, 10, 20, 50, 100, 1000)

# Records whose key in the truth is a plain identifier value (customers, forget
# requests) cannot be matched to record_identity, which holds only the hash.
SCORED_DATASETS = ("id_observations", "events", "orders", "touchpoints")


def _pairs(n: F.Column) -> F.Column:
    return n * (n - 1) / 2


def pairwise_scores(predicted: DataFrame, truth: DataFrame) -> dict[str, float]:
    """predicted: dataset, source, record_id, one_id; truth: dataset, source, record_id,
    person_id. Scored over records present in both (records without a valid identifier
    have no one_id and are not counted)."""
    keys = ["dataset", "source", "record_id"]
    both = predicted.filter(F.col("dataset").isin(*SCORED_DATASETS)).select(*keys, "one_id").join(
        truth.select(*keys, "person_id"), keys
    )
    cells = both.groupBy("one_id", "person_id").agg(F.count(F.lit(1)).alias("n")).cache()
    try:
        agreed = cells.agg(F.sum(_pairs(F.col("n")))).first()[0] or 0.0
        per_id = cells.groupBy("one_id").agg(F.sum("n").alias("n"), F.count(F.lit(1)).alias("people"))
        predicted_pairs, records, most_people = per_id.agg(
            F.sum(_pairs(F.col("n"))), F.sum("n"), F.max("people")
        ).first()
        true_pairs = cells.groupBy("person_id").agg(F.sum("n").alias("n")).agg(F.sum(_pairs(F.col("n")))).first()[0]
    finally:
        cells.unpersist()
    precision = agreed / predicted_pairs if predicted_pairs else 1.0
    recall = agreed / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "records_scored": float(records or 0),
        "max_people_in_one_id": float(most_people or 0),
    }


def size_histogram(identity_map: DataFrame) -> dict[str, int]:
    """Number of one_ids by identifiers per one_id: {"1": n, "2": n, "3-3": ...}."""
    sizes = identity_map.groupBy("one_id").agg(F.count(F.lit(1)).alias("size"))
    bucket = None
    lower = 1
    labels = []
    for upper in SIZE_BUCKETS:
        label = str(upper) if upper == lower else f"{lower}-{upper}"
        labels.append(label)
        cond = F.col("size") <= upper
        bucket = F.when(cond, F.lit(label)) if bucket is None else bucket.when(cond, F.lit(label))
        lower = upper + 1
    over = f">{SIZE_BUCKETS[-1]}"
    counts = {r[0]: r[1] for r in sizes.groupBy(bucket.otherwise(F.lit(over)).alias("b")).count().collect()}
    return {label: int(counts.get(label, 0)) for label in [*labels, over]}
