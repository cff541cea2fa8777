"""Silver rows -> ``one_id`` through ``gold/identity_map``, honouring the guards."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precis.columns import ID_KEY, ID_TYPE, ONE_ID, RUN_DATE

#: Guards whose identifiers belong to nobody (a store hotline typed at the till, an
#: operator's block rule): rows carrying them are left out of per-person analytics.
ISOLATING_GUARDS = ("over_linked", "rule_block")


def isolated_identifiers(guards: DataFrame) -> DataFrame:
    """``id_type``, ``id_key`` isolated by the latest identity run's guards."""
    latest = guards.agg(F.max(RUN_DATE)).collect()[0][0]
    return guards.filter(
        (F.col(RUN_DATE) == F.lit(latest))
        & F.col("guard").isin(*ISOLATING_GUARDS)
        & F.col("other_key").isNull()
    ).select(ID_TYPE, ID_KEY)


#: The start of a provisional one_id: the speed layer's name for an identifier the
#: identity map has not seen yet (precis.stream.activity).
PROVISIONAL = "tmp_"


def provisional_id(id_type: Column, id_key: Column) -> Column:
    """The provisional one_id of an identifier: stable until an identity run maps it."""
    digest = F.sha2(F.concat_ws(":", id_type, id_key), 256)
    return F.concat(F.lit(PROVISIONAL), F.substring(digest, 1, 24))


def resolve(df: DataFrame, identity_map: DataFrame, isolated: DataFrame | None = None) -> DataFrame:
    """Rows of ``df`` with a valid identifier, plus their ``one_id`` (isolated ones dropped)."""
    keyed = df.filter(F.col(ID_KEY).isNotNull())
    if isolated is not None:
        keyed = keyed.join(
            F.broadcast(isolated.select(ID_TYPE, ID_KEY).distinct()),
            [ID_TYPE, ID_KEY],
            how="left_anti",
        )
    return keyed.join(identity_map.select(ID_TYPE, ID_KEY, ONE_ID), [ID_TYPE, ID_KEY], how="inner")
