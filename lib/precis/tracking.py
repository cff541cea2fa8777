"""MLflow at the job edge: one experiment per job, one run per job execution.

Runs are tagged with the git commit, run date, environment and a hash of the resolved
config; the config itself is logged as flattened params and as ``config.yaml``. Only
config, counts, model metrics and fitted models (with a few rows of their numeric
inputs as the example) are logged: never identifier values, so no PII. Never secrets
either: everything logged passes :mod:`precis.redact` (a secret setting shows ``***``,
a URI its user without the password).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from precis.config import Config
from precis.redact import redact_mapping, redact_value

_PARAM_BATCH = 100  # MLflow's limit of params per log_batch call
_PARAM_VALUE_MAX = 6000
_PARAM_KEY_BAD = re.compile(r"[^A-Za-z0-9_\-. :/]")
#: Tag recording where a model was saved when it could not be logged as an MLflow model.
MODEL_PATH_TAG = "precis.model_path."
#: Run tag a job may pass to job_run: the versions of the tables it read.
INPUTS_TAG = "precis.inputs"
#: Model version tag: the run's lineage (run date, config, inputs) that made it.
LINEAGE_TAG = "precis.lineage"

log = logging.getLogger("precis")


def tracking_uri(cfg: Config) -> str:
    """Configured URI, or a SQLite store in ``mlflow/`` beside the lakehouse directory."""
    if cfg.mlflow.tracking_uri:
        return cfg.mlflow.tracking_uri
    return f"sqlite:///{local_mlflow_dir(cfg)}/mlflow.db"


def local_mlflow_dir(cfg: Config) -> Path:
    root = cfg.root
    if "://" in root or root.startswith("dbfs:"):
        raise ValueError("mlflow.tracking_uri must be set when storage.root is not a local path")
    return Path(root).parent / "mlflow"


def artifact_location(cfg: Config, experiment: str) -> str | None:
    if cfg.mlflow.artifact_location:
        return f"{cfg.mlflow.artifact_location.rstrip('/')}/{experiment}"
    if cfg.mlflow.tracking_uri:
        return None  # the tracking server decides
    return (local_mlflow_dir(cfg) / "artifacts" / experiment).as_uri()


def git_commit() -> str:
    """The commit of a source checkout ($PRECIS_GIT_COMMIT wins); "unknown" when installed."""
    env = os.environ.get("PRECIS_GIT_COMMIT")
    if env:
        return env
    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / ".git").exists():
        return "unknown"  # an installed wheel: precis.version names the code
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_version() -> str:
    try:
        return importlib.metadata.version("precis")
    except importlib.metadata.PackageNotFoundError:  # imported from a zip (--py-files)
        return "unknown"


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted keys for MLflow params (characters MLflow rejects, like ``*``, become ``_``)."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{_PARAM_KEY_BAD.sub('_', str(key))}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:_PARAM_VALUE_MAX]
    return flat


class JobRun:
    """What a job logs while it runs; a no-op when MLflow is disabled."""

    def __init__(
        self,
        mlflow_module: Any | None,
        run_id: str | None,
        models_root: str | None = None,
        lineage: str = "",
    ) -> None:
        self._mlflow = mlflow_module
        # What the run's result depends on (run date, config, input table versions): a
        # rerun with the same lineage registers no second model version.
        self.lineage = lineage
        self.run_id = run_id or "no-mlflow"
        # What tables record as the run: the MLflow run id, or a fresh id without MLflow.
        self.key = run_id or uuid.uuid4().hex
        # Where models are saved when they cannot be logged to MLflow (Spark Connect).
        self._models_root = models_root

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._mlflow is not None and metrics:
            self._mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        if self._mlflow is not None and params:
            self._mlflow.log_params(_param_values(params))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if self._mlflow is not None and tags:
            self._mlflow.set_tags({k: str(v) for k, v in redact_mapping(tags).items()})

    def log_dict(self, data: Any, artifact_file: str) -> None:
        if self._mlflow is not None:
            self._mlflow.log_dict(redact_value("", data), artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        if self._mlflow is not None:
            self._mlflow.log_text(text, artifact_file)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """Log a matplotlib ``figure``, then close it: pyplot keeps every figure it made
        alive until it is closed, so a long session (a notebook, a pipeline's jobs in one
        process) would otherwise hold each run's figures."""
        try:
            if self._mlflow is not None:
                self._mlflow.log_figure(figure, artifact_file)
        finally:
            from matplotlib import pyplot as plt  # the jobs that draw have it imported

            plt.close(figure)

    def log_artifact(self, path: str, artifact_path: str | None = None) -> None:
        if self._mlflow is not None:
            self._mlflow.log_artifact(path, artifact_path)

    def log_spark_model(
        self,
        model: Any,
        name: str,
        example: Any,
        registered_model_name: str | None = None,
    ) -> str | None:
        """Log a fitted Spark ML model with an input example and a signature; its version.

        ``example`` is a Spark DataFrame of a few rows of the model's input columns, taken
        from its training data and holding no identifier values: it is stored with the
        model. The signature pairs it with the model's own ``prediction`` column for those
        rows, which is what the model answers when loaded as a pyfunc.

        Returns ``<registered_model_name>/<version>`` when registered, else the run id;
        over Spark Connect the path the model was saved to; None without MLflow.
        """
        if self._mlflow is None:
            return None
        from precis.session import is_remote

        if is_remote(example.sparkSession):
            return self._save_spark_model(model, name)
        # A rerun with the same lineage (a retry after a crash) registers nothing new.
        if registered_model_name and (known := self._registered(registered_model_name)):
            log.info("model %s: already registered for these inputs", known)
            return known
        import mlflow.spark
        from mlflow.models import infer_signature

        inputs = example.toPandas()
        predictions = model.transform(example).select("prediction").toPandas()
        with warnings.catch_warnings():
            # MLflow hints that integer columns cannot hold missing values; the inputs
            # (ALS indices, counts) are never missing, so the hint is noise in job logs.
            warnings.filterwarnings(
                "ignore", message="Hint: Inferred schema contains integer", category=UserWarning
            )
            signature = infer_signature(inputs, predictions)
        # mlflow.spark.log_model has no ``name`` argument (MLflow 3.x still logs Spark
        # models as run artifacts): artifact_path is its only way to name the model.
        info = mlflow.spark.log_model(
            model,
            artifact_path=name,
            signature=signature,
            input_example=inputs,
            # A Spark ML model needs pyspark (mlflow adds itself). Without this list MLflow
            # infers one by loading the model in a subprocess, which starts a second Spark:
            # close to a minute per model on a small machine.
            pip_requirements=mlflow.spark.get_default_pip_requirements(),
        )
        if not registered_model_name:
            return self.run_id
        # Registered with its lineage in one call: a crash cannot leave a version that a
        # rerun would not recognise.
        found = mlflow.register_model(
            info.model_uri, registered_model_name, tags={LINEAGE_TAG: self.lineage}
        )
        return f"{registered_model_name}/{found.version}"

    def _registered(self, name: str) -> str | None:
        """``<name>/<version>`` of a version registered with this run's lineage, if any."""
        if not self.lineage or self._mlflow is None:
            return None
        from mlflow.exceptions import MlflowException

        try:
            versions = self._mlflow.MlflowClient().search_model_versions(f"name = '{name}'")
        except MlflowException:  # no such model yet
            return None
        same = [v for v in versions if (v.tags or {}).get(LINEAGE_TAG) == self.lineage]
        return f"{name}/{min(int(v.version) for v in same)}" if same else None

    def _save_spark_model(self, model: Any, name: str) -> str:
        """Save to ``<storage.root>/models/<name>/<run key>`` and tag the run with the path.

        mlflow.spark saves models through the JVM gateway, which a Spark Connect client
        does not have; the model's own writer runs on the server.
        """
        if self._models_root is None:
            raise ValueError(
                "no models root: JobRun needs models_root to save a model over Spark Connect"
            )
        path = f"{self._models_root}/{name}/{self.key}"
        model.write().overwrite().save(path)
        self.set_tags({f"{MODEL_PATH_TAG}{name}": path})
        log.warning(
            "model %s saved to %s, not logged as an MLflow model (Spark Connect); its path is the run's tag %s%s",
            name,
            path,
            MODEL_PATH_TAG,
            name,
        )
        return path

    def log_child(self, name: str, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        """A nested run under this one (one hyper-parameter trial, say)."""
        if self._mlflow is not None:
            with self._mlflow.start_run(run_name=name, nested=True):
                self._mlflow.log_params(_param_values(params))
                self._mlflow.log_metrics({k: float(v) for k, v in metrics.items()})


def _param_values(params: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v)[:_PARAM_VALUE_MAX] for k, v in redact_mapping(params).items()}


