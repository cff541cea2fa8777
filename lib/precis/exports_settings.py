"""Settings of the activation exports under ``<storage.root>/exports`` (tags, recommend).

Each default is written once, here; ``conf/base.yaml`` is generated from it.
"""

from __future__ import annotations

from pydantic import Field

from precis.settings import Section


class ExportsConfig(Section):
    """How long the files handed to activation tools are kept."""

    # Days an export folder (<root>/exports/<name>/run_date=<date>) is kept: after each
    # export, the folders of run dates more than this many days before the run date are
    # deleted, so a person who withdraws consent leaves every export within this time.
    retention_days: int = Field(30, ge=0)
