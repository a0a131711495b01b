"""Liquidation: take an account below maintenance margin through the loss waterfall.

Owns the order of things (DESIGN §6): cancel the account's orders and re-check; close its
positions one at a time (largest maintenance contribution first), re-checking between them
and stopping once the account is healthy, each by running the configured steps in order on
what is still open (with ``partial``, the book step gets one slice at a time); then settle
what is left of a bankrupt account's balance (insurance fund, then socialised loss or system
debt). The steps themselves are objects in :mod:`clearsim.clearing.steps`, registered by
name; they see a :class:`~clearsim.clearing.steps.base.WaterfallContext`, never the
exchange. Every event links to its cause: the trigger, the step, the fill.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from clearsim.clearing import clawback
from clearsim.clearing.accounts import Account
from clearsim.clearing.bankruptcy import bankruptcy_price
from clearsim.clearing.ledger import Why
from clearsim.clearing.margin import maintenance, notional
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
    w = ex.config.waterfall
    equity, mm, _ = ex.risk(acct)
    if not w.liquidatable(equity, mm):
        out.append(LiquidationAvoided(ex.seq.next(), ts, cause, acct.id, equity, mm))
        ex.unflag(acct)
        return
    ctx = context(ex, out)
    # One position at a time, re-checking between them (DESIGN §6; dYdX v4 builds one
    # liquidation order per subaccount and calls EnsureIsLiquidatable before each). A
    # position nothing could be done for is not tried again in this pass.
    tried: dict[str, None] = {}
    while True:
        nxt = next_position(ex, acct, tried)
        if nxt is None:
            break
        if not _close_position(ctx, acct, nxt, cause):
            tried[nxt] = None
        equity, mm, _ = ex.risk(acct)
        if not w.liquidatable(equity, mm):
            break
    _finish(ex, ctx, out, acct, cause)


def next_position(ex: Exchange, acct: Account, skip: Mapping[str, None]) -> str | None:
    """The position to liquidate next: the largest maintenance contribution first, ties by
    symbol. A clearsim choice: dYdX v4 takes the smallest perpetual id (older code) or a
    pseudo-random one (today), neither of which a replayable simulator wants."""
    best: str | None = None
    best_mm = -1
    for sym in sorted(acct.positions):
        if sym in skip:
            continue
        inst = ex.instruments[sym]
        spec = inst.spec
        m = maintenance(spec, notional(spec, acct.positions[sym].qty, inst.valuation_price()))
        if m > best_mm:
            best, best_mm = sym, m
    return best


def _close_position(ctx: WaterfallContext, acct: Account, sym: str, cause: int) -> bool:
    """Take one position through the steps; True if any of it was closed.

    With ``partial``, the ``book`` step gets one slice of ``partial_fraction_ppm`` of the
    position (Binance's "one large IOC order", BitMEX's order down a tier); the runner then
    re-checks. Only when the slice closes nothing do the later steps take the whole
    remaining position at its bankruptcy value (Binance: "the user's position will be closed
    at the bankruptcy price and the Insurance Fund will take over"). A slice smaller than
    the position is not final: its surplus stays with the trader.
    """
    w = ctx.waterfall
    size = abs(acct.positions[sym].qty)
    if w.partial and "book" in w.steps:
        close = min(size, ppm_up(size, w.partial_fraction_ppm))
        if _run_steps(ctx, acct, sym, close, cause, ("book",), close == size) < close:
            return True
        rest = tuple(n for n in w.steps if n != "book")
        return _run_steps(ctx, acct, sym, size, cause, rest, True) < size
    return _run_steps(ctx, acct, sym, size, cause, w.steps, True) < size


def deleverage_fund(ex: Exchange, out: list[Event], cause: int) -> None:
    """The insurance fund holds taken-over positions and its equity is below zero: cancel its
    orders there and deleverage its positions, one at a time, at its own bankruptcy value
    against the best-ranked opposite positions (the ``adl`` step) until its equity is back
    at zero or above. A fund left flat with negative cash is recorded as system debt. Without
    an ``adl`` step nothing can close the positions outside the book: the fund keeps them
    (the state view shows its negative equity).
    """
    fund = ex.fund
    fund.flagged = False
    w = ex.config.waterfall
    if "adl" not in w.steps:
        return
    ctx = context(ex, out)
    tried: dict[str, None] = {}
    while ex.risk(fund)[0] < 0:
        sym = next_position(ex, fund, tried)
        if sym is None:
            break
        tried[sym] = None
        inst = ex.instruments[sym]
        if inst.book.orders_of(fund.id):
            inst.book.cancel_all(out, ex.ts, cause, fund.id, "liquidation")
            ex.after_book_events(out, len(out), inst, ex.ts)
        if sym in fund.positions:
            _run_steps(ctx, fund, sym, abs(fund.positions[sym].qty), cause, ("adl",), True)
    if not fund.positions and fund.balance < 0:
        ex.write_off(out, fund, cause, "insurance fund deficit")


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
        adl_cache=ex.adl_cache,
    )


def _run_steps(
    ctx: WaterfallContext,
    acct: Account,
    sym: str,
    close: int,
    cause: int,
    steps: Sequence[str],
    final: bool,
) -> int:
    """Close ``close`` lots of ``acct``'s position in ``sym`` through ``steps``; return what
    could not be closed. ``final``: the close is the whole position (see ``Case.final``)."""
    inst = ctx.instruments[sym]
    remaining = close
    for name in steps:
        if remaining == 0 or sym not in acct.positions:
            break
        step = STEPS[name]
        equity, mm, _ = ctx.risk(acct)
        case = Case(acct, inst, remaining, inst.valuation_price(), equity, mm)
        case.final = final
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
    if not ex.config.waterfall.liquidatable(equity, mm) or not acct.positions:
        ex.unflag(acct)
    else:
        ex.stuck[acct.id] = cause
