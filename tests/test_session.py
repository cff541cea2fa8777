"""Session and JVM packages: derived versions, session reuse, nothing started at import."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from precis import jvm
from precis.config import load_config
from precis.frames import checkpoint_dir
from precis.session import get_spark, launch_conf

PROJECT = Path(__file__).resolve().parents[1]
BASE = PROJECT / "conf" / "base.yaml"


def clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("PRECIS_ENV", "SPARK_MASTER", "PYSPARK_GATEWAY_PORT")
    }


def test_delta_coordinates_derive_from_installed_packages():
    pyspark_version = importlib.metadata.version("pyspark")
    delta_version = importlib.metadata.version("delta-spark")
    scala = "2.13" if int(pyspark_version.split(".")[0]) >= 4 else "2.12"
    assert jvm.packages() == [f"io.delta:delta-spark_{scala}:{delta_version}"]
    assert jvm.packages(("org.example:extra:1.0",))[-1] == "org.example:extra:1.0"
    # delta-spark X.Y is built for Spark X.Y: the pins must move together.
    assert delta_version.split(".")[:2] == pyspark_version.split(".")[:2]
    assert Path(jvm.ivy_settings_path()).is_file()
    assert Path(jvm.log4j_config_path()).is_file()


def test_jvm_module_prints_packages_for_cluster_users():
    out = subprocess.run(
        [sys.executable, "-m", "precis.jvm"],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
        timeout=60,
    )
    assert out.stdout.strip() == ",".join(jvm.packages())


def test_session_runs_the_delta_jar_named_by_the_coordinates(spark):
    jars = spark.sparkContext._jsc.sc().listJars().mkString(",")
    _, artifact, version = jvm.delta_packages()[0].split(":")
    assert f"{artifact}-{version}.jar" in jars


def test_get_spark_reuses_active_session_and_its_checkpoint_dir(spark, tmp_path):
    cfg = load_config(
        BASE,
        [
            f"storage.root={tmp_path / 'lakehouse'}",
            "spark.conf.spark.sql.shuffle.partitions=3",
            # Static settings cannot change on a running session: skipped, not an error.
            "spark.conf.spark.driver.memory=1g",
        ],
    )
    before = spark.conf.get("spark.sql.shuffle.partitions")
    try:
        assert get_spark(cfg) is spark
        assert spark.conf.get("spark.sql.shuffle.partitions") == "3"
        # A reused session keeps the checkpoint directory it was started with, and the
        # jobs read it from the session's settings (as over Spark Connect).
        started_with = spark.sparkContext.getCheckpointDir()
        assert started_with is not None
        assert started_with.startswith("file:" + checkpoint_dir(spark))
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", before)


def test_launch_conf_of_a_session_precis_starts(tmp_path):
    cfg = load_config(
        BASE,
        [
            f"storage.root={tmp_path}/l",
            "spark.log_level=ERROR",
            "spark.conf.spark.sql.shuffle.partitions=3",
        ],
    )
    local = launch_conf(cfg, "local[2]")
    assert local["spark.checkpoint.dir"] == f"{tmp_path}/l/_checkpoints"
    assert local["spark.log.level"] == "ERROR"
    assert local["spark.sql.shuffle.partitions"] == "3"  # spark.conf beats the local default
    assert local["spark.jars.packages"] == ",".join(jvm.packages())
    assert local["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    # No ${env:...} pasted into SQL: config expressions cannot read the hashing key.
    assert local["spark.sql.variable.substitute"] == "false"
    assert local["spark.python.sql.dataFrameDebugging.enabled"] == "false"
    assert (
        local["spark.sql.warehouse.dir"] == f"{tmp_path}/l/_warehouse"
    )  # not the working directory
    explicit = load_config(
        BASE, [f"storage.root={tmp_path}/l", f"spark.checkpoint_dir={tmp_path}/ck"]
    )
    cluster = launch_conf(explicit, "spark://master:7077")
    assert cluster["spark.checkpoint.dir"] == f"{tmp_path}/ck"
    # Local defaults (driver memory, 8 shuffle partitions) are for one machine only.
    assert "spark.driver.memory" not in cluster and "spark.pyspark.python" not in cluster
    assert "spark.sql.warehouse.dir" not in cluster  # a cluster's metastore settings stay its own


def test_no_jvm_access_in_the_library():
    """What Spark Connect lacks: the library and the jobs never use it."""
    pattern = re.compile(r"sparkContext|_jvm|_jsc|\.rdd\b|py4j|delta\.tables")
    found = [
        f"{path.relative_to(PROJECT)}:{n}: {line.strip()}"
        for path in sorted((PROJECT / "lib").rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


IMPORT_EVERYTHING = textwrap.dedent(
    """
    import importlib, json, os, pkgutil
    import precis

    names = [m.name for m in pkgutil.walk_packages(precis.__path__, "precis.")]
    names = [n for n in names if n != "precis.__main__"]  # runs the command line
    for name in names:
        importlib.import_module(name)

    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    jvm = {"gateway": SparkContext._gateway is not None, "context": SparkContext._active_spark_context is not None}
    me = str(os.getpid())
    children = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me:
            children.append(open(f"/proc/{pid}/cmdline").read().replace("\\0", " "))
    jvm["active_session"] = SparkSession.getActiveSession() is not None
    print(json.dumps({"modules": names, "jvm": jvm, "children": children}))
    """
)


def test_importing_every_module_starts_no_spark(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        cwd=tmp_path,  # not the project: imports must work from anywhere
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert {
        "precis.config",
        "precis.session",
        "precis.storage",
        "precis.tracking",
        "precis.jobs.selfcheck",
    } <= set(report["modules"])
    assert report["jvm"] == {"gateway": False, "context": False, "active_session": False}
    assert report["children"] == []  # no java process launched


A_FAILED_QUERY_AFTER_AN_OBSERVATION = textwrap.dedent(
    """
    import sys
    from pyspark.sql import Observation, functions as F
    from precis.config import load_config
    from precis.session import get_spark

    root, base = sys.argv[1], sys.argv[2]
    spark = get_spark(load_config(base, [f"storage.root={root}", "mlflow.enabled=false"]))
    seen = Observation()
    spark.range(3).observe(seen, F.count(F.lit(1)).alias("n")).count()
    try:
        spark.read.format("binaryFile").load(f"{root}/not-there").collect()
    except Exception as exc:
        print("caught:", type(exc).__name__, str(exc).split("]")[0].lstrip("["))
    print("observed:", seen.get["n"])
    spark.stop()
    """
)


def test_a_handled_missing_path_logs_no_error_after_an_observation(tmp_path):
    """Spark's observation listener re-logs a failed query's error as an ERROR with a
    stack trace; precis' log settings drop that message, and the error itself still
    reaches the code that handles it."""
    out = subprocess.run(
        [sys.executable, "-c", A_FAILED_QUERY_AFTER_AN_OBSERVATION, str(tmp_path), str(BASE)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    # (Ivy prints its settings line on stdout first.)
    assert out.stdout.splitlines()[-2:] == [
        "caught: AnalysisException PATH_NOT_FOUND",
        "observed: 3",
    ]
    assert "threw an exception" not in out.stderr
    assert " ERROR " not in out.stderr, out.stderr[-3000:]
