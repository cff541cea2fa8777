"""People: one row per person with every latent trait the other datasets are drawn from.

The person frame is the root of the generator. Each trait is a draw keyed by the person
index, so the frame can be built in any number of partitions with identical rows. The
purchase history (BG/NBD arrival times) is an array column, built by folding
exponential gaps, so no window or shuffle is needed to order purchases.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precis.generate.catalog import (
    CITIES,
    EMAIL_DOMAINS,
    EMAIL_MULTIPLIER,
    MEMBER_MULTIPLIER,
    PHONE_MULTIPLIER,
    PHONE_PREFIXES,
    SOURCE_WEIGHTS,
    SURNAMES,
    ItemDraw,
    cafe_cookie,
    cafe_count,
)
from precis.generate.draws import (
    SECONDS_PER_DAY,
    bijective_digits,
    bucket,
    choice,
    count_below,
    exponential,
    exprs,
    gamma,
    geometric,
    hex_id,
    num,
    poisson,
    uniform,
    uuid_like,
)
from precis.generate.period import Period
from precis.generate.settings import GenerateConfig

MAX_REPEAT_PURCHASES = 300  # guards against extreme rate draws
MAX_COOKIES = 8
DAY = num(float(SECONDS_PER_DAY))

#: Columns of the person frame, in order.
PERSON_COLUMNS = (
    "person_id",
    "first_seen_s",
    "active_end_s",
    "is_member",
    "member_id",
    "phone_0",
    "phone_1",
    "phone_changes",
    "phone_change_s",
    "has_email",
    "email",
    "app_user",
    "devices",
    "household_id",
    "family",
    "family_device",
    "web_user",
    "n_cookies",
    "cafe_user",
    "cafe_cookie",
    "wechat_user",
    "open_id",
    "union_id",
    "gender",
    "birth_date",
    "city",
    "signup_s",
    "consent_marketing",
    "consent_withdrawn_s",
    "consent_regranted_s",
    "is_buyer",
    "lam",
    "p_drop",
    "dropout_after",
    "spend_nu",
    "first_purchase_s",
    "purchase_offsets",
    "dropout_s",
    "session_rate",
    "pref_weights",
    "pref_cum",
)


def people_frame(
    spark: SparkSession, g: GenerateConfig, period: Period, draw: ItemDraw, num_partitions: int
) -> DataFrame:
    seed = g.seed
    start, end = period.start_s, period.end_s

    def u(salt: str, *keys: str) -> str:
        return uniform(seed, salt, "person_id", *keys)

    def share(salt: str, value: float) -> str:
        return f"{u(salt)} < {num(value)}"

    early = (
        f"least({u('first_seen')} * {num(30.0 * SECONDS_PER_DAY)}, {num(float(end - start - 1))})"
    )
    anytime = f"{u('first_seen')} * {num(float(end - start - 1))}"
    household = f"CAST(floor(person_id / {g.household_size}) AS BIGINT)"
    # A household shares a device with this draw: drawn from the household id, so every
    # member of the household draws the same.
    sharing = f"{uniform(seed, 'family', household)} < {num(g.family_share)}"
    # A household whose members all use the shared device makes them all app users.
    app_user = share("app", g.app_share) + (f" OR {sharing}" if g.family_everyone else "")
    identity = spark.range(g.people, numPartitions=num_partitions).select(
        F.col("id").alias("person_id"),
        *exprs(
            {
                "first_seen_s": (
                    f"{start}L + CAST(floor(IF({share('existing', g.existing_share)}, {early}, {anytime})) AS BIGINT)"
                ),
                "is_member": share("member", g.member_share),
                "has_email": share("email", g.email_share),
                "app_user": app_user,
                "web_user": share("web", g.web_share),
                "wechat_user": share("wechat", g.wechat_share),
                "phone_changes": share("phone_change", g.phone_change_share),
                "is_buyer": share("buyer", g.buyer_share),
                "household_id": household,
            }
        ),
    )

    uniform_prefix = [1.0] * len(PHONE_PREFIXES)
    email_digits = (
        f"CAST(pmod(person_id * {EMAIL_MULTIPLIER}L + {seed % 10**8}L, 100000000L) AS STRING)"
    )
    email = (
        f"concat({choice(SURNAMES, [1.0] * len(SURNAMES), u('surname'))}, "
        f"{choice(('', '.', '_'), (3.0, 2.0, 1.0), u('email_sep'))}, {email_digits}, '@', "
        f"{choice([d for d, _ in EMAIL_DOMAINS], [w for _, w in EMAIL_DOMAINS], u('email_domain'))})"
    )
    # At most three devices, spelled out: arrays built by lambdas are evaluated row by row
    # without code generation.
    devices = (
        f"array_compact(array({uuid_like(seed, 'device', 'person_id', '0')}, "
        f"IF({share('device_2', 0.35)}, {uuid_like(seed, 'device', 'person_id', '1')}, NULL), "
        f"IF({share('device_2', 0.35)} AND {share('device_3', 0.35)}, "
        f"{uuid_like(seed, 'device', 'person_id', '2')}, NULL)))"
    )
    family = f"app_user AND {uniform(seed, 'family', 'household_id')} < {num(g.family_share)}"
    cafe = bucket(seed, "cafe_pick", cafe_count(g.people, g.cafe_share), "person_id")
    age_days = f"CAST(floor((18.0D + {u('age')} * 52.0D) * 365.25D) AS INT)"
    member_digits = bijective_digits("person_id", MEMBER_MULTIPLIER, seed, 10**8, 8)
    first_purchase = f"first_seen_s + CAST(floor({exponential(u('first_buy'), num(10.0 * SECONDS_PER_DAY))}) AS BIGINT)"
    tenure = (
        f"IF(first_seen_s < {start + 30 * SECONDS_PER_DAY}L AND {share('old_member', 0.6)}, "
        f"{exponential(u('tenure'), num(500.0 * SECONDS_PER_DAY))}, 0.0D)"
    )
    traits = identity.select(
        "*",
        *exprs(
            {
                "member_id": f"IF(is_member, concat('M', {member_digits}), NULL)",
                "phone_0": f"concat({choice(PHONE_PREFIXES, uniform_prefix, u('prefix_0'))}, "
                f"{bijective_digits('person_id * 2', PHONE_MULTIPLIER, seed * 7919, 10**8, 8)})",
                "phone_1": f"concat({choice(PHONE_PREFIXES, uniform_prefix, u('prefix_1'))}, "
                f"{bijective_digits('person_id * 2 + 1', PHONE_MULTIPLIER, seed * 7919, 10**8, 8)})",
                "phone_change_s": (
                    f"first_seen_s + CAST(floor({u('phone_change_at')} * ({end}L - first_seen_s)) AS BIGINT)"
                ),
                "email": f"IF(has_email, {email}, NULL)",
                "devices": f"IF(app_user, {devices}, NULL)",
                "family": family,
                "family_device": f"IF({family}, {uuid_like(seed, 'family', 'household_id')}, NULL)",
                "cafe_user": f"web_user AND has_email AND {share('cafe', g.cafe_share)}",
                "cafe_cookie": cafe_cookie(seed, cafe),
                "open_id": f"IF(wechat_user, concat('o', {hex_id(seed, 'open_id', 'person_id', length=27)}), NULL)",
                "union_id": f"IF(wechat_user, concat('oU', {hex_id(seed, 'union_id', 'person_id', length=26)}), NULL)",
                "gender": f"IF({share('gender_missing', 0.03)}, NULL, {choice(('F', 'M'), (0.55, 0.45), u('gender'))})",
                "birth_date": f"date_from_unix_date({period.end_unix_day} - {age_days})",
                "city": choice([c for c, _ in CITIES], [w for _, w in CITIES], u("city")),
                "signup_s": f"IF(is_member, first_seen_s - CAST(floor({tenure}) AS BIGINT), NULL)",
                "consent_marketing": f"IF(is_member, {u('consent')} >= {num(g.opt_out_share)}, NULL)",
                # Buy till you die: first purchase at first_purchase_s, then a Poisson(lam)
                # process of repeat purchases; after each repeat purchase the person drops
                # out with p_drop, i.e. after a Geometric(p_drop) number of them.
                "lam": f"greatest({gamma(num(g.btyd_r), u('lam_1'), u('lam_2'), u('lam_3'))} / {num(g.btyd_alpha)}, "
                "1E-06D)",
                "_ga": gamma(num(g.btyd_a), u("p_1"), u("p_2"), u("p_3")),
                "_gb": gamma(num(g.btyd_b), u("p_4"), u("p_5"), u("p_6")),
                "spend_nu": (
                    f"greatest({gamma(num(g.spend_q), u('nu_1'), u('nu_2'), u('nu_3'))} / {num(g.spend_gamma)}, 1E-06D)"
                ),
                "first_purchase_s": first_purchase,
                "_buys": f"is_buyer AND {first_purchase} < {end}L",
            }
        ),
    )

    dropout = (
        consent_changes(traits, g, period)
        .select(
            "*",
            *exprs({"p_drop": "least(greatest(_ga / (_ga + _gb), 1.0E-4D), 1.0D)"}),
        )
        .select(
            "*", *exprs({"dropout_after": geometric("p_drop", u("dropout"), MAX_REPEAT_PURCHASES)})
        )
    )

    # Given their number, the arrival times of a Poisson process in a window are sorted
    # uniforms: draw the count of repeat purchases the rate allows before the period
    # ends, sort their times, and keep those before the dropout.
    window = f"({end}L - first_purchase_s)"
    times = (
        f"array_sort(transform(sequence(1, _n_window), "
        f"_k -> {uniform(seed, 'purchase_at', 'person_id', '_k')} * {window}))"
    )
    kept = "least(_n_window, dropout_after)"
    histories = (
        dropout.select("*", *exprs({"_expected": f"IF(_buys, lam * {window} / {DAY}, 0.0D)"}))
        .select(
            "*",
            *exprs(
                {
                    "_n_window": f"least({poisson('_expected', u('repeats'), u('repeats_2'))}, {MAX_REPEAT_PURCHASES})"
                }
            ),
        )
        .select(
            "*",
            *exprs(
                {"_times": f"IF(_buys AND _n_window > 0, {times}, CAST(array() AS array<double>))"}
            ),
        )
        .select(
            "*",
            *exprs(
                {
                    "purchase_offsets": f"IF(_buys, concat(array(0.0D), slice(_times, 1, {kept})), NULL)",
                    "dropout_s": (
                        "IF(_buys AND _n_window >= dropout_after, "
                        "first_purchase_s + CAST(floor(element_at(_times, dropout_after)) AS BIGINT), NULL)"
                    ),
                }
            ),
        )
    )

    # Online activity lasts while the person is a live customer (a month beyond dropout);
    # people who never buy browse for a few months.
    lapse = f"CAST(floor({exponential(u('lapse'), num(30.0 * SECONDS_PER_DAY))}) AS BIGINT)"
    browse = f"CAST(floor({exponential(u('browse_span'), num(90.0 * SECONDS_PER_DAY))}) AS BIGINT)"
    active_end = (
        f"IF(_buys, IF(dropout_s IS NULL, {end}L, least({end}L, dropout_s + {lapse})), "
        f"least({end}L, first_seen_s + {browse}))"
    )
    active = histories.select(
        "*",
        *exprs({"active_end_s": f"least(greatest({active_end}, first_seen_s + 3600L), {end}L)"}),
    )

    # Tastes ~ Dirichlet(pref_alpha): normalized Gamma(pref_alpha) weights, each drawn as
    # Exp(1) * U^(1/alpha) (the U^(1/alpha) factor is what makes small alphas sparse; the
    # Exp(1) factor stands in for Gamma(alpha + 1)). Spelled out per category so that each
    # weight is drawn once: a weight read inside a lambda would be redrawn per element.
    n_cat = draw.n_categories
    inverse_alpha = num(1.0 / g.pref_alpha)
    raw = {
        f"_w{c}": f"(-ln({u('pref_1', str(c))}) * pow({u('pref_2', str(c))}, {inverse_alpha}))"
        for c in range(n_cat)
    }
    total = " + ".join(raw)
    cumulative = [" + ".join(f"_w{i}" for i in range(c + 1)) for c in range(n_cat)]
    return (
        active.select(
            "*",
            *exprs(
                {
                    "_cookie_mean": f"(active_end_s - first_seen_s) / {DAY} / 120.0D",
                    # Heavy and light browsers: the rate varies around session_rate.
                    "session_rate": (
                        f"{num(g.session_rate / 1.5)} * {gamma('1.5D', u('rate_1'), u('rate_2'), u('rate_3'))}"
                    ),
                    **raw,
                }
            ),
        )
        .select(
            "*",
            *exprs(
                {
                    "n_cookies": (
                        f"IF(web_user, least(1 + {poisson('_cookie_mean', u('cookies'), u('cookies_2'))}, "
                        f"{MAX_COOKIES}), 0)"
                    ),
                    "_total": total,
                }
            ),
        )
        .select(
            "*",
            *exprs(
                {
                    "pref_weights": "array("
                    + ", ".join(f"_w{c} / _total" for c in range(n_cat))
                    + ")",
                    "pref_cum": "array(" + ", ".join(f"({s}) / _total" for s in cumulative) + ")",
                }
            ),
        )
        .select(*PERSON_COLUMNS)
    )


def consent_changes(people: DataFrame, g: GenerateConfig, period: Period) -> DataFrame:
    """``people`` with ``consent_withdrawn_s`` and ``consent_regranted_s``: when a member
    who consented at sign-up withdraws during the period, and when some of them grant
    consent again (epoch seconds, strictly increasing; null when it does not happen)."""

    def u(salt: str) -> str:
        return uniform(g.seed, salt, "person_id")

    end = f"{period.end_s}L"
    since = f"(greatest(signup_s, {period.start_s}L) + 1L)"
    withdrawn = (
        f"IF(consent_marketing AND {u('consent_withdraw')} < {num(g.consent_withdraw_share)} "
        f"AND {since} < {end}, "
        f"{since} + CAST(floor({u('consent_withdraw_at')} * ({end} - {since})) AS BIGINT), NULL)"
    )
    after = "(consent_withdrawn_s + 1L)"
    regranted = (
        f"IF({u('consent_regrant')} < {num(g.consent_regrant_share)} AND {after} < {end}, "
        f"{after} + CAST(floor({u('consent_regrant_at')} * ({end} - {after})) AS BIGINT), NULL)"
    )
    return people.select("*", *exprs({"consent_withdrawn_s": withdrawn})).select(
        "*", *exprs({"consent_regranted_s": regranted})
    )


# --------------------------------------------------- per-row person expressions (SQL)
def phone_at(t: str) -> str:
    """The number the person used at time ``t`` (people who switch numbers change once)."""
    return f"IF(phone_changes AND {t} >= phone_change_s, phone_1, phone_0)"


def cookie_at(seed: int, t: str) -> str:
    """Browsers clear cookies: the active span is cut into ``n_cookies`` consecutive cookies."""
    position = f"CAST(greatest({t} - first_seen_s, 0L) AS DOUBLE) / CAST(active_end_s - first_seen_s + 1 AS DOUBLE)"
    index = f"least(CAST(floor({position} * n_cookies) AS INT), n_cookies - 1)"
    return cookie_number(seed, index)


def cookie_number(seed: int, index: str) -> str:
    """The person's cookie number ``index`` (SQL, an INT from 0 to ``n_cookies - 1``)."""
    return f"concat('ck_', {hex_id(seed, 'cookie', 'person_id', index)})"


