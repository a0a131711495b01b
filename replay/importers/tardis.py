"""Tardis.dev CSV (``trades``, ``derivative_ticker``) -> ``index_price`` and ``funding``.

The kind is read from the header. Timestamps are µs; 19-digit (ns) values, as in some
exports, are divided by 1000 and noted in the summary. ``derivative_ticker``: an
``index_price`` per row from ``index_price`` (``mark_price`` with ``price="mark"``), and one
``funding`` per distinct ``funding_timestamp`` once a row's ``timestamp`` has reached it,
at that funding timestamp, with the ``funding_rate`` of the last row that announced it.
``trades``: an ``index_price`` per trade, at the trade price. Streamed row by row.
"""

from __future__ import annotations

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
)

TICKER = ("timestamp", "symbol", "funding_timestamp", "funding_rate", "index_price", "mark_price")
TRADES = ("timestamp", "symbol", "price")


def read(src: Source, *, symbol: str | None = None, price: str = "index") -> Iterator[Command]:
    rows = src.csv_rows()
    first = next(rows, None)
    if first is None:
        return
    header = [c.strip() for c in first[1]]
    col = {name: i for i, name in enumerate(header)}
    if all(c in col for c in TICKER):
        kind = "ticker"
    elif all(c in col for c in TRADES) and "side" in col:
        kind = "trades"
    else:
        raise ImportFailed(
            f"{src.path}:1: not a Tardis trades or derivative_ticker CSV (header {header[:6]})"
        )
    price_col = "mark_price" if price == "mark" else "index_price"
    if kind == "trades":
        price_col = "price"
    pending: tuple[int, str] | None = None  # the funding announced, not yet reached
    done: int | None = None  # the last funding timestamp emitted

    def get(row: list[str], name: str) -> str:
        return row[col[name]]

    for line, row in rows:
        src.rows += 1
        if len(row) != len(header):
            src.bad(line, f"expected {len(header)} columns, got {len(row)}")
            continue
        try:
            ts = epoch_to_us(int_ts(get(row, "timestamp"), "timestamp"), src)
            sym = symbol or get(row, "symbol").strip()
            p = get(row, price_col).strip()
            px = decimal_str(p, price_col) if p else None  # an empty price: no index_price
            fund: tuple[int, str] | None = None
            if kind == "ticker" and get(row, "funding_timestamp").strip():
                fts = epoch_to_us(int_ts(get(row, "funding_timestamp"), "funding_timestamp"))
                fund = (fts, decimal_str(get(row, "funding_rate"), "funding_rate"))
        except BadRow as e:
            src.bad(line, e)
            continue
        out: list[Command] = []
        if pending is not None and (fund is None or fund[0] != pending[0]) and ts >= pending[0]:
            out.append(funding(pending[0], sym, pending[1]))
            done, pending = pending[0], None
        if fund is not None and fund[0] != done:
            pending = fund
            if ts >= fund[0]:
                out.append(funding(fund[0], sym, fund[1]))
                done, pending = fund[0], None
        if px is not None:
            out.append(index_price(ts, sym, px))
        for c in out:
            src.in_order(line, c["ts"])
            yield c
