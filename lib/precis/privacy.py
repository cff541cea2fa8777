"""Keyed hashing of PII identifiers with Spark's native functions.

``id_key = hex(HMAC-SHA256(key, normalized value))``. HMAC is built from ``sha2`` and
binary concatenation, so no Python UDF runs per row.

The key never appears in a query plan. A literal would: ``explain()``, the Spark UI and
the event logs print literals, and a pad XOR 0x36 is the key. So the two pads travel as
data instead: ``with_key`` adds them as columns from a broadcast one-row frame,
``hmac_hex`` hashes with those columns, ``drop_key`` removes them::

    keyed = privacy.with_key(df, key)
    hashed = privacy.drop_key(keyed.withColumn("id_key", privacy.hmac_hex(F.col("v"))))

The key comes from the environment variable named by ``privacy.pii_key_env``
(``resolve_key``); outside the ``local`` environment an unset variable is an error.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from precis.errors import ConfigError
from precis.progress import log

if TYPE_CHECKING:
    from precis.config import PrivacyConfig

# Only for demos and tests: anyone can read it here, so it protects nothing.
DEVELOPMENT_KEY = "precis-development-key-NOT-FOR-PRODUCTION"
#: The one environment where a missing key falls back to the development key.
DEVELOPMENT_ENV = "local"
_BLOCK = 64  # SHA-256 block size in bytes
# The pad columns with_key adds; the names say what they are, the values stay data.
INNER_PAD, OUTER_PAD = "_hmac_inner_pad", "_hmac_outer_pad"
_FINGERPRINT_MESSAGE = b"precis key fingerprint v1"


def resolve_key(settings: PrivacyConfig, env: str, variable: str | None = None) -> bytes:
    """The hashing key from the environment variable ``variable`` (default
    ``settings.pii_key_env``). Unset: ConfigError naming it, except in the ``local``
    environment, which hashes with the public development key and says so."""
    name = variable or settings.pii_key_env
    value = os.environ.get(name)
    if value:
        return value.encode()
    if env != DEVELOPMENT_ENV:
        raise ConfigError(
            f"environment variable {name} is not set: the {env} environment hashes PII "
            f"identifiers with the secret key it holds (see docs/privacy.md)"
        )
    log.warning(
        "WARNING: environment variable %s is not set; hashing PII with the public "
        "DEVELOPMENT key. Set %s to a secret before processing real data.",
        name,
        name,
    )
    return DEVELOPMENT_KEY.encode()


def fingerprint(key: bytes) -> str:
    """A public name of ``key``: tells keys apart, reveals nothing about them."""
    return hmac.new(key, _FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()


def pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer pads of ``key`` (RFC 2104)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def key_frame(spark: SparkSession, key: bytes) -> DataFrame:
    """One row holding the pads of ``key`` (as data: the plan names only the columns)."""
    inner, outer = pads(key)
    return spark.createDataFrame(
        [(bytearray(inner), bytearray(outer))], f"{INNER_PAD} binary, {OUTER_PAD} binary"
    )


def with_key(df: DataFrame, key: bytes) -> DataFrame:
    """``df`` with the pad columns of ``key``, for ``hmac_hex``; ``drop_key`` removes them."""
    return df.join(F.broadcast(key_frame(df.sparkSession, key)), how="cross")


def hmac_hex(value: Column) -> Column:
    """HMAC-SHA256 of a string column as lower-case hex (null stays null), keyed by the
    pad columns ``with_key`` added to the frame."""
    inner = F.unhex(F.sha2(F.concat(F.col(INNER_PAD), F.encode(value, "UTF-8")), 256))
    return F.sha2(F.concat(F.col(OUTER_PAD), inner), 256)


def drop_key(df: DataFrame) -> DataFrame:
    return df.drop(INNER_PAD, OUTER_PAD)


def hash_values(
    spark: SparkSession,
    values: list[tuple[str, str]] | DataFrame,
    key: bytes,
    value: str = "value",
    out: str = "hashed",
) -> DataFrame:
    """``values`` (rows of (type, value), or a frame with a ``value`` column) with its
    keyed hash as column ``out``; the values are hashed as given (normalize first)."""
    frame = (
        values
        if isinstance(values, DataFrame)
        else spark.createDataFrame(values, f"type string, {value} string")
    )
    keyed = with_key(frame, key)
    return drop_key(keyed.withColumn(out, hmac_hex(F.col(value))))
