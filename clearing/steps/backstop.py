"""The ``backstop`` step: backstop accounts (a vault, an HLP) take over the position.

Each configured backstop account, in order, takes as much of what is left as its own
initial margin allows (judged at the tick bankruptcy price), for the exact bankruptcy value
of its piece (``bankruptcy.split_value``: one or two events), so the liquidated account's
share of the loss stops there. Accounts that do not exist, or are being liquidated themselves, are
skipped.
"""

from __future__ import annotations

from clearsim.clearing.accounts import Account
from clearsim.clearing.bankruptcy import bankruptcy_value
from clearsim.clearing.config import ConfigError
from clearsim.clearing.instrument import Instrument
from clearsim.clearing.ledger import Why
from clearsim.clearing.margin import initial, notional, value
from clearsim.clearing.rounding import largest_satisfying
from clearsim.clearing.steps.base import Case, RiskSource, WaterfallContext
from clearsim.events.types import BackstopTransfer


def capacity(ex: RiskSource, b: Account, inst: Instrument, dq: int, p_b: int) -> int:
    """The most of ``|dq|`` (taken at ``p_b`` on ``dq``'s side) ``b`` can hold within IM."""
    spec = inst.spec
    mark = inst.valuation_price()
    equity, _, im = ex.risk(b)
    pos = b.positions.get(spec.symbol)
    q = pos.qty if pos else 0
    im_rest = im - initial(spec, notional(spec, q, mark))
    sign = 1 if dq > 0 else -1

    def fits(x: int) -> bool:
        d = sign * x
        e = equity + value(spec, d, mark) - value(spec, d, p_b)
        return e >= im_rest + initial(spec, notional(spec, q + d, mark))

    return largest_satisfying(fits, 0, abs(dq))


class Backstop:
    """Hand the remainder to the backstop accounts, each within its own IM."""

    name = "backstop"
    socialises = False

    def applies(self, ctx: WaterfallContext, case: Case) -> bool:
        # Only below the configured share of MM (Hyperliquid: strictly below 2/3); 100% =
        # always.
        w = ctx.waterfall
        if not w.backstop_applies(case.equity, case.mm):
            return False
        if w.backstop_accounts and not any(a in ctx.accounts for a in w.backstop_accounts):
            # Accounts exist once something is deposited to them. A backstop that was never
            # funded is a configuration that cannot run as written: say so, loudly.
            raise ConfigError(
                f"waterfall.backstop_accounts: none of {', '.join(w.backstop_accounts)} exists"
                f" when the backstop step runs for {case.account.id}; deposit to it first"
            )
        return True

    def close(self, ctx: WaterfallContext, case: Case) -> int:
        acct, inst, r, p_b = case.account, case.inst, case.remaining, case.p_b
        sym = inst.spec.symbol
        sign = case.sign
        done = 0
        for bid in ctx.waterfall.backstop_accounts:
            b = ctx.accounts.get(bid)
            if b is None or b.flagged or b is acct or done == r:
                continue
            x = capacity(ctx, b, inst, sign * (r - done), p_b)
            if x == 0:
                continue
            equity, mm, _ = ctx.risk(acct)
            q = acct.positions[sym].qty
            target = bankruptcy_value(inst.spec, q, -sign * x, case.mark, equity, mm)
            s = 0
            moves = ctx.ledger.transfer_value(acct, b, inst, -sign * x, target, Why.BACKSTOP)
            for d, p, val in moves:
                s = ctx.next_seq()
                ctx.emit(BackstopTransfer(s, ctx.ts, case.cause, acct.id, bid, sym, -d, p, val))
            ctx.touched(b, s)
            done += x
        return done
