"""The log report's charts: plotly figures made from :class:`~.log_data.LogData`.

Imports plotly at module level: :mod:`.log_report` imports this module only once it knows
plotly is there (the ``report`` extra). Each function returns a :class:`Chart`, a figure or,
when the log has nothing to plot (no ADL, no system debt), the sentence that says so in its
place. Times are UTC on a date axis; prices are decimals on the instrument's grid, money in
collateral units. Long series are thinned with :func:`~.series.envelope` (each time bucket's
lowest and highest point), and the caption says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import attrs
import plotly.graph_objects as go
import plotly.io as pio

from clearsim.replay.report.log_data import (
    LogData,
    adl_per_account,
    cascade_steps,
    cascade_tree,
    clawback_per_account,
    utc,
    utc_x,
)
from clearsim.replay.report.series import MINUTE_US, PriceSeries, envelope

__all__ = ["STEP_COLORS", "Chart", "chart_html", "plotlyjs"]

#: Points per plotted series before it is thinned.
MAX_POINTS: Final = 5000
#: Accounts per per-account bar chart.
TOP_ACCOUNTS: Final = 15
#: One colour per waterfall step, the same in every chart.
STEP_COLORS: Final[dict[str, str]] = {
    "book": "#4c78a8",
    "backstop": "#f58518",
    "takeover": "#54a24b",
    "adl": "#e45756",
    "clawback": "#b279a2",
}
_STEP_ORDER: Final = ("book", "backstop", "takeover", "adl", "clawback")
_CONFIG: Final[dict[str, Any]] = {"displaylogo": False, "responsive": True}
_TIME_AXIS: Final[dict[str, Any]] = {"type": "date", "title": {"text": "time (UTC)"}}


@attrs.frozen
class Chart:
    """One chart of the page: its div id, a caption, and the figure or the reason there is
    none (``empty``)."""

    id: str
    caption: str
    figure: go.Figure | None = None
    empty: str = ""
    height: int = 420


def plotlyjs() -> str:
    """The plotly.js bundle, to inline once per page (no CDN: the page opens offline)."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def chart_html(c: Chart) -> str:
    """The chart's div: the figure (its script calls the inlined plotly.js), or the
    sentence saying why there is none, in the same place."""
    if c.figure is None:
        return f'<div class="chart" id="{c.id}"><p class="no-data">{_esc(c.empty)}</p></div>'
    body = pio.to_html(
        c.figure,
        config=_CONFIG,
        include_plotlyjs=False,
        full_html=False,
        div_id=f"{c.id}-plot",
        default_height=f"{c.height}px",
        default_width="100%",
    )
    return f'<div class="chart" id="{c.id}">{body}</div>'


