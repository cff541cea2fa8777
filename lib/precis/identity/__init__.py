"""Identity graph: OneID across sources.

``build`` turns silver identifiers and the last run's tables into this run's identity
tables (no I/O); the ``identity`` job reads and writes them. ``resolve`` gives other
jobs the ``one_id`` of silver rows.
"""

from precis.identity.build import IdentityError, IdentityInputs, IdentityOutputs, build
from precis.identity.incremental import PreviousRun
from precis.identity.report import Stats

__all__ = ["IdentityError", "IdentityInputs", "IdentityOutputs", "PreviousRun", "Stats", "build"]
