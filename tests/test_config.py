"""Config: layered loading, strict keys, --set typing, immutability, contract defaults.

No Spark here: the whole point of the config layer is that it fails before Spark starts.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from precis.config import DATASETS, Config, load_config
from precis.errors import ConfigError
from precis.runner import parse_config
from precis.tracking import tracking_uri

PROJECT = Path(__file__).resolve().parents[1]
BASE = PROJECT / "conf" / "base.yaml"


def write_conf(directory: Path, base: str, **overlays: str) -> Path:
    """A config dir with ``base.yaml`` and ``env/<name>.yaml`` per overlay; returns the base."""
    directory.mkdir(parents=True, exist_ok=True)
    base_path = directory / "base.yaml"
    base_path.write_text(textwrap.dedent(base))
    if overlays:
        (directory / "env").mkdir()
        for name, text in overlays.items():
            (directory / "env" / f"{name}.yaml").write_text(textwrap.dedent(text))
    return base_path


def value_at(cfg: Config, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


# ----------------------------------------------------------------- strict keys, types
def test_unknown_key_in_file_names_key_and_file(tmp_path):
    base = write_conf(tmp_path, "storage:\n  rooot: /x\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'storage\.rooot'") as err:
        load_config(base)
    assert str(base) in str(err.value)


def test_unknown_key_in_overlay_names_key(tmp_path):
    base = write_conf(tmp_path, "storage: {root: /x}\n", dev="mlflow:\n  tracking_url: http://x\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'mlflow\.tracking_url'"):
        load_config(base, env="dev")


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("storage.rooot=x", "storage.rooot"),
        ("stroage.root=x", "stroage.root"),
        ("landing.evnts.path=/x", "landing.evnts.path"),
    ],
)
def test_unknown_key_via_set_names_key(override, named):
    with pytest.raises(ConfigError, match=f"unknown config key '{named}'"):
        load_config(BASE, [override])


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("generate.people=lots", "generate.people"),
        ("generate.people=-5", "generate.people"),
        ("storage.register_tables=maybe", "storage.register_tables"),
        ("landing.events.format=xml", "landing.events.format"),
        ("generate.end_date=someday", "generate.end_date"),
        ("recommend.registered_model_name=a.b", "recommend.registered_model_name"),
        ("lifecycle.churn.registered_model_name=a.b", "lifecycle.churn.registered_model_name"),
    ],
)
def test_wrong_type_via_set_names_key(override, named):
    with pytest.raises(ConfigError, match=f"config key '{named}'"):
        load_config(BASE, [override])


def test_wrong_type_in_file_names_key(tmp_path):
    base = write_conf(tmp_path, "generate:\n  people: lots\nspark:\n  add_packages: [1]\n")
    with pytest.raises(ConfigError) as err:
        load_config(base)
    assert "config key 'generate.people'" in str(err.value)
    assert "config key 'spark.add_packages'" in str(err.value)


def test_missing_config_file_names_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="config file not found") as err:
        load_config(missing)
    assert str(missing) in str(err.value)
    with pytest.raises(ConfigError, match="nope.yaml"):
        parse_config("selfcheck", ["--config", str(missing)])


def test_invalid_yaml_and_non_mapping_name_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("storage: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        load_config(bad)
    assert str(bad) in str(err.value)
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(bad)


def test_run_date_and_env_are_not_file_keys(tmp_path):
    base = write_conf(tmp_path, "run_date: 2026-01-01\n")
    with pytest.raises(ConfigError, match="'run_date' is set from the command line"):
        load_config(base)


def test_set_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="dotted.key=value"):
        load_config(BASE, ["storage.root"])


# --------------------------------------------------------------------------- layering
OVERLAY_BASE = """
    storage: {root: /base-root, database_prefix: base_}
    generate: {seed: 1, people: 100}
    spark:
      app_name: base-app
      conf: {spark.sql.shuffle.partitions: 8, spark.sql.adaptive.enabled: true}
"""
OVERLAY_DEV = """
    storage: {root: /dev-root}
    generate: {seed: 2}
    spark:
      conf: {spark.sql.shuffle.partitions: 16}
