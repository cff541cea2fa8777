"""Build and run the ``spark-submit`` command for one job (``spark-submit.sh``, or
``python -m precis.submit`` from an installed precis).

    spark-submit.sh [spark-submit options] <job> [--config FILE] [--set k=v ...] [--run-date D] [--env E]

The config is validated here first, so a bad key fails in a second without starting a
JVM. The master comes from ``$SPARK_MASTER`` or ``spark.master`` (``--set`` wins over
both); the Delta packages from :mod:`precis.jvm`; the rest from
:func:`precis.session.launch_conf`. Options before the job name (``--deploy-mode``,
``--archives``, ``--executor-memory``, ...) go to spark-submit as given. Off the local
machine the library, default configuration included, travels as a zip in
``--py-files``. With ``$SPARK_REMOTE`` set there is no JVM to submit to: the job runs
in this process as a Spark Connect client.

``python -m precis.submit --airflow-variables [--config FILE] [--set k=v ...] [--env E]``
prints, as JSON for ``airflow variables import``, the settings the Airflow DAG
``orchestration/airflow/precis_daily.py`` reads (:func:`airflow_variables`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import precis
from precis import jobs
from precis.config import Config, defaults_dir
from precis.errors import ConfigError
from precis.runner import build_parser, fail, parse_config
from precis.session import launch_conf
from precis.settings import config_file

USAGE = (
    "usage: spark-submit.sh [spark-submit options] <job> [--config FILE] [--set dotted.key=value ...] "
    "[--run-date YYYY-MM-DD] [--env ENV]"
)

#: spark-submit options that take no value; every other leading option takes one.
_FLAGS = {"--verbose", "-v", "--supervise"}

#: The project's top-level entry files, present in a checkout (not in an installed wheel).
CHECKOUT_JOBS = Path(precis.__file__).resolve().parents[2] / "jobs"


def job_file(job: str, workdir: Path | None = None) -> Path:
    """The main file spark-submit runs: the checkout's ``jobs/<job>.py``, or (installed
    precis) a two-line launcher written to ``workdir``."""
    if job not in jobs.JOBS:
        raise ConfigError(f"unknown job '{job}'; jobs: {', '.join(jobs.JOBS)}")
    entry = CHECKOUT_JOBS / f"{job}.py"
    if entry.is_file():
        return entry
    # Not the module file itself: run as a script, its folder (precis/jobs) would lead
    # sys.path and its files named like other top-level modules would shadow them.
    launcher = (workdir or _workdir()) / f"precis_{job}.py"
    launcher.write_text(f"import sys\nfrom precis.jobs.{job} import main\nsys.exit(main())\n")
    return launcher


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
    """Zip the ``precis`` package, its default configuration included, for ``--py-files``."""
    target = dest_dir / "precis.zip"
    package = Path(precis.__file__).parent
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, Path("precis") / path.relative_to(package))
        defaults = defaults_dir()
        if isinstance(defaults, Path) and defaults.resolve() != (package / "conf").resolve():
            # A checkout keeps the defaults in conf/ at the top: they ship as precis/conf.
            for path in sorted(defaults.rglob("*.yaml")):
                zf.write(path, Path("precis") / "conf" / path.relative_to(defaults))
    return target


def split_submit_options(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(spark-submit options before the job name, the job name and its arguments)."""
    options: list[str] = []
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] not in ("-h", "--help"):
        options.append(argv[i])
        if argv[i] in _FLAGS or "=" in argv[i]:
            i += 1
            continue
        if i + 1 >= len(argv):
            raise ConfigError(f"spark-submit option {argv[i]} needs a value")
        options.append(argv[i + 1])
        i += 2
    return options, list(argv[i:])


def _option(options: Sequence[str], name: str) -> str | None:
    for i, item in enumerate(options):
        if item == name and i + 1 < len(options):
            return options[i + 1]
        if item.startswith(f"{name}="):
            return item.split("=", 1)[1]
    return None


