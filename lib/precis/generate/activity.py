"""What people do: sessions, events, orders with their lines (touches: ``touches``).

Each frame is the person frame exploded (sessions per person, events per session,
purchases per person, ...), carrying the person's columns along so identifiers and
tastes are available without a join. Every row draws its randomness from its own key
(session id, order id, ...), never from its position.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.columns import ITEM_ID, ORDER_ID
from precis.generate.catalog import (
    CHANNELS,
    ItemDraw,
    channel_names,
    kiosk_device,
    store_count,
)
from precis.generate.draws import (
    SECONDS_PER_DAY,
    bucket,
    choice,
    exprs,
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
    device_case,
    email_variant,
    id_struct,
    maybe_id,
    placeholder_or,
)
from precis.generate.people import (
    cookie_at,
    device_pick,
    online_source,
    preferred_category,
)
from precis.generate.period import Period
from precis.generate.settings import GenerateConfig

EVENT_TYPES = ("view", "click", "search", "add_to_cart", "favorite")
EVENT_WEIGHTS = (0.55, 0.15, 0.08, 0.12, 0.10)
# Carts and favourites follow taste more closely than casual views.
COMMITTED_EVENTS = ("add_to_cart", "favorite")

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


def explode_count(n: str) -> F.Column:
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
    slots = counted.select("*", explode_count(n).alias("slot")).drop("_session_mean")
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
    # Logins of app sessions: each condition is SQL, the member id's and WeChat's.
    member_login = f"is_member AND (is_checkout OR {u('app_login')} < {num(g.app_member_login)})"
    wechat_login = f"wechat_user AND {u('app_wechat')} < {num(g.app_wechat_login)}"
    if g.kiosk_share > 0:
        # A member browsing on their store's kiosk, logged in as themselves (a kiosk
        # knows no WeChat account): the kiosk is seen with every member who uses it.
        kiosk = f"(is_member AND NOT is_checkout AND {u('kiosk_use')} < {num(g.kiosk_share)})"
        store = bucket(w.seed, "kiosk_store", store_count(g.people), "person_id")
        device = f"IF({kiosk}, {kiosk_device(w.seed, store)}, {device})"
        wechat_login = f"NOT {kiosk} AND {wechat_login}"
        member_login = f"{kiosk} OR ({member_login})"
    if g.session_logins == "one":
        # One account per session: WeChat's login button first, else the member id.
        member_login = f"({member_login}) AND NOT ({wechat_login})"
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
                "_app_member": maybe_id(member_login, "member_id", "member_id"),
                "_app_open": maybe_id(wechat_login, "open_id", "open_id"),
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
    # With one login per session, a WeChat login pays with the open id.
    app_buyer = "_app_member, _app_open" if g.session_logins == "one" else "_app_member"
    buyer = (
        f"CASE source WHEN 'app' THEN coalesce({app_buyer}, id_main) "
        "WHEN 'web' THEN coalesce(_web_email, _web_member, id_main) ELSE id_main END"
    )
    return staged.select(
        "*",
        *exprs({"extras": f"array_compact({extras})", "buyer_id": buyer}),
    ).drop("_app_member", "_app_open", "_web_email", "_web_member", "_webview", "_wechat_union")


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
        explode_count(f"1 + {n}").alias("step"),
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
                ITEM_ID: f"IF(event_type != 'search', {w.draw.item_id('_item')}, NULL)",
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
        return w.u(salt, ORDER_ID, "line_no", "event_type")

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
                "event_id": hex_id(w.seed, "checkout_event", ORDER_ID, "line_no", "event_type"),
                "event_time_s": f"greatest(order_time_s - {lead}, {w.period.start_s}L)",
                "source": "sales_channel",
                "id_main": "id_main",
                "event_type": "event_type",
                ITEM_ID: "line.item_id",
                "channel": "CAST(NULL AS STRING)",
                "properties": properties,
            }
        ),
    )
