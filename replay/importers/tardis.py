"""Tardis.dev CSV -> commands. The data type is read from the header (and the file name).

Timestamps are the exchange's ``timestamp`` in µs; 19-digit (ns) values, as in some
exports, are divided by 1000 and noted in the summary.

- ``trades``: an ``index_price`` per trade at the trade price, and/or a ``#market`` IOC
  order per trade (``--trades``; :mod:`._trades`).
- ``liquidations`` (the trades header; told apart by ``liquidations`` in the file name):
  reference records, written to the sidecar file, never commands.
- ``incremental_book_L2`` (``--book``): ``amount`` is a level's new size, 0 removes it.
  Rows of one timestamp are one update; a run of ``is_snapshot=true`` rows (begun when the
  flag turns true, or at a new timestamp) is a snapshot: the book becomes exactly its
  levels, and the levels that vanished are removed (``qty "0"``).
- ``book_snapshot_N`` (``asks[0].price,...``) and ``quotes`` (the best bid and ask): each
  row is the book's top; successive rows are diffed into level changes.
- ``derivative_ticker``: an ``index_price`` per row from ``index_price`` (``mark_price``
  with ``--price mark``), and one ``funding`` per distinct ``funding_timestamp``
  (:mod:`._funding`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from clearsim.replay.importers._book import Book
from clearsim.replay.importers._common import (
    BadRow,
    Batch,
    Chunks,
    ImportFailed,
    Source,
    careful_rows,
    csv_fields,
    decimal_str,
    epoch_to_us,
    first_line,
    index_line,
    int_ts,
    liquidation_line,
    positive_str,
    size_str,
    sym_json,
)
from clearsim.replay.importers._funding import FundingClock
from clearsim.replay.importers._options import Options
from clearsim.replay.importers._snapshots import crossed_note, replace_rows
from clearsim.replay.importers._trades import TradeColumns, csv_trades

TICKER = ("timestamp", "symbol", "funding_timestamp", "funding_rate", "index_price", "mark_price")
TRADES = ("timestamp", "symbol", "id", "side", "price", "amount")
L2 = ("timestamp", "symbol", "is_snapshot", "side", "price", "amount")
QUOTES = ("timestamp", "symbol", "ask_amount", "ask_price", "bid_price", "bid_amount")
_SNAP_COL = re.compile(r"(asks|bids)\[(\d+)\]\.(price|amount)")
_SIDES: dict[str, str | None] = {"buy": "buy", "sell": "sell", "unknown": None}


def read(src: Source, opts: Options) -> Iterator[Batch]:
    head = first_line(src)
    if head is None:
        return
    header, _, _, chunks = head
    col = {name: i for i, name in enumerate(header)}

    def has(names: tuple[str, ...]) -> bool:
        return all(c in col for c in names)

    if has(TICKER):
        yield from _ticker(src, opts, header, col, chunks)
    elif has(L2):
        yield from _book_l2(src, opts, header, col, chunks)
    elif any(_SNAP_COL.fullmatch(c) for c in header) and has(("timestamp", "symbol")):
        yield from _snapshots(src, opts, header, col, chunks)
    elif has(QUOTES):
        yield from _quotes(src, opts, header, col, chunks)
    elif has(TRADES) and "liquidation" in Path(src.path).name.lower():
        yield from _liquidations(src, opts, header, col, chunks)
    elif has(TRADES):
        cols = TradeColumns(
            tuple(header), col["timestamp"], col["price"], col["amount"], col["side"],
            col["symbol"], _SIDES,
        )  # fmt: skip
        yield from csv_trades(src, opts, chunks, cols, "")
    else:
        raise ImportFailed(
            f"{src.path}:1: not a Tardis trades, liquidations, incremental_book_L2, "
            f"book_snapshot, quotes or derivative_ticker CSV (header {header[:6]})"
        )


def _need_book(src: Source, opts: Options, what: str) -> None:
    if opts.depth == 0:
        raise ImportFailed(
            f"{src.path}: a {what} file is order-book data: give --book top or --book L "
            "(the L best levels per side) to import it as #market liquidity"
        )


# --------------------------------------------------------------------------- ticker


def _ticker(
    src: Source, opts: Options, header: list[str], col: dict[str, int], chunks: Chunks
) -> Iterator[Batch]:
    price_col = "mark_price" if opts.price == "mark" else "index_price"
    clock = FundingClock()
    out_ts: list[int] = []
    out: list[str] = []
    for line, row in careful_rows(src, len(header), chunks):
        try:
            ts = epoch_to_us(int_ts(row[col["timestamp"]], "timestamp"), src)
            symj = sym_json(opts.out_symbol(row[col["symbol"]]))
            p = row[col[price_col]]
            px = positive_str(p, price_col) if p else None  # an empty price: no index_price
            fund: tuple[int, str] | None = None
            if row[col["funding_timestamp"]]:
                fts = epoch_to_us(int_ts(row[col["funding_timestamp"]], "funding_timestamp"))
                fund = (fts, decimal_str(row[col["funding_rate"]], "funding_rate"))
        except BadRow as e:
            src.bad(line, e)
            continue
        mark = len(out)
        clock.row(ts, symj, fund, out_ts, out)
        if px is not None:
            out.append(index_line(ts, symj, px))
            out_ts.append(ts)
        for t in out_ts[mark:]:
            src.in_order(line, t)
        if len(out) >= 4096:
            yield out_ts, out
            out_ts, out = [], []
    if out:
        yield out_ts, out


# --------------------------------------------------------------------------- liquidations


def _liquidations(
    src: Source, opts: Options, header: list[str], col: dict[str, int], chunks: Chunks
) -> Iterator[Batch]:
    for line, row in careful_rows(src, len(header), chunks):
        try:
            ts = epoch_to_us(int_ts(row[col["timestamp"]], "timestamp"), src)
            side = row[col["side"]].lower()
            if side not in ("buy", "sell"):
                raise BadRow("side", f"{row[col['side']]!r} is not buy or sell")
            price = positive_str(row[col["price"]], "price")
            qty = positive_str(row[col["amount"]], "amount")
        except BadRow as e:
            src.bad(line, e)
            continue
        src.in_order(line, ts)
        symj = sym_json(opts.out_symbol(row[col["symbol"]]))
        src.liquidation(ts, liquidation_line(ts, symj, side, price, qty, row[col["id"]]))
    yield from ()  # a generator with no commands


# --------------------------------------------------------------------------- L2


class _L2:
    """One symbol's book and the snapshot being collected."""

    __slots__ = ("asks", "bids", "book", "snapping")

    def __init__(self, book: Book) -> None:
        self.book = book
        self.snapping = False
        self.bids: list[tuple[str, str]] = []
        self.asks: list[tuple[str, str]] = []

    def begin(self) -> None:
        self.snapping = True
        self.bids, self.asks = [], []

    def end(self) -> None:
        self.snapping = False
        self.book.replace(self.bids, self.asks)
        self.bids, self.asks = [], []


