"""Typed, immutable job configuration.

A run's configuration is built once, before Spark starts, from four layers:

1. the packaged defaults, ``precis/conf/base.yaml`` (in a checkout: the project's
   ``conf/base.yaml``, the same file),
2. the packaged environment overlay ``env/<env>.yaml`` (``local`` by default, chosen
   with ``--env`` or ``PRECIS_ENV``),
3. each ``--config FILE``, merged over the above in the order given,
4. ``--set dotted.key=value`` overrides, typed by the schema below.

Nothing depends on the working directory, so an installed precis runs anywhere. Every
section forbids unknown keys and every model is frozen, so a typo such as
``storage.rooot`` is an error that names the key instead of a silently ignored setting.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from precis.errors import ConfigError
from precis.settings import (
    Section,
    absolute,
    apply_override,
    config_file,
    deep_merge,
    defaults_dir,
    defaults_yaml,
    environments,
    parse_override,
    read_yaml_mapping,
    validate,
)

#: Every landing dataset of the data contract, in the order the jobs consume them.
DATASETS: tuple[str, ...] = (
    "id_observations",
    "events",
    "orders",
    "order_items",
    "touchpoints",
    "items",
    "customers",
    "campaign_spend",
    "forget_requests",
)

DEFAULT_ENV = "local"
ENV_VAR_ENV = "PRECIS_ENV"


class StorageConfig(Section):
    root: str = "./lakehouse"
    # Register each table written as ``<database_prefix><layer>.<table>`` in the session
    # catalog, so ``spark.table("gold.identity_map")`` works where a metastore exists.
    register_tables: bool = False
    database_prefix: str = ""


class LandingDataset(Section):
    path: str | None = None
    format: Literal["csv", "json", "parquet", "delta"] = "parquet"


class LandingConfig(Section):
    id_observations: LandingDataset = LandingDataset()
    events: LandingDataset = LandingDataset()
    orders: LandingDataset = LandingDataset()
    order_items: LandingDataset = LandingDataset()
    touchpoints: LandingDataset = LandingDataset()
    items: LandingDataset = LandingDataset()
    customers: LandingDataset = LandingDataset()
    campaign_spend: LandingDataset = LandingDataset()
    forget_requests: LandingDataset = LandingDataset()


class MlflowConfig(Section):
    enabled: bool = True
    # None: a local SQLite store beside the lakehouse (see precis.tracking).
    tracking_uri: str | None = None
    # Experiments are named ``<experiment_prefix><job>``; Databricks wants a workspace path.
    experiment_prefix: str = "precis-"
    artifact_location: str | None = None
    # Model registry (null: the tracking store). ``databricks-uc`` is Unity Catalog, whose
    # models are named ``catalog.schema.model``.
    registry_uri: str | None = None


class PrivacyConfig(Section):
    pii_key_env: str = "PRECIS_PII_KEY"
    # Identifier types whose values are PII: stored only as a keyed hash.
    pii_types: tuple[str, ...] = ("email", "phone")


class SparkConfig(Section):
    master: str = "local[*]"
    # A Spark Connect server (sc://host:port) to run on instead; $SPARK_REMOTE wins.
    remote: str | None = None
    app_name: str = "precis"
    # None: ``<storage.root>/_checkpoints``. Iterative jobs cut lineage here; set as
    # spark.checkpoint.dir on sessions precis starts (a reused session keeps its own).
    checkpoint_dir: str | None = None
    log_level: str = "WARN"
    # Add the Delta (and later GraphFrames) Maven packages when precis builds the session.
    # Databricks has Delta built in and an active session, so its overlay turns this off.
    add_packages: bool = True
    # Ivy cache for the Maven packages; None: ~/.ivy2.5.2 (Spark's default).
    ivy_dir: str | None = None
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # Spark settings are strings; YAML gives ints and bools for "8" and "false".
        if isinstance(value, Mapping):
            return {str(k): _spark_str(v) for k, v in value.items()}
        return value


def _spark_str(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


class GenerateConfig(Section):
    """Synthetic multi-source retail data with ground truth (the ``generate`` job)."""

    # Identifiers are bijections of the person index into 8 digits (two phones each), so
    # more people would make phone numbers collide.
    people: int = Field(20_000, gt=0, le=50_000_000)
    # Item ids are 6 digits.
    items: int = Field(2_000, gt=0, le=1_000_000)
    seed: int = 42
    # The generated period is the `days` days that end on `end_date` (null: the run date).
    days: int = Field(365, gt=0)
    end_date: dt.date | None = None
    # Share of landing rows to corrupt (unparsable timestamps, missing fields, ...).
    corrupt_fraction: float = Field(0.0, ge=0.0, le=0.5)
    # Landing files per dataset (fixed, so the same seed gives the same files).
    partitions: int = Field(4, gt=0)

    # --- who uses which source (shares of people)
    member_share: float = Field(0.7, ge=0.0, le=1.0)  # CRM members (member_id, customers row)
    email_share: float = Field(0.75, ge=0.0, le=1.0)  # people with an email address
    app_share: float = Field(0.55, ge=0.0, le=1.0)  # app users (1-3 devices each)
    web_share: float = Field(0.75, ge=0.0, le=1.0)  # web visitors (cookies that rotate)
    wechat_share: float = Field(0.5, ge=0.0, le=1.0)  # WeChat followers (open_id, union_id)
    # Share of people already active when the period starts (the rest arrive during it).
    existing_share: float = Field(0.5, ge=0.0, le=1.0)
    # Customers who opted out of marketing (consent_marketing = false).
    opt_out_share: float = Field(0.15, ge=0.0, le=1.0)
    # Cookies and app devices that sign in to an account (email, member id, or a phone
    # one-time code) when first used. The rest are anonymous unless a session logs in:
    # lower it for a world with more anonymous traffic (see docs/identity.md).
    signin_share: float = Field(0.95, ge=0.0, le=1.0)
    # People who switch to a new phone number during the period.
    phone_change_share: float = Field(0.05, ge=0.0, le=1.0)
    # People who file a right-to-be-forgotten request (at least one request is always made).
    forget_share: float = Field(0.002, ge=0.0, le=1.0)

    # --- identity traps
    # Households (4 people in a row) that share one family device in the app.
    family_share: float = Field(0.03, ge=0.0, le=1.0)
    # Web users who also log in from an internet cafe whose cookie many people share.
    cafe_share: float = Field(0.02, ge=0.0, le=1.0)
    # Identifier values replaced by placeholders (all-zero device, 13800000000,
    # test@test.com, "undefined", "null").
    placeholder_rate: float = Field(0.005, ge=0.0, le=1.0)
    # POS receipts where staff typed the store hotline instead of the customer's phone.
    hotline_rate: float = Field(0.08, ge=0.0, le=1.0)
    # Identifiers written in a non-canonical form (+86, dashes, spaces, case, padding).
    variant_rate: float = Field(0.4, ge=0.0, le=1.0)

    # --- buying: BG/NBD purchases, Gamma-Gamma spend (time unit: days)
    buyer_share: float = Field(0.6, ge=0.0, le=1.0)  # people who make a first purchase
    # Purchase rate lambda ~ Gamma(shape r, rate alpha): mean r / alpha per day.
    btyd_r: float = Field(0.75, gt=0.0)
    btyd_alpha: float = Field(70.0, gt=0.0)
    # Dropout probability after each repeat purchase p ~ Beta(a, b): mean a / (a + b).
    btyd_a: float = Field(1.0, gt=0.0)
    btyd_b: float = Field(4.0, gt=0.0)
    # Order value ~ Gamma(shape spend_p, rate nu), nu ~ Gamma(spend_q, rate spend_gamma):
    # mean order value spend_p * spend_gamma / (spend_q - 1) CNY.
    spend_p: float = Field(6.0, gt=0.0)
    spend_q: float = Field(4.0, gt=1.0)
    spend_gamma: float = Field(150.0, gt=0.0)
    refund_rate: float = Field(0.05, ge=0.0, le=1.0)  # orders with status refunded
    offline_share: float = Field(0.3, ge=0.0, le=1.0)  # orders paid at a store (POS)

    # --- browsing and marketing
    session_rate: float = Field(0.04, gt=0.0)  # mean online sessions per active day
    events_per_session: float = Field(3.5, ge=1.0)  # mean events in a browsing session
    touch_rate: float = Field(0.03, ge=0.0)  # mean marketing touches per active day
    # Share of purchases preceded by 1-3 touches drawn by channel effect.
    attributed_share: float = Field(0.8, ge=0.0, le=1.0)
    # Item popularity within a category ~ rank^-item_zipf (long tail).
    item_zipf: float = Field(1.1, gt=0.0)
    # Category preferences ~ Dirichlet(pref_alpha): small means few favourite categories.
    pref_alpha: float = Field(0.3, gt=0.0)
    # Share of views that ignore preferences (exploration), so tastes are learnable but noisy.
    explore_share: float = Field(0.2, ge=0.0, le=1.0)


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

    @field_validator("id_rules")
    @classmethod
    def _known_rules(cls, value: dict[str, str]) -> dict[str, str]:
        bad = {
            t: r for t, r in value.items() if r not in ("email", "phone", "lower", "upper", "trim")
        }
        if bad:
            raise ValueError(f"unknown rule(s) {bad}; expected email, phone, lower, upper or trim")
        return value

    @field_validator("datasets")
    @classmethod
    def _known_datasets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [d for d in value if d not in DATASETS]
        if unknown:
            raise ValueError(f"unknown dataset(s) {unknown}; expected some of {list(DATASETS)}")
        return value


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

    @model_validator(mode="after")
    def _bridge_is_weak(self) -> IdTypeConfig:
        if self.bridge and self.strength == "strong":
            raise ValueError(
                "bridge applies to weak types only (a strong type links clusters anyway)"
            )
        return self


def _default_id_types() -> dict[str, IdTypeConfig]:
    strong = {"member_id": (1, 1), "union_id": (2, 1), "phone": (3, 3), "email": (4, 3)}
    weak = {"device_id": (5, 5, False), "open_id": (6, 3, True), "cookie_id": (7, None, False)}
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
    return types


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
    # A record carrying more identifiers than this is a data error; it links nothing.
    max_ids_per_record: int = Field(20, ge=2)
    rules: IdentityRulesConfig = IdentityRulesConfig()
    # Recluster only the components that new or changed records touch (the result is the
    # same as reclustering everything; false forces a full run).
    incremental: bool = True
    # Connected components: checkpoint every n iterations (bounded lineage and memory).
    checkpoint_interval: int = Field(1, ge=1)
    max_iterations: int = Field(100, ge=1)

    def type_config(self, id_type: str) -> IdTypeConfig:
        return self.types.get(id_type, IdTypeConfig())

    def strong_types(self) -> list[str]:
        return sorted(t for t, c in self.types.items() if c.strength == "strong")

    def bridge_types(self) -> list[str]:
        return sorted(t for t, c in self.types.items() if c.bridge)


class LifecycleStagesConfig(Section):
    """Lifecycle stage thresholds, in days before the run date (see docs/lifecycle.md)."""

    new_days: int = Field(30, ge=1)  # first purchase this recent: new
    active_days: int = Field(90, ge=1)  # last purchase this recent: active (or reactivated)
    churn_days: int = Field(180, ge=1)  # last purchase older than this: churned; between: at_risk

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleStagesConfig:
        if not self.new_days <= self.active_days < self.churn_days:
            raise ValueError(
                f"lifecycle.stages needs new_days <= active_days < churn_days "
                f"(got {self.new_days}, {self.active_days}, {self.churn_days})"
            )
        return self


class RfmSegmentRule(Section):
    """A named RFM segment: the recency and frequency score ranges it covers (inclusive)."""

    name: str = Field(min_length=1)
    r: tuple[int, int]
    f: tuple[int, int]

    @model_validator(mode="after")
    def _ranges(self) -> RfmSegmentRule:
        for key, (lo, hi) in (("r", self.r), ("f", self.f)):
            if not 1 <= lo <= hi <= 5:
                raise ValueError(
                    f"segment '{self.name}': {key} must be [low, high] within 1..5, got [{lo}, {hi}]"
                )
        return self


def _default_rfm_segments() -> tuple[RfmSegmentRule, ...]:
    # The usual recency x frequency grid of RFM analysis; every cell is covered once.
    grid = (
        ("champions", (5, 5), (4, 5)),
        ("loyal", (3, 4), (4, 5)),
        ("potential_loyalists", (4, 5), (2, 3)),
        ("new_customers", (5, 5), (1, 1)),
        ("promising", (4, 4), (1, 1)),
        ("need_attention", (3, 3), (3, 3)),
        ("about_to_sleep", (3, 3), (1, 2)),
        ("cannot_lose", (1, 2), (5, 5)),
        ("at_risk", (1, 2), (3, 4)),
        ("hibernating", (1, 2), (1, 2)),
    )
    return tuple(RfmSegmentRule(name=n, r=r, f=f) for n, r, f in grid)


_PLAIN_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_UC_MODEL_NAME = re.compile(r"[A-Za-z0-9_]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+")


def check_model_name(value: str | None) -> str | None:
    """A registered model name: plain (``precis-churn``) or Unity Catalog's ``catalog.schema.model``.

    Any other dotted name (``a.b``) reads as a partial Unity Catalog path to one registry and
    as a literal name to another: refused rather than guessed at.
    """
    if value is None or _PLAIN_MODEL_NAME.fullmatch(value) or _UC_MODEL_NAME.fullmatch(value):
        return value
    raise ValueError(
        "a registered model name is a plain name (letters, digits, '_', '-') or catalog.schema.model "
        "(each part letters, digits, '_')"
    )


def is_unity_catalog(registry_uri: str | None) -> bool:
    return registry_uri is not None and (
        registry_uri == "databricks-uc" or registry_uri.startswith("databricks-uc://")
    )


class ChurnConfig(Section):
    enabled: bool = True
    # A buyer churns after a date when they make no paid order in the next horizon_days.
    horizon_days: int = Field(90, ge=7)
    # Gradient-boosted trees (Spark ML GBTClassifier).
    max_iter: int = Field(30, ge=1)
    max_depth: int = Field(4, ge=1, le=30)
    step_size: float = Field(0.1, gt=0.0, le=1.0)
    seed: int = 7
    # Log the fitted model to MLflow as a Spark ML model.
    log_model: bool = True
    # Register it under this name in the MLflow model registry (null: log only).
    registered_model_name: str | None = "precis-lifecycle-churn"

    @field_validator("registered_model_name")
    @classmethod
    def _model_name(cls, value: str | None) -> str | None:
        return check_model_name(value)


class LifecycleConfig(Section):
    """RFM, BG/NBD + Gamma-Gamma CLV, lifecycle stages and churn (the ``lifecycle`` job)."""

    # Unit of t_x, T and the fitted alpha; same-day purchases are one transaction either way.
    time_unit: Literal["day", "week"] = "week"
    # Expected purchases and CLV cover this many days after the run date.
    horizon_days: int = Field(365, ge=1)
    # Annual discount rate of future spend in the CLV.
    discount_rate: float = Field(0.1, ge=0.0, le=1.0)
    # CLV sums expected purchases over steps of this many days, each discounted.
    clv_step_days: int = Field(30, ge=1)
    # Validation: refit on data up to run_date - holdout_days, predict the holdout (0: off).
    holdout_days: int = Field(90, ge=0)
    # L2 penalty on the parameters (lifetimes' penalizer_coef); 0 is plain maximum likelihood.
    penalizer: float = Field(0.0, ge=0.0)
    # Stage thresholds in days before the run date (rules in docs/lifecycle.md).
    stages: LifecycleStagesConfig = LifecycleStagesConfig()
    # RFM segments: the first rule whose recency (r) and frequency (f) score ranges hold.
    rfm_segments: tuple[RfmSegmentRule, ...] = Field(default_factory=_default_rfm_segments)
    # Churn risk: gradient-boosted trees on behaviour.
    churn: ChurnConfig = ChurnConfig()

    @field_validator("rfm_segments")
    @classmethod
    def _unique_names(cls, value: tuple[RfmSegmentRule, ...]) -> tuple[RfmSegmentRule, ...]:
        names = [rule.name for rule in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"segment name(s) {twice} appear more than once")
        return value


class RecommendGridConfig(Section):
    """Hyper-parameters tried on the time-based validation split (every combination)."""

    rank: tuple[int, ...] = (16,)
    reg_param: tuple[float, ...] = (0.5, 2.0)
    alpha: tuple[float, ...] = (2.0, 5.0)

    @field_validator("rank", "reg_param", "alpha")
    @classmethod
    def _positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(v <= 0 for v in value):
            raise ValueError(f"needs at least one value, all positive (got {list(value)})")
        return value


class RecommendConfig(Section):
    """Implicit ALS top-N recommendations (the ``recommend`` job)."""

    # Weight of one event of each type on an item; 0 or absent: not evidence. Purchases
    # come from paid order lines (order_weight), so checkout 'purchase' events weigh 0.
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "view": 1.0,
            "click": 1.0,
            "add_to_cart": 3.0,
            "favorite": 4.0,
            "purchase": 0.0,
        }
    )
    order_weight: float = Field(5.0, ge=0.0)  # each line of a paid order
    # Evidence loses half its weight every half_life_days before the run date (null: no decay).
    half_life_days: float | None = Field(90.0, gt=0.0)
    # Only evidence from the last lookback_days counts (null: all).
    lookback_days: int | None = Field(365, ge=1)
    top_n: int = Field(10, ge=1, le=1000)
    # Leave out items the person already bought (paid orders up to the run date).
    exclude_purchased: bool = True
    # Tuning: pairs first seen in the last validation_days are held out; k of the metrics.
    validation_days: int = Field(14, ge=1)
    eval_k: int = Field(10, ge=1)
    # ALS hyperparameters: every combination is tried; the best NDCG@k wins.
    grid: RecommendGridConfig = RecommendGridConfig()
    max_iter: int = Field(10, ge=1)
    seed: int = 17
    # recommendForAll multiplies blocks of this many factor rows (no user x item join).
    block_size: int = Field(4096, ge=256)
    # Register the chosen model under this name in the MLflow model registry (null: log only).
    registered_model_name: str | None = "precis-recommend-als"
    log_model: bool = True
    # Also write top-N lists of people with marketing consent to <root>/exports/recommendations.
    export: bool = True
    export_format: Literal["csv", "parquet"] = "parquet"

    @field_validator("event_weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if v < 0}
        if bad:
            raise ValueError(f"event weights must be >= 0, got {bad}")
        return value

    @field_validator("registered_model_name")
    @classmethod
    def _model_name(cls, value: str | None) -> str | None:
        return check_model_name(value)


class TagsKMeansConfig(Section):
    """K-means cluster tags: k is chosen by silhouette among k_min..k_max."""

    k_min: int = Field(2, ge=2)
    k_max: int = Field(6, ge=2, le=50)
    seed: int = 11
    max_iter: int = Field(30, ge=1)

    @model_validator(mode="after")
    def _range(self) -> TagsKMeansConfig:
        if self.k_min > self.k_max:
            raise ValueError(f"tags.kmeans needs k_min <= k_max (got {self.k_min}, {self.k_max})")
        return self


class TagsExplainConfig(Section):
    """Explain mode: print how one person's tag value came about instead of computing tags."""

    # A one_id, or id_type:value (PII values are hashed with the project's key; never printed).
    id: str | None = None
    tag: str | None = None
    # Input rows printed at most.
    rows: int = Field(20, ge=1, le=1000)

    @model_validator(mode="after")
    def _both(self) -> TagsExplainConfig:
        if (self.id is None) != (self.tag is None):
            raise ValueError("tags.explain needs both id and tag (or neither)")
        return self


