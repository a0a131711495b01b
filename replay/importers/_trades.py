"""Historical trades -> ``index_price`` (the trade price) and/or ``#market`` IOC orders.

An order is the trade's aggressor: its side, the trade quantity, the trade price as the
limit, ``tif: ioc``, and an id ``t<n>`` from the import's one counter (unique across the
inputs, the same on every run). With a grid the limit rounds toward the level it traded
against (a buy up, a sell down) and the quantity down to the lot; a trade under one lot is
dropped (counted). A trade without an aggressor side (tardis ``unknown``) gives no order.

:func:`csv_trades` is the hot loop for the CSV dumps (tardis ``trades``, binance
``aggTrades`` / ``trades``): split on commas, checked by ``str`` methods, formatted by
f-strings; a row the fast checks refuse is parsed again carefully (blanks, quotes, other
timestamp units) and either kept or reported with its column.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

import attrs

from clearsim.replay.importers._common import (
    BadRow,
    Batch,
    Source,
    epoch_to_us,
    index_line,
    int_ts,
    order_line,
    positive_str,
    sym_json,
)
from clearsim.replay.importers._options import Options

__all__ = ["TradeColumns", "TradeSink", "csv_trades"]

Chunks = Iterator[tuple[int, list[str], bool]]


@attrs.frozen
class TradeColumns:
    """Where a CSV dump keeps a trade's fields (column indexes) and how it spells sides."""

    names: tuple[str, ...]  # every column's name, for messages
    ts: int
    price: int
    qty: int
    side: int
    symbol: int | None  # None: one symbol per file
    #: source text -> aggressor side; None: the trade has no aggressor side
    sides: dict[str, str | None]


class TradeSink:
    """Turns one trade into its commands under the options (the per-trade slow path, and
    the whole path for JSON sources)."""

    def __init__(self, src: Source, opts: Options) -> None:
        self.src = src
        self.opts = opts
        self.no_side = 0
        self.dropped = 0

    def emit(
        self,
        ts: int,
        symbol: str,
        side: str | None,
        price: str,
        qty: str,
        out_ts: list[int],
        out: list[str],
    ) -> None:
        opts = self.opts
        symj = sym_json(opts.out_symbol(symbol))
        if opts.orders:
            self.order(ts, symbol, symj, side, price, qty, out_ts, out)
        if opts.prices:
            out.append(index_line(ts, symj, price))
            out_ts.append(ts)

    def order(
        self,
        ts: int,
        symbol: str,
        symj: str,
        side: str | None,
        price: str,
        qty: str,
        out_ts: list[int],
        out: list[str],
    ) -> None:
        if side is None:
            self.no_side += 1
            return
        grid = self.opts.grid(self.opts.out_symbol(symbol))
        if grid is not None:
            price, moved = grid.price_text(price, side == "buy")
            q, qmoved = grid.qty_text(qty)
            if moved or qmoved:
                self.src.rounded += 1
            if q is None:
                self.dropped += 1
                return
            qty = q
        out.append(order_line(ts, f"t{self.opts.ids.take()}", symj, side, qty, price))
        out_ts.append(ts)

    def notes(self) -> None:
        if self.no_side:
            self.src.note(f"{self.no_side:,} trades without an aggressor side: no order")
        if self.dropped:
            self.src.note(f"{self.dropped:,} trades under one lot: no order")


