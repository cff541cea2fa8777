"""MLflow at the job edge: tags, flattened params and config.yaml, queried back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from precis.config import load_config
from precis.tracking import flatten, job_run, tracking_uri

PROJECT = Path(__file__).resolve().parents[1]
BASE = PROJECT / "conf" / "base.yaml"
MLFLOW_PARAM_NAME = re.compile(r"^[\w.\- /:]+$")  # what MLflow accepts as a param key


def client_for(cfg):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri(cfg))


def test_job_run_logs_tags_params_and_config(cfg, tmp_path):
    with job_run(cfg, "unit", tags={"team": "data"}) as run:
        run.log_metrics({"rows": 3})
        run.log_params({"model": "bg/nbd"})
        run_id = run.run_id

    # The default store: SQLite beside the lakehouse, artifacts next to it.
    assert tracking_uri(cfg) == f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    assert (tmp_path / "mlflow" / "mlflow.db").is_file()

    client = client_for(cfg)
    logged = client.get_run(run_id)
    assert logged.info.status == "FINISHED"
    assert logged.info.run_name == "unit 2026-03-31"
    assert client.get_experiment(logged.info.experiment_id).name == "precis-unit"

    tags = logged.data.tags
    assert tags["precis.job"] == "unit"
    assert tags["precis.run_date"] == "2026-03-31"
    assert tags["precis.env"] == "local"
    assert tags["precis.config_hash"] == cfg.config_hash()
    assert tags["mlflow.source.git.commit"] == "test-commit"  # conftest pins PRECIS_GIT_COMMIT
    assert tags["team"] == "data"

    params = logged.data.params
    assert params == {**flatten(cfg.to_dict()), "model": "bg/nbd"}
    assert params["storage.root"] == str(tmp_path / "lakehouse")
    assert params["generate.people"] == "20000"
    assert params["mlflow.experiment_prefix"] == "precis-"
    assert params["run_date"] == "2026-03-31"
    assert all(MLFLOW_PARAM_NAME.match(name) for name in params)
    assert logged.data.metrics == {"rows": 3.0}

    assert [a.path for a in client.list_artifacts(run_id)] == ["config.yaml"]
    local = client.download_artifacts(run_id, "config.yaml", str(tmp_path / "download"))
    assert yaml.safe_load(Path(local).read_text()) == cfg.to_dict()


def test_second_run_reuses_experiment_and_failures_are_recorded(tmp_path):
    cfg = load_config(
        BASE,
        [f"storage.root={tmp_path / 'lakehouse'}", "mlflow.experiment_prefix=team-"],
        run_date="2026-04-01",
    )
    with job_run(cfg, "unit") as first:
        pass
    with pytest.raises(RuntimeError, match="boom"), job_run(cfg, "unit") as second:
        raise RuntimeError("boom")

    client = client_for(cfg)
    one, two = client.get_run(first.run_id), client.get_run(second.run_id)
    assert one.info.experiment_id == two.info.experiment_id
    assert client.get_experiment(one.info.experiment_id).name == "team-unit"
    assert (one.info.status, two.info.status) == ("FINISHED", "FAILED")


def test_mlflow_disabled_logs_nothing(tmp_path):
    cfg = load_config(BASE, [f"storage.root={tmp_path / 'lakehouse'}", "mlflow.enabled=false"])
    with job_run(cfg, "unit") as run:
        run.log_metrics({"rows": 1})
        run.log_params({"a": 1})
        run.set_tags({"b": 2})
        run.log_dict({"c": 3}, "c.json")
    assert run.run_id == "no-mlflow"
    assert not (tmp_path / "mlflow").exists()
    assert list(tmp_path.iterdir()) == []


def test_a_logged_figure_is_closed_whether_or_not_mlflow_is_on(cfg, tmp_path):
    from matplotlib import pyplot as plt

    off = load_config(BASE, [f"storage.root={tmp_path / 'off'}", "mlflow.enabled=false"])
    run_ids = []
    for config in (cfg, off):
        figure, _ = plt.subplots()
        with job_run(config, "unit") as run:
            run.log_figure(figure, "plot.png")
        run_ids.append(run.run_id)
        # pyplot no longer holds it: a long session does not collect every run's plots.
        assert figure.number not in plt.get_fignums()
    artifacts = client_for(cfg).list_artifacts(run_ids[0])
    assert "plot.png" in [a.path for a in artifacts]


def test_tracking_uri_choices(tmp_path):
    explicit = load_config(BASE, ["mlflow.tracking_uri=http://mlflow:5000"])
    assert tracking_uri(explicit) == "http://mlflow:5000"
    remote_root = load_config(BASE, ["storage.root=s3://bucket/lake"])
    with pytest.raises(ValueError, match="mlflow.tracking_uri must be set"):
        tracking_uri(remote_root)


def test_flatten_makes_dotted_mlflow_safe_names():
    nested = {
        "spark": {"conf": {"spark.sql.shuffle.partitions": "4"}, "master": "local[*]"},
        "empty": {},
        "placeholders": {"*": ["unknown"], "email": ["a@b.c"]},
        "n": 3,
    }
    assert flatten(nested) == {
        "spark.conf.spark.sql.shuffle.partitions": "4",
        "spark.master": "local[*]",
        "empty": "{}",
        "placeholders._": "['unknown']",  # MLflow rejects "*" in a param name
        "placeholders.email": "['a@b.c']",
        "n": "3",
    }


def test_job_run_points_the_model_registry_at_the_configured_store(tmp_path):
    import mlflow

    root = f"storage.root={tmp_path / 'lakehouse'}"
    elsewhere = f"sqlite:///{tmp_path}/registry/mlflow.db"
    with job_run(load_config(BASE, [root, f"mlflow.registry_uri={elsewhere}"]), "unit"):
        assert mlflow.get_registry_uri() == elsewhere
    # null is the tracking store, even after a job of the same process pointed elsewhere.
    default = load_config(BASE, [root])
    assert default.mlflow.registry_uri is None
    with job_run(default, "unit"):
        assert mlflow.get_registry_uri() == tracking_uri(default)


def test_mlflow_disabled_logs_no_model(tmp_path):
    cfg = load_config(BASE, [f"storage.root={tmp_path / 'lakehouse'}", "mlflow.enabled=false"])
    with job_run(cfg, "unit") as run:
        # Neither the model nor the example is touched: nothing is trained or saved.
        assert run.log_spark_model(object(), "model", object(), "precis-model") is None
    assert list(tmp_path.iterdir()) == []
