"""Column names that cross modules: the person key, identifiers, run stamps, and the
business keys the domains join on. A name used within one module stays a literal there.
"""

from __future__ import annotations

#: The person key every gold table carries (issued by the identity job).
ONE_ID = "one_id"
#: An identifier: its type (email, phone, cookie, ...), keyed hash, and the raw value of
#: types that are not personal data.
ID_TYPE = "id_type"
ID_KEY = "id_key"
ID_VALUE = "id_value"
#: A silver record's own key (``<source>:<key>``).
RECORD_ID = "record_id"
#: Business keys.
ORDER_ID = "order_id"
ITEM_ID = "item_id"
#: What every job stamps on its rows: the as-of date and the tracking run.
RUN_DATE = "run_date"
RUN_ID = "run_id"

#: Lineage that bronze adds to every landed row and silver keeps: the file a row came
#: from, and the ingest run that last wrote it and when.
SOURCE_FILE = "_source_file"
# A landed line the csv/json reader could not parse, as text (Spark's default name).
CORRUPT_RECORD = "_corrupt_record"
INGEST_RUN_ID = "_run_id"
INGESTED_AT = "_ingested_at"
#: What a landing stream adds to each landed row: its dataset and its file's landing time.
STREAM_DATASET = "_dataset"
LANDED_AT = "_landed_at"
