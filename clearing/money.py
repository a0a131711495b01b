"""Money commands: ``deposit``, ``withdraw`` (refused below initial margin, and while a
socialised loss is pending, refused if it would take the period's profit) and
``insurance_deposit``. The cash moves through the ledger; each command emits its event and
re-checks the account's margin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearsim.clearing import watch
from clearsim.events import commands as C
from clearsim.events.commands import to_units
from clearsim.events.rejects import RejectCode as R
from clearsim.events.rejects import reason
from clearsim.events.types import Deposit, Event, InsuranceDeposit, Withdrawal

if TYPE_CHECKING:
    from clearsim.clearing.exchange import Exchange


def deposit(ex: Exchange, out: list[Event], cause: int, c: C.Deposit) -> str | None:
    amount = parse_amount(ex, c.amount)
    if isinstance(amount, str):
        return amount
    acct = ex.ledger.open(c.account)
    ex.ledger.deposit(acct, amount)
    out.append(Deposit(ex.seq.next(), c.ts, cause, c.account, amount))
    watch.after_balance_change(ex, out, acct, out[-1].seq)
    return None


def withdraw(ex: Exchange, out: list[Event], cause: int, c: C.Withdraw) -> str | None:
    acct = ex.accounts.get(c.account)
    if acct is None:
        return reason(R.UNKNOWN_ACCOUNT, c.account)
    amount = parse_amount(ex, c.amount)
    if isinstance(amount, str):
        return amount
    equity, _, im = watch.risk(ex, acct)
    if equity - amount < im:
        return reason(R.INSUFFICIENT_MARGIN, "withdrawal would leave equity below initial margin")
    if ex.pool.balance < 0:
        # A socialised loss is pending: the period's profit may be clawed back at the period
        # end, so only non-profit money leaves (OKX held profits until the weekly delivery).
        profit = equity - acct.net_deposits - ex.period_base.get(acct.id, 0)
        if profit > 0 and equity - amount < profit:
            return reason(R.PROFIT_LOCKED, "period profit is held until the clawback settles")
    ex.ledger.withdraw(acct, amount)
    out.append(Withdrawal(ex.seq.next(), c.ts, cause, c.account, amount))
    watch.after_balance_change(ex, out, acct, out[-1].seq)
    return None


def insurance_deposit(
    ex: Exchange, out: list[Event], cause: int, c: C.InsuranceDeposit
) -> str | None:
    amount = parse_amount(ex, c.amount)
    if isinstance(amount, str):
        return amount
    ex.ledger.deposit(ex.fund, amount)
    out.append(InsuranceDeposit(ex.seq.next(), c.ts, cause, amount))
    return None


def parse_amount(ex: Exchange, text: str) -> int | str:
    try:
        amount = to_units(text, ex.config.collateral_decimals)
    except ValueError as e:
        return reason(R.BAD_AMOUNT, str(e))
    return amount if amount > 0 else reason(R.BAD_AMOUNT, "must be positive")
