"""Which key hashed this lakehouse: ``meta/key_fingerprint``.

Hashes made with two keys never match, so a job that hashes with another key than the
one the tables were built with would silently split every person in two. The first job
that hashes records the key's fingerprint (``privacy.fingerprint``: public, reveals
nothing about the key); every later one compares and stops on a difference. The rekey
job replaces the fingerprint once the tables are translated to a new key.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from precis import privacy
from precis import tables as T
from precis.errors import ConfigError
from precis.progress import log
from precis.storage import Lakehouse

if TYPE_CHECKING:
    from precis.config import Config

SCHEMA = "fingerprint string, first_used_at timestamp, env string"
SHOWN = 12  # hex digits of a fingerprint shown in messages


def stored(lake: Lakehouse) -> str | None:
    """The fingerprint in ``meta/key_fingerprint`` (None: no job has hashed yet)."""
    found = lake.read_if_exists(T.KEY_FINGERPRINT)
    row = None if found is None else found.select("fingerprint").first()
    return None if row is None else row["fingerprint"]


def record(lake: Lakehouse, key: bytes, env: str) -> str:
    """Store ``key``'s fingerprint as this lakehouse's key (replacing any other)."""
    value = privacy.fingerprint(key)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    row = lake.spark.createDataFrame([(value, now, env)], SCHEMA)
    lake.overwrite(row, T.KEY_FINGERPRINT)
    return value


def check_key(lake: Lakehouse, key: bytes, env: str, key_env: str = "PRECIS_PII_KEY") -> str:
    """``key``'s fingerprint, recorded at the first use; ConfigError (exit 2) when the
    lakehouse was built with another key. ``key_env`` names the variable in the message."""
    mine = privacy.fingerprint(key)
    found = stored(lake)
    if found is None:
        record(lake, key, env)
        log.info("hashing key %s... recorded in %s", mine[:SHOWN], T.KEY_FINGERPRINT.ref)
        return mine
    if found != mine:
        raise ConfigError(
            f"the hashing key in ${key_env} is not the key this lakehouse was built with "
            f"(fingerprint {found[:SHOWN]}… stored in {T.KEY_FINGERPRINT.ref}); set the right "
            "key, or rotate with the rekey job (docs/privacy.md)"
        )
    return mine


def job_key(lake: Lakehouse, cfg: Config) -> bytes:
    """A hashing job's key: from the environment (``privacy.resolve_key``), checked
    against the lakehouse's (``check_key``)."""
    key = privacy.resolve_key(cfg.privacy, cfg.env)
    check_key(lake, key, cfg.env, cfg.privacy.pii_key_env)
    return key
