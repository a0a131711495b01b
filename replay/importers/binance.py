"""Binance -> ``funding`` and ``index_price``.

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
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator

from clearsim.replay.importers._common import (
    BadRow,
    Command,
    ImportFailed,
    Source,
    decimal_str,
    epoch_to_us,
    funding,
    index_price,
    int_ts,
    iso_to_us,
    percent_to_rate,
    symbol_from_name,
)

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


def read(src: Source, *, symbol: str | None = None) -> Iterator[Command]:
    rows = src.csv_rows()
    first = next(rows, None)
    if first is None:
        return
    head = [c.strip().lower() for c in first[1]]
    if head[:1] == ["time"] and "funding rate" in head:
        yield from _site_export(src, symbol, head, rows)
    elif "calc_time" in head:
        yield from _funding_rate(src, symbol, head, rows)
    elif head[0] == "open_time" or head[0].isdigit():
        yield from _klines(src, symbol, first if head[0].isdigit() else None, rows)
    else:
        raise ImportFailed(f"{src.path}:1: not a Binance funding or klines CSV (header {head})")


def _site_export(
    src: Source, symbol: str | None, head: list[str], rows: Iterator[tuple[int, list[str]]]
) -> Iterator[Command]:
    t, c, r = head.index("time"), head.index("contracts"), head.index("funding rate")
    got: list[tuple[int, int, Command]] = []
    for line, row in rows:
        src.rows += 1
        try:
            if len(row) != len(head):
                raise BadRow("Time", f"expected {len(head)} columns, got {len(row)}")
            ts = london_to_us(row[t], "Time")
            rate = percent_to_rate(row[r], "Funding Rate")
            sym = symbol or row[c].strip().split()[0]
        except BadRow as e:
            src.bad(line, e)
            continue
        got.append((ts, line, funding(ts, sym, rate)))
    got.sort(key=lambda x: (x[0], -x[1]))  # newest first in the file: oldest last line first
    for _, _, cmd in got:
        yield cmd


def _funding_rate(
    src: Source, symbol: str | None, head: list[str], rows: Iterator[tuple[int, list[str]]]
) -> Iterator[Command]:
    t, r = head.index("calc_time"), head.index("last_funding_rate")
    sym = symbol or symbol_from_name(src.path)
    for line, row in rows:
        src.rows += 1
        try:
            if len(row) != len(head):
                raise BadRow("calc_time", f"expected {len(head)} columns, got {len(row)}")
            ts = epoch_to_us(int_ts(row[t], "calc_time"), src)
            rate = decimal_str(row[r], "last_funding_rate")
        except BadRow as e:
            src.bad(line, e)
            continue
        src.in_order(line, ts)
        yield funding(ts, sym, rate)


def _klines(
    src: Source,
    symbol: str | None,
    first: tuple[int, list[str]] | None,
    rows: Iterator[tuple[int, list[str]]],
) -> Iterator[Command]:
    sym = symbol or symbol_from_name(src.path)

    def all_rows() -> Iterator[tuple[int, list[str]]]:
        if first is not None:
            yield first
        yield from rows

    for line, row in all_rows():
        src.rows += 1
        try:
            if len(row) < 5:
                raise BadRow("close", f"expected at least 5 columns, got {len(row)}")
            col, raw = ("close_time", row[6]) if len(row) > 6 else ("open_time", row[0])
            ts = epoch_to_us(int_ts(raw, col), src)
            px = decimal_str(row[4], "close")
        except BadRow as e:
            src.bad(line, e)
            continue
        src.in_order(line, ts)
        yield index_price(ts, sym, px)
