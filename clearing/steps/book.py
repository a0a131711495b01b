"""The ``book`` step: an IOC liquidation order into the book (DESIGN §6).

The limit price follows ``price_limit``: ``bankruptcy`` (never worse than the bankruptcy
price), ``fillable`` (dYdX's fillable price) or ``market`` (anything inside the price band).
The order is sized in advance so the insurance fund can pay every fill's shortfall against
the bankruptcy price, unless a later step socialises what it cannot. The order pays no
trading fee; each fill is then settled against the bankruptcy price (the liquidation fee
and any surplus to the fund, or the fund paying the gap).
"""

from __future__ import annotations

from clearsim.clearing.bankruptcy import fillable_price
from clearsim.clearing.config import PriceLimit, Surplus
from clearsim.clearing.instrument import Instrument
from clearsim.clearing.ledger import Why
from clearsim.clearing.margin import notional, value
from clearsim.clearing.rounding import largest_satisfying, ppm_up
from clearsim.clearing.steps.base import Case, WaterfallContext
from clearsim.events.types import Fill, LiquidationFill, Settlement
from clearsim.events.units import PPM


class BookStep:
    """Close into the book at the configured price limit."""

    name = "book"
    socialises = False

    def applies(self, ctx: WaterfallContext, case: Case) -> bool:
        return True

    def close(self, ctx: WaterfallContext, case: Case) -> int:
        w = ctx.waterfall
        acct, inst, r, p_b, mark = case.account, case.inst, case.remaining, case.p_b, case.mark
        spec = inst.spec
        q = case.qty
        sell = q > 0
        dq = -r if sell else r
        limit: int | None
        if w.price_limit is PriceLimit.BANKRUPTCY:
            limit = p_b
        elif w.price_limit is PriceLimit.FILLABLE:
            limit = fillable_price(
                spec, q, dq, mark, case.equity, case.mm, w.fillable_ba_ppm, w.fillable_smmr_ppm
            )
        elif spec.band_ppm:
            edge = spec.band_ppm * mark // PPM
            limit = max(1, mark - edge) if sell else mark + edge
        else:
            limit = None
        may_socialise = ctx.may_socialise
        budget = ctx.fund_available()
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
        oid = f"liq-{case.cause}"
        side = "sell" if sell else "buy"
        n0 = ctx.submit(
            inst, case.cause, oid, acct.id, side, planned, worst, "ioc", fee_exempt=True
        )
        new = ctx.out[n0:]
        settled = {e.cause: e.seq for e in new if type(e) is Settlement}
        filled = 0
        for f in [e for e in new if type(e) is Fill and e.taker_order == oid]:
            filled += f.qty
            _settle_against_bankruptcy(ctx, case, f, settled[f.seq])
        return filled


def _shortfall(inst: Instrument, sell: bool, qty: int, price: int, p_b: int) -> int:
    """What the fund pays if ``qty`` fills at ``price`` instead of the bankruptcy price."""
    dq = -qty if sell else qty
    return max(0, value(inst.spec, dq, price) - value(inst.spec, dq, p_b))


def _affordable(inst: Instrument, sell: bool, qty: int, price: int, p_b: int, budget: int) -> int:
    """The most of ``qty`` whose shortfall at ``price`` fits in ``budget``."""
    return largest_satisfying(lambda x: _shortfall(inst, sell, x, price, p_b) <= budget, 0, qty)


def _settle_against_bankruptcy(ctx: WaterfallContext, case: Case, f: Fill, cause: int) -> None:
    """Per fill: delta = fill value - value at the bankruptcy price, for the account.

    delta >= 0: the liquidation fee (capped by delta) to the fund, the rest to the trader or
    the fund per ``surplus`` (to the fund only for a final close, see ``Case.final``).
    delta < 0: the fund pays the gap as far as it can; what it cannot is left on the
    account for the clawback (the fill was only made because one is configured).
    """
    w = ctx.waterfall
    acct, spec, p_b = case.account, case.inst.spec, case.p_b
    sell = f.taker_side == "sell"
    dq = -f.qty if sell else f.qty
    delta = value(spec, dq, p_b) - value(spec, dq, f.price)
    fee = surplus = paid = social = 0
    if delta >= 0:
        fee = min(ppm_up(notional(spec, f.qty, f.price), w.liquidation_fee_ppm), delta)
        # A partial slice that is not the whole position leaves the rest of delta with the
        # trader whatever ``surplus`` says (Binance: nothing but the realised loss and the
        # fee is taken, so a healthy-again trader keeps the margin).
        keep = w.surplus is Surplus.TRADER or not case.final
        surplus = 0 if keep else delta - fee
    else:
        paid = min(-delta, ctx.fund_available())
        social = -delta - paid
    to_fund = fee + surplus - paid
    ctx.ledger.move(acct, ctx.fund, to_fund, Why.SHORTFALL if paid else Why.LIQUIDATION_FEE)
    ctx.emit(
        LiquidationFill(
            ctx.next_seq(),
            ctx.ts,
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
