"""Landed rows on their way to bronze: PII hashed, forgotten people's rows dropped.

Bronze and quarantine keep rows as landed, except the identifier: for PII types (and
for types the config does not know, which may be PII too) ``id_value`` holds the keyed
hash of the normalized value, which for a valid value is silver's ``id_key``
(``bronze.keep_plain_pii`` keeps bronze's plain value; quarantine is hashed always).
Every identified row also carries ``_id_key``, the key silver would give it whatever its
status, so the ``forget`` job finds a person's rows in bronze and quarantine by key.

Rows of a suppressed identifier (``meta/suppressions``, written by ``forget``) never
reach bronze: for ``id_observations`` every row of a record that holds one, for
``order_items`` the items of a suppressed order. They are counted, not quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Observation, Window
from pyspark.sql import functions as F

from precis import privacy
from precis.columns import CORRUPT_RECORD, ID_KEY, ID_TYPE, ID_VALUE, ORDER_ID, RECORD_ID
from precis.ingest import conform
from precis.ingest import identifiers as ids
from precis.schemas import DatasetSpec

BRONZE_KEY, PLAIN = conform.BRONZE_KEY, conform.PLAIN
#: Suppression entries of this type name a forgotten person's order (plain order id).
ORDER_SUPPRESSION = ORDER_ID
SUPPRESSED = "suppressed"
FLAG = "_suppressed"


@dataclass(frozen=True)
class Staged:
    bronze: DataFrame  # the rows bronze stores (suppressed rows left out)
    batch: DataFrame  # the same rows, identifiers plain in ``_id_plain``, for build_batch
    observation: Observation  # ``suppressed``: rows left out, once bronze is written


def with_bronze_key(
    df: DataFrame, settings: conform.IdentifierSettings, name: str = BRONZE_KEY
) -> DataFrame:
    """``df`` (with ``id_type``, ``id_value`` and ``privacy.with_key``'s pad columns) with
    ``name``: the key of its identifier as silver would store it, whatever its status
    (``bronze_key``)."""
    folded = ids.with_folded(df, ID_TYPE, ID_VALUE)
    key = bronze_key(F.col(ids.KIND), F.col(ids.FOLDED), settings)
    return folded.withColumn(name, key).drop(ids.KIND, ids.FOLDED)


def bronze_key(kind: Column, folded: Column, settings: conform.IdentifierSettings) -> Column:
    """The key of an identifier (its ``kind`` and ``fold``-ed value) as silver would store
    it, whatever its status: keyed hash of the normalized value for PII types, the
    normalized value for other known types, the keyed hash of the folded value for
    unknown types. Needs ``privacy.with_key``."""
    present = F.when(folded != "", folded)
    norm = ids.normalize_by_type(kind, present, settings.rules, settings.country_code)
    hashed = F.coalesce(privacy.hmac_hex(norm), privacy.hmac_hex(present))
    pii = kind.isin(*settings.pii_types) if settings.pii_types else F.lit(False)
    known = kind.isin(*sorted(settings.rules)) if settings.rules else F.lit(False)
    return F.when(pii | ~known, hashed).otherwise(norm)


def hides_value(id_type: Column, settings: conform.IdentifierSettings) -> Column:
    """True where bronze stores the key instead of the landed value."""
    kind = ids.kind(id_type)
    pii = kind.isin(*settings.pii_types) if settings.pii_types else F.lit(False)
    known = kind.isin(*sorted(settings.rules)) if settings.rules else F.lit(False)
    return F.coalesce(pii | ~known, F.lit(True))


def stage(
    landed: DataFrame,
    spec: DatasetSpec,
    settings: conform.IdentifierSettings,
    lineage: tuple[list[str], str, Column],
    suppressions: DataFrame | None,
    keep_plain_pii: bool,
) -> Staged:
    """Bronze's rows and ``build_batch``'s input from the landed rows. ``lineage`` is
    (landed columns, run id, ingested-at column) for ``conform.with_lineage``;
    ``suppressions`` has ``id_type``, ``id_key`` (None: nobody is suppressed)."""
    columns, run_id, ingested_at = lineage
    df = flagged(landed, spec, settings, suppressions)
    if spec.identified:
        hide = hides_value(F.col(ID_TYPE), settings)
        df = df.withColumn(PLAIN, F.col(ID_VALUE).cast("string")).withColumn(
            ID_VALUE, F.when(hide, F.col(BRONZE_KEY)).otherwise(F.col(ID_VALUE))
        )
    # The row hash is taken over the hashed row, so it is the same with keep_plain_pii.
    lined = conform.with_lineage(df, columns, run_id, ingested_at)
    observation = Observation(SUPPRESSED)
    kept = lined.observe(observation, F.count_if(F.col(FLAG)).alias(SUPPRESSED))
    kept = kept.filter(~F.col(FLAG)).drop(FLAG)
    bronze = kept
    if spec.identified:
        plain = F.col(PLAIN) if keep_plain_pii else F.col(ID_VALUE)
        bronze = kept.withColumn(ID_VALUE, plain).drop(PLAIN)
    batch = lined.filter(~F.col(FLAG)).drop(FLAG)
    return Staged(bronze=bronze, batch=batch, observation=observation)


def flagged(
    landed: DataFrame,
    spec: DatasetSpec,
    settings: conform.IdentifierSettings,
    suppressions: DataFrame | None,
) -> DataFrame:
    """``landed`` with ``_id_key`` (identified datasets) and the boolean ``_suppressed``
    (``FLAG``): true on the rows ``stage`` leaves out. Any landed column types will do."""
    df = landed
    if spec.identified or CORRUPT_RECORD in df.columns:
        df = privacy.with_key(df, settings.key)
        if spec.identified:
            df = with_bronze_key(df, settings)
        if CORRUPT_RECORD in df.columns:
            # A line the reader could not parse may hold anything, PII included: bronze
            # and quarantine keep its keyed hash; the landed file keeps the text.
            df = df.withColumn(CORRUPT_RECORD, privacy.hmac_hex(F.col(CORRUPT_RECORD)))
        df = privacy.drop_key(df)
    return suppress(df, spec, suppressions)


def suppress(df: DataFrame, spec: DatasetSpec, suppressions: DataFrame | None) -> DataFrame:
    """``df`` with the boolean ``_suppressed``: a join with the (small) suppression list."""
    if suppressions is None:
        return df.withColumn(FLAG, F.lit(False))
    if spec.identified:
        ids_ = suppressions.filter(F.col(ID_TYPE) != ORDER_SUPPRESSION).select(
            F.col(ID_TYPE).alias("_s_type"), F.col(ID_KEY).alias("_s_key")
        )
        hit = df.join(
            F.broadcast(ids_.distinct()),
            (ids.kind(F.col(ID_TYPE)) == F.col("_s_type")) & (F.col(BRONZE_KEY) == F.col("_s_key")),
            how="left",
        ).withColumn(FLAG, F.col("_s_key").isNotNull())
        hit = hit.drop("_s_type", "_s_key")
        if spec.name == "id_observations":
            # A record is evidence about one person: all of it goes with them.
            record = Window.partitionBy("source", RECORD_ID)
            hit = hit.withColumn(FLAG, F.max(F.col(FLAG)).over(record))
        return hit
    if ORDER_ID in df.columns and spec.name == "order_items":
        orders = suppressions.filter(F.col(ID_TYPE) == ORDER_SUPPRESSION).select(
            F.col(ID_KEY).alias("_s_order")
        )
        return (
            df.join(
                F.broadcast(orders.distinct()),
                ids.is_order(df.columns, F.col("_s_order")),
                how="left",
            )
            .withColumn(FLAG, F.col("_s_order").isNotNull())
            .drop("_s_order")
        )
    return df.withColumn(FLAG, F.lit(False))
