"""A sweep's results as one self-contained HTML page: outcome-vs-parameter charts per day.

For each day of the table, one chart per outcome of :data:`OUTCOMES` (the fund's minimum
equity, the ADL notional, the amount clawed back) against the parameter that varies: the
first parameter whose values are numbers (else the first that varies; the seed when none
does), one line per combination of the other varying parameters, through the mean over the
seeds, with each seed's run as a faint point beside it. Then the day's runs as a table
(parameters, seed, the outcomes, the log's chain hash).

The page opens offline: plotly.js is inlined once (no ``<script src>``, no CDN) and the
charts' element ids are fixed, so the same table gives the same page. plotly is imported
only here (``pip install 'clearsim[report]'``); ``clearsim report results.parquet`` hands a
``.parquet`` input to :func:`sweep_report_html`.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from clearsim.replay.sweep import results
from clearsim.replay.sweep.results import PARAM_PREFIX, MissingExtra

__all__ = ["OUTCOMES", "sweep_report_html"]

#: (column, chart title): the outcomes charted per day.
OUTCOMES: Final = (
    ("fund_min", "Insurance fund minimum (equity)"),
    ("adl_notional", "ADL notional"),
    ("clawback_total", "Clawed back"),
)
_TABLE_COLUMNS: Final = (
    ("fund_start", "fund start"),
    ("fund_min", "fund min"),
    ("fund_end", "fund end"),
    ("fund_paid", "fund paid"),
    ("liquidations", "liquidations"),
    ("adl_count", "ADL"),
    ("adl_notional", "ADL notional"),
    ("clawback_total", "clawed back"),
    ("system_debt", "system debt"),
)
_STYLE: Final = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
.chart { height: 380px; margin: 1em 0; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { padding: 0.2em 0.6em; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
code { font-size: 0.9em; }
"""


def _modules() -> tuple[Any, Any]:
    try:
        import plotly.graph_objects as go
        import plotly.offline as offline
    except ImportError:
        raise MissingExtra(
            "the sweep report needs plotly: pip install 'clearsim[report]'"
        ) from None
    return go, offline


def _number(text: object) -> Decimal | None:
    if not isinstance(text, str):
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _axes(rows: Sequence[dict[str, Any]], params: Sequence[str]) -> tuple[str, list[str]]:
    """(the x column, the other varying parameter columns) for one day's rows."""
    varying = [c for c in params if len({r[c] for r in rows}) > 1]
    numeric = [c for c in varying if all(_number(r[c]) is not None for r in rows)]
    x = numeric[0] if numeric else (varying[0] if varying else "seed")
    return x, [c for c in varying if c != x]


def _label(col: str) -> str:
    return col[len(PARAM_PREFIX) :] if col.startswith(PARAM_PREFIX) else col


def _chart(
    go: Any, div: str, rows: Sequence[dict[str, Any]], x: str, series: Sequence[str],
    column: str, title: str,
) -> str:  # fmt: skip
    unit = rows[0]["collateral"] if rows else ""
    numeric_x = x == "seed" or all(_number(r[x]) is not None for r in rows)

    def xval(r: dict[str, Any]) -> Any:
        if x == "seed":
            return r["seed"]
        n = _number(r[x])
        return float(n) if numeric_x and n is not None else str(r[x])

    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[c] for c in series), []).append(r)
    fig = go.Figure()
    palette = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
    for i, (combo, rs) in enumerate(groups.items()):
        colour = palette[i % len(palette)]
        name = ", ".join(f"{_label(c)}={v}" for c, v in zip(series, combo, strict=True)) or title
        xs: dict[Any, list[float]] = {}
        for r in rs:
            xs.setdefault(xval(r), []).append(float(r[column]))
        keys = sorted(xs) if numeric_x else list(xs)
        fig.add_trace(
            go.Scatter(
                x=keys, y=[sum(xs[k]) / len(xs[k]) for k in keys], mode="lines+markers",
                name=name, legendgroup=name, line={"color": colour},
            )
        )  # fmt: skip
        if any(len(v) > 1 for v in xs.values()):
            fig.add_trace(
                go.Scatter(
                    x=[xval(r) for r in rs], y=[float(r[column]) for r in rs], mode="markers",
                    name=f"{name} (each seed)", legendgroup=name, showlegend=False,
                    marker={"color": colour, "opacity": 0.35, "size": 6},
                    text=[f"seed {r['seed']}" for r in rs],
                )
            )  # fmt: skip
    fig.update_layout(
        title=title, height=380, margin={"l": 70, "r": 20, "t": 50, "b": 50},
        xaxis_title=_label(x), yaxis_title=unit, showlegend=bool(series),
        template="plotly_white",
    )  # fmt: skip
    fig.update_xaxes(type="linear" if numeric_x else "category")
    body: str = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div)
    return f'<div class="chart">{body}</div>'


def _cell(v: Any) -> str:
    if isinstance(v, Decimal):
        return f"{v:,.2f}"
    return html.escape(str(v))


def _table(rows: Sequence[dict[str, Any]], params: Sequence[str]) -> str:
    heads = [*(_label(c) for c in params), "seed", *(h for _, h in _TABLE_COLUMNS), "chain hash"]
    out = ["<table><tr>", *(f"<th>{html.escape(h)}</th>" for h in heads), "</tr>"]
    for r in rows:
        cells = [*(r[c] if r[c] is not None else "" for c in params), r["seed"]]
        cells += [r[c] for c, _ in _TABLE_COLUMNS]
        out.append("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in cells))
        out.append(f"<td><code>{html.escape(r['chain_hash'])}</code></td></tr>")
    out.append("</table>")
    return "".join(out)


def sweep_report_html(path: str | os.PathLike[str]) -> str:
    """The page for the results table at ``path`` (see the module docstring)."""
    path = Path(path)
    go, offline = _modules()
    table = results.read(path)
    rows = results.rows(table)
    params = [c for c in table.column_names if c.startswith(PARAM_PREFIX)]
    days = list(dict.fromkeys(r["day"] for r in rows))
    parts = [
        f"<h1>clearsim sweep: {html.escape(path.name)}</h1>",
        f"<p>{len(rows)} runs over {len(days)} day(s); parameters: "
        f"{html.escape(', '.join(_label(c) for c in params) or 'none')}. Money in collateral "
        "units; the fund is its equity (cash plus positions at the mark).</p>",
    ]
    for d, day in enumerate(days):
        day_rows = [r for r in rows if r["day"] == day]
        mine = [c for c in params if any(r[c] is not None for r in day_rows)]
        x, series = _axes(day_rows, mine)
        parts.append(f"<h2>{html.escape(day)}</h2>")
        for column, title in OUTCOMES:
            parts.append(_chart(go, f"day{d}-{column}", day_rows, x, series, column, title))
        parts.append(_table(day_rows, mine))
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>clearsim sweep: {html.escape(path.name)}</title>"
        f"<style>{_STYLE}</style>"
        f"<script>{offline.get_plotlyjs()}</script></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
