"""Rotating the hashing key: every stored keyed hash rewritten under a new key.

A keyed hash cannot be rehashed without the value it hides, so the rekey job first
builds a *translation*: for each identifier whose plain value it can still read (the
landing files, and bronze rows kept plain), its stored form under the old key and under
the new one (``id_type, old, new``). Then every table that holds keyed hashes is
rewritten in place, row by row, by a MERGE that replaces ``old`` with ``new``
(``slots`` says which columns of a table hold them). A hash nobody's plain value
explains stays as it is and is counted. The new key's fingerprint is stored last.

Rerunning is harmless: a translated row holds ``new``, which no ``old`` matches, so a
rerun after a crash finishes the tables left, and a rerun after success changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis import privacy
from precis.columns import ID_KEY, ID_TYPE, ID_VALUE
from precis.errors import ConfigError
from precis.ingest import identifiers as idn
from precis.ingest import protect
from precis.ingest.conform import BRONZE_KEY, IdentifierSettings

OLD, NEW = "old", "new"
#: What a stored keyed hash looks like (lower-case hex SHA-256).
HASHED = "^[0-9a-f]{64}$"
#: The column of a row that says which key hashed its identifier (meta/suppressions).
KEY_FINGERPRINT = "key_fingerprint"
_SHOWN = 12  # hex digits of a fingerprint shown in messages


@dataclass(frozen=True)
class Slot:
    """Where a table keeps keyed hashes: the identifier's type and its stored form as SQL
    over the table (alias ``t``), and what a translation sets (column -> SQL over ``t``
    and the translation ``s``)."""

    kind: str
    value: str
    sets: tuple[tuple[str, str], ...]

    @property
    def condition(self) -> str:
        return f"{self.kind} = s.`{ID_TYPE}` AND {self.value} = s.`{OLD}`"

    def describe(self) -> str:
        return ", ".join(column for column, _ in self.sets)


def _kind(column: str) -> str:
    # Bronze keeps the type as landed; silver and gold hold it lower-cased and trimmed.
    return f"lower(trim(t.`{column}`))"


def slots(columns: list[str], new_fingerprint: str | None = None) -> list[Slot]:
    """The slots of a table with ``columns``. ``new_fingerprint``: what a translated row's
    ``key_fingerprint`` (if it has one) becomes."""
    cols = set(columns)
    marked = (
        ((KEY_FINGERPRINT, f"'{new_fingerprint}'"),)
        if KEY_FINGERPRINT in cols and new_fingerprint
        else ()
    )
    # id_key: silver, gold, suppressions, hashed rules; _id_key and id_value: bronze.
    found = [
        Slot(_kind(ID_TYPE), f"t.`{column}`", ((column, f"s.`{NEW}`"), *marked))
        for column in (ID_KEY, BRONZE_KEY, ID_VALUE)
        if ID_TYPE in cols and column in cols
    ]
    if {"other_type", "other_key"} <= cols:  # guards, hashed rules: the second identifier
        found.append(
            Slot(_kind("other_type"), "t.`other_key`", (("other_key", f"s.`{NEW}`"), *marked))
        )
    if ID_TYPE not in cols and "raw" in cols:
        # Quarantine: the rejected row as JSON, its identifier hashed as in bronze.
        sets = [("raw", f"replace(t.`raw`, s.`{OLD}`, s.`{NEW}`)")]
        if BRONZE_KEY in cols:
            same = f"t.`{BRONZE_KEY}` = s.`{OLD}`"
            sets.append((BRONZE_KEY, f"CASE WHEN {same} THEN s.`{NEW}` ELSE t.`{BRONZE_KEY}` END"))
        found.append(
            Slot(
                "lower(trim(get_json_object(t.`raw`, '$.id_type')))",
                "get_json_object(t.`raw`, '$.id_value')",
                tuple(sets),
            )
        )
    return found


def check_rotation(
    stored: str | None, old: bytes, new: bytes, previous_env: str, key_env: str
) -> str:
    """Whether the lakehouse may be rekeyed from ``old`` to ``new``: ``rotate`` (it was
    built with ``old``) or ``finish`` (already under ``new``: a rerun translates what is
    left). ConfigError otherwise, before anything is written."""
    if old == new:
        raise ConfigError(f"${previous_env} and ${key_env} hold the same key: nothing to rotate")
    if stored is None:
        raise ConfigError(
            "this lakehouse has no key fingerprint yet: run the ingest job once with the "
            f"current key in ${key_env} (it records it), then rekey"
        )
    if stored == privacy.fingerprint(new):
        return "finish"
    if stored != privacy.fingerprint(old):
        raise ConfigError(
            f"the key in ${previous_env} is not the key this lakehouse was built with "
            f"(fingerprint {stored[:_SHOWN]}… stored); set it to that key"
        )
    return "rotate"


def hidden(id_type: Column, settings: IdentifierSettings) -> Column:
    """Types whose stored form is a keyed hash (PII, and types the config does not know)."""
    return protect.hides_value(id_type, settings)


def plain_values(frame: DataFrame) -> DataFrame:
    """id_type, id_value of a landed or bronze frame, where the value is not already a
    keyed hash (bronze holds hashes unless ``bronze.keep_plain_pii``)."""
    value = F.col(ID_VALUE).cast("string")
    return frame.select(F.col(ID_TYPE).cast("string").alias(ID_TYPE), value.alias(ID_VALUE)).filter(
        F.col(ID_VALUE).isNotNull() & ~F.col(ID_VALUE).rlike(HASHED)
    )


def translation(
    plain: DataFrame, settings: IdentifierSettings, old: bytes, new: bytes
) -> DataFrame:
    """id_type (lower-cased), old, new: each hidden identifier of ``plain`` (id_type,
    id_value as landed) as ingest stores it under the ``old`` and the ``new`` key, one row
    per old form. The plain values go no further than this frame's own plan."""
    kind = idn.kind(F.col(ID_TYPE))
    values = (
        plain.filter(F.col(ID_TYPE).isNotNull() & hidden(F.col(ID_TYPE), settings))
        .select(kind.alias(ID_TYPE), F.col(ID_VALUE))
        .distinct()
    )

    def stored(df: DataFrame, key: bytes, name: str) -> DataFrame:
        keyed = privacy.with_key(df, key)
        return privacy.drop_key(protect.with_bronze_key(keyed, settings, name))

    both = stored(stored(values, old, OLD), new, NEW)
    return (
        both.filter(F.col(OLD).isNotNull() & (F.col(OLD) != F.col(NEW)))
        .select(ID_TYPE, OLD, NEW)
        .dropDuplicates([ID_TYPE, OLD])
    )


def left_over(
    table: DataFrame, slot: Slot, known: DataFrame, settings: IdentifierSettings
) -> DataFrame:
    """Rows of ``table`` whose ``slot`` holds a keyed hash that is not one of ``known``
    (id_type, new): the hashes no plain value could translate."""
    held = table.alias("t").select(F.expr(slot.kind).alias("k"), F.expr(slot.value).alias("v"))
    hashed = held.filter(F.col("v").rlike(HASHED) & hidden(F.col("k"), settings))
    ours = known.select(F.col(ID_TYPE).alias("k"), F.col(NEW).alias("v")).distinct()
    return hashed.join(ours, ["k", "v"], how="left_anti")


def describe(done: dict[str, dict[str, int]]) -> str:
    """A table's progress detail: per column, rows translated and left."""
    if not done:
        return "no keyed hashes"
    return ", ".join(
        f"{column} {c['translated']:,} translated"
        + (f" ({c['untranslated']:,} left)" if c["untranslated"] else "")
        for column, c in done.items()
    )
