"""Liquidation: take an account below maintenance margin through the loss waterfall.

Owns the order of things (DESIGN §6): cancel the account's orders and re-check; close its
positions (all at once, or in ``partial_fraction_ppm`` slices re-checking after each) by
running the configured steps in order on what is still open; then settle what is left of
a bankrupt account's balance (insurance fund, then socialised loss or system debt). The
``book`` step lives here; each other step has its own module (backstop, takeover, adl,
clawback). Every event links to its cause: the trigger, the step, the fill.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearsim.clearing import adl, backstop, clawback, takeover
from clearsim.clearing.accounts import Account
from clearsim.clearing.bankruptcy import bankruptcy_price, fillable_price
from clearsim.clearing.instrument import Instrument
from clearsim.clearing.ledger import Why
from clearsim.clearing.margin import notional, value
from clearsim.clearing.rounding import largest_satisfying, ppm_up
from clearsim.events.types import (
    Fill,
    InsurancePayment,
    LiquidationAvoided,
    LiquidationFill,
    LiquidationFinished,
    LiquidationStep,
    Settlement,
)
from clearsim.events.units import PPM

if TYPE_CHECKING:
    from clearsim.clearing.exchange import Exchange
    from clearsim.events.types import Event


def liquidate(ex: Exchange, out: list[Event], acct: Account, cause: int) -> None:
    """Run the waterfall for ``acct`` (flagged and below MM when it was queued)."""
    ts = ex.ts
    for sym in sorted(acct.positions):
        inst = ex.instruments[sym]
        if inst.halted_until > ts:  # DESIGN §6: liquidations wait for the halt to end
            inst.halt_queue[acct.id] = cause
            return
    for inst in ex.instruments.values():
        if inst.book.orders_of(acct.id):
            inst.book.cancel_all(out, ts, cause, acct.id, "liquidation")
            ex.after_book_events(out, len(out), inst, ts)
    ex.forget_reduce_only(acct.id)
    equity, mm, _ = ex.risk(acct)
    if equity >= mm:
        out.append(LiquidationAvoided(ex.seq.next(), ts, cause, acct.id, equity, mm))
        ex.unflag(acct)
        return
    w = ex.config.waterfall
    while acct.positions:
        progressed = False
        for sym in sorted(acct.positions):
            pos = acct.positions.get(sym)
            if pos is None:
                continue
            size = abs(pos.qty)
            close = size if not w.partial else min(size, ppm_up(size, w.partial_fraction_ppm))
            left = _run_steps(ex, out, acct, sym, close, cause)
            progressed = progressed or left < close
        if not w.partial or not progressed or not acct.positions:
            break
        equity, mm, _ = ex.risk(acct)
        if equity >= mm:
            break
    _finish(ex, out, acct, cause)


def _run_steps(
    ex: Exchange, out: list[Event], acct: Account, sym: str, close: int, cause: int
) -> int:
    """Close ``close`` lots of ``acct``'s position in ``sym`` through the steps; return what
    could not be closed."""
    w = ex.config.waterfall
    inst = ex.instruments[sym]
    remaining = close
    for step in w.steps:
        if remaining == 0 or sym not in acct.positions:
            break
        if step == "clawback":  # not a closing step: it decides who pays (see _finish)
            continue
        q = acct.positions[sym].qty
        sign = 1 if q > 0 else -1
        mark = inst.price_or(None)
        assert mark is not None
        equity, mm, _ = ex.risk(acct)
        if step == "backstop" and equity * PPM >= w.backstop_below_mm_ppm * mm:
            continue
        if step == "adl" and w.adl_negative_equity_only and equity >= 0:
            continue
        p_b = bankruptcy_price(inst.spec, q, -sign * remaining, mark, equity, mm)
        s = ex.seq.next()
        out.append(LiquidationStep(s, ex.ts, cause, acct.id, sym, step, sign * remaining, p_b))
        if step == "book":
            done = _book(ex, out, acct, inst, remaining, p_b, equity, mm, s)
        elif step == "backstop":
            done = backstop.run(ex, out, acct, inst, remaining, p_b, s)
        elif step == "takeover":
            done = takeover.run(ex, out, acct, inst, remaining, p_b, s)
        else:
            done = adl.run(ex, out, acct, inst, remaining, p_b, s)
        remaining -= done
    return remaining


def _book(
    ex: Exchange,
    out: list[Event],
    acct: Account,
    inst: Instrument,
    r: int,
    p_b: int,
    equity: int,
    mm: int,
    cause: int,
) -> int:
    """The ``book`` step: an IOC into the book at the configured price limit, sized in
    advance so that the fund can pay every fill's shortfall (unless a clawback follows)."""
    w = ex.config.waterfall
    spec = inst.spec
    q = acct.positions[spec.symbol].qty
    sell = q > 0
    dq = -r if sell else r
    mark = inst.price_or(None)
    assert mark is not None
    limit: int | None
    if w.price_limit == "bankruptcy":
        limit = p_b
    elif w.price_limit == "fillable":
        limit = fillable_price(
            spec, q, dq, mark, equity, mm, w.fillable_ba_ppm, w.fillable_smmr_ppm
        )
    elif spec.band_ppm:
        edge = spec.band_ppm * mark // PPM
        limit = max(1, mark - edge) if sell else mark + edge
    else:
        limit = None
    may_socialise = "clawback" in w.steps
    budget = ex.fund_available()
    planned, need, worst = 0, 0, 0
    for price, level_qty in inst.book.levels("buy" if sell else "sell"):
        if limit is not None and (price < limit if sell else price > limit):
            break
        take = min(level_qty, r - planned)
        gap = _shortfall(inst, sell, take, price, p_b)
        if not may_socialise and need + gap > budget:
            take = _affordable(inst, sell, take, price, p_b, budget - need)
            gap = _shortfall(inst, sell, take, price, p_b)
        if take:
            planned, need, worst = planned + take, need + gap, price
        if planned == r or (take < level_qty and not may_socialise):
            break
    if planned == 0:
        return 0
    oid = f"liq-{cause}"
    n0 = len(out)
    ex.fee_exempt = (acct.id, oid)
    inst.book.submit(
        out, ex.ts, cause, oid, acct.id, "sell" if sell else "buy", planned, worst, "ioc"
    )
    ex.after_book_events(out, n0, inst, ex.ts)
    ex.fee_exempt = None
    settled = {e.cause: e.seq for e in out[n0:] if type(e) is Settlement}
    filled = 0
    fills = [e for e in out[n0:] if type(e) is Fill and e.taker_order == oid]
    for f in fills:
        filled += f.qty
        _settle_against_bankruptcy(ex, out, acct, inst, f, p_b, settled[f.seq])
    return filled


