"""The login service's records: a cookie, an app device or a WeChat account signing in.

Each of a person's cookies signs in once when it comes into use, each app device once
and a WeChat follower authorizes the mini program once, some time in the person's
active span, each with probability ``signin_share``; the rest stay anonymous unless a
session logs in. A shared family device, kiosk or cafe cookie never signs in.

What a record carries besides the cookie, device or WeChat account depends on
``signin_contacts``: ``all``, the account's verified contacts (the member id of members,
the email of those who have one, the phone number in use: one-time-code login, WeChat's
phone authorization); ``one``, the one identifier that source's own login knows.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precis.generate.activity import World
from precis.generate.draws import exprs, hex_id, num
from precis.generate.identifiers import device_case, email_variant, id_struct, phone_variant
from precis.generate.landing import source_records
from precis.generate.people import cookie_number, cookie_start, phone_at


def signin_records(people: DataFrame, w: World) -> DataFrame:
    """Sign-ins of cookies (web), app devices (app) and WeChat accounts (wechat)."""
    g = w.g

    def u(salt: str) -> str:
        return w.u(salt, "person_id", "k")

    phone = id_struct(
        "phone",
        phone_variant(
            phone_at("signin_s"), u("signin_phone_variant"), u("signin_phone_style"), g.variant_rate
        ),
    )
    email = id_struct(
        "email",
        email_variant("email", u("signin_email_variant"), u("signin_email_style"), g.variant_rate),
    )
    member = id_struct("member_id", "member_id")
    if g.signin_contacts == "all":
        every = f"IF(is_member, {member}, NULL), IF(has_email, {email}, NULL), {phone}"
        accounts = {"web": every, "app": every, "wechat": every}
    else:
        # Each source's own login: the web's is the email, the app's the member id or
        # "log in with WeChat" (the person's open id), each with a phone one-time code for
        # those without; the mini program's authorization is the WeChat account itself.
        accounts = {
            "web": f"CASE WHEN has_email THEN {email} WHEN is_member THEN {member} ELSE {phone} END",
            "app": (
                f"CASE WHEN is_member THEN {member} "
                f"WHEN wechat_user THEN {id_struct('open_id', 'open_id')} ELSE {phone} END"
            ),
            "wechat": "",
        }

    def at_random(frame: DataFrame, kind: str) -> DataFrame:
        """A sign-in time within the person's active span."""
        span = "(active_end_s - first_seen_s)"
        signin_s = f"first_seen_s + CAST(floor({u(f'signin_{kind}_at')} * {span}) AS BIGINT)"
        return frame.select("*", *exprs({"signin_s": signin_s}))

    def kept(frame: DataFrame, kind: str) -> DataFrame:
        """The sign-ins that happen: ``signin_share`` of them."""
        return frame.filter(F.expr(f"{u(f'signin_{kind}')} < {num(g.signin_share)}"))

    cookies = kept(
        people.filter(F.col("web_user"))
        .select("*", F.explode(F.sequence(F.lit(0), F.col("n_cookies") - 1)).alias("k"))
        .select("*", *exprs({"signin_s": cookie_start("k")})),
        "web",
    )
    app_devices = people.filter(F.col("app_user")).select(
        "*", F.posexplode("devices").alias("k", "device")
    )
    devices = kept(at_random(app_devices, "app"), "app")
    wechat_accounts = people.filter(F.col("wechat_user")).select("*", F.lit(0).alias("k"))
    followers = kept(at_random(wechat_accounts, "wechat"), "wechat")

    def signed_in(frame: DataFrame, source: str, prefix: str, ids: str) -> DataFrame:
        record_id = f"concat('{prefix}', upper({hex_id(w.seed, f'signin_{source}', 'person_id', 'k', length=16)}))"
        carried = ", ".join(part for part in (ids, accounts[source]) if part)
        return source_records(frame, f"'{source}'", record_id, "signin_s", f"array({carried})")

    device = device_case("device", u("signin_device_case"), 0.15)
    return (
        signed_in(cookies, "web", "SIW", id_struct("cookie_id", cookie_number(w.seed, "k")))
        .unionByName(signed_in(devices, "app", "SIA", id_struct("device_id", device)))
        .unionByName(
            signed_in(
                followers,
                "wechat",
                "SIX",
                f"{id_struct('open_id', 'open_id')}, {id_struct('union_id', 'union_id')}",
            )
        )
    )
