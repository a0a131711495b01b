"""Pre-trade risk and the margin watch (DESIGN §4).

:func:`pre_trade_check` refuses an order that, filled with the account's other open orders
on its side at their limits, would leave equity below initial margin. :func:`risk` values
an account at current marks. After every change of an account's cash or position,
:func:`after_balance_change` re-indexes its liquidation price in the instrument's
liquidation index (so a mark move finds the accounts it crosses without a scan) and
triggers it when it is below maintenance; :func:`drain` runs the waterfall for the
triggered accounts in order, and retries the stuck ones whose market moved.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from clearsim.clearing import liquidation
from clearsim.clearing.accounts import SYSTEM, Account
from clearsim.clearing.config import InstrumentSpec
from clearsim.clearing.instrument import Instrument
from clearsim.clearing.margin import (
    initial,
    liquidatable_at,
    liquidation_price,
    maintenance,
    notional,
    value,
)
from clearsim.clearing.rounding import ppm_up
from clearsim.events.rejects import RejectCode as R
from clearsim.events.rejects import reason
from clearsim.events.types import Event, LiquidationTriggered

if TYPE_CHECKING:
    from clearsim.clearing.exchange import Exchange


def _order_prices(
    inst: Instrument, side: str, qty: int, price: int | None
) -> tuple[int, int] | None:
    """(valuation price, execution price) for an order's checks: the mark (else the last
    trade, else its own limit, else the touch) and its limit (a market order: the worst
    price its sweep would reach). None when there is nothing to value against."""
    m = inst.price_or(price)
    if m is None:
        m = inst.book.best_ask() if side == "buy" else inst.book.best_bid()
        if m is None:
            return None
    return m, price if price is not None else inst.sweep_price(side, qty, m)


def pre_trade_check(
    ex: Exchange,
    acct: Account,
    inst: Instrument,
    side: str,
    qty: int,
    price: int | None,
    replacing: tuple[int, int] | None = None,
) -> str | None:
    """Reject when, were this order and the account's other open orders on that side
    filled at their limits, equity would be below initial margin (DESIGN §4).

    ``replacing`` is the (qty, price) of the resting order an amend replaces.
    """
    spec = inst.spec
    priced = _order_prices(inst, side, qty, price)
    if priced is None:
        return None  # nothing to value against and nothing to trade with: it expires
    m, exec_price = priced
    dq, loss = _side_exposure(acct, inst, side, qty, m, exec_price, replacing)
    equity = (
        acct.balance + loss - ppm_up(notional(spec, qty, exec_price), max(0, spec.taker_fee_ppm))
    )
    im = 0
    sym = spec.symbol
    for s, pos in acct.positions.items():
        other = ex.instruments[s]
        pm = other.valuation_price() if s != sym else m
        equity += value(other.spec, pos.qty, pm)
        if s != sym:
            im += initial(other.spec, notional(other.spec, pos.qty, pm))
    cur = acct.positions.get(sym)
    target = (cur.qty if cur else 0) + dq
    n_target = notional(spec, target, m)
    if _beyond_tiers(spec, n_target, target, cur.qty if cur else 0):
        return reason(R.TIER_EXCEEDED, "position would exceed the largest risk tier")
    im += initial(spec, n_target)
    if equity < im:
        return reason(R.INSUFFICIENT_MARGIN)
    return None


def _beyond_tiers(spec: InstrumentSpec, n_target: int, target: int, current: int) -> bool:
    """A position growing past the largest risk tier's notional (shrinking is allowed)."""
    return n_target > spec.tiers[-1].max_notional and abs(target) > abs(current)


def tier_check(
    ex: Exchange,
    acct: Account,
    inst: Instrument,
    side: str,
    qty: int,
    price: int | None,
    replacing: tuple[int, int] | None = None,
) -> str | None:
    """The pre-trade check's tier limit alone (it needs no money): for admission."""
    priced = _order_prices(inst, side, qty, price)
    if priced is None:
        return None  # nothing to value against and nothing to trade with: it expires
    m, exec_price = priced
    dq, _ = _side_exposure(acct, inst, side, qty, m, exec_price, replacing)
    cur = acct.positions.get(inst.spec.symbol)
    current = cur.qty if cur else 0
    if _beyond_tiers(inst.spec, notional(inst.spec, current + dq, m), current + dq, current):
        return reason(R.TIER_EXCEEDED, "position would exceed the largest risk tier")
    return None


