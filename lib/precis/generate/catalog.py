"""Fixed vocabularies of the synthetic world: categories, channels, cities, formats.

Small enough to live on the driver; everything per person or per event is drawn in Spark.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from precis.columns import ITEM_ID
from precis.generate.draws import (
    array_of,
    bijective_digits,
    bucket,
    exprs,
    hex_id,
    normal,
    num,
    uniform,
    uuid_like,
    zipf_rank,
)

# (category, typical price in CNY): prices differ by category so spend depends on taste.
CATEGORIES: tuple[tuple[str, float], ...] = (
    ("apparel", 199.0),
    ("shoes", 399.0),
    ("beauty", 159.0),
    ("electronics", 1299.0),
    ("home", 249.0),
    ("kitchen", 179.0),
    ("sports", 299.0),
    ("toys", 129.0),
    ("books", 59.0),
    ("grocery", 39.0),
    ("jewelry", 899.0),
    ("pet", 89.0),
)

BRANDS = (
    "Aurora",
    "Beacon",
    "Cobalt",
    "Dune",
    "Ember",
    "Fjord",
    "Garnet",
    "Harbor",
    "Iris",
    "Jade",
    "Kestrel",
    "Lumen",
    "Maple",
    "Nova",
    "Orchid",
    "Pioneer",
)

NOUNS = {
    "apparel": "shirt",
    "shoes": "sneaker",
    "beauty": "serum",
    "electronics": "earbuds",
    "home": "lamp",
    "kitchen": "pan",
    "sports": "yoga mat",
    "toys": "puzzle",
    "books": "novel",
    "grocery": "tea",
    "jewelry": "necklace",
    "pet": "pet bed",
}


@dataclass(frozen=True)
class Channel:
    name: str
    exposure: float  # share of touches people receive from this channel, purchase or not
    effect: float  # relative weight of a touch of this channel in causing a purchase
    cost_per_click: float | None  # None: unpaid, no cost and no campaign
    interactions: tuple[str, ...]  # first is the most frequent
    id_types: tuple[str, ...]  # identifiers the channel sees, in order of preference
    daily_budget_per_1k_people: float  # campaign spend scale


CHANNELS: tuple[Channel, ...] = (
    Channel("search", 0.22, 3.0, 1.20, ("impression", "click"), ("cookie_id", "device_id"), 9.0),
    Channel(
        "social",
        0.24,
        1.0,
        0.40,
        ("impression", "click"),
        ("open_id", "device_id", "cookie_id"),
        7.0,
    ),
    Channel("display", 0.28, 0.3, 0.15, ("impression", "click"), ("cookie_id", "device_id"), 6.0),
    Channel("email", 0.10, 2.0, 0.02, ("email_open", "click"), ("email",), 0.5),
    Channel("affiliate", 0.06, 1.5, 1.50, ("click", "visit"), ("cookie_id",), 3.0),
    Channel("direct", 0.10, 2.5, None, ("visit",), ("cookie_id", "device_id"), 0.0),
)

CAMPAIGNS_PER_CHANNEL = 3

CITIES: tuple[tuple[str, float], ...] = (
    ("Shanghai", 14),
    ("Beijing", 13),
    ("Guangzhou", 10),
    ("Shenzhen", 10),
    ("Chengdu", 9),
    ("Hangzhou", 8),
    ("Wuhan", 7),
    ("Nanjing", 6),
    ("Chongqing", 7),
    ("Xi'an", 5),
    ("Suzhou", 6),
    ("Tianjin", 5),
)

EMAIL_DOMAINS: tuple[tuple[str, float], ...] = (
    ("qq.com", 35),
    ("163.com", 20),
    ("126.com", 8),
    ("gmail.com", 10),
    ("outlook.com", 8),
    ("sina.com", 5),
    ("foxmail.com", 6),
    ("hotmail.com", 8),
)

# No surname is a prefix of another, so "<surname><separator><digits>" never collides.
SURNAMES = ("wang", "li", "zhang", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma")

# Mobile prefixes for people. 138 and 199 are left out so no person's number can equal
# the placeholder 13800000000 or a store hotline (199...).
PHONE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "134",
    "135",
    "136",
    "137",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "157",
    "158",
    "159",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
)

PLACEHOLDER_DEVICE = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_PHONE = "13800000000"
PLACEHOLDER_EMAIL = "test@test.com"
PLACEHOLDER_TEXT = ("undefined", "null")

# Sessions of people who use several online sources: the app gets most of them.
SOURCE_WEIGHTS = {"app": 0.45, "web": 0.35, "wechat": 0.20}

# Bijections for identifiers (multipliers coprime to 10^8 / 10^6).
MEMBER_MULTIPLIER = 48_271
PHONE_MULTIPLIER = 69_621
EMAIL_MULTIPLIER = 16_807
ITEM_MULTIPLIER = 7_919


def categories(items: int) -> tuple[tuple[str, float], ...]:
    """A catalogue smaller than the category list uses only its first categories."""
    return CATEGORIES[: max(1, min(len(CATEGORIES), items))]


def hotline(store: str) -> str:
    """A store's hotline: a mobile number the staff type in for customers without one."""
    return f"concat('1990000', lpad(CAST({store} AS STRING), 4, '0'))"


