"""The generated period: the ``days`` days that end on ``end_date`` (UTC)."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from precis.generate.draws import SECONDS_PER_DAY


@dataclass(frozen=True)
class Period:
    end_date: dt.date  # last day included
    days: int

    @property
    def start_date(self) -> dt.date:
        return self.end_date - dt.timedelta(days=self.days - 1)

    @property
    def start_s(self) -> int:
        """Epoch seconds of the first instant (UTC midnight of the first day)."""
        return calendar.timegm(self.start_date.timetuple())

    @property
    def end_s(self) -> int:
        """Epoch seconds just after the last instant (exclusive bound)."""
        return self.start_s + self.days * SECONDS_PER_DAY

    @property
    def end_unix_day(self) -> int:
        return (self.end_date - dt.date(1970, 1, 1)).days
