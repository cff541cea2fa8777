"""Landing schemas of the data contract: column names, types, required columns, keys.

The generator writes exactly these schemas; ingest casts landed data to them and
quarantines what does not fit. Timestamps are ``timestamp`` here (ISO-8601 strings in
csv/json landing files are parsed by ingest).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import (
    BooleanType,
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

S, TS, D, DBL, INT, BOOL = (
    StringType(),
    TimestampType(),
    DateType(),
    DoubleType(),
    IntegerType(),
    BooleanType(),
)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    columns: tuple[tuple[str, DataType], ...]
    required: tuple[str, ...]  # must be present and not null, else the row is quarantined
    keys: tuple[str, ...]  # dedup key: one silver row per key
    order_by: str | None = None  # among duplicates keep the latest by this column
    identified: bool = False  # carries (id_type, id_value) to normalize

    @property
    def schema(self) -> StructType:
        return StructType(
            [StructField(n, t, nullable=n not in self.required) for n, t in self.columns]
        )

    @property
    def column_names(self) -> list[str]:
        return [n for n, _ in self.columns]


SPECS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "id_observations",
            (("source", S), ("record_id", S), ("id_type", S), ("id_value", S), ("observed_at", TS)),
            required=("source", "record_id", "id_type", "id_value", "observed_at"),
            keys=("source", "record_id", "id_type", "id_value"),
            order_by="observed_at",
            identified=True,
        ),
        DatasetSpec(
            "events",
            (
                ("event_id", S),
                ("event_time", TS),
                ("source", S),
                ("id_type", S),
                ("id_value", S),
                ("event_type", S),
                ("item_id", S),
                ("channel", S),
                ("properties", S),
            ),
            required=("event_id", "event_time", "id_type", "id_value", "event_type"),
            keys=("event_id",),
            order_by="event_time",
            identified=True,
        ),
        DatasetSpec(
            "orders",
            (
                ("order_id", S),
                ("order_time", TS),
                ("id_type", S),
                ("id_value", S),
                ("amount", DBL),
                ("currency", S),
                ("channel", S),
                ("status", S),
            ),
            required=("order_id", "order_time", "id_type", "id_value", "amount"),
            keys=("order_id",),
            order_by="order_time",
            identified=True,
        ),
        DatasetSpec(
            "order_items",
            (("order_id", S), ("item_id", S), ("quantity", INT), ("unit_price", DBL)),
            required=("order_id", "item_id", "quantity", "unit_price"),
            keys=("order_id", "item_id"),
        ),
        DatasetSpec(
            "touchpoints",
            (
                ("touch_id", S),
                ("touch_time", TS),
                ("id_type", S),
                ("id_value", S),
                ("channel", S),
                ("campaign_id", S),
                ("interaction", S),
                ("cost", DBL),
            ),
            required=("touch_id", "touch_time", "id_type", "id_value", "channel", "interaction"),
            keys=("touch_id",),
            order_by="touch_time",
            identified=True,
        ),
        DatasetSpec(
            "items",
            (("item_id", S), ("title", S), ("category", S), ("brand", S), ("price", DBL)),
            required=("item_id",),
            keys=("item_id",),
        ),
        DatasetSpec(
            "customers",
            (
                ("id_type", S),
                ("id_value", S),
                ("gender", S),
                ("birth_date", D),
                ("city", S),
                ("signup_time", TS),
                ("consent_marketing", BOOL),
            ),
            required=("id_type", "id_value"),
            keys=("id_type", "id_value"),
            order_by="signup_time",
            identified=True,
        ),
        DatasetSpec(
            "campaign_spend",
            (("spend_date", D), ("channel", S), ("campaign_id", S), ("spend", DBL)),
            required=("spend_date", "channel", "spend"),
            keys=("spend_date", "channel", "campaign_id"),
        ),
        DatasetSpec(
            "forget_requests",
            (("id_type", S), ("id_value", S), ("requested_at", TS)),
            required=("id_type", "id_value", "requested_at"),
            keys=("id_type", "id_value"),
            order_by="requested_at",
            identified=True,
        ),
    )
}

# Columns of the contract that hold a timestamp or date (parsed from strings in csv/json).
TEMPORAL_TYPES = (TimestampType, DateType)
