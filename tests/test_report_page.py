"""The run report page: what a person reads and what a machine parses back out of it."""

from __future__ import annotations

import base64
import datetime as dt
import math
import re

import pytest
from matplotlib import pyplot as plt

from precis.report.page import Chart, Section, figures_json, read_figures, render

HOSTILE = "</script><script>alert(1)</script>"
BOLD = "<b>x</b>"
PNG = b"\x89PNG\r\n\x1a\n"
FACTS = {"storage root": "/tmp/lake & co", "run": "r-1", "generated at": "2024-05-02T10:00:00"}
HEADLINE = {
    "customers": 12345,
    "conversion": 0.123456,
    "gone": float("nan"),
    "since": dt.date(2024, 4, 1),
    BOLD: HOSTILE,
}


def _sections() -> list[Section]:
    orders = [
        {"channel": "email", "orders": 1200, "share": 0.5},
        {"channel": BOLD, "orders": 800, "share": float("nan")},
        {"channel": HOSTILE, "orders": 3, "share": 0.25},
    ]
    daily = [
        {"day": dt.date(2024, 5, 1), "source": "web", "rows": 10},
        {"day": dt.date(2024, 5, 1), "source": "shop", "rows": 4},
        {"day": dt.date(2024, 5, 2), "source": "web", "rows": 12},
        {"day": dt.date(2024, 5, 2), "source": "shop", "rows": None},
    ]
    spend = [{"edge": 0.0, "people": 5}, {"edge": 10.0, "people": 9}, {"edge": 20.0, "people": 2}]
    overlap = [
        {"a": a, "b": b, "people": n}
        for a, b, n in [("email", "email", 7), ("email", "phone", 3), ("phone", "phone", 5)]
    ]
    ingest = Section(
        key="ingest",
        title="Ingest",
        figures={"orders": orders, "daily": daily, "spend": spend, "overlap": overlap, "none": []},
        charts=(
            Chart("orders", "bar", "Orders by channel", x="channel", y=("orders",)),
            Chart("daily", "line", "Rows per day", x="day", y=("rows",), series="source"),
            Chart("spend", "hist", "Spend", x="edge", y=("people",), log_y=True),
            Chart("overlap", "heatmap", "Overlap", x="a", y=("people",), series="b"),
            Chart("none", "barh", "Nothing yet", x="k", y=("v",)),
        ),
        notes=(f"note {BOLD}", HOSTILE),
    )
    orders_section = Section(
        key="orders",
        title="Orders",
        figures={},
        charts=(Chart("orders", "bar", "Never drawn", x="k", y=("v",)),),
        missing="no orders landed",
    )
    return [ingest, orders_section]


@pytest.fixture(scope="module")
def page() -> str:
    return render("precis run report", "2024-05-02", _sections(), FACTS, headline=HEADLINE)


def _section_html(page: str, key: str) -> str:
    found = re.search(rf'<section id="{key}">(.*?)</section>', page, re.S)
    assert found, key
    return found.group(1)


def test_the_embedded_json_is_the_figures_and_keeps_the_rows(page):
    sections = _sections()
    data = figures_json("2024-05-02", sections, FACTS, headline=HEADLINE)
    assert read_figures(page) == data
    assert data["run_date"] == "2024-05-02"
    assert data["facts"] == FACTS
    assert data["headline"] == {
        "customers": 12345,
        "conversion": 0.123456,
        "gone": None,
        "since": "2024-04-01",
        BOLD: HOSTILE,
    }
    assert figures_json("2024-05-02", sections, FACTS)["headline"] == {}
    ingest = data["sections"]["ingest"]
    assert ingest["title"] == "Ingest"
    assert ingest["notes"] == [f"note {BOLD}", HOSTILE]
    assert ingest["missing"] is None
    figures = ingest["figures"]
    assert figures["orders"] == [
        {"channel": "email", "orders": 1200, "share": 0.5},
        {"channel": BOLD, "orders": 800, "share": None},
        {"channel": HOSTILE, "orders": 3, "share": 0.25},
    ]
    assert figures["daily"][0] == {"day": "2024-05-01", "source": "web", "rows": 10}
    assert figures["daily"][3] == {"day": "2024-05-02", "source": "shop", "rows": None}
    assert figures["spend"] == sections[0].figures["spend"]
    assert figures["overlap"] == sections[0].figures["overlap"]
    assert figures["none"] == []
    assert data["sections"]["orders"] == {
        "title": "Orders",
        "missing": "no orders landed",
        "notes": [],
        "figures": {},
    }


