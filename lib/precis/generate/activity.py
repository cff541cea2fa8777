"""What people do: sessions, events, orders with their lines, marketing touches.

Each frame is the person frame exploded (sessions per person, events per session,
purchases per person, ...), carrying the person's columns along so identifiers and
tastes are available without a join. Every row draws its randomness from its own key
(session id, order id, ...), never from its position.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.config import GenerateConfig
from precis.generate.catalog import (
    CHANNELS,
    ItemDraw,
    campaign_id,
    channel_names,
    conversion_weights,
    hotline,
    store_count,
)
from precis.generate.draws import (
    SECONDS_PER_DAY,
    bucket,
    choice,
    exponential,
    exprs,
    gamma,
    hex_id,
    num,
    poisson,
    text,
    uniform,
)
from precis.generate.identifiers import (
    COOKIE_PLACEHOLDERS,
    DEVICE_PLACEHOLDERS,
    EMAIL_PLACEHOLDERS,
    ID_STRUCT,
    NO_ID,
    PHONE_PLACEHOLDERS,
    device_case,
    email_variant,
    id_struct,
    maybe_id,
    phone_variant,
    placeholder_or,
)
from precis.generate.people import (
    cookie_at,
    device_pick,
    online_source,
    phone_at,
    preferred_category,
)
from precis.generate.period import Period

EVENT_TYPES = ("view", "click", "search", "add_to_cart", "favorite")
EVENT_WEIGHTS = (0.55, 0.15, 0.08, 0.12, 0.10)
# Carts and favourites follow taste more closely than casual views.
COMMITTED_EVENTS = ("add_to_cart", "favorite")
MAX_LINES = 4
LINE_SHARES = (0.45, 0.2, 0.08)  # chance of a 2nd, 3rd and 4th order line

#: Person columns a touch needs to pick the identifier a channel sees.
TOUCH_PERSON_COLUMNS = (
    "person_id",
    "first_seen_s",
    "active_end_s",
    "web_user",
    "n_cookies",
    "app_user",
    "devices",
    "wechat_user",
    "open_id",
    "has_email",
    "email",
    "phone_changes",
    "phone_change_s",
    "phone_0",
    "phone_1",
)

#: Person columns that decide which identifiers a session records.
IDENTITY_PERSON_COLUMNS = (
    *TOUCH_PERSON_COLUMNS,
    "is_member",
    "member_id",
    "family",
    "family_device",
    "cafe_user",
    "cafe_cookie",
    "union_id",
)

#: Columns of the orders frame: what landing, lines, events, touches and records need.
ORDER_COLUMNS = (
    *TOUCH_PERSON_COLUMNS,
    "order_id",
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

#: Columns every session frame has (browse and checkout), beyond the person's.
SESSION_COLUMNS = (
    "session_id",
    "source",
    "start_s",
    "is_checkout",
    "id_main",
    "extras",
    "buyer_id",
    "entry_channel",
)


@dataclass(frozen=True)
class World:
    """What every generator step needs: the config, the period and the catalogue draw."""

    g: GenerateConfig
    period: Period
    draw: ItemDraw

    @property
    def seed(self) -> int:
        return self.g.seed

    def u(self, salt: str, *keys: str) -> str:
        return uniform(self.g.seed, salt, *keys)


def _explode_count(n: str) -> F.Column:
    # sequence(1, 0) counts down in Spark, so zero counts must give no rows explicitly.
    return F.explode(F.expr(f"IF({n} > 0, sequence(1, CAST({n} AS INT)), NULL)"))


# --------------------------------------------------------------------- sessions
def browse_sessions(people: DataFrame, w: World) -> DataFrame:
    """Online visits while the person is active; the online source decides the identifiers."""
    counted = people.select(
        *IDENTITY_PERSON_COLUMNS,
        "pref_cum",
        *exprs(
            {
                "_session_mean": f"session_rate * (active_end_s - first_seen_s) / {num(float(SECONDS_PER_DAY))}"
            }
        ),
    )
    n = poisson("_session_mean", w.u("sessions", "person_id"), w.u("sessions_2", "person_id"))
    slots = counted.select("*", _explode_count(n).alias("slot")).drop("_session_mean")
    sessions = slots.select(
        "*",
        *exprs(
            {
                "session_id": hex_id(w.seed, "session", "person_id", "slot"),
                "start_s": (
                    f"first_seen_s + CAST(floor({w.u('session_at', 'person_id', 'slot')} "
                    "* (active_end_s - first_seen_s)) AS BIGINT)"
                ),
                "source": online_source(w.u("session_source", "person_id", "slot")),
                "is_checkout": "false",
            }
        ),
    ).filter(F.col("source").isNotNull())
    return with_session_identity(sessions, w)


def with_session_identity(sessions: DataFrame, w: World) -> DataFrame:
    """Identifiers a session's source records: ``id_main`` on every event, ``extras`` on login.

    Needs person columns plus ``session_id``, ``source``, ``start_s`` and ``is_checkout``
    (checkout forces a login: nobody pays anonymously).
    """
    g = w.g

    def u(salt: str) -> str:
        return w.u(salt, "session_id")

    family_pick = f"(family AND {u('family_use')} < 0.3D)"
    device = f"IF({family_pick}, family_device, {device_pick(u('device_pick'))})"
    app_device = placeholder_or(
        device_case(device, u("device_case"), 0.15),
        DEVICE_PLACEHOLDERS,
        u("device_junk"),
        g.placeholder_rate,
        u("device_junk_kind"),
    )
    cafe_pick = f"(cafe_user AND NOT is_checkout AND {u('cafe_use')} < 0.35D)"
    cookie = f"IF({cafe_pick}, cafe_cookie, {cookie_at(w.seed, 'start_s')})"
    web_cookie = placeholder_or(
        cookie, COOKIE_PLACEHOLDERS, u("cookie_junk"), g.placeholder_rate, u("cookie_junk_kind")
    )
    login = f"(is_checkout OR {u('web_login')} < IF({cafe_pick}, 0.9D, 0.3D))"
    typed_email = placeholder_or(
        email_variant("email", u("email_variant"), u("email_style"), g.variant_rate),
        EMAIL_PLACEHOLDERS,
        u("email_junk"),
        g.placeholder_rate,
    )
    staged = sessions.select(
        "*",
        *exprs(
            {
                "_app_member": maybe_id(
                    f"is_member AND (is_checkout OR {u('app_login')} < 0.6D)",
                    "member_id",
                    "member_id",
                ),
                "_app_open": maybe_id(
                    f"wechat_user AND {u('app_wechat')} < 0.25D", "open_id", "open_id"
                ),
                "_web_email": maybe_id(f"has_email AND {login}", "email", typed_email),
                "_web_member": maybe_id(
                    "is_checkout AND is_member AND NOT has_email", "member_id", "member_id"
                ),
                "_webview": maybe_id(
                    f"app_user AND {u('webview')} < 0.05D",
                    "device_id",
                    f"upper({device_pick(u('webview_pick'))})",
                ),
                "_wechat_union": maybe_id(
                    f"is_checkout OR {u('wechat_union')} < 0.5D", "union_id", "union_id"
                ),
                "id_main": (
                    f"CASE source WHEN 'app' THEN {id_struct('device_id', app_device)} "
                    f"WHEN 'web' THEN {id_struct('cookie_id', web_cookie)} "
                    f"WHEN 'wechat' THEN {id_struct('open_id', 'open_id')} ELSE {NO_ID} END"
                ),
                "entry_channel": (
                    f"IF({u('session_channel')} < 0.6D, "
                    f"{choice(channel_names(), [c.exposure for c in CHANNELS], u('session_channel_pick'))}, NULL)"
                ),
            }
        ),
    )
    extras = (
        "CASE source WHEN 'app' THEN array(_app_member, _app_open) "
        "WHEN 'web' THEN array(_web_email, _web_member, _webview) "
        f"WHEN 'wechat' THEN array(_wechat_union) ELSE CAST(array() AS array<{ID_STRUCT}>) END"
    )
    # What an order placed in this session is keyed by: the login when there is one.
    buyer = (
        "CASE source WHEN 'app' THEN coalesce(_app_member, id_main) "
        "WHEN 'web' THEN coalesce(_web_email, _web_member, id_main) ELSE id_main END"
    )
    return staged.select(
        "*",
        *exprs({"extras": f"array_compact({extras})", "buyer_id": buyer}),
    ).drop("_app_member", "_app_open", "_web_email", "_web_member", "_webview", "_wechat_union")


# ----------------------------------------------------------------------- orders
def orders(people: DataFrame, w: World) -> DataFrame:
    """One row per purchase (BG/NBD arrival times), with its lines and who paid.

    Online orders are also checkout sessions (``session_id`` = a checkout id) so that
    they produce events and an identity record; POS orders carry the phone typed at
    the till instead.
    """
    g = w.g
    draw = w.draw
    # Only the person columns used here or downstream: every column is copied per order.
    purchases = people.filter(F.col("purchase_offsets").isNotNull()).select(
        *IDENTITY_PERSON_COLUMNS,
        "first_purchase_s",
        "spend_nu",
        "pref_cum",
        F.posexplode(F.col("purchase_offsets")).alias("purchase_no", "purchase_offset"),
    )

    def u(salt: str, *more: str) -> str:
        return w.u(salt, "order_id", *more)

    keyed = purchases.select(
        "*",
        *exprs(
            {
                "order_id": f"concat('O', upper({hex_id(w.seed, 'order', 'person_id', 'purchase_no', length=18)}))",
                "order_time_s": "first_purchase_s + CAST(floor(purchase_offset) AS BIGINT)",
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
        return w.u(salt, "order_id")

    store = bucket(w.seed, "store", store_count(g.people), "order_id")
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
        "order_id",
        "order_time_s",
        "session_id",
        "sales_channel",
        "id_main",
        F.posexplode(F.col("lines")).alias("line_no", "line"),
    )


# ----------------------------------------------------------------------- events
def browse_events(sessions: DataFrame, w: World) -> DataFrame:
    g = w.g
    n = poisson(
        num(g.events_per_session - 1.0), w.u("events", "session_id"), w.u("events_2", "session_id")
    )
    counted = sessions.select(
        "session_id",
        "person_id",
        "start_s",
        "source",
        "id_main",
        "entry_channel",
        "pref_cum",
        _explode_count(f"1 + {n}").alias("step"),
    )

    def u(salt: str) -> str:
        return w.u(salt, "session_id", "step")

    committed = ", ".join(text(e) for e in COMMITTED_EVENTS)
    typed = counted.select(
        "*",
        *exprs(
            {
                "event_type": choice(EVENT_TYPES, EVENT_WEIGHTS, u("event_type")),
                "_u_category": u("category"),
            }
        ),
    )
    explore_rate = (
        f"IF(event_type IN ({committed}), {num(g.explore_share / 4)}, {num(g.explore_share)})"
    )
    category = preferred_category(u("explore"), "_u_category", explore_rate, w.draw.n_categories)
    with_item = typed.select("*", *exprs({"_item": w.draw.item_index(category, u("rank"))}))
    properties = (
        f"to_json(named_struct('session_id', session_id, "
        f"'query', IF(event_type = 'search', {w.draw.category_name('_item')}, NULL), 'position', step))"
    )
    return with_item.select(
        "person_id",
        *exprs(
            {
                "event_id": hex_id(w.seed, "event", "session_id", "step"),
                # A minute or so per step, never past the period (a session can start late).
                "event_time_s": (
                    f"least(start_s + (step - 1) * 60 + CAST(floor({u('event_at')} * 59) AS BIGINT), "
                    f"{w.period.end_s - 1}L)"
                ),
                "source": "source",
                "id_main": "id_main",
                "event_type": "event_type",
                "item_id": f"IF(event_type != 'search', {w.draw.item_id('_item')}, NULL)",
                "channel": "entry_channel",
                "properties": properties,
            }
        ),
    )


def checkout_events(lines: DataFrame, w: World) -> DataFrame:
    """Online orders: each line is viewed, put in the cart, then bought at the order time."""
    funnel = lines.filter(F.col("session_id").isNotNull()).select(
        "*", F.explode(F.expr("array('view', 'add_to_cart', 'purchase')")).alias("event_type")
    )

    def u(salt: str) -> str:
        return w.u(salt, "order_id", "line_no", "event_type")

    lead = (
        f"CAST(CASE event_type WHEN 'view' THEN 300 + floor({u('lead')} * 600) "
        f"WHEN 'add_to_cart' THEN 30 + floor({u('lead')} * 240) ELSE 0 END AS BIGINT)"
    )
    properties = (
        "to_json(named_struct('session_id', session_id, "
        "'order_id', IF(event_type = 'purchase', order_id, NULL), "
        "'quantity', IF(event_type = 'purchase', line.quantity, NULL)))"
    )
    return funnel.select(
        "person_id",
        *exprs(
            {
                "event_id": hex_id(w.seed, "checkout_event", "order_id", "line_no", "event_type"),
                "event_time_s": f"greatest(order_time_s - {lead}, {w.period.start_s}L)",
                "source": "sales_channel",
                "id_main": "id_main",
                "event_type": "event_type",
                "item_id": "line.item_id",
                "channel": "CAST(NULL AS STRING)",
                "properties": properties,
            }
        ),
    )


# ------------------------------------------------------------------ touchpoints
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


def touches(people: DataFrame, orders_df: DataFrame, w: World) -> DataFrame:
    """Background touches plus touches before purchases, with their details."""
    return _touch_details(
        background_touches(people, w).unionByName(conversion_touches(orders_df, w)), w
    )


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
    slots = windowed.select(*TOUCH_PERSON_COLUMNS, "touch_from_s", _explode_count(n).alias("slot"))
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
        return w.u(salt, "order_id")

    n = (
        f"IF({u('attributed')} < {num(w.g.attributed_share)}, "
        f"1 + CAST({u('touch_2')} < 0.5D AS INT) + CAST({u('touch_3')} < 0.2D AS INT), 0)"
    )
    slots = orders_df.select(
        *TOUCH_PERSON_COLUMNS, "order_id", "order_time_s", _explode_count(n).alias("slot")
    )
    wait = exponential(w.u("touch_lead", "order_id", "slot"), num(2.0 * SECONDS_PER_DAY))
    lead = f"CAST(floor(300.0D + {wait}) AS BIGINT)"
    return slots.select(
        *TOUCH_PERSON_COLUMNS,
        *exprs(
            {
                "touch_id": f"concat('T', {hex_id(w.seed, 'conversion_touch', 'order_id', 'slot', length=19)})",
                "touch_time_s": f"greatest(order_time_s - {lead}, {w.period.start_s}L)",
                "channel": choice(
                    channel_names(), conversion_weights(), w.u("touch_channel", "order_id", "slot")
                ),
            }
        ),
    )
