"""One self-contained HTML page per event log (DESIGN §8 "report").

:func:`log_report_html` reads a log (:func:`.log_data.read_log_data`: the projections'
numbers), makes its charts (:mod:`.charts`, plotly) and returns the page: a header with the
story's headline numbers, then seven sections — prices; liquidations per minute by step;
the insurance fund's equity and cash; ADL and clawback per account; system debt; the
largest cascades; the config and its preset. plotly.js is inlined once in the page's head
and every style is inline too, so the page opens offline (no CDN, no request at all). A
chart with nothing to show says so in its place.

plotly is the ``report`` extra: without it, :class:`.errors.ReportError` names the install
line before the log is read.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import attrs
import orjson

import clearsim
from clearsim.clearing.presets import PRESETS
from clearsim.events.log import TornTail
from clearsim.replay.cli.render import story_text
from clearsim.replay.report.errors import ReportError
from clearsim.replay.report.log_data import (
    LogData,
    cascade_steps,
    read_log_data,
    utc,
)

if TYPE_CHECKING:
    from clearsim.replay.report.charts import Chart

__all__ = ["INSTALL", "ReportPage", "log_report_html", "render_page", "require_plotly"]

INSTALL: Final = "pip install 'clearsim[report]'"

#: (key, heading, what the section shows), in page order; the charts are keyed alike.
SECTIONS: Final = (
    ("prices", "Prices", "Index, mark and trade prices over time."),
    ("liquidations", "Liquidations", "Liquidation steps per minute, by waterfall step."),
    ("fund", "Insurance fund", "The fund's equity and cash over time."),
    ("accounts", "ADL and clawback per account", "Who paid for the losses the fund did not."),
    ("debt", "System debt", "Losses nobody could be made to pay."),
    ("cascades", "The largest cascades", "Liquidations one input set off, and their cost."),
    ("config", "Config and preset", "What the log's header says the exchange was."),
)


@attrs.frozen
class ReportPage:
    """A made page: its HTML, how many chart places it has and how many of those say there
    was no data, and the log's torn tail if any."""

    html: str
    charts: int
    empty: int
    torn: TornTail | None


def require_plotly() -> None:
    """Raise :class:`ReportError` naming the extra unless plotly imports."""
    try:
        import plotly.graph_objects  # noqa: F401
    except ImportError:
        raise ReportError(f"the report needs plotly: {INSTALL}") from None


def log_report_html(path: str | os.PathLike[str]) -> ReportPage:
    """The report page of the log at ``path`` (plotly checked first, then the log read)."""
    require_plotly()
    return render_page(read_log_data(path))


def render_page(data: LogData) -> ReportPage:
    """The page for ``data``: every chart made, the sections laid out."""
    from clearsim.replay.report.charts import all_charts, chart_html, plotlyjs

    charts = all_charts(data)
    n = sum(len(cs) for cs in charts.values())
    empty = sum(1 for cs in charts.values() for c in cs if c.figure is None)
    extra = {
        "fund": _fund_table(data),
        "cascades": _cascade_table(data),
        "config": _config_tables(data),
    }
    body: list[str] = [_header(data)]
    body.append(
        "<nav><ol>"
        + "".join(f'<li><a href="#{k}">{_e(h)}</a></li>' for k, h, _ in SECTIONS)
        + "</ol></nav>"
    )
    for i, (key, heading, about) in enumerate(SECTIONS, 1):
        parts = [f'<section id="{key}"><h2>{i}. {_e(heading)}</h2><p class="about">{_e(about)}</p>']
        for c in charts.get(key, ()):
            parts.append(_figure(c, chart_html(c)))
        parts.append(extra.get(key, ""))
        parts.append("</section>")
        body.append("".join(parts))
    body.append(_footer(data))
    name = os.path.basename(data.path)
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>clearsim report: {_e(name)}</title>"
        f"<style>{_CSS}</style>"
        f'<script type="text/javascript">{plotlyjs()}</script>'
        "</head><body><main>" + "\n".join(body) + "</main></body></html>\n"
    )
    return ReportPage(page, n, empty, data.torn)


# --------------------------------------------------------------------------- pieces


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _figure(c: Chart, div: str) -> str:
    cap = f'<p class="caption">{_e(c.caption)}</p>' if c.caption else ""
    return f"<figure>{div}{cap}</figure>"


def _table(head: Sequence[str], rows: Iterable[Sequence[object]], cls: str = "") -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>'


