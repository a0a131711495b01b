"""The ledger: the only code that changes cash and positions (DESIGN §2, §4).

Every change of an account's ``balance`` (its quote cash Q) or ``net_deposits``, and every
change of a position (through :meth:`Instrument.move_position`), goes through one method
here; nothing else in ``clearing/`` assigns to them. Each method is one movement of the
log's cash semantics, and the projections' :func:`clearsim.replay.project.cash_moves` is
its mirror: for every event the engine emits, ``cash_moves`` derives from the event's
fields exactly the moves the ledger made when the engine emitted it (same accounts, same
amounts, the reasons of :class:`Why`). Change one, change the other.

The ledger does not emit events: the log format is fixed, and one domain event (a
settlement, a liquidation fill, a clawback) may carry several moves, so the caller keeps
building the event it always built, right beside the ledger call. Every movement sums to
zero over all accounts except :meth:`deposit` and :meth:`withdraw`, where cash enters or
leaves the exchange (conservation, DESIGN §3).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from clearsim.clearing.accounts import CLAWBACK_POOL, DEBT, FEES, INSURANCE, MARKET, Account
from clearsim.clearing.bankruptcy import split_value
from clearsim.clearing.instrument import Instrument
from clearsim.clearing.margin import value


class Why(StrEnum):
    """Why cash moved: the reasons ``replay.project.cash_moves`` gives the same moves."""

    TRADE = "trade"
    FEE = "fee"
    FUNDING = "funding"
    LIQUIDATION_FEE = "liquidation fee"
    SHORTFALL = "shortfall"
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    BANKRUPTCY = "bankruptcy"
    TAKEOVER = "takeover"
    BACKSTOP = "backstop"
    ADL = "adl"
    SOCIALIZED = "socialized"
    CLAWBACK = "clawback"
    SYSTEM_DEBT = "system debt"


class Ledger:
    """All accounts, the system accounts among them, and the moves between them."""

    __slots__ = ("accounts", "debt", "fees", "fund", "market", "pool")

    def __init__(self, insurance_initial: int) -> None:
        #: every account by id, system accounts first (the order state views list them in)
        self.accounts: dict[str, Account] = {}
        self.fund = self._open_system(INSURANCE, insurance_initial)
        self.fees = self._open_system(FEES, 0)
        self.pool = self._open_system(CLAWBACK_POOL, 0)  # socialised loss awaiting clawback
        self.debt = self._open_system(DEBT, 0)  # what nobody could be made to pay
        #: the historical market's liquidity (clearing.market): no deposits, no margin, so
        #: its cash may go negative; conservation counts it like every other account
        self.market = self._open_system(MARKET, 0)

    def _open_system(self, account_id: str, initial: int) -> Account:
        # The fund's initial balance counts as a deposit, so conservation holds from seq 0.
        acct = self.accounts[account_id] = Account(account_id, initial)
        return acct

    def open(self, account_id: str) -> Account:
        """The account ``account_id``, created empty on first use."""
        acct = self.accounts.get(account_id)
        if acct is None:
            acct = self.accounts[account_id] = Account(account_id)
        return acct

    # ------------------------------------------------------------------ cash in and out

    def deposit(self, acct: Account, amount: int) -> None:
        """Cash enters the exchange (``deposit``, ``insurance_deposit``)."""
        acct.balance += amount
        acct.net_deposits += amount

    def withdraw(self, acct: Account, amount: int) -> None:
        """Cash leaves the exchange (``withdrawal``)."""
        acct.balance -= amount
        acct.net_deposits -= amount

    # ------------------------------------------------------------------ transfers

    def move(self, frm: Account, to: Account, amount: int, why: Why) -> None:
        """Move ``amount`` atoms (may be negative: the other way) from ``frm`` to ``to``.

        ``why`` names the move as ``cash_moves`` does (``liquidation_fill``: liquidation
        fee or shortfall; ``insurance_payment``: its reason).
        """
        frm.balance -= amount
        to.balance += amount

    def settle_trade(
        self,
        inst: Instrument,
        buyer: Account,
        seller: Account,
        qty: int,
        price: int,
        val: int,
        buyer_fee: int,
        seller_fee: int,
    ) -> None:
        """A book fill (``settlement``): the buyer pays ``val`` plus its fee, the seller
        receives ``val`` less its fee, the fees go to the fee pool, and ``qty`` lots move
        from seller to buyer at ``price``. The hot path: one call per fill, no allocation."""
        buyer.balance -= val + buyer_fee
        seller.balance += val - seller_fee
        self.fees.balance += buyer_fee + seller_fee
        inst.move_position(buyer, qty, price)
        inst.move_position(seller, -qty, price)

    def transfer_position(
        self, frm: Account, to: Account, inst: Instrument, dq: int, price: int, why: Why
    ) -> int:
        """Move ``dq`` lots (signed, as ``frm``'s change) from ``frm`` to ``to`` at ``price``,
        outside the book (``takeover``, ``backstop_transfer``, ``deleveraged``). Returns the
        value ``frm`` paid (negative: received), which ``to`` received."""
        val = value(inst.spec, dq, price)
        frm.balance -= val
        to.balance += val
        inst.move_position(frm, dq, price)
        inst.move_position(to, -dq, price)
        return val

    def transfer_value(
        self, frm: Account, to: Account, inst: Instrument, dq: int, target: int, why: Why
    ) -> list[tuple[int, int, int]]:
        """Move ``dq`` lots from ``frm`` to ``to`` for the exact value ``target`` (atoms
        ``frm`` pays, negative: receives), as the pieces of :func:`bankruptcy.split_value`
        (at most two adjacent tick prices: one event each). Returns (lots, price, value) per
        piece, lots signed as ``frm``'s change."""
        pieces = split_value(inst.spec, dq, target)
        return [(d, p, self.transfer_position(frm, to, inst, d, p, why)) for d, p in pieces]

    def pay_funding(self, payments: Iterable[tuple[str, int]]) -> None:
        """One funding round (``funding``): signed cash changes per account id, summing to
        zero (``funding.payments`` splits them exactly)."""
        accounts = self.accounts
        for account_id, amount in payments:
            accounts[account_id].balance += amount

    # ------------------------------------------------------------------ losses

    def socialise(self, acct: Account) -> int:
        """Move ``acct``'s negative balance to the clawback pool (``socialized_loss``);
        return the amount (positive)."""
        amount = -acct.balance
        acct.balance = 0
        self.pool.balance -= amount
        return amount

    def collect_clawback(self, charges: Iterable[tuple[str, int]]) -> int:
        """Charge each (account id, amount) and credit the pool (``clawback``); return
        what was collected."""
        collected = 0
        accounts = self.accounts
        for account_id, amount in charges:
            accounts[account_id].balance -= amount
            collected += amount
        self.pool.balance += collected
        return collected

    def write_off(self, acct: Account) -> int:
        """Move ``acct``'s negative balance to the debt account (``system_debt``); return
        the amount (positive)."""
        amount = -acct.balance
        acct.balance = 0
        self.debt.balance -= amount
        return amount