def _side_exposure(
    acct: Account,
    inst: Instrument,
    side: str,
    qty: int,
    m: int,
    exec_price: int,
    replacing: tuple[int, int] | None,
) -> tuple[int, int]:
    """(signed lots, loss against the mark) were this order and the account's other
    resting orders on ``side`` filled at their limits. Only losses against the mark count
    (buying above it, selling below): gains don't fund margin until realised.
    ``replacing`` is the (qty, price) of the resting order an amend replaces."""
    spec = inst.spec
    sign = 1 if side == "buy" else -1
    loss = min(0, sign * (value(spec, qty, m) - value(spec, qty, exec_price)))
    dq = sign * qty
    skip = replacing
    for o in inst.book.orders_of(acct.id):
        if o.side != side:
            continue
        if skip is not None and (o.qty, o.price) == skip:
            skip = None  # the order being amended is replaced by the new terms
            continue
        dq += sign * o.qty
        loss += min(0, sign * (value(spec, o.qty, m) - value(spec, o.qty, o.price)))
    return dq, loss


def check_crossed(
    ex: Exchange, out: list[Event], inst: Instrument, price: int, ts: int, cause: int
) -> None:
    """The valuation price of ``inst`` moved to ``price``: trigger every account whose
    liquidation threshold it crossed (the index finds them, no scan of all holders)."""
    for account_id in inst.liq.crossed(price):
        acct = ex.accounts[account_id]
        if is_liquidatable(ex, acct):
            trigger(ex, out, acct, ts, cause)


def reduce_only_check(
    ex: Exchange,
    acct: Account,
    inst: Instrument,
    side: str,
    qty: int,
    price: int | None,
    replacing: tuple[int, int] | None = None,
) -> str | None:
    """Refuse a reduce-only order that would make the account liquidatable (DESIGN §4).

    A reduce-only order skips the initial-margin check (it only shrinks the position), but
    closing at a price far from the mark realises a loss: were this order and the account's
    other resting orders on that side filled at their limits, marks unchanged, equity must
    stay at or above the maintenance margin of what is left — as exchanges refuse a close
    beyond the liquidation price. An account already below MM may still send a close that
    improves its margin (equity minus MM). ``replacing`` is an amended order's old terms.
    """
    spec = inst.spec
    priced = _order_prices(inst, side, qty, price)
    if priced is None:
        return None  # nothing to value against and nothing to trade with: it expires
    m, exec_price = priced
    dq, loss = _side_exposure(acct, inst, side, qty, m, exec_price, replacing)
    fee = ppm_up(notional(spec, qty, exec_price), max(0, spec.taker_fee_ppm))
    mm_now = equity_now = mm_after = 0
    sym = spec.symbol
    for s, pos in acct.positions.items():
        other = ex.instruments[s]
        pm = other.valuation_price() if s != sym else m
        v = value(other.spec, pos.qty, pm)
        mm_pos = maintenance(other.spec, notional(other.spec, pos.qty, pm))
        equity_now += v
        mm_now += mm_pos
        if s == sym:
            left = pos.qty + dq
            if (left > 0) != (pos.qty > 0) and left != 0:
                left = 0  # reduce-only never flips: what exceeds the position is not filled
            mm_after += maintenance(spec, notional(spec, left, pm))
        else:
            mm_after += mm_pos
    equity_now += acct.balance
    equity = equity_now + loss - fee
    if equity >= mm_after or equity - mm_after >= equity_now - mm_now:
        return None
    return reason(R.REDUCE_ONLY, "the close would leave equity below maintenance margin")


def risk(ex: Exchange, acct: Account) -> tuple[int, int, int]:
    """(equity, maintenance margin, initial margin) at current marks."""
    equity, mm, im = acct.balance, 0, 0
    for sym, pos in acct.positions.items():
        inst = ex.instruments[sym]
        m = inst.valuation_price()
        spec = inst.spec
        equity += value(spec, pos.qty, m)
        n = notional(spec, pos.qty, m)
        mm += maintenance(spec, n)
        im += initial(spec, n)
    return equity, mm, im


def is_liquidatable(ex: Exchange, acct: Account) -> bool:
    if not acct.positions:
        # A flat account in deficit (an ADL counterparty closed at an extreme bankruptcy
        # price, say) goes through the waterfall's last act: the fund, socialised loss or
        # system debt covers it, so no negative equity is ever left unrecorded.
        return acct.balance < 0
    at_equal = ex.config.waterfall.liquidate_at_equal
    if len(acct.positions) == 1:
        # The common case, after every fill: one position, the same predicate as risk()'s
        # (liquidatable_at is E < MM, or E <= MM with at_equal), without the IM it also sums.
        ((sym, pos),) = acct.positions.items()
        inst = ex.instruments[sym]
        m = inst.valuation_price()
        return liquidatable_at(inst.spec, pos.qty, acct.balance, 0, m, at_equal)
    equity, mm, _ = risk(ex, acct)
    # inline WaterfallConfig.liquidatable: this runs after every fill
    return equity < mm or (at_equal and equity == mm and mm > 0)


