"""Marketing consent per person: the one rule every activation output applies.

Each customer row is a consent statement made at the row's time: ``consent_updated_at``,
or ``signup_time`` where the row has none. Per person, across all their customer rows,
the latest statement wins; a denial wins a tie; a row saying nothing denies. So a
withdrawal landed with a later time removes the person from the next segments and
exports, and a later grant restores them.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis.columns import ONE_ID

#: The time of a row's statement: its own, else the sign-up's (the first that exists).
STATEMENT_TIME = ("consent_updated_at", "signup_time")


def statement_time(customers: DataFrame) -> Column:
    """When each row of ``customers`` stated its consent (null: unknown, the oldest)."""
    present = [F.col(c) for c in STATEMENT_TIME if c in customers.columns]
    return F.coalesce(*present, F.lit(None).cast("timestamp"))


def marketing_consent(customers: DataFrame | None, people: DataFrame) -> DataFrame:
    """``one_id``, ``consent_marketing`` for everyone in ``people``.

    ``customers`` holds resolved customer rows (``one_id``, ``consent_marketing`` and
    ``consent_updated_at`` / ``signup_time`` where known). True only when the person's
    latest statement says true: a later row replaces an earlier one, a false (or missing)
    value at the same time wins over a true one, rows without any time are older than
    every dated row, and a person without a customer row has no consent on record.
    """
    everyone = people.select(ONE_ID).distinct()
    if customers is None:
        return everyone.withColumn("consent_marketing", F.lit(False))
    denied = ~F.coalesce(F.col("consent_marketing"), F.lit(False))
    # The greatest (time, denied) pair is the latest statement, a denial first among
    # equals; a null time sorts below every time.
    latest = F.max(F.struct(statement_time(customers).alias("at"), denied.alias("denied")))
    said = customers.groupBy(ONE_ID).agg((~latest["denied"]).alias("consent_marketing"))
    return everyone.join(said, ONE_ID, how="left").fillna(False, ["consent_marketing"])
