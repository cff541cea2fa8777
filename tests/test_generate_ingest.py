"""generate -> ingest on a small synthetic retailer with corruption switched on.

The acceptance checks of the data issue: every corrupted row is quarantined with a
reason and nothing else is; every dataset balances; no plain email or phone survives
into silver; a second ingest leaves silver exactly as it was.
"""

from __future__ import annotations

from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from conftest import assert_no_plain
from precis import privacy
from precis import tables as T
from precis.config import DATASETS
from precis.generate.corrupt import CORRUPTED_DATASETS
from precis.generate.landing import landed_columns
from precis.ingest import protect
from precis.ingest.conform import IdentifierSettings
from precis.jobs import ingest


def _string_schema(dataset: str) -> StructType:
    return StructType([StructField(n, StringType()) for n, _ in landed_columns(dataset)])


def test_every_dataset_is_ingested_and_balances(world):
    _, lake, summaries = world
    assert set(summaries) == set(DATASETS)
    for name, s in summaries.items():
        assert s.balanced(), name
        assert s.rows_in > 0 and not s.error, name
        assert lake.exists(T.SILVER[name])


def _as_quarantined(rows, settings):
    """Truth's landed rows as quarantine keeps them: identifiers of PII (or unknown) types
    as their keyed hash, never plain."""
    if "id_value" not in rows.columns:
        return rows
    keyed = protect.with_bronze_key(privacy.with_key(rows, settings.key), settings, "_k")
    hidden = F.when(protect.hides_value(F.col("id_type"), settings), F.col("_k")).otherwise(
        F.col("id_value")
    )
    return privacy.drop_key(keyed.withColumn("id_value", hidden).drop("_k"))


def test_quarantine_holds_exactly_the_corrupted_rows(spark, world):
    cfg, lake, summaries = world
    settings = IdentifierSettings.from_config(cfg)
    truth = lake.read(T.TRUTH["corruptions"])
    quarantine = lake.read(T.QUARANTINE)
    for dataset in CORRUPTED_DATASETS:
        schema = _string_schema(dataset)
        cols = [f"r.{c}" for c, _ in landed_columns(dataset)]
        landed = (
            truth.filter((F.col("dataset") == dataset) & (F.col("kind") != "duplicate"))
            .select(F.from_json("raw", schema).alias("r"))
            .select(*cols)
        )
        expected = _as_quarantined(landed, settings)
        got = (
            quarantine.filter(F.col("dataset") == dataset)
            .select(F.from_json("raw", schema).alias("r"))
            .select(*cols)
        )
        assert expected.count() > 0, dataset
        assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
        # Planted duplicates are dropped as duplicates, never quarantined.
        planted_dupes = truth.filter(
            (F.col("dataset") == dataset) & (F.col("kind") == "duplicate")
        ).count()
        assert summaries[dataset].duplicates_in_batch >= planted_dupes
    # Datasets without planted corruption have no quarantined rows.
    others = quarantine.filter(~F.col("dataset").isin(*CORRUPTED_DATASETS)).count()
    assert others == 0


def test_reasons_name_the_corruption(world):
    _, lake, _ = world
    reasons = {
        r[0].split(":")[0] for r in lake.read(T.QUARANTINE).select("reason").distinct().collect()
    }
    assert reasons == {"missing", "unparsable", "unknown_id_type"}


def test_no_plain_email_or_phone_in_silver(world, plain_identifiers):
    _, lake, _ = world
    assert plain_identifiers.count() > 100
    for dataset in DATASETS:
        assert_no_plain(lake, "silver", dataset, plain_identifiers)


def test_second_ingest_leaves_silver_identical(spark, world):
    cfg, lake, _ = world
    before = {d: (lake.version(T.SILVER[d]), lake.read(T.SILVER[d]).collect()) for d in DATASETS}
    again = ingest.run(spark, cfg)
    assert all(s.rows_in == 0 for s in again.values())
    for d, (version, rows) in before.items():
        assert lake.version(T.SILVER[d]) == version
        df = lake.read(T.SILVER[d])
        assert_df_equality(df, spark.createDataFrame(rows, df.schema), ignore_row_order=True)


def test_no_plain_email_or_phone_in_bronze_or_quarantine(world, plain_identifiers):
    _, lake, _ = world
    for dataset in ("id_observations", "events", "orders", "touchpoints", "customers"):
        assert_no_plain(lake, "bronze", dataset, plain_identifiers)
    raw = lake.read(T.QUARANTINE).select(F.get_json_object("raw", "$.id_value").alias("value"))
    assert raw.join(plain_identifiers, "value", "inner").count() == 0
