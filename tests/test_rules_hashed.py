"""Operators' identity rules stored hashed: the ``hash`` command, and the identity job's
reading of hashed and of plain rules (plain PII: the same rules, and a warning)."""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path

import pytest

from precis import keys, privacy
from precis import tables as T
from precis.config import load_config
from precis.errors import ConfigError
from precis.identity import rules
from precis.ingest.conform import IdentifierSettings
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]
KEY = b"rules-test-key"
RULES = (
    "rule,id_type,id_value,other_type,other_value,note\n"
    "force_link,email, Ann@Example.COM ,member_id,M1,same person\n"
    "block,phone,+86 138-1234-5678,,,shared hotline\n"
    "never_link,member_id,M2,cookie_id,c9,\n"
)


def h(value: str) -> str:
    return hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()


def _settings() -> IdentifierSettings:
    cfg = load_config(PROJECT / "conf" / "base.yaml")
    return IdentifierSettings.of(cfg.ingest, cfg.privacy.pii_types, KEY)


def _plain(spark, tmp_path):
    path = tmp_path / "rules.csv"
    path.write_text(RULES)
    return spark.read.option("header", "true").csv(str(path)), str(path)


def _as_sets(found: rules.Rules) -> tuple:
    return (
        {r["node"] for r in found.blocked.collect()},
        {tuple(r) for r in found.never.collect()},
        {tuple(r) for r in found.force.collect()},
        found.count,
    )


def test_hash_command_stores_pii_as_keys_only(spark, tmp_path, monkeypatch):
    _, path = _plain(spark, tmp_path)
    root = tmp_path / "lakehouse"
    monkeypatch.setenv("PRECIS_PII_KEY", KEY.decode())
    code = rules.main(
        ["hash", "--in", path, "--set", f"storage.root={root}", "--set", "mlflow.enabled=false"]
    )
    assert code == 0
    lake = Lakehouse(spark, str(root))
    got = sorted(tuple(r) for r in lake.read(T.IDENTITY_RULES).collect())
    assert got == [
        ("block", "phone", None, h("+8613812345678"), None, None, None, "shared hotline"),
        ("force_link", "email", None, h("ann@example.com"), "member_id", "M1", None, "same person"),
        ("never_link", "member_id", "M2", None, "cookie_id", "c9", None, None),
    ]
    assert keys.stored(lake) == privacy.fingerprint(KEY)  # hashed with the lakehouse's key


def test_hashed_and_plain_rules_are_the_same_rules(spark, tmp_path, caplog):
    plain, path = _plain(spark, tmp_path)
    settings = _settings()
    stored = rules.stored(spark, plain, settings, path)
    with caplog.at_level(logging.WARNING):
        from_plain = rules.load(spark, plain, path, settings)
    warned = [r.getMessage() for r in caplog.records if "plain PII" in r.getMessage()]
    expected = (
        f"WARNING: identity rules {path} hold 2 plain PII value(s) (email, phone); store them "
        f"hashed: {rules.HASH_COMMAND} (docs/identity.md)"
    )
    assert warned == [expected]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        from_stored = rules.load(spark, stored, "meta/identity_rules", settings)
    assert not [r for r in caplog.records if "plain PII" in r.getMessage()]
    assert _as_sets(from_stored) == _as_sets(from_plain)
    assert len(_as_sets(from_plain)[0]) == 1 and _as_sets(from_plain)[3] == 3


def test_a_rule_without_value_or_key_names_both(spark):
    settings = _settings()
    table = spark.createDataFrame(
        [("block", "email", None, None, None, None, None, None)], rules.STORED
    )
    with pytest.raises(ConfigError, match=r"row 1: id_value is empty \(and no id_key\)"):
        rules.load(spark, table, "meta/identity_rules", settings)
