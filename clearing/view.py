"""The state view of DESIGN §10 (``clearsim state --json``), built once for every source.

:func:`state_of` builds the dict — accounts with their balances, equity, margins and
positions (entry and liquidation prices), marks, the fund, debt and pools, as decimal
strings — from a
:class:`StateSource`: a small read-only protocol (accounts with their cash Q, net deposits
and positions; per instrument its spec, grid, mark, index and last trade; the risk figures
of an account). Two sources implement it: the live exchange (:func:`state`, through
:class:`LiveState`) and the ledger projection folded from events
(``replay.projections.ledger.LedgerState``), so the two views cannot drift apart in shape or
formatting, only in the numbers their sources hold — and a test holds those equal.
``clearing`` never imports ``replay``: the projection imports this.

The balances speak the exchanges' language (DESIGN §4; ``fidelity-sources.md`` §9):

- ``balance`` is the wallet balance ``W = Q + Σ entry value = E - unrealized PnL``:
  deposits - withdrawals + realized PnL ± funding - fees. Binance calls it
  ``walletBalance`` (Account Information V2, "walletBalance", "totalWalletBalance");
  BitMEX "Wallet Balance = Deposits - Withdrawals + Realised PNL" (Margin Terms
  Definitions). dYdX v4 has no such figure (its USDC asset position is Q).
- ``quote_balance`` is Q, the account's cash: it already holds the positions' entry cost
  (a long bought for 100,000 from 100,000 has Q = 0).
- ``equity`` is ``E = Q + Σ q x mark``: Binance ``marginBalance`` (= wallet balance +
  ``unrealizedProfit``), BitMEX "Margin Balance = Wallet Balance + Unrealised PNL", dYdX
  "total net collateral", Hyperliquid "account value".
- ``insurance_fund`` is the fund's *equity* (DESIGN §6: after a takeover the fund holds
  positions, and its marked equity is what "the fund" means), with its cash
  (``insurance_fund_cash``) and positions (``insurance_fund_positions``) beside it.
- ``market`` is the historical market's account (``#market``, ``clearing.market``), shown
  on its own once it has traded, never among the ``accounts``: it is no trader of the
  population (no margin, never liquidated, its cash may be negative), so it has no margin
  figures or liquidation prices.

:func:`fmt_entry` is the one formatter of an entry price.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from clearsim.clearing.accounts import (
    CLAWBACK_POOL,
    DEBT,
    ENTRY_SCALE,
    FEES,
    INSURANCE,
    MARKET,
    SYSTEM,
    Position,
    entry_value,
)
from clearsim.clearing.config import InstrumentSpec, fmt_atoms
from clearsim.orderbook.grid import Grid

if TYPE_CHECKING:
    from clearsim.clearing.exchange import Exchange

__all__ = [
    "AccountState",
    "InstrumentState",
    "LiveState",
    "StateSource",
    "fmt_entry",
    "state",
    "state_of",
    "wallet_balance",
]


def fmt_entry(entry_e6: int, tick_size: str) -> str:
    """An entry price kept in millionths of a tick -> its exact decimal string."""
    return format((Decimal(entry_e6) * Decimal(tick_size) / ENTRY_SCALE).normalize(), "f")


# --------------------------------------------------------------------------- the protocol


class AccountState(Protocol):
    """One account as the view reads it (``clearing.accounts.Account`` is one)."""

    @property
    def id(self) -> str: ...

    @property
    def balance(self) -> int:
        """The quote balance Q (cash) in atoms; it already holds the positions' entry cost."""
        ...

    @property
    def net_deposits(self) -> int: ...

    @property
    def positions(self) -> Mapping[str, Position]:
        """Non-zero positions by symbol."""
        ...


class InstrumentState(Protocol):
    """One instrument as the view reads it (``clearing.instrument.Instrument`` is one)."""

    @property
    def spec(self) -> InstrumentSpec: ...

    @property
    def grid(self) -> Grid: ...

    @property
    def mark(self) -> int | None: ...

    @property
    def index(self) -> int | None: ...

    @property
    def last_trade(self) -> int | None: ...


class StateSource(Protocol):
    """Everything :func:`state_of` reads (see the module docstring)."""

    @property
    def seq(self) -> int: ...

    @property
    def ts(self) -> int: ...

    @property
    def scale(self) -> int:
        """Atoms per unit of collateral."""
        ...

    def accounts(self) -> Iterable[AccountState]:
        """Every account, the system accounts (``clearing.accounts.SYSTEM``) included."""
        ...

    def account(self, account_id: str, /) -> AccountState | None: ...

    def instruments(self) -> Mapping[str, InstrumentState]: ...

    def risk(self, acct: AccountState, /) -> tuple[int, int, int]:
        """(equity, maintenance margin, initial margin) at the current marks."""
        ...

    def liquidation_price(self, acct: AccountState, symbol: str, /) -> int | None:
        """The mark of ``symbol`` at which ``acct`` becomes liquidatable, others held fixed."""
        ...


# --------------------------------------------------------------------------- the view


