"""The hashing key stays secret: never in a query plan or an event log, required outside
local, and checked against the key the lakehouse was built with."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from precis import keys, privacy
from precis import tables as T
from precis.config import PrivacyConfig
from precis.errors import ConfigError
from precis.ingest.conform import IdentifierSettings, resolve_identifiers
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]
KEY = b"kx-7Qw!private-hashing-key"
SETTINGS = IdentifierSettings(
    rules={"member_id": "trim", "email": "email", "phone": "phone"},
    country_code="86",
    placeholder_values={},
    placeholder_patterns={},
    pii_types=("email", "phone"),
    key=KEY,
)
OBSERVATIONS = """source,record_id,id_type,id_value,observed_at
crm,r1,email, Ann@Example.COM ,2026-01-01T10:00:00Z
crm,r1,phone,+86 138-1234-5678,2026-01-01T10:00:00Z
crm,r1,member_id,M1,2026-01-01T10:00:00Z
"""


def secrets(key: bytes) -> list[str]:
    """Every spelling of the key and its pads a log or a plan could show."""
    inner, outer = privacy.pads(key)
    found = [key.decode(), key.hex(), key.hex().upper(), base64.b64encode(key).decode()]
    for pad in (inner, outer):
        found += [pad.hex(), pad.hex().upper(), base64.b64encode(pad).decode()]
    return found


def plans(df, capsys) -> str:
    texts = [df._jdf.queryExecution().toString()]
    for mode in ("simple", "extended", "codegen", "cost", "formatted"):
        df.explain(mode)
        texts.append(capsys.readouterr().out)
    return "\n".join(texts)


def _hmac(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------ plans
def test_hashing_keeps_the_key_out_of_every_plan(spark, capsys):
    rows = [("email", " Ann@Example.COM "), ("phone", "13812345678"), ("member_id", "M1")]
    landed = spark.createDataFrame(rows, "id_type string, id_value string")
    hashed = resolve_identifiers(landed, SETTINGS)
    before = plans(hashed, capsys)
    got = {r["id_type"]: r["id_key"] for r in hashed.collect()}
    after = plans(hashed, capsys)  # executed: the adaptive plan's final form as well

    assert got == {
        "email": _hmac(KEY, "ann@example.com"),
        "phone": _hmac(KEY, "+8613812345678"),
        "member_id": "M1",
    }
    assert privacy.INNER_PAD in before and "BroadcastNestedLoopJoin" in after
    for text in (before, after):
        assert [s for s in secrets(KEY) if s in text] == []
        assert "Ann@Example.COM" not in text  # the value is data too
    assert privacy.INNER_PAD not in hashed.columns


def test_a_literal_key_would_show_in_the_plan(spark, capsys):
    """The check above can see a leak: the pads as literals, as hashing used to do."""
    inner, _ = privacy.pads(KEY)
    leaky = spark.range(1).select(F.sha2(F.concat(F.lit(inner), F.lit(b"x")), 256))
    assert any(s in plans(leaky, capsys) for s in secrets(KEY))


def test_hash_values_matches_python_hmac(spark):
    out = privacy.hash_values(spark, [("email", "ann@example.com"), ("email", None)], KEY)
    assert sorted(out.collect(), key=lambda r: r["value"] or "") == [
        ("email", None, None),
        ("email", "ann@example.com", _hmac(KEY, "ann@example.com")),
    ]
    assert privacy.drop_key(privacy.with_key(spark.range(1), KEY)).columns == ["id"]


# ---------------------------------------------------------------- the key itself
def test_resolve_key_outside_local_requires_the_variable(monkeypatch):
    settings = PrivacyConfig(pii_key_env="MY_PII_KEY")
    monkeypatch.delenv("MY_PII_KEY", raising=False)
    with pytest.raises(ConfigError, match="environment variable MY_PII_KEY is not set") as err:
        privacy.resolve_key(settings, "cluster")
    assert err.value.exit_code == 2
    assert privacy.resolve_key(settings, "local") == privacy.DEVELOPMENT_KEY.encode()
    monkeypatch.setenv("MY_PII_KEY", "s3cret")
    assert privacy.resolve_key(settings, "cluster") == b"s3cret"
    monkeypatch.setenv("MY_OLD_KEY", "old")
    assert privacy.resolve_key(settings, "cluster", "MY_OLD_KEY") == b"old"


def test_fingerprint_is_a_fixed_public_hmac():
    assert privacy.fingerprint(KEY) == _hmac(KEY, "precis key fingerprint v1")
    assert privacy.fingerprint(KEY) != privacy.fingerprint(b"other")


def test_check_key_records_the_first_key_and_refuses_another(spark, tmp_path):
    lake = Lakehouse(spark, str(tmp_path / "lakehouse"))
    assert keys.stored(lake) is None
    assert keys.check_key(lake, KEY, "local") == privacy.fingerprint(KEY)
    row = lake.read(T.KEY_FINGERPRINT).collect()
    assert [(r["fingerprint"], r["env"]) for r in row] == [(privacy.fingerprint(KEY), "local")]
    assert keys.check_key(lake, KEY, "cluster") == privacy.fingerprint(KEY)  # same key: fine
    with pytest.raises(ConfigError) as err:
        keys.check_key(lake, b"another key", "local", "MY_PII_KEY")
    assert str(err.value) == (
        "the hashing key in $MY_PII_KEY is not the key this lakehouse was built with "
        f"(fingerprint {privacy.fingerprint(KEY)[:12]}… stored in meta/key_fingerprint); "
        "set the right key, or rotate with the rekey job (docs/privacy.md)"
    )
    assert err.value.exit_code == 2
    assert lake.read(T.KEY_FINGERPRINT).count() == 1


# -------------------------------------------------------------- real job runs
def _job(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    drop = ("PRECIS_ENV", "SPARK_MASTER", "SPARK_REMOTE", "PYSPARK_GATEWAY_PORT", "PRECIS_PII_KEY")
    clean = {k: v for k, v in os.environ.items() if k not in drop}
    root = tmp_path / "lakehouse"
    folder = root / "landing" / "id_observations"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part1.csv").write_text(OBSERVATIONS)
    command = [
        sys.executable,
        "-m",
        "precis",
        "ingest",
        "--run-date",
        "2026-01-31",
        "--set",
        f"storage.root={root}",
        "--set",
        "spark.master=local[1]",
        "--set",
        "mlflow.enabled=false",
        "--set",
        "landing.id_observations.format=csv",
        "--set",
        "ingest.datasets=[id_observations]",
        # Three rows: no shuffle or Delta log needs more than one partition.
        "--set",
        "spark.conf.spark.sql.shuffle.partitions=1",
        "--set",
        "spark.conf.spark.databricks.delta.snapshotPartitions=1",
        "--set",
        "spark.conf.spark.ui.enabled=false",
        *args,
    ]
    return subprocess.run(
        command, cwd=tmp_path, env={**clean, **env}, capture_output=True, text=True, timeout=600
    )


def test_ingest_event_log_holds_no_key(tmp_path):
    events = tmp_path / "events"
    events.mkdir()
    out = _job(
        tmp_path,
        "--set",
        "spark.conf.spark.eventLog.enabled=true",
        "--set",
        f"spark.conf.spark.eventLog.dir=file://{events}",
        "--set",
        "spark.conf.spark.eventLog.compress=false",
        PRECIS_PII_KEY=KEY.decode(),
    )
    assert out.returncode == 0, out.stderr
    logged = "\n".join(p.read_text(errors="replace") for p in events.rglob("*") if p.is_file())
    # The hashing plans were logged (so the check below looked at them)...
    assert "SparkListenerSQLExecutionStart" in logged and privacy.INNER_PAD in logged
    # ...and hold neither the key, nor its pads, nor the plain identifiers.
    assert [s for s in secrets(KEY) if s in logged] == []
    assert "Ann@Example.COM" not in logged and "ann@example.com" not in logged
    silver = tmp_path / "lakehouse" / "silver" / "id_observations"
    assert silver.is_dir()


def test_a_job_outside_local_without_the_key_exits_2_naming_the_variable(tmp_path):
    out = _job(tmp_path, "--env", "cluster", "--set", "storage.register_tables=false")
    assert out.returncode == 2, out.stderr
    assert "PRECIS_PII_KEY" in out.stderr
    assert "environment variable PRECIS_PII_KEY is not set" in out.stderr
    assert not (tmp_path / "lakehouse" / "silver").exists()
