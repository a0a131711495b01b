"""The ``takeover`` step: the insurance fund takes the position (BitMEX's liquidation engine).

The fund account takes what is left at the bankruptcy price, provided its equity stays
non-negative after absorbing the account's loss, and immediately works the position in the
book: a resting limit order at the bankruptcy price on the closing side. Whatever that
order later makes or loses is the fund's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearsim.clearing.accounts import Account
from clearsim.clearing.instrument import Instrument
from clearsim.clearing.ledger import Why
from clearsim.clearing.margin import value
from clearsim.events.types import Takeover

if TYPE_CHECKING:
    from clearsim.clearing.exchange import Exchange
    from clearsim.events.types import Event


def run(
    ex: Exchange, out: list[Event], acct: Account, inst: Instrument, r: int, p_b: int, cause: int
) -> int:
    spec = inst.spec
    sym = spec.symbol
    sign = 1 if acct.positions[sym].qty > 0 else -1
    mark = inst.price_or(None)
    assert mark is not None
    d_fund = sign * r
    fund_equity, _, _ = ex.risk(ex.fund)
    if fund_equity + value(spec, d_fund, mark) - value(spec, d_fund, p_b) < 0:
        return 0
    val = ex.ledger.transfer_position(acct, ex.fund, inst, -d_fund, p_b, Why.TAKEOVER)
    s = ex.seq.next()
    out.append(Takeover(s, ex.ts, cause, acct.id, sym, d_fund, p_b, val))
    n0 = len(out)
    side = "sell" if sign > 0 else "buy"
    inst.book.submit(out, ex.ts, s, f"takeover-{s}", ex.fund.id, side, r, p_b, "gtc")
    ex.after_book_events(out, n0, inst, ex.ts)
    return r