def store_count(people: int) -> int:
    # Few stores, so each hotline is typed for many customers even in small test runs.
    return max(1, min(50, people // 2000))


def kiosk_device(seed: int, store: str) -> str:
    """A store's kiosk: the demo device members use at the store, one per store."""
    # Hashes depend on the key's type: the store number is a BIGINT wherever it comes from.
    return uuid_like(seed, "kiosk", f"CAST({store} AS BIGINT)")


def cafe_count(people: int, cafe_share: float) -> int:
    # About 40 regulars per internet cafe: each cafe cookie is seen with many emails.
    return max(1, round(people * cafe_share / 40))


def cafe_cookie(seed: int, cafe: str) -> str:
    # Hashes depend on the key's type: the cafe number is a BIGINT wherever it comes from.
    return f"concat('ck_', {hex_id(seed, 'cafe', f'CAST({cafe} AS BIGINT)')})"


# ------------------------------------------------------------------------- items
@dataclass(frozen=True)
class ItemDraw:
    """Draws an item index from a category without joining the catalogue.

    Item ``i`` belongs to category ``i mod C`` and has popularity rank ``i div C + 1``
    within it, so (category, rank) maps to an item by arithmetic. Methods return SQL.
    """

    seed: int
    items: int
    zipf_exponent: float

    @property
    def n_categories(self) -> int:
        return len(categories(self.items))

    def items_in(self, category: str) -> str:
        c = self.n_categories
        return f"CAST(floor(({self.items} - {category} + {c - 1}) / {c}) AS BIGINT)"

    def item_index(self, category: str, u_rank: str) -> str:
        rank = zipf_rank(self.items_in(category), self.zipf_exponent, u_rank)
        return f"(({rank} - 1) * {self.n_categories} + {category})"

    def category_of(self, index: str) -> str:
        return f"CAST(pmod({index}, {self.n_categories}) AS INT)"

    def item_id(self, index: str) -> str:
        # Permuted so ids do not give away popularity order.
        return f"concat('SKU', {bijective_digits(index, ITEM_MULTIPLIER, self.seed, 1_000_000, 6)})"

    def price(self, index: str) -> str:
        base = f"element_at({array_of(p for _, p in categories(self.items))}, {self.category_of(index)} + 1)"
        spread = f"exp(0.5D * {normal(uniform(self.seed, 'price1', index), uniform(self.seed, 'price2', index))})"
        return f"round(greatest({base} * {spread}, 1.0D), 2)"

    def category_name(self, index: str) -> str:
        return f"element_at({array_of(n for n, _ in categories(self.items))}, {self.category_of(index)} + 1)"


def items_frame(spark: SparkSession, draw: ItemDraw) -> DataFrame:
    brand = f"element_at({array_of(BRANDS)}, {bucket(draw.seed, 'brand', len(BRANDS), 'id')} + 1)"
    noun = f"element_at({array_of(NOUNS[n] for n, _ in categories(draw.items))}, {draw.category_of('id')} + 1)"
    model = f"upper({hex_id(draw.seed, 'model', 'id', length=4)})"
    return spark.range(draw.items, numPartitions=1).select(
        *exprs(
            {
                ITEM_ID: draw.item_id("id"),
                "title": f"concat_ws(' ', {brand}, {noun}, {model})",
                "category": draw.category_name("id"),
                "brand": brand,
                "price": draw.price("id"),
            }
        )
    )


# ---------------------------------------------------------------------- channels
def channel_names() -> list[str]:
    return [c.name for c in CHANNELS]


def conversion_weights() -> list[float]:
    """Channel mix of touches before purchases: exposure times planted effect."""
    return [c.exposure * c.effect for c in CHANNELS]


def channel_effects_frame(spark: SparkSession) -> DataFrame:
    total = sum(conversion_weights())
    rows = [
        (
            c.name,
            c.exposure,
            c.effect,
            c.exposure * c.effect / total,
            c.cost_per_click,
            c.cost_per_click is not None,
        )
        for c in CHANNELS
    ]
    schema = (
        "channel string, exposure_share double, effect double, pre_purchase_share double, "
        "cost_per_click double, paid boolean"
    )
    return spark.createDataFrame(rows, schema).select(
        "channel", "exposure_share", "effect", "pre_purchase_share", "cost_per_click", "paid"
    )


def campaign_id(channel: str, day: str, days: int) -> str:
    """Paid channels run CAMPAIGNS_PER_CHANNEL consecutive campaigns over the period.

    Decided by the day index, so touches and daily spend always agree on the campaign.
    """
    k = f"least(greatest(CAST(floor({day} * {CAMPAIGNS_PER_CHANNEL} / {days}) AS INT), 0), {CAMPAIGNS_PER_CHANNEL - 1})"
    return f"concat('cmp-', {channel}, '-', CAST({k} + 1 AS STRING))"


def campaign_spend_frame(
    spark: SparkSession,
    seed: int,
    people: int,
    start_day: dt.date,
    days: int,
    spread: float = 0.3,
    scale: float = 1.0,
) -> DataFrame:
    """Each paid channel's daily spend: its budget (times ``scale``) times a uniform
    factor in [1 - spread, 1 + spread]."""
    paid = [c for c in CHANNELS if c.cost_per_click is not None]
    channels = spark.createDataFrame(
        [(c.name, scale * c.daily_budget_per_1k_people * max(people, 1000) / 1000.0) for c in paid],
        "channel string, budget double",
    )
    day = "CAST(id AS INT)"
    noise = (
        f"({num(1.0 - spread)} + {num(2.0 * spread)} * {uniform(seed, 'spend', 'channel', day)})"
    )
    return (
        spark.range(days, numPartitions=1)
        .crossJoin(channels)
        .select(
            *exprs(
                {
                    "spend_date": f"date_add(DATE'{start_day.isoformat()}', {day})",
                    "channel": "channel",
                    "campaign_id": campaign_id("channel", day, days),
                    "spend": f"round(budget * {noise}, 2)",
                }
            )
        )
    )
