"""The ``clawback`` step: socialised loss, charged to the period's winners.

A bankrupt account's loss that the insurance fund cannot cover is moved at once to the
clawback pool (the account is credited; the pool goes negative). At the end of a period —
``immediate`` (right away), ``settle_command`` (on each ``settle_period`` command) or every
N seconds — the pool's loss is charged to every account with positive profit in the period
(realised + unrealised, net of deposits and withdrawals), pro rata to that profit, at a
rate capped at 100%, by largest remainder so the charges sum exactly. Whatever a capped
rate leaves uncollected becomes system debt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearsim.clearing.accounts import Account
from clearsim.clearing.config import Immediate
from clearsim.clearing.rounding import split_largest_remainder
from clearsim.events.types import Clawback, SocializedLoss
from clearsim.events.units import PPM

if TYPE_CHECKING:
    from clearsim.clearing.exchange import Exchange
    from clearsim.events.types import Event


def socialise(ex: Exchange, out: list[Event], acct: Account, cause: int) -> None:
    """Move ``acct``'s negative balance to the clawback pool for this period."""
    amount = ex.ledger.socialise(acct)
    s = ex.seq.next()
    out.append(SocializedLoss(s, ex.ts, cause, acct.id, amount, ex.period))
    if isinstance(ex.config.waterfall.clawback_period, Immediate):
        settle(ex, out, ex.ts, s)


def period_profit_bases(ex: Exchange) -> dict[str, int]:
    """Each user account's equity net of deposits now: the zero of next period's profit."""
    return {a.id: ex.risk(a)[0] - a.net_deposits for a in ex.user_accounts()}


def settle(ex: Exchange, out: list[Event], ts: int, cause: int) -> None:
    """Close the period: charge the pool's loss to the period's profits, open a new one."""
    loss = -ex.pool.balance
    if loss > 0:
        ids: list[str] = []
        profits: list[int] = []
        for a in sorted(ex.user_accounts(), key=lambda a: a.id):
            if a.flagged:
                continue
            pi = ex.risk(a)[0] - a.net_deposits - ex.period_base.get(a.id, 0)
            if pi > 0:
                ids.append(a.id)
                profits.append(pi)
        base = sum(profits)
        if base == 0:
            charges: list[int] = []
        elif loss >= base:
            charges = profits  # rate capped at 100%
        else:
            charges = split_largest_remainder(loss, profits, ids)
        rate = PPM if base and loss >= base else (loss * PPM // base if base else 0)
        charged = [(aid, c) for aid, c in zip(ids, charges, strict=True) if c]
        collected = ex.ledger.collect_clawback(charged)
        s = ex.seq.next()
        out.append(
            Clawback(
                s, ts, cause, ex.period, loss, base, rate, collected, [list(x) for x in charged]
            )
        )
        if ex.pool.balance < 0:
            ex.write_off(out, ex.pool, s, "clawback could not collect")
        for aid, _ in charged:
            ex.after_balance_change(out, ex.accounts[aid], s)
    ex.period += 1
    ex.period_base = period_profit_bases(ex)
