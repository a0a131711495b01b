"""Accounts and positions: the quote-balance model of DESIGN §4.

An account's ``balance`` is its cash in atoms, the quote balance Q; trades move ``value``
between buyer and seller, so Q already holds each position's entry cost, and equity is Q
plus the positions' values at the mark. What users call the balance is the wallet balance
``W = Q + Σ entry_value`` (:func:`entry_value`): deposits - withdrawals + realized PnL ±
funding - fees. The insurance fund and the fee pool are accounts too, so conservation is
one sum over all accounts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearsim.events.commands import MARKET_ACCOUNT

if TYPE_CHECKING:
    from clearsim.clearing.config import InstrumentSpec

INSURANCE = "#insurance"
FEES = "#fees"
CLAWBACK_POOL = "#clawback"
DEBT = "#debt"
#: The historical market's liquidity (DESIGN §9; :mod:`~clearsim.clearing.market`): it
#: trades, but is exempt from margin, never liquidated, never deleveraged or clawed back,
#: and its cash may go negative.
MARKET = MARKET_ACCOUNT
#: The accounts that are not traders of the simulated population: the margin watch never
#: indexes or liquidates them, clawbacks leave them out, and so does the state view's
#: ``accounts`` (it shows the fund and the market on their own).
SYSTEM = (INSURANCE, FEES, CLAWBACK_POOL, DEBT, MARKET)

#: Entry prices are kept in millionths of a tick: exact enough for display and ranking,
#: and an integer.
ENTRY_SCALE = 1_000_000


def entry_value(spec: InstrumentSpec, q: int, entry_e6: int) -> int:
    """What a position of ``q`` lots was worth at its average entry price, in atoms: its
    cost, the entry-price twin of ``margin.value`` (floored, like it).

    ``Q + Σ entry_value`` is the wallet balance W of DESIGN §4, and ``value at the mark -
    entry_value`` the position's unrealized PnL. (``steps.adl.entry_value`` is the same
    function over an ``Instrument``; ``tests/test_views.py`` holds them equal.)
    """
    if spec.inverse:
        return (-q * spec.k * ENTRY_SCALE) // max(entry_e6, 1)
    return q * entry_e6 * spec.k // ENTRY_SCALE


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
