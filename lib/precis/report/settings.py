"""Settings of the run report (the ``report`` job).

Each default is written once, here; ``conf/base.yaml`` is generated from it.
"""

from __future__ import annotations

from pydantic import Field

from precis.settings import Section


class ReportConfig(Section):
    """One page per run date: what came in, who was resolved, how good the models are."""

    # Folder of the pages, one <run_date>/index.html each (null: <storage.root>/reports).
    # A local or mounted path (/dbfs/..., /Volumes/...): with an object store root the page
    # goes to MLflow only unless this names a mounted folder.
    path: str | None = None
    # Trends show this many run dates, ending with the report's own.
    runs: int = Field(default=30, ge=1)
    # Bins of the CLV histogram (equal widths from the lowest to the highest value).
    clv_bins: int = Field(default=20, ge=2)
    # Identifiers-per-person histogram: people with more are counted in the last bar.
    max_identifiers: int = Field(default=20, ge=2)
