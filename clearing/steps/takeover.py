"""The ``takeover`` step: the insurance fund takes the position (BitMEX's liquidation engine,
Binance's insurance-fund takeover).

The fund account takes what is left for the exact bankruptcy value (one or two events, see
``bankruptcy.split_value``), provided its equity stays non-negative after absorbing the
account's loss and, with ``takeover_max_notional_ppm``, its position notional in the market
stays within that share of its equity (Binance: "The fund will not be allowed to exceed a
predefined position notional on the market; by default, this is 100% the size of the
insurance fund"; beyond it the step does not run and the next one, ADL, does).

The fund then works the position in the book. With ``takeover_aggress`` (Binance: the fund
offloads it, and a sale below the bankruptcy value is the fund's loss) it first sends an IOC
order limited to the price at which the loss would use up the fund's equity (BitMEX: "spend
the Insurance Funds on aggressing the position in the market"). What is left rests as a
limit order at the bankruptcy price, rounded so it never trades worse than the value paid
(a sell rounds up, a buy down). Whatever those orders later make or lose is the fund's; a
fund whose equity goes below zero while it holds the position is deleveraged
(``liquidation.deleverage_fund``).
"""

from __future__ import annotations

from clearsim.clearing.bankruptcy import bankruptcy_value, resting_price
from clearsim.clearing.ledger import Why
from clearsim.clearing.margin import notional, value
from clearsim.clearing.steps.base import Case, WaterfallContext
from clearsim.events.types import Fill, Takeover
from clearsim.events.units import PPM


class TakeoverStep:
    """The fund takes the remainder at its bankruptcy value and works it in the book."""

    name = "takeover"
    socialises = False

    def applies(self, ctx: WaterfallContext, case: Case) -> bool:
        cap = ctx.waterfall.takeover_max_notional_ppm
        if not cap:
            return True
        spec = case.inst.spec
        fund = ctx.fund
        pos = fund.positions.get(spec.symbol)
        q = (pos.qty if pos else 0) + case.sign * case.remaining
        fund_equity = max(0, ctx.risk(fund)[0])
        return notional(spec, q, case.mark) * PPM <= cap * fund_equity

    def close(self, ctx: WaterfallContext, case: Case) -> int:
        acct, inst, r, mark = case.account, case.inst, case.remaining, case.mark
        spec = inst.spec
        sym = spec.symbol
        sign = case.sign
        d_fund = sign * r
        fund = ctx.fund
        fund_equity, _, _ = ctx.risk(fund)
        target = bankruptcy_value(spec, case.qty, -d_fund, mark, case.equity, case.mm)
        # The fund's equity must stay non-negative after absorbing the account's loss.
        if fund_equity + target + value(spec, d_fund, mark) < 0:
            return 0
        s = 0
        for d, p, val in ctx.ledger.transfer_value(acct, fund, inst, -d_fund, target, Why.TAKEOVER):
            s = ctx.next_seq()
            ctx.emit(Takeover(s, ctx.ts, case.cause, acct.id, sym, -d, p, val))
        side = "sell" if sign > 0 else "buy"
        left = r
        if ctx.waterfall.takeover_aggress:
            # lose at most the fund's equity before the takeover against the value paid
            limit = resting_price(spec, -d_fund, target + max(0, fund_equity))
            oid = f"takeover-{s}-ioc"
            n0 = ctx.submit(inst, s, oid, fund.id, side, r, limit, "ioc")
            left -= sum(e.qty for e in ctx.out[n0:] if type(e) is Fill and e.taker_order == oid)
        if left:
            # never worse than the value paid per lot
            price = resting_price(spec, -sign * left, target * left // r)
            ctx.submit(inst, s, f"takeover-{s}", fund.id, side, left, price, "gtc")
        return r
