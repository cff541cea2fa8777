"""Settings of the ``forget`` job (docs/privacy.md).

Each default is written once, here; ``conf/base.yaml`` is generated from it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from precis.settings import Section


class ForgetConfig(Section):
    """Right to be forgotten: who, and how thoroughly history is purged."""

    # Requests besides landing's forget_requests: a file with id_type, id_value and
    # optionally requested_at (csv with a header, json lines, parquet or delta).
    file: str | None = None
    file_format: Literal["csv", "json", "parquet", "delta"] = "csv"
    # People to forget by one_id (no plain identifier needed on the command line).
    one_ids: tuple[str, ...] = ()
    # VACUUM retention for the tables forget changed: their deleted versions become
    # unreadable once this many hours have passed. 0 removes them at once; Delta's
    # retention safety check is turned off for those VACUUMs only.
    retention_hours: int = Field(0, ge=0)
    # Landing files are the owner's: forget leaves them as landed (meta/suppressions keeps
    # the person out of every later ingest, replays included). true: forget also rewrites
    # each landing file holding a row of theirs without it (csv, json, parquet through
    # the job's file system; a delta landing table gets a new version without them).
    rewrite_landing: bool = False