class TagsConfig(Section):
    """Tag profiles and audience segments (the ``tags`` job)."""

    # Relative paths resolve against the working directory, then the packaged defaults
    # (where tags.yaml and segments.yaml ship).
    definitions: str = "tags.yaml"
    segments: str | None = "segments.yaml"  # null: no segments
    # Consented members of each segment to <root>/exports/segments/run_date=<date>/segment=<name>.
    export: bool = True
    export_format: Literal["csv", "parquet"] = "parquet"
    # Cluster tags: the k with the best silhouette in k_min..k_max.
    kmeans: TagsKMeansConfig = TagsKMeansConfig()
    # Set id and tag to explain one person's value instead of computing tags.
    explain: TagsExplainConfig = TagsExplainConfig()

    def definitions_path(self) -> Path | Traversable:
        return config_file(self.definitions)

    def segments_path(self) -> Path | Traversable | None:
        return config_file(self.segments) if self.segments else None


class AttributionPositionConfig(Section):
    """position_based shares of the first touch, the touches between and the last touch."""

    first: float = Field(0.4, ge=0.0, le=1.0)
    middle: float = Field(0.2, ge=0.0, le=1.0)
    last: float = Field(0.4, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _sum_to_one(self) -> AttributionPositionConfig:
        if abs(self.first + self.middle + self.last - 1.0) > 1e-9 or self.first + self.last == 0:
            raise ValueError(
                f"attribution.position_based: first + middle + last must be 1 with first + last > 0 "
                f"(got {self.first} + {self.middle} + {self.last})"
            )
        return self


class AttributionMarkovConfig(Section):
    order: int = Field(1, ge=1, le=3)  # channels of history per state
    # Collapse a channel repeated in a row into one step (off: repeats are self-transitions).
    collapse_repeats: bool = False


class AttributionShapleyConfig(Section):
    # Worth of a coalition: conversions (or conversion rate) of journeys inside it.
    worth: Literal["conversions", "rate"] = "conversions"
    max_exact_channels: int = Field(15, ge=1, le=20)  # beyond: sampled channel orders
    samples: int = Field(2000, ge=10)
    seed: int = 11


ATTRIBUTION_MODELS = (
    "first_touch",
    "last_touch",
    "linear",
    "time_decay",
    "position_based",
    "markov",
    "shapley",
)


class AttributionConfig(Section):
    """Multi-touch attribution (the ``attribution`` job); see docs/attribution.md."""

    # Conversions in the window_days ending on the run date (inclusive) are attributed.
    window_days: int = Field(90, ge=1)
    # A journey holds the touches at most lookback_days before its conversion.
    lookback_days: int = Field(30, ge=1)
    # channel, or campaign (channel:campaign_id).
    granularity: Literal["channel", "campaign"] = "channel"
    # Which orders convert (Spark SQL over silver/orders; null: paid orders) and their value.
    conversion_filter: str | None = None
    revenue: str = "amount"
    models: tuple[str, ...] = ATTRIBUTION_MODELS
    time_decay_half_life_days: float = Field(7.0, gt=0.0)
    position_based: AttributionPositionConfig = AttributionPositionConfig()
    markov: AttributionMarkovConfig = AttributionMarkovConfig()
    shapley: AttributionShapleyConfig = AttributionShapleyConfig()
    # A comparison plot of the models to MLflow.
    log_plot: bool = True

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in value if m not in ATTRIBUTION_MODELS]
        if unknown or not value:
            raise ValueError(
                f"unknown model(s) {unknown or '(none given)'}; expected some of {list(ATTRIBUTION_MODELS)}"
            )
        if len(set(value)) != len(value):
            raise ValueError(f"models listed twice: {list(value)}")
        return value


