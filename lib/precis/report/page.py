"""The run report as one static HTML page, with the same figures as JSON inside it.

The page is opened from a file and fetches nothing: the CSS is inline, each chart a PNG in
a data URI. Every string from data is escaped, the embedded JSON so that no value can close
its script tag. Pure: a job gathers the figures and writes the page; this only draws it.

Headline numbers as tiles under the title; a section's charts two to a row, its tables under.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from precis.columns import RUN_DATE

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Rows of a figure its HTML table shows; the JSON keeps every row.
TABLE_ROWS = 50
#: A heatmap with at most this many rows and columns carries its values in its cells.
ANNOTATED = 12
#: More category labels than this on an axis and only every n-th is written.
LABELS = 24
SCRIPT_ID = "precis-figures"
SCRIPT = re.compile(f'<script type="application/json" id="{SCRIPT_ID}">(.*?)</script>', re.S)
# Paul Tol's "bright" scheme: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb")
STYLE: dict[Any, Any] = {"axes.prop_cycle": f"cycler(color={list(PALETTE)})", "font.size": 9}
STYLE |= {"axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": 10}
STYLE |= {"axes.grid": True, "axes.axisbelow": True, "grid.color": "#e6e6e6"}
ERROR_BARS = {"ecolor": "#333", "elinewidth": 0.8, "capsize": 2}

_e = escape  # every string from data passes through it
Kind = Literal["bar", "barh", "line", "hist", "heatmap"]
Rows = list[dict[str, Any]]
Series = dict[str, list[float]]  # name -> values, one per x


@dataclass(frozen=True)
class Chart:
    """One picture of one figure.

    ``x`` names the categories (bar, barh, heatmap rows), the x values (line) or each bin's
    lower edge (hist). With ``series`` the rows are long: each value of that column is one
    series of ``y[0]``. ``xlabel`` labels the axis ``x`` is on (the vertical one for barh and
    heatmap), ``ylabel`` the value axis or a heatmap's colour bar; ``log_y`` logs the values.
    ``interval`` names the (low, high) columns of an interval around each bar's ``y[0]``,
    drawn as an error bar; a bar whose low or high is None has none.
    """

    figure: str
    kind: Kind
    title: str
    x: str
    y: tuple[str, ...]
    series: str | None = None
    stacked: bool = False
    log_y: bool = False
    xlabel: str = ""
    ylabel: str = ""
    interval: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        one = self.series is not None or self.kind in ("hist", "heatmap")
        bars = self.kind in ("bar", "barh") and len(self.y) == 1
        for wrong, why in [
            (self.kind not in get_args(Kind), f"unknown kind {self.kind!r}"),
            (not self.y or (one and len(self.y) > 1), f"{self.kind} takes one y column"),
            (self.kind == "heatmap" and self.series is None, "a heatmap needs series"),
            (self.kind == "hist" and self.series is not None, "a hist draws one series"),
            (self.interval is not None and not bars, "an interval takes a bar or barh of one y"),
        ]:
            if wrong:
                raise ValueError(f"chart {self.title!r}: {why}")


@dataclass(frozen=True)
class Section:
    """One part of the report: its figures (name -> rows), how to draw them, and notes.

    With ``missing`` set the section had no data: the page shows that sentence instead of
    the charts (the figures, if any, are still listed and kept in the JSON).
    """

    key: str
    title: str
    figures: dict[str, list[dict[str, Any]]]
    charts: tuple[Chart, ...] = ()
    notes: tuple[str, ...] = ()
    missing: str | None = None


def figures_json(
    run_date: str,
    sections: Sequence[Section],
    facts: Mapping[str, Any],
    *,
    headline: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the page shows, as JSON has it: what ``read_figures`` gives back.

    Values are made plain on the way: NaN and infinite floats become None (JSON has no NaN),
    dates and datetimes ISO strings, numpy scalars Python ones, tuples lists. Section keys
    must be unique: they are the page's anchors and the JSON's keys.
    """
    keys = [s.key for s in sections]
    if len(set(keys)) != len(keys):
        raise ValueError(f"section keys repeat: {keys}")
    fields = ("title", "missing", "notes", "figures")
    shown = {s.key: _plain({f: getattr(s, f) for f in fields}) for s in sections}
    top = {"facts": _plain(facts), "headline": _plain(headline or {})}
    return {RUN_DATE: _plain(run_date), **top, "sections": shown}


