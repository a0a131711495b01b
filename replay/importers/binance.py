"""Binance USDⓈ-M -> commands. The kind is read from the header row (public-data files
come with or without one; a headerless file is told apart by its width).

- The site's funding-history export (``"Time","Contracts","Funding Interval","Funding
  Rate"``; ``"2020-03-13 08:00:00","BTCUSDT Perpetual","8h","-0.300000%"``): times in London
  local time (UTC in winter, UTC+1 in summer), rates in percent (``-0.300000%`` -> rate
  ``-0.003``, exactly). The export is newest first and small (thousands of rows): it is read
  whole and put in time order.
- Public data ``fundingRate`` CSV (``calc_time,funding_interval_hours,last_funding_rate``,
  ms): a ``funding`` at each ``calc_time``. Streamed.
- ``klines`` / ``markPriceKlines`` / ``indexPriceKlines`` CSV (``open_time,open,high,low,
  close,volume,close_time,...`` in ms, with or without a header row): an ``index_price`` at
  the close, at ``close_time`` (``open_time + interval - 1 ms`` in Binance's files); when
  the row has no ``close_time``, at ``open_time``. Streamed.
- ``aggTrades`` (``agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,
  is_buyer_maker``) and ``trades`` (``id,price,qty,quote_qty,time,is_buyer_maker``): trades
  as prices and/or ``#market`` IOC orders (:mod:`._trades`); the aggressor is the seller
  when the buyer was the maker. Streamed.
- ``bookTicker`` (``update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,
  transaction_time,event_time``): the best bid and ask, at ``transaction_time``
  (``--book``).
- ``bookDepth`` (``timestamp,percentage,depth,notional``: for each band of ±1..5 % around
  the price, the cumulative quantity and notional; not a list of levels): each band becomes
  one level at the band's average price (its notional over its quantity, rounded outward
  onto the tick: ``--tick-size`` or ``--config`` is required) holding the band's quantity.
  An approximation of the book's shape, refreshed at each timestamp (``--book``).
"""

from __future__ import annotations

import datetime as _dt
import itertools
from collections.abc import Iterator
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

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
    funding_line,
    index_line,
    int_ts,
    iso_to_us,
    percent_to_rate,
    plain,
    positive_str,
    size_str,
    sym_json,
    symbol_from_name,
)
from clearsim.replay.importers._options import Options
from clearsim.replay.importers._snapshots import crossed_note, replace_one, replace_rows
from clearsim.replay.importers._trades import TradeColumns, csv_trades

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        _LONDON: _dt.tzinfo | None = ZoneInfo("Europe/London")
    except ZoneInfoNotFoundError:
        _LONDON = None
except ImportError:  # pragma: no cover
    _LONDON = None

_H = 3_600_000_000


def _last_sunday(year: int, month: int) -> _dt.date:
    d = _dt.date(year, month, 31)
    return d - _dt.timedelta(days=(d.weekday() + 1) % 7)


def london_rule_to_us(local: _dt.datetime) -> int:
    """London local time -> µs UTC by the rule (BST, UTC+1, from the last Sunday of March
    01:00 UTC to the last Sunday of October 01:00 UTC); an ambiguous time (the repeated hour
    in October) is taken as its first occurrence (BST), as ``zoneinfo`` does with fold=0."""
    as_utc = iso_to_us(local.isoformat(), "Time")
    y = local.year
    start = iso_to_us(f"{_last_sunday(y, 3).isoformat()}T01:00:00", "Time")
    end = iso_to_us(f"{_last_sunday(y, 10).isoformat()}T01:00:00", "Time")
    bst = as_utc - _H
    return bst if start <= bst < end else as_utc


def london_to_us(text: str, column: str, *, use_zoneinfo: bool = True) -> int:
    try:
        local = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadRow(column, f"{text!r} is not a date and time") from None
    if local.tzinfo is not None:
        return iso_to_us(text, column)
    if use_zoneinfo and _LONDON is not None:
        return iso_to_us(local.replace(tzinfo=_LONDON).isoformat(), column)
    return london_rule_to_us(local)


_MAKER_SIDES: dict[str, str | None] = {
    "true": "sell", "false": "buy", "True": "sell", "False": "buy",
}  # fmt: skip
AGG = ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
       "transact_time", "is_buyer_maker")  # fmt: skip
