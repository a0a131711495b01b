"""Liquidation: take an account below maintenance margin through the loss waterfall.

Owns the order of things (DESIGN §6): cancel the account's orders and re-check; close its
positions (all at once, or in ``partial_fraction_ppm`` slices re-checking after each) by
running the configured steps in order on what is still open; then settle what is left of
a bankrupt account's balance (insurance fund, then socialised loss or system debt). The
steps themselves are objects in :mod:`clearsim.clearing.steps`, registered by name; they
see a :class:`~clearsim.clearing.steps.base.WaterfallContext`, never the exchange. Every
event links to its cause: the trigger, the step, the fill.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearsim.clearing import clawback
from clearsim.clearing.accounts import Account
from clearsim.clearing.bankruptcy import bankruptcy_price
from clearsim.clearing.ledger import Why
from clearsim.clearing.rounding import ppm_up
from clearsim.clearing.steps import STEPS, Case, WaterfallContext
from clearsim.events.types import (
    InsurancePayment,
    LiquidationAvoided,
    LiquidationFinished,
    LiquidationStep,
)

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
    ctx = context(ex, out)
    while acct.positions:
        progressed = False
        for sym in sorted(acct.positions):
            pos = acct.positions.get(sym)
            if pos is None:
                continue
            size = abs(pos.qty)
            close = size if not w.partial else min(size, ppm_up(size, w.partial_fraction_ppm))
            left = _run_steps(ctx, acct, sym, close, cause)
            progressed = progressed or left < close
        if not w.partial or not progressed or not acct.positions:
            break
        equity, mm, _ = ex.risk(acct)
        if equity >= mm:
            break
    _finish(ex, ctx, out, acct, cause)


def context(ex: Exchange, out: list[Event]) -> WaterfallContext:
    """The narrow view of ``ex`` the steps of one liquidation get."""
    w = ex.config.waterfall
    return WaterfallContext(
        out=out,
        ts=ex.ts,
        seq=ex.seq,
        ledger=ex.ledger,
        instruments=ex.instruments,
        waterfall=w,
        may_socialise=any(STEPS[n].socialises for n in w.steps),
        risk=ex.risk,
        after_book=ex.after_book_events,
        after_change=ex.after_balance_change,
    )


def _run_steps(ctx: WaterfallContext, acct: Account, sym: str, close: int, cause: int) -> int:
    """Close ``close`` lots of ``acct``'s position in ``sym`` through the steps; return what
    could not be closed."""
    inst = ctx.instruments[sym]
    remaining = close
    for name in ctx.waterfall.steps:
        if remaining == 0 or sym not in acct.positions:
            break
        step = STEPS[name]
        equity, mm, _ = ctx.risk(acct)
        case = Case(acct, inst, remaining, inst.valuation_price(), equity, mm)
        if not step.applies(ctx, case):
            continue
        sign = case.sign
        case.p_b = bankruptcy_price(inst.spec, case.qty, -sign * remaining, case.mark, equity, mm)
        case.cause = s = ctx.next_seq()
        ctx.emit(
            LiquidationStep(s, ctx.ts, cause, acct.id, sym, step.name, sign * remaining, case.p_b)
        )
        remaining -= step.close(ctx, case)
    return remaining


def _finish(
    ex: Exchange, ctx: WaterfallContext, out: list[Event], acct: Account, cause: int
) -> None:
    """Settle a flat account's negative balance; keep a still-open one for a retry."""
    ts = ex.ts
    if not acct.positions and acct.balance < 0:
        pay = min(-acct.balance, ctx.fund_available())
        if pay:
            ex.ledger.move(ex.fund, acct, pay, Why.BANKRUPTCY)
            out.append(InsurancePayment(ex.seq.next(), ts, cause, acct.id, pay, "bankruptcy"))
        if acct.balance < 0:
            if ctx.may_socialise:
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
