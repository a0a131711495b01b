"""The projections as tables: the fund timeline, clawbacks, ADL, accounts, cascades.

Each function folds a log with its projection (:mod:`replay.projections`), which works in
the log's integers, and hands the rows to Arrow in the units asked for
(:class:`.units.Units`). Positions are one column per instrument of the header
(``<symbol>.qty`` and its price columns), so every table is flat, one row per thing:

- ``fund``: one row per change of the insurance fund (``fold_fund``'s timeline): its equity
  and cash after, the cash amount, reason, cause, the other account, and the position it
  holds after (``<symbol>.qty``, ``<symbol>.price`` it is valued at);
- ``clawback``: one row per clawback period: socialized losses, loss, profit base, rate,
  collected, and the charges (a list of ``{account, amount}``);
- ``adl``: one row per deleveraging;
- ``accounts``: one row per account at the end (or ``at``/``time``), as ``clearsim state``
  shows it: wallet balance, quote balance, equity, net deposits, margins, liquidatable,
  and per instrument the position, its entry price and liquidation price (raw units: the
  entry price in millionths of a tick, ``<symbol>.entry_e6``);
- ``cascades``: one row per cascade (:mod:`replay.projections.cascade`), largest first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Final

import pyarrow as pa

from clearsim.clearing.accounts import SYSTEM
from clearsim.clearing.view import wallet_balance
from clearsim.events.log import LogReader, TornTail
from clearsim.replay.projections.cascade import Cascade, Index, cascades
from clearsim.replay.projections.fund import FundReport, fold_fund
from clearsim.replay.projections.ledger import LedgerState, fold_ledger
from clearsim.replay.tables import TableError
from clearsim.replay.tables.units import Kind, Units, UnitsName

__all__ = [
    "TABLES",
    "accounts_table",
    "adl_table",
    "cascades_table",
    "clawback_table",
    "fund_table",
]


def _col(units: Units, kind: Kind, values: Sequence[int | None], sym: str = "") -> pa.Array:
    arr = pa.array(values, pa.int64())
    symbols = pa.array([sym] * len(values), pa.string()) if sym else None
    return units.column(kind, arr, symbols)


def _table(columns: dict[str, pa.Array]) -> pa.Table:
    return pa.Table.from_pydict(columns)


# --------------------------------------------------------------------------- fund


def fund_table(report: FundReport, units: Units) -> pa.Table:
    rows = report.timeline
    cols: dict[str, pa.Array] = {
        "seq": pa.array([r.seq for r in rows], pa.int64()),
        "ts": _col(units, "time", [r.ts for r in rows]),
        "equity": _col(units, "money", [r.equity for r in rows]),
        "cash": _col(units, "money", [r.cash for r in rows]),
        "amount": _col(units, "money", [r.amount for r in rows]),
        "reason": pa.array([r.reason for r in rows], pa.string()),
        "cause": pa.array([r.cause for r in rows], pa.int64()),
        "account": pa.array([r.account for r in rows], pa.string()),
    }
    for sym in units.symbols:
        held = [{s: (q, p) for s, q, p in r.positions}.get(sym) for r in rows]
        cols[f"{sym}.qty"] = _col(units, "qty", [0 if h is None else h[0] for h in held], sym)
        cols[f"{sym}.price"] = _col(
            units, "price", [None if h is None else h[1] for h in held], sym
        )
    return _table(cols)


def clawback_table(report: FundReport, units: Units) -> pa.Table:
    periods = report.clawbacks
    money = units.type_of("money")
    charge = pa.struct([("account", pa.string()), ("amount", money)])

    def charges(items: list[tuple[str, int]]) -> list[dict[str, Any]]:
        return [{"account": a, "amount": _py_money(units, c)} for a, c in items]

    return _table(
        {
            "period": pa.array([p.period for p in periods], pa.int64()),
            "seq": pa.array([p.seq or None for p in periods], pa.int64()),
            "ts": _col(units, "time", [p.ts if p.seq else None for p in periods]),
            "socialized": _col(units, "money", [p.socialized for p in periods]),
            "loss": _col(units, "money", [p.loss for p in periods]),
            "profit_base": _col(units, "money", [p.profit_base for p in periods]),
            "rate_ppm": pa.array([p.rate_ppm for p in periods], pa.int64()),
            "collected": _col(units, "money", [p.collected for p in periods]),
            "accounts_charged": pa.array([len(p.charges) for p in periods], pa.int64()),
            "charges": pa.array([charges(p.charges) for p in periods], pa.list_(charge)),
        }
    )


def _py_money(units: Units, atoms: int) -> int | Decimal:
    """One amount as a Python value for ``pa.array`` of the money type."""
    return atoms if units.raw else Decimal(atoms).scaleb(-units.money_scale)


def adl_table(report: FundReport, units: Units) -> pa.Table:
    rows = report.adl
    symbols = pa.array([r.symbol for r in rows], pa.string())
    return _table(
        {
            "seq": pa.array([r.seq for r in rows], pa.int64()),
            "ts": _col(units, "time", [r.ts for r in rows]),
            "cause": pa.array([r.cause for r in rows], pa.int64()),
            "account": pa.array([r.account for r in rows], pa.string()),
            "counterparty": pa.array([r.counterparty for r in rows], pa.string()),
            "symbol": symbols,
            "qty": units.column("qty", pa.array([r.qty for r in rows], pa.int64()), symbols),
            "price": units.column("price", pa.array([r.price for r in rows], pa.int64()), symbols),
            "value": _col(units, "money", [r.value for r in rows]),
            "rank": pa.array([r.rank for r in rows], pa.int64()),
            "score": pa.array([r.score for r in rows], pa.string()),
        }
    )


# --------------------------------------------------------------------------- accounts


def accounts_table(state: LedgerState, units: Units) -> pa.Table:
    """Every account of a folded ledger (system accounts left out, as in ``state``)."""
    instruments = state.instruments()
    accts = sorted((a for a in state.accounts() if a.id not in SYSTEM), key=lambda a: a.id)
    risk = [state.risk(a) for a in accts]
    cols: dict[str, pa.Array] = {
        "account": pa.array([a.id for a in accts], pa.string()),
        "balance": _col(units, "money", [wallet_balance(a, instruments) for a in accts]),
        "quote_balance": _col(units, "money", [a.balance for a in accts]),
        "equity": _col(units, "money", [r[0] for r in risk]),
        "net_deposits": _col(units, "money", [a.net_deposits for a in accts]),
        "maintenance_margin": _col(units, "money", [r[1] for r in risk]),
        "initial_margin": _col(units, "money", [r[2] for r in risk]),
        "liquidatable": pa.array([e < mm for e, mm, _ in risk], pa.bool_()),
    }
    for sym in units.symbols:
        pos = [a.positions.get(sym) for a in accts]
        cols[f"{sym}.qty"] = _col(units, "qty", [0 if p is None else p.qty for p in pos], sym)
        entry = [None if p is None else p.entry_e6 for p in pos]
        if units.raw:
            cols[f"{sym}.entry_e6"] = pa.array(entry, pa.int64())
        else:
            cols[f"{sym}.entry_price"] = _entry_prices(units, sym, entry)
        liq = [
            None if p is None else state.liquidation_price(a, sym)
            for a, p in zip(accts, pos, strict=True)
        ]
        cols[f"{sym}.liquidation_price"] = _col(units, "price", liq, sym)
    return _table(cols)


#: An entry price is kept in millionths of a tick (``clearing.accounts.ENTRY_SCALE``).
_ENTRY_DECIMALS: Final = 6


def _entry_prices(units: Units, sym: str, entry_e6: list[int | None]) -> pa.Array:
    """Entry prices (millionths of a tick) as exact decimals: six more decimals than the
    symbol's prices, ``entry_e6 x tick step`` unscaled."""
    grid = units.grids[sym]
    scale = grid.price_decimals + _ENTRY_DECIMALS
    tick = Decimal(grid.tick_size)
    return pa.array(
        [None if e is None else (tick * e).scaleb(-_ENTRY_DECIMALS) for e in entry_e6],
        pa.decimal128(38, scale),
    )


