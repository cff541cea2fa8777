"""Config SQL (tag expressions, segment conditions, attribution filter and revenue) is
checked against an allow-list before Spark starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from precis.config import load_config
from precis.errors import ConfigError
from precis.jobs import tags as tags_job
from precis.sqlcheck import ALLOWED_FUNCTIONS, check_expression
from precis.tags import definitions
from precis.tags.definitions import build_segments, build_tags

PROJECT = Path(__file__).resolve().parents[1]
GETENV = "java_method('java.lang.System', 'getenv', 'PRECIS_PII_KEY')"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("reflect('java.lang.System', 'getenv', 'HOME')", "function 'reflect'"),
        (f"coalesce({GETENV}, '')", "function 'java_method'"),
        ("try_reflect('java.lang.System', 'getenv', 'HOME')", "function 'try_reflect'"),
        ("JAVA_METHOD('java.lang.System', 'getenv', 'HOME')", "function 'JAVA_METHOD'"),
        ("`java_method`('java.lang.System', 'getenv', 'HOME')", "function 'java_method'"),
        ('"reflect"(1)', "function 'reflect'"),
        ("my_udf(spend) > 1", "function 'my_udf'"),
        ("rand() < 0.5", "function 'rand'"),
        ("spend > (select max(amount) from silver.orders)", "'select'"),
        ("spend in (select amount from orders)", "'select'"),
        ("exists (select 1)", "'exists'"),
        ("TABLE(orders)", "'TABLE'"),
        ("x from orders", "'from'"),
        ("range(10)", "function 'range'"),
        ("size(read_files('/etc'))", "function 'read_files'"),
        ("default.f(spend)", "qualified function call 'default.f('"),
        ("system.builtin.reflect('a', 'b')", "qualified function call 'system.builtin.reflect('"),
        ("spend > 1; drop table x", "';'"),
        ("spend > 1 /* java_method */", "comments"),
        ("spend > 1 -- note", "comments"),
        ("'${env:PRECIS_PII_KEY}' = city", "'${'"),
        ("r'\\' , java_method('a', 'b') , '' = city", "a backslash before '"),
        ("days_since < current_date", "'current_date'"),
        ("sum(spend) over ()", "window functions (OVER)"),
        ("spend > :limit", "parameter markers"),
        ("spend > ?", "parameter markers"),
        ("spend > 'open", "unterminated string"),
    ],
)
def test_forbidden_sql_is_rejected_naming_setting_and_construct(text, named):
    with pytest.raises(ValueError, match=None) as err:
        check_expression(text, "tags.vip.expr")
    message = str(err.value)
    assert message.startswith("tags.vip.expr: ")
    assert named in message
    assert "not allowed in config SQL" in message or "unterminated" in message


@pytest.mark.parametrize(
    "text",
    [
        # Quoted text is data, whatever it looks like.
        "city = 'java_method(' or city = \"reflect(\" or city like '%select * from%'",
        "city in ('--', '/* x */', ';', ':p', '?')",
        "`select` + `my tag` > 1",  # backquoted names are columns
        "spend is not distinct from clv and spend is distinct from 0",
        "cast(spend as decimal(10, 2)) > 1.5e2 and spend::int >= .5",
        "case when spend between 1 and 10 then 'low' else upper(city) end = 'LOW'",
        "not (a or b) and c in (1, 2) and city rlike '^sh' and city not like 'x%'",
        "date_add(to_date(signup_time), 30) <= date '2026-03-31' + interval 1 day",
        "array_contains(array('a', 'b'), city) and element_at(array(1, 2), 1) = 1",
        "greatest(coalesce(a, 0), least(b, 2)) / nullif(abs(round(c, 2)), 0)",
        "regexp_extract(city, '(\\\\d+)', 1) = '1'",  # an escaped backslash, not a quote
    ],
)
def test_scalar_expressions_are_accepted(text):
    check_expression(text, "tags.x.expr")


def _in_use() -> list[tuple[str, str]]:
    """Every config SQL string shipped, documented or exercised by the suite today."""
    conf = PROJECT / "conf"
    tags = yaml.safe_load((conf / "tags.yaml").read_text())["tags"]
    segs = yaml.safe_load((conf / "segments.yaml").read_text())["segments"]
    shipped = [
        *((f"tags.{n}.expr", t["expr"]) for n, t in tags.items() if t["template"] == "expression"),
        *((f"segments.{n}.where", s["where"]) for n, s in segs.items()),
    ]
    assert len(shipped) == 7  # two expression tags and five segments ship
    others = [
        "spend_365d / nullif(order_count_365d, 0)",  # templates.py
        "spend / nullif(orders, 0)",  # tests/test_tags.py
        "aov >= 10 and not coalesce(vip, false)",
        "spend >= 10 and aov_band in ('high') and not vip",
        "spend >= 100 or stage in ('new')",
        "not (spend >= 100) and stage <> 'churned'",
        "coalesce(n, 0) > 1",
        "n in (1, 2) and not good",
        "web_30d / orders_all",  # tests/test_tags_one_pass.py
        "coalesce(share_band, '') = 'high' or coalesce(consent, false)",
        "amount * 0.25",  # tests/test_attribution.py
        "amount >= 20",
        "amount * 0.3",  # docs/attribution.md
        "amount",
    ]
    return shipped + [("example", text) for text in others]


def test_every_expression_in_use_is_accepted():
    for setting, text in _in_use():
        check_expression(text, setting)


def test_shipped_definitions_load(cfg):
    tags, segs = definitions.from_settings(cfg.tags)
    assert [t.name for t in tags.by_template("expression")] == ["high_value", "cart_per_view_30d"]
    assert len(segs) == 5


def test_tag_and_segment_definitions_name_file_and_key():
    with pytest.raises(ConfigError) as err:
        build_tags(
            {
                "spend": {"template": "sum", "dataset": "orders", "field": "amount"},
                "vip": {"template": "expression", "expr": f"{GETENV} > spend", "type": "boolean"},
            },
            source="my/tags.yaml",
        )
    assert str(err.value) == (
        "my/tags.yaml: tags.vip.expr: function 'java_method' is not allowed in config SQL: "
        "it calls Java methods (allowed: docs/privacy.md, 'SQL in configuration')"
    )
    ts = build_tags({"spend": {"template": "sum", "dataset": "orders", "field": "amount"}})
    with pytest.raises(ConfigError) as err:
        build_segments({"rich": {"where": "spend > (select 1)"}}, ts, source="my/segments.yaml")
    assert str(err.value).startswith("my/segments.yaml: segments.rich.where: 'select' is not")


def test_attribution_sql_is_checked_when_the_config_loads():
    with pytest.raises(ConfigError) as err:
        load_config(overrides=[f"attribution.conversion_filter={GETENV} is not null"])
    message = str(err.value)
    assert "config key 'attribution.conversion_filter'" in message
    assert "function 'java_method' is not allowed in config SQL" in message
    with pytest.raises(ConfigError, match=r"'attribution\.revenue'.*function 'rand'"):
        load_config(overrides=["attribution.revenue=amount * rand()"])
    cfg = load_config(
        overrides=[
            "attribution.conversion_filter=lower(status) = 'paid' and amount >= 20",
            "attribution.revenue=amount * 0.3",
        ]
    )
    assert cfg.attribution.conversion_filter == "lower(status) = 'paid' and amount >= 20"
    assert cfg.attribution.revenue == "amount * 0.3"


def test_storage_names_pasted_into_sql_cannot_substitute_or_unquote(tmp_path):
    with pytest.raises(ConfigError, match=r"config key 'storage\.root': Value error, '\$\{'"):
        load_config(overrides=["storage.root=/lake/${env:PRECIS_PII_KEY}"])
    with pytest.raises(ConfigError, match=r"'storage\.database_prefix': Value error, ` is not"):
        load_config(overrides=["storage.database_prefix=x`.t; --"])
    cfg = load_config(overrides=[f"storage.root={tmp_path}/it's", "storage.database_prefix=p_"])
    assert (cfg.storage.root, cfg.storage.database_prefix) == (f"{tmp_path}/it's", "p_")


def test_tags_job_exits_2_naming_the_setting_before_spark(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("precis.session.get_spark", lambda cfg: pytest.fail("Spark must not start"))
    bad = tmp_path / "tags.yaml"
    bad.write_text(
        "tags:\n"
        "  spend: {template: sum, dataset: orders, field: amount}\n"
        f'  vip: {{template: expression, type: string, expr: "{GETENV}"}}\n'
    )
    code = tags_job.main(["--set", f"tags.definitions={bad}", "--set", "tags.segments=null"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        (
            f"precis tags: error: {bad}: tags.vip.expr: function 'java_method' is not allowed "
            "in config SQL: it calls Java methods (allowed: docs/privacy.md, 'SQL in configuration')"
        )
    ]


def test_attribution_job_process_exits_2_naming_the_setting(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "precis",
            "attribution",
            "--set",
            f"storage.root={tmp_path}",
            "--set",
            f"attribution.revenue={GETENV}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("precis attribution: error: invalid config")
    assert "config key 'attribution.revenue': Value error, function 'java_method'" in line


def test_allowed_functions_are_spark_built_ins_and_quoted_text_stays_data(spark):
    from pyspark.sql import functions as F

    built_in = {r[0] for r in spark.sql("SHOW SYSTEM FUNCTIONS").collect()}
    # try_cast is a keyword of the grammar, not a registered function.
    assert sorted(ALLOWED_FUNCTIONS - built_in) == ["try_cast"]
    text = "city = 'java_method(' or city like '%--%' or city = \"reflect(1)\""
    check_expression(text, "segments.s.where")
    frame = spark.createDataFrame(
        [("java_method(",), ("a--b",), ("reflect(1)",), ("shanghai",)], "city string"
    )
    rows = frame.select("city", F.expr(text).alias("hit")).collect()
    assert [(r["city"], r["hit"]) for r in rows] == [
        ("java_method(", True),
        ("a--b", True),
        ("reflect(1)", True),
        ("shanghai", False),
    ]
