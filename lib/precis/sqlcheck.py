"""Spark SQL from configuration is data: checked against an allow-list before Spark starts.

Tag expressions, segment conditions and the attribution filter and revenue are Spark SQL
text that ``F.expr`` turns into code. Left unchecked, a config line could call Java
(``java_method('java.lang.System', 'getenv', 'PRECIS_PII_KEY')``), read a table through a
subquery, or have Spark paste an environment variable into the text (``'${env:X}'``).
``check_expression`` reads the text the way Spark's lexer does (quotes, backquoted names,
numbers, comments) and accepts only calls of the built-in, deterministic functions in
``ALLOWED_FUNCTIONS`` by their plain name, plus the operators and keywords of a scalar
expression. It parses nothing further: Spark still reports syntax and unknown columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DOC = "docs/privacy.md, 'SQL in configuration'"

#: Built-in functions config SQL may call: deterministic, reading only their arguments.
#: Nothing here reads the clock, the session, files or tables, or calls Java.
ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    {
        # conditionals and nulls
        "coalesce", "nullif", "nvl", "nvl2", "ifnull", "if", "isnull", "isnotnull", "isnan",
        "nanvl", "equal_null", "zeroifnull", "nullifzero", "greatest", "least",
        # casts
        "cast", "try_cast", "boolean", "tinyint", "smallint", "int", "bigint", "float",
        "double", "decimal", "string", "date", "timestamp",
        # arithmetic
        "abs", "ceil", "ceiling", "floor", "round", "bround", "rint", "sqrt", "cbrt", "exp",
        "expm1", "ln", "log", "log10", "log1p", "log2", "pow", "power", "mod", "pmod", "div",
        "sign", "signum", "negative", "positive", "try_add", "try_subtract", "try_multiply",
        "try_divide", "try_mod", "width_bucket", "pi", "e", "degrees", "radians", "hypot",
        # text
        "concat", "concat_ws", "lower", "upper", "lcase", "ucase", "initcap", "length", "len",
        "char_length", "character_length", "trim", "ltrim", "rtrim", "btrim", "substr",
        "substring", "substring_index", "left", "right", "lpad", "rpad", "replace",
        "translate", "instr", "locate", "position", "contains", "startswith", "endswith",
        "like", "ilike", "rlike", "regexp_like", "regexp_extract", "regexp_replace",
        "regexp_count", "split", "split_part", "repeat", "reverse", "ascii", "chr", "char",
        "levenshtein", "format_number", "format_string", "to_char", "to_number",
        "try_to_number",
        # dates and times (of their arguments; the clock is not allowed)
        "date_add", "date_sub", "dateadd", "datediff", "date_diff", "add_months",
        "months_between", "year", "quarter", "month", "day", "dayofmonth", "dayofweek",
        "dayofyear", "weekday", "weekofyear", "dayname", "monthname", "hour", "minute",
        "second", "date_trunc", "trunc", "last_day", "next_day", "make_date", "make_timestamp",
        "date_part", "datepart", "date_format", "to_date", "to_timestamp", "try_to_timestamp",
        "unix_date", "unix_seconds", "unix_millis", "unix_micros", "to_unix_timestamp",
        "date_from_unix_date", "timestamp_seconds", "timestamp_millis", "timestamp_micros",
        "from_unixtime", "from_utc_timestamp", "to_utc_timestamp",
        # aggregates whose result does not depend on row order
        "count", "count_if", "sum", "try_sum", "avg", "try_avg", "mean", "min", "max",
        "bool_and", "bool_or", "every", "any", "some", "collect_set", "median", "percentile",
        "stddev", "stddev_pop", "stddev_samp", "std", "variance", "var_pop", "var_samp",
        # arrays
        "array", "size", "cardinality", "array_size", "array_contains", "element_at",
        "try_element_at", "array_max", "array_min", "array_distinct", "array_join",
        "array_position", "array_union", "array_intersect", "array_except", "array_compact",
        "arrays_overlap", "slice", "sort_array",
    }
)  # fmt: skip

# Keywords a "(" may follow without being a call: `x in (1, 2)`, `not (a or b)`.
_KEYWORDS_BEFORE_PAREN = frozenset(
    {
        "and", "or", "not", "in", "when", "then", "else", "case", "between", "like", "ilike",
        "rlike", "regexp", "distinct", "all",
    }
)  # fmt: skip
# Types with arguments, after AS in a cast: cast(x AS decimal(10, 2)).
_CAST_TYPES = frozenset({"decimal", "dec", "numeric", "varchar", "char", "character"})
_JAVA = frozenset({"reflect", "java_method", "try_reflect"})
# Words that only a query, a table reference or a statement uses.
_QUERY_WORDS = frozenset(
    {
        "select", "from", "table", "values", "with", "lateral", "using", "join", "union",
        "intersect", "except", "minus", "where", "exists",
    }
)  # fmt: skip
# Keywords Spark evaluates without parentheses: the clock and the session.
_ENVIRONMENT_WORDS = frozenset(
    {
        "current_date", "current_timestamp", "current_time", "current_timezone", "now",
        "curdate", "localtimestamp", "current_user", "user", "session_user", "current_catalog",
        "current_schema", "current_database",
    }
)  # fmt: skip
_SPACE = frozenset(" \t\n\r\f\v")
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_DIGITS = frozenset("0123456789")
_OPERATORS = frozenset("+-*/%=<>!&|^~,[]")
_WORD = re.compile(r"[A-Za-z0-9_]+")
_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[A-Za-z0-9_]*")


class ConfigSqlError(ValueError):
    """Config SQL that uses something config SQL may not; the message names the setting."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting}: {reason}")
        self.setting = setting
        self.reason = reason