def _book_l2(
    src: Source, opts: Options, header: list[str], col: dict[str, int], chunks: Chunks
) -> Iterator[Batch]:
    _need_book(src, opts, "incremental_book_L2")
    n = len(header)
    its, isnap, iside = col["timestamp"], col["is_snapshot"], col["side"]
    ip, iq, isym = col["price"], col["amount"], col["symbol"]
    books: dict[str, _L2] = {}
    dirty: dict[str, _L2] = {}
    cur = src.last_ts if src.last_ts is not None else -1
    tlen, mul, div = 16, 1, 1  # µs; other units take the careful path

    def state(sym: str) -> _L2:
        st = books.get(sym)
        if st is None:
            out_sym = opts.out_symbol(sym)
            st = books[sym] = _L2(Book(sym_json(out_sym), opts.depth, opts.grid(out_sym), src))
        return st

    def close(ts: int, out_ts: list[int], out: list[str]) -> None:
        for st in dirty.values():
            if st.snapping:
                st.end()
            st.book.flush(ts, out_ts, out)
        dirty.clear()

    def careful(i: int, line: str) -> tuple[int, str, bool, bool, str, str] | None:
        try:
            row = csv_fields(line)
            if row is None:
                src.rows -= 1
                return None
            if len(row) != n:
                raise BadRow(None, f"expected {n} columns, got {len(row)}")
            ts = epoch_to_us(int_ts(row[its], "timestamp"), src)
            snap = row[isnap].lower()
            if snap not in ("true", "false"):
                raise BadRow("is_snapshot", f"{row[isnap]!r} is not true or false")
            side = row[iside].lower()
            if side not in ("bid", "ask"):
                raise BadRow("side", f"{row[iside]!r} is not bid or ask")
            p = positive_str(row[ip], "price")
            q = size_str(row[iq], "amount")
            if not row[isym]:
                raise BadRow("symbol", "empty symbol")
        except BadRow as e:
            src.bad(i, e)
            return None
        return ts, row[isym], snap == "true", side == "bid", p, q

    for ln, lines, ascii_ in chunks:
        out_ts: list[int] = []
        out: list[str] = []
        src.rows += len(lines)
        for i, line in enumerate(lines, ln):
            r = line.split(",")
            if ascii_ and len(r) == n:
                t, p, q, s, snap = r[its], r[ip], r[iq], r[iside], r[isnap]
                # plain_ok of price and qty, a price above zero: inlined (the hot loop)
                ok = (
                    len(t) == tlen
                    and t.isdigit()
                    and p.replace(".", "", 1).isdigit()
                    and p[0] != "." != p[-1]
                    and q.replace(".", "", 1).isdigit()
                    and q[0] != "." != q[-1]
                    and (s == "bid" or s == "ask")
                    and (snap == "false" or snap == "true")
                    and (p[0] != "0" or p.strip("0.") != "")
                    and r[isym] != ""
                )
            else:
                ok = False
            if ok:
                ts = int(t) * mul // div
                sym, is_snap, buy = r[isym], snap == "true", s == "bid"
            else:
                got = careful(i, line)
                if got is None:
                    continue
                ts, sym, is_snap, buy, p, q = got
            if ts != cur:
                if ts < cur:
                    src.last_ts = cur
                    src.back_in_time(i, ts)
                if dirty:
                    close(cur, out_ts, out)
                cur = ts
            st = dirty.get(sym) or state(sym)
            if is_snap:
                if not st.snapping:
                    st.begin()
                (st.bids if buy else st.asks).append((p, q))
            else:
                if st.snapping:
                    st.end()
                st.book.update(buy, p, q)
            dirty[sym] = st
        if out:
            yield out_ts, out
    out_ts, out = [], []
    if dirty:
        close(cur, out_ts, out)
    if cur >= 0:
        src.last_ts = cur
    crossed_note(src, [st.book for st in books.values()])
    if out:
        yield out_ts, out


