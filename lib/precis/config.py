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

import codecs
import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from precis.attribution.settings import ATTRIBUTION_MODELS as ATTRIBUTION_MODELS
from precis.attribution.settings import AttributionConfig as AttributionConfig
from precis.attribution.settings import AttributionMarkovConfig as AttributionMarkovConfig
from precis.attribution.settings import AttributionPositionConfig as AttributionPositionConfig
from precis.attribution.settings import AttributionShapleyConfig as AttributionShapleyConfig
from precis.budget.settings import BudgetConfig as BudgetConfig
from precis.columns import RUN_DATE
from precis.contract import DATASETS as DATASETS
from precis.errors import ConfigError
from precis.experiments.settings import ExperimentsConfig as ExperimentsConfig
from precis.exports_settings import ExportsConfig as ExportsConfig
from precis.forget.settings import ForgetConfig as ForgetConfig
from precis.generate.settings import GenerateConfig as GenerateConfig
from precis.identity.settings import IdentityConfig as IdentityConfig
from precis.identity.settings import IdentityRulesConfig as IdentityRulesConfig
from precis.identity.settings import IdTypeConfig as IdTypeConfig
from precis.ingest.settings import BronzeConfig as BronzeConfig
from precis.ingest.settings import IngestConfig as IngestConfig
from precis.jobs import DAILY_JOBS
from precis.lifecycle.settings import ChurnConfig as ChurnConfig
from precis.lifecycle.settings import LifecycleConfig as LifecycleConfig
from precis.lifecycle.settings import LifecycleStagesConfig as LifecycleStagesConfig
from precis.lifecycle.settings import RfmSegmentRule as RfmSegmentRule
from precis.recommend.settings import RecommendConfig as RecommendConfig
from precis.recommend.settings import RecommendGridConfig as RecommendGridConfig
from precis.report.settings import ReportConfig as ReportConfig
from precis.settings import (
    UC_MODEL_NAME,
    Section,
    absolute,
    apply_override,
    config_file,
    deep_merge,
    defaults_dir,
    defaults_yaml,
    environments,
    is_unity_catalog,
    local_file_path,
    parse_override,
    read_yaml_mapping,
    validate,
)
from precis.share.settings import ShareConfig as ShareConfig
from precis.share.settings import ShareTagConfig as ShareTagConfig
from precis.sqlcheck import ConfigSqlError, check_sql_text
from precis.stream.settings import StreamConfig as StreamConfig
from precis.tags.settings import TagsConfig as TagsConfig
from precis.tags.settings import TagsExplainConfig as TagsExplainConfig
from precis.tags.settings import TagsKMeansConfig as TagsKMeansConfig

DEFAULT_ENV = "local"
ENV_VAR_ENV = "PRECIS_ENV"


class StorageConfig(Section):
    root: str = "./lakehouse"
    # Register each table written as ``<database_prefix><layer>.<table>`` in the session
    # catalog, so ``spark.table("gold.identity_map")`` works where a metastore exists.
    register_tables: bool = False
    database_prefix: str = ""

    @field_validator("root", "database_prefix")
    @classmethod
    def _safe_in_sql(cls, value: str, info: ValidationInfo) -> str:
        # Both are pasted into SQL statements: delta.`<root>/...`, CREATE DATABASE `<prefix>...`.
        quote = "`" if info.field_name == "database_prefix" else ""
        try:
            check_sql_text(value, f"storage.{info.field_name}", quote)
        except ConfigSqlError as exc:
            raise ValueError(exc.reason) from None
        return value


class LandingDataset(Section):
    # A folder (read recursively), one file or a glob; null: <storage.root>/landing/<dataset>.
    path: str | None = None
    format: Literal["csv", "json", "parquet", "delta"] = "parquet"
    # Character set of csv and json files: UTF-8, GBK, GB18030, ISO-8859-1, ...
    encoding: str = "UTF-8"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown character set '{value}'; expected e.g. UTF-8, GBK, GB18030"
            ) from None
        return value


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
    experiment_assignments: LandingDataset = LandingDataset()
    experiments: LandingDataset = LandingDataset()


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
    # Environment variable holding the key that hashes PII identifiers. Unset: an error,
    # except in the local environment (the public development key, with a warning).
    pii_key_env: str = "PRECIS_PII_KEY"
    # The key being replaced, read by the rekey job only (docs/privacy.md).
    previous_key_env: str = "PRECIS_PII_KEY_PREVIOUS"
    # Identifier types whose values are PII: stored only as a keyed hash.
    pii_types: tuple[str, ...] = ("email", "phone")


#: The Spark setting that reads zone-less times and cuts days: ``ingest.timezone``.
SESSION_TIME_ZONE = "spark.sql.session.timeZone"


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


class RetentionConfig(Section):
    # Days of snapshots a gold product table keeps, counted back from its newest run date
    # (null: every snapshot). Older ones are deleted when a newer one is written.
    snapshots: int | None = Field(default=90, ge=1)
    # Files of deleted snapshots stay this long for time travel, then VACUUM removes them
    # (Delta refuses less than 168 unless its retention check is turned off).
    vacuum_hours: int = Field(default=168, ge=0)


class PipelineConfig(Section):
    # Jobs the ``pipeline`` job runs, in order; each must be a known job.
    # Demo data (generate) and scores against its truth (evaluate) are left out: pointed at
    # real landing data, generate would replace it. conf/demo.yaml adds both.
    jobs: tuple[str, ...] = DAILY_JOBS
    # First run date of a backfill (--from): the jobs run for every date from it to the
    # run date (--to), in order. Null: the run date only.
    from_date: dt.date | None = None
    # Rerun the (date, job)s that meta/pipeline_runs has as done (--force); off, a rerun
    # after a failure goes on from the first one not done.
    force: bool = False

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