def cookie_start(index: str) -> str:
    """The first second of the active span in which cookie ``index`` is the one in use."""
    span = "(active_end_s - first_seen_s + 1)"
    # One second in, so that rounding in ``cookie_at`` cannot put it on the previous cookie.
    return f"first_seen_s + CAST(ceil(CAST({index} AS DOUBLE) * {span} / n_cookies) AS BIGINT) + 1L"


def device_pick(u: str) -> str:
    return f"element_at(devices, CAST(floor({u} * size(devices)) AS INT) + 1)"


def online_source(u: str) -> str:
    """One of the person's online sources, weighted; null for offline-only people."""
    app = f"IF(app_user, {num(SOURCE_WEIGHTS['app'])}, 0.0D)"
    web = f"IF(web_user, {num(SOURCE_WEIGHTS['web'])}, 0.0D)"
    wechat = f"IF(wechat_user, {num(SOURCE_WEIGHTS['wechat'])}, 0.0D)"
    x = f"({u} * ({app} + {web} + {wechat}))"
    return (
        f"(CASE WHEN NOT (app_user OR web_user OR wechat_user) THEN NULL "
        f"WHEN {x} < {app} THEN 'app' WHEN {x} < {app} + {web} THEN 'web' ELSE 'wechat' END)"
    )


def preferred_category(
    u_explore: str, u_category: str, explore_share: str, n_categories: int
) -> str:
    """A category from the person's preferences, or any category when exploring.

    ``explore_share`` is SQL: a literal or an expression (exploration can depend on the event).
    """
    by_taste = f"least({count_below('pref_cum', u_category, n_categories)}, {n_categories - 1})"
    anyone = f"least(CAST(floor({u_category} * {n_categories}) AS INT), {n_categories - 1})"
    return f"CAST(IF({u_explore} < {explore_share}, {anyone}, {by_taste}) AS BIGINT)"
