"""Progress lines for long jobs: step n of m, rows, elapsed seconds."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

log = logging.getLogger("precis")


def configure_logging(level: int = logging.INFO) -> None:
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(level)


@dataclass
class Step:
    name: str
    rows: int | None = None
    detail: str = ""


@dataclass
class Progress:
    job: str
    total: int
    done: int = 0
    started: float = field(default_factory=time.monotonic)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Announce a step, time it, and report the rows the caller recorded on it."""
        self.done += 1
        info = Step(name)
        log.info("[%s] step %d/%d %s ...", self.job, self.done, self.total, name)
        t0 = time.monotonic()
        yield info
        rows = f", {info.rows:,} rows" if info.rows is not None else ""
        detail = f", {info.detail}" if info.detail else ""
        log.info(
            "[%s] step %d/%d %s done%s%s in %.1fs",
            self.job,
            self.done,
            self.total,
            name,
            rows,
            detail,
            time.monotonic() - t0,
        )

    def finish(self, summary: str = "") -> None:
        log.info(
            "[%s] finished in %.1fs%s",
            self.job,
            time.monotonic() - self.started,
            f": {summary}" if summary else "",
        )

    def skipped(self, why: str) -> dict[str, str]:
        """End a job that has nothing to do in this world (an absent dataset it cannot do
        without): a warning naming why, and the job's result. Nothing is written."""
        log.warning("[%s] skipped: %s", self.job, why)
        self.finish("skipped")
        return {"skipped": why}


@contextlib.contextmanager
def silent_step(name: str) -> Iterator[Step]:
    """A step that reports nothing: what a library entry uses when no job passes its own
    ``progress.step`` to report through."""
    yield Step(name)


def written_detail(written: Mapping[str, int]) -> str:
    """A MERGE's counts (``Lakehouse.merge_upsert``) as a step's detail."""
    return (
        f"{written['inserted']:,} inserted, {written['updated']:,} updated, "
        f"{written['deleted']:,} deleted"
    )
