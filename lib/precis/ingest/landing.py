"""Which landing datasets an ingest run takes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from precis.errors import MissingDatasetError
from precis.progress import log
from precis.storage import LandingFile


def present_datasets(
    landing: Mapping[str, Sequence[LandingFile]],
    requested: Sequence[str],
    path_of: Callable[[str], str],
    root: str,
) -> list[str]:
    """The datasets with landed files; an explicitly ``requested`` absent one is an error."""
    absent = [d for d, files in landing.items() if not files]
    if absent and requested:
        found = ", ".join(f"{d} ({path_of(d)})" for d in absent)
        raise MissingDatasetError(f"landing dataset(s) not found: {found}")
    for d in absent:
        log.info("[ingest] %s: no landing data at %s, skipped", d, path_of(d))
    present = [d for d in landing if landing[d]]
    if not present:
        raise MissingDatasetError(
            f"no landing data under {root}/landing; run the generate job or land files first"
        )
    return present
