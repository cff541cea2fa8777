"""Secrets never logged: the redaction rules, where they apply (MLflow, the spark-submit
command, error messages), and explain's person read from standard input or the
environment, never shown in plain."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from precis import privacy
from precis import tables as T
from precis.config import load_config
from precis.errors import ConfigError
from precis.redact import (
    MASK,
    is_secret_key,
    mask_identifier,
    redact_argv,
    redact_mapping,
    redact_text,
    redact_value,
)
from precis.runner import ENV_OVERRIDES, fail, parse_config
from precis.tracking import flatten, job_run, tracking_uri

PROJECT = Path(__file__).resolve().parents[1]
BASE = PROJECT / "conf" / "base.yaml"
SECRET = "S3CR3T-VALUE-123"
S3_SECRET = "spark.conf.spark.hadoop.fs.s3a.secret.key"
AZURE_KEY = "spark.conf.spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net"
RUN = dt.date(2026, 3, 31)


# ------------------------------------------------------------------------- the rules
@pytest.mark.parametrize(
    ("key", "secret"),
    [
        (S3_SECRET, True),
        ("spark.conf.spark.hadoop.fs.s3a.access.key", True),
        (AZURE_KEY, True),
        ("spark.conf.spark.hadoop.fs.azure.sas.token.provider.type", True),
        ("spark.conf.spark.hadoop.fs.azure.sas.mycontainer.acct.blob.core.windows.net", True),
        ("spark.conf.spark.hadoop.fs.azure.account.oauth2.client.secret", True),
        ("spark.conf.spark.hadoop.fs.gs.auth.service.account.private.key", True),
        ("spark.conf.spark.ssl.keyStorePassword", True),
        ("spark.conf.spark.authenticate.secret", True),
        ("spark.conf.spark.executorEnv.AWS_SECRET_ACCESS_KEY", True),
        ("spark.conf.spark.executorEnv.PRECIS_PII_KEY", True),  # a variable Spark sets
        ("jdbc.pwd", True),
        ("db.credentials.user", True),
        ("apiKey", True),
        ("sasToken", True),
        ("X-Amz-Signature", True),
        ("sig", True),
        ("key", True),
        # Our own keys that only look like it.
        ("privacy.pii_key_env", False),  # names a variable: the name is no secret
        ("privacy.previous_key_env", False),
        ("tags.explain.id_env", False),
        ("spark.conf.spark.executorEnv.PATH", False),
        ("id_key", False),
        ("recommend.registered_model_name", False),
        ("generate.signin_share", False),
        ("spark.conf.spark.hadoop.fs.s3a.endpoint", False),
        ("spark.conf.spark.hadoop.fs.azure.account.auth.type.acct.dfs.core.windows.net", False),
        ("spark.conf.spark.hadoop.google.cloud.auth.service.account.json.keyfile", False),
        ("storage.root", False),
        ("", False),
    ],
)
def test_secret_keys(key, secret):
    assert is_secret_key(key) is secret


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:p4ss@mlflow.example.com/api", "https://user:***@mlflow.example.com/api"),
        (
            "jdbc:postgresql://u:pw@db:5432/x?user=u&password=p",
            "jdbc:postgresql://u:***@db:5432/x?user=u&password=***",
        ),
        (
            "jdbc:sqlserver://db;databaseName=x;password=p;",
            "jdbc:sqlserver://db;databaseName=x;password=***;",
        ),
        ("sc://spark:15002/;token=abc123;user_id=me", "sc://spark:15002/;token=***;user_id=me"),
        (
            "https://acct.blob.core.windows.net/c/f.csv?sv=2022-11-02&sp=r&sig=AbC%2Fd%3D&se=2026",
            "https://acct.blob.core.windows.net/c/f.csv?sv=2022-11-02&sp=r&sig=***&se=2026",
        ),
        (
            "s3://b/k?X-Amz-Credential=AKIA/x&X-Amz-Signature=f00",
            "s3://b/k?X-Amz-Credential=***&X-Amz-Signature=***",
        ),
        (f"{S3_SECRET}={SECRET}", f"{S3_SECRET}=***"),
        (f"--set={S3_SECRET}={SECRET}", f"--set={S3_SECRET}=***"),
        ("host=db user=me password=hunter2 dbname=x", "host=db user=me password=*** dbname=x"),
        (
            "-Dfoo=bar -Djavax.net.ssl.trustStorePassword=x",
            "-Dfoo=bar -Djavax.net.ssl.trustStorePassword=***",
        ),
        ("{'password': 'x', 'id': 'p1'}", "{'password': '***', 'id': 'p1'}"),
        ('{"fs.s3a.secret.key": "x"}', '{"fs.s3a.secret.key": "***"}'),
        # Untouched: no password in the userinfo, a port, names that only look like it.
        (
            "abfss://container@acct.dfs.core.windows.net/lake",
            "abfss://container@acct.dfs.core.windows.net/lake",
        ),
        ("http://mlflow:5000", "http://mlflow:5000"),
        ("databricks://profile:prefix", "databricks://profile:prefix"),
        ("id_key=abc signin_share=0.9 password=", "id_key=abc signin_share=0.9 password="),
        ("privacy.pii_key_env=PRECIS_PII_KEY", "privacy.pii_key_env=PRECIS_PII_KEY"),
    ],
)
def test_secrets_in_text(text, shown):
    assert redact_text(text) == shown


def test_values_mappings_and_argv():
    assert redact_value(S3_SECRET, SECRET) == MASK
    assert redact_value(S3_SECRET, None) is None and redact_value(S3_SECRET, "") == ""  # unset
    assert redact_value("storage.root", "https://u:p@h/x") == "https://u:***@h/x"
    assert redact_value("db.password", 1234) == MASK
    assert redact_value("x", ["a", "sc://h/;token=t"]) == ["a", "sc://h/;token=***"]
    nested = {
        "spark": {"conf": {"spark.hadoop.fs.s3a.secret.key": SECRET, "spark.sql.x": "8"}},
        "db": {"credentials": {"user": "u", "password": "p"}},
        "privacy": {"pii_key_env": "PRECIS_PII_KEY"},
        "n": 3,
    }
    assert redact_mapping(nested) == {
        "spark": {"conf": {"spark.hadoop.fs.s3a.secret.key": MASK, "spark.sql.x": "8"}},
        "db": {"credentials": {"user": MASK, "password": MASK}},
        "privacy": {"pii_key_env": "PRECIS_PII_KEY"},
        "n": 3,
    }
    assert nested["spark"]["conf"]["spark.hadoop.fs.s3a.secret.key"] == SECRET  # a copy
    argv = ["spark-submit", "--conf", f"spark.hadoop.fs.s3a.secret.key={SECRET}", "x.py"]
    assert redact_argv(argv) == [*argv[:2], "spark.hadoop.fs.s3a.secret.key=***", "x.py"]


def test_masked_identifiers():
    assert mask_identifier("alice@example.com") == "a***@e***.com"
    assert mask_identifier("a@localhost") == "a***@***"
    assert mask_identifier("M53308738") == "M***"
    assert mask_identifier("7") == "***"


@pytest.mark.parametrize("profile", [[], ["demo.yaml"]])
@pytest.mark.parametrize("env", ["local", "cluster", "databricks"])
def test_our_own_configuration_is_not_redacted(profile, env):
    """Every key of every shipped configuration shows as it is: none looks secret."""
    cfg = load_config(profile, run_date="2026-03-31", env=env).to_dict()
    assert redact_mapping(cfg) == cfg
    # Only the secrets added are hidden.
    with_secrets = load_config(
        profile,
        [
            f"{S3_SECRET}={SECRET}",
            f"{AZURE_KEY}={SECRET}",
            "spark.conf.spark.sql.shuffle.partitions=3",
            f"mlflow.tracking_uri=https://me:{SECRET}@mlflow.example.com",
        ],
        env=env,
    ).to_dict()
    shown = flatten(redact_mapping(with_secrets))
    changed = {k for k, v in flatten(with_secrets).items() if shown[k] != v}
    assert changed == {S3_SECRET, AZURE_KEY, "mlflow.tracking_uri"}
    assert shown["mlflow.tracking_uri"] == "https://me:***@mlflow.example.com"
    assert shown["spark.conf.spark.sql.shuffle.partitions"] == "3"


# --------------------------------------------------------------------- where it applies
def test_mlflow_params_and_config_artifact_are_redacted(tmp_path):
    from mlflow.tracking import MlflowClient

    cfg = load_config(
        BASE,
        [
            f"storage.root={tmp_path / 'lakehouse'}",
            f"{S3_SECRET}={SECRET}",
            f"landing.orders.path=https://reader:{SECRET}@files.example.com/orders",
        ],
        run_date="2026-03-31",
    )
    with job_run(cfg, "unit", tags={"source": f"sc://h/;token={SECRET}"}) as run:
        run.log_params({"db.password": SECRET, "rank": 8})
        run.set_tags({"auth.token": SECRET})
        run.log_dict({"uri": f"https://u:{SECRET}@h", "n": 1}, "out.json")
        run.log_child("trial", {"api_key": SECRET}, {"m": 1.0})
        run_id = run.run_id
    client = MlflowClient(tracking_uri(cfg))
    logged = client.get_run(run_id)
    params, tags = logged.data.params, logged.data.tags
    assert params[S3_SECRET] == MASK and params["db.password"] == MASK and params["rank"] == "8"
    assert params["landing.orders.path"] == "https://reader:***@files.example.com/orders"
    assert tags["auth.token"] == MASK and tags["source"] == "sc://h/;token=***"
    assert tags["precis.config_hash"] == cfg.config_hash()  # of the real configuration
    config = yaml.safe_load(
        Path(client.download_artifacts(run_id, "config.yaml", str(tmp_path / "a"))).read_text()
    )
    assert config == redact_mapping(cfg.to_dict())
    assert config["spark"]["conf"]["spark.hadoop.fs.s3a.secret.key"] == MASK
    out = json.loads(
        Path(client.download_artifacts(run_id, "out.json", str(tmp_path / "b"))).read_text()
    )
    assert out == {"uri": "https://u:***@h", "n": 1}
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert {r.info.run_name: r.data.params for r in runs}["trial"] == {"api_key": MASK}
    assert SECRET not in "".join(_files_text(tmp_path / "mlflow"))


def _files_text(folder: Path) -> list[str]:
    """Every file under ``folder`` as text (the SQLite store and the artifacts)."""
    return [
        p.read_bytes().decode("utf-8", errors="replace") for p in folder.rglob("*") if p.is_file()
    ]


def test_overrides_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_OVERRIDES, json.dumps([f"{S3_SECRET}={SECRET}", "spark.master=x"]))
    cfg = parse_config("selfcheck", ["--set", "spark.master=local[1]"])
    assert cfg.spark.conf["spark.hadoop.fs.s3a.secret.key"] == SECRET
    assert cfg.spark.master == "local[1]"  # the command line comes after the environment
    monkeypatch.setenv(ENV_OVERRIDES, f'{{"{S3_SECRET}": "{SECRET}"}}')
    with pytest.raises(ConfigError, match="must be a JSON list") as err:
        parse_config("selfcheck", [])
    assert SECRET not in str(err.value)


def test_error_messages_are_redacted(monkeypatch, capsys):
    monkeypatch.setenv("PRECIS_DEBUG", "1")
    try:
        raise RuntimeError(f"cannot reach https://me:{SECRET}@mlflow.example.com")
    except RuntimeError as exc:
        assert fail("unit", exc) == 1
    err = capsys.readouterr().err
    assert SECRET not in err and "Traceback" in err
    assert "precis unit: error: RuntimeError: cannot reach https://me:***@mlflow" in err


# ------------------------------------------------------------------------ spark-submit
@pytest.fixture
def submitted(monkeypatch, tmp_path):
    """submit.main without exec: the commands it would run, in a private work dir."""
    from precis import submit

    calls: list[list[str]] = []
    monkeypatch.setenv("SPARK_SUBMIT", "/opt/spark/bin/spark-submit")
    monkeypatch.setattr(submit.os, "execv", lambda path, cmd: calls.append(cmd))
    monkeypatch.setattr(submit.tempfile, "mkdtemp", lambda prefix: str(tmp_path))
    for var in (ENV_OVERRIDES, submit.EXPLAIN_PERSON_ENV):  # restored after the test
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    return submit, calls


def test_submit_keeps_secrets_out_of_the_command_line(submitted, tmp_path, monkeypatch, capsys):
    submit, calls = submitted
    monkeypatch.setenv("PRECIS_DEBUG", "1")
    argv = [
        "--set",
        f"storage.root={tmp_path}",
        "--set",
        f"{S3_SECRET}=first",
        f"--set={S3_SECRET}={SECRET}",  # the last one wins, and stays last
        "--set",
        "spark.conf.spark.sql.shuffle.partitions=2",
        "--set",
        f"landing.orders.path=https://reader:{SECRET}@files.example.com/o",
    ]
    options = ["--conf", f"spark.hadoop.fs.azure.account.key.a.dfs.core.windows.net={SECRET}"]
    expected = parse_config("selfcheck", argv)
    assert submit.main([*options, "selfcheck", *argv]) == 0
    cmd = calls[-1]
    assert not any(SECRET in a or "=first" in a for a in cmd)
    main_file = cmd.index(str(PROJECT / "jobs" / "selfcheck.py"))
    assert cmd[main_file + 1 :] == [
        "--set",
        f"storage.root={tmp_path}",
        "--set",
        "spark.conf.spark.sql.shuffle.partitions=2",
    ]
    # The job gets them from the environment, in their order.
    assert json.loads(os.environ[ENV_OVERRIDES]) == [
        f"{S3_SECRET}=first",
        f"{S3_SECRET}={SECRET}",
        f"landing.orders.path=https://reader:{SECRET}@files.example.com/o",
    ]
    assert parse_config("selfcheck", cmd[main_file + 1 :]) == expected  # what the job sees
    # spark-submit gets the Spark ones in a properties file only the user can read.
    props = Path(cmd[cmd.index("--properties-file") + 1])
    assert props.parent == tmp_path and stat.S_IMODE(props.stat().st_mode) == 0o600
    assert props.read_text().splitlines() == [
        f"spark.hadoop.fs.azure.account.key.a.dfs.core.windows.net={SECRET}",
        f"spark.hadoop.fs.s3a.secret.key={SECRET}",
    ]
    assert "--load-spark-defaults" in cmd[:main_file]  # as without a properties file
    assert "spark.sql.shuffle.partitions=2" in cmd
    # PRECIS_DEBUG shows the command, redacted.
    shown = capsys.readouterr().err
    assert "--properties-file" in shown and SECRET not in shown


def test_submit_merges_a_given_properties_file(submitted, tmp_path):
    submit, calls = submitted
    mine = tmp_path / "mine.properties"
    mine.write_text("spark.eventLog.enabled=true\n")
    argv = ["--set", f"storage.root={tmp_path}", "--set", f"{S3_SECRET}=a b\\c=d"]
    assert submit.main(["--properties-file", str(mine), "selfcheck", *argv]) == 0
    cmd = calls[-1]
    assert cmd.count("--properties-file") == 1 and "--load-spark-defaults" not in cmd
    props = Path(cmd[cmd.index("--properties-file") + 1])
    assert props.read_text().splitlines() == [
        "spark.eventLog.enabled=true",
        "",
        "spark.hadoop.fs.s3a.secret.key=a b\\\\c=d",  # read back as a b\c=d
    ]


def test_submit_in_cluster_mode_warns_and_keeps_the_arguments(submitted, tmp_path, capsys):
    submit, calls = submitted
    argv = ["--set", f"storage.root={tmp_path}", "--set", f"{S3_SECRET}={SECRET}"]
    assert submit.main(["--deploy-mode", "cluster", "selfcheck", *argv]) == 0
    cmd = calls[-1]
    assert cmd[-2:] == ["--set", f"{S3_SECRET}={SECRET}"]  # the driver runs elsewhere
    assert not any(a.startswith("spark.hadoop.fs.s3a.secret.key") for a in cmd)  # a file
    err = capsys.readouterr().err
    assert f"warning: --set of {S3_SECRET} puts a secret" in err and SECRET not in err
    assert ENV_OVERRIDES not in os.environ


def test_split_secret_overrides():
    from precis.submit import split_secret_overrides

    argv = [
        "--config",
        "a.yaml",
        "--set",
        "x.password=1",
        "--set=storage.root=/l",
        "--set",
        "x.password=2",
    ]
    assert split_secret_overrides(argv) == (
        ["--config", "a.yaml", "--set=storage.root=/l"],
        ["x.password=1", "x.password=2"],
    )
    # A key goes as a whole when any of its values is secret: the last --set still wins.
    argv = ["--set", "storage.root=/l", "--set", "storage.root=https://u:p@h/l"]
    assert split_secret_overrides(argv) == ([], ["storage.root=/l", "storage.root=https://u:p@h/l"])


@pytest.mark.slow
def test_secret_nowhere_after_a_real_job(tmp_path):
    """selfcheck through spark-submit.sh with secrets set: not in its output, not in any
    MLflow param, tag or artifact, not in the MLflow store's files."""
    from mlflow.tracking import MlflowClient

    root = tmp_path / "lakehouse"
    argv = [
        "--set",
        f"storage.root={root}",
        "--set",
        f"{S3_SECRET}={SECRET}",
        "--set",
        f"{AZURE_KEY}={SECRET}",
        "--set",
        f"spark.conf.spark.hadoop.fs.azure.sas.token={SECRET}",
        "--set",
        f"landing.orders.path=https://reader:{SECRET}@files.example.com/orders",
        "--run-date",
        "2026-03-31",
    ]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PRECIS_ENV", "SPARK_MASTER", "PYSPARK_GATEWAY_PORT", ENV_OVERRIDES)
    }
    out = subprocess.run(
        [str(PROJECT / "spark-submit.sh"), "selfcheck", *argv],
        cwd=PROJECT,
        env={**env, "PRECIS_DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "--properties-file" in out.stderr  # the command, printed redacted
    assert SECRET not in out.stdout + out.stderr

    cfg = load_config(BASE, [f"storage.root={root}"])
    client = MlflowClient(tracking_uri(cfg))
    experiment = client.get_experiment_by_name("precis-selfcheck")
    (run,) = client.search_runs([experiment.experiment_id])
    params = run.data.params
    # The job had the secrets (through the environment), and logged them masked.
    assert params[S3_SECRET] == params[AZURE_KEY] == MASK
    assert params["landing.orders.path"] == "https://reader:***@files.example.com/orders"
    seen = [*params.values(), *run.data.tags.values()]
    pending = [a.path for a in client.list_artifacts(run.info.run_id)]
    while pending:
        path = pending.pop()
        children = client.list_artifacts(run.info.run_id, path)
        if children:
            pending += [c.path for c in children]
            continue
        local = client.download_artifacts(run.info.run_id, path, str(tmp_path / "download"))
        seen.append(Path(local).read_text(errors="replace"))
    assert "config.yaml" in [a.path for a in client.list_artifacts(run.info.run_id)]
    assert not [s for s in seen if SECRET in s]
    assert not [t for t in _files_text(root.parent / "mlflow") if SECRET in t]


# ------------------------------------------------------------------------------ explain
def test_explain_identifier_never_in_the_configuration():
    for person in ("email:alice@example.com", "alice@example.com", "phone:+8613800138000"):
        with pytest.raises(ConfigError, match="never from the command line") as err:
            load_config(BASE, [f"tags.explain.id={person}", "tags.explain.tag=spend_365d"])
        assert person not in str(err.value) and "alice" not in str(err.value)
    with pytest.raises(ConfigError, match="from id or from id_env, not both"):
        load_config(BASE, ["tags.explain.id=-", "tags.explain.id_env=WHO", "tags.explain.tag=t"])
    with pytest.raises(ConfigError, match="needs both id and tag"):
        load_config(BASE, ["tags.explain.id_env=WHO"])
    with pytest.raises(ConfigError, match="name of an environment variable"):
        load_config(BASE, ["tags.explain.id_env=$WHO", "tags.explain.tag=t"])
    ok = load_config(BASE, ["tags.explain.id_env=WHO", "tags.explain.tag=t"]).tags.explain
    assert (ok.id, ok.id_env) == (None, "WHO")
    assert load_config(BASE, ["tags.explain.id=p9a28f9", "tags.explain.tag=t"]).tags.explain.id


def test_read_person(monkeypatch):
    from precis.tags.explain import read_person
    from precis.tags.settings import TagsExplainConfig

    from_env = TagsExplainConfig(id_env="WHO", tag="t")
    assert read_person(from_env, environ={"WHO": " email:alice@example.com\n"}) == (
        "email:alice@example.com"
    )
    with pytest.raises(ConfigError, match="WHO is not set"):
        read_person(from_env, environ={})
    from_stdin = TagsExplainConfig(id="-", tag="t")
    assert read_person(from_stdin, stdin=io.StringIO("member_id:M1\nrest\n")) == "member_id:M1"
    with pytest.raises(ConfigError, match="held no person"):
        read_person(from_stdin, stdin=io.StringIO(""))
    assert read_person(TagsExplainConfig(id="p1", tag="t")) == "p1"
    # spark-submit gives its Python driver no standard input: reading would hang.
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "1")
    with pytest.raises(ConfigError, match="has no standard input"):
        read_person(from_stdin, stdin=io.StringIO("member_id:M1\n"))


def test_submit_reads_the_person_from_stdin(submitted, tmp_path, monkeypatch):
    submit, calls = submitted
    monkeypatch.setattr(sys, "stdin", io.StringIO("email:alice@example.com\n"))
    argv = ["--set", f"storage.root={tmp_path}", "--set", "tags.explain.id=-"]
    assert submit.main(["tags", *argv, "--set", "tags.explain.tag=spend_365d"]) == 0
    cmd = calls[-1]
    assert not any("alice" in a for a in cmd)
    assert cmd[-4:] == [
        "--set",
        "tags.explain.id=null",
        "--set",
        f"tags.explain.id_env={submit.EXPLAIN_PERSON_ENV}",
    ]
    assert os.environ[submit.EXPLAIN_PERSON_ENV] == "email:alice@example.com"
    job_args = cmd[cmd.index(str(PROJECT / "jobs" / "tags.py")) + 1 :]
    explain = parse_config("tags", job_args).tags.explain  # what the job will see
    assert (explain.id, explain.id_env) == (None, submit.EXPLAIN_PERSON_ENV)
    # A driver in the cluster would not see this machine's environment.
    assert (
        submit.main(["--deploy-mode", "cluster", "tags", *argv, "--set", "tags.explain.tag=t"]) == 2
    )


@pytest.fixture(scope="module")
def person_lake(spark, tmp_path_factory):
    """One person with an email, a member id and three orders (one refunded)."""
    from pyspark.sql import functions as F

    from precis.ingest import identifiers as ids
    from precis.storage import Lakehouse

    base = tmp_path_factory.mktemp("explain")
    shipped = yaml.safe_load((PROJECT / "conf" / "tags.yaml").read_text())["tags"]
    (base / "tags.yaml").write_text(yaml.safe_dump({"tags": {"spend_365d": shipped["spend_365d"]}}))
    settings = [
        f"storage.root={base / 'lakehouse'}",
        "mlflow.enabled=false",
        f"tags.definitions={base / 'tags.yaml'}",
        "tags.segments=null",
    ]
    cfg = load_config(BASE, settings, run_date=RUN.isoformat())
    lake = Lakehouse.from_config(spark, cfg)
    email = spark.createDataFrame([("Alice@Example.com ",)], "v string").select(
        ids.normalize(F.col("v"), "email", "86").alias("v")
    )
    key = privacy.resolve_key(cfg.privacy, cfg.env)
    hashed = privacy.hash_values(spark, email, key, value="v").first()["hashed"]
    lake.overwrite(
        spark.createDataFrame(
            [("email", hashed, "p1"), ("member_id", "M1", "p1"), ("member_id", "M2", "p2")],
            "id_type string, id_key string, one_id string",
        ),
        T.IDENTITY_MAP,
    )
    at = dt.datetime.combine(RUN, dt.time(12))
    orders = [("o1", at, 600.0, "paid"), ("o2", at, 700.0, "paid"), ("o3", at, 900.0, "refunded")]
    lake.overwrite(
        spark.createDataFrame(
            [(o, t, "member_id", "M1", "ok", a, "CNY", "web", s) for o, t, a, s in orders],
            "order_id string, order_time timestamp, id_type string, id_key string, "
            "id_status string, amount double, currency string, channel string, status string",
        ),
        T.ORDERS,
    )
    return settings


def _explain(spark, settings, person):
    """The tags job explaining spend_365d, configured as from a command line."""
    from precis.jobs import tags as tags_job

    cfg = load_config(
        BASE, [*settings, *person, "tags.explain.tag=spend_365d"], run_date=RUN.isoformat()
    )
    return tags_job.run(spark, cfg)


def test_explain_from_the_environment_never_prints_the_email(
    spark, person_lake, monkeypatch, capsys
):
    monkeypatch.setenv("WHO", "email:Alice@Example.com")
    out = _explain(spark, person_lake, ["tags.explain.id_env=WHO"])
    printed = capsys.readouterr()
    assert out["one_id"] == "p1" and out["value"] == 1300.0 and out["stored"] is None
    assert sorted(r["order_id"] for r in out["inputs"]) == ["o1", "o2"]
    assert "person p1 (from email:<keyed hash " in printed.out
    everything = (printed.out + printed.err + repr(out)).lower()
    assert "alice" not in everything and "example.com" not in everything


def test_explain_from_stdin_masks_other_identifiers(spark, person_lake, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("member_id:M1\n"))
    out = _explain(spark, person_lake, ["tags.explain.id=-"])
    printed = capsys.readouterr().out
    assert out["one_id"] == "p1" and "person p1 (from member_id:M***)" in printed
    assert "M1" not in printed
    # Someone unknown: the message says so without the value.
    for given in ("email:bob@example.com", "bob@example.com"):
        monkeypatch.setenv("WHO", given)
        with pytest.raises(ConfigError) as err:
            _explain(spark, person_lake, ["tags.explain.id_env=WHO"])
        assert "bob" not in str(err.value)
    assert "not a one_id" in str(err.value)
