"""Landing datasets in the contract's exact shape, and the identity records behind them.

``id_observations`` is the union of every record that saw identifiers together: CRM
sign-ups and phone updates, WeChat follows, online sessions (browse and checkout), POS
receipts and the login service's sign-ins (``precis.generate.signins``). Internal frames
keep ``person_id`` and times in epoch seconds; ``conform`` turns them into the landing
schema of ``precis.schemas.SPECS``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, DateType, TimestampType

from precis.columns import ID_TYPE, ID_VALUE, ORDER_ID, RECORD_ID
from precis.generate.activity import World
from precis.generate.draws import SECONDS_PER_DAY, choice, exprs, hex_id, num, text
from precis.generate.identifiers import (
    EMAIL_PLACEHOLDERS,
    PHONE_PLACEHOLDERS,
    email_variant,
    id_struct,
    phone_variant,
    placeholder_or,
)
from precis.generate.people import phone_at
from precis.schemas import SPECS

ISO_TIMESTAMP = "yyyy-MM-dd'T'HH:mm:ssXXX"
ISO_DATE = "yyyy-MM-dd"


def source_records(
    frame: DataFrame, source: str, record_id: str, observed_s: str, ids: str
) -> DataFrame:
    """One row per source record: ``person_id``, ``source``, ``record_id``, ``observed_s`` and
    ``ids``, the identifiers seen together (``ids`` is SQL: an array of identifier structs,
    absent ones as null structs, never structs with a null value)."""
    return frame.select(
        "person_id",
        *exprs(
            {
                "source": source,
                RECORD_ID: record_id,
                "observed_s": observed_s,
                "ids": f"array_compact({ids})",
            }
        ),
    )


def id_rows(records: DataFrame) -> DataFrame:
    """One row per identifier of each record (the grain of ``id_observations``)."""
    return records.select(
        "person_id", "source", RECORD_ID, "observed_s", F.explode(F.col("ids")).alias("id")
    ).select(
        "person_id",
        "source",
        RECORD_ID,
        *exprs({ID_TYPE: "id.id_type", ID_VALUE: "id.id_value"}),
        "observed_s",
    )


def session_records(sessions: DataFrame) -> DataFrame:
    """App, web and WeChat sessions: the session's identifiers were seen together."""
    return source_records(
        sessions, "source", "session_id", "start_s", "concat(array(id_main), extras)"
    )


def crm_records(people: DataFrame, w: World) -> DataFrame:
    """Member sign-up (member id, phone, email) and, for people who switch, the phone update."""
    g = w.g

    def u(salt: str) -> str:
        return w.u(salt, "person_id")

    members = people.filter(F.col("is_member"))
    phone = placeholder_or(
        phone_variant("phone_0", u("crm_phone_variant"), u("crm_phone_style"), g.variant_rate / 2),
        PHONE_PLACEHOLDERS,
        u("crm_phone_junk"),
        g.placeholder_rate,
    )
    email = placeholder_or(
        email_variant("email", u("crm_email_variant"), u("crm_email_style"), g.variant_rate / 2),
        EMAIL_PLACEHOLDERS,
        u("crm_email_junk"),
        g.placeholder_rate,
    )
    # Some register their email on the web only: the CRM never sees it.
    crm_email = (
        "has_email"
        if g.crm_email_share >= 1.0
        else f"has_email AND {u('crm_email')} < {num(g.crm_email_share)}"
    )
    signup = source_records(
        members,
        "'crm'",
        f"concat('CRM', upper({hex_id(w.seed, 'crm', 'person_id', length=14)}))",
        f"greatest(signup_s, {w.period.start_s}L)",
        f"array({id_struct('member_id', 'member_id')}, {id_struct('phone', phone)}, "
        f"IF({crm_email}, {id_struct('email', email)}, NULL))",
    )
    movers = members.filter(F.expr(f"phone_changes AND phone_change_s < {w.period.end_s}L"))
    update = source_records(
        movers,
        "'crm'",
        f"concat('CRMU', upper({hex_id(w.seed, 'crm_update', 'person_id', length=13)}))",
        "phone_change_s",
        f"array({id_struct('member_id', 'member_id')}, {id_struct('phone', 'phone_1')})",
    )
    return signup.unionByName(update)


def wechat_records(people: DataFrame, w: World) -> DataFrame:
    """Following the official account: open_id, union_id and, when bound, the phone."""
    g = w.g

    def u(salt: str) -> str:
        return w.u(salt, "person_id")

    followers = people.filter(F.col("wechat_user")).select(
        "*",
        *exprs(
            {
                "_followed_s": (
                    f"first_seen_s + CAST(floor({u('follow_at')} * "
                    f"least(active_end_s - first_seen_s, {3 * SECONDS_PER_DAY}L)) AS BIGINT)"
                )
            }
        ),
    )
    # People type their own number into WeChat: more variety than a CRM form allows.
    bound = phone_variant(
        phone_at("_followed_s"),
        u("wechat_phone_variant"),
        u("wechat_phone_style"),
        min(1.0, 2 * g.variant_rate),
    )
    return source_records(
        followers,
        "'wechat'",
        f"concat('WX', upper({hex_id(w.seed, 'follow', 'person_id', length=16)}))",
        "_followed_s",
        f"array({id_struct('open_id', 'open_id')}, {id_struct('union_id', 'union_id')}, "
        f"IF({u('wechat_phone')} < {num(g.wechat_phone_share)}, {id_struct('phone', bound)}, NULL))",
    )


