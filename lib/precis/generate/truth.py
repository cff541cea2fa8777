"""Ground truth: what the jobs should discover, written under ``<root>/truth/``.

Only tests and evaluations read these tables; no job may use them.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis.columns import ID_TYPE, ID_VALUE, ORDER_ID, RECORD_ID
from precis.generate.activity import World
from precis.generate.catalog import (
    PLACEHOLDER_DEVICE,
    PLACEHOLDER_EMAIL,
    PLACEHOLDER_PHONE,
    PLACEHOLDER_TEXT,
    cafe_cookie,
    cafe_count,
    categories,
    hotline,
    kiosk_device,
    store_count,
)
from precis.generate.draws import exprs
from precis.generate.identifiers import COOKIE_PLACEHOLDERS
from precis.generate.settings import GenerateConfig

TRAP_SCHEMA = "kind string, id_type string, id_value string"


def record_person(
    records: DataFrame,
    events: DataFrame,
    orders: DataFrame,
    touches: DataFrame,
    customers: DataFrame,
    forgets: DataFrame,
) -> DataFrame:
    """The true person behind every landed record.

    ``id_observations`` records keep their (source, record_id); rows of the other
    datasets use the dataset as source and their key as record_id (``id_type:id_value``
    for customers and forget requests), so every landed identifier traces to a person.
    """

    def keyed(frame: DataFrame, dataset: str, source: str | None, record_id: str) -> DataFrame:
        return frame.select(
            F.lit(dataset).alias("dataset"),
            (F.col("source") if source is None else F.lit(source)).alias("source"),
            F.col(record_id).alias(RECORD_ID),
            F.col("person_id"),
        )

    by_identifier = F.concat_ws(":", F.col(ID_TYPE), F.col(ID_VALUE))
    return (
        keyed(records, "id_observations", None, RECORD_ID)
        .unionByName(keyed(events, "events", "events", "event_id"))
        .unionByName(keyed(orders, "orders", "orders", ORDER_ID))
        .unionByName(keyed(touches, "touchpoints", "touchpoints", "touch_id"))
        .unionByName(
            keyed(
                # A customer's consent changes repeat its key: one truth row per key.
                customers.select("person_id", by_identifier.alias("key")).distinct(),
                "customers",
                "customers",
                "key",
            )
        )
        .unionByName(
            keyed(
                forgets.select("person_id", by_identifier.alias("key")),
                "forget_requests",
                "forget_requests",
                "key",
            )
        )
    )


def person_preferences(people: DataFrame, w: World) -> DataFrame:
    names = F.array(*[F.lit(n) for n, _ in categories(w.g.items)])
    return people.select(
        "person_id", F.posexplode(F.col("pref_weights")).alias("pos", "weight")
    ).select(
        "person_id",
        F.element_at(names, F.col("pos") + 1).alias("category"),
        F.col("weight"),
    )


def person_purchase_params(people: DataFrame, g: GenerateConfig, orders: DataFrame) -> DataFrame:
    """Each person's BG/NBD and Gamma-Gamma draws, their purchases by that process, and
    ``experiment_orders``: their landed orders planted besides (by experiments, or
    caused by campaign spend)."""
    bought = F.col("purchase_offsets").isNotNull()
    planted = (
        orders.filter("planted IS NOT NULL AND planted.landed")
        .groupBy("person_id")
        .agg(F.count(F.lit(1)).alias("experiment_orders"))
    )
    return people.join(planted, "person_id", "left").select(
        "person_id",
        F.col("is_buyer").alias("latent_buyer"),
        F.col("lam").alias("lambda"),
        F.col("p_drop").alias("p"),
        F.col("dropout_after"),
        F.lit(g.spend_p).alias("spend_p"),
        F.col("spend_nu"),
        (F.lit(g.spend_p) / F.col("spend_nu")).alias("expected_order_value"),
        F.when(bought, F.timestamp_seconds(F.col("first_purchase_s"))).alias("first_purchase_at"),
        F.coalesce(F.size(F.col("purchase_offsets")), F.lit(0)).alias("purchases"),
        F.timestamp_seconds(F.col("dropout_s")).alias("dropout_at"),
        (bought & F.col("dropout_s").isNull()).alias("alive_at_end"),
        F.coalesce(F.col("experiment_orders"), F.lit(0)).alias("experiment_orders"),
    )


def people_truth(people: DataFrame) -> DataFrame:
    return people.select(
        "person_id",
        "is_member",
        "has_email",
        "app_user",
        "web_user",
        "wechat_user",
        "phone_changes",
        "family",
        F.when(F.col("family"), F.col("household_id")).alias("household_id"),
        "cafe_user",
        # Consent as the CRM states it at the end of the period (null: not a member).
        F.expr(
            "CASE WHEN consent_regranted_s IS NOT NULL THEN true "
            "WHEN consent_withdrawn_s IS NOT NULL THEN false ELSE consent_marketing END"
        ).alias("consent_marketing"),
        F.timestamp_seconds(F.col("consent_withdrawn_s")).alias("consent_withdrawn_at"),
        F.timestamp_seconds(F.col("consent_regranted_s")).alias("consent_regranted_at"),
        F.timestamp_seconds(F.col("first_seen_s")).alias("first_seen"),
        F.timestamp_seconds(F.col("active_end_s")).alias("active_until"),
    )


def traps(spark: SparkSession, people: DataFrame, g: GenerateConfig) -> DataFrame:
    """Identifier values that link unrelated people, in canonical (normalized) form."""
    placeholders = spark.createDataFrame(
        [("placeholder", "device_id", PLACEHOLDER_DEVICE)]
        + [("placeholder", "device_id", v) for v in PLACEHOLDER_TEXT]
        + [("placeholder", "cookie_id", v) for v in COOKIE_PLACEHOLDERS]
        + [
            ("placeholder", "phone", PLACEHOLDER_PHONE),
            ("placeholder", "email", PLACEHOLDER_EMAIL),
        ],
        TRAP_SCHEMA,
    )
    hotlines = spark.range(store_count(g.people), numPartitions=1).select(
        *exprs({"kind": "'hotline'", ID_TYPE: "'phone'", ID_VALUE: hotline("id")})
    )
    cafes = spark.range(cafe_count(g.people, g.cafe_share), numPartitions=1).select(
        *exprs(
            {
                "kind": "'cafe_cookie'",
                ID_TYPE: "'cookie_id'",
                ID_VALUE: cafe_cookie(g.seed, "id"),
            }
        )
    )
    families = (
        people.filter(F.col("family"))
        .select(
            F.lit("family_device").alias("kind"),
            F.lit("device_id").alias(ID_TYPE),
            F.col("family_device").alias(ID_VALUE),
        )
        .dropDuplicates([ID_VALUE])
    )
    found = placeholders.unionByName(hotlines).unionByName(cafes).unionByName(families)
    if g.kiosk_share == 0:
        return found
    # Every store's kiosk, as hotlines are listed for every store.
    kiosks = spark.range(store_count(g.people), numPartitions=1).select(
        *exprs(
            {"kind": "'kiosk_device'", ID_TYPE: "'device_id'", ID_VALUE: kiosk_device(g.seed, "id")}
        )
    )
    return found.unionByName(kiosks)
