"""Settings of landing -> bronze -> silver (the ``ingest`` job).

Each default is written once, here; ``conf/base.yaml`` is generated from it.
"""

from __future__ import annotations

import re
import zoneinfo

from pydantic import Field, field_validator

from precis.contract import DATASETS
from precis.settings import Section

#: A time zone given as an offset from UTC, as Spark reads it.
FIXED_OFFSET = re.compile(r"[+-](0\d|1[0-8]):[0-5]\d")


#: Datasets whose ids may be unique only within their source (``ids_per_source``).
PER_SOURCE = ("events", "orders", "touchpoints")


class IngestConfig(Section):
    """Landing -> bronze -> silver (the ``ingest`` job)."""

    # Datasets to ingest; empty: every landing dataset that exists.
    datasets: tuple[str, ...] = ()
    # Identifier types and the normalization rule of each: email, phone, lower, upper or
    # trim. A row whose id_type is not listed here is quarantined.
    id_rules: dict[str, str] = Field(
        default_factory=lambda: {
            "email": "email",
            "phone": "phone",
            "member_id": "trim",
            "device_id": "lower",
            "cookie_id": "trim",
            "open_id": "trim",
            "union_id": "trim",
        }
    )
    # Country calling code prefixed to national phone numbers.
    default_country_code: str = Field("86", pattern=r"^[0-9]{1,3}$")
    # Placeholder identifiers, per type; each value is normalized with the type's rule
    # before comparing. Under "*": values of any type, compared case-insensitively.
    # Blocked values stay on their rows (id_status = blocked, id_key = null) but never
    # link identities; ingest counts them.
    placeholder_values: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: {
            "*": (
                "undefined",
                "null",
                "none",
                "nil",
                "nan",
                "unknown",
                "n/a",
                "na",
                "-",
                "0",
                "test",
            ),
            "phone": ("13800000000", "13800138000", "12345678901", "10000000000"),
            "email": (
                "test@test.com",
                "test@example.com",
                "a@a.com",
                "noreply@noreply.com",
                "null@null.com",
            ),
            "device_id": (
                "00000000-0000-0000-0000-000000000000",
                "ffffffff-ffff-ffff-ffff-ffffffffffff",
                "unknown_device",
            ),
        }
    )
    # Placeholder identifiers by Java regular expression on the normalized value
    # ("*": on the trimmed, lower-cased raw value of any type).
    placeholder_patterns: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: {
            "device_id": ("^[0-]+$",),
            "phone": (r"^\+86(\d)\1{10}$", r"^\+861\d(\d)\1{8}$", r"^\+861234567"),
            "email": ("^(test|noreply|no-reply|donotreply)@",),
        }
    )

    # A landed timestamp more than this many hours after ingest is quarantined
    # (future_time:<column>): a clock or format error that would otherwise win every
    # newer-wins comparison for its record.
    max_future_hours: float = Field(24.0, ge=0)
    # orders landed without a status column: true counts every order as paid; false
    # (default) fails the dataset, naming the column, since refunds would count as sales.
    # (A null status in a landed column is paid, as the contract says.)
    orders_without_status_are_paid: bool = False
    # A landed file modified less than this many seconds before the run may still be
    # uploading: it is logged and left for the next run (0: read every file listed).
    settle_seconds: int = Field(0, ge=0)
    # Read a file only when the folder it was written to holds a _SUCCESS file (written
    # last by Spark and most copy tools; for day=... partition folders, the folder above
    # them). Files of other folders are logged and left for the next run.
    require_marker: bool = False
    # Datasets whose ids (event_id, order_id, touch_id) are unique only within their
    # source: their silver id is <source>:<id>, and a row without a source (or with a ':'
    # in it) is quarantined. orders covers order_items (their order_id names the order).
    ids_per_source: tuple[str, ...] = ()
    # The business time zone: a landed timestamp without a zone is read as a time there,
    # and every dated job cuts its days there (the session time zone of every job is set
    # to it). A region name (Asia/Shanghai) or a fixed offset (+08:00).
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if FIXED_OFFSET.fullmatch(value):
            return value
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; expected a region name such as "
                "Asia/Shanghai or Europe/Berlin, UTC, or an offset such as +08:00"
            ) from None
        return value

    @field_validator("id_rules")
    @classmethod
    def _known_rules(cls, value: dict[str, str]) -> dict[str, str]:
        bad = {
            t: r for t, r in value.items() if r not in ("email", "phone", "lower", "upper", "trim")
        }
        if bad:
            raise ValueError(f"unknown rule(s) {bad}; expected email, phone, lower, upper or trim")
        return value

    @field_validator("ids_per_source")
    @classmethod
    def _scoped_datasets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [d for d in value if d not in PER_SOURCE]
        if unknown:
            raise ValueError(f"{unknown} have no per-source ids; expected some of {PER_SOURCE}")
        return value

    @field_validator("datasets")
    @classmethod
    def _known_datasets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [d for d in value if d not in DATASETS]
        if unknown:
            raise ValueError(f"unknown dataset(s) {unknown}; expected some of {list(DATASETS)}")
        return value


class BronzeConfig(Section):
    """What bronze keeps of the landed rows, and for how long."""

    # Keep identifier values of PII types as landed. Off: bronze (and quarantine) hold
    # the keyed hash of the normalized value instead, the same as silver's id_key.
    keep_plain_pii: bool = False
    # Delete bronze rows ingested more than this many days before the run date, then
    # VACUUM (retention.vacuum_hours). null keeps them.
    retention_days: int | None = Field(365, ge=1)
