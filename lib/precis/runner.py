"""Command line shared by every job: ``--config``, ``--set``, ``--run-date``, ``--env``.

``job_main`` validates the configuration before Spark starts, builds (or reuses) the
session, calls the job's ``run(spark, cfg)`` and turns failures into a non-zero exit
code with a one-line reason on stderr (secrets redacted: :mod:`precis.redact`).

Overrides can also come from the environment variable ``PRECIS_SET``, a JSON list of
``"dotted.key=value"`` applied before the command line's ``--set``: a value there is
not in the process's command line, which every user of the machine can read.
``spark-submit.sh`` passes secret-looking ``--set`` values to the job this way.
"""

from __future__ import annotations

import argparse
import contextvars
import datetime as dt
import functools
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from pyspark.sql import SparkSession

from precis.config import Config, load_config
from precis.errors import ConfigError, PrecisError
from precis.progress import configure_logging
from precis.redact import redact_text

RunFn = Callable[[SparkSession, Config], Any]

#: Environment variable of overrides: a JSON list of "dotted.key=value".
ENV_OVERRIDES = "PRECIS_SET"


def build_parser(job: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=job, description=f"precis job '{job}'")
    parser.add_argument(
        "--config",
        dest="configs",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML merged over the packaged defaults and the environment overlay; repeatable, in order",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="dotted.key=value",
        help="override one config key, typed by the schema; repeatable",
    )
    parser.add_argument(
        "--run-date",
        help="logical run date YYYY-MM-DD (default: today, UTC; empty counts as not given)",
    )
    parser.add_argument(
        "--triggered-on",
        metavar="YYYY-MM-DD",
        help="the date a scheduler fired this run: without --run-date, the run date is the "
        "day before it (the last complete day)",
    )
    parser.add_argument(
        "--env",
        help="packaged environment overlay: local, cluster, databricks (default: $PRECIS_ENV or local)",
    )
    if job == "pipeline":
        parser.add_argument(
            "--from",
            dest="from_date",
            metavar="YYYY-MM-DD",
            help="backfill: run the jobs for every date from this one to --to (pipeline.from_date)",
        )
        parser.add_argument(
            "--to", metavar="YYYY-MM-DD", help="last date of a backfill (the run date)"
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="rerun (date, job)s already done (pipeline.force); without it a rerun resumes",
        )
    return parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2 with usage; keep one line
        raise ConfigError(f"{self.prog}: {message}")


def parse_config(job: str, argv: Sequence[str]) -> Config:
    parser = build_parser(job)
    parser.__class__ = _Parser
    args = parser.parse_args(list(argv))
    overrides = [*env_overrides(), *args.overrides]
    run_date = _parse_date(args.run_date, "--run-date") if args.run_date else None
    if run_date is None and args.triggered_on:
        run_date = _parse_date(args.triggered_on, "--triggered-on") - dt.timedelta(days=1)
    if job == "pipeline":
        to = _parse_date(args.to, "--to") if args.to else None
        if to and run_date and to != run_date:
            raise ConfigError(f"--to {to} and --run-date {run_date} disagree: give one of them")
        run_date = to or run_date
        if args.from_date:
            overrides.append(f"pipeline.from_date={_parse_date(args.from_date, '--from')}")
        if args.force:
            overrides.append("pipeline.force=true")
    return load_config(args.configs, overrides, run_date=run_date, env=args.env)


def env_overrides() -> list[str]:
    """The overrides in ``$PRECIS_SET`` (none when unset)."""
    text = os.environ.get(ENV_OVERRIDES, "").strip()
    if not text:
        return []
    try:
        items = json.loads(text)
    except ValueError:
        items = None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        # Not quoted back: the variable exists to hold secrets.
        raise ConfigError(f'${ENV_OVERRIDES} must be a JSON list of "dotted.key=value" strings')
    return items


def _parse_date(text: str, flag: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag} expects YYYY-MM-DD, got '{text}'") from None


def fail(job: str, exc: BaseException) -> int:
    code = exc.exit_code if isinstance(exc, PrecisError) else 1
    if os.environ.get("PRECIS_DEBUG"):
        print(redact_text("".join(traceback.format_exception(exc))), file=sys.stderr, end="")
    text = redact_text(str(exc)).strip()  # a message may quote a URI or a setting
    reason = text.splitlines()[0] if text else type(exc).__name__
    if not isinstance(exc, PrecisError):
        reason = f"{type(exc).__name__}: {reason} (PRECIS_DEBUG=1 shows the traceback)"
    print(f"precis {job}: error: {reason}", file=sys.stderr, flush=True)
    return code


#: The jobs whose lease this run holds already (a pipeline holds its jobs'), so a job
#: called inside it does not take it again.
_LEASED: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "precis_leased", default=frozenset()
)


def one_writer(
    job: str, runs: Callable[[Config], Sequence[str]] = lambda cfg: ()
) -> Callable[[RunFn], RunFn]:
    """Decorates a job's ``run(spark, cfg)``: the run holds the job's lease on the storage
    root (``meta/leases``), however it is called (command line, pipeline, notebook), so
    two runs of one job never write together (``precis.storage.lease``); and it runs in
    the business time zone (``precis.session.business_time``).

    ``runs(cfg)`` names the jobs a run calls (the pipeline's): their leases are taken
    with its own, in the same statement, and held for the whole run, instead of one
    lease per job at a few Delta commits each."""

    def decorate(run: RunFn) -> RunFn:
        @functools.wraps(run)
        def run_alone(spark: SparkSession, cfg: Config) -> Any:
            from precis import faults
            from precis.session import business_time
            from precis.storage import lease

            leased = _LEASED.get()
            if job in leased:
                with business_time(spark, cfg), faults.running(job):
                    return run(spark, cfg)
            jobs = (job, *(j for j in runs(cfg) if j not in leased))
            wait, seconds = cfg.runner.lock_wait_seconds, cfg.runner.lease_seconds
            holding = lease.held(spark, cfg.root, jobs, wait_seconds=wait, lease_seconds=seconds)
            token = _LEASED.set(leased | set(jobs))
            try:
                with business_time(spark, cfg), holding, faults.running(job):
                    return run(spark, cfg)
            finally:
                _LEASED.reset(token)

        return run_alone

    return decorate


def job_main(job: str, run: RunFn, argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jobs/<job>.py``; returns the process exit code."""
    configure_logging()
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = parse_config(job, argv)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except ConfigError as exc:
        return fail(job, exc)
    try:
        from precis.session import get_spark

        spark = get_spark(cfg)
        run(spark, cfg)
    except Exception as exc:
        return fail(job, exc)
    return 0