@dataclass(frozen=True)
class _Token:
    kind: str  # word, name (backquoted), string, number, op, (, ), .
    text: str  # a name's or a string's content, without quotes


def check_expression(text: str, setting: str) -> None:
    """Raise ``ConfigSqlError`` (a ``ValueError``) naming ``setting`` unless ``text`` is a
    scalar expression calling only ``ALLOWED_FUNCTIONS``."""
    reason = _problem(text)
    if reason is not None:
        raise ConfigSqlError(setting, reason)


def check_sql_text(text: str, setting: str, quote: str = "") -> None:
    """For a setting pasted into a SQL statement as a name or quoted text (the lakehouse
    root in ``delta.`<path>```, a database prefix): no ``${`` (Spark substitutes it there
    too) and no ``quote`` character, which would end the quoting early."""
    if "${" in text:
        raise ConfigSqlError(setting, _SUBSTITUTION)
    if quote and quote in text:
        raise ConfigSqlError(setting, f"{quote} is not allowed: the value is quoted with it in SQL")


_SUBSTITUTION = (
    "'${' is not allowed in config SQL, not even inside quotes: Spark replaces "
    "${...} with configuration values and environment variables before parsing"
)


def _problem(text: str) -> str | None:
    # Spark substitutes ${...} (configuration, environment variables, system properties)
    # in the raw text before lexing it, so inside quotes too.
    if "${" in text:
        return _SUBSTITUTION
    tokens = _tokens(text)
    if isinstance(tokens, str):
        return tokens
    for i, token in enumerate(tokens):
        before = tokens[i - 1] if i else None
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.kind == "word":
            word = token.text.lower()
            if word == "from" and _is_distinct_from(tokens, i):
                continue
            if word in _QUERY_WORDS:
                return (
                    f"'{token.text}' is not allowed in config SQL: an expression may not "
                    "read a table or run a subquery"
                )
            if word == "over":
                return (
                    "window functions (OVER) are not allowed in config SQL: a value comes "
                    "from its own row"
                )
            if word in _ENVIRONMENT_WORDS:
                return (
                    f"'{token.text}' is not allowed in config SQL: it reads the clock or the "
                    "session, so a rerun would not give the same value"
                )
        if after is None or after.kind != "(" or token.kind not in ("word", "name", "string"):
            continue
        name = token.text.lower()
        if before is not None and before.kind == ".":
            return (
                f"qualified function call '{_dotted(tokens, i)}(' is not allowed in config SQL: "
                f"only built-in functions by their plain name ({DOC})"
            )
        if token.kind == "word" and name in _KEYWORDS_BEFORE_PAREN:
            continue
        if name in _CAST_TYPES and before is not None and before.text.lower() == "as":
            continue
        if name in ALLOWED_FUNCTIONS:
            continue
        why = ": it calls Java methods" if name in _JAVA else ""
        return f"function '{token.text}' is not allowed in config SQL{why} (allowed: {DOC})"
    return None


