"""How sources write identifiers: one person, many spellings, and placeholder junk.

The canonical value of each identifier lives on the person; sources write it through
these functions (SQL text), so the same phone shows up as ``+86 139 1234 5678`` in one
system and ``13912345678`` in another, which is what identity resolution has to undo.
"""

from __future__ import annotations

from collections.abc import Sequence

from precis.generate.catalog import (
    PLACEHOLDER_DEVICE,
    PLACEHOLDER_EMAIL,
    PLACEHOLDER_PHONE,
    PLACEHOLDER_TEXT,
)
from precis.generate.draws import choice, num, text

# Placeholders by identifier type: what trackers and clerks write when the value is unknown.
DEVICE_PLACEHOLDERS = (PLACEHOLDER_DEVICE, *PLACEHOLDER_TEXT)
COOKIE_PLACEHOLDERS = PLACEHOLDER_TEXT
PHONE_PLACEHOLDERS = (PLACEHOLDER_PHONE,)
EMAIL_PLACEHOLDERS = (PLACEHOLDER_EMAIL,)

ID_STRUCT = "struct<id_type:string,id_value:string>"
NO_ID = f"CAST(NULL AS {ID_STRUCT})"


def id_struct(id_type: str, id_value: str) -> str:
    """``id_type`` is a literal type name, ``id_value`` a SQL expression."""
    return f"named_struct('id_type', {text(id_type)}, 'id_value', {id_value})"


def maybe_id(condition: str, id_type: str, id_value: str) -> str:
    """The identifier when ``condition`` holds and it has a value, else a null struct."""
    return (
        f"IF(({condition}) AND ({id_value}) IS NOT NULL, {id_struct(id_type, id_value)}, {NO_ID})"
    )


def _variant(
    canonical: str, styles: Sequence[str], u_variant: str, u_style: str, rate: float
) -> str:
    n = len(styles)
    styled = f"element_at(array({', '.join(styles)}), CAST(least(floor({u_style} * {n}), {n - 1}) AS INT) + 1)"
    return f"IF({u_variant} < {num(rate)}, {styled}, {canonical})"


def phone_variant(phone: str, u_variant: str, u_style: str, rate: float) -> str:
    """An 11-digit mobile as typed by people and systems: +86, 86, dashes, spaces."""

    def groups(sep: str) -> str:
        return f"concat_ws('{sep}', substring({phone}, 1, 3), substring({phone}, 4, 4), substring({phone}, 8, 4))"

    styles = [
        f"concat('+86', {phone})",
        f"concat('86', {phone})",
        f"concat('+86 ', {groups(' ')})",
        f"concat('86-', {groups('-')})",
        groups("-"),
        groups(" "),
        f"concat('(+86) ', {phone})",
    ]
    return _variant(phone, styles, u_variant, u_style, rate)


def email_variant(email: str, u_variant: str, u_style: str, rate: float) -> str:
    """Case and whitespace variants of a lower-case email."""
    local = f"substring_index({email}, '@', 1)"
    domain = f"substring_index({email}, '@', -1)"
    styles = [
        f"upper({email})",
        f"concat(initcap({local}), '@', {domain})",
        f"concat(' ', {email}, ' ')",
        f"concat({email}, '  ')",
        f"concat({local}, '@', upper({domain}))",
    ]
    return _variant(email, styles, u_variant, u_style, rate)


def device_case(device: str, u: str, upper_share: float) -> str:
    """iOS SDKs report advertising ids in upper case, Android and web in lower case."""
    return f"IF({u} < {num(upper_share)}, upper({device}), {device})"


def placeholder_or(
    value: str, placeholders: Sequence[str], u: str, rate: float, u_kind: str | None = None
) -> str:
    """Replace ``value`` by one of ``placeholders`` (the first most often) in ``rate`` of rows."""
    if len(placeholders) == 1 or u_kind is None:
        junk = text(placeholders[0])
    else:
        junk = choice(placeholders, [2.0] + [1.0] * (len(placeholders) - 1), u_kind)
    return f"IF({u} < {num(rate)}, {junk}, {value})"
