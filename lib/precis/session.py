"""SparkSession factory: the caller asks for a session, nothing is created at import.

One code path for the three ways a job meets Spark:

- a session exists (a Databricks notebook or job, a test, ``spark-submit``): reuse it;
- ``SPARK_REMOTE`` (or ``spark.remote``) names a Spark Connect server: connect to it;
- otherwise build a local session with the Delta packages.

Nothing here (or anywhere in precis) reaches for the Spark context, the JVM gateway or
RDDs, which Spark Connect does not have: launch settings such as the checkpoint
directory (``spark.checkpoint.dir``) and the log level (``spark.log.level``) are plain
Spark settings given when the session starts.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from pyspark.sql import SparkSession

from precis import jvm
from precis.config import SESSION_TIME_ZONE, Config
from precis.frames import CHECKPOINT_DIR
from precis.progress import log

# Local defaults, each overridable through ``spark.conf`` in config.
LOCAL_DEFAULTS: dict[str, str] = {
    # A laptop or a 2-core CI box: 200 shuffle partitions would be 200 tiny tasks. Nor 200
    # for adaptive execution to merge: forget and identity took 1.8 and 2.4 times as
    # long on 20,000 people (docs/benchmarks.md, "Ingest at a million people").
    "spark.sql.shuffle.partitions": "8",
    # Local mode runs every task inside the driver JVM: Spark's 1 GB default heap runs
    # out when the generator's output and an ingest batch share it.
    "spark.driver.memory": "4g",
    # Delta reads its log with 50 partitions by default; far too many for local tables.
    "spark.databricks.delta.snapshotPartitions": "4",
    # Our own progress lines replace the console progress bar.
    "spark.ui.showConsoleProgress": "false",
    # Adaptive execution coalesces small shuffles; keep it on explicitly.
    "spark.sql.adaptive.enabled": "true",
    # Delta MERGE/overwrite on local disk: no need to retain old files for a week here.
    "spark.databricks.delta.retentionDurationCheck.enabled": "false",
}

DATAFRAME_DEBUGGING = "spark.python.sql.dataFrameDebugging.enabled"

DELTA_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def launched_by_spark_submit() -> bool:
    # spark-submit starts the JVM first and hands PySpark its gateway port.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def on_databricks() -> bool:
    # Set in every Databricks runtime process (notebooks, wheel and Python tasks): the
    # cluster owns the session, even where none is active yet in this thread.
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def remote_url(cfg: Config) -> str | None:
    """The Spark Connect server to use: ``$SPARK_REMOTE``, else ``spark.remote``."""
    return os.environ.get("SPARK_REMOTE") or cfg.spark.remote


def launch_conf(cfg: Config, master: str, extra_packages: tuple[str, ...] = ()) -> dict[str, str]:
    """Settings of a session precis starts itself, locally or through spark-submit.

    Local defaults (for a ``local[...]`` master), Delta, the Maven packages with their Ivy
    settings, the checkpoint directory and log level, then ``spark.conf``, which wins.
    """
    local = master.startswith("local")
    conf: dict[str, str] = {**(LOCAL_DEFAULTS if local else {}), **DELTA_CONF}
    if cfg.spark.add_packages:
        conf["spark.jars.packages"] = ",".join(jvm.packages(extra_packages))
        conf["spark.jars.ivySettings"] = jvm.ivy_settings_path()
        if cfg.spark.ivy_dir:
            conf["spark.jars.ivy"] = cfg.spark.ivy_dir
    if local:
        # Executors are local processes: they run this environment's interpreter, and the
        # driver logs through precis' quiet log4j settings.
        conf["spark.pyspark.python"] = sys.executable
        conf["spark.driver.extraJavaOptions"] = (
            f"-Dlog4j.configurationFile={jvm.log4j_config_path()}"
        )
        # Spark makes its (here unused) warehouse folder in the working directory unless
        # told otherwise; keep it inside the lakehouse. A cluster's own setting stays.
        conf["spark.sql.warehouse.dir"] = f"{cfg.root}/_warehouse"
    conf[CHECKPOINT_DIR] = cfg.checkpoint_dir
    # Reliable checkpoints are files; without this Spark never deletes them, and the
    # directory grows by every cluster run's lineage cuts. A file goes once no frame
    # refers to its checkpoint any more.
    conf["spark.cleaner.referenceTracking.cleanCheckpoints"] = "true"
    conf["spark.log.level"] = cfg.spark.log_level
    # Spark pastes ${env:VAR} and ${spark.conf} into SQL text before parsing it, so a
    # config expression could read the hashing key; precis' SQL never needs it.
    conf["spark.sql.variable.substitute"] = "false"
    # PySpark records the Python call site of every DataFrame and Column call, for the
    # query context of error messages: about half the driver's calls into the JVM (an
    # ingest run makes 71,000 with it, 36,000 without) and a Python stack walk each.
    # Errors still name the failing expression; set it true to debug a query.
    conf[DATAFRAME_DEBUGGING] = "false"
    conf[SESSION_TIME_ZONE] = cfg.ingest.timezone
    conf.update(cfg.spark.conf)
    return conf


@contextlib.contextmanager
def business_time(spark: SparkSession, cfg: Config) -> Iterator[None]:
    """Run a job in the business time zone (``ingest.timezone``): zone-less landed times
    are read as times there, and every day a job cuts (``to_date``, a date compared with
    a time, ``precis.days.day_start``) starts at its midnight. A reused session (a
    notebook's) gets its own zone back afterwards."""
    before = spark.conf.get(SESSION_TIME_ZONE) or "UTC"  # Spark always has one set
    if before == cfg.ingest.timezone:
        yield
        return
    spark.conf.set(SESSION_TIME_ZONE, cfg.ingest.timezone)
    try:
        yield
    finally:
        spark.conf.set(SESSION_TIME_ZONE, before)


def get_spark(cfg: Config, extra_packages: tuple[str, ...] = ()) -> SparkSession:
    """Return the active session (Databricks, spark-submit, a test), a Spark Connect
    session when a remote is configured, or a new local one."""
    active = SparkSession.getActiveSession()
    remote = remote_url(cfg)
    if active is not None:
        spark = active
    elif remote:
        # The server owns its launch settings (packages, checkpoint directory).
        builder = (
            SparkSession.builder
            if os.environ.get("SPARK_REMOTE")
            else SparkSession.builder.remote(remote)
        )
        spark = builder.getOrCreate()
    elif launched_by_spark_submit() or on_databricks():
        spark = SparkSession.builder.getOrCreate()
    else:
        # PySpark reads the Python workers' interpreter from the environment when the
        # context starts, before any spark.pyspark.python setting is seen.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder.appName(cfg.spark.app_name).master(cfg.spark.master)
        for key, value in launch_conf(cfg, cfg.spark.master, extra_packages).items():
            builder = builder.config(key, value)
        return builder.getOrCreate()
    _apply_runtime_conf(spark, cfg.spark.conf)
    return spark


def is_remote(spark: SparkSession) -> bool:
    """Whether ``spark`` is a Spark Connect session (no JVM on this side)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def _apply_runtime_conf(spark: SparkSession, conf: dict[str, str]) -> None:
    """Apply the settings a running session accepts; static ones were fixed at launch."""
    for key, value in conf.items():
        try:
            if spark.conf.isModifiable(key):
                spark.conf.set(key, value)
            else:
                log.info(
                    "spark.conf.%s is fixed when a session starts: this session keeps its own", key
                )
        except Exception as exc:
            log.warning(
                "spark.conf.%s not applied: %s",
                key,
                str(exc).strip().splitlines()[0] if str(exc) else exc,
            )
