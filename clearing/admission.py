"""Admission: the checks a command must pass that do not depend on the clock moving.

A command refused for what it *is* — an unknown account, symbol or order, a price off the
grid or outside the band, a halted instrument, a reduce-only order that would not reduce,
a bad amount, rate or parameter — changes nothing, not even the clock (tracker issue 10).
:meth:`Exchange.apply` runs the command's handler with the clock tentatively moved and
puts the clock back when the handler refuses; that is enough unless something falls due at
the new ``ts`` (a funding round, a clawback period, the end of a halt), which cannot be
undone. Only then are these checks run first, so a bad command still changes nothing.

What remains is a refusal that depends on money after what fell due (margin after a
funding round): the round is owed at its boundary whatever the command's fate, so it is
paid and the command is refused at its ``ts`` — the one case where a refused command's
time passes. Each check here mirrors its handler's own (the handlers keep theirs: they are
the authority, and a check here may only refuse what the handler would refuse).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from clearsim.clearing import market, money, orders, schedule, watch
from clearsim.clearing.config import OnCommand
from clearsim.clearing.params import ParamError, apply_set
from clearsim.events import commands as C
from clearsim.events.rejects import RejectCode as R
from clearsim.events.rejects import reason
from clearsim.orderbook.grid import GridError

if TYPE_CHECKING:
    from clearsim.clearing.exchange import Exchange


def static_reject(ex: Exchange, cmd: C.Command) -> str | None:
    """Why ``cmd`` is refused whatever falls due at its ``ts``, or None."""
    check = _CHECKS.get(type(cmd))
    return None if check is None else check(ex, cmd)


def _order(ex: Exchange, c: C.Order) -> str | None:
    terms = orders.order_terms(ex, c)
    if isinstance(terms, str):
        return terms
    acct, inst, qty, price = terms
    if c.reduce_only:
        got = orders.reduce_only_qty(ex, acct, inst, c.side, qty)
        if isinstance(got, str):
            return got
        if acct is not ex.market:
            return None
        qty = got
    if acct is ex.market:  # exempt from margin and tiers (clearing.market)
        return market.order_bound(inst, c.side, qty, price)
    return watch.tier_check(ex, acct, inst, c.side, qty, price)


def _amend(ex: Exchange, c: C.Amend) -> str | None:
    t = orders.amend_terms(ex, c)
    if isinstance(t, str):
        return t
    order = t.order
    if t.acct is ex.market:  # exempt from margin and tiers (clearing.market)
        return market.resting_bound(t.inst, t.new_qty, t.new_price)
    if not t.reduce_only and (t.new_qty > order.qty or t.new_price != order.price):
        replacing = (order.qty, order.price)
        return watch.tier_check(ex, t.acct, t.inst, order.side, t.new_qty, t.new_price, replacing)
    return None


def _cancel(ex: Exchange, c: C.Cancel) -> str | None:
    if c.account not in ex.accounts:
        return reason(R.UNKNOWN_ACCOUNT, c.account)
    if not any(inst.book.get(c.account, c.id) is not None for inst in ex.instruments.values()):
        return reason(R.UNKNOWN_ORDER, c.id)
    return None


def _cancel_all(ex: Exchange, c: C.CancelAll) -> str | None:
    return None if c.account in ex.accounts else reason(R.UNKNOWN_ACCOUNT, c.account)


def _amount(ex: Exchange, c: C.Deposit | C.InsuranceDeposit) -> str | None:
    got = money.parse_amount(ex, c.amount)
    return got if isinstance(got, str) else None


def _withdraw(ex: Exchange, c: C.Withdraw) -> str | None:
    if c.account not in ex.accounts:
        return reason(R.UNKNOWN_ACCOUNT, c.account)
    got = money.parse_amount(ex, c.amount)
    return got if isinstance(got, str) else None


def _index_price(ex: Exchange, c: C.IndexPrice) -> str | None:
    inst = ex.instruments.get(c.symbol)
    if inst is None:
        return reason(R.UNKNOWN_SYMBOL, c.symbol)
    try:
        inst.grid.price(c.price)
    except GridError as e:
        return reason(R.OFF_GRID, str(e))
    return None


def _funding(ex: Exchange, c: C.Funding) -> str | None:
    inst = ex.instruments.get(c.symbol)
    if inst is None:
        return reason(R.UNKNOWN_SYMBOL, c.symbol)
    if not inst.spec.perpetual:
        return reason(R.NOT_PERPETUAL, c.symbol)
    if c.rate is not None and (why := schedule.rate_error(c.rate)) is not None:
        return why
    if inst.price_or(None) is None:
        return reason(R.NO_MARK, c.symbol)
    return None


def _set(ex: Exchange, c: C.Set) -> str | None:
    try:
        apply_set(ex.config, c.path, c.value)  # pure: builds a new config or raises
    except ParamError as e:
        return reason(R.BAD_PARAM, str(e))
    return None


def _settle_period(ex: Exchange, c: C.SettlePeriod) -> str | None:
    if not isinstance(ex.config.waterfall.clawback_period, OnCommand):
        return reason(
            R.NOT_BY_COMMAND, "clawback periods are not closed by command in this configuration"
        )
    return None


_CHECKS: dict[type, Callable[[Exchange, Any], str | None]] = {
    C.Order: _order,
    C.Amend: _amend,
    C.Cancel: _cancel,
    C.CancelAll: _cancel_all,
    C.Deposit: _amount,
    C.InsuranceDeposit: _amount,
    C.Withdraw: _withdraw,
    C.IndexPrice: _index_price,
    C.Funding: _funding,
    C.Set: _set,
    C.SettlePeriod: _settle_period,
    C.MarketLevel: market.level_check,
}