class PipelineConfig(Section):
    # Jobs the ``pipeline`` job runs, in order; each must be a known job.
    jobs: tuple[str, ...] = (
        "generate",
        "ingest",
        "identity",
        "lifecycle",
        "tags",
        "recommend",
        "attribution",
        "evaluate",
    )

    @field_validator("jobs")
    @classmethod
    def _known_jobs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Checked here so a typo fails before Spark starts; the registry is a plain tuple.
        from precis.jobs import PIPELINE_JOBS

        for name in value:
            if name == "pipeline":
                raise ValueError("the pipeline cannot run itself")
            if name not in PIPELINE_JOBS:
                raise ValueError(f"unknown job '{name}'; jobs: {', '.join(PIPELINE_JOBS)}")
        return value


class Config(Section):
    # Lakehouse root: every table is the Delta directory <root>/<layer>/<table>.
    storage: StorageConfig = StorageConfig()
    # Where each landing dataset is read from: path (null: <storage.root>/landing/<dataset>)
    # and format (csv with a header, json lines, parquet or delta).
    landing: LandingConfig = LandingConfig()
    mlflow: MlflowConfig = MlflowConfig()
    # The key that hashes PII identifiers comes from the environment, never a file.
    privacy: PrivacyConfig = PrivacyConfig()
    spark: SparkConfig = SparkConfig()
    # Synthetic data (the generate job): landing datasets plus ground truth under
    # <storage.root>/truth/. Same seed + config + end date => identical rows and files.
    generate: GenerateConfig = GenerateConfig()
    # Landing -> bronze -> silver: types, quarantine, identifier normalization and hashing.
    ingest: IngestConfig = IngestConfig()
    # The identity graph: stable one_ids, guards against over-merging (docs/identity.md).
    identity: IdentityConfig = IdentityConfig()
    # RFM, BG/NBD + Gamma-Gamma CLV, stages and churn (docs/lifecycle.md).
    lifecycle: LifecycleConfig = LifecycleConfig()
    # ALS recommendations on implicit feedback, tuned and evaluated offline (docs/recommend.md).
    recommend: RecommendConfig = RecommendConfig()
    # Tag profiles and consent-safe segments (docs/tags.md).
    tags: TagsConfig = TagsConfig()
    # Multi-touch attribution: conversions in the window_days ending on the run date are
    # credited to the touches of their journey (docs/attribution.md).
    attribution: AttributionConfig = AttributionConfig()
    pipeline: PipelineConfig = PipelineConfig()
    # Not read from files: filled from the command line.
    env: str = DEFAULT_ENV
    run_date: dt.date = Field(default_factory=lambda: dt.datetime.now(dt.UTC).date())

    @model_validator(mode="after")
    def _unity_catalog_model_names(self) -> Config:
        # Unity Catalog only registers three-part names; finding out at the end of a job,
        # after the model is trained, would waste the run.
        if is_unity_catalog(self.mlflow.registry_uri):
            names = {
                "recommend.registered_model_name": self.recommend.registered_model_name,
                "lifecycle.churn.registered_model_name": self.lifecycle.churn.registered_model_name,
            }
            registry = self.mlflow.registry_uri
            bad = [
                f"{key} must be catalog.schema.model when mlflow.registry_uri is {registry} (got {name!r})"
                for key, name in names.items()
                if name is not None and not _UC_MODEL_NAME.fullmatch(name)
            ]
            if bad:
                raise ValueError("; ".join(bad))
        return self

    @model_validator(mode="after")
    def _identity_types_are_ingested(self) -> Config:
        unknown = sorted(set(self.identity.types) - set(self.ingest.id_rules))
        if unknown:
            raise ValueError(
                f"identity.types declares {unknown}, which ingest.id_rules does not accept "
                f"(known: {sorted(self.ingest.id_rules)})"
            )
        return self

    # ----------------------------------------------------------------- derived values
    @property
    def root(self) -> str:
        """Absolute lakehouse root (a URI such as ``s3://...`` or ``dbfs:/...`` stays as is)."""
        return absolute(self.storage.root)

    def landing_path(self, dataset: str) -> str:
        spec: LandingDataset = getattr(self.landing, dataset)
        return absolute(spec.path) if spec.path else f"{self.root}/landing/{dataset}"

    def landing_format(self, dataset: str) -> str:
        return getattr(self.landing, dataset).format

    @property
    def checkpoint_dir(self) -> str:
        return (
            absolute(self.spark.checkpoint_dir)
            if self.spark.checkpoint_dir
            else f"{self.root}/_checkpoints"
        )

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def config_hash(self) -> str:
        """Stable hash of everything that shapes results (the run date included)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- loading
def load_config(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    overrides: Sequence[str] = (),
    run_date: str | dt.date | None = None,
    env: str | None = None,
) -> Config:
    """Build the validated configuration; raises ConfigError naming the bad key or file.

    ``path``: one or more config files (``--config``), merged in order over the packaged
    defaults and their environment overlay. A file with an ``env/<env>.yaml`` beside it
    brings that overlay too, right after itself, so a folder laid out like ``conf/``
    works as a whole.
    """
    explicit_env = env or os.environ.get(ENV_VAR_ENV)
    env_name = explicit_env or DEFAULT_ENV
    files = [] if path is None else [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers: list[Path | Traversable] = [defaults_dir() / "base.yaml"]
    overlays = 0
    for folder, file in [
        (defaults_dir(), None),
        *((Path(f).expanduser().parent, Path(f).expanduser()) for f in files),
    ]:
        if file is not None:
            layers.append(file)
        overlay = folder / "env" / f"{env_name}.yaml"
        if overlay.is_file():
            layers.append(overlay)
            overlays += 1
    if explicit_env and not overlays:
        known = sorted(
            {
                *environments(defaults_dir()),
                *(e for f in files for e in environments(Path(f).expanduser().parent)),
            }
        )
        raise ConfigError(f"unknown environment '{env_name}'; environments: {', '.join(known)}")
    data: dict[str, Any] = {}
    for layer in layers:
        data = deep_merge(data, read_yaml_mapping(layer))
    for item in overrides:
        key, value = parse_override(item)
        data = apply_override(Config, data, key, value)
    for reserved in ("env", "run_date"):
        if reserved in data:
            raise ConfigError(
                f"config key '{reserved}' is set from the command line, not in a file"
            )
    data["env"] = env_name
    if run_date is not None:
        data["run_date"] = run_date
    source = " + ".join(
        ["defaults", *(str(layer) for layer in layers[1:] if isinstance(layer, Path))]
    )
    return validate(Config, data, source=source)


HEADER = """precis default configuration (installed with the package as precis/conf/base.yaml).
Generated from the settings models: python -m precis.config > conf/base.yaml
Every key is typed and validated before Spark starts; an unknown key is an error.
The environment overlay env/<env>.yaml is merged on top (local by default; choose with
--env or PRECIS_ENV), then each --config FILE, then --set overrides."""


def defaults_text() -> str:
    """``conf/base.yaml``: every default, written once in the models above."""
    return defaults_yaml(Config, HEADER, exclude=("env", "run_date"))


if __name__ == "__main__":
    print(defaults_text(), end="")