def _span(us: int) -> str:
    s = us // 1_000_000
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {sec:02d} s"


def _pct(delta: int, base: int) -> str:
    if not base:
        return "n/a"
    bp = (abs(delta) * 20000 + base) // (2 * base)  # hundredths of a percent, rounded
    return f"{'-' if delta < 0 else '+'}{bp // 100}.{bp % 100:02d}%"


def _tile(label: str, value: str, note: str = "", cls: str = "") -> str:
    n = f'<div class="note">{_e(note)}</div>' if note else ""
    return (
        f'<div class="tile {cls}"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div>{n}</div>'
    )


def _header(data: LogData) -> str:
    """The run's summary: the story's headline numbers."""
    st, money, f = data.story, data.money, data.story.fund
    t0 = st.first_ts or 0
    preset = data.config.get("exchange", {}).get("preset")
    steps = " -> ".join(data.config.get("waterfall", {}).get("steps", []))
    sub = (
        f"{utc(t0)} to {utc(st.last_ts)} ({_span(st.last_ts - t0)} simulated) · seed "
        f"{data.header.seed} · engine {data.header.engine} · waterfall {steps}"
        + (f" · preset {preset}" if preset else "")
    )
    tiles = []
    rej = sum(st.rejected.values())
    tiles.append(_tile("events", f"{st.events:,}", f"{st.commands:,} commands, {rej:,} rejected"))
    for sym, r in sorted(st.index.items())[:2]:
        g = data.grids.get(sym)
        px = g.fmt_price if g is not None else str
        tiles.append(
            _tile(
                f"{sym} index",
                f"{px(r.first)} → {px(r.last)}",
                f"low {px(r.low)} ({_pct(r.low - r.first, r.first)}) at {utc(r.low_ts)[11:]}",
            )
        )
    tiles.append(_tile("trades", f"{st.trades:,}"))
    tiles.append(
        _tile(
            "accounts liquidated",
            f"{len(st.liquidated):,}",
            f"{st.triggered:,} triggers, {st.avoided:,} saved by cancelling orders",
            "warn" if st.liquidated else "",
        )
    )
    configured = data.config.get("waterfall", {}).get("steps", [])
    closed = [
        (name, totals.count)
        for name, totals in (
            ("book", st.book),
            ("backstop", st.backstop),
            ("takeover", st.takeover),
            ("ADL", st.adl),
        )
        if totals.count or name.lower() in configured
    ]
    tiles.append(
        _tile(
            "waterfall",
            " · ".join(f"{name} {n:,}" for name, n in closed) or "nothing closed",
            "book fills, backstop transfers, takeovers, deleveragings "
            f"({len(st.adl.accounts):,} accounts ADL'd)",
            "wide",
        )
    )
    dry = f"; ran dry at {utc(f.empty_ts)[11:]}" if f.empty_seq else ""
    tiles.append(
        _tile(
            "insurance fund (equity)",
            f"{money.text(f.start)} → {money.text(f.equity)}",
            f"minimum {money.text(f.min_equity)}{dry}",
            "bad" if f.empty_seq else "",
        )
    )
    tiles.append(
        _tile(
            "fund paid / took in",
            f"{money.text(f.paid)} / {money.text(f.took_in)}",
            "shortfalls and bankruptcies / liquidation fees and surplus",
        )
    )
    tiles.append(
        _tile(
            "clawback",
            money.text(st.clawback_collected),
            f"from {len(st.clawed):,} accounts over {st.clawback_periods:,} periods",
        )
    )
    tiles.append(
        _tile(
            "system debt",
            money.text(st.system_debt),
            f"{st.debt_events:,} write-offs",
            "bad" if st.system_debt else "",
        )
    )
    big = st.cascades.largest()
    tiles.append(
        _tile(
            "cascades",
            f"{len(st.cascades.cascades):,}",
            f"largest: {big.triggered:,} liquidations from seq {big.root:,}" if big else "none",
        )
    )
    torn = (
        f'<p class="torn">The log\'s tail is torn: {_e(data.torn)}. This report shows what is '
        "before it.</p>"
        if data.torn is not None
        else ""
    )
    return (
        f"<header><h1>clearsim report: {_e(os.path.basename(data.path))}</h1>"
        f'<p class="sub">{_e(sub)}</p>{torn}<div class="tiles">{"".join(tiles)}</div>'
        "<details><summary>the story, as <code>clearsim story</code> tells it</summary>"
        f"<pre>{_e(story_text(st))}</pre></details></header>"
    )