def _tokens(text: str) -> list[_Token] | str:
    """The tokens of ``text``, or the reason it cannot be read safely."""
    out: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        pair = text[i : i + 2]
        if c in _SPACE:
            i += 1
        elif pair in ("--", "/*"):
            return (
                "comments ('--', '/* */') are not allowed in config SQL: they hide text "
                "from whoever reviews the setting"
            )
        elif c in "'\"":
            end = _string_end(text, i)
            if isinstance(end, str):
                return end
            out.append(_Token("string", text[i + 1 : end]))
            i = end + 1
        elif c == "`":
            end = i + 1
            while True:
                end = text.find("`", end)
                if end < 0:
                    return "unterminated `quoted name` in config SQL"
                if text[end + 1 : end + 2] != "`":
                    break
                end += 2  # `` is a backquote inside the name
            out.append(_Token("name", text[i + 1 : end].replace("``", "`")))
            i = end + 1
        elif c in _DIGITS or (
            c == "." and text[i + 1 : i + 2] in _DIGITS and not _ends_operand(out)
        ):
            match = _NUMBER.match(text, i)
            assert match is not None
            out.append(_Token("number", match.group()))
            i = match.end()
        elif c in _LETTERS:
            match = _WORD.match(text, i)
            assert match is not None
            out.append(_Token("word", match.group()))
            i = match.end()
        elif pair == "::":
            out.append(_Token("op", pair))
            i += 2
        elif c in ":?":
            return "parameter markers (':name', '?') are not allowed in config SQL"
        elif c == ";":
            return "';' is not allowed in config SQL: a setting holds one expression"
        elif c in "().":
            out.append(_Token(c, c))
            i += 1
        elif c in _OPERATORS:
            out.append(_Token("op", c))
            i += 1
        else:
            return f"character {c!r} is not allowed in config SQL"
    return out


def _string_end(text: str, start: int) -> int | str:
    """Index of the quote closing the string that opens at ``start``.

    Spark reads a backslash as an escape, or as itself when
    ``spark.sql.parser.escapedStringLiterals`` is on (and in r'...' strings). Both
    readings end a string at the same quote unless a backslash precedes the quote
    character, so that is refused rather than guessed at.
    """
    quote = text[start]
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            if text[i + 1 : i + 2] == quote:
                return (
                    f"a backslash before {quote} inside a string is not allowed in config "
                    "SQL (Spark may or may not read it as an escape): use the other quote "
                    "character around the string"
                )
            i += 2
        elif c == quote:
            return i
        else:
            i += 1
    return "unterminated string in config SQL"


def _ends_operand(tokens: list[_Token]) -> bool:
    return bool(tokens) and tokens[-1].kind in ("word", "name", "number", ")", "string")


def _is_distinct_from(tokens: list[_Token], i: int) -> bool:
    """``a IS [NOT] DISTINCT FROM b``: the one FROM an expression has."""
    words = [t.text.lower() for t in tokens[max(0, i - 3) : i]]
    return words[-2:] == ["is", "distinct"] or words == ["is", "not", "distinct"]


def _dotted(tokens: list[_Token], i: int) -> str:
    parts = [tokens[i].text]
    while i >= 2 and tokens[i - 1].kind == "." and tokens[i - 2].kind in ("word", "name"):
        i -= 2
        parts.insert(0, tokens[i].text)
    return ".".join(parts)
