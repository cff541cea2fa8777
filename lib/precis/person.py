"""One person across the gold tables: find their ``one_id``, then each table's rows for it.

Pure functions over DataFrames: the caller reads the tables (``Lakehouse.read``) and
shows the result (``notebooks/inspect_person.py``); nothing here reads, writes or prints.

A person is given by ``one_id`` or by an identifier as it was landed, such as a member
id. The identifier is turned into the ``id_key`` ingest stores (normalized by the type's
rule in ``ingest.id_rules``, keyed hash for ``privacy.pii_types``) by ingest's own
``resolve_identifiers`` over a one-row frame, so a plain email or phone never reaches an
error message, a query plan or the output. Every section is the gold table's own
columns for that person: identifiers appear as ``id_key``, which is already a keyed
hash for PII types.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis import tables as T
from precis.columns import ID_KEY, ID_TYPE, ID_VALUE, ITEM_ID, ONE_ID, RUN_DATE
from precis.errors import ConfigError
from precis.ingest.conform import IdentifierSettings, resolve_identifiers
from precis.tables import Table

#: Section of a person's page -> the gold table it comes from, in page order.
SECTIONS: dict[str, Table] = {
    "identifiers": T.IDENTITY_MAP,
    "history": T.IDENTITY_CHANGES,
    "tags": T.PROFILE_TAGS,
    "value": T.CUSTOMER_VALUE,
    "recommendations": T.RECOMMENDATIONS,
}

#: Columns shown per section (docs/tables.md) and the order of their rows.
COLUMNS: dict[str, tuple[str, ...]] = {
    "identifiers": (ONE_ID, ID_TYPE, ID_KEY, "first_seen", "last_seen"),
    "history": (RUN_DATE, "changed_at", "change", ONE_ID, "related_one_id", "identifiers"),
    "tags": (ONE_ID, "tag", "value", "type", "rule_version", RUN_DATE),
    "value": (
        ONE_ID,
        RUN_DATE,
        "lifecycle_stage",
        "rfm_segment",
        "rfm_score",
        "recency_days",
        "orders",
        "total_spend",
        "first_purchase",
        "last_purchase",
        "p_alive",
        "expected_purchases",
        "clv",
        "churn_risk",
    ),
    "recommendations": (
        ONE_ID,
        "rank",
        ITEM_ID,
        "score",
        "source",
        "consent_marketing",
        "model_version",
        RUN_DATE,
    ),
}
ORDER: dict[str, tuple[str, ...]] = {
    "identifiers": (ID_TYPE, ID_KEY),
    "history": ("changed_at", "change", ONE_ID),
    "tags": ("tag",),
    "value": (ONE_ID,),
    "recommendations": ("rank",),
}

MEMBER_ID = "member_id"


def identifier_key(
    spark: SparkSession, id_type: str, value: str, settings: IdentifierSettings
) -> str | None:
    """The ``id_key`` ingest stores for ``value`` of ``id_type`` (None if not valid).

    Resolved by ``conform.resolve_identifiers`` itself, so it matches
    ``gold/identity_map``; the value and the key enter Spark as data, never as literals
    of a query plan.
    """
    if id_type not in settings.rules:
        raise ConfigError(
            f"unknown identifier type '{id_type}'; types: {', '.join(sorted(settings.rules))}"
        )
    given = spark.createDataFrame([(id_type, value)], f"{ID_TYPE} string, {ID_VALUE} string")
    row = resolve_identifiers(given, settings).select(ID_KEY).first()
    return None if row is None else row[ID_KEY]


def one_id_of_identifier(
    identity_map: DataFrame, id_type: str, value: str, settings: IdentifierSettings
) -> str:
    """The ``one_id`` holding identifier ``id_type`` = ``value`` in ``gold/identity_map``.

    ConfigError naming the identifier when no person has it; a PII value is named by its
    type only, never shown.
    """
    key = identifier_key(identity_map.sparkSession, id_type, value, settings)
    found = (
        identity_map.filter((F.col(ID_TYPE) == F.lit(id_type)) & (F.col(ID_KEY) == F.lit(key)))
        .select(ONE_ID)
        .limit(1)
        .collect()
        if key is not None
        else []
    )
    if not found:
        shown = (
            f"{id_type} (a PII type: value not shown)"
            if id_type in settings.pii_types
            else f"{id_type} '{value}'"
        )
        raise ConfigError(f"no person has {shown} in gold/identity_map")
    return found[0][ONE_ID]


def check_one_id(identity_map: DataFrame, one_id: str, changes: DataFrame | None = None) -> str:
    """``one_id`` if ``gold/identity_map`` holds it; ConfigError naming it otherwise.

    With ``changes`` (``gold/identity_changes``) the error says what became of a
    ``one_id`` that existed once (merged into another, deleted).
    """
    if identity_map.filter(F.col(ONE_ID) == F.lit(one_id)).limit(1).count():
        return one_id
    message = f"one_id '{one_id}' is not in gold/identity_map"
    if changes is not None:
        last = (
            changes.filter(F.col(ONE_ID) == F.lit(one_id))
            .orderBy(F.desc("changed_at"), F.desc(RUN_DATE))
            .select("change", "related_one_id", RUN_DATE)
            .first()
        )
        if last is not None and last["change"] == "merged":
            message += f": merged into '{last['related_one_id']}' on run date {last['run_date']}"
        elif last is not None and last["change"] == "deleted":
            message += f": deleted on run date {last['run_date']} (none of its identifiers remain)"
    raise ConfigError(message)


def resolve_one_id(
    identity_map: DataFrame,
    settings: IdentifierSettings,
    one_id: str | None = None,
    member_id: str | None = None,
    changes: DataFrame | None = None,
) -> str:
    """The person's ``one_id`` from exactly one of ``one_id`` and ``member_id`` (blank
    counts as not given). A member id is matched as ingest stores it (``member_id``
    rule, trimmed by default). ConfigError naming the value when nobody has it."""
    one_id, member_id = (one_id or "").strip(), member_id or ""
    given_member = bool(member_id.strip())
    if bool(one_id) == given_member:
        raise ConfigError(
            "give exactly one of one_id and member_id"
            + (
                f" (got one_id '{one_id}' and member_id '{member_id}')"
                if one_id
                else " (got neither)"
            )
        )
    if one_id:
        return check_one_id(identity_map, one_id, changes)
    return one_id_of_identifier(identity_map, MEMBER_ID, member_id, settings)


def section(name: str, table: DataFrame, one_id: str) -> DataFrame:
    """Section ``name`` of person ``one_id``: its table's rows for them, shown columns,
    stable order. The history also lists changes that name them as the related one_id
    (another id merged into theirs, a split from theirs)."""
    mine = F.col(ONE_ID) == F.lit(one_id)
    if name == "history":
        mine = mine | (F.col("related_one_id") == F.lit(one_id))
    return table.filter(mine).select(*COLUMNS[name]).orderBy(*ORDER[name])


def person_view(
    one_id: str, tables: Mapping[Table, DataFrame | None]
) -> dict[str, DataFrame | None]:
    """Every section of person ``one_id``, from ``tables`` (each of ``SECTIONS``' tables ->
    its frame, or None when it does not exist); an absent table's section is None."""
    view: dict[str, DataFrame | None] = {}
    for name, table in SECTIONS.items():
        frame = tables.get(table)
        view[name] = None if frame is None else section(name, frame, one_id)
    return view
