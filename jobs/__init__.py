"""Batch jobs. Each ``jobs/<job>.py`` has ``main(argv)`` and ``run(spark, cfg)``.

Order in which the pipeline may run them; a job is "available" once its module exists.
"""

ORDER = (
    "generate",
    "ingest",
    "identity",
    "tags",
    "recommend",
    "lifecycle",
    "attribution",
    "forget",
)