@contextlib.contextmanager
def job_run(cfg: Config, job: str, tags: Mapping[str, str] | None = None) -> Iterator[JobRun]:
    """Open an MLflow run in experiment ``<prefix><job>`` and log the resolved config."""
    if not cfg.mlflow.enabled:
        yield JobRun(None, None)
        return
    import mlflow  # imported here: slow to import, and only the job edge needs it

    uri = tracking_uri(cfg)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    # Always set: the registry URI is process-wide, and the previous job of a pipeline may
    # have pointed it elsewhere. Null means the tracking store.
    mlflow.set_registry_uri(cfg.mlflow.registry_uri or uri)
    experiment_name = f"{cfg.mlflow.experiment_prefix}{job}"
    experiment = mlflow.get_experiment_by_name(experiment_name)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else mlflow.create_experiment(
            experiment_name, artifact_location=artifact_location(cfg, experiment_name)
        )
    )
    run_tags = {
        "precis.job": job,
        "precis.run_date": cfg.run_date.isoformat(),
        "precis.env": cfg.env,
        "precis.config_hash": cfg.config_hash(),
        "mlflow.source.git.commit": git_commit(),
        "precis.version": package_version(),
        **redact_mapping(tags or {}),
    }
    # What is logged, never the secrets in it; the hash above is of the real config.
    resolved = redact_mapping(cfg.to_dict())
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"{job} {cfg.run_date}", tags=run_tags
    ) as run:
        params = flatten(resolved)
        items = sorted(params.items())
        for i in range(0, len(items), _PARAM_BATCH):
            mlflow.log_params(dict(items[i : i + _PARAM_BATCH]))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "config.yaml"
            path.write_text(yaml.safe_dump(resolved, sort_keys=True))
            mlflow.log_artifact(str(path))
        lineage = hashlib.sha256(
            json.dumps(
                [
                    run_tags["precis.run_date"],
                    run_tags["precis.config_hash"],
                    run_tags.get(INPUTS_TAG, ""),
                ]
            ).encode()
        ).hexdigest()
        yield JobRun(mlflow, run.info.run_id, models_root=f"{cfg.root}/models", lineage=lineage)


def inputs_tag(versions: Mapping[str, int]) -> dict[str, str]:
    """The run tag of the tables a job read (``layer/name`` -> Delta version), for
    :func:`job_run`: part of the run's lineage."""
    return {INPUTS_TAG: json.dumps(dict(sorted(versions.items())))}
