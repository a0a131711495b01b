"""The ``adl`` step: auto-deleveraging against the opposite side, best-ranked first.

Rank (BitMEX's): for a profitable position, PnL% x effective leverage; for a losing one,
PnL% / effective leverage, after every profitable one; ties by account id. PnL% is
unrealised PnL over the entry value, effective leverage notional over equity. Scores are
exact fractions. Accounts with no equity left come last (they are being liquidated too).
Each deleveraged account is closed at the bankruptcy price and gets an event with its
rank and score.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from clearing.accounts import ENTRY_SCALE, FEES, INSURANCE, Account
from clearing.instrument import Instrument
from clearing.margin import notional, value
from events.types import Deleveraged

if TYPE_CHECKING:
    from clearing.exchange import Exchange
    from events.types import Event


def entry_value(inst: Instrument, q: int, entry_e6: int) -> int:
    """What the position was worth at its average entry price, in atoms."""
    spec = inst.spec
    if spec.inverse:
        return (-q * spec.k * ENTRY_SCALE) // max(entry_e6, 1)
    return q * entry_e6 * spec.k // ENTRY_SCALE


def ranking(
    ex: Exchange, inst: Instrument, long_side: bool, exclude: str
) -> list[tuple[Account, Fraction]]:
    """Holders of ``inst`` on the given side, in ADL order, with their scores."""
    spec = inst.spec
    mark = inst.price_or(None)
    assert mark is not None
    keyed: list[tuple[int, Fraction, str, Account]] = []
    for aid, a in inst.holders.items():
        if aid == exclude or a.flagged or aid in (INSURANCE, FEES):
            continue
        pos = a.positions[spec.symbol]
        if (pos.qty > 0) != long_side:
            continue
        equity, _, _ = ex.risk(a)
        ev = abs(entry_value(inst, pos.qty, pos.entry_e6)) or 1
        n = notional(spec, pos.qty, mark)
        pnl = value(spec, pos.qty, mark) - entry_value(inst, pos.qty, pos.entry_e6)
        if equity <= 0 or n == 0:
            keyed.append((2, Fraction(0), aid, a))
        elif pnl > 0:
            keyed.append((0, -Fraction(pnl * n, ev * equity), aid, a))
        else:
            keyed.append((1, -Fraction(pnl * equity, ev * n), aid, a))
    keyed.sort(key=lambda t: (t[0], t[1], t[2]))
    return [(a, -score) for _, score, _, a in keyed]


def run(
    ex: Exchange, out: list[Event], acct: Account, inst: Instrument, r: int, p_b: int, cause: int
) -> int:
    sym = inst.spec.symbol
    sign = 1 if acct.positions[sym].qty > 0 else -1
    done = 0
    for rank, (c, score) in enumerate(ranking(ex, inst, sign < 0, acct.id), 1):
        x = min(r - done, abs(c.positions[sym].qty))
        val = ex.transfer(acct, c, inst, -sign * x, p_b)
        text = format(Decimal(score.numerator) / Decimal(score.denominator), ".6f")
        out.append(
            Deleveraged(ex.seq.next(), ex.ts, cause, acct.id, c.id, sym, x, p_b, val, rank, text)
        )
        ex.after_balance_change(out, c, out[-1].seq)
        done += x
        if done == r:
            break
    return done