def pos_records(orders_df: DataFrame) -> DataFrame:
    """A POS receipt links the typed phone and the member card shown at the till."""
    at_store = orders_df.filter(F.col("sales_channel") == "pos")
    return source_records(
        at_store, "'pos'", ORDER_ID, "order_time_s", "array(till_phone, till_member)"
    )


def customers(people: DataFrame) -> DataFrame:
    """The CRM's consent statements: a row per member at sign-up (no
    ``consent_updated_s``: the statement is the sign-up's), then one per later change of
    consent (a withdrawal, a grant again) with the same member id, profile and sign-up
    time, the new ``consent_marketing`` and its ``consent_updated_s``."""
    members = people.filter(F.col("is_member"))

    def statement(frame: DataFrame, consent: str, at: str) -> DataFrame:
        return frame.select(
            "person_id",
            *exprs({ID_TYPE: "'member_id'", ID_VALUE: "member_id"}),
            "gender",
            "birth_date",
            "city",
            F.col("signup_s").alias("signup_time_s"),
            *exprs({"consent_marketing": consent, "consent_updated_s": at}),
        )

    withdrawn = members.filter(F.col("consent_withdrawn_s").isNotNull())
    regranted = members.filter(F.col("consent_regranted_s").isNotNull())
    return (
        statement(members, "consent_marketing", "CAST(NULL AS BIGINT)")
        .unionByName(statement(withdrawn, "false", "consent_withdrawn_s"))
        .unionByName(statement(regranted, "true", "consent_regranted_s"))
    )


def forget_requests(people: DataFrame, w: World) -> DataFrame:
    """A few people ask to be forgotten, by whichever identifier they remember."""
    g = w.g

    def u(salt: str) -> str:
        return w.u(salt, "person_id")

    always = g.seed % g.people  # at least one request in every run
    asking = people.filter(F.expr(f"{u('forget')} < {num(g.forget_share)} OR person_id = {always}"))
    kind = choice(("email", "member_id", "phone"), (1.0, 1.0, 1.0), u("forget_by"))
    latest_phone = phone_variant(
        "IF(phone_changes, phone_1, phone_0)",
        u("forget_variant"),
        u("forget_style"),
        g.variant_rate,
    )
    identifier = (
        f"CASE WHEN has_email AND {kind} = 'email' THEN "
        f"{id_struct('email', email_variant('email', u('forget_variant'), u('forget_style'), g.variant_rate))} "
        f"WHEN is_member AND {kind} = 'member_id' THEN {id_struct('member_id', 'member_id')} "
        f"ELSE {id_struct('phone', latest_phone)} END"
    )
    requested = (
        f"greatest({w.period.end_s - 1}L - CAST(floor({u('forget_at')} * {30 * SECONDS_PER_DAY}) AS BIGINT), "
        f"{w.period.start_s}L)"
    )
    return asking.select("person_id", *exprs({"_id": identifier, "requested_s": requested})).select(
        "person_id", *exprs({ID_TYPE: "_id.id_type", ID_VALUE: "_id.id_value"}), "requested_s"
    )


# -------------------------------------------------------------- landing schemas
#: Optional contract columns the synthetic world has no use for: it lands no column for
#: them (a landed dataset may leave out an optional column). Its ids are unique across
#: sources, so orders, their items and touchpoints carry no source.
NOT_GENERATED = {"orders": ("source",), "order_items": ("source",), "touchpoints": ("source",)}


def landed_columns(dataset: str) -> list[tuple[str, DataType]]:
    """The contract columns the generator lands for ``dataset``, in contract order."""
    skip = NOT_GENERATED.get(dataset, ())
    return [(name, t) for name, t in SPECS[dataset].columns if name not in skip]


def conform(frame: DataFrame, dataset: str, renames: Mapping[str, str]) -> DataFrame:
    """Select exactly the dataset's columns, in order and type, from internal columns.

    ``renames`` gives the SQL of each landing column that is not already a column of
    ``frame`` under its landing name (e.g. times held as epoch seconds).
    """
    return frame.select(
        *exprs(
            {
                name: f"CAST({renames.get(name, name)} AS {data_type.simpleString()})"
                for name, data_type in landed_columns(dataset)
            }
        )
    )


def as_text(frame: DataFrame, dataset: str, every_column: bool) -> DataFrame:
    """Temporal columns as ISO-8601 strings (csv/json), or every column as a string.

    All-string data is how corrupted rows such as an amount of "abc" can be landed in a
    typed format like parquet.
    """
    columns = {}
    for name, data_type in landed_columns(dataset):
        if isinstance(data_type, TimestampType):
            columns[name] = f"date_format({name}, {text(ISO_TIMESTAMP)})"
        elif isinstance(data_type, DateType):
            columns[name] = f"date_format({name}, {text(ISO_DATE)})"
        elif every_column:
            columns[name] = f"CAST({name} AS STRING)"
        else:
            columns[name] = name
    return frame.select(*exprs(columns))
