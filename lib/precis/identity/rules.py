"""Operators' identity rules: force_link, never_link and block.

A rules table (``identity.rules.path``, any landing format) has the columns ``rule``,
``id_type``, ``id_value``, ``other_type``, ``other_value`` and optionally ``note``.
Values are written as anyone would type them; they are normalized and hashed exactly
as ingest does, so ``+86 139-1234-5678`` matches the phone in silver.

- ``force_link``: the two identifiers are one person, whatever the limits say;
- ``never_link``: the two identifiers are never one person (their direct link is
  dropped and no chain of links may join them);
- ``block``: the identifier links nothing (``other_*`` empty).

A block beats a force_link of the same identifier.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from precis.columns import ID_TYPE, ID_VALUE
from precis.errors import ConfigError
from precis.frames import cut
from precis.identity.records import node_id
from precis.ingest import conform
from precis.ingest.identifiers import STATUS_OK

RULE_KINDS = ("force_link", "never_link", "block")
REQUIRED = ("rule", ID_TYPE, ID_VALUE, "other_type", "other_value")


@dataclass(frozen=True)
class Rules:
    blocked: DataFrame  # node, guard, detail, records
    never: DataFrame  # src, dst (src < dst)
    force: DataFrame  # src, dst (src < dst)
    count: int


def empty(spark: SparkSession) -> Rules:
    pairs = spark.createDataFrame([], "src long, dst long")
    return Rules(
        spark.createDataFrame([], "node long, guard string, detail string, records long"),
        pairs,
        pairs,
        0,
    )


def load(
    spark: SparkSession,
    table: DataFrame | None,
    source: str,
    identifiers: conform.IdentifierSettings | None,
) -> Rules:
    """The operators' rules ``table`` as read (None: there is none) checked, normalized and
    hashed as ingest does; ``source`` names it in errors."""
    if table is None:
        return empty(spark)
    rows = _rows(table, source)
    if not rows:
        return empty(spark)
    if identifiers is None:
        raise ValueError("operators' rules need ingest's identifier settings to be hashed")
    validate(rows, set(identifiers.rules), source)
    return hashed(spark, rows, identifiers, source)


def _rows(table: DataFrame, path: str) -> list[Row]:
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise ConfigError(f"identity rules {path}: missing column(s) {', '.join(missing)}")
    # An operators' table: small by nature, checked row by row for clear messages.
    return table.select(*[F.col(c).cast("string") for c in REQUIRED]).collect()


def rule_nodes(rules: Rules) -> list[tuple]:
    """The rules as node ids, for the state fingerprint (a handful of rows)."""
    return (
        [("block", r["node"]) for r in rules.blocked.select("node").collect()]
        + [("never", r["src"], r["dst"]) for r in rules.never.collect()]
        + [("force", r["src"], r["dst"]) for r in rules.force.collect()]
    )


def validate(rows: list[Row], known_types: set[str], path: str) -> None:
    for i, row in enumerate(rows, start=1):
        where = f"identity rules {path}, row {i}"
        if row["rule"] not in RULE_KINDS:
            raise ConfigError(
                f"{where}: rule '{row['rule']}' is not one of {', '.join(RULE_KINDS)}"
            )
        sides = [(ID_TYPE, ID_VALUE)] + (
            [] if row["rule"] == "block" else [("other_type", "other_value")]
        )
        for type_col, value_col in sides:
            if row[type_col] not in known_types:
                raise ConfigError(
                    f"{where}: {type_col} '{row[type_col]}' is not an identifier type "
                    f"({', '.join(sorted(known_types))})"
                )
            if not (row[value_col] or "").strip():
                raise ConfigError(f"{where}: {value_col} is empty")


def hashed(
    spark: SparkSession, rows: list[Row], settings: conform.IdentifierSettings, path: str
) -> Rules:
    """Rules as node pairs; an identifier that ingest would reject is an error."""
    sides = []
    for i, row in enumerate(rows, start=1):
        sides.append((i, "a", row["rule"], row[ID_TYPE], row[ID_VALUE]))
        if row["rule"] != "block":
            sides.append((i, "b", row["rule"], row["other_type"], row["other_value"]))
    frame = spark.createDataFrame(
        sides, "row long, side string, rule string, id_type string, id_value string"
    )
    resolved = conform.resolve_identifiers(frame, settings).withColumn("node", node_id())
    bad = (
        resolved.filter(F.col("id_status") != STATUS_OK)
        .orderBy("row")
        .select("row", ID_TYPE, "id_status")
        .first()
    )
    if bad is not None:
        raise ConfigError(
            f"identity rules {path}, row {bad['row']}: the {bad['id_type']} value is {bad['id_status']} "
            "after normalization, so it can never match an identifier"
        )
    a = resolved.filter(F.col("side") == "a").select("row", "rule", F.col("node").alias("a"))
    b = resolved.filter(F.col("side") == "b").select("row", F.col("node").alias("b"))
    pairs = a.join(b, "row", how="inner").select(
        "rule", F.least("a", "b").alias("src"), F.greatest("a", "b").alias("dst")
    )
    blocked = a.filter(F.col("rule") == "block").select(
        F.col("a").alias("node"),
        F.lit("rule_block").alias("guard"),
        F.lit("blocked by rule").alias("detail"),
        F.lit(None).cast("long").alias("records"),
    )
    return Rules(
        blocked=cut(blocked),
        never=cut(pairs.filter(F.col("rule") == "never_link").select("src", "dst").distinct()),
        force=cut(pairs.filter(F.col("rule") == "force_link").select("src", "dst").distinct()),
        count=len(rows),
    )
