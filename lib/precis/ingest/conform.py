"""Bronze -> silver transforms: type, validate, normalize, hash, deduplicate.

Pure DataFrame functions. A bronze batch is split three ways and every row lands in
exactly one place: silver candidates, quarantine (with every reason that applies) or
duplicates (a later or identical row with the same key won).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, DoubleType, StringType, TimestampType

from precis.columns import (
    CORRUPT_RECORD,
    ID_KEY,
    ID_TYPE,
    ID_VALUE,
    INGEST_RUN_ID,
    INGESTED_AT,
    ORDER_ID,
    SOURCE_FILE,
)
from precis.ingest import identifiers as ids
from precis.schemas import DatasetSpec, silver_schema

if TYPE_CHECKING:
    from precis.config import Config
    from precis.ingest.settings import IngestConfig

# Lineage columns that bronze adds to every landed row: where from, which row of the
# file (a hash, and an ordinal among equal rows), and which run when.
ROW_HASH, DUP_ORDINAL = "_row_hash", "_dup_ordinal"
BRONZE_META = (SOURCE_FILE, ROW_HASH, DUP_ORDINAL, INGEST_RUN_ID, INGESTED_AT)
REASONS = "_reasons"
# A line the csv or json reader could not parse (precis.storage.read_landing).
MALFORMED = "malformed_record"
# Identified rows on their way from landing (precis.ingest.protect): the key bronze and
# quarantine keep beside a hashed id_value, and the plain value, which goes no further
# than silver's identifier resolution.
BRONZE_KEY, PLAIN = "_id_key", "_id_plain"
_STAGING = (BRONZE_KEY, PLAIN)

QUARANTINE_COLUMNS = ("dataset", "reason", "raw", *BRONZE_META)

# Lower-cased, folded categorical columns; a listed domain rejects other values.
_CATEGORICAL = ("source", "event_type", "channel", "interaction", "status", "gender")
_DOMAINS: dict[tuple[str, str], tuple[str, ...]] = {("orders", "status"): ("paid", "refunded")}
# Free text keeps its characters (only white space around it goes); every other string
# column names something (a record, an item, a campaign) and is folded like an
# identifier (``identifiers.fold``), so a full-width ``o1`` and ``o1`` are one order.
_FREE_TEXT = ("properties", "title", "category", "brand", "city")


#: The id of each dataset that may be unique only within its source, and the datasets
#: ``ingest.ids_per_source`` names for each (order_items' order_id names an order).
SCOPED_ID = {
    "events": "event_id",
    "orders": ORDER_ID,
    "order_items": ORDER_ID,
    "touchpoints": "touch_id",
}
_SCOPED_BY = {
    "events": "events",
    "orders": "orders",
    "order_items": "orders",
    "touchpoints": "touchpoints",
}


@dataclass(frozen=True)
class ValueChecks:
    """What ``typed`` rejects beyond the contract's types (``ingest`` settings)."""

    # A timestamp more than this many hours after the row was ingested is quarantined.
    max_future_hours: float = 24.0
    # ``ingest.ids_per_source``: datasets whose id silver scopes by source.
    per_source: frozenset[str] = frozenset()

    @classmethod
    def of(cls, ingest: IngestConfig) -> ValueChecks:
        return cls(ingest.max_future_hours, frozenset(ingest.ids_per_source))

    def scopes(self, dataset: str) -> bool:
        """Whether ``dataset``'s id is scoped by its source (``SCOPED_ID``)."""
        return _SCOPED_BY.get(dataset) in self.per_source


DEFAULT_CHECKS = ValueChecks()


