"""The ``clawback`` step: socialised loss, charged to the period's winners.

A bankrupt account's loss that the insurance fund cannot cover is moved at once to the
clawback pool (the account is credited; the pool goes negative). At the end of a period —
``immediate`` (right away), ``settle_command`` (on each ``settle_period`` command) or every
N seconds — the pool's loss is charged to every account with positive profit in the period
(realised + unrealised, net of deposits and withdrawals), pro rata to that profit, at a
rate capped at 100%, by largest remainder so the charges sum exactly. No charge exceeds
what the account holds (its equity, >= 0): a charge that would is capped and the rest
re-spread over the others (within their own caps). Whatever is still uncollected becomes
system debt, and the ``clawback`` event reports only what was collected. While a loss is
pending, a withdrawal may not take the period's profit (``money.withdraw``).
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


def capped_split(total: int, weights: list[int], caps: list[int], keys: list[str]) -> list[int]:
    """Split ``total`` pro rata to ``weights`` (largest remainder), no part above its cap:
    a part that would exceed its cap is fixed at the cap and the rest is split again over
    the others, until nothing exceeds (at most one round per part). Parts sum to
    ``min(total, sum(caps))``."""
    parts = [0] * len(weights)
    active = [i for i, c in enumerate(caps) if c > 0 and weights[i] > 0]
    left = min(total, sum(caps[i] for i in active))
    while left > 0 and active:
        shares = split_largest_remainder(left, [weights[i] for i in active],
                                         [keys[i] for i in active])  # fmt: skip
        over = [i for i, x in zip(active, shares, strict=True) if x > caps[i]]
        if not over:
            for i, x in zip(active, shares, strict=True):
                parts[i] = x
            break
        for i in over:
            parts[i] = caps[i]
            left -= caps[i]
        active = [i for i in active if i not in over]
    return parts


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
        # rate capped at 100% (a charge never exceeds the profit) and no charge beyond what
        # the account holds; a capped share is re-spread over the others
        held = [max(0, ex.risk(ex.accounts[aid])[0]) for aid in ids]
        caps = [min(p, h) for p, h in zip(profits, held, strict=True)]
        charges = capped_split(loss, profits, caps, ids) if base else []
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
