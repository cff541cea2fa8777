"""Marketing touches: background exposure for everybody, touches shortly before purchases.

Like the rest of the activity, each touch draws its randomness from its own key
(person and slot, or order and slot), never from its position.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from precis.columns import ORDER_ID
from precis.generate.activity import TOUCH_PERSON_COLUMNS, World, explode_count
from precis.generate.catalog import CHANNELS, campaign_id, channel_names, conversion_weights
from precis.generate.draws import (
    SECONDS_PER_DAY,
    choice,
    exponential,
    exprs,
    hex_id,
    num,
    poisson,
    text,
)
from precis.generate.identifiers import id_struct, maybe_id
from precis.generate.people import cookie_at, phone_at


def _touch_details(frame: DataFrame, w: World) -> DataFrame:
    """Identifier, interaction, cost and campaign of touches (``touch_id``, ``channel``, ``touch_time_s``).

    The identifier is the one the channel's ad platform knows the person by, with the
    phone (an SMS) as the fallback.
    """

    def u(salt: str) -> str:
        return w.u(salt, "touch_id")

    candidates = {
        "cookie_id": maybe_id("web_user", "cookie_id", cookie_at(w.seed, "touch_time_s")),
        "device_id": maybe_id("app_user", "device_id", "element_at(devices, 1)"),
        "open_id": maybe_id("wechat_user", "open_id", "open_id"),
        "email": maybe_id("has_email", "email", "email"),
        "phone": id_struct("phone", phone_at("touch_time_s")),
    }
    identity = " ".join(
        f"WHEN {text(c.name)} THEN coalesce({', '.join(f'_by_{k}' for k in c.id_types)}, _by_phone)"
        for c in CHANNELS
    )
    interactions = []
    costs = []
    for c in CHANNELS:
        first, *rest = c.interactions
        picked = (
            f"IF({u('interaction')} < 0.75D, {text(first)}, {text(rest[0])})"
            if rest
            else text(first)
        )
        interactions.append(f"WHEN {text(c.name)} THEN {picked}")
        if c.cost_per_click is not None:
            per_touch = f"IF(interaction IN ('click', 'visit'), {num(c.cost_per_click)}, {num(c.cost_per_click / 50)})"
            costs.append(f"WHEN {text(c.name)} THEN {per_touch}")
    paid = ", ".join(text(c.name) for c in CHANNELS if c.cost_per_click is not None)
    day = f"floor((touch_time_s - {w.period.start_s}L) / {SECONDS_PER_DAY})"
    return frame.select(
        "*",
        *exprs(
            {
                "interaction": f"CASE channel {' '.join(interactions)} END",
                **{f"_by_{k}": v for k, v in candidates.items()},
            }
        ),
    ).select(
        "person_id",
        "touch_id",
        "touch_time_s",
        *exprs(
            {
                "id_main": f"CASE channel {identity} ELSE _by_phone END",
                "channel": "channel",
                "campaign_id": f"IF(channel IN ({paid}), {campaign_id('channel', day, w.period.days)}, NULL)",
                "interaction": "interaction",
                "cost": f"round((CASE channel {' '.join(costs)} END) * (0.8D + 0.4D * {u('cost')}), 4)",
            }
        ),
    )


def touches(
    people: DataFrame, orders_df: DataFrame, w: World, caused: DataFrame | None = None
) -> DataFrame:
    """Background touches plus touches before purchases (and ``caused``: the touches that
    caused orders, precis.generate.response), with their details."""
    found = background_touches(people, w).unionByName(conversion_touches(orders_df, w))
    return _touch_details(found if caused is None else found.unionByName(caused), w)


def background_touches(people: DataFrame, w: World) -> DataFrame:
    """Touches everybody gets, buyers or not, in proportion to channel exposure."""
    windowed = people.select(
        "*",
        *exprs(
            {
                "touch_from_s": f"greatest({w.period.start_s}L, first_seen_s - {14 * SECONDS_PER_DAY}L)"
            }
        ),
    ).select(
        "*",
        *exprs(
            {
                "_touch_mean": f"{num(w.g.touch_rate / SECONDS_PER_DAY)} * (active_end_s - touch_from_s)"
            }
        ),
    )
    n = poisson("_touch_mean", w.u("touches", "person_id"), w.u("touches_2", "person_id"))
    slots = windowed.select(*TOUCH_PERSON_COLUMNS, "touch_from_s", explode_count(n).alias("slot"))
    return slots.select(
        *TOUCH_PERSON_COLUMNS,
        *exprs(
            {
                "touch_id": f"concat('T', {hex_id(w.seed, 'touch', 'person_id', 'slot', length=19)})",
                "touch_time_s": (
                    f"touch_from_s + CAST(floor({w.u('touch_at', 'person_id', 'slot')} "
                    "* (active_end_s - touch_from_s)) AS BIGINT)"
                ),
                "channel": choice(
                    channel_names(),
                    [c.exposure for c in CHANNELS],
                    w.u("touch_channel", "person_id", "slot"),
                ),
            }
        ),
    )


def conversion_touches(orders_df: DataFrame, w: World) -> DataFrame:
    """Touches shortly before purchases, channels weighted by exposure times planted effect."""

    def u(salt: str) -> str:
        return w.u(salt, ORDER_ID)

    n = (
        f"IF({u('attributed')} < {num(w.g.attributed_share)}, "
        f"1 + CAST({u('touch_2')} < 0.5D AS INT) + CAST({u('touch_3')} < 0.2D AS INT), 0)"
    )
    slots = orders_df.select(
        *TOUCH_PERSON_COLUMNS, ORDER_ID, "order_time_s", explode_count(n).alias("slot")
    )
    wait = exponential(w.u("touch_lead", ORDER_ID, "slot"), num(2.0 * SECONDS_PER_DAY))
    lead = f"CAST(floor(300.0D + {wait}) AS BIGINT)"
    return slots.select(
        *TOUCH_PERSON_COLUMNS,
        *exprs(
            {
                "touch_id": f"concat('T', {hex_id(w.seed, 'conversion_touch', 'order_id', 'slot', length=19)})",
                "touch_time_s": f"greatest(order_time_s - {lead}, {w.period.start_s}L)",
                "channel": choice(
                    channel_names(), conversion_weights(), w.u("touch_channel", ORDER_ID, "slot")
                ),
            }
        ),
    )