# --------------------------------------------------------------------------- cascades


def cascades_table(found: list[Cascade], idx: Index, units: Units) -> pa.Table:
    """One row per cascade: where it starts, its size by generation, what the fund paid,
    the price move and the liquidation orders' price impact (see ``cascade.Cascade``)."""
    rows = [c.figures for c in found]

    def ints(name: str) -> pa.Array:
        return pa.array([getattr(t, name) for t in rows], pa.int64())

    def money(name: str) -> pa.Array:
        return _col(units, "money", [getattr(t, name) for t in rows])

    cols: dict[str, pa.Array] = {
        "from": pa.array([c.top for c in found], pa.int64()),
        "root": pa.array([idx.root[c.top] for c in found], pa.int64()),
        "ts": _col(units, "time", [t.first_ts for t in rows]),
        "end_ts": _col(units, "time", [t.last_ts for t in rows]),
        "events": ints("events"),
        "liquidations": ints("liquidations"),
        "accounts_liquidated": ints("accounts_liquidated"),
        "by_price": ints("by_price"),
        "by_liquidation": ints("by_liquidation"),
        "generations": ints("generations"),
        "fund_paid": money("fund_paid"),
        "fund_took_in": money("fund_took_in"),
        "fund_equity_before": money("fund_equity_before"),
        "fund_equity_after": money("fund_equity_after"),
        "clawed_back": money("clawed_back"),
        "system_debt": money("system_debt"),
    }
    for sym in units.symbols:
        moves = [t.prices.get(sym) for t in rows]
        for what in ("index", "mark"):
            for when in ("before", "after"):
                vals = [None if m is None else getattr(m, f"{what}_{when}") for m in moves]
                cols[f"{sym}.{what}_{when}"] = _col(units, "price", vals, sym)
        impact = [t.liquidation_fills.get(sym) for t in rows]
        cols[f"{sym}.liquidation_first_price"] = _col(
            units, "price", [None if i is None else i.first for i in impact], sym
        )
        cols[f"{sym}.liquidation_last_price"] = _col(
            units, "price", [None if i is None else i.last for i in impact], sym
        )
        for step in ("book", "backstop", "takeover", "adl"):
            q = [t.closed[step].get(sym, 0) for t in rows]
            cols[f"{sym}.closed_{step}"] = _col(units, "qty", q, sym)
    return _table(cols)


