"""Text for people, and the JSON and CSV shapes of the views: everything the CLI prints.

One function per view; each returns text (or lines, or JSON-able data) and prints nothing,
so a test can compare what a verb would print without a subprocess. The domain results they
render come from :mod:`replay.verify`, :mod:`replay.diff`, :mod:`replay.snapshot` and the
projections (:mod:`replay.projections`); the JSON shape of ``state`` is the contract
(DESIGN §10), and this module's text is only a view of it.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from decimal import Decimal
from typing import Any

import orjson

from clearsim.clearing.config import fmt_atoms
from clearsim.events.codec import ENGINE_VERSION
from clearsim.orderbook.grid import Grid
from clearsim.replay.diff import DiffResult
from clearsim.replay.projections.cascade import Cascade, CascadeFigures, Fmt, Index, subtree
from clearsim.replay.projections.fund import FundReport
from clearsim.replay.projections.orders import EntryOrders
from clearsim.replay.projections.story import RootCascade, StepTotals, Story
from clearsim.replay.runner import RunSummary
from clearsim.replay.scenarios import Scenario
from clearsim.replay.sweep.calibrate import Calibration
from clearsim.replay.sweep.overrides import render as param_text
from clearsim.replay.verify import VerifyResult

# --------------------------------------------------------------------------- run, demo


def run_summary(s: RunSummary, output: str) -> str:
    resumed = (
        ""
        if s.resumed_after is None
        else f"resumed the partial log after seq {s.resumed_after} (events up to there "
        "checked, not written again)\n"
    )
    return (
        resumed
        + (
            f"{s.commands} commands ({s.rejected} rejected) -> "
            f"{s.events} events, last seq {s.last_seq}, written to {output}\n"
        )
        + entry_orders_line(s.entries)
    )


def entry_orders_line(e: EntryOrders, indent: str = "") -> str:
    """How the entry orders ended, one line ("" when there were none)."""
    if not e.orders:
        return ""
    return (
        f"{indent}{e.did_not_fill:,} of {e.orders:,} entry orders (IOC/FOK/market) did not "
        f"fill: {e.unfilled:,} expired with nothing filled (no liquidity within their "
        f"limit), {e.rejected:,} rejected; {e.partly:,} filled in part\n"
    )


def demo_banner(sc: Scenario, seed: int) -> str:
    if sc.market is None:
        span = f"{sc.steps * sc.step_s // 60} minutes"
    else:
        span = f"a historical day from {_utc(sc.start_ts)}"
    return (
        f"clearsim demo: {sc.name!r} (seed {seed}): {sc.population.count:,} leveraged "
        f"accounts, {sc.makers.count} market makers, {span} on "
        f"{sc.symbol}; waterfall {' -> '.join(sc.config.waterfall.steps)}"
    )


def sim_clock(ts: int) -> str:
    """The simulated clock, for a progress display."""
    return _utc(ts)[:-4] if ts else ""


def demo_timing(s: RunSummary, where: str, run_s: float, read_s: float) -> str:
    return (
        f"ran {s.commands:,} commands into {s.events:,} events in "
        f"{run_s:.1f} s, written to {where}; story read back from the log in "
        f"{read_s:.1f} s\n\n"
    )


# --------------------------------------------------------------------------- report


def report_written(output: str, size: int, charts: int, empty: int) -> str:
    """What ``clearsim report`` prints once the page is in place."""
    what = f"; {charts} charts" if charts else ""
    if empty:
        what += f", {empty} of them saying there was no data"
    return f"report written to {output} ({size / 1e6:.1f} MB{what})\n"


# --------------------------------------------------------------------------- state


def state_text(state: dict[str, Any]) -> str:
    """The state view as text: the fund's equity with its cash and positions beside it,
    then per account the wallet balance W, the quote balance Q and the equity (DESIGN §4)."""
    held = ", ".join(
        f"{sym} {p['qty']} @ {p['entry_price']}"
        for sym, p in state["insurance_fund_positions"].items()
    )
    lines = [
        f"seq {state['seq']}  ts {state['ts']}",
        f"insurance fund {state['insurance_fund']} (equity; cash "
        f"{state['insurance_fund_cash']}{'; holds ' + held if held else ''})  "
        f"system debt {state['system_debt']}  fee pool {state['fee_pool']}",
    ]
    for sym, p in state["instruments"].items():
        lines.append(f"{sym}: mark {p['mark']}  index {p['index']}  last {p['last_trade']}")
    m = state.get("market")
    if m is not None:  # the historical market's account (clearing.market): not a trader
        mpos = m["positions"].items()
        held = ", ".join(f"{sym} {p['qty']} @ {p['entry_price']}" for sym, p in mpos)
        lines.append(
            f"market (#market, no margin): balance {m['balance']}  quote balance "
            f"{m['quote_balance']}  equity {m['equity']}{'  holds ' + held if held else ''}"
        )
    lines.append(f"{len(state['accounts'])} accounts")
    header = (
        f"  {'account':<16} {'balance':>16} {'quote balance':>16} {'equity':>16}  positions"
    )
    lines.append(header)
    for aid, a in state["accounts"].items():
        pos = ", ".join(
            f"{sym} {p['qty']} @ {p['entry_price']} (liq {p['liquidation_price'] or '-'})"
            for sym, p in a["positions"].items()
        )
        flag = "  LIQUIDATABLE" if a["liquidatable"] else ""
        lines.append(
            f"  {aid:<16} {a['balance']:>16} {a['quote_balance']:>16} {a['equity']:>16}  "
            f"{pos or '-'}{flag}"
        )
    lines.append(
        "  (balance = wallet balance: quote balance + the positions' entry cost; "
        "equity = quote balance + the positions at the mark)"
    )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- snapshots


def snapshots_written(n: int, every: int, path: str) -> str:
    return f"{n} snapshots (every {every} records) written to {path}\n"


def snapshots_checked(checked: int, problem: str | None) -> str:
    return f"OK {checked} snapshots match the log" if problem is None else f"FAIL {problem}"


# --------------------------------------------------------------------------- verify


def verify(res: VerifyResult) -> tuple[list[str], list[str]]:
    """(stdout lines, stderr lines) describing a result for the CLI."""
    out: list[str] = []
    err: list[str] = []
    if res.torn is not None:
        err.append(f"warning: {res.torn}")  # it says what was cut (lost_with_tail included)
    if res.corrupt is not None:
        out.append(f"FAIL chain broken at seq {res.corrupt.seq}: {res.corrupt}")
        out.append(f"  records before seq {res.corrupt.seq} re-executed identically")
    if res.divergence is not None:
        d = res.divergence
        out.append(f"FAIL divergence at seq {d.seq}: {d.reason}")
        fields = d.fields()
        if fields:
            out.append(f"  fields differ: {', '.join(fields)}")
        out.append("  logged:      " + _show(d.logged))
        out.append("  re-executed: " + _show(d.replayed))
    if res.conservation is not None:
        out.append(f"FAIL conservation: {res.conservation}")
    if res.ok:
        prefix = "good prefix " if res.torn is not None else ""
        out.append(
            f"OK {res.path}: {prefix}{res.events} events ({res.commands} commands) "
            f"re-executed identically, chain and conservation hold; "
            f"{res.seconds:.2f} s, {res.rate:,.0f} events/s"
        )
    else:
        out.append(
            f"verified {res.events} events ({res.commands} commands) before the failure "
            f"in {res.seconds:.2f} s"
        )
    if res.engine_logged != ENGINE_VERSION:
        err.append(
            f"note: log written by engine {res.engine_logged}, verified with {ENGINE_VERSION}"
        )
    return out, err


def _show(body: bytes | None) -> str:
    return "(none)" if body is None else body.decode("utf-8", "replace")


# --------------------------------------------------------------------------- diff


def diff(r: DiffResult, max_accounts: int = 20) -> list[str]:
    """Lines of text describing a diff."""
    if r.identical:
        return [f"identical: {r.events_a} events, same final state"]
    out: list[str] = []
    for h in r.header:
        out.append(f"header differs: {h}")
    if r.seq is not None:
        out.append(f"first divergence at seq {r.seq}:")
        out.append("  A: " + ("(no record)" if r.body_a is None else r.body_a.decode()))
        out.append("  B: " + ("(no record)" if r.body_b is None else r.body_b.decode()))
    else:
        out.append(f"every record agrees ({r.events_a} events)")
    if r.events_a != r.events_b:
        out.append(f"events: A {r.events_a}, B {r.events_b}")
    for name, (x, y) in r.totals.items():
        out.append(f"{name}: A {x}  B {y}  (B - A = {_minus(y, x)})")
    if r.accounts:
        out.append(f"accounts that differ: {len(r.accounts)}")
        for i, (aid, fields) in enumerate(r.accounts.items()):
            if i == max_accounts:
                out.append(f"  ... {len(r.accounts) - max_accounts} more")
                break
            parts = [
                f"{k} {x if x is not None else '-'} -> {y if y is not None else '-'}"
                for k, (x, y) in fields.items()
            ]
            out.append(f"  {aid}: " + "; ".join(parts))
    return out


def _minus(y: str, x: str) -> str:
    return format(Decimal(y) - Decimal(x), "f")


# --------------------------------------------------------------------------- cascade


def _move(fmt: Fmt, sym: str, what: str, before: int | None, after: int | None) -> str:
    if after is None:
        return f"{what} -"
    if before is None:
        return f"{what} {fmt.price(sym, after)} (first print)"
    if before == after:
        return f"{what} {fmt.price(sym, after)} (unchanged)"
    return (
        f"{what} {fmt.price(sym, before)} -> {fmt.price(sym, after)} "
        f"({_pct(after - before, before)})"
    )


def _utc_us(ts: int) -> str:
    dt = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC) + _dt.timedelta(microseconds=ts)
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _totals_text(fmt: Fmt, f: CascadeFigures) -> list[str]:
    out = []
    for sym, m in sorted(f.prices.items()):
        out.append(
            f"  {sym}: {_move(fmt, sym, 'index', m.index_before, m.index_after)}; "
            f"{_move(fmt, sym, 'mark', m.mark_before, m.mark_after)}"
        )
    gens = ", ".join(f"{g}: {n}" for g, n in sorted(f.by_generation.items()))
    out.append(
        f"  events {f.events}; liquidations {f.liquidations} ({f.accounts_liquidated} "
        f"accounts): {f.by_price} by the price, {f.by_liquidation} by other liquidations"
        + (f" (by generation {gens})" if gens else "")
    )
    closed = []
    for step, per in f.closed.items():
        if per:
            closed.append(f"{step} " + ", ".join(fmt.qty_u(sym, q) for sym, q in per.items()))
    out.append("  closed: " + ("; ".join(closed) if closed else "nothing"))
    for sym, r in sorted(f.liquidation_fills.items()):
        out.append(
            f"  liquidation orders on {sym} filled from {fmt.price(sym, r.first)} to "
            f"{fmt.price(sym, r.last)} ({_pct(r.last - r.first, r.first)}, {r.count} fills)"
        )
    u = fmt.money_u
    out.append(
        f"  fund paid {u(f.fund_paid)}, took in {u(f.fund_took_in)} (equity "
        f"{u(f.fund_equity_before)} -> {u(f.fund_equity_after)}); "
        f"clawed back {u(f.clawed_back)}; system debt {u(f.system_debt)}"
    )
    return out


def _line(fmt: Fmt, d: dict[str, Any]) -> str:
    f = fmt.fields(d, units=True)
    return f"#{d['seq']} {d['type']} " + " ".join(f"{k}={v}" for k, v in f.items())


def cascade_text(
    cs: list[Cascade], idx: Index, fmt: Fmt, *, depth: int = 12, width: int = 10
) -> list[str]:
    out: list[str] = []
    if not cs:
        out.append("no cascades: the log has no liquidations")
    for c in cs:
        root = idx.root[c.top]
        f = c.figures
        head = f"cascade from seq {c.top} ({idx.types[c.top]})"
        if root != c.top:
            head += f", under input seq {root}"
        head += f", at {_utc_us(f.first_ts)}"
        if f.last_ts != f.first_ts:
            head += f" to {_utc_us(f.last_ts)}"
        out.append(head)
        out.extend(_totals_text(fmt, f))
        out.extend(_walk(c, idx, fmt, depth, width))
        out.append("")
    if idx.torn is not None:
        out.append(f"note: {idx.torn}")
    return out


def cascade_table(cs: list[Cascade], idx: Index, fmt: Fmt) -> list[str]:
    """One line per cascade: where and when, its size by generation, the fund, the mark."""
    unit = fmt.collateral
    out = [
        f"{'from':>9} {'root':>9}  {'time (UTC)':<26} {'events':>8} {'liqs':>6} "
        f"{'price':>6} {'liq':>6} {'gens':>4} {'fund paid ' + unit:>18} "
        f"{'fund equity after ' + unit:>24}  mark move"
    ]
    for c in cs:
        f = c.figures
        marks = "; ".join(
            _move(fmt, sym, sym, m.mark_before, m.mark_after) for sym, m in sorted(f.prices.items())
        )
        out.append(
            f"{c.top:>9} {idx.root[c.top]:>9}  {_utc_us(f.first_ts)[:-4]:<26} {f.events:>8} "
            f"{f.liquidations:>6} {f.by_price:>6} {f.by_liquidation:>6} {f.generations:>4} "
            f"{fmt.money(f.fund_paid):>18} {fmt.money(f.fund_equity_after):>24}  {marks}"
        )
    if not cs:
        out.append("no cascades: the log has no liquidations")
    if idx.torn is not None:
        out.append(f"note: {idx.torn}")
    return out


def _walk(c: Cascade, idx: Index, fmt: Fmt, depth: int, width: int) -> list[str]:
    out: list[str] = []
    # Stack items: an event (seq, level), or a ready-made text line (str).
    stack: list[tuple[int, int] | str] = [(c.top, 1)]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        seq, level = item
        pad = "  " * level
        out.append(pad + _line(fmt, c.records[seq]))
        kids = idx.children.get(seq)
        if not kids:
            continue
        if level >= depth:
            below = subtree(idx, seq)
            liq = sum(1 for s in below if idx.types[s] == "liquidation_triggered")
            out.append(f"{pad}  ... {len(below) - 1} more below ({liq} liquidations)")
            continue
        hidden = kids[width:]
        if hidden:
            below = [s for k in hidden for s in subtree(idx, k)]
            liq = sum(1 for s in below if idx.types[s] == "liquidation_triggered")
            stack.append(
                f"{pad}  ... {len(hidden)} more children ({len(below)} events, {liq} liquidations)"
            )
        for k in reversed(kids[:width]):
            stack.append((k, level + 1))
    return out


def cascade_json(cs: list[Cascade], idx: Index, fmt: Fmt) -> dict[str, Any]:
    """A flat JSON shape: each cascade's totals and its events (record fields, in seq
    order), amounts as decimal strings in the units of the text (money in ``collateral``,
    quantities in contracts of each record's symbol, prices in its quote)."""
    return {
        "collateral": fmt.collateral,
        "cascades": [
            {
                "from": c.top,
                "root": idx.root[c.top],
                "totals": c.totals,
                "events": [fmt.record(c.records[s]) for s in c.seqs],
            }
            for c in cs
        ],
        "torn": None if idx.torn is None else str(idx.torn),
    }


# --------------------------------------------------------------------------- export


def export_summary(table: str, rows: int, output: str, fmt: str, units: str) -> str:
    what = "events" if table == "events" else f"{table} rows"
    return f"{rows:,} {what} ({units} units) written to {output} ({fmt})\n"


# --------------------------------------------------------------------------- fund


def _fund_positions(r: FundReport, held: tuple[tuple[str, int, int], ...]) -> dict[str, Any]:
    """{symbol: {"qty", "price"}}: lots and the price they are valued at, decimal strings."""
    out: dict[str, Any] = {}
    for sym, q, px in held:
        g = r.grids.get(sym)
        out[sym] = {
            "qty": str(q) if g is None else g.fmt_qty(q),
            "price": str(px) if g is None else g.fmt_price(px),
        }
    return out


def _held_text(r: FundReport, held: tuple[tuple[str, int, int], ...]) -> str:
    return "; ".join(
        f"{sym} {p['qty']} @ {p['price']}" for sym, p in _fund_positions(r, held).items()
    )


def fund_json(r: FundReport) -> dict[str, Any]:
    """The report as JSON-able data, amounts as decimal strings. ``equity`` is the fund
    (DESIGN §6), with ``cash`` and ``positions`` beside it, at the end and on every row."""
    sc = r.scale
    low = r.low
    return {
        "last_seq": r.last_seq,
        "initial": fmt_atoms(r.initial, sc),
        "equity": fmt_atoms(r.equity, sc),
        "cash": fmt_atoms(r.cash, sc),
        "positions": _fund_positions(r, r.positions),
        "min_equity": {"equity": fmt_atoms(low.low, sc), "seq": low.low_seq, "ts": low.low_ts},
        "ran_dry": {"seq": low.dry_seq, "ts": low.dry_ts} if low.dry_seq else None,
        "timeline": [
            {"seq": x.seq, "ts": x.ts, "equity": fmt_atoms(x.equity, sc),
             "cash": fmt_atoms(x.cash, sc), "amount": fmt_atoms(x.amount, sc),
             "reason": x.reason, "cause": x.cause, "account": x.account,
             "positions": _fund_positions(r, x.positions)}
            for x in r.timeline
        ],
        "clawbacks": [
            {"period": p.period, "seq": p.seq, "ts": p.ts,
             "socialized": [{"seq": s, "account": a, "amount": fmt_atoms(v, sc)}
                            for s, a, v in p.losses],
             "loss": fmt_atoms(p.loss, sc), "profit_base": fmt_atoms(p.profit_base, sc),
             "rate_ppm": p.rate_ppm, "collected": fmt_atoms(p.collected, sc),
             "charges": {a: fmt_atoms(c, sc) for a, c in p.charges}}
            for p in r.clawbacks
        ],
        "adl": [
            {"seq": a.seq, "ts": a.ts, "cause": a.cause, "account": a.account,
             "counterparty": a.counterparty, "symbol": a.symbol, "qty": a.qty,
             "price": a.price, "value": fmt_atoms(a.value, sc), "rank": a.rank,
             "score": a.score}
            for a in r.adl
        ],
    }  # fmt: skip


def fund_csv(r: FundReport) -> str:
    """The timeline as CSV: seq,ts,equity,cash,amount,reason,cause,account,position
    (``position``: "SYMBOL lots @ price" of what the fund holds after the row, ``; ``
    between symbols, empty when flat)."""
    sc = r.scale
    lines = ["seq,ts,equity,cash,amount,reason,cause,account,position"]
    for x in r.timeline:
        lines.append(
            f"{x.seq},{x.ts},{fmt_atoms(x.equity, sc)},{fmt_atoms(x.cash, sc)},"
            f"{fmt_atoms(x.amount, sc)},{x.reason},{x.cause},{x.account},"
            f"{_held_text(r, x.positions)}"
        )
    return "\n".join(lines) + "\n"


def fund_text(r: FundReport, limit: int = 40) -> str:
    """A readable summary: the fund's equity (start, minimum, end, ran dry) with its cash
    and positions, totals by reason, the last ``limit`` changes, clawbacks, ADL."""
    sc = r.scale
    low = r.low
    where = "at the start" if not low.low_seq else f"at seq {low.low_seq} (ts {low.low_ts})"
    out = [
        f"insurance fund equity: start {fmt_atoms(r.initial, sc)}, minimum "
        f"{fmt_atoms(low.low, sc)} {where}, end {fmt_atoms(r.equity, sc)} "
        f"(after seq {r.last_seq}); {len(r.timeline)} changes",
        f"  cash {fmt_atoms(r.cash, sc)}; "
        + (f"holds {_held_text(r, r.positions)}" if r.positions else "no positions")
        + " (equity = cash + positions at the mark)",
    ]
    if low.dry_seq:
        out.append(f"  ran dry (equity <= 0) at seq {low.dry_seq} (ts {low.dry_ts})")
    by: dict[str, list[int]] = {}
    prev = r.initial
    for x in r.timeline:
        t = by.setdefault(x.reason, [0, 0, 0])
        t[0] += 1
        t[1] += x.amount
        t[2] += x.equity - prev
        prev = x.equity
    if by:
        out.append(f"  {'reason':<24} {'':>9}  {'cash':>18} {'equity':>18}")
    for reason in sorted(by):
        n, total, de = by[reason]
        out.append(
            f"  {reason:<24} {n:>7} x  {fmt_atoms(total, sc):>18} {fmt_atoms(de, sc):>18}"
        )
    if r.timeline:
        shown = r.timeline[-limit:]
        out.append(f"timeline (last {len(shown)}):")
        out.append(
            f"  {'seq':>9} {'ts':>17} {'amount':>16} {'cash':>18} {'equity':>18}  "
            "reason (cause)"
        )
        for x in shown:
            held = f" [holds {_held_text(r, x.positions)}]" if x.positions else ""
            out.append(
                f"  {x.seq:>9} {x.ts:>17} {fmt_atoms(x.amount, sc):>16} "
                f"{fmt_atoms(x.cash, sc):>18} {fmt_atoms(x.equity, sc):>18}  "
                f"{x.reason} {x.account} (cause {x.cause}){held}"
            )
    out.append(f"clawback periods: {len(r.clawbacks)}")
    for p in r.clawbacks:
        state = f"closed at seq {p.seq}" if p.seq else "open"
        out.append(
            f"  period {p.period} ({state}): socialized {fmt_atoms(p.socialized, sc)}, "
            f"loss {fmt_atoms(p.loss, sc)}, profit base {fmt_atoms(p.profit_base, sc)}, "
            f"rate {p.rate_ppm} ppm, collected {fmt_atoms(p.collected, sc)}"
        )
        for acct, c in p.charges:
            out.append(f"    {acct:<16} {fmt_atoms(c, sc):>16}")
    out.append(f"ADL: {len(r.adl)} deleveragings")
    for row in r.adl[:limit]:
        out.append(
            f"  seq {row.seq}: {row.account} vs {row.counterparty} {row.symbol} "
            f"qty {row.qty} @ {row.price} rank {row.rank} score {row.score}"
        )
    if r.torn is not None:
        out.append(f"warning: {r.torn}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- story


def story_text(story: Story, title: str = "") -> str:
    """The story as text for people (the fold's fields are the machine-readable form)."""
    grids = {
        str(i["symbol"]): Grid(str(i.get("tick_size", "1")), str(i.get("lot_size", "1")))
        for i in story.config.get("instruments", [])
    }
    sc = story.scale
    t0 = story.first_ts or 0
    collateral = str(story.config.get("exchange", {}).get("collateral", ""))

    # Cents for a stablecoin-like collateral (<= 6 decimals), 4 places for a BTC-like one.
    decimals = len(str(sc)) - 1
    places = min(decimals, 2 if decimals <= 6 else 4)

    def money(atoms: int) -> str:
        return f"{_money(atoms, sc, places)} {collateral}".rstrip()

    def when(seq: int, ts: int) -> str:
        return f"seq {seq:,}, {_clock(ts, t0)}"

    def qty(totals: Counter[str]) -> str:
        parts = [f"{_qty(grids, s, q)} {s}" for s, q in sorted(totals.items())]
        return ", ".join(parts) or "nothing"

    out: list[str] = []
    if title:
        out += [title, ""]
    rej = sum(story.rejected.values())
    out.append(
        f"{story.events:,} events from {story.commands:,} commands ({rej:,} rejected), "
        f"{_span(story.last_ts - t0)} of simulated time from {_utc(t0)}"
    )
    if rej:
        top = ", ".join(f"{n:,} {why}" for why, n in story.rejected.most_common(3))
        out.append(f"  rejections: {top}")
    entries = entry_orders_line(story.entry_orders.totals(), "  ")
    if entries:
        out.append(entries.rstrip("\n"))

    out += ["", "Market"]
    for sym, r in sorted(story.index.items()):
        drop = _pct(r.low - r.first, r.first)
        out.append(
            f"  {sym} index {_px(grids, sym, r.first)} -> low {_px(grids, sym, r.low)} "
            f"({drop}, {_clock(r.low_ts, t0)}) -> {_px(grids, sym, r.last)} at the end"
        )
    own = f" ({story.market_trades:,} of them the historical market's own)"
    out.append(f"  {story.trades:,} trades{own if story.market_trades else ''}")

    out += ["", "Liquidations"]
    out.append(
        f"  {len(story.liquidated):,} accounts liquidated ({story.triggered:,} triggers); "
        f"{story.avoided:,} saved by cancelling their orders; "
        f"{story.left_open:,} left partly open"
    )

    out += ["", "Waterfall"]
    steps = ", ".join(f"{k} {n:,}" for k, n in sorted(story.steps.items())) or "none"
    out.append(f"  steps run: {steps}")

    def step(name: str, totals: StepTotals, what: str, extra: str = "") -> None:
        first = f"; first at {_clock(totals.first_ts, t0)}" if totals.count else ""
        out.append(
            f"  {name:<9} {totals.count:>7,} {what:<13} closed {qty(totals.qty)}{extra}{first}"
        )

    step("book", story.book, "fills")
    n_bs = len(story.backstop.accounts)
    step("backstop", story.backstop, "transfers", f" ({n_bs:,} backstop account{_s(n_bs)})")
    step("takeover", story.takeover, "takeovers")
    n_adl = len(story.adl.accounts)
    step("adl", story.adl, "deleveragings", f" ({n_adl:,} account{_s(n_adl)} ADL'd)")
    out.append(
        f"  clawback  {money(story.clawback_collected)} charged to {len(story.clawed):,} "
        f"accounts over {story.clawback_periods:,} periods "
        f"(socialized loss {money(story.socialized)})"
    )
    for b, (seq, ts) in sorted(story.backstops_liquidated.items()):
        out.append(f"  the backstop account {b} was itself liquidated at {when(seq, ts)}")

    f = story.fund
    out += ["", "Insurance fund"]
    low = "at the start" if not f.min_seq else f"at {when(f.min_seq, f.min_ts)}"
    out.append(
        f"  equity (cash plus any position at the mark): start {money(f.start)}, "
        f"minimum {money(f.min_equity)} {low}, end {money(f.equity)}"
    )
    if f.empty_seq:
        out.append(f"  ran dry (equity at or below zero) at {when(f.empty_seq, f.empty_ts)}")
    out.append(
        f"  paid {money(f.paid)} to cover losses (shortfalls, bankruptcy payments); "
        f"took in {money(f.took_in)} (liquidation fees, surplus)"
    )
    held = f.book.held()
    if held:
        worth = ", ".join(
            f"{_qty(grids, s, q)} {s} at mark {_px(grids, s, px)}" for s, q, px in held
        )
        out.append(f"  cash {money(f.cash)}; holds {worth}")
    else:
        out.append(f"  cash {money(f.cash)}; no position held")
    ins = ", ".join(f"{why} {money(a)}" for why, a in sorted(f.inflows.items())) or "nothing"
    outs = ", ".join(f"{why} {money(a)}" for why, a in sorted(f.outflows.items())) or "nothing"
    out.append(f"  cash in: {ins}")
    out.append(f"  cash out: {outs}")

    out += ["", "System debt"]
    out.append(f"  {money(story.system_debt)} ({story.debt_events:,} write-offs)")

    out += ["", "Largest cascade"]
    c = story.cascades.largest()
    if c is None:
        out.append("  no liquidations")
    else:
        out.append(f"  root {when(c.root, c.ts)}: {_describe_root(c, grids)}")
        out.append(
            f"  {len(c.accounts):,} accounts liquidated ({c.triggered:,} triggers), "
            f"{len(c.deleveraged):,} ADL'd; the fund paid {money(c.fund_paid)} "
            f"and took in {money(c.fund_took_in)} (equity {money(c.fund_equity_before)} -> "
            f"{money(c.fund_equity_after)}); events seq {c.root:,}..{c.last_seq:,}"
        )
        n = len(story.cascades.cascades)
        out.append(f"  ({n:,} cascades in all)")
    return "\n".join(out) + "\n"


def _describe_root(c: RootCascade, grids: dict[str, Grid]) -> str:
    cmd = c.command or {}
    kind = str(cmd.get("type", "input"))
    if c.index_move is not None:
        sym, before, after = c.index_move
        if before is None:
            return f"index_price {sym} first print {_px(grids, sym, after)}"
        return (
            f"index_price {sym} {_px(grids, sym, before)} -> {_px(grids, sym, after)} "
            f"({_pct(after - before, before)})"
        )
    if c.mark_move is not None:
        sym, before, after = c.mark_move
        if before is not None:
            return (
                f"{kind} moved the {sym} mark {_px(grids, sym, before)} -> "
                f"{_px(grids, sym, after)} ({_pct(after - before, before)})"
            )
    who = cmd.get("account")
    return f"{kind}{f' by {who}' if who else ''}"


def _money(atoms: int, scale: int, places: int = 2) -> str:
    """Atoms to a display amount: thousands separators, ``places`` decimals (half up)."""
    sign = "-" if atoms < 0 else ""
    unit = 10**places
    v = (abs(atoms) * unit * 2 + scale) // (2 * scale)
    whole, frac = divmod(v, unit)
    return f"{sign}{whole:,}.{frac:0{places}d}" if places else f"{sign}{whole:,}"


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _pct(delta: int, base: int) -> str:
    if not base:
        return "n/a"
    bp = (abs(delta) * 20000 + base) // (2 * base)  # hundredths of a percent, rounded
    return f"{'-' if delta < 0 else '+'}{bp // 100}.{bp % 100:02d}%"


def _px(grids: dict[str, Grid], sym: str, ticks: int) -> str:
    g = grids.get(sym)
    return str(ticks) if g is None else g.fmt_price(ticks)


def _qty(grids: dict[str, Grid], sym: str, lots: int) -> str:
    g = grids.get(sym)
    return str(lots) if g is None else g.fmt_qty(lots)


def _span(us: int) -> str:
    s = us // 1_000_000
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


def _clock(ts: int, t0: int) -> str:
    return f"t+{_span(ts - t0)}"


def _utc(ts: int) -> str:
    dt = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC) + _dt.timedelta(microseconds=ts)
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC")


# --------------------------------------------------------------------------- sweep, calibrate


def _units(v: object, unit: str) -> str:
    """An exact amount (a Decimal from a results table) with its unit, to the cent."""
    return f"{Decimal(str(v)):,.2f} {unit}" if v is not None else "-"


def _exact(v: object) -> str:
    """An exact amount from a results row as a plain decimal string (no trailing zeros)."""
    d = Decimal(str(v)).normalize()
    return format(d, "f") if d else "0"


def _day(name: str, width: int = 22) -> str:
    """A day's name cut from the left to ``width`` (the file name is the telling end)."""
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _case(params: tuple[tuple[str, Any], ...] | str) -> str:
    if isinstance(params, str):
        params = tuple(orjson.loads(params).items())
    return ", ".join(f"{k}={param_text(v)}" for k, v in params) or "(the scenario as written)"


def sweep_summary(
    sweep_path: str,
    cells: int,
    ran: int,
    output: str,
    rows: list[dict[str, Any]],
    workers: str,
    seconds: float,
    limit: int = 40,
) -> str:
    """What ``clearsim sweep`` prints: the counts, then a line per cell of the sweep."""
    skipped = cells - ran
    head = (
        f"{sweep_path}: {cells} cells: {ran} run on {workers} in {seconds:.1f} s"
        + (f", {skipped} already in {output}" if skipped else "")
        + f"; {output} holds {len(rows)} rows\n"
    )
    if not rows:
        return head
    lines = [head, f"  {'day':<22} {'seed':>6}  {'fund min':>20} {'ADL':>6} "
             f"{'ADL notional':>20} {'clawback':>16} {'debt':>14}  parameters"]  # fmt: skip
    for r in rows[:limit]:
        unit = r["collateral"]
        lines.append(
            f"  {_day(r['day']):<22} {r['seed']:>6}  {_units(r['fund_min'], unit):>20} "
            f"{r['adl_count']:>6} {_units(r['adl_notional'], unit):>20} "
            f"{_units(r['clawback_total'], unit):>16} {_units(r['system_debt'], unit):>14}  "
            f"{_case(r['params'])}"
        )
    if len(rows) > limit:
        lines.append(f"  ... {len(rows) - limit} more rows in {output}")
    return "\n".join(lines) + "\n"


def calibrate_text(cal: Calibration, runs_from: str | None = None) -> str:
    """What ``clearsim calibrate`` prints: the answer per case, the monotonicity check, and
    the table of the runs made."""
    dom = cal.domain
    tol = "1% of the bracket" if cal.tolerance is None else dom.text(cal.tolerance)
    lines = [f"calibrate {dom.path} for {cal.target.value} (tolerance {tol}):"]
    for i, res in enumerate(cal.results):
        probes = len({r.value for r in cal.runs if r.case == i})
        if res.value is None:
            answer = f"not met up to {dom.text(res.lo)} ({probes} values tried)"
        elif res.value == res.lo:
            answer = f"{dom.text(res.value)} (met at the low end; {probes} values tried)"
        else:
            answer = f"{dom.text(res.value)} (fails at {dom.text(res.lo)}; {probes} values tried)"
        lines.append(f"  [{i}] {_case(res.params)}: {answer}")
        for v in res.violations:
            lines.append(f"    not monotone: {v}")
    if all(not r.violations for r in cal.results):
        lines.append("  monotone over every run made (per day and seed)")
    cached = sum(1 for r in cal.runs if r.cached)
    lines.append("")
    lines.append(
        f"runs: {len(cal.runs)}"
        + (f" ({cached} found in {runs_from})" if cached and runs_from else "")
    )
    lines.append(
        f"  {'case':>4} {'value':>20} {'day':<22} {'seed':>6} {'met':>4} {'ADL':>6} "
        f"{'ADL notional':>20} {'clawback':>16} {'debt':>14} {'fund min':>20}"
    )
    for r in cal.runs:
        row = r.row
        unit = row["collateral"]
        lines.append(
            f"  {r.case:>4} {dom.text(r.value):>20} {_day(r.day):<22} {r.seed:>6} "
            f"{'yes' if r.met else 'no':>4} {row['adl_count']:>6} "
            f"{_units(row['adl_notional'], unit):>20} {_units(row['clawback_total'], unit):>16} "
            f"{_units(row['system_debt'], unit):>14} {_units(row['fund_min'], unit):>20}"
        )
    return "\n".join(lines) + "\n"


def calibrate_json(cal: Calibration) -> dict[str, Any]:
    dom = cal.domain
    return {
        "param": dom.path,
        "target": cal.target.value,
        "unit": dom.unit or None,
        "results": [
            {
                "params": dict(res.params),
                "value": None if res.value is None else str(dom.value(res.value)),
                "fails_at": None
                if res.value is None or res.value == res.lo
                else str(dom.value(res.lo)),
                "monotone": not res.violations,
                "violations": list(res.violations),
            }
            for res in cal.results
        ],
        "runs": [
            {
                "case": r.case,
                "value": str(dom.value(r.value)),
                "day": r.day,
                "seed": r.seed,
                "key": r.key,
                "met": r.met,
                "chain_hash": r.row["chain_hash"],
                "adl_count": r.row["adl_count"],
                "clawback_total": _exact(r.row["clawback_total"]),
                "system_debt": _exact(r.row["system_debt"]),
                "fund_min": _exact(r.row["fund_min"]),
                "cached": r.cached,
            }
            for r in cal.runs
        ],
    }
