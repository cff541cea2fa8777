"""precis_daily: the daily precis jobs of one run date, each one spark-submit.

One task per job of ``precis.jobs.DAILY_JOBS``, wired by the tables each job reads for
the same run date: ingest, then forget, then identity, then lifecycle, recommend,
attribution and experiments side by side, tags after lifecycle, and the run report
last. Every task runs

    spark-submit --master <connection> --packages <Delta> --conf <Delta SQL> ...
        precis_job.py <job> --run-date {{ ds }} [--config F ...] [--env E] [--set k=v ...]

(``precis_tasks.PrecisJob``). Copy this file, ``precis_tasks.py`` and ``precis_job.py``
into the DAGs folder (``precis_stream.py`` too for the stream). Runs are daily (midnight
UTC) over the day that just ended: the run of 2026-03-31 starts at 2026-04-01 00:00
UTC with ``{{ ds }}`` = 2026-03-31. One run at a time, dates in order (a task waits for
its own task of the day before), catch-up from the start date, failed tasks retried
with exponential backoff. A date that still fails pauses the DAG, so no later date runs
on top of it: fix the cause, clear the failed tasks of that date, unpause. The DAG is
paused when first seen, so it runs nothing before the Variables are set.

Settings: the Airflow Variables and DAG params of ``precis_tasks.py`` (read when a task
starts), and one of this DAG's own, read when this file is parsed:

- ``precis_start_date``: the first run date, ``YYYY-MM-DD`` (default 2026-01-01).
  Unpausing the DAG runs every date from it.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronDataIntervalTimetable, Variable

# Beside this file in the DAGs folder, which Airflow puts on sys.path.
from precis_tasks import RETRIES, PrecisJob, params

DAG_ID = "precis_daily"

#: Each daily job and the daily jobs whose tables it reads for the same run date:
#: ``precis.jobs.upstream(job, precis.jobs.DAILY_JOBS)``, written out because the
#: Airflow environment has no precis (tests/test_airflow_dag_shape.py compares them).
NEEDS: dict[str, tuple[str, ...]] = {
    "ingest": (),
    "forget": ("ingest",),
    "identity": ("forget",),
    "lifecycle": ("identity",),
    "tags": ("lifecycle",),
    "recommend": ("identity",),
    "attribution": ("identity",),
    "experiments": ("identity",),
    "report": ("tags", "recommend", "attribution", "experiments"),
}

START_DATE_VARIABLE = "precis_start_date"
DEFAULT_START_DATE = "2026-01-01"


def start_date() -> dt.datetime:
    text = Variable.get(START_DATE_VARIABLE, default=DEFAULT_START_DATE)
    return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=dt.UTC)


with DAG(
    dag_id=DAG_ID,
    description=(
        "precis daily jobs: ingest, forget, identity, lifecycle, tags, recommend, "
        "attribution, experiments, report"
    ),
    doc_md=__doc__,
    # The run of date D covers D and starts when D ends, so {{ ds }} is the day it covers.
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=start_date(),
    catchup=True,
    # Identity carries its state from one date to the next: dates run one at a time,
    # in order, and a job waits for its own run of the day before.
    max_active_runs=1,
    default_args={**RETRIES, "depends_on_past": True},
    # A failed date pauses the DAG. Otherwise the next date would start and wait on it
    # forever, holding the only run slot that the failed date, once cleared, needs.
    max_consecutive_failed_dag_runs=1,
    is_paused_upon_creation=True,
    params=params(),
    tags=["precis"],
) as dag:
    tasks = {job: PrecisJob(job=job) for job in NEEDS}
    for job, needs in NEEDS.items():
        for need in needs:
            tasks[need] >> tasks[job]
