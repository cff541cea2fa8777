"""Campaign experiments: A/B arms against control (``precis.experiments.stats``)."""