def render(
    title: str,
    run_date: str,
    sections: Sequence[Section],
    facts: Mapping[str, Any],
    *,
    headline: Mapping[str, Any] | None = None,
) -> str:
    """The whole page as one HTML string; ``headline`` (name -> value) are its first tiles.

    Raises ValueError for a chart whose figure or column is not in its section's rows.
    """
    data = figures_json(run_date, sections, facts, headline=headline)
    payload = json.dumps(data, ensure_ascii=False, allow_nan=False)
    # As JSON's own \u escapes the value stays the same, but no "</script>" can appear.
    for char, code in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        payload = payload.replace(char, code)
    h1 = f'<h1>{_e(title)} <span class="date">— {_e(run_date)}</span></h1>'
    parts = [HEAD.format(title=_e(f"{title} — {run_date}"), css=CSS), h1]
    parts += [_tiles(data["headline"]), _facts(data["facts"]), _contents(sections)]
    parts += [_section(s, data["sections"][s.key]["figures"]) for s in sections]
    parts += [f'<script type="application/json" id="{SCRIPT_ID}">{payload}</script>']
    return "\n".join(filter(None, parts)) + "\n</body>\n</html>\n"


def read_figures(html: str) -> dict[str, Any]:
    """The JSON ``render`` embedded in ``html`` (equal to ``figures_json``'s dict)."""
    found = SCRIPT.search(html)
    if found is None:
        raise ValueError(f"no {SCRIPT_ID} script in the page")
    return dict(json.loads(found.group(1)))


HEAD = '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
HEAD += '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
HEAD += "<title>{title}</title>\n<style>\n{css}</style>\n</head>\n<body>"
CSS = """\
body { max-width: 1100px; margin: 2rem auto; padding: 0 1rem; color: #222; background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
h1 { font-size: 1.6rem; font-weight: 600; margin: 0 0 .4rem; } h3 { font-size: .95rem; }
h1 .date, .facts dt, .tile span { color: #666; font-weight: 400; }
h2 { font-variant: small-caps; letter-spacing: .03em; font-size: 1.35rem; margin: 2.5rem 0 .6rem;
  border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.facts { display: flex; flex-wrap: wrap; gap: .1rem 1.5rem; margin: 0; font-size: .85rem; }
.facts div { display: flex; gap: .4rem; } .facts dd { margin: 0; }
nav, .missing { margin: 1rem 0; padding: .6rem 1rem; border: 1px solid #e4e4e4; border-radius: 4px; }
nav ol { margin: 0; padding-left: 1.4rem; columns: 2; } nav a { color: #2a5a8a; }
.missing { background: #f5f5f5; color: #666; }
.tiles { display: flex; flex-wrap: wrap; gap: .6rem; margin: 1rem 0; }
.tile { padding: .4rem .9rem; border: 1px solid #e4e4e4; border-radius: 4px; min-width: 6rem; }
.tile b { display: block; font-size: 1.4rem; font-weight: 600; } .tile span { font-size: .8rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 0 1rem; }
@media (max-width: 500px) { .charts { grid-template-columns: 1fr; } }
/* min-width 0: else a grid cell grows to its image's own width and widens the grid */
figure { margin: 0 0 1rem; min-width: 0; } img { display: block; max-width: 100%; height: auto; }
figcaption, .muted { color: #777; font-size: .85rem; } summary { cursor: pointer; color: #555; }
table { display: block; overflow-x: auto; border-collapse: collapse; font-size: .8rem; }
th, td { padding: .2rem .6rem; border-bottom: 1px solid #eee; text-align: left; white-space: nowrap; }
th { border-bottom-color: #ccc; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
"""


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date):  # a datetime is a date too
        return value.isoformat()
    return value


