"""The run report: one static page per run date, drawn from the tables the jobs wrote.

``inputs`` says what the ``report`` job reads, ``sections`` and ``products`` turn those
tables into each section's figures (small aggregates computed by Spark), and ``page``
draws the self-contained HTML page with the figures embedded as JSON (docs/report.md).
"""
