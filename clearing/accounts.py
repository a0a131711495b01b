"""Accounts and positions: the quote-balance model of DESIGN §4.

An account's ``balance`` is its cash in atoms; trades move ``value`` between buyer and
seller, so the balance already holds each position's entry cost, and equity is the balance
plus the positions' values at the mark. The insurance fund and the fee pool are accounts
too, so conservation is one sum over all accounts.
"""

from __future__ import annotations

INSURANCE = "#insurance"
FEES = "#fees"
CLAWBACK_POOL = "#clawback"
DEBT = "#debt"
SYSTEM = (INSURANCE, FEES, CLAWBACK_POOL, DEBT)

#: Entry prices are kept in millionths of a tick: exact enough for display and ranking,
#: and an integer.
ENTRY_SCALE = 1_000_000


class Position:
    """A signed quantity in lots and its average entry price (in 1e-6 ticks)."""

    __slots__ = ("entry_e6", "qty")

    def __init__(self) -> None:
        self.qty = 0
        self.entry_e6 = 0

    def trade(self, dq: int, price: int) -> None:
        """Apply a fill of signed ``dq`` lots at ``price`` ticks to quantity and entry price.

        Entry is averaged when the position grows, unchanged when it shrinks, and reset to
        the fill price when it flips side.
        """
        q = self.qty
        new = q + dq
        if q == 0 or ((q > 0) != (new > 0) and new != 0):
            self.entry_e6 = price * ENTRY_SCALE
        elif (q > 0) == (dq > 0):
            self.entry_e6 = (abs(q) * self.entry_e6 + abs(dq) * price * ENTRY_SCALE) // abs(new)
        self.qty = new


class Account:
    """Cash, positions by symbol (non-zero only), and liquidation status."""

    __slots__ = ("balance", "flagged", "id", "net_deposits", "positions")

    def __init__(self, account_id: str, balance: int = 0) -> None:
        self.id = account_id
        self.balance = balance
        self.net_deposits = balance
        self.positions: dict[str, Position] = {}
        self.flagged = False