TRADES = ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker")
TICKER = ("update_id", "best_bid_price", "best_bid_qty", "best_ask_price", "best_ask_qty",
          "transaction_time", "event_time")  # fmt: skip


def read(src: Source, opts: Options) -> Iterator[Batch]:
    got = first_line(src)
    if got is None:
        return
    fields, raw, ln, chunks = got
    head = [c.lower() for c in fields]
    # a headerless file: its first line is a row
    with_first: Chunks = itertools.chain([(ln, [raw], raw.isascii())], chunks)
    if head[:1] == ["time"] and "funding rate" in head:
        yield from _site_export(src, opts, head, chunks)
    elif "calc_time" in head:
        yield from _funding_rate(src, opts, head, chunks)
    elif head[:1] == ["agg_trade_id"]:
        yield from _trades(src, opts, AGG, 5, chunks)
    elif head[:2] == ["id", "price"] and "is_buyer_maker" in head:
        yield from _trades(src, opts, TRADES, 4, chunks)
    elif head[:1] == ["update_id"] and "best_bid_price" in head:
        yield from _book_ticker(src, opts, head, chunks)
    elif head[:2] == ["timestamp", "percentage"]:
        yield from _book_depth(src, opts, head, chunks)
    elif head[0].isdigit() and len(head) == len(AGG) and head[-1] in _MAKER_SIDES:
        yield from _trades(src, opts, AGG, 5, with_first)
    elif head[0].isdigit() and len(head) == len(TRADES) and head[-1] in _MAKER_SIDES:
        yield from _trades(src, opts, TRADES, 4, with_first)
    elif head[0] == "open_time" or head[0].isdigit():
        yield from _klines(src, opts, with_first if head[0].isdigit() else chunks)
    else:
        raise ImportFailed(
            f"{src.path}:{ln}: not a Binance funding, klines, aggTrades, trades, bookTicker "
            f"or bookDepth CSV (header {head})"
        )


def _site_export(src: Source, opts: Options, head: list[str], chunks: Chunks) -> Iterator[Batch]:
    t, c, r = head.index("time"), head.index("contracts"), head.index("funding rate")
    got: list[tuple[int, int, str]] = []
    for line, row in careful_rows(src, len(head), chunks):
        try:
            ts = london_to_us(row[t], "Time")
            rate = percent_to_rate(row[r], "Funding Rate")
            sym = opts.symbol or row[c].split()[0]
        except (BadRow, IndexError) as e:
            src.bad(line, e if isinstance(e, BadRow) else BadRow("Contracts", "empty"))
            continue
        got.append((ts, line, funding_line(ts, sym_json(sym), rate)))
    got.sort(key=lambda x: (x[0], -x[1]))  # newest first in the file: oldest last line first
    if got:
        yield [g[0] for g in got], [g[2] for g in got]


def _funding_rate(src: Source, opts: Options, head: list[str], chunks: Chunks) -> Iterator[Batch]:
    t, r = head.index("calc_time"), head.index("last_funding_rate")
    symj = sym_json(opts.symbol or symbol_from_name(src.path))
    out_ts: list[int] = []
    out: list[str] = []
    for line, row in careful_rows(src, len(head), chunks):
        try:
            ts = epoch_to_us(int_ts(row[t], "calc_time"), src)
            rate = decimal_str(row[r], "last_funding_rate")
        except BadRow as e:
            src.bad(line, e)
            continue
        src.in_order(line, ts)
        out.append(funding_line(ts, symj, rate))
        out_ts.append(ts)
    if out:
        yield out_ts, out


def _klines(src: Source, opts: Options, chunks: Chunks) -> Iterator[Batch]:
    symj = sym_json(opts.symbol or symbol_from_name(src.path))
    out_ts: list[int] = []
    out: list[str] = []
    for ln, lines, _ in chunks:
        for line_no, line in enumerate(lines, ln):
            try:
                row = csv_fields(line)
                if row is None:
                    continue
                src.rows += 1
                if len(row) < 5:
                    raise BadRow("close", f"expected at least 5 columns, got {len(row)}")
                col, raw = ("close_time", row[6]) if len(row) > 6 else ("open_time", row[0])
                ts = epoch_to_us(int_ts(raw, col), src)
                px = positive_str(row[4], "close")
            except BadRow as e:
                src.bad(line_no, e)
                continue
            src.in_order(line_no, ts)
            out.append(index_line(ts, symj, px))
            out_ts.append(ts)
        if out:
            yield out_ts, out
            out_ts, out = [], []


