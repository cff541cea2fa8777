"""Per-type identity settings as column expressions over ``id_type``."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column
from pyspark.sql import functions as F

from precis.columns import ID_TYPE
from precis.identity.settings import IdentityConfig


def type_map(settings: IdentityConfig, value: Callable[[str], object], default: object) -> Column:
    """A SQL CASE over id_type: per-type settings as a column expression."""
    expr = None
    for id_type in sorted(settings.types):
        branch = F.lit(value(id_type))
        expr = (
            F.when(F.col(ID_TYPE) == id_type, branch)
            if expr is None
            else expr.when(F.col(ID_TYPE) == id_type, branch)
        )
    return expr.otherwise(F.lit(default)) if expr is not None else F.lit(default)


def is_strong(settings: IdentityConfig, col: str = ID_TYPE) -> Column:
    strong = settings.strong_types()
    return F.col(col).isin(*strong) if strong else F.lit(False)


def is_bridge(settings: IdentityConfig, col: str = ID_TYPE) -> Column:
    bridges = settings.bridge_types()
    return F.col(col).isin(*bridges) if bridges else F.lit(False)


def priority(settings: IdentityConfig) -> Column:
    return type_map(settings, lambda t: settings.types[t].priority, 100)


def max_per_person(settings: IdentityConfig) -> Column:
    """The type's per-person limit (null: none)."""
    return type_map(settings, lambda t: settings.types[t].max_per_person, None)


def max_linked(settings: IdentityConfig) -> Column:
    return type_map(settings, lambda t: settings.types[t].max_linked, 5)


def owned_link(
    settings: IdentityConfig, a: str = "src_type", b: str = "dst_type", both_ways: bool = True
) -> Column:
    """A link (types in columns ``a``, ``b``) from a weak type to the strong type its
    values belong to (``belongs_to``: an open id and its union id), or either way round."""
    owned = F.lit(False)
    for weak, owner in settings.owned_types().items():
        pairs = ((weak, owner), (owner, weak)) if both_ways else ((weak, owner),)
        for x, y in pairs:
            owned = owned | ((F.col(a) == x) & (F.col(b) == y))
    return owned