"""


def test_overlay_precedence_base_then_env_then_set(tmp_path):
    base = write_conf(tmp_path, OVERLAY_BASE, dev=OVERLAY_DEV)

    only_base = load_config(base)  # no env/local.yaml here: the default overlay is optional
    assert (only_base.env, only_base.storage.root, only_base.generate.seed) == (
        "local",
        "/base-root",
        1,
    )

    cfg = load_config(base, ["generate.seed=3"], env="dev")
    assert cfg.env == "dev"
    assert cfg.storage.root == "/dev-root"  # overlay beats base
    assert cfg.storage.database_prefix == "base_"  # base kept where the overlay is silent
    assert cfg.generate.seed == 3  # --set beats overlay
    assert cfg.generate.people == 100
    assert cfg.spark.app_name == "base-app"
    # Mappings merge deeply: the overlay replaces one Spark setting, keeps the other.
    assert cfg.spark.conf == {
        "spark.sql.shuffle.partitions": "16",
        "spark.sql.adaptive.enabled": "true",
    }

    later = load_config(base, ["generate.seed=3", "generate.seed=4"], env="dev")
    assert later.generate.seed == 4  # the last --set wins


def test_env_from_variable_and_flag(tmp_path, monkeypatch):
    base = write_conf(tmp_path, OVERLAY_BASE, dev=OVERLAY_DEV, prod="storage: {root: /prod-root}\n")
    monkeypatch.setenv("PRECIS_ENV", "dev")
    assert load_config(base).storage.root == "/dev-root"
    assert load_config(base, env="prod").storage.root == "/prod-root"  # --env beats PRECIS_ENV
    assert parse_config("selfcheck", ["--config", str(base), "--env", "prod"]).env == "prod"


def test_explicit_unknown_env_names_the_known_ones(tmp_path, monkeypatch):
    base = write_conf(tmp_path, OVERLAY_BASE, dev=OVERLAY_DEV)
    # Known: the packaged overlays and those beside the --config files.
    known = "environments: cluster, databricks, dev, local"
    with pytest.raises(ConfigError, match=f"unknown environment 'staging'; {known}"):
        load_config(base, env="staging")
    monkeypatch.setenv("PRECIS_ENV", "staging")
    with pytest.raises(ConfigError, match="unknown environment 'staging'"):
        load_config(base)
    with pytest.raises(
        ConfigError,
        match="unknown environment 'staging'; environments: cluster, databricks, local$",
    ):
        load_config()


def test_config_files_layer_over_the_packaged_defaults_in_order(tmp_path):
    first = tmp_path / "a.yaml"
    first.write_text("storage: {root: /a}\ngenerate: {people: 7, seed: 1}\n")
    second = tmp_path / "b.yaml"
    second.write_text("generate: {seed: 2}\n")
    cfg = load_config([first, second], ["generate.seed=3"])
    # A partial file keeps every default it does not name.
    assert (cfg.storage.root, cfg.generate.people, cfg.generate.items) == ("/a", 7, 2000)
    assert cfg.generate.seed == 3
    assert load_config([first, second]).generate.seed == 2  # the later file wins
    cli = parse_config("selfcheck", ["--config", str(first), "--config", str(second)])
    assert (cli.storage.root, cli.generate.seed) == ("/a", 2)
    # An environment overlay applies under the files (they are the user's last word).
    assert load_config([first], env="cluster").storage.root == "/a"
    assert load_config(env="cluster").storage.root == "hdfs:///precis/lakehouse"


@pytest.mark.parametrize("env", ["local", "cluster", "databricks"])
def test_shipped_overlays_are_valid(env):
    cfg = load_config(BASE, env=env)
    assert cfg.env == env


def test_shipped_databricks_overlay_values():
    cfg = load_config(BASE, env="databricks")
    assert cfg.root == "dbfs:/precis/lakehouse"  # URIs are not resolved against the cwd
    assert cfg.mlflow.tracking_uri == "databricks"
    assert cfg.spark.add_packages is False
    assert cfg.storage.register_tables is True


# ----------------------------------------------------------------------- --set typing
@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ("generate.people=10", "generate.people", 10),
        ("storage.register_tables=true", "storage.register_tables", True),
        ("mlflow.enabled=false", "mlflow.enabled", False),
        ("generate.corrupt_fraction=0.25", "generate.corrupt_fraction", 0.25),
        ("privacy.pii_types=[email, member_id]", "privacy.pii_types", ("email", "member_id")),
        ("generate.end_date=2026-01-31", "generate.end_date", dt.date(2026, 1, 31)),
        # String fields stay strings even when YAML would read a number, bool or null.
        ("privacy.pii_key_env=123", "privacy.pii_key_env", "123"),
        ("spark.app_name=007", "spark.app_name", "007"),
        ("storage.database_prefix=true", "storage.database_prefix", "true"),
        ("spark.master=local[2]", "spark.master", "local[2]"),
        # Optional[str]: text as is; null resets to the default (None).
        ("mlflow.tracking_uri=http://mlflow:5000", "mlflow.tracking_uri", "http://mlflow:5000"),
        ("mlflow.tracking_uri=null", "mlflow.tracking_uri", None),
        ("spark.checkpoint_dir=1234", "spark.checkpoint_dir", "1234"),
        ("landing.events.path=s3://bucket/events", "landing.events.path", "s3://bucket/events"),
        ("landing.events.format=csv", "landing.events.format", "csv"),
        # The value may itself contain '='.
        ("spark.log_level=a=b", "spark.log_level", "a=b"),
    ],
)
def test_set_is_typed_by_schema(override, key, expected):
    value = value_at(load_config(BASE, [override]), key)
    assert value == expected
    assert type(value) is type(expected)


def test_set_key_of_free_form_mapping_may_contain_dots():
    cfg = load_config(
        BASE,
        [
            "spark.conf.spark.sql.shuffle.partitions=4",
            "spark.conf.spark.driver.extraJavaOptions=-Dfoo=bar",
        ],
    )
    assert cfg.spark.conf == {
        "spark.sql.shuffle.partitions": "4",  # a str, not the int 4
        "spark.driver.extraJavaOptions": "-Dfoo=bar",
    }


def test_spark_conf_values_from_yaml_become_strings(tmp_path):
    base = write_conf(
        tmp_path, "spark:\n  conf: {spark.sql.shuffle.partitions: 8, spark.x.enabled: false}\n"
    )
    assert load_config(base).spark.conf == {
        "spark.sql.shuffle.partitions": "8",
        "spark.x.enabled": "false",
    }


# -------------------------------------------------------------------- frozen and hash
def test_config_is_frozen():
    cfg = load_config(BASE)
    with pytest.raises(ValidationError):
        cfg.storage.root = "/elsewhere"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        cfg.run_date = dt.date(2020, 1, 1)  # type: ignore[misc]
    with pytest.raises(ValidationError):
        cfg.mlflow = cfg.mlflow  # type: ignore[misc]
    assert cfg.storage.root == "./lakehouse"


def test_config_hash_is_stable_and_tracks_values():
    one = load_config(BASE, ["generate.seed=7"], run_date="2026-03-31")
    two = load_config(BASE, ["generate.seed=7"], run_date="2026-03-31")
    assert one.config_hash() == two.config_hash()
    assert len(one.config_hash()) == 16 and int(one.config_hash(), 16) >= 0
    assert (
        load_config(BASE, ["generate.seed=8"], run_date="2026-03-31").config_hash()
        != one.config_hash()
    )
    assert (
        load_config(BASE, ["generate.seed=7"], run_date="2026-04-01").config_hash()
        != one.config_hash()
    )
    # Order of independent overrides does not matter; the resolved values do.
    a = load_config(BASE, ["generate.seed=7", "generate.people=5"], run_date="2026-03-31")
    b = load_config(BASE, ["generate.people=5", "generate.seed=7"], run_date="2026-03-31")
    assert a.config_hash() == b.config_hash()


# ---------------------------------------------------------------------- command line
def test_parse_config_reads_run_date_and_overrides(tmp_path):
    cfg = parse_config(
        "selfcheck",
        [
            "--config",
            str(BASE),
            "--set",
            f"storage.root={tmp_path}",
            "--set=generate.seed=5",
            "--run-date",
            "2026-03-31",
        ],
    )
    assert cfg.run_date == dt.date(2026, 3, 31)
    assert cfg.root == str(tmp_path)
    assert cfg.generate.seed == 5


def test_run_date_defaults_to_today_utc():
    cfg = parse_config("selfcheck", [])
    assert cfg.run_date == dt.datetime.now(dt.UTC).date()


@pytest.mark.parametrize("bad", ["2026-02-30", "31/03/2026", "yesterday"])
def test_bad_run_date_is_a_config_error(bad):
    with pytest.raises(ConfigError, match=f"--run-date expects YYYY-MM-DD, got '{bad}'"):
        parse_config("selfcheck", ["--run-date", bad])


def test_unknown_option_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="unrecognized arguments: --frobnicate") as err:
        parse_config("selfcheck", ["--frobnicate"])
    assert "\n" not in str(err.value)


# ------------------------------------------------------------- data-contract defaults
def test_contract_defaults_in_the_schema():
    cfg = Config()
    assert cfg.storage.root == "./lakehouse"
    assert cfg.mlflow.tracking_uri is None
    assert cfg.privacy.pii_key_env == "PRECIS_PII_KEY"
    for dataset in DATASETS:
        assert getattr(cfg.landing, dataset).path is None
        assert cfg.landing_format(dataset) == "parquet"


def test_contract_defaults_of_shipped_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # conf/base.yaml is found through the project, root through the cwd
    cfg = load_config()
    assert cfg.storage.root == "./lakehouse"
    assert cfg.root == str(tmp_path / "lakehouse")
    assert cfg.env == "local"
    assert cfg.spark.master == "local[*]"
    for dataset in DATASETS:
        assert cfg.landing_path(dataset) == f"{tmp_path}/lakehouse/landing/{dataset}"
        assert cfg.landing_format(dataset) == "parquet"
    assert cfg.checkpoint_dir == f"{tmp_path}/lakehouse/_checkpoints"
    # MLflow: a local SQLite file beside (not inside) the lakehouse.
    assert cfg.mlflow.tracking_uri is None
    assert tracking_uri(cfg) == f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    assert cfg.privacy.pii_key_env == "PRECIS_PII_KEY"
    assert cfg.privacy.pii_types == ("email", "phone")


def test_landing_path_follows_root_unless_set(tmp_path):
    cfg = load_config(
        BASE,
        [
            f"storage.root={tmp_path}/lake",
            f"landing.orders.path={tmp_path}/drop/orders",
            "landing.orders.format=csv",
        ],
    )
    assert cfg.landing_path("events") == f"{tmp_path}/lake/landing/events"
    assert cfg.landing_path("orders") == f"{tmp_path}/drop/orders"
    assert cfg.landing_format("orders") == "csv"
    assert cfg.landing_format("events") == "parquet"


# ------------------------------------------------------------------------ tags section
def test_tags_section_defaults_and_pipeline_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the tag files are found through the project
    cfg = load_config()
    assert cfg.tags.definitions_path() == PROJECT / "conf" / "tags.yaml"
    assert cfg.tags.segments_path() == PROJECT / "conf" / "segments.yaml"
    assert (
        cfg.tags.export,
        cfg.tags.export_format,
        cfg.tags.kmeans.k_min,
        cfg.tags.kmeans.k_max,
    ) == (True, "parquet", 2, 6)
    # tags reads gold/customer_value: it runs after lifecycle, in the file and the schema alike.
    assert cfg.pipeline.jobs == Config().pipeline.jobs
    assert cfg.pipeline.jobs.index("tags") == cfg.pipeline.jobs.index("lifecycle") + 1


@pytest.mark.parametrize(
    "override, named",
    [
        ("tags.kmeans.k_min=7", "k_min <= k_max"),
        ("tags.explain.id=p1", "tags.explain needs both id and tag"),
        ("tags.export_format=xlsx", "tags.export_format"),
        ("tags.defs=x.yaml", "'defs' is not one of"),
    ],
)
def test_tags_section_errors_name_the_key(override, named):
    with pytest.raises(ConfigError, match=named):
        load_config(BASE, [override])


def test_base_yaml_is_generated_from_the_models():
    # Every default is written once, in the settings models; conf/base.yaml (shipped as
    # the packaged defaults users read) is their text. Regenerate after changing a model:
    #   .venv/bin/python -m precis.config > conf/base.yaml
    from precis.config import defaults_text

    assert BASE.read_text() == defaults_text(), (
        "conf/base.yaml differs from the models' defaults: "
        "run .venv/bin/python -m precis.config > conf/base.yaml"
    )


def test_packaged_defaults_equal_the_models_defaults():
    # The generated file reads back as exactly the models' defaults.
    assert load_config(BASE, run_date="2026-03-31") == Config(run_date=dt.date(2026, 3, 31))
