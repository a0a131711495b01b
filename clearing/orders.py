"""Orders: ``order``, ``cancel``, ``cancel_all``, ``amend``; reduce-only orders (clamped
on entry, trimmed as the position shrinks); and the settlement of every fill the books
emit (:func:`after_book_events`, the hot path: fees, the ledger's ``settle_trade``, the
``Settlement`` event, then the margin re-check of both sides and a derived re-mark)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from clearsim.clearing import market, marks, watch
from clearsim.clearing.accounts import MARKET, Account
from clearsim.clearing.config import MarkPolicy
from clearsim.clearing.instrument import Instrument
from clearsim.clearing.margin import value
from clearsim.clearing.rounding import ppm_up
from clearsim.events import commands as C
from clearsim.events.rejects import RejectCode as R
from clearsim.events.rejects import reason
from clearsim.events.types import Event, Fill, Settlement
from clearsim.events.units import PPM
from clearsim.orderbook.book import RestingOrder
from clearsim.orderbook.grid import GridError

if TYPE_CHECKING:
    from clearsim.clearing.exchange import Exchange


def order_terms(ex: Exchange, c: C.Order) -> tuple[Account, Instrument, int, int | None] | str:
    """An order's account, instrument, lots and limit ticks, or why it is refused for what
    it is (no money involved: also :mod:`~clearsim.clearing.admission`'s check)."""
    acct = ex.accounts.get(c.account)
    if acct is None:
        return reason(R.UNKNOWN_ACCOUNT, c.account)
    inst = ex.instruments.get(c.symbol)
    if inst is None:
        return reason(R.UNKNOWN_SYMBOL, c.symbol)
    if inst.halted_until > c.ts:
        return reason(R.HALTED, c.symbol)
    try:
        qty = inst.grid.qty(c.qty)
        price = None if c.price is None else inst.grid.price(c.price)
    except GridError as e:
        return reason(R.OFF_GRID, str(e))
    mark = inst.mark
    band = inst.spec.band_ppm
    if price is not None and band and mark is not None and abs(price - mark) * PPM > band * mark:
        return reason(R.PRICE_OUTSIDE_BAND)
    return acct, inst, qty, price


def order(ex: Exchange, out: list[Event], cause: int, c: C.Order) -> str | None:
    terms = order_terms(ex, c)
    if isinstance(terms, str):
        return terms
    acct, inst, qty, price = terms
    side = c.side
    mark = inst.mark
    band = inst.spec.band_ppm
    if c.reduce_only:
        qty_or_reason = reduce_only_qty(ex, acct, inst, side, qty)
        if isinstance(qty_or_reason, str):
            return qty_or_reason
        qty = qty_or_reason
    if acct is ex.market:  # exempt from margin (clearing.market)
        why = market.order_bound(inst, side, qty, price)
    elif c.reduce_only:
        why = watch.reduce_only_check(ex, acct, inst, side, qty, price)
    else:
        why = watch.pre_trade_check(ex, acct, inst, side, qty, price)
    if why is not None:
        return why
    tif = c.tif
    if price is None and band and mark is not None:
        # A market order never sweeps past the band: it becomes an IOC at the band's edge.
        edge = band * mark // PPM
        price, tif = (mark + edge, "ioc") if side == "buy" else (max(1, mark - edge), "ioc")
    n0 = len(out)
    inst.book.submit(out, c.ts, cause, c.id, c.account, side, qty, price, tif)
    if c.reduce_only and inst.book.get(c.account, c.id) is not None:
        ex.reduce_only.setdefault(c.account, {})[c.id] = c.symbol
    after_book_events(ex, out, n0, inst, c.ts)
    return None


def cancel(ex: Exchange, out: list[Event], cause: int, c: C.Cancel) -> str | None:
    if c.account not in ex.accounts:
        return reason(R.UNKNOWN_ACCOUNT, c.account)
    for inst in ex.instruments.values():
        if inst.book.get(c.account, c.id) is not None:
            inst.book.cancel(out, c.ts, cause, c.account, c.id)
            after_book_events(ex, out, len(out), inst, c.ts)
            return None
    return reason(R.UNKNOWN_ORDER, c.id)


def cancel_all(ex: Exchange, out: list[Event], cause: int, c: C.CancelAll) -> str | None:
    if c.account not in ex.accounts:
        return reason(R.UNKNOWN_ACCOUNT, c.account)
    for inst in ex.instruments.values():
        if inst.book.cancel_all(out, c.ts, cause, c.account):
            after_book_events(ex, out, len(out), inst, c.ts)
    return None


class AmendTerms(NamedTuple):
    """An amend's account, book, resting order and new terms (``None``: unchanged)."""

    acct: Account
    inst: Instrument
    order: RestingOrder
    qty: int | None
    price: int | None
    new_qty: int
    new_price: int
    reduce_only: bool


def amend_terms(ex: Exchange, c: C.Amend) -> AmendTerms | str:
    """An amend's terms, or why it is refused for what it is (no money involved: also
    :mod:`~clearsim.clearing.admission`'s check)."""
    acct = ex.accounts.get(c.account)
    if acct is None:
        return reason(R.UNKNOWN_ACCOUNT, c.account)
    for inst in ex.instruments.values():
        order = inst.book.get(c.account, c.id)
        if order is None:
            continue
        if inst.halted_until > c.ts:
            return reason(R.HALTED, inst.spec.symbol)
        try:
            qty = None if c.qty is None else inst.grid.qty(c.qty)
            price = None if c.price is None else inst.grid.price(c.price)
        except GridError as e:
            return reason(R.OFF_GRID, str(e))
        new_qty = order.qty if qty is None else qty
        new_price = order.price if price is None else price
        mark, band = inst.mark, inst.spec.band_ppm
        if band and mark is not None and abs(new_price - mark) * PPM > band * mark:
            return reason(R.PRICE_OUTSIDE_BAND)
        ro = ex.reduce_only.get(c.account, {}).get(c.id) is not None
        if ro and new_qty > order.qty:
            return reason(R.REDUCE_ONLY, "order cannot grow")
        return AmendTerms(acct, inst, order, qty, price, new_qty, new_price, ro)
    return reason(R.UNKNOWN_ORDER, c.id)


def amend(ex: Exchange, out: list[Event], cause: int, c: C.Amend) -> str | None:
    t = amend_terms(ex, c)
    if isinstance(t, str):
        return t
    acct, inst, order = t.acct, t.inst, t.order
    replacing = (order.qty, order.price)
    changed = t.new_qty > order.qty or t.new_price != order.price
    why: str | None = None
    if acct is ex.market:  # exempt from margin (clearing.market)
        why = market.resting_bound(inst, t.new_qty, t.new_price)
    elif not t.reduce_only and changed:
        why = watch.pre_trade_check(
            ex, acct, inst, order.side, t.new_qty, t.new_price, replacing=replacing
        )
    elif t.reduce_only and t.new_price != order.price:
        why = watch.reduce_only_check(
            ex, acct, inst, order.side, t.new_qty, t.new_price, replacing=replacing
        )
    if why is not None:
        return why
    inst.book.amend(out, c.ts, cause, c.account, c.id, t.qty, t.price)
    after_book_events(ex, out, len(out), inst, c.ts)
    return None


def reduce_only_qty(
    ex: Exchange, acct: Account, inst: Instrument, side: str, qty: int
) -> int | str:
    """Clamp a reduce-only order to what is left of the position after the account's
    other reduce-only orders on that side."""
    pos = acct.positions.get(inst.spec.symbol)
    q = pos.qty if pos else 0
    if q == 0 or (q > 0) == (side == "buy"):
        return reason(R.REDUCE_ONLY, "order would not reduce the position")
    room = abs(q) - reduce_only_open(ex, acct.id, inst, side)
    if room <= 0:
        return reason(R.REDUCE_ONLY, "orders already cover the position")
    return min(qty, room)


def reduce_only_open(ex: Exchange, account: str, inst: Instrument, side: str) -> int:
    total = 0
    for oid, sym in ex.reduce_only.get(account, {}).items():
        o = inst.book.get(account, oid) if sym == inst.spec.symbol else None
        if o is not None and o.side == side:
            total += o.qty
    return total


def after_book_events(
    ex: Exchange,
    out: list[Event],
    n0: int,
    inst: Instrument,
    ts: int,
    fee_exempt: tuple[str, str] | None = None,
) -> None:
    """Settle the fills the book just emitted, then re-mark (mid/median) and re-check.

    ``fee_exempt`` is the (account, order id) of a liquidation order: its fills pay no
    trading fee."""
    ex.active[inst.spec.symbol] = None
    touched: dict[str, Account] = {}
    traded_at = inst.last_trade
    for i in range(n0, len(out)):
        e = out[i]
        if type(e) is Fill:
            settle_fill(ex, out, inst, e, touched, fee_exempt)
    last_cause = out[-1].seq if out else 0
    for acct in touched.values():
        trim_reduce_only(ex, out, acct, inst, ts, last_cause)
        watch.after_balance_change(ex, out, acct, last_cause)
    if ex.config.mark is not MarkPolicy.ORACLE:
        marks.remark(ex, out, inst, ts, last_cause)
    if inst.mark is None and inst.last_trade is not None and inst.last_trade != traded_at:
        # No mark yet (a mid mark with a one-sided book): positions are valued at the last
        # trade, so a trade is a valuation move like a mark change (DESIGN §4).
        watch.check_crossed(ex, out, inst, inst.last_trade, ts, last_cause)


def settle_fill(
    ex: Exchange,
    out: list[Event],
    inst: Instrument,
    f: Fill,
    touched: dict[str, Account],
    fee_exempt: tuple[str, str] | None,
) -> None:
    spec = inst.spec
    if f.taker_side == "buy":
        buyer_id, seller_id = f.taker_account, f.maker_account
        buyer_ppm, seller_ppm = spec.taker_fee_ppm, spec.maker_fee_ppm
    else:
        buyer_id, seller_id = f.maker_account, f.taker_account
        buyer_ppm, seller_ppm = spec.maker_fee_ppm, spec.taker_fee_ppm
    if fee_exempt is not None and fee_exempt == (f.taker_account, f.taker_order):
        if f.taker_side == "buy":
            buyer_ppm = 0
        else:
            seller_ppm = 0
    elif buyer_id == MARKET and seller_id == MARKET:
        # The historical market trading with itself pays no fee (clearing.market).
        buyer_ppm = seller_ppm = 0
    qty, price = f.qty, f.price
    val = value(spec, qty, price)
    n = abs(val)
    buyer_fee = ppm_up(n, buyer_ppm)
    seller_fee = ppm_up(n, seller_ppm)
    if buyer_fee + seller_fee < 0:
        buyer_fee, seller_fee = _rebate_within_pool(ex.fees.balance, buyer_fee, seller_fee)
    buyer, seller = ex.accounts[buyer_id], ex.accounts[seller_id]
    ex.ledger.settle_trade(inst, buyer, seller, qty, price, val, buyer_fee, seller_fee)
    inst.last_trade = price
    touched[buyer_id] = buyer
    touched[seller_id] = seller
    s = ex.seq.last + 1
    ex.seq.last = s
    out.append(
        Settlement(
            s,
            f.ts,
            f.seq,
            spec.symbol,
            price,
            qty,
            buyer_id,
            seller_id,
            val,
            buyer_fee,
            seller_fee,
        )
    )


def trim_reduce_only(
    ex: Exchange, out: list[Event], acct: Account, inst: Instrument, ts: int, cause: int
) -> None:
    """Shrink or cancel resting reduce-only orders that now exceed the position."""
    ro = ex.reduce_only.get(acct.id)
    if not ro:
        return
    sym = inst.spec.symbol
    pos = acct.positions.get(sym)
    q = pos.qty if pos else 0
    room = abs(q)
    for oid in list(ro):
        if ro[oid] != sym:
            continue
        o = inst.book.get(acct.id, oid)
        if o is None:
            del ro[oid]
            continue
        if q == 0 or (q > 0) == (o.side == "buy") or room == 0:
            inst.book.cancel(out, ts, cause, acct.id, oid, "reduce_only")
            del ro[oid]
        elif o.qty > room:
            inst.book.amend(out, ts, cause, acct.id, oid, room, None)
            room = 0
        else:
            room -= o.qty
    if not ro:
        del ex.reduce_only[acct.id]


def forget_reduce_only(ex: Exchange, account_id: str) -> None:
    ex.reduce_only.pop(account_id, None)


def _rebate_within_pool(pool: int, buyer_fee: int, seller_fee: int) -> tuple[int, int]:
    """Cap a maker rebate so the fee pool never goes below zero.

    A schedule whose rebate exceeds the taker fee is refused at config load (and by
    ``set``), so a normal fill never pays out more than it takes; a liquidation order pays
    no trading fee, though, and its maker's rebate is then paid only from what the pool
    holds — a rebate is the exchange sharing fees it earned, never money it creates.
    """
    floor = -pool  # the most negative total the pool can pay
    if buyer_fee < 0:
        return max(buyer_fee, min(0, floor - seller_fee)), seller_fee
    return buyer_fee, max(seller_fee, min(0, floor - buyer_fee))