def _shortfall(inst: Instrument, sell: bool, qty: int, price: int, p_b: int) -> int:
    """What the fund pays if ``qty`` fills at ``price`` instead of the bankruptcy price."""
    dq = -qty if sell else qty
    return max(0, value(inst.spec, dq, price) - value(inst.spec, dq, p_b))


def _affordable(inst: Instrument, sell: bool, qty: int, price: int, p_b: int, budget: int) -> int:
    """The most of ``qty`` whose shortfall at ``price`` fits in ``budget``."""
    return largest_satisfying(lambda x: _shortfall(inst, sell, x, price, p_b) <= budget, 0, qty)


def _settle_against_bankruptcy(
    ex: Exchange, out: list[Event], acct: Account, inst: Instrument, f: Fill, p_b: int, cause: int
) -> None:
    """Per fill: delta = fill value - value at the bankruptcy price, for the account.

    delta >= 0: the liquidation fee (capped by delta) to the fund, the rest to the trader or
    the fund per ``surplus``. delta < 0: the fund pays the gap as far as it can; what it
    cannot is left on the account for the clawback (the fill was only made because one is
    configured).
    """
    w = ex.config.waterfall
    spec = inst.spec
    sell = f.taker_side == "sell"
    dq = -f.qty if sell else f.qty
    delta = value(spec, dq, p_b) - value(spec, dq, f.price)
    fee = surplus = paid = social = 0
    if delta >= 0:
        fee = min(ppm_up(notional(spec, f.qty, f.price), w.liquidation_fee_ppm), delta)
        surplus = delta - fee if w.surplus == "insurance_fund" else 0
    else:
        paid = min(-delta, ex.fund_available())
        social = -delta - paid
    to_fund = fee + surplus - paid
    ex.ledger.move(acct, ex.fund, to_fund, Why.SHORTFALL if paid else Why.LIQUIDATION_FEE)
    out.append(
        LiquidationFill(
            ex.seq.next(),
            ex.ts,
            cause,
            acct.id,
            spec.symbol,
            f.qty,
            f.price,
            p_b,
            delta,
            fee,
            surplus,
            paid,
            social,
        )
    )


def _finish(ex: Exchange, out: list[Event], acct: Account, cause: int) -> None:
    """Settle a flat account's negative balance; keep a still-open one for a retry."""
    ts = ex.ts
    if not acct.positions and acct.balance < 0:
        pay = min(-acct.balance, ex.fund_available())
        if pay:
            ex.ledger.move(ex.fund, acct, pay, Why.BANKRUPTCY)
            out.append(InsurancePayment(ex.seq.next(), ts, cause, acct.id, pay, "bankruptcy"))
        if acct.balance < 0:
            if "clawback" in ex.config.waterfall.steps:
                clawback.socialise(ex, out, acct, cause)
            else:
                ex.write_off(out, acct, cause, "uncovered bankruptcy")
    equity, mm, _ = ex.risk(acct)
    remaining = sum(abs(p.qty) for p in acct.positions.values())
    out.append(LiquidationFinished(ex.seq.next(), ts, cause, acct.id, equity, mm, remaining))
    if equity >= mm or not acct.positions:
        ex.unflag(acct)
    else:
        ex.stuck[acct.id] = cause