def _snapshots(
    src: Source, opts: Options, header: list[str], col: dict[str, int], chunks: Chunks
) -> Iterator[Batch]:
    _need_book(src, opts, "book_snapshot")
    levels: dict[tuple[str, int], dict[str, int]] = {}
    for i, name in enumerate(header):
        m = _SNAP_COL.fullmatch(name)
        if m:
            levels.setdefault((m.group(1), int(m.group(2))), {})[m.group(3)] = i

    def side(which: str) -> list[tuple[int, int, str]]:
        got = sorted((k[1], v) for k, v in levels.items() if k[0] == which)
        if any(set(v) != {"price", "amount"} for _, v in got):
            raise ImportFailed(f"{src.path}:1: {which}[i] needs both .price and .amount")
        return [(v["price"], v["amount"], f"{which}[{j}]") for j, v in got]

    rows = careful_rows(src, len(header), chunks)
    yield from replace_rows(src, opts, rows, *_ts_sym(src, col), side("bids"), side("asks"))


def _quotes(
    src: Source, opts: Options, header: list[str], col: dict[str, int], chunks: Chunks
) -> Iterator[Batch]:
    _need_book(src, opts, "quotes")
    bids = [(col["bid_price"], col["bid_amount"], "bid")]
    asks = [(col["ask_price"], col["ask_amount"], "ask")]
    rows = careful_rows(src, len(header), chunks)
    yield from replace_rows(src, opts, rows, *_ts_sym(src, col), bids, asks)


def _ts_sym(
    src: Source, col: dict[str, int]
) -> tuple[Callable[[list[str]], int], Callable[[list[str]], str]]:
    its, isym = col["timestamp"], col["symbol"]

    def ts_of(row: list[str]) -> int:
        return epoch_to_us(int_ts(row[its], "timestamp"), src)

    def sym_of(row: list[str]) -> str:
        if not row[isym]:
            raise BadRow("symbol", "empty symbol")
        return row[isym]

    return ts_of, sym_of
