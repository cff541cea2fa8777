"""Synthetic multi-source retail data with planted structure and ground truth.

Pure DataFrame builders (no I/O): ``build`` returns every landing dataset of the data
contract and the truth tables; the ``generate`` job writes them.
"""

from precis.generate.build import Generated, arrange, build, for_format, landing_order
from precis.generate.period import Period

__all__ = ["Generated", "Period", "arrange", "build", "for_format", "landing_order"]
