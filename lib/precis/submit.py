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

Secrets stay out of command lines, which every user of the machine can read (``ps``),
and out of what is printed (:mod:`precis.redact`): Spark settings whose name or value
looks secret go to spark-submit in a properties file only the user can read, not as
``--conf``; ``--set`` of a secret-looking key or value reaches the job through the
environment (``$PRECIS_SET``), not its arguments; ``PRECIS_DEBUG=1`` prints the command
redacted. ``tags.explain.id=-`` is read here from standard input (which spark-submit does
not give the job) and handed over in the environment too.

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
from precis.redact import redact_argv, redact_value
from precis.runner import ENV_OVERRIDES, build_parser, env_overrides, fail, parse_config
from precis.session import launch_conf
from precis.settings import config_file
from precis.tags.settings import EXPLAIN_STDIN

USAGE = (
    "usage: spark-submit.sh [spark-submit options] <job> [--config FILE] [--set dotted.key=value ...] "
    "[--run-date YYYY-MM-DD] [--env ENV]"
)

#: spark-submit options that take no value; every other leading option takes one.
_FLAGS = {"--verbose", "-v", "--supervise", "--load-spark-defaults"}

#: Where the person to explain, read from standard input, is handed to the job.
EXPLAIN_PERSON_ENV = "PRECIS_EXPLAIN_PERSON"

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
    submit_options, secret = _secret_conf_options(submit_options)
    secret.update({k: v for k, v in conf.items() if is_secret(k, v)})
    if secret:
        submit_options = _secret_properties(submit_options, secret, workdir or _workdir())
    cmd += list(submit_options)
    for key, value in conf.items():
        if key not in secret:
            cmd += ["--conf", f"{key}={value}"]
    return [*cmd, str(job_file(job, workdir)), *args]


def is_secret(key: str, value: str) -> bool:
    """Whether the setting ``key=value`` holds a secret (:mod:`precis.redact`'s rules)."""
    return redact_value(key, value) != value


def _secret_conf_options(options: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """(spark-submit options without their secret ``--conf``, those settings)."""
    kept: list[str] = []
    secret: dict[str, str] = {}
    i = 0
    while i < len(options):
        item = options[i]
        if item in ("--conf", "-c") and i + 1 < len(options):
            setting, step = options[i + 1], 2
        elif item.startswith("--conf="):
            setting, step = item.split("=", 1)[1], 1
        else:
            kept.append(item)
            i += 1
            continue
        key, _, value = setting.partition("=")
        if is_secret(key, value):
            secret[key] = value
        else:
            kept += options[i : i + step]
        i += step
    return kept, secret


def _secret_properties(options: Sequence[str], secret: dict[str, str], workdir: Path) -> list[str]:
    """``options`` with ``--properties-file`` naming a file only the user can read that holds
    ``secret``, after the settings of the properties file given (if any).

    The file stays in the private temporary directory: spark-submit reads it after exec.
    """
    theirs = _option(options, "--properties-file")
    text = Path(theirs).read_text(encoding="utf-8") + "\n" if theirs else ""
    text += "".join(f"{_escape(k, key=True)}={_escape(v)}\n" for k, v in secret.items())
    path = workdir / "secret.properties"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    kept = _without(options, "--properties-file")
    # spark-submit reads conf/spark-defaults.conf without --properties-file only: ask for it
    # (Spark 4), unless the properties file was the user's own choice.
    defaults = [] if theirs or "--load-spark-defaults" in kept else ["--load-spark-defaults"]
    return [*kept, "--properties-file", str(path), *defaults]


def _escape(text: str, key: bool = False) -> str:
    """``text`` as a Java properties file reads it back (UTF-8, as Spark reads it)."""
    out = text.replace("\\", "\\\\")
    for char, escaped in (("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\f", "\\f")):
        out = out.replace(char, escaped)
    if key:
        for char in "=: #!":
            out = out.replace(char, "\\" + char)
    elif out.startswith(" "):
        out = "\\" + out
    return out


def split_secret_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(``argv`` without the ``--set`` of secret settings, those settings as "key=value").

    Every ``--set`` of a key with one secret value goes, in order: the last still wins.
    """
    found: list[tuple[int, int, str]] = []  # (position, items, "key=value")
    i = 0
    while i < len(argv):
        if argv[i] == "--set" and i + 1 < len(argv):
            found.append((i, 2, argv[i + 1]))
            i += 2
            continue
        if argv[i].startswith("--set="):
            found.append((i, 1, argv[i].split("=", 1)[1]))
        i += 1
    keys = set()
    for _, _, item in found:
        key, _, value = item.partition("=")
        if is_secret(key.strip(), value):
            keys.add(key.strip())
    moved = [f for f in found if f[2].partition("=")[0].strip() in keys]
    drop = {j for at, n, _ in moved for j in range(at, at + n)}
    return [a for j, a in enumerate(argv) if j not in drop], [item for _, _, item in moved]


def _hide_secrets(job: str, argv: Sequence[str], cluster: bool) -> tuple[list[str], list[str]]:
    """(the job's arguments, the ``--set`` items that go in ``$PRECIS_SET`` instead)."""
    args, hidden = split_secret_overrides(argv)
    if hidden and cluster:
        # The environment stays on this machine: a driver elsewhere needs its arguments.
        keys = ", ".join(sorted({item.partition("=")[0].strip() for item in hidden}))
        print(
            f"precis {job}: warning: --set of {keys} puts a secret in the driver's command "
            "line in cluster deploy mode; a --config file keeps it out",
            file=sys.stderr,
        )
        return list(argv), []
    return args, hidden


def _explain_from_stdin(cfg: Config, cluster: bool) -> list[str]:
    """For ``tags.explain.id=-``: read the person now and hand it to the job in
    ``$PRECIS_EXPLAIN_PERSON``; the ``--set`` that point the job there."""
    if cfg.tags.explain.id != EXPLAIN_STDIN:
        return []
    if cluster:
        raise ConfigError(
            "tags.explain.id=-: standard input cannot reach a driver in cluster deploy mode; "
            "set a variable on the driver and name it in tags.explain.id_env"
        )
    from precis.tags.explain import read_person  # only here: it loads the tags library

    os.environ[EXPLAIN_PERSON_ENV] = read_person(cfg.tags.explain)
    return ["--set", "tags.explain.id=null", "--set", f"tags.explain.id_env={EXPLAIN_PERSON_ENV}"]


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
        # Same parser as the job, so "--set=k=v" and "--set k=v" both count.
        known = build_parser(job).parse_known_args(rest)[0]
        remote = bool(os.environ.get("SPARK_REMOTE") or cfg.spark.remote)
        cluster = not remote and _option(submit_options, "--deploy-mode") == "cluster"
        args, hidden = _hide_secrets(job, rest, cluster)
        args += _explain_from_stdin(cfg, cluster)
        if remote:
            # Spark Connect: the server has the JVM; this process is only a client.
            cmd = [sys.executable, "-m", "precis", job, *args]
        else:
            cmd = command(
                job,
                args,
                known.overrides,
                cfg,
                submit_options=submit_options,
                configs=known.configs,
            )
    except SystemExit as exc:
        return int(exc.code or 0)
    except ConfigError as exc:
        return fail(job, exc)
    if hidden:
        os.environ[ENV_OVERRIDES] = json.dumps([*env_overrides(), *hidden])
    if os.environ.get("PRECIS_DEBUG"):
        print(" ".join(redact_argv(cmd)), file=sys.stderr)
    sys.stdout.flush()
    os.execv(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