def csv_trades(
    src: Source, opts: Options, chunks: Chunks, cols: TradeColumns, file_symbol: str
) -> Iterator[Batch]:
    """The trades of a CSV dump, one batch per block of lines."""
    sink = TradeSink(src, opts)
    n = len(cols.names)
    its, ip, iq, iside, isym = cols.ts, cols.price, cols.qty, cols.side, cols.symbol
    sides = cols.sides
    prices, orders = opts.prices, opts.orders
    ids = opts.ids
    fixed = opts.symbol
    symj = sym_json(fixed or file_symbol)
    sym_seen = fixed or file_symbol
    grid = opts.grid(sym_seen) if orders and sym_seen else None
    # the fast path's timestamp unit, fixed by the first row (digits -> multiply, divide)
    unit: tuple[int, int, int] | None = None
    last = src.last_ts if src.last_ts is not None else -1

    def careful(line_no: int, line: str) -> tuple[int, str, str | None, str, str] | None:
        """(ts, symbol, side, price, qty) of a row the fast checks refused, or None."""
        nonlocal unit
        if not line.strip():
            src.rows -= 1
            return None
        try:
            row = [c.strip() for c in next(csv.reader([line]))]
        except csv.Error as e:
            src.bad(line_no, str(e))
            return None
        if len(row) != n:
            src.bad(line_no, f"expected {n} columns, got {len(row)}")
            return None
        try:
            raw_ts = int_ts(row[its], cols.names[its])
            ts = epoch_to_us(raw_ts, src)
            price = positive_str(row[ip], cols.names[ip])
            qty = positive_str(row[iq], cols.names[iq])
            text = row[iside].lower()
            if text not in sides:
                raise BadRow(cols.names[iside], f"{row[iside]!r} is not a side")
            side = sides[text]
            sym = fixed or (row[isym] if isym is not None else file_symbol)
            if not sym:
                raise BadRow(cols.names[isym or 0], "empty symbol")
        except BadRow as e:
            src.bad(line_no, e)
            return None
        if unit is None:
            digits = len(row[its])
            if ts == raw_ts:
                unit = (digits, 1, 1)
            elif ts > raw_ts:
                unit = (digits, ts // raw_ts, 1)
            else:
                unit = (digits, 1, 1000)
        return ts, sym, side, price, qty

    for ln, lines, ascii_ in chunks:
        out_ts: list[int] = []
        out: list[str] = []
        put, put_ts = out.append, out_ts.append
        src.rows += len(lines)
        tlen, mul, div = unit if unit is not None else (0, 1, 1)
        scaled = mul != 1 or div != 1
        # the id counter, local for the block (the readers interleave only at yields)
        nid = ids.next_id
        for i, line in enumerate(lines, ln):
            r = line.split(",")
            if ascii_ and len(r) == n:
                t, p, q = r[its], r[ip], r[iq]
                side = sides.get(r[iside], "")
                # plain_ok and "not zero" of price and qty, inlined (the hot loop)
                ok = (
                    side != ""
                    and len(t) == tlen
                    and t.isdigit()
                    and p.replace(".", "", 1).isdigit()
                    and p[0] != "." != p[-1]
                    and q.replace(".", "", 1).isdigit()
                    and q[0] != "." != q[-1]
                    and (p[0] != "0" or p.strip("0.") != "")
                    and (q[0] != "0" or q.strip("0.") != "")
                )
            else:
                ok = False
            if ok:
                ts = int(t) * mul // div if scaled else int(t)
                if isym is not None and not fixed:
                    sym = r[isym]
                    if sym != sym_seen:
                        if not sym:
                            src.bad(i, BadRow(cols.names[isym], "empty symbol"))
                            continue
                        sym_seen, symj = sym, sym_json(sym)
                        grid = opts.grid(sym) if orders else None
            else:
                got = careful(i, line)
                if got is None:
                    continue
                ts, sym, side, p, q = got
                tlen, mul, div = unit if unit is not None else (0, 1, 1)
                scaled = mul != 1 or div != 1
                if sym != sym_seen:
                    sym_seen, symj = sym, sym_json(sym)
                    grid = opts.grid(sym) if orders else None
            if ts < last:
                src.last_ts = last
                src.back_in_time(i, ts)
            last = ts
            if orders:
                if side is not None and grid is None:
                    # order_line, inlined
                    put(
                        f'{{"type":"order","ts":{ts},"account":"#market","id":"t{nid}",'
                        f'"symbol":{symj},"side":"{side}","qty":"{q}","price":"{p}",'
                        '"tif":"ioc"}\n'
                    )
                    put_ts(ts)
                    nid += 1
                else:
                    ids.next_id = nid
                    sink.order(ts, sym_seen, symj, side, p, q, out_ts, out)
                    nid = ids.next_id
            if prices:
                put(f'{{"type":"index_price","ts":{ts},"symbol":{symj},"price":"{p}"}}\n')
                put_ts(ts)
        ids.next_id = nid
        if out:
            yield out_ts, out
    src.last_ts = last if last >= 0 else src.last_ts
    sink.notes()