def test_the_page_is_one_document_with_contents_and_facts(page):
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    assert "precis run report — 2024-05-02" in page
    assert "<dt>storage root</dt><dd>/tmp/lake &amp; co</dd>" in page
    for key, title in [("ingest", "Ingest"), ("orders", "Orders")]:
        assert f'<section id="{key}">' in page
        assert f"<h2>{title}</h2>" in page
        assert f'<a href="#{key}">{title}</a>' in page
    assert "http://" not in page
    assert "https://" not in page


def test_headline_tiles_sit_under_the_title_formatted_and_escaped(page):
    tiles = re.search(r'<div class="tiles">(.*?)</div>\n', page, re.S)
    assert tiles
    assert page.index("</h1>") < tiles.start() < page.index('<dl class="facts">')
    assert re.findall(r'<div class="tile"><b>([^<]*)</b><span>([^<]*)</span></div>', tiles[1]) == [
        ("12,345", "customers"),
        ("0.1235", "conversion"),
        ("—", "gone"),
        ("2024-04-01", "since"),
        ("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b&gt;x&lt;/b&gt;"),
    ]
    # No headline, no tiles (the stylesheet still names the class).
    plain = render("t", "2024-05-02", _sections(), FACTS)
    assert 'class="tiles"' not in plain
    assert 'class="tiles"' not in render("t", "2024-05-02", _sections(), FACTS, headline={})


def test_a_sections_charts_share_a_grid_with_the_tables_under_it(page):
    assert "grid-template-columns: repeat(auto-fit, minmax(440px, 1fr))" in page
    assert "max-width: 100%; height: auto" in page
    ingest = _section_html(page, "ingest")
    grid = re.search(r'<div class="charts">\n(.*?)\n</div>', ingest, re.S)
    assert grid
    # Every chart of the section is a cell of the one grid, the empty one's too.
    assert ingest.count('<div class="charts">') == 1
    assert grid[1].count("<figure>") == ingest.count("<figure>") == 5
    assert grid.end() < ingest.index("<details><summary>figures</summary>")
    assert "<details" not in grid[1]


def test_a_missing_section_says_so_and_draws_nothing(page):
    orders = _section_html(page, "orders")
    assert '<p class="missing">no orders landed</p>' in orders
    assert "<img" not in orders
    assert 'class="charts"' not in orders


def test_each_chart_with_rows_is_a_png(page):
    ingest = _section_html(page, "ingest")
    images = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)">', ingest)
    assert [alt for alt, _ in images] == ["Orders by channel", "Rows per day", "Spend", "Overlap"]
    for _, data in images:
        assert base64.b64decode(data, validate=True).startswith(PNG)
    assert len(re.findall(r"<img ", page)) == 4
    # The chart of an empty figure keeps its place.
    assert '<p class="missing">no rows</p><figcaption>Nothing yet' in ingest


def test_hostile_text_is_escaped_everywhere(page):
    assert HOSTILE not in page
    assert BOLD not in page
    assert "<script>" not in page
    assert page.count("</script>") == 1
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<p>note &lt;b&gt;x&lt;/b&gt;</p>" in page


def test_tables_format_numbers_and_cap_their_rows():
    rows = [{"n": i * 1000, "f": math.pi * i, "s": None} for i in range(120)]
    section = Section("big", "Big", {"many": rows})
    page = render("precis run report", "2024-05-02", [section], {})
    table = _section_html(page, "big")
    assert "first 50 of 120 rows" in table
    assert table.count("<tr>") == 51  # the header and 50 rows
    assert '<td class="n">49,000</td><td class="n">153.9</td><td></td>' in table
    assert "<details><summary>figures</summary>" in table
    assert read_figures(page)["sections"]["big"]["figures"]["many"] == rows


def test_a_chart_naming_a_missing_column_fails_by_name():
    section = Section(
        "s", "S", {"f": [{"a": "x", "b": 1}]}, charts=(Chart("f", "bar", "Bad", "a", ("c",)),)
    )
    with pytest.raises(ValueError, match=r"'Bad'.*'c'"):
        render("t", "2024-05-02", [section], {})