def _ship_configs(argv: Sequence[str], configs: Sequence[str]) -> tuple[list[str], list[str]]:
    """Cluster deploy mode: the driver runs elsewhere, so ``--config`` files travel with
    ``--files`` and the job reads them from its working directory by name."""
    names = [Path(c).name for c in configs]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"--config files need distinct names in cluster deploy mode, got {list(configs)}"
        )
    rewritten, i = [], 0
    while i < len(argv):
        item = argv[i]
        if item == "--config" and i + 1 < len(argv):
            rewritten += [item, Path(argv[i + 1]).name]
            i += 2
            continue
        if item.startswith("--config="):
            item = f"--config={Path(item.split('=', 1)[1]).name}"
        rewritten.append(item)
        i += 1
    return rewritten, [str(Path(c).expanduser().resolve()) for c in configs]


def command(
    job: str,
    argv: Sequence[str],
    overrides: Sequence[str],
    cfg: Config,
    workdir: Path | None = None,
    submit_options: Sequence[str] = (),
    configs: Sequence[str] = (),
) -> list[str]:
    chosen = master(cfg, overrides)
    local = chosen.startswith("local")
    conf = launch_conf(cfg, chosen)
    cmd = [spark_submit_binary(), "--master", chosen, "--name", f"{cfg.spark.app_name}-{job}"]
    packages = conf.pop("spark.jars.packages", None)
    if packages:
        cmd += ["--packages", packages]
    args = list(argv)
    if not local:
        # The zip must outlive this process (spark-submit reads it after exec).
        cmd += ["--py-files", str(code_zip(workdir or _workdir()))]
        if (_option(submit_options, "--deploy-mode") or "client") == "cluster" and configs:
            args, files = _ship_configs(args, configs)
            cmd += ["--files", ",".join(filter(None, [_option(submit_options, "--files"), *files]))]
            submit_options = _without(submit_options, "--files")
    cmd += list(submit_options)
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, str(job_file(job, workdir)), *args]


def _without(options: Sequence[str], name: str) -> list[str]:
    kept, skip = [], False
    for item in options:
        if skip:
            skip = False
        elif item == name:
            skip = True
        elif not item.startswith(f"{name}="):
            kept.append(item)
    return kept


def airflow_variables(argv: Sequence[str]) -> dict[str, Any]:
    """The Airflow Variables of the ``precis_daily`` DAG for this installation and the job
    arguments ``argv`` (``--config``, ``--set``, ``--env``; the run date is each run's own).

    The interpreter that has precis, the arguments every task passes on, and what
    spark-submit must carry for a session precis does not start itself: the Delta
    packages and :func:`precis.session.launch_conf` for the configured master.
    """
    cfg = parse_config("airflow-variables", argv)  # fails here, not in every task
    known = build_parser("airflow-variables").parse_args(list(argv))
    if known.run_date:
        raise ConfigError("--run-date: each Airflow run passes its own logical date")
    conf = launch_conf(cfg, master(cfg, known.overrides))
    return {
        "precis_python": sys.executable,
        # Tasks run in the worker's working directory: relative paths would not resolve.
        # (a packaged profile such as demo.yaml resolves to its installed file).
        "precis_config": [str(config_file(c)) for c in known.configs],
        "precis_env": known.env or "",
        "precis_set": list(known.overrides),
        "precis_packages": conf.pop("spark.jars.packages", ""),
        "precis_spark_conf": conf,
    }


def _workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="precis-submit-"))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--airflow-variables"]:
        try:
            print(json.dumps(airflow_variables(argv[1:]), indent=2))
        except ConfigError as exc:
            return fail("airflow-variables", exc)
        return 0
    try:
        submit_options, argv = split_submit_options(argv)
    except ConfigError as exc:
        return fail("spark-submit.sh", exc)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        print("jobs: " + ", ".join(jobs.JOBS))
        return 0 if argv else 2
    job, rest = argv[0], argv[1:]
    try:
        if job not in jobs.JOBS:
            raise ConfigError(f"unknown job '{job}'; jobs: {', '.join(jobs.JOBS)}")
        cfg = parse_config(job, rest)
        if os.environ.get("SPARK_REMOTE") or cfg.spark.remote:
            # Spark Connect: the server has the JVM; this process is only a client.
            cmd = [sys.executable, "-m", "precis", job, *rest]
        else:
            # Same parser as the job, so "--set=k=v" and "--set k=v" both count.
            known = build_parser(job).parse_known_args(rest)[0]
            cmd = command(
                job,
                rest,
                known.overrides,
                cfg,
                submit_options=submit_options,
                configs=known.configs,
            )
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