def after_balance_change(ex: Exchange, out: list[Event], acct: Account, cause: int) -> None:
    """Re-index the account's liquidation thresholds and trigger it if it is below MM."""
    if acct.id in SYSTEM or acct is ex.liquidating:
        # system accounts are never liquidated; the waterfall owns its account. The fund
        # holding positions is watched for negative equity (check_fund).
        if acct is ex.fund and acct is not ex.liquidating:
            check_fund(ex, cause)
        return
    reindex(ex, acct)
    if is_liquidatable(ex, acct):
        if not acct.flagged:
            trigger(ex, out, acct, ex.ts, cause)
    elif acct.flagged:
        unflag(ex, acct)


def check_fund(ex: Exchange, cause: int) -> None:
    """Queue the insurance fund for deleveraging when it holds positions (taken over) and
    its equity is below zero: the fund cannot carry them (BitMEX: ADL once "the Insurance
    Fund is depleted for the given contract"). No ``LiquidationTriggered``: the fund is not
    a trader; :func:`liquidation.deleverage_fund` records what it does."""
    fund = ex.fund
    if fund.positions and not fund.flagged and risk(ex, fund)[0] < 0:
        fund.flagged = True
        ex.queue.append((fund.id, cause))


def reindex(ex: Exchange, acct: Account) -> None:
    positions = acct.positions
    if acct.flagged or acct.id in SYSTEM:
        for sym in positions:
            ex.instruments[sym].liq.discard(acct.id)
        return
    if len(positions) == 1:
        ((sym, pos),) = positions.items()
        inst = ex.instruments[sym]
        at_equal = ex.config.waterfall.liquidate_at_equal
        lp = liquidation_price(inst.spec, pos.qty, acct.balance, 0, inst.price_or(None), at_equal)
        inst.liq.set_single(acct.id, pos.qty > 0, lp)
    else:
        for sym in positions:
            ex.instruments[sym].liq.set_multi(acct.id)


def liquidation_price_of(ex: Exchange, acct: Account, symbol: str) -> int | None:
    """The mark of ``symbol`` at which ``acct`` becomes liquidatable, others held fixed."""
    pos = acct.positions.get(symbol)
    if pos is None:
        return None
    base_e, base_mm = acct.balance, 0
    for sym, other in acct.positions.items():
        if sym == symbol:
            continue
        inst = ex.instruments[sym]
        m = inst.valuation_price()
        base_e += value(inst.spec, other.qty, m)
        base_mm += maintenance(inst.spec, notional(inst.spec, other.qty, m))
    inst = ex.instruments[symbol]
    at_equal = ex.config.waterfall.liquidate_at_equal
    return liquidation_price(inst.spec, pos.qty, base_e, base_mm, inst.price_or(None), at_equal)


def trigger(ex: Exchange, out: list[Event], acct: Account, ts: int, cause: int) -> None:
    equity, mm, _ = risk(ex, acct)
    acct.flagged = True
    for sym in acct.positions:
        ex.instruments[sym].liq.discard(acct.id)
    s = ex.seq.next()
    out.append(LiquidationTriggered(s, ts, cause, acct.id, equity, mm))
    ex.queue.append((acct.id, s))


def drain(ex: Exchange, out: list[Event]) -> None:
    """Run the waterfall for every queued account, in trigger order, until the cascade
    ends (a liquidation can move the mark and queue more); then retry, once, accounts
    the waterfall could not close whose books or marks moved in this command."""
    retried: dict[str, None] = {}
    while True:
        while ex.queue:
            account_id, cause = ex.queue.popleft()
            acct = ex.accounts[account_id]
            if acct is ex.fund:
                with working_on(ex, acct):
                    liquidation.deleverage_fund(ex, out, cause)
                continue
            if acct.flagged and account_id not in ex.stuck:
                with working_on(ex, acct):
                    liquidation.liquidate(ex, out, acct, cause)
        again = [
            (aid, cause)
            for aid, cause in ex.stuck.items()
            if aid not in retried and any(sym in ex.active for sym in ex.accounts[aid].positions)
        ]
        if not again:
            break
        for aid, cause in again:
            retried[aid] = None
            del ex.stuck[aid]
            ex.queue.append((aid, cause))
    ex.active.clear()


@contextmanager
def working_on(ex: Exchange, acct: Account) -> Iterator[None]:
    """While the waterfall works on ``acct``, its own balance changes do not re-trigger
    it (the waterfall decides when it is done); reset even if the waterfall raises."""
    ex.liquidating = acct
    try:
        yield
    finally:
        ex.liquidating = None


def unflag(ex: Exchange, acct: Account) -> None:
    acct.flagged = False
    ex.stuck.pop(acct.id, None)
    reindex(ex, acct)