def _trades(
    src: Source, opts: Options, names: tuple[str, ...], its: int, chunks: Chunks
) -> Iterator[Batch]:
    cols = TradeColumns(names, its, 1, 2, len(names) - 1, None, _MAKER_SIDES)
    yield from csv_trades(src, opts, chunks, cols, symbol_from_name(src.path))


def _need_book(src: Source, opts: Options, what: str) -> None:
    if opts.depth == 0:
        raise ImportFailed(
            f"{src.path}: a {what} file is order-book data: give --book top or --book L "
            "to import it as #market liquidity"
        )


def _book_ticker(src: Source, opts: Options, head: list[str], chunks: Chunks) -> Iterator[Batch]:
    _need_book(src, opts, "bookTicker")
    col = {k: i for i, k in enumerate(head)}
    its = col["transaction_time"]
    sym = symbol_from_name(src.path)
    rows = careful_rows(src, len(head), chunks)
    yield from replace_rows(
        src,
        opts,
        rows,
        lambda row: epoch_to_us(int_ts(row[its], "transaction_time"), src),
        lambda row: sym,
        [(col["best_bid_price"], col["best_bid_qty"], "best_bid")],
        [(col["best_ask_price"], col["best_ask_qty"], "best_ask")],
    )


def _book_depth(src: Source, opts: Options, head: list[str], chunks: Chunks) -> Iterator[Batch]:
    """Each timestamp's bands -> one level per band at its average price."""
    _need_book(src, opts, "bookDepth")
    sym = symbol_from_name(src.path)
    grid = opts.grid(opts.out_symbol(sym))
    if grid is None or grid.tick is None:
        raise ImportFailed(
            f"{src.path}: bookDepth bands are placed at their average price, which needs "
            "the instrument's tick: give --tick-size or --config"
        )
    tick = grid.tick
    col = {k: i for i, k in enumerate(head)}
    try:
        it, ip, idp, inot = col["timestamp"], col["percentage"], col["depth"], col["notional"]
    except KeyError as e:
        raise ImportFailed(f"{src.path}:1: bookDepth without a {e} column") from None
    books: dict[str, Book] = {}
    out_ts: list[int] = []
    out: list[str] = []
    group: list[tuple[Decimal, Decimal, Decimal]] = []
    cur: tuple[int, int] | None = None  # (line, ts) of the group

    def emit(ts: int, line: int) -> None:
        bids: list[tuple[str, str]] = []
        asks: list[tuple[str, str]] = []
        for neg, side in ((True, bids), (False, asks)):
            bands = sorted((abs(p), d, n) for p, d, n in group if (p < 0) == neg)
            pd, pn = Decimal(0), Decimal(0)
            for _, d, n in bands:
                dq, dn = d - pd, n - pn
                pd, pn = d, n
                if dq <= 0 or dn <= 0:
                    continue
                px = (dn / dq / tick).to_integral_value(
                    rounding=ROUND_FLOOR if neg else ROUND_CEILING
                ) * tick
                if px <= 0:
                    continue
                side.append((grid.fmt_price(px), plain(dq)))
        src.in_order(line, ts)
        replace_one(src, opts, books, ts, sym, bids, asks, out_ts, out)

    for line, row in careful_rows(src, len(head), chunks):
        try:
            ts = iso_to_us(row[it], "timestamp")
            pct = Decimal(decimal_str(row[ip], "percentage"))
            if pct == 0:
                raise BadRow("percentage", "0 is not a band")
            depth = Decimal(size_str(row[idp], "depth"))
            notional = Decimal(size_str(row[inot], "notional"))
        except BadRow as e:
            src.bad(line, e)
            continue
        if cur is not None and ts != cur[1]:
            emit(cur[1], cur[0])
            group.clear()
        cur = (line, ts)
        group.append((pct, depth, notional))
        if len(out) >= 4096:
            yield out_ts, out
            out_ts, out = [], []
    if cur is not None:
        emit(cur[1], cur[0])
    crossed_note(src, list(books.values()))
    if out:
        yield out_ts, out