def _fmt(value: Any) -> str:
    """A value as a table cell shows it (not yet escaped)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not 1e-4 <= abs(value) < 1e15:  # zero, tiny, huge (or not finite)
            return f"{value:.4g}"
        digits = 3 - math.floor(math.log10(abs(value)))  # after the point, for 4 significant
        text = f"{round(value, digits):,.{max(0, digits)}f}"
        return text.rstrip("0").rstrip(".") if digits > 0 else text
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _facts(facts: Mapping[str, Any]) -> str:
    items = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(_fmt(v))}</dd></div>" for k, v in facts.items())
    return f'<dl class="facts">{items}</dl>'


def _tiles(headline: Mapping[str, Any]) -> str:
    tile = '<div class="tile"><b>{}</b><span>{}</span></div>'
    tiles = "".join(tile.format(_e(_fmt(v) or "—"), _e(k)) for k, v in headline.items())
    return f'<div class="tiles">{tiles}</div>' if tiles else ""


def _contents(sections: Sequence[Section]) -> str:
    none = ' <span class="muted">(no data)</span>'
    items = "".join(
        f'<li><a href="#{_e(s.key)}">{_e(s.title)}</a>{"" if s.missing is None else none}</li>'
        for s in sections
    )
    return f"<nav><ol>{items}</ol></nav>"


def _section(section: Section, figures: dict[str, Rows]) -> str:
    parts = [f'<section id="{_e(section.key)}">', f"<h2>{_e(section.title)}</h2>"]
    parts += [f"<p>{_e(note)}</p>" for note in section.notes]
    if section.missing is not None:
        parts.append(f'<p class="missing">{_e(section.missing)}</p>')
    elif section.charts:
        charts = "\n".join(_figure(chart, figures) for chart in section.charts)
        parts.append(f'<div class="charts">\n{charts}\n</div>')
    if figures:
        parts.append("<details><summary>figures</summary>")
        parts += [_table(name, rows) for name, rows in figures.items()]
        parts.append("</details>")
    parts.append("</section>")
    return "\n".join(parts)


def _figure(chart: Chart, figures: dict[str, Rows]) -> str:
    if chart.figure not in figures:
        raise ValueError(f"chart {chart.title!r}: its section has no figure {chart.figure!r}")
    rows = figures[chart.figure]
    caption = f"<figcaption>{_e(chart.title)} · figure <code>{_e(chart.figure)}</code></figcaption>"
    if not rows:
        return f'<figure><p class="missing">no rows</p>{caption}</figure>'
    png = base64.b64encode(_draw(chart, rows)).decode("ascii")
    img = f'<img alt="{_e(chart.title)}" src="data:image/png;base64,{png}">'
    return f"<figure>{img}{caption}</figure>"


def _table(name: str, rows: Rows) -> str:
    head = f"<h3>{_e(name)}</h3>"
    if not rows:
        return f'{head}<p class="muted">no rows</p>'
    columns = list(dict.fromkeys(k for row in rows for k in row))
    header = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "\n".join(
        "<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>" for row in rows[:TABLE_ROWS]
    )
    note = (
        f'<p class="muted">first {TABLE_ROWS} of {len(rows):,} rows</p>'
        if len(rows) > TABLE_ROWS
        else ""
    )
    return f"{head}{note}<table><thead><tr>{header}</tr></thead><tbody>\n{body}\n</tbody></table>"


def _cell(value: Any) -> str:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return f'<td class="n">{_e(_fmt(value))}</td>' if number else f"<td>{_e(_fmt(value))}</td>"


def _draw(chart: Chart, rows: Rows) -> bytes:
    present = set().union(*rows)
    for column in (chart.x, *chart.y, *(chart.interval or ()), *filter(None, [chart.series])):
        if column not in present:
            raise ValueError(f"chart {chart.title!r}: no column {column!r} in {chart.figure!r}")
    import matplotlib

    matplotlib.use("Agg")  # no display on a cluster driver
    from matplotlib import pyplot as plt

    across = chart.kind in ("barh", "heatmap")  # x drawn on the vertical axis
    buffer = io.BytesIO()
    with plt.rc_context(STYLE | {"axes.grid.axis": "x" if across else "y"}):
        # About a grid cell's width at 100 dpi: shown near its own size, the text stays legible.
        fig, ax = plt.subplots(figsize=(5.4, 3.3), dpi=100)
        try:
            DRAW[chart.kind](fig, ax, chart, rows)
            ax.set_title(chart.title, loc="left")
            (ax.set_ylabel if across else ax.set_xlabel)(chart.xlabel)
            if chart.kind != "heatmap":
                (ax.set_xlabel if across else ax.set_ylabel)(chart.ylabel)
                (ax.set_xscale if across else ax.set_yscale)("log" if chart.log_y else "linear")
            if len(ax.get_legend_handles_labels()[0]) > 1:
                ax.legend(frameon=False, fontsize=8)
            fig.tight_layout()
            # No Software entry: the PNG carries the picture and nothing else.
            fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
        finally:
            plt.close(fig)  # pyplot keeps every figure alive until it is closed
    return buffer.getvalue()


def _number(chart: Chart, column: str, value: Any) -> float:
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"chart {chart.title!r}: {column!r} holds {value!r}") from None


def _label(value: Any) -> str:
    return "(none)" if value is None else str(value)


def _wide(chart: Chart, rows: Rows, column: str | None = None) -> tuple[list[Any], Series]:
    """The x values, and each series' values aligned with them (NaN where none)."""
    ys = chart.y if column is None else (column,)  # an interval's end, to line up with y
    if chart.series is None:
        xs = [row.get(chart.x) for row in rows]
        return xs, {c: [_number(chart, c, row.get(c)) for row in rows] for c in ys}
    xs = list(dict.fromkeys(row.get(chart.x) for row in rows))
    where = {x: i for i, x in enumerate(xs)}
    table: Series = {}
    for row in rows:
        values = table.setdefault(_label(row.get(chart.series)), [math.nan] * len(xs))
        values[where[row.get(chart.x)]] = _number(chart, ys[0], row.get(ys[0]))
    return xs, table


