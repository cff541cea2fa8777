"""Silver datasets resolved to ``one_id``, in the shape tag templates read.

Every frame has ``one_id``, ``_date`` (the row's calendar day, for windows), ``_ts``
(its time, for first/last) and the fields of precis.tags.definitions.DATASETS.
Orders go through precis.lifecycle.summary.resolve_orders, so tags and customer value
agree on who bought what, which identifiers are isolated and what counts as refunded.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import ID_KEY, ID_TYPE, ITEM_ID, ONE_ID, ORDER_ID
from precis.identity.resolve import resolve
from precis.lifecycle.summary import resolve_orders
from precis.tags.templates import DATASETS, WINDOWED, Tag


def silver_tables(tags: Sequence[Tag]) -> dict[str, str]:
    """The silver tables the data-reading tags need: table name -> a tag reading it."""
    needed: dict[str, str] = {}
    for tag in tags:
        if tag.template in (*WINDOWED, "attribute"):
            for table in DATASETS[tag.spec.dataset].needs:
                needed.setdefault(table, tag.name)
    return needed


def skipped_tags(tags: Sequence[Tag], absent: Sequence[str]) -> dict[str, str]:
    """Tag name -> why it is skipped, for the tags reading an ``absent`` silver table
    (named as ``silver/<dataset>``)."""
    skipped: dict[str, str] = {}
    for tag in tags:
        if tag.template in (*WINDOWED, "attribute"):
            missing = [t for t in DATASETS[tag.spec.dataset].needs if f"silver/{t}" in absent]
            if missing:
                skipped[tag.name] = "no " + ", ".join(f"silver/{t}" for t in missing)
    return skipped


def _orders(
    orders: DataFrame, identity_map: DataFrame, isolated: DataFrame | None, refunded: bool
) -> DataFrame:
    resolved = resolve_orders(orders, identity_map, isolated).filter(
        F.col("refunded") == F.lit(refunded)
    )
    extra = orders.select(ORDER_ID, "order_time", "channel", "currency")
    return resolved.join(extra, on=ORDER_ID, how="inner").select(
        ONE_ID,
        F.col("order_date").alias("_date"),
        F.col("order_time").alias("_ts"),
        ORDER_ID,
        "amount",
        "channel",
        "currency",
    )


def _with_items(df: DataFrame, items: DataFrame | None) -> DataFrame:
    if items is None:
        return df.withColumn("category", F.lit(None).cast("string")).withColumn(
            "brand", F.lit(None).cast("string")
        )
    return df.join(F.broadcast(items.select(ITEM_ID, "category", "brand")), on=ITEM_ID, how="left")


def order_lines(paid: DataFrame, order_items: DataFrame, items: DataFrame | None) -> DataFrame:
    lines = paid.select(ONE_ID, "_date", "_ts", ORDER_ID).join(
        order_items.select(ORDER_ID, ITEM_ID, "quantity", "unit_price"),
        on=ORDER_ID,
        how="inner",
    )
    return _with_items(lines, items).select(
        ONE_ID,
        "_date",
        "_ts",
        ORDER_ID,
        ITEM_ID,
        F.col("quantity").cast("long").alias("quantity"),
        F.col("unit_price").cast("double").alias("unit_price"),
        (F.col("quantity") * F.col("unit_price")).cast("double").alias("line_amount"),
        "category",
        "brand",
    )


def events(
    events_df: DataFrame,
    identity_map: DataFrame,
    items: DataFrame | None,
    isolated: DataFrame | None,
) -> DataFrame:
    resolved = resolve(events_df, identity_map, isolated).select(
        ONE_ID,
        F.to_date("event_time").alias("_date"),
        F.col("event_time").alias("_ts"),
        "event_id",
        "event_type",
        "channel",
        "source",
        ITEM_ID,
    )
    return _with_items(resolved, items)


def touchpoints(touch: DataFrame, identity_map: DataFrame, isolated: DataFrame | None) -> DataFrame:
    return resolve(touch, identity_map, isolated).select(
        ONE_ID,
        F.to_date("touch_time").alias("_date"),
        F.col("touch_time").alias("_ts"),
        "touch_id",
        "channel",
        "campaign_id",
        "interaction",
        F.col("cost").cast("double").alias("cost"),
    )


def customers(cust: DataFrame, identity_map: DataFrame) -> DataFrame:
    # Consent is a person's own statement: isolation guards (shared hotlines) do not apply
    # to CRM rows, which carry the member's own identifiers.
    return resolve(cust, identity_map).select(
        ONE_ID,
        ID_TYPE,
        ID_KEY,
        "gender",
        "city",
        "birth_date",
        "signup_time",
        "consent_marketing",
        # The time of the consent statement (precis.consent); older silver tables lack it.
        *[c for c in ("consent_updated_at",) if c in cust.columns],
    )


def build(
    silver: dict[str, DataFrame],
    identity_map: DataFrame,
    needed: set[str],
    isolated: DataFrame | None = None,
) -> dict[str, DataFrame]:
    """The tag datasets in ``needed`` from the silver tables in ``silver`` (by table name)."""
    out: dict[str, DataFrame] = {}
    items = silver.get("items")
    if needed & {"orders", "order_lines"}:
        paid = _orders(silver["orders"], identity_map, isolated, refunded=False)
        out["orders"] = paid
        if "order_lines" in needed:
            out["order_lines"] = order_lines(paid, silver["order_items"], items)
    if "refunds" in needed:
        out["refunds"] = _orders(silver["orders"], identity_map, isolated, refunded=True)
    if "events" in needed:
        out["events"] = events(silver["events"], identity_map, items, isolated)
    if "touchpoints" in needed:
        out["touchpoints"] = touchpoints(silver["touchpoints"], identity_map, isolated)
    if "customers" in needed:
        out["customers"] = customers(silver["customers"], identity_map)
    return {k: v for k, v in out.items() if k in needed}
