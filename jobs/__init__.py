"""Thin entry files that ``spark-submit`` and schedulers point at, one per job.

The jobs themselves live in ``precis.jobs`` (installed with the wheel); each file here
only calls the job's ``main``. ``python -m jobs.<job>`` works from the project root.
"""