def _esc(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def _layout(
    fig: go.Figure, *, title: str, y: str, span: tuple[int, int] | None = None, **extra: Any
) -> None:
    """The page's look; ``span`` (first and last ts of the log) makes the x axis a UTC date
    axis over the whole log, the same in every time chart."""
    layout: dict[str, Any] = {
        "template": "plotly_white",
        "title": {"text": title, "x": 0.01, "font": {"size": 15}},
        "margin": {"l": 70, "r": 30, "t": 70, "b": 55},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        "yaxis": {"title": {"text": y}, "separatethousands": True, "exponentformat": "none"},
    }
    layout.update(extra)
    fig.update_layout(**layout)
    if span is not None:
        fig.update_xaxes(**_TIME_AXIS, range=[utc_x(span[0]), utc_x(span[1])])


def _span(data: LogData) -> tuple[int, int]:
    """The x range of every time chart: the log's first to last ts, widened to whole
    minutes when it spans ten or more (so the per-minute bars line up with the rest)."""
    st = data.story
    t0, t1 = st.first_ts or 0, st.last_ts
    if t1 - t0 < 10 * MINUTE_US:
        return t0, t1
    return t0 - t0 % MINUTE_US, t1 - t1 % MINUTE_US + (MINUTE_US if t1 % MINUTE_US else 0)


def _root_marks(fig: go.Figure, data: LogData) -> None:
    """Dashed lines at the roots of the largest cascades, labelled by rank; roots closer
    than 2% of the log's span share one label ("#1 #2 #3")."""
    t0, t1 = _span(data)
    near = max(1, (t1 - t0) // 50)
    groups: list[tuple[int, list[int]]] = []
    for rank, c in sorted(
        enumerate(data.cascades, 1), key=lambda rc: rc[1].records[rc[1].top]["ts"]
    ):
        ts = c.records[c.top]["ts"]
        if groups and ts - groups[-1][0] < near:
            groups[-1][1].append(rank)
        else:
            groups.append((ts, [rank]))
        x = utc_x(ts)
        fig.add_shape(
            type="line",
            x0=x,
            x1=x,
            xref="x",
            y0=0,
            y1=1,
            yref="paper",
            line={"color": "#e45756", "width": 1, "dash": "dash"},
            opacity=0.6,
        )
    for ts, ranks in groups:
        fig.add_annotation(
            x=utc_x(ts),
            y=1,
            yref="paper",
            showarrow=False,
            yanchor="bottom",
            text=" ".join(f"#{r}" for r in sorted(ranks)),
            font={"color": "#e45756", "size": 11},
        )


# --------------------------------------------------------------------------- 1. prices


def _price_points(s: PriceSeries, dec: int, max_points: int) -> tuple[list[str], list[float]]:
    keep = envelope(s.ts, s.ticks, max_points)
    scale = 10**dec
    return [utc_x(s.ts[i]) for i in keep], [s.ticks[i] / scale for i in keep]


def price_charts(data: LogData) -> list[Chart]:
    """Per symbol: index, mark and trade prices over time, the largest cascades marked."""
    sr = data.series
    symbols = sorted(set(sr.index) | set(sr.mark) | set(sr.trades))
    if not symbols:
        return [Chart("chart-price", "", empty="No prices in this log.")]
    out = []
    for i, sym in enumerate(symbols):
        grid = data.grids.get(sym)
        # A tick grid's decimals make the price exact at that many places (0.1 -> 1).
        dec = grid.price_decimals if grid is not None else 0
        fig = go.Figure()
        notes = []
        for name, table, style in (  # trades first: drawn under the index and the mark
            (
                "trades",
                sr.trades,
                {"mode": "markers", "marker": {"size": 3, "opacity": 0.4, "color": "#8a8f98"}},
            ),
            ("index", sr.index, {"mode": "lines", "line": {"width": 1.8, "color": "#1f3b73"}}),
            (
                "mark",
                sr.mark,
                {"mode": "lines", "line": {"width": 1.2, "dash": "dot", "color": "#d62728"}},
            ),
        ):
            s = table.get(sym)
            if s is None or not len(s):
                continue
            x, y = _price_points(s, dec, MAX_POINTS)
            if len(x) < len(s):
                notes.append(f"{name}: {len(s):,} points shown as each time bucket's low and high")
            fig.add_trace(go.Scatter(x=x, y=y, name=f"{name} ({len(s):,})", **style))
        _root_marks(fig, data)
        _layout(
            fig,
            title=f"{sym}: index, mark and trade prices",
            y="price",
            span=_span(data),
            hovermode="x unified",
        )
        fig.update_yaxes(tickformat=f",.{dec}f", hoverformat=f",.{dec}f")
        caption = (
            "Index (the oracle), mark (what positions are valued at) and every trade; dashed "
            "lines mark the roots of the largest cascades (section 6)."
        )
        if notes:
            caption += " Thinned: " + "; ".join(notes) + "."
        out.append(Chart(f"chart-price-{i}" if i else "chart-price", caption, fig))
    return out


# --------------------------------------------------------------------------- 2. liquidations


def _step_names(names: Sequence[str]) -> list[str]:
    known = [s for s in _STEP_ORDER if s in names]
    return known + sorted(set(names) - set(known))


def liquidations_chart(data: LogData) -> Chart:
    """Liquidation steps run per minute, stacked by waterfall step."""
    per = data.series.steps_per_minute
    caption = (
        "Each bar is one minute: how many liquidation steps ran in it, by the waterfall step "
        "that ran (a liquidation the book cannot finish runs the next step too; one step can "
        "close its position in many fills, transfers or deleveragings, which the header counts)."
    )
    if not per:
        return Chart("chart-liquidations", caption, empty="No liquidations in this log.")
    minutes = sorted({m for m, _ in per})
    xs = [utc_x(m) for m in minutes]
    fig = go.Figure()
    for step in _step_names([s for _, s in per]):
        total = sum(n for (_, s), n in per.items() if s == step)
        fig.add_trace(
            go.Bar(
                x=xs,
                y=[per.get((m, step), 0) for m in minutes],
                name=f"{step} ({total:,})",
                marker={"color": STEP_COLORS.get(step, "#9d755d")},
                hovertemplate=f"{step}: %{{y}}<extra></extra>",
                xperiod=MINUTE_US // 1000,  # ms: each bar fills its minute
                xperiodalignment="middle",
            )
        )
    _layout(
        fig,
        title="Liquidation steps per minute, by waterfall step",
        y="steps per minute",
        span=(min(_span(data)[0], minutes[0]), max(_span(data)[1], minutes[-1] + MINUTE_US)),
        barmode="stack",
        bargap=0.08,
        hovermode="x unified",
        legend_traceorder="normal",
    )
    return Chart("chart-liquidations", caption, fig)


# --------------------------------------------------------------------------- 3. fund


def fund_chart(data: LogData) -> Chart:
    """The insurance fund's equity and cash over time, with start, minimum and end marked."""
    f, money, st = data.fund, data.money, data.story
    t0 = st.first_ts or 0
    ts = [t0] + [r.ts for r in f.timeline] + [st.last_ts]
    eq = [f.initial] + [r.equity for r in f.timeline] + [f.equity]
    cash = [f.initial] + [r.cash for r in f.timeline] + [f.cash]
    keep = sorted(set(envelope(ts, eq, MAX_POINTS)) | set(envelope(ts, cash, MAX_POINTS)))
    x = [utc_x(ts[i]) for i in keep]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[money.unit(cash[i]) for i in keep],
            name="cash",
            mode="lines",
            line={"shape": "hv", "width": 1.2, "dash": "dot", "color": "#f58518"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[money.unit(eq[i]) for i in keep],
            name="equity",
            mode="lines",
            line={"shape": "hv", "width": 2, "color": "#1f3b73"},
            fill="tozeroy",
            fillcolor="rgba(31,59,115,0.08)",
        )
    )
    low = f.low
    marks = [  # (name, ts, atoms, label anchor, arrow offset in px)
        ("start", t0, f.initial, "left", (40, -30)),
        ("min", low.low_ts or t0, low.low, "left", (40, -45)),
        ("end", st.last_ts, f.equity, "right", (-40, -30)),
    ]
    for name, t, v, anchor, (ax, ay) in marks:
        fig.add_trace(
            go.Scatter(
                x=[utc_x(t)],
                y=[money.unit(v)],
                mode="markers",
                marker={"size": 9, "color": "#1f3b73"},
                showlegend=False,
                cliponaxis=False,
                hovertemplate=f"{name}: {money.exact(v)}<extra></extra>",
            )
        )
        fig.add_annotation(
            x=utc_x(t),
            y=money.unit(v),
            text=f"<b>{name}</b> {money.text(v)}",
            showarrow=True,
            arrowhead=0,
            arrowcolor="#1f3b73",
            ax=ax,
            ay=ay,
            xanchor=anchor,
            bgcolor="rgba(255,255,255,0.85)",
            font={"size": 12, "color": "#1f3b73"},
        )
    if low.dry_seq:
        fig.add_trace(
            go.Scatter(
                x=[utc_x(low.dry_ts)],
                y=[0],
                mode="markers",
                name="ran dry",
                marker={"size": 11, "symbol": "x", "color": "#e45756"},
                hovertemplate=f"ran dry at seq {low.dry_seq:,}<extra></extra>",
            )
        )
    _layout(
        fig,
        title="Insurance fund: equity (cash plus positions at the mark) and cash",
        y=data.collateral or "collateral",
        span=_span(data),
        hovermode="closest",
    )
    caption = (
        f"{len(f.timeline):,} changes of the fund. Equity is what the fund is worth: its cash "
        "plus any position it took over, at the mark; a takeover moves cash into a position, "
        "so the two lines part"
    )
    caption += (
        "."
        if any(r.equity != r.cash for r in f.timeline)
        else " (here they never do: the fund held no position)."
    )
    if len(keep) < len(ts):
        caption += " Thinned to each time bucket's low and high."
    return Chart("chart-fund", caption, fig, height=460)


# --------------------------------------------------------------------------- 4. per account


def _account_bars(
    rows: list[Any],
    *,
    chart_id: str,
    title: str,
    what: str,
    empty: str,
    caption: str,
    data: LogData,
    lots: bool,
) -> Chart:
    if not rows:
        return Chart(chart_id, caption, empty=empty)
    top = rows[:TOP_ACCOUNTS]
    money = data.money

    def hover(r: Any) -> str:
        held = ", ".join(f"{data.fmt.qty(s, q)} {s}" for s, q in r.lots)
        n = f"{r.events:,} {what}"
        return f"{money.exact(r.amount)}<br>{n}" + (f"<br>{held}" if lots and held else "")

    fig = go.Figure(
        go.Bar(
            x=[money.unit(r.amount) for r in top],
            y=[r.account for r in top],
            orientation="h",
            marker={"color": STEP_COLORS["adl" if lots else "clawback"]},
            text=[money.text(r.amount) for r in top],
            textposition="auto",
            hovertext=[hover(r) for r in top],
            hoverinfo="text+y",
        )
    )
    shown = (
        f"top {len(top)} of {len(rows):,} accounts"
        if len(rows) > len(top)
        else (f"{len(rows):,} account{'s' if len(rows) != 1 else ''}")
    )
    total = money.text(sum(r.amount for r in rows))
    _layout(
        fig,
        title=f"{title}: {total} in all ({shown})",
        y="",
        xaxis={
            "title": {"text": data.collateral or "collateral"},
            "exponentformat": "none",
            "separatethousands": True,
        },
    )
    fig.update_yaxes(autorange="reversed", type="category")
    height = max(260, 90 + 26 * len(top))
    return Chart(chart_id, caption, fig, height=height)


def adl_chart(data: LogData) -> Chart:
    return _account_bars(
        adl_per_account(data.fund),
        chart_id="chart-adl",
        title="ADL: position closed per account",
        what="deleveragings",
        empty="No ADL in this log: no account's position was closed against a bankrupt one.",
        caption=(
            "Auto-deleveraging closes profitable opposite positions at the bankrupt account's "
            "bankruptcy price: per account, the notional closed so, in collateral units."
        ),
        data=data,
        lots=True,
    )


def clawback_chart(data: LogData) -> Chart:
    return _account_bars(
        clawback_per_account(data.fund),
        chart_id="chart-clawback",
        title="Clawback charged per account",
        what="periods",
        empty="No clawback in this log: no loss was socialized to the winners.",
        caption="The socialized losses charged to each account, summed over the periods.",
        data=data,
        lots=False,
    )


# --------------------------------------------------------------------------- 5. debt


def debt_chart(data: LogData) -> Chart:
    """The system's debt over time: losses nobody could be made to pay."""
    rows, money, st = data.series.debt, data.money, data.story
    caption = "Losses nobody could be made to pay (the fund empty, no step left), summed."
    if rows:
        why: dict[str, int] = {}
        for r in rows:
            why[r.reason] = why.get(r.reason, 0) + 1
        caption += " Why: " + ", ".join(f"{k} ({n:,})" for k, n in sorted(why.items())) + "."
    if not rows:
        return Chart(
            "chart-debt", caption, empty="No system debt in this log: every loss was covered."
        )
    t0 = st.first_ts or rows[0].ts
    x = [utc_x(t0)] + [utc_x(r.ts) for r in rows] + [utc_x(st.last_ts)]
    y = [0.0] + [money.unit(r.total) for r in rows] + [money.unit(rows[-1].total)]
    hover = (
        ["start"]
        + [
            f"seq {r.seq:,}: {money.exact(r.amount)} from {r.account} ({r.reason})<br>"
            f"total {money.exact(r.total)}"
            for r in rows
        ]
        + [f"end: {money.exact(rows[-1].total)}"]
    )
    fig = go.Figure(
        go.Scatter(
            x=x,
            y=y,
            mode="lines+markers",
            line={"shape": "hv", "color": "#8c564b", "width": 2},
            marker={"size": 5},
            fill="tozeroy",
            fillcolor="rgba(140,86,75,0.1)",
            hovertext=hover,
            hoverinfo="text",
            name="system debt",
        )
    )
    _layout(
        fig,
        title=f"System debt: {money.text(rows[-1].total)} in {len(rows):,} write-offs",
        y=data.collateral or "collateral",
        span=_span(data),
    )
    return Chart("chart-debt", caption, fig)


# --------------------------------------------------------------------------- 6. cascades


def cascades_chart(data: LogData) -> Chart:
    """The largest cascades: liquidation steps per cascade, stacked by waterfall step."""
    caption = (
        "A cascade is every event one input caused, through the events' cause links; the "
        "largest by liquidations, with the steps they ran (the table below has the totals)."
    )
    cs = data.cascades
    if not cs:
        return Chart("chart-cascades", caption, empty="No cascades: nothing was liquidated.")
    steps = [cascade_steps(c) for c in cs]
    labels = [
        f"#{i} seq {c.top:,}<br>{utc(c.records[c.top]['ts'])[11:]}" for i, c in enumerate(cs, 1)
    ]
    fig = go.Figure()
    for step in _step_names(sorted({s for per in steps for s in per})):
        fig.add_trace(
            go.Bar(
                y=labels,
                x=[per.get(step, 0) for per in steps],
                name=step,
                orientation="h",
                marker={"color": STEP_COLORS.get(step, "#9d755d")},
                hovertemplate=f"{step}: %{{x}}<extra></extra>",
            )
        )
    _layout(
        fig,
        title=f"The {len(cs)} largest cascades: liquidation steps by waterfall step",
        y="",
        barmode="stack",
        legend_traceorder="normal",
        xaxis={"title": {"text": "liquidation steps"}},
    )
    fig.update_yaxes(autorange="reversed", type="category")
    return Chart("chart-cascades", caption, fig, height=max(260, 110 + 50 * len(cs)))


#: Event types that close a liquidated position, by the step that emits them.
_CLOSES: Final = {
    "liquidation_fill": "book",
    "backstop_transfer": "backstop",
    "takeover": "takeover",
    "deleveraged": "adl",
}
_TYPE_COLORS: Final = {
    "system_debt": "#8c564b",
    "insurance_payment": "#72b7b2",
    "socialized_loss": "#b279a2",
    "clawback": "#b279a2",
    "liquidation_triggered": "#f2b447",
}


def _type_color(label: str) -> str:
    """A tree node's colour: a step's (its steps and the events that close for it), a few
    money events', else a quiet blue-grey."""
    if label.startswith("liquidation_step: "):
        return STEP_COLORS.get(label.split(": ", 1)[1], "#9d755d")
    step = _CLOSES.get(label)
    if step is not None:
        return STEP_COLORS[step]
    return _TYPE_COLORS.get(label, "#c5cfdd")


def cascade_tree_chart(data: LogData) -> Chart:
    """The largest cascade's causal tree, each node's children grouped by event type."""
    caption = (
        "The largest cascade's tree of causes, read left to right: each box is the events of "
        "one type caused by the box to its left (their count in brackets); click a box to "
        "zoom in."
    )
    if not data.cascades:
        return Chart("chart-tree", caption, empty="No cascades: nothing was liquidated.")
    c = data.cascades[0]
    nodes = cascade_tree(c, data.index)
    fig = go.Figure(
        go.Icicle(
            ids=[n[0] for n in nodes],
            labels=[f"{n[1]} ({n[3]:,})" for n in nodes],
            parents=[n[2] for n in nodes],
            values=[n[3] for n in nodes],
            branchvalues="remainder",
            marker={"colors": [_type_color(n[1]) for n in nodes]},
            tiling={"orientation": "h"},
            hovertemplate="%{label}<extra></extra>",
        )
    )
    _layout(
        fig,
        title=f"Cascade #1 (root seq {c.top:,}, {len(c.seqs):,} events): its tree",
        y="",
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return Chart("chart-tree", caption, fig, height=460)


def all_charts(data: LogData) -> dict[str, list[Chart]]:
    """Every chart of the page, by section key."""
    return {
        "prices": price_charts(data),
        "liquidations": [liquidations_chart(data)],
        "fund": [fund_chart(data)],
        "accounts": [adl_chart(data), clawback_chart(data)],
        "debt": [debt_chart(data)],
        "cascades": [cascades_chart(data), cascade_tree_chart(data)],
    }
