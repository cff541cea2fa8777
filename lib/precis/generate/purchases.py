"""Purchases: when people buy (BG/NBD arrival times), what (order lines) and who paid.

Online orders are also checkout sessions, so they share the session's identifiers;
POS orders carry the phone or member id typed at the till.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import ORDER_ID
from precis.generate.activity import (
    IDENTITY_PERSON_COLUMNS,
    TOUCH_PERSON_COLUMNS,
    World,
    with_session_identity,
)
from precis.generate.catalog import (
    hotline,
    store_count,
)
from precis.generate.draws import (
    bucket,
    exprs,
    gamma,
    hex_id,
    num,
)
from precis.generate.identifiers import (
    NO_ID,
    PHONE_PLACEHOLDERS,
    id_struct,
    phone_variant,
    placeholder_or,
)
from precis.generate.people import (
    online_source,
    phone_at,
    preferred_category,
)

MAX_LINES = 4
LINE_SHARES = (0.45, 0.2, 0.08)  # chance of a 2nd, 3rd and 4th order line

#: Columns of the orders frame: what landing, lines, events, touches and records need.
ORDER_COLUMNS = (
    *TOUCH_PERSON_COLUMNS,
    "planted",
    ORDER_ID,
    "order_time_s",
    "sales_channel",
    "amount",
    "status",
    "lines",
    "order_key",
    "session_id",
    "source",
    "start_s",
    "id_main",
    "extras",
    "till_phone",
    "till_member",
)


# ----------------------------------------------------------------------- orders
#: Who buys when: the person columns ``orders`` needs, ``purchase_no`` (unique per
#: person), ``order_time_s`` and ``planted`` (the experiment an order belongs to, or null).
PURCHASE_COLUMNS = (
    *IDENTITY_PERSON_COLUMNS,
    "spend_nu",
    "pref_cum",
    "purchase_no",
    "order_time_s",
    "planted",
)
#: ``planted``: an order of an experiment's participant (precis.generate.experiments) or
#: one a channel's spend caused (``channel``, precis.generate.response); ``arm`` is set
#: on an order an arm's treatment caused, ``landed`` false on one that would have
#: happened in another arm (kept for the truth only).
PLANTED_TYPE = "struct<experiment_id:string,arm:string,landed:boolean,channel:string>"


def purchase_times(people: DataFrame) -> DataFrame:
    """The BG/NBD purchases of ``people``, in ``PURCHASE_COLUMNS``."""
    return (
        people.filter(F.col("purchase_offsets").isNotNull())
        .select(
            *IDENTITY_PERSON_COLUMNS,
            "spend_nu",
            "pref_cum",
            F.posexplode(F.col("purchase_offsets")).alias("purchase_no", "_offset"),
            "first_purchase_s",
        )
        .select(
            *PURCHASE_COLUMNS[:-2],
            F.expr("first_purchase_s + CAST(floor(_offset) AS BIGINT)").alias("order_time_s"),
            F.expr(f"CAST(NULL AS {PLANTED_TYPE})").alias("planted"),
        )
    )


def orders(purchases: DataFrame, w: World) -> DataFrame:
    """One row per purchase (``PURCHASE_COLUMNS``), with its lines and who paid.

    Online orders are also checkout sessions (``session_id`` = a checkout id) so that
    they produce events and an identity record; POS orders carry the phone typed at
    the till instead.
    """
    g = w.g
    draw = w.draw

    def u(salt: str, *more: str) -> str:
        return w.u(salt, ORDER_ID, *more)

    keyed = purchases.select(
        "*",
        *exprs(
            {
                ORDER_ID: f"concat('O', upper({hex_id(w.seed, 'order', 'person_id', 'purchase_no', length=18)}))",
                "_online": online_source(w.u("order_source", "person_id", "purchase_no")),
            }
        ),
    ).select(
        "*",
        *exprs(
            {
                "sales_channel": (
                    f"IF({w.u('order_pos', 'person_id', 'purchase_no')} < {num(g.offline_share)} OR _online IS NULL, "
                    "'pos', _online)"
                )
            }
        ),
    )

    # Gamma-Gamma spend: the person's nu sets the mean, each order draws its own value.
    # Up to MAX_LINES distinct items, spelled out slot by slot: lambdas over arrays are
    # evaluated without code generation and were the generator's slowest part.
    slots = range(1, MAX_LINES + 1)
    n_lines = (
        "(1 + "
        + " + ".join(
            f"CAST({u(f'line_{k}')} < {num(p)} AS INT)" for k, p in zip(slots[1:], LINE_SHARES)
        )
        + ")"
    )
    drawn = keyed.select(
        "*",
        *exprs(
            {
                "order_value": f"{gamma(num(g.spend_p), u('value_1'), u('value_2'), u('value_3'))} / spend_nu",
                "_n_lines": n_lines,
                **{f"_ucat_{k}": u("line_category", str(k)) for k in slots},
            }
        ),
    )

    def pick(k: int) -> str:
        category = preferred_category(
            u("line_explore", str(k)), f"_ucat_{k}", num(g.explore_share / 4), draw.n_categories
        )
        return f"IF({k} <= _n_lines, {draw.item_index(category, u('line_rank', str(k)))}, NULL)"

    def distinct(k: int) -> str:
        if k == 1:
            return "_pick_1"
        earlier = ", ".join(f"_pick_{j}" for j in range(1, k))
        return f"IF(_pick_{k} IS NOT NULL AND NOT array_contains(array({earlier}), _pick_{k}), _pick_{k}, NULL)"

    def price(k: int) -> str:
        item = f"_item_{k}"
        discount = (
            f"IF({u('discount', item)} < 0.3D, 0.8D + 0.15D * {u('discount_depth', item)}, 1.0D)"
        )
        return f"IF({item} IS NOT NULL, round({draw.price(item)} * {discount}, 2), NULL)"

    def quantity(k: int) -> str:
        # Quantities fill the order value with the chosen items.
        return (
            f"CAST(least(greatest(round(order_value / _n_items / _price_{k}), 1.0D), 5.0D) AS INT)"
        )

    def line(k: int) -> str:
        fields = f"'item_id', {draw.item_id(f'_item_{k}')}, 'quantity', _qty_{k}, 'unit_price', _price_{k}"
        return f"IF(_item_{k} IS NOT NULL, named_struct({fields}), NULL)"

    status = (
        f"CASE WHEN {u('refund')} < {num(g.refund_rate)} THEN 'refunded' "
        f"WHEN {u('refund')} < {num(g.refund_rate + 0.02)} THEN NULL ELSE 'paid' END"
    )
    priced = (
        drawn.select("*", *exprs({f"_pick_{k}": pick(k) for k in slots}))
        .select("*", *exprs({f"_item_{k}": distinct(k) for k in slots}))
        .select(
            "*",
            *exprs(
                {
                    "_n_items": " + ".join(f"CAST(_item_{k} IS NOT NULL AS INT)" for k in slots),
                    **{f"_price_{k}": price(k) for k in slots},
                }
            ),
        )
        .select("*", *exprs({f"_qty_{k}": quantity(k) for k in slots}))
        .select(
            "*",
            *exprs(
                {
                    "lines": "array_compact(array(" + ", ".join(line(k) for k in slots) + "))",
                    "amount": "round("
                    + " + ".join(f"coalesce(_qty_{k} * _price_{k}, 0.0D)" for k in slots)
                    + ", 2)",
                    "status": status,
                }
            ),
        )
        .drop(
            "_n_lines",
            "_n_items",
            *[f"_{x}_{k}" for x in ("ucat", "pick", "item", "price", "qty") for k in slots],
        )
    )
    checkout = priced.select(
        "*",
        *exprs(
            {
                "session_id": f"IF(sales_channel != 'pos', {hex_id(w.seed, 'checkout', 'order_id')}, NULL)",
                "source": "sales_channel",
                "start_s": f"greatest(order_time_s - 600L, {w.period.start_s}L)",
                "is_checkout": "true",
            }
        ),
    )
    return _with_till_identity(with_session_identity(checkout, w), w).select(*ORDER_COLUMNS)


def _with_till_identity(orders_df: DataFrame, w: World) -> DataFrame:
    """At the till: the phone the clerk typed (sometimes the store hotline) and the member card."""
    g = w.g

    def u(salt: str) -> str:
        return w.u(salt, ORDER_ID)

    store = bucket(w.seed, "store", store_count(g.people), ORDER_ID)
    own_phone = phone_variant(
        phone_at("order_time_s"), u("phone_variant"), u("phone_style"), g.variant_rate
    )
    own_or_junk = placeholder_or(own_phone, PHONE_PLACEHOLDERS, u("phone_junk"), g.placeholder_rate)
    typed = f"IF({u('hotline')} < {num(g.hotline_rate)}, {hotline(store)}, {own_or_junk})"
    till = orders_df.select(
        "*",
        *exprs(
            {
                "till_phone": f"IF(sales_channel = 'pos', {id_struct('phone', typed)}, {NO_ID})",
                "till_member": (
                    f"IF(sales_channel = 'pos' AND is_member AND {u('member_card')} < 0.7D, "
                    f"{id_struct('member_id', 'member_id')}, {NO_ID})"
                ),
            }
        ),
    )
    order_key = (
        f"IF(sales_channel = 'pos', "
        f"IF(till_member IS NOT NULL AND {u('order_key')} < 0.6D, till_member, till_phone), buyer_id)"
    )
    return till.select("*", *exprs({"order_key": order_key}))


def order_lines(orders_df: DataFrame) -> DataFrame:
    return orders_df.select(
        "person_id",
        ORDER_ID,
        "order_time_s",
        "session_id",
        "sales_channel",
        "id_main",
        F.posexplode(F.col("lines")).alias("line_no", "line"),
    )


# ----------------------------------------------------------------------- events
