"""The ledger projection: accounts, positions and prices folded from events, no engine.

:class:`Ledger` folds cash balances (system accounts included, through
:func:`.cash.cash_moves`), positions with their average entry price (the rule of
``clearing.accounts.Position.trade``), marks, index and last trade prices, and ``set``
changes; :class:`LedgerState` offers it to the one state view, ``clearing.view.state_of``, and
:func:`state_view` is that view (the shape of ``clearsim state --json``; risk figures from
the config in force and ``clearing.margin``). Snapshots
(:mod:`replay.snapshot`) store :meth:`Ledger.to_dict`.

Every fold works on raw record dicts (``apply``) or typed events (``apply_event``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from clearsim.clearing.accounts import CLAWBACK_POOL, DEBT, FEES, INSURANCE, Position
from clearsim.clearing.config import Config, InstrumentSpec
from clearsim.clearing.margin import initial, liquidation_price, maintenance, notional, value
from clearsim.clearing.params import apply_set
from clearsim.clearing.view import AccountState, InstrumentState, state_of
from clearsim.events.codec import event_to_dict
from clearsim.events.log import LogReader
from clearsim.events.types import Event
from clearsim.orderbook.grid import Grid
from clearsim.replay.projections.cash import Record, cash_moves, initial_fund

__all__ = ["Ledger", "LedgerState", "fold_ledger", "state_view", "time_span"]


class Ledger:
    """Accounts, positions and prices folded from events (see the module docstring).

    ``balances`` holds every account's cash in atoms, ``#insurance``, ``#fees``, ``#clawback``
    and ``#debt`` included; ``positions[account][symbol]`` only non-zero positions (a closed
    position is dropped, as the engine does). ``seq``/``ts`` are the last event folded and
    the highest ts seen.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.seq = 0
        self.ts = 0
        fund = initial_fund(config)
        self.balances: dict[str, int] = {INSURANCE: fund, FEES: 0, CLAWBACK_POOL: 0, DEBT: 0}
        self.net_deposits: dict[str, int] = {INSURANCE: fund}
        self.positions: dict[str, dict[str, Position]] = {}
        self.marks: dict[str, int] = {}
        self.index: dict[str, int] = {}
        self.last_trade: dict[str, int] = {}
        self.params: list[tuple[str, str]] = []
        self._handlers: dict[str, Callable[[Record], None]] = {
            "deposit": self._deposit,
            "withdrawal": self._withdrawal,
            "insurance_deposit": self._insurance_deposit,
            "settlement": self._settlement,
            "backstop_transfer": self._backstop,
            "takeover": self._takeover,
            "deleveraged": self._deleveraged,
            "mark_price": self._mark,
            "index_price": self._index,
            "param_set": self._param_set,
        }

    # -- folding

    def apply(self, d: Record) -> None:
        """Fold one raw record dict."""
        self.seq = d["seq"]
        ts = d["ts"]
        if ts > self.ts:
            self.ts = ts
        b = self.balances
        for account, amount, _ in cash_moves(d):
            b[account] = b.get(account, 0) + amount
        h = self._handlers.get(d["type"])  # what else than cash the event changes
        if h is not None:
            h(d)

    def apply_event(self, ev: Event) -> None:
        self.apply(event_to_dict(ev))

    def fold(self, records: Iterable[Record]) -> Ledger:
        for d in records:
            self.apply(d)
        return self

    # -- primitives

    def _trade(self, account: str, symbol: str, dq: int, price: int) -> None:
        book = self.positions.setdefault(account, {})
        pos = book.get(symbol)
        if pos is None:
            pos = book[symbol] = Position()
        pos.trade(dq, price)
        if pos.qty == 0:
            del book[symbol]

    def _transfer(self, frm: str, to: str, symbol: str, dq: int, price: int) -> None:
        self._trade(frm, symbol, dq, price)
        self._trade(to, symbol, -dq, price)

    def qty(self, account: str, symbol: str) -> int:
        pos = self.positions.get(account, {}).get(symbol)
        return 0 if pos is None else pos.qty

    # -- handlers

    def _deposit(self, d: Record) -> None:
        nd = self.net_deposits
        nd[d["account"]] = nd.get(d["account"], 0) + d["amount"]

    def _withdrawal(self, d: Record) -> None:
        nd = self.net_deposits
        nd[d["account"]] = nd.get(d["account"], 0) - d["amount"]

    def _insurance_deposit(self, d: Record) -> None:
        self.net_deposits[INSURANCE] = self.net_deposits.get(INSURANCE, 0) + d["amount"]

    def _settlement(self, d: Record) -> None:
        sym, price, qty = d["symbol"], d["price"], d["qty"]
        self._trade(d["buyer"], sym, qty, price)
        self._trade(d["seller"], sym, -qty, price)
        self.last_trade[sym] = price

    def _backstop(self, d: Record) -> None:
        self._transfer(d["account"], d["backstop"], d["symbol"], -d["qty"], d["price"])

    def _takeover(self, d: Record) -> None:
        self._transfer(d["account"], INSURANCE, d["symbol"], -d["qty"], d["price"])

    def _deleveraged(self, d: Record) -> None:
        sign = 1 if self.qty(d["account"], d["symbol"]) > 0 else -1
        self._transfer(d["account"], d["counterparty"], d["symbol"], -sign * d["qty"], d["price"])

    def _mark(self, d: Record) -> None:
        self.marks[d["symbol"]] = d["price"]

    def _index(self, d: Record) -> None:
        self.index[d["symbol"]] = d["price"]

    def _param_set(self, d: Record) -> None:
        self.params.append((d["path"], d["new"]))

    # -- snapshots

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy of the folded state (what a snapshot stores)."""
        return {
            "seq": self.seq,
            "ts": self.ts,
            "balances": dict(self.balances),
            "net_deposits": dict(self.net_deposits),
            "positions": {
                a: {s: [p.qty, p.entry_e6] for s, p in book.items()}
                for a, book in self.positions.items()
                if book
            },
            "marks": dict(self.marks),
            "index": dict(self.index),
            "last_trade": dict(self.last_trade),
            "params": [list(p) for p in self.params],
        }

    @classmethod
    def from_dict(cls, config: dict[str, Any], d: dict[str, Any]) -> Ledger:
        led = cls(config)
        led.seq, led.ts = int(d["seq"]), int(d["ts"])
        led.balances = dict(d["balances"])
        led.net_deposits = dict(d["net_deposits"])
        for a, book in d["positions"].items():
            out = led.positions[a] = {}
            for s, (q, e) in book.items():
                p = out[s] = Position()
                p.qty, p.entry_e6 = int(q), int(e)
        led.marks = dict(d["marks"])
        led.index = dict(d["index"])
        led.last_trade = dict(d["last_trade"])
        led.params = [(str(p), str(v)) for p, v in d["params"]]
        return led

    # -- config in force

    def current_config(self) -> Config:
        """The header's config with every ``set`` folded so far applied."""
        cfg = Config.from_dict(self.config)
        for path, new in self.params:
            cfg = apply_set(cfg, path, new)[0]
        return cfg


