"""Settings of the speed layer (the ``stream`` job).

Each default is written once, here; ``conf/base.yaml`` is generated from it.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from precis.settings import Section

#: ``stream.trigger`` that processes what has landed, then stops.
AVAILABLE_NOW = "available_now"
_INTERVAL = re.compile(r"(\d+)\s*(second|minute)s?")
#: What a hot tag's ``field`` may name: the time, the item or the channel of the row.
FIELDS = ("time", "item", "channel")


def interval_seconds(trigger: str) -> float | None:
    """Seconds between micro-batches of a processing-time ``trigger``; None for available_now."""
    if trigger == AVAILABLE_NOW:
        return None
    found = _INTERVAL.fullmatch(trigger.strip())
    assert found is not None  # StreamConfig checked it
    return float(found[1]) * (60 if found[2] == "minute" else 1)


class HotTagConfig(Section):
    """One real-time tag: a count over a trailing window, or the latest value."""

    # count: rows in the window_minutes ending at the stream's clock; last: ``field`` of
    # the person's latest row (within stream.retention_hours).
    template: Literal["count", "last"]
    # events (any landed event) or orders (paid orders only).
    dataset: Literal["events", "orders"] = "events"
    # Only rows whose event_type is one of these (events; empty: every type).
    event_types: list[str] = Field(default_factory=list)
    window_minutes: int | None = Field(None, ge=1)
    field: Literal["time", "item", "channel"] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _complete(self) -> HotTagConfig:
        if self.template == "count" and self.window_minutes is None:
            raise ValueError("a count tag needs window_minutes")
        if self.template == "last" and self.field is None:
            raise ValueError(f"a last tag needs field (one of {', '.join(FIELDS)})")
        return self


def _default_tags() -> dict[str, HotTagConfig]:
    return {
        "views_1h": HotTagConfig(
            template="count", event_types=["view"], window_minutes=60,
            description="Product views in the last hour.",
        ),
        "views_1d": HotTagConfig(
            template="count", event_types=["view"], window_minutes=1440,
            description="Product views in the last 24 hours.",
        ),
        "cart_adds_1d": HotTagConfig(
            template="count", event_types=["add_to_cart"], window_minutes=1440,
            description="Add-to-cart events in the last 24 hours.",
        ),
        "last_seen": HotTagConfig(
            template="last", field="time", description="Time of the person's latest event."
        ),
        "last_item_viewed": HotTagConfig(
            template="last", event_types=["view"], field="item",
            description="Item of the person's latest view.",
        ),
    }  # fmt: skip


class CartAbandonedConfig(Section):
    """An add-to-cart with no purchase by the same person within ``minutes``."""

    enabled: bool = True
    minutes: int = Field(30, ge=1)
    # Event types that add to a cart, and those that buy (paid orders always buy).
    add_events: list[str] = Field(default_factory=lambda: ["add_to_cart"])
    purchase_events: list[str] = Field(default_factory=lambda: ["purchase"])


class ReturningConfig(Section):
    """A visit by a member of ``segment`` whose previous activity is ``days_away`` or more
    days older."""

    enabled: bool = True
    # A segment of gold/segments (its latest run date).
    segment: str = "high_value_at_risk"
    days_away: int = Field(30, ge=1)
    # Event types that count as a visit (empty: every event).
    visit_events: list[str] = Field(default_factory=list)


class StreamConfig(Section):
    """The speed layer: hot tags and marketing triggers as events land (docs/stream.md)."""

    # available_now: process what has landed, then stop (schedulers, tests); or a
    # processing-time interval such as "10 seconds" or "1 minute" (a long-running service).
    trigger: str = AVAILABLE_NOW
    # With an interval: stop after this many seconds (null: run until stopped).
    run_seconds: float | None = Field(None, gt=0)
    # Landed files read per micro-batch at most (null: all that have landed).
    max_files_per_trigger: int | None = Field(None, ge=1)
    # How far behind the latest event time an event may arrive and still count; an
    # older one is counted as late in meta/stream_progress and left to the batch jobs.
    watermark_minutes: int = Field(10, ge=0)
    # How long the stream keeps each event for its windows and triggers (event time).
    retention_hours: int = Field(48, ge=1)
    # Real-time tags by name (gold/realtime_tags).
    tags: dict[str, HotTagConfig] = Field(default_factory=_default_tags)
    cart_abandoned: CartAbandonedConfig = CartAbandonedConfig()
    returning: ReturningConfig = ReturningConfig()

    @field_validator("trigger")
    @classmethod
    def _trigger(cls, value: str) -> str:
        if value != AVAILABLE_NOW and not _INTERVAL.fullmatch(value.strip()):
            raise ValueError(
                f"'{value}' is neither {AVAILABLE_NOW} nor an interval such as '10 seconds' "
                "or '1 minute'"
            )
        return value

    @model_validator(mode="after")
    def _retention(self) -> StreamConfig:
        longest = max((t.window_minutes or 0 for t in self.tags.values()), default=0)
        longest = max(longest, self.cart_abandoned.minutes)
        if self.retention_hours * 60 < longest + self.watermark_minutes:
            raise ValueError(
                f"retention_hours ({self.retention_hours}) must cover the longest window "
                f"({longest} minutes) plus watermark_minutes ({self.watermark_minutes})"
            )
        return self

    @property
    def window_minutes(self) -> tuple[int, ...]:
        """Every window a row leaves as the clock moves: the count tags' and retention."""
        found = {t.window_minutes for t in self.tags.values() if t.window_minutes}
        return tuple(sorted(found | {self.retention_hours * 60}))
