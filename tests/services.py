"""Real Spark services started from the installed pyspark, for tests and benchmarks.

- :func:`connect_server`: a Spark Connect server (``SparkConnectServer``, shipped in
  pyspark's jars) with the Delta package and SQL extension, started through
  ``spark-submit`` exactly as a job's session would be (``precis.session.launch_conf``).
- :func:`standalone_cluster`: a standalone master and workers, each its own JVM, from
  ``bin/spark-class``.

Each is a context manager that waits until the service answers and stops every process
it started (the process group) on exit, with the logs kept in ``workdir``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyspark

from precis.config import Config
from precis.session import launch_conf

SPARK_HOME = Path(pyspark.__file__).parent
CONNECT_SERVER = "org.apache.spark.sql.connect.service.SparkConnectServer"


#: HotSpot's default compilers, replacing spark-defaults.conf's quick one alone: the suite's
#: sessions run for the whole suite, and once warm they need about half the CPU they need
#: with the quick compiler alone (bench/bench_test_session.py --compare jit).
SESSION_JIT = "-XX:+TieredCompilation"


def suite_session_builder(warehouse: Path, checkpoints: Path):
    """The builder of the test suite's own session (tests/conftest.py), also timed by
    bench/bench_test_session.py, which sets the settings it compares on top of it."""
    from pyspark.sql import SparkSession

    from precis import jvm
    from precis.session import DELTA_CONF

    # Python workers (pandas UDFs) run the test interpreter, not the system python.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("precis-tests")
        # Tiny test frames: one shuffle partition avoids hundreds of empty tasks.
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "2")
        # Spark's 1 GB default runs out of execution memory late in the suite, when the
        # end-to-end fixtures' frames are cached; the jobs themselves default to 4 GB.
        .config("spark.driver.memory", "3g")
        # Delta log snapshots default to 50 partitions; one is plenty for test tables.
        .config("spark.databricks.delta.snapshotPartitions", "1")
        # No web UI and no console progress bars in test output.
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # The status store records every job, stage and SQL execution even with the UI
        # off: late in a full run a worker's 3 GB heap was 92% status data and the JVM
        # spent 2,527 s in full collections (docs/benchmarks.md). Keep little of it.
        .config("spark.ui.retainedJobs", "100")
        .config("spark.ui.retainedStages", "100")
        .config("spark.ui.retainedTasks", "1000")
        .config("spark.sql.ui.retainedExecutions", "50")
        .config("spark.ui.dagGraph.retainedRootRDDs", "100")
        # Adaptive execution stays on, as in the jobs: it drops joins against empty
        # frames and turns shuffled joins of tiny frames into broadcasts (an identity run
        # on a 300-person world: 68 s with it, 105 to 123 s without).
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(warehouse))
        # Same Delta jars and Ivy settings as the jobs, from the shared Ivy cache.
        .config("spark.jars.packages", ",".join(jvm.packages()))
        .config("spark.jars.ivySettings", jvm.ivy_settings_path())
        .config(
            "spark.driver.extraJavaOptions",
            f"-Dlog4j.configurationFile={jvm.log4j_config_path()}",
        )
        .config("spark.driver.defaultJavaOptions", SESSION_JIT)
        # Delta writes in tests do not need the 7-day retention safety check.
        .config("spark.databricks.delta.retentionDurationCheck.enabled", "false")
        # Reliable checkpoints, set the way precis sets them (no SparkContext call).
        .config("spark.checkpoint.dir", str(checkpoints))
        .config("spark.log.level", "WARN")
    )
    for key, value in DELTA_CONF.items():
        builder = builder.config(key, value)
    return builder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    handle = log.open("w")
    # A process group per service: stopping it stops the JVMs it forked too.
    return subprocess.Popen(
        cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _wait_for(log: Path, marker: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(
                f"{log.name}: exited with {process.returncode} before '{marker}':\n{log.read_text()[-4000:]}"
            )
        time.sleep(1)
    raise RuntimeError(
        f"{log.name}: no '{marker}' after {timeout:.0f} s:\n{log.read_text()[-4000:]}"
    )


def _wait_for_port(port: int, log: Path, process: subprocess.Popen, timeout: float) -> None:
    # The server logs at WARN (precis' log4j settings): its port answering is the signal.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None:
            raise RuntimeError(
                f"{log.name}: exited with {process.returncode}:\n{log.read_text()[-4000:]}"
            )
        time.sleep(1)
    raise RuntimeError(
        f"{log.name}: port {port} not answering after {timeout:.0f} s:\n{log.read_text()[-4000:]}"
    )


def service_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SPARK_REMOTE", "SPARK_MASTER", "PYSPARK_GATEWAY_PORT")
    }
    # Python workers run this interpreter, where precis is installed.
    env["PYSPARK_PYTHON"] = sys.executable
    env["SPARK_HOME"] = str(SPARK_HOME)
    return env


@contextlib.contextmanager
def connect_server(
    cfg: Config,
    workdir: Path,
    master: str = "local[2]",
    timeout: float = 300,
) -> Iterator[str]:
    """Start a Spark Connect server with precis' launch settings; yields ``sc://host:port``."""
    port = free_port()
    conf = {**launch_conf(cfg, master), "spark.connect.grpc.binding.port": str(port)}
    cmd = [str(SPARK_HOME / "bin" / "spark-submit"), "--master", master, "--class", CONNECT_SERVER]
    cmd += ["--packages", conf.pop("spark.jars.packages")]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd.append("spark-internal")
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "connect-server.log"
    server = _start(cmd, log, service_env())
    try:
        _wait_for_port(port, log, server, timeout)
        yield f"sc://127.0.0.1:{port}"
    finally:
        _stop([server])


@dataclass(frozen=True)
class Standalone:
    master: str  # spark://host:port
    workers: int
    logs: Path


@contextlib.contextmanager
def standalone_cluster(
    workdir: Path, workers: int = 2, cores: int = 1, memory: str = "2g", timeout: float = 120
) -> Iterator[Standalone]:
    """A standalone master and ``workers`` workers, each a separate JVM on this machine."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        **service_env(),
        "SPARK_LOG_DIR": str(workdir),
        "SPARK_WORKER_DIR": str(workdir / "work"),
    }
    port = free_port()
    master_url = f"spark://127.0.0.1:{port}"
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    processes: list[subprocess.Popen] = []
    try:
        master_log = workdir / "master.log"
        master = _start(
            [
                spark_class,
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(free_port()),
            ],
            master_log,
            env,
        )
        processes.append(master)
        _wait_for(master_log, "I have been elected leader", master, timeout)
        for i in range(workers):
            log = workdir / f"worker-{i + 1}.log"
            worker = _start(
                [
                    spark_class,
                    "org.apache.spark.deploy.worker.Worker",
                    master_url,
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    str(cores),
                    "--memory",
                    memory,
                    "--webui-port",
                    str(free_port()),
                    "--work-dir",
                    str(workdir / f"work-{i + 1}"),
                ],
                log,
                env,
            )
            processes.append(worker)
            _wait_for(log, "Successfully registered with master", worker, timeout)
        yield Standalone(master_url, workers, workdir)
    finally:
        _stop(processes)
