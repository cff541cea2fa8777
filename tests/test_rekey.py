"""Key rotation: the rekey job rewrites every keyed hash under the new key, keeps one_ids,
reports what it cannot translate, and can be rerun; ingest then goes on with the new key."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from precis import keys, privacy, rekey
from precis import tables as T
from precis.config import load_config
from precis.errors import ConfigError
from precis.jobs import identity, ingest
from precis.jobs import rekey as rekey_job
from precis.storage import Lakehouse

PROJECT = Path(__file__).resolve().parents[1]
OLD, NEW = b"old-key-0123", b"new-key-4567"
HEADER = "source,record_id,id_type,id_value,observed_at\n"
# Ann: member, email, phone; Bob: member, email; an invalid email; Eve's row has no
# valid time (quarantined).
KEPT = HEADER + (
    "crm,r1,member_id,M1,2026-01-01T10:00:00Z\n"
    "crm,r1,email, Ann@Example.COM ,2026-01-01T10:00:00Z\n"
    "crm,r1,phone,+86 138-1234-5678,2026-01-01T10:00:00Z\n"
    "pos,r2,member_id,M2,2026-01-02T10:00:00Z\n"
    "pos,r2,email,bob@example.com,2026-01-02T10:00:00Z\n"
    "pos,r4,email,not-an-email,2026-01-02T10:00:00Z\n"
    "pos,r5,email,eve@example.com,yesterday\n"
)
# Carol's file is gone from landing before the rotation: her email cannot be translated.
GONE = HEADER + (
    "web,r3,member_id,M3,2026-01-03T10:00:00Z\nweb,r3,email,carol@example.com,2026-01-03T10:00:00Z\n"
)
# After the rotation: Ann's email again, with a new phone.
LATER = HEADER + (
    "app,r9,email,ANN@example.com,2026-02-01T10:00:00Z\n"
    "app,r9,phone,13900001111,2026-02-01T10:00:00Z\n"
)
PLAIN = {
    ("email", "ann@example.com"),
    ("phone", "+8613812345678"),
    ("email", "bob@example.com"),
}


def h(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def _config(root: Path, run_date: str):
    return load_config(
        PROJECT / "conf" / "base.yaml",
        [
            f"storage.root={root}",
            "mlflow.enabled=false",
            "landing.id_observations.format=csv",
            "ingest.datasets=[id_observations]",
        ],
        run_date=run_date,
    )


def _land(root: Path, name: str, text: str) -> Path:
    folder = root / "landing" / "id_observations"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def _map(lake: Lakehouse) -> dict[tuple[str, str], str]:
    return {(r["id_type"], r["id_key"]): r["one_id"] for r in lake.read(T.IDENTITY_MAP).collect()}


@pytest.fixture(scope="module")
def rotated(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("rekey") / "lakehouse"
    lake = Lakehouse(spark, str(root))
    out = {"lake": lake, "root": root}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRECIS_PII_KEY", OLD.decode())
        _land(root, "a.csv", KEPT)
        gone = _land(root, "b.csv", GONE)
        ingest.run(spark, _config(root, "2026-01-31"))
        identity.run(spark, _config(root, "2026-01-31"))
        out["before"] = _map(lake)
        gone.unlink()
        # Forgotten: Bob (translatable, no key marked) and Dave (never landed here).
        at = dt.datetime(2026, 1, 20)
        suppressed = [
            ("q1", "email", h(OLD, "bob@example.com"), at, None),
            ("q2", "email", h(OLD, "dave@example.com"), at, privacy.fingerprint(OLD)),
        ]
        schema = "request_key string, id_type string, id_key string, requested_at timestamp, key_fingerprint string"
        lake.overwrite(spark.createDataFrame(suppressed, schema), T.SUPPRESSIONS)

        mp.setenv("PRECIS_PII_KEY", NEW.decode())
        mp.setenv("PRECIS_PII_KEY_PREVIOUS", OLD.decode())
        out["result"] = rekey_job.run(spark, _config(root, "2026-01-31"))
        out["after"] = _map(lake)
        out["state_rows"] = lake.read(T.IDENTITY_STATE).count()
        out["rerun"] = rekey_job.run(spark, _config(root, "2026-01-31"))

        mp.delenv("PRECIS_PII_KEY_PREVIOUS")
        _land(root, "c.csv", LATER)
        ingest.run(spark, _config(root, "2026-02-01"))
        identity.run(spark, _config(root, "2026-02-01"))
        out["later"] = _map(lake)

        mp.setenv("PRECIS_PII_KEY", OLD.decode())
        with pytest.raises(ConfigError) as err:
            ingest.run(spark, _config(root, "2026-02-02"))
        out["old_key_error"] = str(err.value)
    return out


def test_every_keyed_hash_is_under_the_new_key_and_one_ids_stay(rotated):
    carol = ("email", h(OLD, "carol@example.com"))  # no plain value left: kept, reported
    translate = {(t, h(OLD, v)): h(NEW, v) for t, v in PLAIN}
    expected = {
        (t, translate.get((t, k), k)): one_id for (t, k), one_id in rotated["before"].items()
    }
    assert rotated["after"] == expected
    assert {(t, h(NEW, v)) for t, v in PLAIN} | {carol} == {
        k for k in rotated["after"] if k[0] in ("email", "phone")
    }

    lake = rotated["lake"]
    silver = {(r["id_type"], r["id_key"]) for r in lake.read(T.ID_OBSERVATIONS).collect()}
    later = ("phone", h(NEW, "+8613900001111"))  # ingested after the rotation
    assert {k for k in silver if k[0] in ("email", "phone") and k[1]} == {
        (t, h(NEW, v)) for t, v in PLAIN
    } | {carol, later}
    assert keys.stored(lake) == privacy.fingerprint(NEW)
    assert rotated["state_rows"] == 0  # the next identity run reclusters in full


def test_the_job_reports_translated_and_left_rows(rotated):
    tables = rotated["result"]["tables"]
    assert rotated["result"]["mode"] == "rotate"
    assert tables["silver/id_observations"] == {"id_key": {"translated": 3, "untranslated": 1}}
    assert tables["gold/identity_map"] == {"id_key": {"translated": 3, "untranslated": 1}}
    assert tables["meta/suppressions"] == {"id_key": {"translated": 1, "untranslated": 1}}
    # A rerun finds nothing left to translate.
    assert rotated["rerun"]["mode"] == "finish"
    assert all(
        counts["translated"] == 0
        for columns in rotated["rerun"]["tables"].values()
        for counts in columns.values()
    )


def test_no_old_key_hash_of_a_landed_value_remains(rotated, spark):
    lake = rotated["lake"]
    values = [v for _, v in PLAIN] + ["not-an-email", "eve@example.com"]
    old = {h(OLD, v) for v in values}
    for table in (T.BRONZE["id_observations"], T.QUARANTINE, T.ID_OBSERVATIONS, T.IDENTITY_MAP):
        df = lake.read(table)
        text = df.select(F.to_json(F.struct(*df.columns)).alias("row")).collect()
        found = [o for o in old if any(o in r["row"] for r in text)]
        assert found == [], f"{table.ref} keeps old-key hashes"
    quarantined = [r["raw"] for r in lake.read(T.QUARANTINE).collect()]
    assert len(quarantined) == 1 and h(NEW, "eve@example.com") in quarantined[0]


def test_suppressions_say_which_key_hashed_them(rotated):
    rows = {
        r["request_key"]: (r["id_key"], r["key_fingerprint"])
        for r in rotated["lake"].read(T.SUPPRESSIONS).collect()
    }
    assert rows == {
        "q1": (h(NEW, "bob@example.com"), privacy.fingerprint(NEW)),
        "q2": (h(OLD, "dave@example.com"), privacy.fingerprint(OLD)),
    }


def test_ingest_with_the_new_key_finds_the_same_person(rotated):
    before, later = rotated["after"], rotated["later"]
    ann = before[("email", h(NEW, "ann@example.com"))]
    assert later[("phone", h(NEW, "+8613900001111"))] == ann
    assert set(later.values()) == set(before.values())  # nobody new


def test_ingest_with_the_old_key_is_refused(rotated):
    assert rotated["old_key_error"].startswith(
        "the hashing key in $PRECIS_PII_KEY is not the key this lakehouse was built with "
        f"(fingerprint {privacy.fingerprint(NEW)[:12]}…"
    )


def test_rotation_checks_the_keys_before_writing():
    fp_old = privacy.fingerprint(OLD)
    args = ("PREV", "CUR")
    assert rekey.check_rotation(fp_old, OLD, NEW, *args) == "rotate"
    assert rekey.check_rotation(privacy.fingerprint(NEW), OLD, NEW, *args) == "finish"
    with pytest.raises(ConfigError, match=r"\$PREV and \$CUR hold the same key"):
        rekey.check_rotation(fp_old, OLD, OLD, *args)
    with pytest.raises(ConfigError, match="no key fingerprint yet: run the ingest job once"):
        rekey.check_rotation(None, OLD, NEW, *args)
    with pytest.raises(ConfigError, match=rf"key in \$PREV is not .* \(fingerprint {fp_old[:12]}"):
        rekey.check_rotation(fp_old, b"wrong", NEW, *args)


def test_slots_find_every_column_that_holds_hashes():
    got = {
        tuple(c for c, _ in s.sets)
        for s in rekey.slots(
            ["id_type", "id_key", "other_type", "other_key", "key_fingerprint"], "f"
        )
    }
    assert got == {("id_key", "key_fingerprint"), ("other_key", "key_fingerprint")}
    bronze = rekey.slots(["source", "id_type", "id_value", "_id_key", "_row_hash"])
    assert [s.sets[0][0] for s in bronze] == ["_id_key", "id_value"]
    quarantine = rekey.slots(["dataset", "reason", "raw", "_id_key"])
    assert [c for c, _ in quarantine[0].sets] == ["raw", "_id_key"]
    assert rekey.slots(["one_id", "tag", "value"]) == []