class RunnerConfig(Section):
    # A second run of a job on the same storage root waits this long for the first to
    # finish (its lease in meta/leases), then exits with code 75 naming the holder.
    lock_wait_seconds: int = Field(default=600, ge=0)
    # A holder renews its lease every quarter of this; a holder that stops renewing (a
    # crashed machine) is taken over after it. A holder on this machine whose process is
    # gone is taken over at once.
    lease_seconds: int = Field(default=300, ge=10)


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
    # What bronze keeps of landed rows and how long (docs/privacy.md).
    bronze: BronzeConfig = BronzeConfig()
    # Right to be forgotten: requests, history purge (docs/privacy.md).
    forget: ForgetConfig = ForgetConfig()
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
    # Campaign experiments: each arm against control on conversion and revenue, once an
    # experiment's windows have closed (docs/experiments.md).
    experiments: ExperimentsConfig = ExperimentsConfig()
    # Budget plan from response curves per channel, and every attribution model checked
    # against the channel holdout experiments (docs/budget.md).
    budget: BudgetConfig = BudgetConfig()
    # The speed layer: real-time tags and marketing triggers as events land (docs/stream.md).
    stream: StreamConfig = StreamConfig()
    # Differentially private aggregates for outside the team, under a privacy budget
    # (docs/share.md).
    share: ShareConfig = ShareConfig()
    # The run report: one static page per run date (docs/report.md).
    report: ReportConfig = ReportConfig()
    # How long gold product tables keep their run-date snapshots (docs/running.md).
    retention: RetentionConfig = RetentionConfig()
    # How long activation exports (<storage.root>/exports) are kept (docs/privacy.md).
    exports: ExportsConfig = ExportsConfig()
    pipeline: PipelineConfig = PipelineConfig()
    # One writer per job and storage root (docs/running.md).
    runner: RunnerConfig = RunnerConfig()
    # Not read from files: filled from the command line.
    env: str = DEFAULT_ENV
    run_date: dt.date = Field(default_factory=lambda: dt.datetime.now(dt.UTC).date())

    @model_validator(mode="after")
    def _backfill_range(self) -> Config:
        first = self.pipeline.from_date
        if first is not None and first > self.run_date:
            raise ValueError(
                f"pipeline.from_date ({first}) is after the run date ({self.run_date}): "
                "a backfill runs from --from to --to"
            )
        return self

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
                if name is not None and not UC_MODEL_NAME.fullmatch(name)
            ]
            if bad:
                raise ValueError("; ".join(bad))
        return self

    @model_validator(mode="after")
    def _one_time_zone(self) -> Config:
        # Jobs set the session's zone to the business zone: a different one in spark.conf
        # would be overridden without a word.
        zone = self.spark.conf.get(SESSION_TIME_ZONE)
        if zone is not None and zone != self.ingest.timezone:
            raise ValueError(
                f"spark.conf.{SESSION_TIME_ZONE} ({zone}) differs from ingest.timezone "
                f"({self.ingest.timezone}); every job runs in the business time zone: set "
                "ingest.timezone instead"
            )
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

    @model_validator(mode="after")
    def _landing_rewritable(self) -> Config:
        # Found before Spark starts, not after the forget run has deleted half its rows.
        if self.forget.rewrite_landing:
            remote = [
                f"landing.{d}.path ({self.landing_path(d)})"
                for d in type(self.landing).model_fields
                if self.landing_format(d) != "delta"
                and local_file_path(self.landing_path(d)) is None
            ]
            if remote:
                raise ValueError(
                    "forget.rewrite_landing rewrites landing files on this process's file "
                    "system (local disk, /dbfs, /Volumes), which cannot reach "
                    + ", ".join(remote)
                    + "; turn it off and clean those files with your own tools"
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

    def landing_encoding(self, dataset: str) -> str:
        return getattr(self.landing, dataset).encoding

    @property
    def checkpoint_dir(self) -> str:
        return (
            absolute(self.spark.checkpoint_dir)
            if self.spark.checkpoint_dir
            else f"{self.root}/_checkpoints"
        )

    def for_date(self, run_date: dt.date) -> Config:
        """This configuration for another run date (a backfill's days)."""
        return self.model_copy(update={RUN_DATE: run_date})

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
    # A name that is no file here may be a packaged profile: --config demo.yaml.
    found = [config_file(os.fspath(f)) for f in files]
    layers: list[Path | Traversable] = [defaults_dir() / "base.yaml"]
    overlays = 0
    for folder, file in [
        (defaults_dir(), None),
        *((f.parent if isinstance(f, Path) else defaults_dir(), f) for f in found),
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
                *(e for f in found if isinstance(f, Path) for e in environments(f.parent)),
            }
        )
        raise ConfigError(f"unknown environment '{env_name}'; environments: {', '.join(known)}")
    data: dict[str, Any] = {}
    for layer in layers:
        data = deep_merge(data, read_yaml_mapping(layer))
    for item in overrides:
        key, value = parse_override(item)
        data = apply_override(Config, data, key, value)
    for reserved in ("env", RUN_DATE):
        if reserved in data:
            raise ConfigError(
                f"config key '{reserved}' is set from the command line, not in a file"
            )
    data["env"] = env_name
    if run_date is not None:
        data[RUN_DATE] = run_date
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
    return defaults_yaml(Config, HEADER, exclude=("env", RUN_DATE))


if __name__ == "__main__":
    print(defaults_text(), end="")