@dataclass(frozen=True)
class IdentifierSettings:
    rules: Mapping[str, str]
    country_code: str
    placeholder_values: Mapping[str, Sequence[str]]
    placeholder_patterns: Mapping[str, Sequence[str]]
    pii_types: Sequence[str]
    key: bytes

    @classmethod
    def of(cls, ingest: IngestConfig, pii_types: Sequence[str], key: bytes) -> IdentifierSettings:
        """Ingest's normalization rules, the PII types and the hashing key."""
        return cls(
            rules=ingest.id_rules,
            country_code=ingest.default_country_code,
            placeholder_values=ingest.placeholder_values,
            placeholder_patterns=ingest.placeholder_patterns,
            pii_types=pii_types,
            key=key,
        )

    @classmethod
    def from_config(cls, cfg: Config) -> IdentifierSettings:
        """``of`` the run's config, with the hashing key from the environment."""
        from precis.privacy import resolve_key

        return cls.of(cfg.ingest, cfg.privacy.pii_types, resolve_key(cfg.privacy, cfg.env))


def missing_required_columns(columns: Sequence[str], spec: DatasetSpec) -> list[str]:
    return [c for c in spec.required if c not in columns]


def with_lineage(
    df: DataFrame, landed_columns: Sequence[str], run_id: str, ingested_at: Column
) -> DataFrame:
    """Bronze rows: as landed plus a content hash and an ordinal among identical rows.

    ``(_source_file, _row_hash, _dup_ordinal)`` identifies a landed row without relying
    on file positions, which csv and json readers do not expose.
    """
    row_hash = F.sha2(F.to_json(F.struct(*[F.col(f"`{c}`") for c in landed_columns])), 256)
    ordinal = Window.partitionBy(SOURCE_FILE, ROW_HASH).orderBy(ROW_HASH)
    return (
        df.withColumn(ROW_HASH, row_hash)
        .withColumn(DUP_ORDINAL, F.row_number().over(ordinal))
        .withColumn(INGEST_RUN_ID, F.lit(run_id))
        .withColumn(INGESTED_AT, ingested_at)
    )


def typed(
    bronze: DataFrame,
    spec: DatasetSpec,
    id_rules: Mapping[str, str],
    checks: ValueChecks = DEFAULT_CHECKS,
) -> DataFrame:
    """Contract columns cast to contract types, plus ``_reasons`` and the raw row as JSON.

    Casting uses ``try_cast`` so a bad value becomes a reason, not a failed job. A value
    of white space only (of any script) is missing.
    """
    landed = [c for c in bronze.columns if c not in BRONZE_META and c not in _STAGING]
    # The raw row as bronze holds it: a PII identifier hashed, never its plain value.
    raw = F.to_json(F.struct(*[F.col(f"`{c}`") for c in landed]))
    reasons: list[Column] = []
    values: dict[str, Column] = {}
    for name, dtype in spec.columns:
        if name in bronze.columns:
            plain = name == ID_VALUE and PLAIN in bronze.columns
            source = F.col(PLAIN if plain else f"`{name}`")
            value = _cast(source, bronze.schema[name].dataType, dtype)
            blank = source.isNull() | (ids.strip(source) == "")
        else:
            value, blank = F.lit(None).cast(dtype), F.lit(True)
        if name in _CATEGORICAL:
            value = F.lower(ids.fold(value))
        elif name == "currency":
            value = F.upper(ids.fold(value))
        elif name in _FREE_TEXT:
            value = ids.strip(value)
        elif dtype == StringType() and name != ID_VALUE:
            value = ids.fold(value)
        values[name] = F.when(~blank, value)
        if (spec.name, name) == ("orders", "status"):
            # The contract: a missing status means paid.
            values[name] = F.coalesce(values[name], F.lit("paid"))
        elif (spec.name, name) == ("customers", "consent_updated_at"):
            # A consent without its own time was stated at sign-up (precis.consent).
            values[name] = F.coalesce(values[name], values["signup_time"])
        if name in spec.required:
            reasons.append(F.when(blank, F.lit(f"missing:{name}")))
        reasons.append(F.when(~blank & value.isNull(), F.lit(f"unparsable:{name}")))
        domain = _DOMAINS.get((spec.name, name))
        if domain:
            reasons.append(
                F.when(
                    values[name].isNotNull() & ~values[name].isin(*domain),
                    F.lit(f"bad_value:{name}"),
                )
            )
    if checks.scopes(spec.name):
        reasons.extend(_scope(values, SCOPED_ID[spec.name]))
    columns = [values[name].alias(name) for name, _ in spec.columns]
    if spec.identified:
        id_type = ids.kind(F.col(ID_TYPE))
        known = id_type.isin(*sorted(id_rules)) if id_rules else F.lit(False)
        reasons.append(F.when(id_type.isNotNull() & ~known, F.lit("unknown_id_type")))
    reasons.extend(_range_reasons(spec, values))
    reasons.extend(_future_reasons(spec, values, checks.max_future_hours))
    found = F.array_compact(F.array(*reasons))
    if CORRUPT_RECORD in bronze.columns:
        # The reader could not parse the line: its other columns mean nothing.
        broken = F.col(CORRUPT_RECORD).isNotNull()
        found = F.when(broken, F.array(F.lit(MALFORMED))).otherwise(found)
    out = bronze.select(
        *columns,
        found.alias(REASONS),
        raw.alias("raw"),
        *[F.col(c) for c in BRONZE_META],
        *[F.col(c) for c in (BRONZE_KEY,) if c in bronze.columns],
    )
    if spec.identified:
        out = out.withColumn(ID_TYPE, ids.kind(F.col(ID_TYPE)))
    return out