def _ticks(ax: Axes, labels: list[str], vertical: bool) -> None:
    at = list(range(0, len(labels), max(1, math.ceil(len(labels) / LABELS))))
    shown = [labels[i] if len(labels[i]) <= 30 else labels[i][:29] + "…" for i in at]
    if vertical:
        ax.set_yticks(at, shown)
    elif len(labels) > 8 or max(map(len, labels), default=0) > 10:
        ax.set_xticks(at, shown, rotation=40, ha="right")
    else:
        ax.set_xticks(at, shown)


def _bars(fig: Figure, ax: Axes, chart: Chart, rows: Rows) -> None:
    xs, series = _wide(chart, rows)
    at = np.arange(len(xs))
    width = 0.8 if chart.stacked else 0.8 / len(series)
    base = np.zeros(len(xs))
    # Positionally both take (position, length, thickness, start): bar's bottom is barh's left.
    draw = ax.barh if chart.kind == "barh" else ax.bar
    errors = _errors(chart, rows, series)
    for i, (name, values) in enumerate(series.items()):
        spot = at if chart.stacked else at - 0.4 + width * (i + 0.5)
        bars = {} if errors is None else {"xerr" if chart.kind == "barh" else "yerr": errors[i]}
        draw(spot, values, width, base.copy(), label=name, **bars, error_kw=ERROR_BARS)
        if chart.stacked:
            base += np.nan_to_num(values)
    _ticks(ax, [_label(x) for x in xs], vertical=chart.kind == "barh")
    if chart.kind == "barh":
        ax.invert_yaxis()  # the first row on top, as in the table


