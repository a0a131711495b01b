"""The ``backstop`` step: backstop accounts (a vault, an HLP) take over the position.

Each configured backstop account, in order, takes as much of what is left as its own
initial margin allows, at the bankruptcy price (so the liquidated account's share of the
loss stops there). Accounts that do not exist, or are being liquidated themselves, are
skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearsim.clearing.accounts import Account
from clearsim.clearing.instrument import Instrument
from clearsim.clearing.ledger import Why
from clearsim.clearing.margin import initial, notional, value
from clearsim.clearing.rounding import largest_satisfying
from clearsim.events.types import BackstopTransfer

if TYPE_CHECKING:
    from clearsim.clearing.exchange import Exchange
    from clearsim.events.types import Event


def capacity(ex: Exchange, b: Account, inst: Instrument, dq: int, p_b: int) -> int:
    """The most of ``|dq|`` (taken at ``p_b`` on ``dq``'s side) ``b`` can hold within IM."""
    spec = inst.spec
    mark = inst.price_or(None)
    assert mark is not None
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


def run(
    ex: Exchange, out: list[Event], acct: Account, inst: Instrument, r: int, p_b: int, cause: int
) -> int:
    sym = inst.spec.symbol
    sign = 1 if acct.positions[sym].qty > 0 else -1
    done = 0
    for bid in ex.config.waterfall.backstop_accounts:
        b = ex.accounts.get(bid)
        if b is None or b.flagged or b is acct or done == r:
            continue
        x = capacity(ex, b, inst, sign * (r - done), p_b)
        if x == 0:
            continue
        val = ex.ledger.transfer_position(acct, b, inst, -sign * x, p_b, Why.BACKSTOP)
        s = ex.seq.next()
        out.append(BackstopTransfer(s, ex.ts, cause, acct.id, bid, sym, sign * x, p_b, val))
        ex.after_balance_change(out, b, s)
        done += x
    return done
