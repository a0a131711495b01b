"""The ``takeover`` step: the insurance fund takes the position (BitMEX's liquidation engine).

The fund account takes what is left at the bankruptcy price, provided its equity stays
non-negative after absorbing the account's loss, and immediately works the position in the
book: a resting limit order at the bankruptcy price on the closing side. Whatever that
order later makes or loses is the fund's.
"""

from __future__ import annotations

from clearsim.clearing.ledger import Why
from clearsim.clearing.margin import value
from clearsim.clearing.steps.base import Case, WaterfallContext
from clearsim.events.types import Takeover


class TakeoverStep:
    """The fund takes the remainder at the bankruptcy price and works it in the book."""

    name = "takeover"
    socialises = False

    def applies(self, ctx: WaterfallContext, case: Case) -> bool:
        return True

    def close(self, ctx: WaterfallContext, case: Case) -> int:
        acct, inst, r, p_b, mark = case.account, case.inst, case.remaining, case.p_b, case.mark
        spec = inst.spec
        sym = spec.symbol
        sign = case.sign
        d_fund = sign * r
        fund = ctx.fund
        fund_equity, _, _ = ctx.risk(fund)
        # The fund's equity must stay non-negative after absorbing the account's loss.
        if fund_equity + value(spec, d_fund, mark) - value(spec, d_fund, p_b) < 0:
            return 0
        val = ctx.ledger.transfer_position(acct, fund, inst, -d_fund, p_b, Why.TAKEOVER)
        s = ctx.next_seq()
        ctx.emit(Takeover(s, ctx.ts, case.cause, acct.id, sym, d_fund, p_b, val))
        side = "sell" if sign > 0 else "buy"
        ctx.submit(inst, s, f"takeover-{s}", fund.id, side, r, p_b, "gtc")
        return r
