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

Stored hashed: a rule may give ``id_key`` (``other_key``) instead of the value, the key
ingest stores for it, so the table holds no plain email or phone. ``python -m
precis.identity.rules hash --in rules.csv --format csv`` turns a table written by hand
into ``meta/identity_rules`` with every PII value so replaced; a rules table that still
holds plain PII values works, with a warning that says how to convert it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from precis.columns import ID_KEY, ID_TYPE, ID_VALUE
from precis.errors import ConfigError
from precis.frames import cut
from precis.identity.records import node_id
from precis.ingest import conform
from precis.ingest.identifiers import STATUS_OK
from precis.progress import log

RULE_KINDS = ("force_link", "never_link", "block")
REQUIRED = ("rule", ID_TYPE, ID_VALUE, "other_type", "other_value")
#: A side's stored key, instead of its value (the hashed form of a rules table).
KEYS = (ID_KEY, "other_key")
#: The columns of ``meta/identity_rules`` as ``hash`` writes it.
STORED = "rule string, id_type string, id_value string, id_key string, other_type string, other_value string, other_key string, note string"
HASH_COMMAND = "python -m precis.identity.rules hash --in FILE --format csv"


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
    plain = plain_pii(rows, identifiers.pii_types)
    if plain:
        log.warning(
            "WARNING: identity rules %s hold %d plain PII value(s) (%s); store them hashed: "
            "%s (docs/identity.md)",
            *(source, plain, ", ".join(identifiers.pii_types), HASH_COMMAND),
        )
    return hashed(spark, rows, identifiers, source)


def _rows(table: DataFrame, path: str) -> list[Row]:
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise ConfigError(f"identity rules {path}: missing column(s) {', '.join(missing)}")
    optional = [F.col(c) if c in table.columns else F.lit(None) for c in (*KEYS, "note")]
    # An operators' table: small by nature, checked row by row for clear messages.
    return table.select(
        *[F.col(c).cast("string") for c in REQUIRED],
        *[c.cast("string").alias(n) for c, n in zip(optional, (*KEYS, "note"), strict=True)],
    ).collect()


def _sides(row: Row) -> list[tuple[str, str, str]]:
    """(type column, value column, key column) of each identifier the rule names."""
    both = [(ID_TYPE, ID_VALUE, ID_KEY), ("other_type", "other_value", "other_key")]
    return both[:1] if row["rule"] == "block" else both


def plain_pii(rows: list[Row], pii_types: Sequence[str]) -> int:
    """How many identifiers of ``rows`` are PII given by value rather than by key."""
    return sum(
        1
        for row in rows
        for type_col, value_col, key_col in _sides(row)
        if row[type_col] in pii_types and (row[value_col] or "").strip() and not row[key_col]
    )


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
        for type_col, value_col, key_col in _sides(row):
            if row[type_col] not in known_types:
                raise ConfigError(
                    f"{where}: {type_col} '{row[type_col]}' is not an identifier type "
                    f"({', '.join(sorted(known_types))})"
                )
            if not (row[value_col] or "").strip() and not row[key_col]:
                raise ConfigError(f"{where}: {value_col} is empty (and no {key_col})")


def keyed(spark: SparkSession, rows: list[Row], settings: conform.IdentifierSettings) -> DataFrame:
    """row, side (a, b), rule, id_type, id_key, id_status: each identifier of ``rows`` as
    ingest stores it (a given key as is, with status ok)."""
    sides = [
        (i, side, row["rule"], row[type_col], row[value_col], row[key_col])
        for i, row in enumerate(rows, start=1)
        for side, (type_col, value_col, key_col) in zip("ab", _sides(row), strict=False)
    ]
    frame = spark.createDataFrame(
        sides, "row long, side string, rule string, id_type string, id_value string, given string"
    )
    given = F.col("given").isNotNull()
    return (
        conform.resolve_identifiers(frame, settings)
        .withColumn(ID_KEY, F.when(given, F.col("given")).otherwise(F.col(ID_KEY)))
        .withColumn("id_status", F.when(given, F.lit(STATUS_OK)).otherwise(F.col("id_status")))
        .drop("given")
    )


def hashed(
    spark: SparkSession, rows: list[Row], settings: conform.IdentifierSettings, path: str
) -> Rules:
    """Rules as node pairs; an identifier that ingest would reject is an error. A side
    given by its stored key is taken as is."""
    resolved = keyed(spark, rows, settings).withColumn("node", node_id())
    _check_resolved(resolved, path)
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


def _check_resolved(resolved: DataFrame, path: str) -> None:
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


def stored(
    spark: SparkSession, table: DataFrame, settings: conform.IdentifierSettings, path: str
) -> DataFrame:
    """``table`` (a rules table as read) as ``meta/identity_rules`` keeps it: every PII
    value replaced by its key (``id_key``, ``other_key``), other values as written."""
    rows = _rows(table, path)
    validate(rows, set(settings.rules), path)
    resolved = keyed(spark, rows, settings)
    _check_resolved(resolved, path)
    found = {(r["row"], r["side"]): r[ID_KEY] for r in resolved.collect()}
    out = []
    for i, row in enumerate(rows, start=1):
        sides: list[str | None] = []
        for side, (type_col, value_col, key_col) in zip("ab", _sides(row), strict=False):
            pii = row[type_col] in settings.pii_types
            value = None if pii else row[value_col]
            sides += [row[type_col], value, found[(i, side)] if pii else row[key_col]]
        sides += [None] * (6 - len(sides))  # a block names one identifier
        out.append((row["rule"], *sides, row["note"]))
    return spark.createDataFrame(out, STORED)


def main(argv: Sequence[str] | None = None) -> int:
    """``hash``: a rules file written by hand -> ``meta/identity_rules``, PII hashed."""
    parser = argparse.ArgumentParser(prog="python -m precis.identity.rules")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("hash", help="store a rules file with its PII values hashed")
    command.add_argument("--in", dest="path", required=True, help="the rules file or folder")
    command.add_argument("--format", default="csv", choices=("csv", "json", "parquet", "delta"))
    command.add_argument("--config", dest="configs", action="append", default=[])
    command.add_argument("--set", dest="overrides", action="append", default=[])
    command.add_argument("--env", help="environment overlay (default: $PRECIS_ENV or local)")
    args = parser.parse_args(argv)
    # The command's edge: configuration, session and lakehouse, imported only here.
    from precis import tables as T
    from precis.config import load_config
    from precis.errors import PrecisError
    from precis.keys import job_key
    from precis.runner import fail
    from precis.session import get_spark
    from precis.storage import Lakehouse

    try:
        cfg = load_config(args.configs, args.overrides, env=args.env)
        spark = get_spark(cfg)
        lake = Lakehouse.from_config(spark, cfg)
        key = job_key(lake, cfg)
        settings = conform.IdentifierSettings.of(cfg.ingest, cfg.privacy.pii_types, key)
        reader = spark.read.format(args.format)
        if args.format == "csv":
            reader = reader.option("header", "true")
        out = stored(spark, reader.load(args.path), settings, args.path)
        lake.overwrite(out, T.IDENTITY_RULES, evolve=True)
    except PrecisError as exc:
        return fail("identity rules hash", exc)
    print(f"identity rules {args.path}: stored hashed in {lake.path(T.IDENTITY_RULES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
