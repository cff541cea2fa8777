"""Keyed hashing of PII identifiers with Spark's native functions.

``id_key = hex(HMAC-SHA256(key, normalized value))``. HMAC is built from ``sha2`` and
binary concatenation; the key pads are computed once on the driver, so no Python UDF
runs per row and the plain value never leaves the executor's column expression.
The key comes from the environment variable named by ``privacy.pii_key_env``.
"""

from __future__ import annotations

import hashlib
import os

from pyspark.sql import Column
from pyspark.sql import functions as F

from precis.config import Config
from precis.progress import log

# Only for demos and tests: anyone can read it here, so it protects nothing.
DEVELOPMENT_KEY = "precis-development-key-NOT-FOR-PRODUCTION"
_BLOCK = 64  # SHA-256 block size in bytes


def resolve_key(cfg: Config) -> bytes:
    """The hashing key from the environment; the development default with a warning."""
    value = os.environ.get(cfg.privacy.pii_key_env)
    if value:
        return value.encode()
    log.warning(
        "WARNING: environment variable %s is not set; hashing PII with the public "
        "DEVELOPMENT key. Set %s to a secret before processing real data.",
        cfg.privacy.pii_key_env,
        cfg.privacy.pii_key_env,
    )
    return DEVELOPMENT_KEY.encode()


def hmac_sha256_hex(value: Column, key: bytes) -> Column:
    """HMAC-SHA256 of a string column as lower-case hex (null stays null)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner_pad = bytes(b ^ 0x36 for b in key)
    outer_pad = bytes(b ^ 0x5C for b in key)
    inner = F.unhex(F.sha2(F.concat(F.lit(inner_pad), F.encode(value, "UTF-8")), 256))
    return F.sha2(F.concat(F.lit(outer_pad), inner), 256)
