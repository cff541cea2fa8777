"""Model logging at the job edge: MLflow models with an input example and a signature,
registered under the configured names and loaded back with the same scores; the Spark
Connect fallback; registered-name validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from chispa import assert_approx_df_equality

from precis.config import load_config
from precis.errors import ConfigError
from precis.jobs import recommend as recommend_job
from precis.lifecycle import churn
from precis.recommend import model as als
from precis.tracking import MODEL_PATH_TAG, job_run, tracking_uri

PROJECT = Path(__file__).resolve().parents[1]
BASE = PROJECT / "conf" / "base.yaml"


@pytest.fixture(scope="module")
def ratings(spark):
    """user, item, confidence: two taste groups of three people over six items."""
    rows = [
        (u, i, 1.0 + (u + i) % 3)
        for u in range(6)
        for i in range(6)
        if (u < 3) == (i < 3) or (u + i) % 5 == 0
    ]
    return spark.createDataFrame(rows, "user int, item int, confidence double").persist()


@pytest.fixture(scope="module")
def als_model(ratings):
    return als.train(
        ratings, als.AlsParams(rank=2, reg_param=0.1, alpha=1.0, max_iter=3, seed=1, block_size=256)
    )


@pytest.fixture(scope="module")
def churn_frame(spark):
    """row, FEATURES, label: 24 buyers; the recent ones stay, the lapsed ones churn."""
    rows = []
    for n in range(24):
        lapsed = n % 2 == 1
        values = [float((n * (k + 3)) % 17) for k in range(len(churn.FEATURES))]
        values[0] = 120.0 + n if lapsed else float(n)  # recency_days
        rows.append((n, *values, 1.0 if lapsed else 0.0))
    schema = ", ".join(["row int", *[f"{c} double" for c in churn.FEATURES], "label double"])
    return spark.createDataFrame(rows, schema).persist()


@pytest.fixture(scope="module")
def churn_model(churn_frame):
    return churn.train(churn_frame, churn.ChurnSettings(max_iter=3, max_depth=2, seed=7))


def _registry(cfg):
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(cfg)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_models_are_logged_registered_and_load_back_with_the_same_scores(
    cfg, tmp_path, ratings, als_model, churn_frame, churn_model
):
    import mlflow.artifacts
    import mlflow.pyfunc
    import mlflow.spark
    from mlflow.models import Model

    als_name = cfg.recommend.registered_model_name
    churn_name = cfg.lifecycle.churn.registered_model_name
    assert (als_name, churn_name) == ("precis-recommend-als", "precis-lifecycle-churn")
    with job_run(cfg, "unit") as run:
        als_version = run.log_spark_model(
            als_model, "als_model", ratings.select("user", "item").limit(5), als_name
        )
        churn_version = run.log_spark_model(
            churn_model, "churn_model", churn_frame.select(*churn.FEATURES).limit(5), churn_name
        )
    assert (als_version, churn_version) == (f"{als_name}/1", f"{churn_name}/1")

    client = _registry(cfg)
    for name, inputs in ((als_name, ["user", "item"]), (churn_name, list(churn.FEATURES))):
        assert client.get_registered_model(name).name == name
        [version] = client.search_model_versions(f"name = '{name}'")
        assert (str(version.version), version.run_id) == ("1", run.run_id)
        local = mlflow.artifacts.download_artifacts(
            f"models:/{name}/1", dst_path=str(tmp_path / name)
        )
        logged = Model.load(local)
        assert logged.signature.inputs.input_names() == inputs
        assert logged.signature.outputs.input_names() == ["prediction"]
        # The stored example is the model's input columns only: no identifier rides along.
        example = logged.load_input_example(local)
        assert list(example.columns) == inputs and len(example) == 5

    pairs = ratings.select("user", "item")
    loaded_als = mlflow.spark.load_model(f"models:/{als_name}/1")
    assert_approx_df_equality(
        loaded_als.transform(pairs).orderBy("user", "item"),
        als_model.transform(pairs).orderBy("user", "item"),
        precision=1e-6,
    )
    # As a pyfunc the model answers its prediction column for a pandas frame of pairs.
    local_pairs = pairs.orderBy("user", "item").toPandas()
    predicted = mlflow.pyfunc.load_model(f"models:/{als_name}/1").predict(local_pairs)
    expected = (
        als_model.transform(pairs)
        .orderBy("user", "item")
        .select("prediction")
        .toPandas()["prediction"]
    )
    assert list(predicted) == pytest.approx(list(expected), abs=1e-6)

    loaded_churn = mlflow.spark.load_model(f"models:/{churn_name}/1")
    assert_approx_df_equality(
        churn.churn_probability(loaded_churn, churn_frame)
        .select("row", "churn_risk")
        .orderBy("row"),
        churn.churn_probability(churn_model, churn_frame)
        .select("row", "churn_risk")
        .orderBy("row"),
        precision=1e-9,
    )


def test_unregistered_model_is_versioned_by_its_run(cfg, ratings, als_model):
    with job_run(cfg, "unit") as run:
        version = run.log_spark_model(
            als_model, "als_model", ratings.select("user", "item").limit(2), None
        )
    assert version == run.run_id
    assert _registry(cfg).search_registered_models() == []


def test_spark_connect_saves_the_model_to_storage_and_tags_its_path(
    cfg, ratings, als_model, monkeypatch, caplog
):
    from mlflow.tracking import MlflowClient
    from pyspark.ml.recommendation import ALSModel

    # A Spark Connect client has no JVM gateway for mlflow.spark; the model's own writer
    # works in both modes, so a classic session standing in for a remote one is enough.
    monkeypatch.setattr("precis.session.is_remote", lambda spark: True)
    with job_run(cfg, "unit") as run:
        example = ratings.select("user", "item").limit(5)
        path = run.log_spark_model(als_model, "als_model", example, "precis-recommend-als")
    assert path == f"{cfg.root}/models/als_model/{run.key}"
    tags = MlflowClient(tracking_uri(cfg)).get_run(run.run_id).data.tags
    assert tags[f"{MODEL_PATH_TAG}als_model"] == path
    assert [
        r.levelname for r in caplog.records if "not logged as an MLflow model" in r.getMessage()
    ] == ["WARNING"]
    assert _registry(cfg).search_registered_models() == []

    pairs = ratings.select("user", "item")
    assert_approx_df_equality(
        ALSModel.load(path).transform(pairs).orderBy("user", "item"),
        als_model.transform(pairs).orderBy("user", "item"),
        precision=1e-6,
    )


def test_without_mlflow_the_recommend_version_is_date_and_config(tmp_path, ratings):
    cfg = load_config(
        BASE,
        [f"storage.root={tmp_path / 'lakehouse'}", "mlflow.enabled=false"],
        run_date="2026-03-31",
    )
    with job_run(cfg, "unit") as run:
        # Nothing is trained or logged: the model is never touched without MLflow.
        assert run.log_spark_model(None, "als_model", ratings.select("user", "item"), "x") is None
        # A stand-in model: without MLflow nothing reads it.
        version = recommend_job._log_model(cfg, object(), ratings, run)
        # No model at all: popularity shipped.
        shipped = recommend_job._log_model(cfg, None, None, run)
    assert version == f"2026-03-31-{cfg.config_hash()[:8]}"
    assert shipped == f"popularity-2026-03-31-{cfg.config_hash()[:8]}"
    assert list(tmp_path.iterdir()) == []


# -------------------------------------------------------------- registered-name validation
@pytest.mark.parametrize(
    "key", ["recommend.registered_model_name", "lifecycle.churn.registered_model_name"]
)
@pytest.mark.parametrize(
    "name", ["precis_als", "precis-als-2", "main.precis.recommend_als", "cat_1.Schema.m2"]
)
def test_plain_and_three_part_names_are_accepted(key, name):
    cfg = load_config(BASE, [f"{key}={name}"])
    section = cfg.recommend if key.startswith("recommend") else cfg.lifecycle.churn
    assert section.registered_model_name == name


@pytest.mark.parametrize(
    "key", ["recommend.registered_model_name", "lifecycle.churn.registered_model_name"]
)
@pytest.mark.parametrize(
    "name", ["a.b", "a.b.c.d", "main.precis.recommend-als", "a..b", "has space", ".x"]
)
def test_other_names_are_rejected_naming_the_key(key, name):
    with pytest.raises(
        ConfigError, match=f"config key '{key}': .*plain name .* or catalog.schema.model"
    ):
        load_config(BASE, [f"{key}={name}"])


def test_null_name_logs_without_registering():
    cfg = load_config(
        BASE, ["lifecycle.churn.registered_model_name=null", "recommend.registered_model_name=null"]
    )
    assert cfg.lifecycle.churn.registered_model_name is None
    assert cfg.recommend.registered_model_name is None


def test_unity_catalog_registry_needs_three_part_names():
    uc = "mlflow.registry_uri=databricks-uc"
    with pytest.raises(ConfigError) as err:
        load_config(BASE, [uc])
    message = str(err.value)
    assert (
        "recommend.registered_model_name must be catalog.schema.model when mlflow.registry_uri is databricks-uc"
    ) in message
    assert "lifecycle.churn.registered_model_name must be catalog.schema.model" in message
    with pytest.raises(
        ConfigError, match="lifecycle.churn.registered_model_name must be catalog.schema.model"
    ):
        load_config(BASE, [uc, "recommend.registered_model_name=main.precis.als"])
    cfg = load_config(
        BASE,
        [
            uc,
            "recommend.registered_model_name=main.precis.als",
            "lifecycle.churn.registered_model_name=null",
        ],
    )
    assert cfg.mlflow.registry_uri == "databricks-uc"


def test_databricks_overlay_registers_in_unity_catalog():
    cfg = load_config(BASE, env="databricks")
    assert cfg.mlflow.registry_uri == "databricks-uc"
    assert cfg.recommend.registered_model_name.count(".") == 2
    assert cfg.lifecycle.churn.registered_model_name.count(".") == 2
