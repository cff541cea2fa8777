"""Schema checks for writes: drift between a frame and its table, MERGE's preconditions.

Pure functions of schemas and frames; :mod:`precis.storage` calls them before it writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, MapType, StructField, StructType

from precis.errors import SchemaDriftError


def check_schema(actual: StructType, expected: StructType, what: str) -> None:
    """Fail with the list of missing, unexpected and retyped columns (nullability aside)."""
    got = {f.name: nullable(f.dataType) for f in actual.fields}
    want = {f.name: nullable(f.dataType) for f in expected.fields}
    missing = [n for n in want if n not in got]
    extra = [n for n in got if n not in want]
    retyped = [
        f"{n} ({want[n].simpleString()} -> {got[n].simpleString()})"
        for n in want
        if n in got and got[n] != want[n]
    ]
    if missing or extra or retyped:
        parts = []
        if missing:
            parts.append("missing columns: " + ", ".join(missing))
        if extra:
            parts.append("unexpected columns: " + ", ".join(extra))
        if retyped:
            parts.append("changed types: " + ", ".join(retyped))
        raise SchemaDriftError(f"schema drift writing {what}: " + "; ".join(parts))


def nullable(data_type: DataType) -> DataType:
    # Delta stores every nested field, array element and map value as nullable, while
    # e.g. collect_list yields array<string> with containsNull=false: without this a
    # rerun would report "array<string> -> array<string>" as drift.
    if isinstance(data_type, StructType):
        return StructType(
            [StructField(f.name, nullable(f.dataType), True) for f in data_type.fields]
        )
    if isinstance(data_type, ArrayType):
        return ArrayType(nullable(data_type.elementType), True)
    if isinstance(data_type, MapType):
        return MapType(nullable(data_type.keyType), nullable(data_type.valueType), True)
    return data_type


def differs(column: str, data_type: DataType) -> str:
    # <=> cannot compare maps (nor anything holding one): compare their JSON instead.
    if _holds_map(data_type):
        return f"NOT (to_json(t.`{column}`) <=> to_json(s.`{column}`))"
    return f"NOT (t.`{column}` <=> s.`{column}`)"


def _holds_map(data_type: DataType) -> bool:
    if isinstance(data_type, MapType):
        return True
    if isinstance(data_type, ArrayType):
        return _holds_map(data_type.elementType)
    if isinstance(data_type, StructType):
        return any(_holds_map(f.dataType) for f in data_type.fields)
    return False


def require_columns(df: DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SchemaDriftError(f"{what}: missing columns {', '.join(missing)}")


def require_unique(df: DataFrame, keys: Sequence[str], what: str) -> None:
    # MERGE fails obscurely when two source rows hit one target row; say which keys.
    dupes = df.groupBy(*keys).count().filter(F.col("count") > 1).limit(3).collect()
    if dupes:
        sample = "; ".join(str({k: row[k] for k in keys}) for row in dupes)
        raise ValueError(
            f"MERGE into {what}: source has duplicate keys {list(keys)}, e.g. {sample}"
        )
