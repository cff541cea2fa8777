"""Days as the business counts them.

Every job runs with the session time zone set to the business time zone
(``ingest.timezone``, applied by ``precis.session.business_time``), so Spark's own day
arithmetic (``to_date`` of a time, a date compared with a time) is in business days.
A day's bounds built in Python must go through Spark the same way: a naive
``datetime`` literal is read in the time zone of the Python process instead.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column
from pyspark.sql import functions as F


def day_start(day: dt.date) -> Column:
    """The time ``day`` begins in the business time zone (midnight there)."""
    return F.lit(day).cast("timestamp")


def day_end(day: dt.date) -> Column:
    """The time ``day`` ends (exclusive): the start of the next day, so ``day`` counts in
    full."""
    return day_start(day + dt.timedelta(days=1))
