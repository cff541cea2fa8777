"""Settings of the identity graph (the ``identity`` job).

Each default is written once, here; ``conf/base.yaml`` is generated from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from precis.settings import Section, deep_merge


class IdTypeConfig(Section):
    """How one identifier type takes part in the identity graph."""

    # strong: identifies a person on its own (member id, union id, phone, email); strong
    # identifiers form the clusters. weak: shared or short-lived (device, cookie, open id);
    # a weak identifier attaches to one cluster and never bridges two.
    strength: Literal["strong", "weak"] = "weak"
    # At most this many values of the type per person (None: no limit). Links that would
    # exceed it are refused, weakest evidence first.
    max_per_person: int | None = Field(None, ge=1)
    # Linked to more than this many distinct values of one strong type, the identifier
    # is unreliable (a store hotline, an internet-cafe cookie) and links nothing.
    max_linked: int = Field(5, ge=1)
    # Lower speaks first: which identifier names a record that carries several.
    priority: int = 100
    # Weak types only. A bridging weak identifier (a WeChat open id: one account, never
    # shared like a family tablet) may join the strong clusters it was seen with, but
    # only where the joined person stays within every max_per_person and never-link
    # rule, and only after every strong link. A non-bridging one attaches to one
    # cluster or none.
    bridge: bool = False
    # Weak types only: each value belongs to exactly one value of this strong type (a
    # WeChat open id is one app's id of one WeChat user, who has one union id across the
    # developer's apps). Its link to that type counts as a strong link, and a value seen
    # with two values of that type is unreliable and links nothing.
    belongs_to: str | None = None

    @model_validator(mode="after")
    def _weak_only(self) -> IdTypeConfig:
        for key in ("bridge", "belongs_to"):
            if getattr(self, key) and self.strength == "strong":
                raise ValueError(
                    f"{key} applies to weak types only (a strong type links clusters anyway)"
                )
        return self


def _default_id_types() -> dict[str, IdTypeConfig]:
    strong = {"member_id": (1, 1), "union_id": (2, 1), "phone": (3, 3), "email": (4, 3)}
    # An open id names its record before a device does: it is one WeChat account, where a
    # device may be a family's. Three open ids per person: an official account, a mini
    # program and an app each see their own.
    weak = {"open_id": (5, 3, True), "device_id": (6, 5, False), "cookie_id": (7, None, False)}
    types = {
        t: IdTypeConfig(strength="strong", priority=p, max_per_person=m)
        for t, (p, m) in strong.items()
    }
    types.update(
        {
            t: IdTypeConfig(strength="weak", priority=p, max_per_person=m, bridge=b)
            for t, (p, m, b) in weak.items()
        }
    )
    types["open_id"] = types["open_id"].model_copy(update={"belongs_to": "union_id"})
    return types


class WeakBridgeConfig(Section):
    """When a weak identifier joins the strong clusters it was seen with (docs/identity.md)."""

    # Off: a weak identifier (other than bridge types) never joins two clusters.
    enabled: bool = True
    # Seen with at most this many clusters: a family tablet is seen with the whole family.
    # 3: where each source keeps its own login, one person's handset is often seen with
    # three (member id, WeChat, a web email); a family's two member ids are refused by
    # the limits anyway (docs/benchmarks.md measures 2, 3 and 4).
    max_clusters: int = Field(3, ge=2)
    # Seen with each of them in at least this many records (with one of its identifiers).
    # 1: on sparse data a person's own handset is often seen once with their second
    # cluster (docs/identity.md measures 2 against 1).
    min_records: int = Field(1, ge=1)
    # Its days with each cluster (first to last record) overlap, or lie at most this many
    # days apart: further apart, it is a handset handed on, not one person's. A year: a
    # phone wiped for its next owner gives apps a new device id, and a person may log
    # in one way in spring and another in winter (docs/benchmarks.md measures 90 to 400).
    max_gap_days: int = Field(365, ge=0)


class IdentityRulesConfig(Section):
    # Operators' force-link / never-link / block rules (see docs/identity.md).
    # None: <storage.root>/meta/identity_rules when that Delta table exists.
    path: str | None = None
    format: Literal["csv", "json", "parquet", "delta"] = "delta"


class IdentityConfig(Section):
    """The identity graph (the ``identity`` job)."""

    # Identifier types in the graph (every type must be in ingest.id_rules; a type not
    # listed here is weak, unlimited, priority 100). strong types form people; a weak one
    # attaches to one person or stays on its own, never bridging two. max_per_person caps
    # values per person (null: no cap): links beyond it are refused, weakest evidence
    # first. max_linked: an identifier seen with more distinct values of any one strong
    # type than this is unreliable (store hotline, internet-cafe cookie) and links nothing.
    # priority: lower names a record that carries several identifiers. bridge (weak types
    # only): may join the strong clusters it was seen with when the joined person stays
    # within every limit and never-link rule (a WeChat open id is one account; a device
    # or cookie can be a family's or a cafe's, so they do not bridge).
    types: dict[str, IdTypeConfig] = Field(default_factory=_default_id_types)

    @field_validator("types", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        # Settings of a type are merged over the built-in defaults, so setting one key
        # (identity.types.phone.max_per_person=4) keeps the other types and keys.
        if not isinstance(value, Mapping):
            return value
        defaults = {t: c.model_dump() for t, c in _default_id_types().items()}
        return deep_merge(
            defaults,
            {t: (c.model_dump() if isinstance(c, BaseModel) else c) for t, c in value.items()},
        )

    # A weak identifier seen with several clusters joins the one with the most records
    # only if that one holds at least this share of them; otherwise it stays on its own.
    weak_min_share: float = Field(0.6, gt=0.5, le=1.0)
    # Rounds in which unattached weak identifiers follow other weak ones (device -> open
    # id -> cluster); what is left forms anonymous people of weak identifiers only.
    weak_rounds: int = Field(2, ge=0, le=10)
    # A weak identifier (or a group of them linked to each other) seen with two strong
    # clusters over spans close in time joins them when the joined person stays within
    # every limit (a person's handset, in the app logged in sometimes as a member,
    # sometimes through WeChat).
    weak_bridge: WeakBridgeConfig = WeakBridgeConfig()
    # A record carrying more identifiers than this is a data error; it links nothing.
    max_ids_per_record: int = Field(20, ge=2)
    rules: IdentityRulesConfig = IdentityRulesConfig()
    # Recluster only the components that new or changed records touch (the result is the
    # same as reclustering everything; false forces a full run).
    incremental: bool = True
    # Connected components: stars (alternating large-star / small-star) or contraction
    # (randomized contraction, finished on the driver once few edges are left). Both name
    # a component by its minimum id, so the results are the same.
    components: Literal["contraction", "stars"] = "stars"
    # Connected components: checkpoint every n iterations (stars; contraction checkpoints
    # every round), and fail after this many.
    checkpoint_interval: int = Field(1, ge=1)
    max_iterations: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _belongs_to_strong(self) -> IdentityConfig:
        for id_type, config in self.types.items():
            owner = config.belongs_to
            if owner is not None and self.type_config(owner).strength != "strong":
                raise ValueError(
                    f"types.{id_type}.belongs_to: {owner!r} is not a strong type "
                    f"({', '.join(self.strong_types())})"
                )
        return self

    def type_config(self, id_type: str) -> IdTypeConfig:
        return self.types.get(id_type, IdTypeConfig())

    def strong_types(self) -> list[str]:
        return sorted(t for t, c in self.types.items() if c.strength == "strong")

    def owned_types(self) -> dict[str, str]:
        """Weak type -> the strong type each of its values belongs to."""
        return {t: c.belongs_to for t, c in sorted(self.types.items()) if c.belongs_to}

    def bridge_types(self) -> list[str]:
        return sorted(t for t, c in self.types.items() if c.bridge)
