"""The ``adl`` step: auto-deleveraging against the opposite side, best-ranked first.

Rank (BitMEX's): for a profitable position, PnL% x effective leverage; for a losing one,
PnL% / effective leverage, after every profitable one; ties by account id. PnL% is
unrealised PnL over the entry value, effective leverage notional over equity. Scores are
integers scaled by 10^18. Accounts with no equity left come last (they are being liquidated too).
Each counterparty takes its piece at the liquidated account's exact bankruptcy value,
recomputed from the account's state before each piece (dYdX v4 ``OffsetSubaccountPerpetualPosition``
calls ``GetBankruptcyPriceInQuoteQuantums`` per offsetting fill), so the pieces add up to the
whole and rounding leaves nobody owing; a piece whose value falls between two ticks is
logged as two events (see ``bankruptcy.split_value``), each with its rank and score.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from heapq import heapify, heappop

from clearsim.clearing.accounts import ENTRY_SCALE, FEES, INSURANCE, Account
from clearsim.clearing.bankruptcy import bankruptcy_value
from clearsim.clearing.instrument import Instrument
from clearsim.clearing.ledger import Why
from clearsim.clearing.margin import notional, value
from clearsim.clearing.steps.base import Case, RiskSource, WaterfallContext
from clearsim.events.types import Deleveraged


def entry_value(inst: Instrument, q: int, entry_e6: int) -> int:
    """What the position was worth at its average entry price, in atoms."""
    spec = inst.spec
    if spec.inverse:
        return (-q * spec.k * ENTRY_SCALE) // max(entry_e6, 1)
    return q * entry_e6 * spec.k // ENTRY_SCALE


#: Scores are compared as integers scaled by 10^18 (exact to that precision, no Fraction
#: arithmetic in the sort); equal scores fall back to the account id.
SCORE_SCALE = 10**18


def _scored(
    ex: RiskSource, inst: Instrument, long_side: bool, exclude: str
) -> list[tuple[int, int, str, Account]]:
    """(group, -score, id, account) for every candidate: group 0 profitable, 1 losing,
    2 no equity left (being liquidated too)."""
    spec = inst.spec
    mark = inst.valuation_price()
    sym = spec.symbol
    keyed: list[tuple[int, int, str, Account]] = []
    for aid, a in inst.holders.items():
        if aid == exclude or a.flagged or aid in (INSURANCE, FEES):
            continue
        pos = a.positions[sym]
        if (pos.qty > 0) != long_side:
            continue
        equity, _, _ = ex.risk(a)
        entry = entry_value(inst, pos.qty, pos.entry_e6)
        ev = abs(entry) or 1
        n = notional(spec, pos.qty, mark)
        pnl = value(spec, pos.qty, mark) - entry
        if equity <= 0 or n == 0:
            keyed.append((2, 0, aid, a))
        elif pnl > 0:  # PnL% x leverage = (pnl / ev) x (n / equity)
            keyed.append((0, -(pnl * n * SCORE_SCALE // (ev * equity)), aid, a))
        else:  # PnL% / leverage = (pnl / ev) / (n / equity)
            keyed.append((1, -(pnl * equity * SCORE_SCALE // (ev * n)), aid, a))
    return keyed


def ranking(
    ex: RiskSource, inst: Instrument, long_side: bool, exclude: str
) -> Iterator[tuple[Account, int]]:
    """Holders of ``inst`` on the given side in ADL order, with their scores (x 10^18).

    A heap, not a sort: an ADL step usually needs only the first few accounts, so the cost
    is one scoring pass plus O(log n) per account actually deleveraged.
    """
    keyed = _scored(ex, inst, long_side, exclude)
    heapify(keyed)
    while keyed:
        _, neg, _, a = heappop(keyed)
        yield a, -neg


class Adl:
    """Close the remainder against the best-ranked opposite positions."""

    name = "adl"
    socialises = False

    def applies(self, ctx: WaterfallContext, case: Case) -> bool:
        # adl_negative_equity_only (dYdX, Hyperliquid): never deleverage while equity >= 0.
        return not (ctx.waterfall.adl_negative_equity_only and case.equity >= 0)

    def close(self, ctx: WaterfallContext, case: Case) -> int:
        acct, inst, r, mark = case.account, case.inst, case.remaining, case.mark
        spec = inst.spec
        sym = spec.symbol
        sign = case.sign
        done = 0
        for rank, (c, score) in enumerate(ranking(ctx, inst, sign < 0, acct.id), 1):
            x = min(r - done, abs(c.positions[sym].qty))
            equity, mm, _ = ctx.risk(acct)
            q = acct.positions[sym].qty
            target = bankruptcy_value(spec, q, -sign * x, mark, equity, mm)
            text = format(Decimal(score) / SCORE_SCALE, ".6f")
            s = 0
            for d, p, val in ctx.ledger.transfer_value(acct, c, inst, -sign * x, target, Why.ADL):
                s = ctx.next_seq()
                ev = Deleveraged(
                    s, ctx.ts, case.cause, acct.id, c.id, sym, abs(d), p, val, rank, text
                )
                ctx.emit(ev)
            ctx.touched(c, s)
            done += x
            if done == r:
                break
        return done
