"""Planted data-quality problems in landing rows, with a record of each one.

A row is corrupted when a draw keyed by its dedup key falls below the configured
fraction; the kind is drawn among those the dataset can have (``wrong_type`` needs a
numeric column). Corrupted datasets are all-string, because "abc" cannot land in a
double column. ``truth/corruptions`` lists every corrupted row with its original key
and the raw row as landed, so a test can check that ingest quarantines exactly these.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.generate.draws import array_of, exprs, num, text, uniform
from precis.generate.landing import landed_columns
from precis.schemas import SPECS

CORRUPTED_DATASETS = ("id_observations", "events", "orders", "touchpoints")
TIME_COLUMNS = {
    "id_observations": "observed_at",
    "events": "event_time",
    "orders": "order_time",
    "touchpoints": "touch_time",
}
NUMERIC_COLUMNS = {"orders": "amount", "touchpoints": "cost"}

BAD_TIMESTAMPS = ("not-a-date", "2026-13-45T10:00:00Z", "yesterday", "32/13/2026 25:61")
UNKNOWN_ID_TYPES = ("fax", "imei_md5", "qq_number", "passport_no")
NOT_NUMBERS = ("abc", "N/A", "twelve", "12..5")

#: Schema of ``truth/corruptions``.
CORRUPTION_SCHEMA = "dataset string, record_key string, kind string, column string, raw string"


def kinds(dataset: str) -> tuple[str, ...]:
    base = ("bad_timestamp", "missing_required", "unknown_id_type")
    numeric = ("wrong_type",) if dataset in NUMERIC_COLUMNS else ()
    return (*base, *numeric, "duplicate")


def record_key(dataset: str) -> str:
    """SQL of the dedup key of SPECS joined with '|': how truth names a landed row."""
    return "concat_ws('|', " + ", ".join(f"coalesce({k}, '')" for k in SPECS[dataset].keys) + ")"


def _pick(values: tuple[str, ...], u: str) -> str:
    n = len(values)
    return f"element_at({array_of(values)}, CAST(least(floor({u} * {n}), {n - 1}) AS INT) + 1)"


def corrupt(
    text_rows: DataFrame, dataset: str, seed: int, fraction: float
) -> tuple[DataFrame, DataFrame]:
    """Corrupt ``fraction`` of the rows of an all-string landing frame.

    Returns the landed rows (duplicates included) and the corruption truth rows.
    """
    spec = SPECS[dataset]
    names = [name for name, _ in landed_columns(dataset)]

    def u(salt: str) -> str:
        return uniform(seed, f"corrupt:{dataset}:{salt}", "_record_key")

    target = (
        f"CASE _kind WHEN 'bad_timestamp' THEN {text(TIME_COLUMNS[dataset])} "
        f"WHEN 'missing_required' THEN {_pick(spec.required, u('column'))} "
        "WHEN 'unknown_id_type' THEN 'id_type' "
        f"WHEN 'wrong_type' THEN {text(NUMERIC_COLUMNS.get(dataset, ''))} END"
    )
    marked = (
        text_rows.select("*", *exprs({"_record_key": record_key(dataset)}))
        .select(
            "*",
            *exprs(
                {
                    "_kind": f"IF({u('pick')} < {num(fraction)}, {_pick(kinds(dataset), u('kind'))}, NULL)"
                }
            ),
        )
        .select("*", *exprs({"_column": target}))
    )

    def damaged(name: str) -> str:
        return (
            f"CASE WHEN _column IS NULL OR _column != {text(name)} THEN {name} "
            "WHEN _kind = 'missing_required' THEN NULL "
            f"WHEN _kind = 'bad_timestamp' THEN {_pick(BAD_TIMESTAMPS, u('bad_timestamp'))} "
            f"WHEN _kind = 'unknown_id_type' THEN {_pick(UNKNOWN_ID_TYPES, u('id_type'))} "
            f"WHEN _kind = 'wrong_type' THEN {_pick(NOT_NUMBERS, u('number'))} ELSE {name} END"
        )

    landed = marked.select(
        *exprs({n: damaged(n) for n in names}), "_record_key", "_kind", "_column"
    )
    rows = landed.select(*names)
    duplicates = landed.filter(F.col("_kind") == "duplicate").select(*names)
    raw = (
        "to_json(named_struct("
        + ", ".join(f"{text(n)}, {n}" for n in names)
        + "), map('ignoreNullFields', 'false'))"
    )
    truth = landed.filter(F.col("_kind").isNotNull()).select(
        *exprs(
            {
                "dataset": text(dataset),
                "record_key": "_record_key",
                "kind": "_kind",
                "column": "_column",
                "raw": raw,
            }
        )
    )
    return rows.unionByName(duplicates), truth
