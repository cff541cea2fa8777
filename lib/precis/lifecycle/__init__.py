"""Customer lifecycle value: RFM, BG/NBD + Gamma-Gamma CLV, stages and churn risk.

``build`` is the pure entry the lifecycle job calls; the modules below it hold the
purchase summary (``summary``), the models (``btyd``, ``value``), stages and RFM
(``segments``), the churn classifier (``churn``) and the out-of-sample checks
(``evaluation``).
"""

from precis.lifecycle.assemble import VALUE_COLUMNS, Inputs, LifecycleOutputs, build

__all__ = ["VALUE_COLUMNS", "Inputs", "LifecycleOutputs", "build"]
