"""What the precis DAGs share: the task that spark-submits one precis job, and its settings.

precis_daily.py and precis_stream.py import this module; it defines no DAG, so importing
it registers none (a DAG file that imported the other DAG file would also run that file's
``with DAG(...)`` block, and Airflow would take the DAG it creates for one of its own).
Copy it into the DAGs folder beside them, with ``precis_job.py``: Airflow puts the DAGs
folder on ``sys.path`` when it parses a DAG file and when it runs a task. Every task runs

    spark-submit --master <connection> --packages <Delta> --conf <Delta SQL> ...
        precis_job.py <job> [--run-date {{ ds }}] [--config F ...] [--env E] [--set k=v ...]

where ``precis_job.py`` is the launcher beside this file, run by the interpreter that
has precis installed.

Airflow Variables (read when a task starts; all optional).
``python -m precis.submit --airflow-variables [--config F] [--set k=v] [--env E]``,
run with the interpreter that has precis, prints them as JSON for
``airflow variables import``:

- ``precis_python``: that interpreter (default ``/opt/precis/bin/python``). It runs the
  driver and, on a local master, the executors (``PYSPARK_PYTHON``); a spark-submit
  installed with pyspark finds its Spark through it.
- ``precis_config``: JSON list of ``--config`` files, absolute paths (default ``[]``).
- ``precis_env``: ``--env`` overlay, ``local``, ``cluster`` or ``databricks`` (default
  empty: the job's own default, ``$PRECIS_ENV`` or ``local``).
- ``precis_set``: JSON list of ``key=value`` passed as ``--set`` (default ``[]``).
- ``precis_spark_conn_id``: the Spark connection whose host is the master, ``local[*]``,
  ``yarn``, ``spark://host:7077``, ``k8s://...`` (default ``spark_default``).
- ``precis_packages``: ``--packages``, the Delta jars matching the installed
  ``delta-spark`` (``python -m precis.jvm`` prints them; default
  ``io.delta:delta-spark_2.13:4.0.1``; empty for none, where Spark already has Delta).
- ``precis_spark_conf``: JSON object of extra ``--conf`` settings, over Delta's SQL
  extension and catalog, which every task passes (default ``{}``).

DAG params (one run; give them when triggering it):

- ``config``: more ``--config`` files, after ``precis_config``.
- ``set``: more ``--set key=value``, after ``precis_set``.

spark-submit must be on the worker's ``PATH`` (a Spark distribution's ``bin``, or the
``bin`` of the environment that has precis), and ``PRECIS_PII_KEY`` in its environment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Param, Variable

#: What a session needs to read and write Delta tables: precis.session.DELTA_CONF.
DELTA_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

#: The Variables read when a task starts, and their defaults (see the top of the file).
VARIABLES: dict[str, Any] = {
    "precis_python": "/opt/precis/bin/python",
    "precis_config": [],
    "precis_env": "",
    "precis_set": [],
    "precis_spark_conn_id": "spark_default",
    "precis_packages": "io.delta:delta-spark_2.13:4.0.1",
    "precis_spark_conf": {},
}

#: spark-submit's main file: ``precis_job.py <job> [job arguments]``.
LAUNCHER = Path(__file__).resolve().with_name("precis_job.py")

RETRIES: dict[str, Any] = {
    "retries": 3,
    # 5, 10, 20 minutes: long enough for a cluster or a storage hiccup to pass.
    "retry_delay": dt.timedelta(minutes=5),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(hours=1),
}


def settings(get: Callable[[str, Any], Any]) -> dict[str, Any]:
    """Each Variable of :data:`VARIABLES` from ``get(name, default)``, checked for its type."""
    found = {}
    for name, default in VARIABLES.items():
        value = get(name, default)
        if not isinstance(value, type(default)):
            raise TypeError(
                f"Airflow Variable {name} must be a JSON {type(default).__name__}, got {value!r}"
            )
        found[name] = value
    return found


def job_args(
    job: str, run_date: str | None, found: Mapping[str, Any], params: Mapping[str, Any]
) -> list[str]:
    """The launcher's arguments: the job, then its command line for ``run_date`` (none:
    the job's own default, for a job that works on event time)."""
    args = [job] if run_date is None else [job, "--run-date", run_date]
    for path in [*found["precis_config"], *params.get("config", [])]:
        args += ["--config", path]
    if found["precis_env"]:
        args += ["--env", found["precis_env"]]
    for override in [*found["precis_set"], *params.get("set", [])]:
        args += ["--set", override]
    return args


def spark_conf(found: Mapping[str, Any]) -> dict[str, str]:
    """Delta's SQL extension and catalog, then ``precis_spark_conf`` over them."""
    return {**DELTA_CONF, **{key: str(value) for key, value in found["precis_spark_conf"].items()}}


def params() -> dict[str, Param]:
    """The DAG params a run may be given (see the top of the file)."""
    return {
        "config": Param([], type="array", items={"type": "string"}, description="--config files"),
        "set": Param([], type="array", items={"type": "string"}, description="--set key=value"),
    }


def _variable(name: str, default: Any) -> Any:
    return Variable.get(name, default=default, deserialize_json=not isinstance(default, str))


class PrecisJob(SparkSubmitOperator):
    """spark-submit of one precis job; ``dated``: for the run's logical date.

    The Variables are read when the task starts, not whenever the file is parsed, and the
    lists among them become a variable number of arguments, which a template cannot give.
    """

    def __init__(self, *, job: str, dated: bool = True, **kwargs: Any) -> None:
        super().__init__(task_id=job, name=f"precis-{job}", application=str(LAUNCHER), **kwargs)
        self.job = job
        self.dated = dated

    def execute(self, context: Any) -> None:
        if self.dated and context.get("logical_date") is None:
            raise ValueError("a precis run needs a logical date: it is the run date")
        found = settings(_variable)
        # The connection id is not a templated field: the hook reads it in execute.
        self._conn_id = found["precis_spark_conn_id"]
        self.packages = found["precis_packages"] or None
        self.conf = spark_conf(found)
        self.env_vars = {"PYSPARK_PYTHON": found["precis_python"]}
        run_date = context["ds"] if self.dated else None
        self.application_args = job_args(self.job, run_date, found, context["params"])
        super().execute(context)