# --------------------------------------------------------------------------- the table


def build_table(
    name: str,
    path: str | os.PathLike[str],
    units: UnitsName = "human",
    *,
    verify: bool = True,
    at: int | None = None,
    time: int | None = None,
    top: int = 10,
) -> tuple[pa.Table, TornTail | None]:
    """The projection table ``name`` (one of :data:`TABLES`) of the log at ``path``, and
    the torn tail its fold found (None: the log ended cleanly)."""
    header = LogReader(path).header
    u = Units(header.config, units)
    if name in _FUND_TABLES:
        report = fold_fund(path, verify=verify)
        return _FUND_TABLES[name](report, u), report.torn
    if name == "accounts":
        led, reader = fold_ledger(path, at=at, time=time)
        return accounts_table(LedgerState(led), u), reader.torn
    if name == "cascades":
        found, idx, _ = cascades(path, None, top)
        return cascades_table(found, idx, u), idx.torn
    raise TableError(f"unknown table {name!r} (one of: events, {', '.join(TABLES)})")


_FUND_TABLES: Final[dict[str, Callable[[FundReport, Units], pa.Table]]] = {
    "fund": fund_table,
    "clawback": clawback_table,
    "adl": adl_table,
}

#: The projection tables (``events`` is :mod:`.events`).
TABLES: Final = ("fund", "clawback", "adl", "accounts", "cascades")