def fold_ledger(
    path: str | os.PathLike[str], *, at: int | None = None, time: int | None = None
) -> tuple[Ledger, LogReader]:
    """The ledger after the whole log, or after the command holding seq ``at`` (a command is
    atomic, as for ``state --at``), or after every event with ``ts <= time``."""
    reader = LogReader(path)
    led = Ledger(reader.header.config)
    apply = led.apply
    for d in reader.records():
        if at is not None and d["type"] == "input" and d["seq"] > at:
            break
        if time is not None and d["ts"] > time:
            break
        apply(d)
    return led, reader


def time_span(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """The ts of the first and of the last record of a log's good prefix (None: no records)."""
    first = last = None
    for d in LogReader(path).records():
        if first is None:
            first = d["ts"]
        last = d["ts"]
    return None if first is None or last is None else (first, last)


class _Account:
    """One folded account as the state view reads it (``clearing.view.AccountState``)."""

    __slots__ = ("balance", "id", "net_deposits", "positions")

    def __init__(
        self, account_id: str, balance: int, net_deposits: int, positions: dict[str, Position]
    ) -> None:
        self.id = account_id
        self.balance = balance
        self.net_deposits = net_deposits
        self.positions = positions


class _Instrument:
    """One instrument's spec and folded prices (``clearing.view.InstrumentState``)."""

    __slots__ = ("grid", "index", "last_trade", "mark", "spec")

    def __init__(self, spec: InstrumentSpec, led: Ledger) -> None:
        sym = spec.symbol
        self.spec = spec
        self.grid = Grid(spec.tick_size, spec.lot_size)
        self.mark = led.marks.get(sym)
        self.index = led.index.get(sym)
        self.last_trade = led.last_trade.get(sym)

    def price(self) -> int | None:
        """What positions are valued at: the mark, else the last trade (as the engine)."""
        return self.mark if self.mark is not None else self.last_trade


class LedgerState:
    """A folded :class:`Ledger` as a ``clearing.view.StateSource``.

    Risk figures use the config in force (header plus ``set``s) and ``clearing.margin``,
    positions valued at the mark (else the last trade), as the engine's ``watch`` does.
    """

    def __init__(self, led: Ledger) -> None:
        self._led = led
        cfg = led.current_config()
        self.seq = led.seq
        self.ts = led.ts
        self.scale = int(10**cfg.collateral_decimals)
        self._at_equal = cfg.waterfall.liquidate_at_equal  # E <= MM liquidates (Binance)
        self._instruments = {s.symbol: _Instrument(s, led) for s in cfg.instruments}
        self._accounts = {
            aid: _Account(aid, bal, led.net_deposits.get(aid, 0), led.positions.get(aid, {}))
            for aid, bal in led.balances.items()
        }

    def accounts(self) -> Iterable[AccountState]:
        return self._accounts.values()

    def account(self, account_id: str, /) -> AccountState | None:
        return self._accounts.get(account_id)

    def instruments(self) -> Mapping[str, InstrumentState]:
        return self._instruments

    def _base(self, acct: AccountState, skip: str) -> tuple[int, int, int]:
        """Cash plus the value, MM and IM of every position but ``skip``'s."""
        e, mm, im = acct.balance, 0, 0
        for sym, pos in acct.positions.items():
            inst = self._instruments[sym]
            m = inst.price()
            if sym == skip or m is None:
                continue
            spec = inst.spec
            e += value(spec, pos.qty, m)
            n = notional(spec, pos.qty, m)
            mm += maintenance(spec, n)
            im += initial(spec, n)
        return e, mm, im

    def risk(self, acct: AccountState, /) -> tuple[int, int, int]:
        return self._base(acct, "")

    def liquidation_price(self, acct: AccountState, symbol: str, /) -> int | None:
        pos = acct.positions.get(symbol)
        if pos is None:
            return None
        base_e, base_mm, _ = self._base(acct, symbol)
        inst = self._instruments[symbol]
        return liquidation_price(inst.spec, pos.qty, base_e, base_mm, inst.price(), self._at_equal)


def state_view(led: Ledger) -> dict[str, Any]:
    """The ``clearsim state --json`` shape (DESIGN §10) of a folded ledger: the one state
    view, ``clearing.view.state_of``, over :class:`LedgerState`."""
    return state_of(LedgerState(led))