def _scope(values: dict[str, Column], id_column: str) -> list[Column]:
    """Make ``values[id_column]`` ``<source>:<id>`` (``ids.scoped``); the reasons a row
    cannot have one: no source, or one holding the separator, which would make two
    different (source, id) pairs one id."""
    source = values["source"]
    values[id_column] = ids.scoped(source, values[id_column])
    return [
        F.when(source.isNull(), F.lit("missing:source")),
        F.when(F.contains(source, F.lit(ids.SCOPE)), F.lit("bad_value:source")),
    ]


def reasons(spec: DatasetSpec) -> tuple[str, ...]:
    """Every reason ``typed`` can give a row of ``spec``; a row holds each at most once,
    so counting the rows that hold a reason counts that reason's occurrences."""
    found: list[str] = []
    for name, dtype in spec.columns:
        if name in spec.required:
            found.append(f"missing:{name}")
        found.append(f"unparsable:{name}")
        scoping = name == "source" and spec.name in SCOPED_ID  # may scope the id (_scope)
        if scoping:
            found.append("missing:source")
        checked = (spec.name, name) in _DOMAINS or (spec.name, name) in _FLOORS_BY
        if checked or scoping or dtype == DoubleType():
            found.append(f"bad_value:{name}")
        if dtype == TimestampType():
            found.append(f"future_time:{name}")
    if spec.identified:
        found.append("unknown_id_type")
    found.append(MALFORMED)
    return tuple(found)


def _cast(source: Column, landed: DataType, target: DataType) -> Column:
    if landed == target:
        return source
    # Through string, so a json number or a csv text both parse the same way.
    return source.cast(StringType()).try_cast(target)


# Values a typed column may not take (money and counts are never negative).
_FLOORS: dict[str, tuple[tuple[str, float, bool], ...]] = {
    "orders": (("amount", 0, False),),
    "order_items": (("quantity", 0, True), ("unit_price", 0, False)),
    "items": (("price", 0, False),),
    "campaign_spend": (("spend", 0, False),),
    "touchpoints": (("cost", 0, False),),
    "experiments": (("weight", 0, True),),
}


_FLOORS_BY = {(d, name): (floor, strict) for d, f in _FLOORS.items() for name, floor, strict in f}


def _range_reasons(spec: DatasetSpec, values: Mapping[str, Column]) -> list[Column]:
    """``bad_value:<column>`` below a floor, and for a number that is not finite (NaN,
    Infinity, and ``1e400``, which parses as Infinity): they would poison every sum."""
    out = []
    for name, dtype in spec.columns:
        value, bad = values[name], F.lit(False)
        floor = _FLOORS_BY.get((spec.name, name))
        if floor is not None:
            bad = value <= floor[0] if floor[1] else value < floor[0]
        if dtype == DoubleType():
            bad = bad | F.isnan(value) | (F.abs(value) == float("inf"))
        if floor is not None or dtype == DoubleType():
            out.append(F.when(F.coalesce(bad, F.lit(False)), F.lit(f"bad_value:{name}")))
    return out


