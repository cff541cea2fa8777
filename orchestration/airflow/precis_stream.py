"""precis_stream: the speed layer, available-now, every 15 minutes.

One task, one spark-submit of ``precis stream``:

    spark-submit --master <connection> --packages <Delta> --conf <Delta SQL> ...
        precis_job.py stream [--config F ...] [--env E] [--set k=v ...]

(``precis_tasks.PrecisJob``), with the Variables of the daily DAG, so it reads the tables
the daily jobs write. With ``stream.trigger: available_now`` (the default) a run
processes the events and orders files that have landed since the last run, from the
stream's checkpoint (``<storage.root>/_checkpoints/stream``), and stops; its outputs are
exactly-once, so a retry or a run after a failure loses and repeats nothing. It works on
event time: no ``--run-date`` (the day it runs is the one its MLflow run is tagged
with), no catch-up (one run reads everything that has landed since the last), and a
run does not wait for the daily DAG: it reads the identity map and segments as the daily
jobs last left them. Copy this file, ``precis_tasks.py`` and ``precis_job.py`` into the
DAGs folder (beside ``precis_daily.py``).

One run at a time: a run that takes longer than 15 minutes delays the next, which then
reads what landed meanwhile. A stream run started elsewhere (by hand, from cron) holds
the stream's lease on the storage root: the task waits for it, and exits 75 when it has
waited ``runner.lock_wait_seconds``; its retry comes later. A failed task is retried
with exponential backoff, and the next run starts once it succeeds or gives up. The DAG
is paused when first seen, so it runs nothing before the Variables are set.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronTriggerTimetable

# Beside this file in the DAGs folder, which Airflow puts on sys.path.
from precis_tasks import RETRIES, PrecisJob, params

DAG_ID = "precis_stream"
#: The precis job (precis.jobs.JOBS); not one of the daily jobs.
JOB = "stream"
#: Every quarter of an hour, UTC.
SCHEDULE = "*/15 * * * *"

with DAG(
    dag_id=DAG_ID,
    description="precis stream: real-time tags and triggers over what has landed since the last run",
    doc_md=__doc__,
    # A run at each quarter of an hour; its logical date is the time it fires.
    schedule=CronTriggerTimetable(SCHEDULE, timezone="UTC"),
    # Any date in the past: without catch-up, the first run is that of the latest quarter
    # of an hour, started when the DAG is unpaused.
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    # Each run takes up where the last finished one ended (the checkpoint), whatever the
    # state of the runs before it.
    default_args={**RETRIES, "depends_on_past": False},
    is_paused_upon_creation=True,
    params=params(),
    tags=["precis"],
) as dag:
    # A hung run would hold the only run slot and every landing after it: stopped after
    # two hours, its retry resumes from the checkpoint.
    PrecisJob(job=JOB, dated=False, execution_timeout=dt.timedelta(hours=2))