def _fund_table(data: LogData) -> str:
    """The fund's figures, exact (fold_fund's), beside the chart's rounded ones."""
    f, money = data.fund, data.money
    low = f.low
    rows: list[tuple[str, str, str]] = [
        ("start", money.exact(f.initial), "the configured initial balance"),
        (
            "minimum equity",
            money.exact(low.low),
            f"at seq {low.low_seq:,}, {utc(low.low_ts)}" if low.low_seq else "at the start",
        ),
    ]
    if low.dry_seq:
        rows.append(("ran dry", "equity <= 0", f"at seq {low.dry_seq:,}, {utc(low.dry_ts)}"))
    held = ", ".join(
        f"{data.fmt.qty(s, q)} {s} at mark {data.fmt.price(s, px)}" for s, q, px in f.positions
    )
    rows += [
        ("end equity", money.exact(f.equity), f"after seq {f.last_seq:,}"),
        ("end cash", money.exact(f.cash), f"holds {held}" if held else "no position held"),
        ("paid", money.exact(data.story.fund.paid), "to cover losses"),
        ("took in", money.exact(data.story.fund.took_in), "liquidation fees, surplus"),
    ]
    return _table(("", "amount", "when / what"), rows, "figures")


def _trigger(data: LogData, top: int) -> str:
    rc = data.story.cascades.cascades.get(top)
    move = rc.index_move or rc.mark_move if rc is not None else None
    if move is not None:
        sym, before, after = move
        p = data.fmt.price
        if before is None:
            return f"{sym} first price {p(sym, after)}"
        return f"{sym} {p(sym, before)} → {p(sym, after)} ({_pct(after - before, before)})"
    cmd = data.cascades[0].records[top].get("command") if data.cascades else None
    return str((cmd or {}).get("type", "input"))


def _cascade_table(data: LogData) -> str:
    if not data.cascades:
        return ""
    unit = data.collateral
    rows = []
    for i, c in enumerate(data.cascades, 1):
        t = c.totals
        steps = cascade_steps(c)
        closed = "; ".join(
            f"{step} " + ", ".join(f"{q} {s}" for s, q in per.items())
            for step, per in t["closed"].items()
            if per
        )
        rows.append(
            (
                f"#{i}",
                f"{c.top:,}",
                utc(c.records[c.top]["ts"]),
                _trigger(data, c.top),
                f"{t['liquidations']:,} ({t['accounts_liquidated']:,} accounts)",
                ", ".join(f"{k} {n:,}" for k, n in sorted(steps.items())) or "-",
                closed or "-",
                f"{t['fund_paid']} / {t['fund_took_in']} {unit}",
                f"{t['fund_equity_before']} → {t['fund_equity_after']} {unit}",
                f"{t['system_debt']} {unit}",
                f"{t['events']:,}",
            )
        )
    head = (
        "",
        "root seq",
        "time",
        "trigger",
        "liquidations",
        "steps run",
        "closed (lots)",
        "fund paid / took in",
        "fund equity",
        "system debt",
        "events",
    )
    return (
        _table(head, rows, "cascades")
        + '<p class="caption">The same totals as <code>clearsim cascade LOG</code>; '
        "<code>clearsim cascade LOG --from SEQ</code> prints a cascade's whole tree.</p>"
    )


#: Config keys that are amounts of collateral (decimal strings).
_MONEY_KEYS: Final = frozenset({"initial", "impact_notional", "max_notional"})


