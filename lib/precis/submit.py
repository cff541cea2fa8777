"""Build and run the ``spark-submit`` command for one job (used by ``spark-submit.sh``).

The config is validated here first, so a bad key fails in a second without starting a
JVM. The master comes from ``$SPARK_MASTER`` or ``spark.master`` (``--set`` wins over
both); the Delta packages from :mod:`precis.jvm`; extra Spark settings from
``spark.conf``. Off the local machine the library and jobs travel as a zip in
``--py-files``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

from precis import jvm
from precis.config import Config
from precis.errors import ConfigError
from precis.runner import build_parser, fail, parse_config
from precis.session import DELTA_CONF, LOCAL_DEFAULTS

USAGE = "usage: spark-submit.sh <job> [--config FILE] [--set dotted.key=value ...] [--run-date YYYY-MM-DD] [--env ENV]"


def job_file(job: str) -> Path:
    if not job.isidentifier() or job.startswith("_"):
        raise ConfigError(f"unknown job '{job}'")
    spec = importlib.util.find_spec(f"jobs.{job}")
    if spec is None or spec.origin is None:
        raise ConfigError(f"unknown job '{job}'; jobs: {', '.join(known_jobs())}")
    return Path(spec.origin)


def known_jobs() -> list[str]:
    import jobs

    return sorted(
        p.stem for p in Path(jobs.__file__).parent.glob("*.py") if not p.stem.startswith("_")
    )


def master(cfg: Config, overrides: Sequence[str]) -> str:
    if any(o.strip().startswith("spark.master=") for o in overrides):
        return cfg.spark.master
    return os.environ.get("SPARK_MASTER") or cfg.spark.master


def spark_submit_binary() -> str:
    if os.environ.get("SPARK_SUBMIT"):
        return os.environ["SPARK_SUBMIT"]
    if os.environ.get("SPARK_HOME"):
        return str(Path(os.environ["SPARK_HOME"]) / "bin" / "spark-submit")
    beside = Path(sys.executable).parent / "spark-submit"
    if beside.exists():
        return str(beside)
    found = shutil.which("spark-submit")
    if not found:
        raise ConfigError("spark-submit not found: set SPARK_HOME or SPARK_SUBMIT")
    return found


def code_zip(dest_dir: Path) -> Path:
    """Zip ``precis`` and ``jobs`` for executors on a cluster (``--py-files``)."""
    import jobs

    import precis

    target = dest_dir / "precis-jobs.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in (precis, jobs):
            base = Path(package.__file__).parent
            for path in base.rglob("*"):
                if path.is_file() and "__pycache__" not in path.parts:
                    zf.write(path, Path(base.name) / path.relative_to(base))
    return target


def command(
    job: str, argv: Sequence[str], overrides: Sequence[str], cfg: Config, workdir: Path | None = None
) -> list[str]:
    chosen = master(cfg, overrides)
    local = chosen.startswith("local")
    conf: dict[str, str] = {**(LOCAL_DEFAULTS if local else {}), **DELTA_CONF}
    cmd = [spark_submit_binary(), "--master", chosen, "--name", f"{cfg.spark.app_name}-{job}"]
    if cfg.spark.add_packages:
        cmd += ["--packages", ",".join(jvm.packages())]
        conf["spark.jars.ivySettings"] = jvm.ivy_settings_path()
        if cfg.spark.ivy_dir:
            conf["spark.jars.ivy"] = cfg.spark.ivy_dir
    if local:
        # Executors are local processes: give them this environment's interpreter.
        conf["spark.pyspark.python"] = sys.executable
        conf["spark.driver.extraJavaOptions"] = f"-Dlog4j.configurationFile={jvm.log4j_config_path()}"
    else:
        # The zip must outlive this process (spark-submit reads it after exec).
        cmd += ["--py-files", str(code_zip(workdir or Path(tempfile.mkdtemp(prefix="precis-submit-"))))]
    conf.update(cfg.spark.conf)
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, str(job_file(job)), *argv]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        try:
            print("jobs: " + ", ".join(known_jobs()))
        except ImportError:
            pass
        return 0 if argv else 2
    job, rest = argv[0], argv[1:]
    try:
        job_file(job)
        cfg = parse_config(job, rest)
        # Same parser as the job, so "--set=k=v" and "--set k=v" both count.
        overrides = build_parser(job).parse_known_args(rest)[0].overrides
        cmd = command(job, rest, overrides, cfg)
    except SystemExit as exc:
        return int(exc.code or 0)
    except ConfigError as exc:
        return fail(job, exc)
    if os.environ.get("PRECIS_DEBUG"):
        print(" ".join(cmd), file=sys.stderr)
    sys.stdout.flush()
    os.execv(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
