"""Landing -> bronze -> silver: typing, validation, identifier normalization, hashing.

``build_batch`` is the pure entry the ingest job calls per dataset and batch.
"""

from precis.ingest.batch import DatasetFailed, IngestBatch, build_batch

__all__ = ["DatasetFailed", "IngestBatch", "build_batch"]