def wallet_balance(acct: AccountState, instruments: Mapping[str, InstrumentState]) -> int:
    """The wallet balance ``W = Q + Σ entry value`` of DESIGN §4, in atoms (see the module
    docstring): the account's cash plus what its positions cost."""
    w = acct.balance
    for sym, pos in acct.positions.items():
        w += entry_value(instruments[sym].spec, pos.qty, pos.entry_e6)
    return w


def state_of(src: StateSource) -> dict[str, Any]:
    """The state shape of DESIGN §10 (``clearsim state --json``), decimal strings."""
    sc = src.scale
    instruments = src.instruments()
    accounts: dict[str, Any] = {}
    for acct in sorted(src.accounts(), key=lambda a: a.id):
        if acct.id in SYSTEM:
            continue
        equity, mm, im = src.risk(acct)
        positions: dict[str, Any] = {}
        for sym in sorted(acct.positions):
            pos = acct.positions[sym]
            inst = instruments[sym]
            lp = src.liquidation_price(acct, sym)
            positions[sym] = {
                "qty": inst.grid.fmt_qty(pos.qty),
                "entry_price": fmt_entry(pos.entry_e6, inst.spec.tick_size),
                "liquidation_price": None if lp is None else inst.grid.fmt_price(lp),
            }
        accounts[acct.id] = {
            "balance": fmt_atoms(wallet_balance(acct, instruments), sc),
            "quote_balance": fmt_atoms(acct.balance, sc),
            "equity": fmt_atoms(equity, sc),
            "net_deposits": fmt_atoms(acct.net_deposits, sc),
            "maintenance_margin": fmt_atoms(mm, sc),
            "initial_margin": fmt_atoms(im, sc),
            "liquidatable": equity < mm,
            "positions": positions,
        }

    def price(v: int | None, grid: Grid) -> str | None:
        return None if v is None else grid.fmt_price(v)

    marks = {
        sym: {
            "mark": price(inst.mark, inst.grid),
            "index": price(inst.index, inst.grid),
            "last_trade": price(inst.last_trade, inst.grid),
        }
        for sym, inst in sorted(instruments.items())
    }

    def cash(account_id: str) -> int:
        a = src.account(account_id)
        return 0 if a is None else a.balance

    fund = src.account(INSURANCE)
    fund_positions: dict[str, Any] = {}
    if fund is not None:
        for sym in sorted(fund.positions):
            pos, inst = fund.positions[sym], instruments[sym]
            fund_positions[sym] = {
                "qty": inst.grid.fmt_qty(pos.qty),
                "entry_price": fmt_entry(pos.entry_e6, inst.spec.tick_size),
            }
    view: dict[str, Any] = {
        "seq": src.seq,
        "ts": src.ts,
        "insurance_fund": fmt_atoms(0 if fund is None else src.risk(fund)[0], sc),
        "insurance_fund_cash": fmt_atoms(cash(INSURANCE), sc),
        "insurance_fund_positions": fund_positions,
        "system_debt": fmt_atoms(-cash(DEBT), sc),
        "socialized_pending": fmt_atoms(-cash(CLAWBACK_POOL), sc),
        "fee_pool": fmt_atoms(cash(FEES), sc),
        "instruments": marks,
        "accounts": accounts,
    }
    market = src.account(MARKET)
    if market is not None and (market.balance or market.positions):
        # Once it has traded (cash or a position), whichever source: the live exchange
        # holds the account from the start, a fold from its first move.
        view["market"] = {
            "balance": fmt_atoms(wallet_balance(market, instruments), sc),
            "quote_balance": fmt_atoms(market.balance, sc),
            "equity": fmt_atoms(src.risk(market)[0], sc),
            "positions": {
                sym: {
                    "qty": instruments[sym].grid.fmt_qty(pos.qty),
                    "entry_price": fmt_entry(pos.entry_e6, instruments[sym].spec.tick_size),
                }
                for sym, pos in sorted(market.positions.items())
            },
        }
    return view


# --------------------------------------------------------------------------- the live exchange


class LiveState:
    """The live :class:`~clearsim.clearing.exchange.Exchange` as a :class:`StateSource`:
    its own accounts and instruments, and its own risk figures (``watch``), so the view
    shows exactly what the engine decides with."""

    __slots__ = ("_ex",)

    def __init__(self, ex: Exchange) -> None:
        self._ex = ex

    @property
    def seq(self) -> int:
        return self._ex.seq.last

    @property
    def ts(self) -> int:
        return self._ex.ts

    @property
    def scale(self) -> int:
        return int(self._ex.scale)

    def accounts(self) -> Iterable[AccountState]:
        return self._ex.accounts.values()

    def account(self, account_id: str, /) -> AccountState | None:
        return self._ex.accounts.get(account_id)

    def instruments(self) -> Mapping[str, InstrumentState]:
        return self._ex.instruments

    def risk(self, acct: AccountState, /) -> tuple[int, int, int]:
        return self._ex.risk(self._ex.accounts[acct.id])

    def liquidation_price(self, acct: AccountState, symbol: str, /) -> int | None:
        return self._ex.liquidation_price(self._ex.accounts[acct.id], symbol)


def state(ex: Exchange) -> dict[str, Any]:
    """The state view of the live exchange (``Exchange.state``): :func:`state_of`."""
    return state_of(LiveState(ex))
