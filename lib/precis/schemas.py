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

from precis.columns import (
    ID_KEY,
    ID_TYPE,
    ID_VALUE,
    INGEST_RUN_ID,
    INGESTED_AT,
    ITEM_ID,
    ORDER_ID,
    RECORD_ID,
    SOURCE_FILE,
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
            (("source", S), (RECORD_ID, S), (ID_TYPE, S), (ID_VALUE, S), ("observed_at", TS)),
            required=("source", RECORD_ID, ID_TYPE, ID_VALUE, "observed_at"),
            keys=("source", RECORD_ID, ID_TYPE, ID_VALUE),
            order_by="observed_at",
            identified=True,
        ),
        DatasetSpec(
            "events",
            (
                ("event_id", S),
                ("event_time", TS),
                ("source", S),
                (ID_TYPE, S),
                (ID_VALUE, S),
                ("event_type", S),
                (ITEM_ID, S),
                ("channel", S),
                ("properties", S),
            ),
            required=("event_id", "event_time", ID_TYPE, ID_VALUE, "event_type"),
            keys=("event_id",),
            order_by="event_time",
            identified=True,
        ),
        DatasetSpec(
            "orders",
            (
                (ORDER_ID, S),
                ("order_time", TS),
                (ID_TYPE, S),
                (ID_VALUE, S),
                ("amount", DBL),
                ("currency", S),
                ("channel", S),
                ("status", S),
                # Optional: the system the order came from. Needed where order ids are
                # unique only within it (ingest.ids_per_source).
                ("source", S),
            ),
            required=(ORDER_ID, "order_time", ID_TYPE, ID_VALUE, "amount"),
            keys=(ORDER_ID,),
            order_by="order_time",
            identified=True,
        ),
        DatasetSpec(
            "order_items",
            ((ORDER_ID, S), (ITEM_ID, S), ("quantity", INT), ("unit_price", DBL), ("source", S)),
            required=(ORDER_ID, ITEM_ID, "quantity", "unit_price"),
            keys=(ORDER_ID, ITEM_ID),
        ),
        DatasetSpec(
            "touchpoints",
            (
                ("touch_id", S),
                ("touch_time", TS),
                (ID_TYPE, S),
                (ID_VALUE, S),
                ("channel", S),
                ("campaign_id", S),
                ("interaction", S),
                ("cost", DBL),
                ("source", S),  # optional, as for orders
            ),
            required=("touch_id", "touch_time", ID_TYPE, ID_VALUE, "channel", "interaction"),
            keys=("touch_id",),
            order_by="touch_time",
            identified=True,
        ),
        DatasetSpec(
            "items",
            ((ITEM_ID, S), ("title", S), ("category", S), ("brand", S), ("price", DBL)),
            required=(ITEM_ID,),
            keys=(ITEM_ID,),
        ),
        DatasetSpec(
            "customers",
            (
                (ID_TYPE, S),
                (ID_VALUE, S),
                ("gender", S),
                ("birth_date", D),
                ("city", S),
                ("signup_time", TS),
                ("consent_marketing", BOOL),
                # Optional: when consent_marketing was stated. Ingest fills a missing one
                # with signup_time, so a later statement of an identifier replaces its
                # earlier row (precis.consent).
                ("consent_updated_at", TS),
            ),
            required=(ID_TYPE, ID_VALUE),
            keys=(ID_TYPE, ID_VALUE),
            order_by="consent_updated_at",
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
            ((ID_TYPE, S), (ID_VALUE, S), ("requested_at", TS)),
            required=(ID_TYPE, ID_VALUE, "requested_at"),
            keys=(ID_TYPE, ID_VALUE),
            order_by="requested_at",
            identified=True,
        ),
        # Campaign experiments (docs/experiments.md): who was assigned to which arm, when.
        # One row per person and experiment; a later row of the same identifier and
        # experiment replaces an earlier one.
        DatasetSpec(
            "experiment_assignments",
            (
                ("experiment_id", S),
                ("arm", S),
                (ID_TYPE, S),
                (ID_VALUE, S),
                ("assigned_at", TS),
            ),
            required=("experiment_id", "arm", ID_TYPE, ID_VALUE, "assigned_at"),
            keys=("experiment_id", ID_TYPE, ID_VALUE),
            order_by="assigned_at",
            identified=True,
        ),
        # Optional: each arm's intended share (equal shares without it) and, for a
        # channel holdout, the channel withheld.
        DatasetSpec(
            "experiments",
            (("experiment_id", S), ("arm", S), ("weight", DBL), ("channel", S)),
            required=("experiment_id", "arm"),
            keys=("experiment_id", "arm"),
        ),
    )
}

# Columns of the contract that hold a timestamp or date (parsed from strings in csv/json).
TEMPORAL_TYPES = (TimestampType, DateType)


def silver_schema(dataset: str) -> StructType:
    """The schema of ``silver/<dataset>``: the contract's columns, ``id_value`` replaced
    by ``id_key`` and ``id_status``, and the lineage columns. For an empty stand-in
    where a job can do without an absent dataset."""
    fields = []
    for field in SPECS[dataset].schema.fields:
        if field.name == ID_VALUE:
            fields += [StructField(ID_KEY, S), StructField("id_status", S)]
        else:
            fields.append(StructField(field.name, field.dataType))
    lineage = [(SOURCE_FILE, S), (INGEST_RUN_ID, S), (INGESTED_AT, TS)]
    return StructType([*fields, *(StructField(n, t) for n, t in lineage)])