def _errors(chart: Chart, rows: Rows, series: Series) -> list[Any] | None:
    """Each series' distances from its values down to its interval's lows and up to its highs."""
    if chart.interval is None:
        return None
    (_, lows), (_, highs) = (_wide(chart, rows, end) for end in chart.interval)
    distances = []
    for values, low, high in zip(series.values(), lows.values(), highs.values()):
        pair = np.array([np.subtract(values, low), np.subtract(high, values)])
        # NaN both sides (one keeps its cap) where an end is None or misses the value: no wrong bar.
        distances.append(np.where((pair >= 0).all(axis=0), pair, np.nan))
    return distances


def _lines(fig: Figure, ax: Axes, chart: Chart, rows: Rows) -> None:
    xs, series = _wide(chart, rows)
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs)
    try:
        dates = None if numeric else [dt.datetime.fromisoformat(x) for x in xs]
    except (TypeError, ValueError):
        dates = None
    where: list[Any] = list(xs) if numeric else dates or list(range(len(xs)))
    # Numbers and dates in their order (long rows may come unsorted); categories in row order.
    order = sorted(range(len(xs)), key=where.__getitem__) if numeric or dates else range(len(xs))
    marker = "o" if len(xs) <= 30 else None
    for name, values in series.items():
        ys = [values[i] for i in order]
        ax.plot([where[i] for i in order], ys, marker=marker, markersize=3, label=name)
    if dates:
        from matplotlib import dates as mdates

        # A few days of dates: one tick a day (the automatic locator would tick hours).
        daily = all(len(x) == 10 for x in xs) and (max(dates) - min(dates)).days < 10
        locator = mdates.DayLocator() if daily else mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        fmt = mdates.DateFormatter("%b %d") if daily else mdates.ConciseDateFormatter(locator)
        ax.xaxis.set_major_formatter(fmt)
    elif not numeric:
        _ticks(ax, [_label(x) for x in xs], vertical=False)


def _hist(fig: Figure, ax: Axes, chart: Chart, rows: Rows) -> None:
    x, y = chart.x, chart.y[0]
    bins = sorted(
        (_number(chart, x, r[x]), _number(chart, y, r.get(y))) for r in rows if r.get(x) is not None
    )
    edges, counts = [edge for edge, _ in bins], [count for _, count in bins]
    gaps = [b - a for a, b in itertools.pairwise(edges)]
    widths = gaps + [gaps[-1] if gaps else 1.0]  # the last bin as wide as the one before
    ax.bar(edges, counts, width=widths, align="edge", edgecolor="white", linewidth=0.5)


def _heatmap(fig: Figure, ax: Axes, chart: Chart, rows: Rows) -> None:
    xs, series = _wide(chart, rows)
    matrix = np.ma.masked_invalid(np.array(list(series.values()), dtype=float).T)
    image = ax.imshow(matrix, aspect="auto", cmap="Blues", norm="log" if chart.log_y else None)
    fig.colorbar(image, ax=ax).set_label(chart.ylabel)
    ax.grid(False)
    _ticks(ax, [_label(x) for x in xs], vertical=True)
    _ticks(ax, list(series), vertical=False)
    if matrix.shape[0] <= ANNOTATED and matrix.shape[1] <= ANNOTATED:
        for (i, j), value in np.ndenumerate(matrix.filled(np.nan)):
            if math.isfinite(value):
                color = "white" if float(np.asarray(image.norm(value))) > 0.6 else "#222"
                ax.text(j, i, _fmt(float(value)), ha="center", va="center", fontsize=8, color=color)


DRAW = {"bar": _bars, "barh": _bars, "line": _lines, "hist": _hist, "heatmap": _heatmap}
