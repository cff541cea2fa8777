"""Marketing consent per person: the one rule every activation output applies."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import ONE_ID


def marketing_consent(customers: DataFrame | None, people: DataFrame) -> DataFrame:
    """``one_id``, ``consent_marketing`` for everyone in ``people``.

    ``customers`` holds resolved customer rows (``one_id``, ``consent_marketing``). True
    only when the person has customer rows and every one of them says true: one row
    saying false (or saying nothing) withdraws consent, and a person without a customer
    row has no consent on record.
    """
    everyone = people.select(ONE_ID).distinct()
    if customers is None:
        return everyone.withColumn("consent_marketing", F.lit(False))
    said = customers.groupBy(ONE_ID).agg(
        F.bool_and(F.coalesce(F.col("consent_marketing"), F.lit(False))).alias("consent_marketing")
    )
    return everyone.join(said, ONE_ID, "left").fillna(False, ["consent_marketing"])
