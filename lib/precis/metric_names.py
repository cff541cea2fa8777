"""Names of MLflow metrics built from data (channels, experiments, arms).

Its own module, free of imports, so that pure library code can name metrics without
importing the tracking module (and the configuration behind it).
"""


def metric_name(text: str) -> str:
    """``text`` as part of an MLflow metric name: characters MLflow rejects become ``_``."""
    return "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in text)
