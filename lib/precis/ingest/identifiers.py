"""Identifier normalization: one canonical form per type, placeholders blocked.

Every value is first *folded* (``fold``): full-width forms become their ASCII
counterparts (full-width ``138`` is ``138``, U+FF20 is ``@``: the NFKC mapping of the
forms CJK input methods type) and all Unicode white space around it goes (tabs, NBSP, U+3000,
zero-width spaces, a stray BOM). Then each identifier type maps to a rule
(``ingest.id_rules``):

- ``email``: trim, remove inner white space, lower-case; valid when ``local@domain.tld``;
- ``phone``: keep digits, resolve ``+``/``00``/country-code/trunk-``0`` prefixes to
  E.164 ``+<country><number>`` with ``ingest.default_country_code``; valid with 8-15 digits;
- ``lower`` / ``upper``: trim and fold case (device ids are UUIDs written in either case);
- ``trim``: trim only (open ids and cookies are case-sensitive).

A normalized value that matches ``ingest.placeholder_values`` or
``ingest.placeholder_patterns`` (per type, or ``"*"`` for all) is *blocked*: the row is
kept, but its identifier is not used for identity and is counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis.columns import ORDER_ID

RULES = ("email", "phone", "lower", "upper", "trim")

STATUS_OK, STATUS_BLOCKED, STATUS_INVALID = "ok", "blocked", "invalid"

_EMAIL_RE = r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"

# Full-width ASCII (U+FF01-FF5E) and the ideographic space, and what NFKC makes of them.
_FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
_ASCII = "".join(chr(c) for c in range(0x21, 0x7F)) + " "
# Java regex: white space of any script, plus the invisible spaces and the BOM, which
# Unicode files as format characters but which users paste as spaces all the same.
SPACE = r"[\s\p{Z}\x{200B}-\x{200D}\x{2060}\x{FEFF}]"


def fold(value: Column) -> Column:
    """``value`` as text, full-width forms made ASCII, Unicode white space stripped
    from both ends. A built-in ``translate``: Spark has no NFKC function, and these are
    the compatibility forms that occur in identifiers."""
    return strip(F.translate(value.cast("string"), _FULL_WIDTH, _ASCII))


# The same characters as ``SPACE``, for ``btrim``: a trim by character set, which costs
# a fraction of a regular expression on every value of every column.
_SPACES = (
    " \t\n\x0b\f\r\u00a0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200E))
    + "\u2028\u2029\u202f\u205f\u2060\u3000\ufeff"
)


def strip(value: Column) -> Column:
    """``value`` as text without Unicode white space at either end (``F.trim`` strips
    ASCII spaces only)."""
    return F.btrim(value.cast("string"), F.lit(_SPACES))


def kind(id_type: Column) -> Column:
    """An ``id_type`` as the rules name it: folded and lower-cased."""
    return F.lower(fold(id_type))


#: Between a source and an id unique only within it (``ingest.ids_per_source``).
SCOPE = ":"


def scoped(source: Column, record_id: Column) -> Column:
    """``<source>:<id>``: an id made unique across sources; both parts normalized."""
    return F.concat(source, F.lit(SCOPE), record_id)


def is_order(columns: Sequence[str], order: Column) -> Column:
    """Whether a landed ``order_items`` row (of these ``columns``) belongs to the silver
    order id ``order``: its folded ``order_id``, or with a ``source`` column the id scoped
    by it (``scoped``), which silver holds when order ids are unique only per source.
    Either matches, so a forgotten person's items stay out however their orders were
    ingested."""
    folded = fold(F.col(ORDER_ID))
    if "source" not in columns:
        return folded == order
    return (folded == order) | (scoped(kind(F.col("source")), folded) == order)


def normalize_email(value: Column) -> Column:
    return F.lower(F.regexp_replace(value, f"{SPACE}+", ""))


def normalize_phone(value: Column, country_code: str, national_length: int = 11) -> Column:
    """E.164 form of a folded value. ``138 0013 8000``, ``+86-138...``, ``0086...``,
    ``86138...`` agree."""
    digits = F.regexp_replace(value, r"[^0-9]", "")
    cc_len = len(country_code)
    return (
        F.when(F.length(digits) == 0, F.lit(None))
        .when(value.startswith("+"), F.concat(F.lit("+"), digits))
        .when(digits.startswith("00"), F.concat(F.lit("+"), F.substring(digits, 3, 64)))
        # Country code written without "+": longer than a national number.
        .when(
            digits.startswith(country_code) & (F.length(digits) == cc_len + national_length),
            F.concat(F.lit("+"), digits),
        )
        # National number, possibly with the trunk prefix 0.
        .otherwise(F.concat(F.lit(f"+{country_code}"), F.regexp_replace(digits, r"^0+", "")))
    )


def normalize(value: Column, rule: str, country_code: str) -> Column:
    """Canonical form of ``value`` under ``rule`` (empty strings become null)."""
    return by_rule(fold(value), rule, country_code)


def by_rule(trimmed: Column, rule: str, country_code: str) -> Column:
    """``normalize`` of a value already folded (``fold``)."""
    if rule == "email":
        out = normalize_email(trimmed)
    elif rule == "phone":
        out = normalize_phone(trimmed, country_code)
    elif rule == "lower":
        out = F.lower(trimmed)
    elif rule == "upper":
        out = F.upper(trimmed)
    elif rule == "trim":
        out = trimmed
    else:
        raise ValueError(f"unknown identifier rule '{rule}'; expected one of {', '.join(RULES)}")
    return F.when(out == "", F.lit(None)).otherwise(out)


KIND, FOLDED = "_id_kind", "_id_folded"


def with_folded(df: DataFrame, id_type: str, id_value: str) -> DataFrame:
    """``df`` with ``_id_kind`` (``kind`` of ``id_type``) and ``_id_folded`` (``fold`` of
    ``id_value``), computed once per row for ``normalize_by_type``."""
    return df.withColumn(KIND, kind(F.col(id_type))).withColumn(FOLDED, fold(F.col(id_value)))


def is_valid(normalized: Column, rule: str) -> Column:
    if rule == "email":
        return normalized.rlike(_EMAIL_RE)
    if rule == "phone":
        return normalized.rlike(r"^\+[0-9]{8,15}$")
    return F.length(normalized) > 0


def normalize_by_type(
    id_type: Column,
    folded: Column,
    rules: Mapping[str, str],
    country_code: str,
) -> Column:
    """Normalized value chosen by the row's ``id_type`` (``kind``); null for unknown types.

    ``folded`` is the value after ``fold``, best a column of its own (``with_folded``):
    each rule refers to it several times, and Spark would fold it again each time.
    """
    expr = None
    for type_name, rule in sorted(rules.items()):
        branch = by_rule(folded, rule, country_code)
        expr = (
            F.when(id_type == type_name, branch)
            if expr is None
            else expr.when(id_type == type_name, branch)
        )
    return expr.otherwise(F.lit(None)) if expr is not None else F.lit(None)


def status_by_type(
    id_type: Column,
    normalized: Column,
    raw: Column,
    rules: Mapping[str, str],
    placeholder_values: Mapping[str, Sequence[str]],
    placeholder_patterns: Mapping[str, Sequence[str]],
    country_code: str,
) -> Column:
    """``blocked`` for placeholders, ``invalid`` for malformed values, else ``ok``.

    Per-type placeholder values are normalized with the type's own rule, so the config
    may list ``13800000000`` and still block ``+86 138-0000-0000``.
    """
    raw_folded = F.lower(fold(raw))
    generic = [F.lit(v.lower()) for v in placeholder_values.get("*", ())]
    blocked = _matches(raw_folded, generic, placeholder_patterns.get("*", ()))
    invalid = F.lit(False)
    for type_name, rule in sorted(rules.items()):
        is_type = id_type == type_name
        exact = [
            normalize(F.lit(v), rule, country_code) for v in placeholder_values.get(type_name, ())
        ]
        own = _matches(normalized, exact, placeholder_patterns.get(type_name, ()))
        blocked = blocked | (is_type & own)
        invalid = invalid | (is_type & ~is_valid(normalized, rule))
    return (
        F.when(blocked, F.lit(STATUS_BLOCKED))
        .when(normalized.isNull() | invalid, F.lit(STATUS_INVALID))
        .otherwise(F.lit(STATUS_OK))
    )


def _matches(value: Column, exact: Sequence[Column], patterns: Sequence[str]) -> Column:
    cond = F.lit(False)
    if exact:
        cond = cond | F.coalesce(value.isin(*exact), F.lit(False))
    for pattern in patterns:
        cond = cond | F.coalesce(value.rlike(pattern), F.lit(False))
    return cond