def _value(key: str, v: Any, collateral: str) -> str:
    """A config value as the TOML has it, with its unit: ppm also as a percentage, seconds,
    collateral amounts."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        if key.endswith("_ppm"):
            pct = (Decimal(v) / 10_000).normalize()
            return f"{v:,} ({pct:f}%)"
        if key.endswith("_s"):
            return f"{v:,} s"
        return str(v)
    if isinstance(v, str):
        return f"{v} {collateral}" if key in _MONEY_KEYS else v
    return orjson.dumps(v).decode()


def _config_tables(data: LogData) -> str:
    """The header's config, table by table; the keys a preset set are marked."""
    cfg = data.config
    preset_name = cfg.get("exchange", {}).get("preset")
    preset = PRESETS.get(preset_name, {}) if isinstance(preset_name, str) else {}
    h = data.header
    unit = data.collateral
    out = [
        '<div class="cfg"><h3>log header</h3>'
        + _table(
            ("key", "value"),
            [
                ("format", h.format),
                ("engine", h.engine),
                ("seed", h.seed),
                ("preset", preset_name or "none"),
            ],
            "kv",
        )
        + "</div>"
    ]

    def table_of(table: str, d: dict[str, Any]) -> str:
        """Key, value and, where the preset sets keys of this table, what it set."""
        own = preset.get(table, {})
        rows: list[tuple[str, ...]] = []
        for k, v in d.items():
            if k == "tiers":
                continue
            if not own:
                rows.append((k, _value(k, v, unit)))
                continue
            note = ""
            if k in own:
                note = "= preset" if own[k] == v else f"preset: {_value(k, own[k], unit)}"
            rows.append((k, _value(k, v, unit), note))
        head = ("key", "value", f"preset {preset_name}") if own else ("key", "value")
        return _table(head, rows, "kv")

    for table in ("exchange", "insurance_fund", "waterfall"):
        d = cfg.get(table)
        if isinstance(d, dict):
            out.append(f'<div class="cfg"><h3>[{table}]</h3>{table_of(table, d)}</div>')
    for inst in cfg.get("instruments", []):
        block = [f"<h3>[[instruments]] {_e(inst.get('symbol', ''))}</h3>"]
        block.append(table_of("instruments", inst))
        tiers = inst.get("tiers") or []
        if tiers:
            keys = list(tiers[0])
            block.append("<h3>tiers</h3>")
            block.append(
                _table(keys, [[_value(k, t.get(k, ""), unit) for k in keys] for t in tiers])
            )
        out.append('<div class="cfg">' + "".join(block) + "</div>")
    raw = orjson.dumps(cfg, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return (
        '<div class="config">' + "".join(out) + "</div>"
        f"<details><summary>the config as JSON</summary><pre>{_e(raw)}</pre></details>"
    )


def _footer(data: LogData) -> str:
    return (
        f"<footer>Made by clearsim {_e(clearsim.__version__)} from "
        f"{_e(os.path.basename(data.path))} alone "
        "(checksums verified, no engine): the figures are those of <code>clearsim story</code>, "
        "<code>fund</code> and <code>cascade</code> for the same log.</footer>"
    )


_CSS: Final = """
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#1d2330;
 font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1240px;margin:0 auto;padding:20px 24px 40px}
header h1{font-size:22px;margin:0 0 4px}
.sub{color:#5b6475;margin:0 0 14px}
.torn{background:#fff3cd;border:1px solid #e0c36b;padding:8px 12px;border-radius:6px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:10px;
 grid-auto-flow:dense}
.tile{background:#fff;border:1px solid #dde1e8;border-left:4px solid #4c78a8;
 border-radius:6px;padding:9px 12px}
.tile.warn{border-left-color:#f58518}.tile.bad{border-left-color:#e45756}
.tile.wide{grid-column:span 2}
.tile .label{color:#5b6475;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.tile .value{font-size:16px;font-weight:600;margin:2px 0}
.tile .note{color:#5b6475;font-size:12px}
details{margin:12px 0}summary{cursor:pointer;color:#3a5a98}
pre{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:10px;overflow:auto;
 font-size:12px}
nav ol{display:flex;flex-wrap:wrap;gap:4px 18px;padding:10px 0 0 18px;margin:8px 0 0}
nav a{color:#3a5a98;text-decoration:none}
section{background:#fff;border:1px solid #dde1e8;border-radius:8px;margin:18px 0;
 padding:14px 18px}
section h2{font-size:18px;margin:0}
.about{color:#5b6475;margin:2px 0 8px}
figure{margin:8px 0 14px}
.caption{color:#5b6475;font-size:12.5px;margin:4px 0 0}
.no-data{margin:0;padding:26px 16px;text-align:center;color:#5b6475;background:#f7f8fa;
 border:1px dashed #c9cfd9;border-radius:6px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border-bottom:1px solid #e6e9ef;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f2f4f7;font-weight:600}
table.cascades{width:100%;font-size:12.5px}
.config{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:4px 28px;
 align-items:start}
.cfg{overflow-x:auto}
.config h3{font-size:14px;margin:12px 0 2px;font-family:ui-monospace,monospace}
.config table{width:100%}
.config td:first-child{font-family:ui-monospace,monospace}
table.figures td:nth-child(2){font-variant-numeric:tabular-nums;text-align:right}
footer{color:#5b6475;font-size:12px;margin-top:10px}
"""
