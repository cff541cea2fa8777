"""Tag and segment templates: the typed definitions and the catalogue they refer to.

``DATASETS`` (per-person datasets tags read) and ``MODEL_SOURCES`` (other jobs' outputs
model tags copy) are what a definition may name; the pydantic models are the templates
a definition fills in; ``Tag``, ``Segment`` and ``TagSet`` are validated definitions
(see precis.tags.definitions, which builds them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

from precis.columns import ITEM_ID, ORDER_ID
from precis.errors import ConfigError

TagType = Literal["long", "double", "string", "boolean", "date", "timestamp"]
NUMERIC: frozenset[str] = frozenset({"long", "double"})


@dataclass(frozen=True)
class Dataset:
    """A per-person dataset tags can read: its time column and typed fields."""

    time: str | None
    fields: Mapping[str, str]
    needs: tuple[str, ...]  # silver tables it is built from
    description: str


_ITEM_FIELDS = {ITEM_ID: "string", "category": "string", "brand": "string"}
#: Datasets resolved to ``one_id`` (see precis.tags.sources). Windows apply to ``time``.
DATASETS: dict[str, Dataset] = {
    "orders": Dataset(
        "order_time",
        {ORDER_ID: "string", "amount": "double", "channel": "string", "currency": "string"},
        ("orders",),
        "paid orders (status refunded excluded; missing status means paid)",
    ),
    "refunds": Dataset(
        "order_time",
        {ORDER_ID: "string", "amount": "double", "channel": "string", "currency": "string"},
        ("orders",),
        "refunded orders",
    ),
    "order_lines": Dataset(
        "order_time",
        {
            ORDER_ID: "string",
            "quantity": "long",
            "unit_price": "double",
            "line_amount": "double",
            **_ITEM_FIELDS,
        },
        ("orders", "order_items"),
        "lines of paid orders with the item's category and brand (line_amount = quantity x unit_price)",
    ),
    "events": Dataset(
        "event_time",
        {
            "event_id": "string",
            "event_type": "string",
            "channel": "string",
            "source": "string",
            **_ITEM_FIELDS,
        },
        ("events",),
        "behaviour events with the item's category and brand when the event is on an item",
    ),
    "touchpoints": Dataset(
        "touch_time",
        {
            "touch_id": "string",
            "channel": "string",
            "campaign_id": "string",
            "interaction": "string",
            "cost": "double",
        },
        ("touchpoints",),
        "marketing touchpoints",
    ),
    "customers": Dataset(
        None,
        {
            "gender": "string",
            "city": "string",
            "birth_date": "date",
            "signup_time": "timestamp",
            "consent_marketing": "boolean",
        },
        ("customers",),
        "CRM customer rows (several rows of one person are combined by the tag's `combine`)",
    ),
}

#: Outputs of other jobs that ``model`` and ``kmeans`` tags copy, one row per one_id.
MODEL_SOURCES: dict[str, dict[str, str]] = {
    "customer_value": {
        "lifecycle_stage": "string",
        "rfm_segment": "string",
        "rfm_score": "string",
        "r_score": "long",
        "f_score": "long",
        "m_score": "long",
        "recency_days": "long",
        "frequency": "long",
        "orders": "long",
        "total_spend": "double",
        "monetary_value": "double",
        "p_alive": "double",
        "expected_purchases": "double",
        "expected_spend": "double",
        "clv": "double",
        "churn_risk": "double",
    },
}

WINDOWED = (
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "most_frequent",
    "first",
    "last",
    "unique_count",
    "days_since",
)
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"


class _Def(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""


class WindowDef(_Def):
    """Aggregation of a dataset's rows in the ``window_days`` days ending on the run date."""

    template: Literal[WINDOWED]  # type: ignore[valid-type]
    dataset: str
    field: str | None = None
    # null: all history up to the run date; 30: the run date and the 29 days before it.
    window_days: int | None = None
    # Equality (a value) or membership (a list) on dataset fields, e.g. {event_type: view}.
    where: dict[str, str | int | float | bool | list[str | int | float | bool]] = Field(
        default_factory=dict
    )

    @field_validator("window_days")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(
                f"window_days must be a whole number of days >= 1 (or null for all history), got {value}"
            )
        return value


class AttributeDef(_Def):
    """A profile attribute from a dataset without time (customers), one value per person."""

    template: Literal["attribute"]
    dataset: str = "customers"
    field: str
    # How several rows of one person combine: all (true only if every row is true; a
    # missing value counts as false), any, min, max, most_frequent.
    combine: Literal["all", "any", "min", "max", "most_frequent"] = "most_frequent"


class ModelDef(_Def):
    """A column copied from another job's per-person output (gold/customer_value)."""

    template: Literal["model"]
    source: str = "customer_value"
    field: str


class KMeansDef(_Def):
    """K-means cluster of buyers on model-source features; k chosen by silhouette."""

    template: Literal["kmeans"]
    source: str = "customer_value"
    features: tuple[str, ...] = ("recency_days", "orders", "total_spend")
    # Skewed counts and amounts: cluster on log1p of these features (then standardized).
    log_features: tuple[str, ...] = ("orders", "total_spend")
    # Clusters are labelled c1..ck in increasing order of the centre's value of this feature,
    # so a label means the same thing on every run.
    order_by: str = "total_spend"


class ExpressionDef(_Def):
    """Spark SQL over other tags (by name), e.g. ``spend_365d / nullif(order_count_365d, 0)``."""

    template: Literal["expression"]
    expr: str = Field(min_length=1)
    type: TagType


class Bucket(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1)
    min: float | None = None  # inclusive
    max: float | None = None  # exclusive


class BucketDef(_Def):
    """Ranges of a numeric tag mapped to labels: ``min <= value < max``, first match wins."""

    template: Literal["bucket"]
    source: str
    buckets: tuple[Bucket, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ranges(self) -> BucketDef:
        for b in self.buckets:
            if b.min is not None and b.max is not None and b.min >= b.max:
                raise ValueError(f"bucket '{b.label}': min {b.min} must be below max {b.max}")
        return self


TagDef = Annotated[
    WindowDef | AttributeDef | ModelDef | KMeansDef | ExpressionDef | BucketDef,
    Field(discriminator="template"),
]
TAG_ADAPTER: TypeAdapter[Any] = TypeAdapter(TagDef)


class SegmentDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    # Spark SQL boolean over tags: and, or, not, comparisons, in, is null, between.
    where: str = Field(min_length=1)


@dataclass(frozen=True)
class Tag:
    name: str
    spec: Any  # one of the *Def models
    type: str
    depends: tuple[str, ...]  # tags read by expression and bucket tags
    version: str

    @property
    def template(self) -> str:
        return self.spec.template

    def as_dict(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json", exclude_defaults=False)


@dataclass(frozen=True)
class Segment:
    name: str
    spec: SegmentDef
    depends: tuple[str, ...]
    version: str


@dataclass(frozen=True)
class TagSet:
    """Validated tags in evaluation order (every tag after the tags it reads)."""

    tags: tuple[Tag, ...]
    source: str

    def __getitem__(self, name: str) -> Tag:
        for tag in self.tags:
            if tag.name == name:
                return tag
        raise ConfigError(
            f"unknown tag '{name}' (defined in {self.source}: {', '.join(self.names)})"
        )

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tags]

    def by_template(self, *templates: str) -> list[Tag]:
        return [t for t in self.tags if t.template in templates]

    def describe(self) -> dict[str, dict[str, Any]]:
        """Every rule with its version and type, by tag name."""
        return {t.name: {"version": t.version, "type": t.type, **t.as_dict()} for t in self.tags}
