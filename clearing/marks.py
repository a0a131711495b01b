"""Prices: ``index_price`` commands, the mark policies (oracle, mid, median), the circuit
breaker (a halt when the mark moves more than ``breaker_ppm`` within the window) and the
end of halts (queued liquidations resume). Every mark change re-checks the accounts the
liquidation index says it crosses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearsim.clearing import watch
from clearsim.clearing.config import MarkPolicy
from clearsim.clearing.instrument import Instrument
from clearsim.clearing.mark import median_mark
from clearsim.events import commands as C
from clearsim.events.rejects import RejectCode as R
from clearsim.events.rejects import reason
from clearsim.events.types import Event, Halt, IndexPrice, MarkPrice, Resume
from clearsim.events.units import US_PER_S
from clearsim.orderbook.grid import GridError

if TYPE_CHECKING:
    from clearsim.clearing.exchange import Exchange


def index_price(ex: Exchange, out: list[Event], cause: int, c: C.IndexPrice) -> str | None:
    inst = ex.instruments.get(c.symbol)
    if inst is None:
        return reason(R.UNKNOWN_SYMBOL, c.symbol)
    try:
        price = inst.grid.price(c.price)
    except GridError as e:
        return reason(R.OFF_GRID, str(e))
    inst.index = price
    out.append(IndexPrice(ex.seq.next(), c.ts, cause, c.symbol, price))
    inst.sample_premium()
    if ex.config.mark is MarkPolicy.ORACLE:
        set_mark(ex, out, inst, price, c.ts, out[-1].seq)
    else:
        remark(ex, out, inst, c.ts, out[-1].seq)
    return None


def remark(ex: Exchange, out: list[Event], inst: Instrument, ts: int, cause: int) -> None:
    """Recompute a derived mark (mid or median) and apply it if it moved."""
    if ex.config.mark is MarkPolicy.MID:
        mid2 = inst.book.mid2()
        if mid2 is not None:
            set_mark(ex, out, inst, mid2 // 2, ts, cause)
        return
    if inst.index is None:
        return
    interval = inst.spec.funding_interval_s * US_PER_S
    left = inst.next_funding - ts if interval and inst.next_funding else interval
    m = median_mark(inst.index, inst.last_rate, left, interval, inst.basis, inst.last_trade)
    set_mark(ex, out, inst, m, ts, cause)


def set_mark(
    ex: Exchange, out: list[Event], inst: Instrument, price: int, ts: int, cause: int
) -> None:
    if price == inst.mark:
        return
    inst.mark = price
    s = ex.seq.next()
    out.append(MarkPrice(s, ts, cause, inst.spec.symbol, price))
    ex.active[inst.spec.symbol] = None
    spec = inst.spec
    if spec.breaker_ppm and inst.halted_until <= ts:
        ref, move = inst.breaker.observe(ts, price, spec.breaker_window_s * US_PER_S)
        if move > spec.breaker_ppm:
            inst.halted_until = ts + spec.breaker_halt_s * US_PER_S
            inst.breaker.reset()
            out.append(Halt(ex.seq.next(), ts, s, spec.symbol, ref, price, move, inst.halted_until))
    watch.check_crossed(ex, out, inst, price, ts, s)
    if ex.fund.id in inst.holders:
        watch.check_fund(ex, s)


def halts_due(ex: Exchange, ts: int) -> bool:
    """Whether a halt ends by ``ts``."""
    return any(i.halted_until and i.halted_until <= ts for i in ex.instruments.values())


def resume_halts(ex: Exchange, out: list[Event], ts: int, cause: int) -> None:
    for inst in ex.instruments.values():
        if inst.halted_until and inst.halted_until <= ts:
            inst.halted_until = 0
            queued = inst.halt_queue
            inst.halt_queue = {}
            out.append(Resume(ex.seq.next(), ts, cause, inst.spec.symbol, len(queued)))
            ex.queue.extend(queued.items())