def test_charts_of_every_kind_and_option_draw():
    rows = [
        {"k": "a", "s": "one", "v": 1.0, "w": 2},
        {"k": "b", "s": "two", "v": 3.0, "w": 1},
        {"k": "c", "s": "one", "v": None, "w": 4},
    ]
    charts = (
        Chart("f", "bar", "stacked", "k", ("v", "w"), stacked=True, ylabel="n"),
        Chart("f", "barh", "grouped", "k", ("v", "w"), log_y=True, xlabel="k"),
        Chart("f", "barh", "long", "k", ("v",), series="s"),
        Chart("f", "line", "categories", "k", ("v", "w")),
        Chart("f", "line", "numbers", "w", ("v",)),
    )
    open_before = plt.get_fignums()  # other tests' in this process, if any
    page = render("t", "2024-05-02", [Section("s", "S", {"f": rows}, charts=charts)], {})
    assert page.count("data:image/png;base64,") == len(charts)
    # Every figure is closed once saved: pyplot holds none of the page's.
    assert plt.get_fignums() == open_before


def test_bars_with_an_interval_draw_error_bars():
    rows = [
        {"k": "a", "s": "one", "v": 1.0, "lo": 0.8, "hi": 1.3},
        {"k": "b", "s": "one", "v": 3.0, "lo": None, "hi": 3.5},  # no bar: one end missing
        {"k": "a", "s": "two", "v": 2.0, "lo": 1.5, "hi": 2.2},
        {"k": "b", "s": "two", "v": 2.5, "lo": 2.6, "hi": 2.9},  # no bar: misses its value
        {"k": "c", "s": "two", "v": None, "lo": 1.0, "hi": 2.0},  # no bar: no value
    ]
    charts = (
        Chart("f", "barh", "plain", "k", ("v",), interval=("lo", "hi")),
        Chart("f", "bar", "grouped", "k", ("v",), series="s", interval=("lo", "hi")),
        Chart("f", "bar", "stacked", "k", ("v",), series="s", stacked=True, interval=("lo", "hi")),
        Chart("f", "barh", "logged", "k", ("v",), series="s", log_y=True, interval=("lo", "hi")),
    )
    open_before = plt.get_fignums()
    page = render("t", "2024-05-02", [Section("s", "S", {"f": rows}, charts=charts)], {})
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(charts)
    for data in images:
        assert base64.b64decode(data, validate=True).startswith(PNG)
    # The interval changes the picture: the same chart without it differs.
    bare = Chart("f", "barh", "plain", "k", ("v",))
    other = render("t", "2024-05-02", [Section("s", "S", {"f": rows}, charts=(bare,))], {})
    assert re.findall(r'src="data:image/png;base64,([^"]+)"', other)[0] != images[0]
    assert plt.get_fignums() == open_before


def test_an_interval_needs_bars_of_one_column_and_its_columns():
    for kind in ("line", "hist"):
        with pytest.raises(ValueError, match=r"'i'.*interval"):
            Chart("f", kind, "i", "x", ("y",), interval=("lo", "hi"))
    with pytest.raises(ValueError, match="interval"):
        Chart("f", "heatmap", "i", "x", ("y",), series="s", interval=("lo", "hi"))
    with pytest.raises(ValueError, match="interval"):
        Chart("f", "bar", "i", "x", ("y", "z"), interval=("lo", "hi"))
    chart = Chart("f", "barh", "Wide", "k", ("v",), interval=("lo", "high"))
    section = Section("s", "S", {"f": [{"k": "a", "v": 1.0, "lo": 0.5}]}, charts=(chart,))
    with pytest.raises(ValueError, match=r"'Wide'.*'high'"):
        render("t", "2024-05-02", [section], {})


def test_bad_charts_and_sections_are_refused():
    with pytest.raises(ValueError, match="heatmap needs series"):
        Chart("f", "heatmap", "h", "x", ("y",))
    with pytest.raises(ValueError, match="one y column"):
        Chart("f", "line", "l", "x", ("y", "z"), series="s")
    chart = Chart("absent", "bar", "Ghost", "x", ("y",))
    with pytest.raises(ValueError, match="'absent'"):
        render("t", "d", [Section("s", "S", {}, charts=(chart,))], {})
    with pytest.raises(ValueError, match="repeat"):
        figures_json("d", [Section("s", "S", {}), Section("s", "T", {})], {})