def _future_reasons(spec: DatasetSpec, values: Mapping[str, Column], hours: float) -> list[Column]:
    """``future_time:<column>``: a time more than ``hours`` after the row was ingested
    is a clock or format error, and under newer-wins it would block every later
    correction of its record."""
    limit = F.unix_seconds(F.col(INGESTED_AT)) + F.lit(int(hours * 3600))
    return [
        F.when(F.unix_seconds(values[name]) > limit, F.lit(f"future_time:{name}"))
        for name, dtype in spec.columns
        if dtype == TimestampType()
    ]


def split(typed_df: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(valid rows, rows with at least one reason)."""
    bad = F.size(F.col(REASONS)) > 0
    return typed_df.filter(~bad).drop(REASONS), typed_df.filter(bad)


def quarantine_rows(rejected: DataFrame, dataset: str) -> DataFrame:
    return rejected.select(
        F.lit(dataset).alias("dataset"),
        F.array_join(F.col(REASONS), ";").alias("reason"),
        F.col("raw"),
        *[F.col(c) for c in BRONZE_META],
        *[F.col(c) for c in (BRONZE_KEY,) if c in rejected.columns],
    )


def resolve_identifiers(valid: DataFrame, settings: IdentifierSettings) -> DataFrame:
    """Replace ``id_value`` by ``id_key`` (keyed hash for PII types) and ``id_status``."""
    # id_type is already a kind (``typed``); the value is folded once, in a column.
    normalized = ids.normalize_by_type(
        F.col(ID_TYPE), F.col(ids.FOLDED), settings.rules, settings.country_code
    )
    status = ids.status_by_type(
        F.col(ID_TYPE),
        F.col("_id_norm"),
        F.col(ID_VALUE),
        settings.rules,
        settings.placeholder_values,
        settings.placeholder_patterns,
        settings.country_code,
    )
    from precis import privacy

    is_pii = F.col(ID_TYPE).isin(*settings.pii_types) if settings.pii_types else F.lit(False)
    key = F.when(is_pii, privacy.hmac_hex(F.col("_id_norm"))).otherwise(F.col("_id_norm"))
    # The key joins the rows as data (never a literal in the plan); the select below
    # keeps only the frame's own columns, so its pad columns go no further.
    with_key = (
        privacy.with_key(valid, settings.key)
        .withColumn(ids.FOLDED, ids.fold(F.col(ID_VALUE)))
        .withColumn("_id_norm", normalized)
        .withColumn("id_status", status)
        .withColumn(ID_KEY, F.when(F.col("id_status") == ids.STATUS_OK, key))
    )
    ordered = []
    for c in valid.columns:
        if c == ID_VALUE:
            ordered += [ID_KEY, "id_status"]
        elif c != "raw":
            ordered.append(c)
    # The plain value and its normalized form go no further than this select.
    return with_key.select(*ordered)


def deduplicate(
    valid: DataFrame, keys: Sequence[str], order_by: str | None
) -> tuple[DataFrame, DataFrame]:
    """(one row per key, the rows that lost). The latest ``order_by`` wins; ties break
    on the row hash so reruns keep the same row."""
    order = [F.col(order_by).desc_nulls_last()] if order_by else []
    if "consent_marketing" in valid.columns:
        # Two consent statements of one identifier at one time: the denial wins, as it
        # does between a person's identifiers (precis.consent).
        order.append(F.coalesce(F.col("consent_marketing"), F.lit(False)).asc())
    window = Window.partitionBy(*keys).orderBy(
        *order, F.col(ROW_HASH).desc(), F.col(SOURCE_FILE), F.col(DUP_ORDINAL)
    )
    ranked = valid.withColumn("_rank", F.row_number().over(window))
    return ranked.filter("_rank = 1").drop("_rank"), ranked.filter("_rank > 1").drop("_rank")


def silver_columns(spec: DatasetSpec) -> list[str]:
    return silver_schema(spec.name).fieldNames()
