"""Tardis.dev CSV (``trades``, ``derivative_ticker``) -> ``index_price`` and ``funding``.

The kind is read from the header. Timestamps are µs; 19-digit (ns) values, as in some
exports, are divided by 1000 and noted in the summary. ``derivative_ticker``: an
``index_price`` per row from ``index_price`` (``mark_price`` with ``price="mark"``), and one
``funding`` per distinct ``funding_timestamp`` once a row's ``timestamp`` has reached it,
at that funding timestamp, with the ``funding_rate`` of the last row that announced it
(per symbol; a funding time not reached by the end of the file is not emitted).
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
    # per symbol: the funding announced and not yet reached, the last funding ts emitted
    pendings: dict[str, tuple[int, str] | None] = {}
    dones: dict[str, int | None] = {}

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
        pending = pendings.get(sym)
        if pending is not None and (fund is None or fund[0] != pending[0]) and ts >= pending[0]:
            out.append(funding(pending[0], sym, pending[1]))
            dones[sym], pendings[sym] = pending[0], None
        if fund is not None and fund[0] != dones.get(sym):
            pendings[sym] = fund
        # every symbol's announced funding that this row's time has reached, oldest first
        due = sorted((p[0], k, p[1]) for k, p in pendings.items() if p and p[0] <= ts)
        for fts, k, rate in due:
            out.append(funding(fts, k, rate))
            dones[k], pendings[k] = fts, None
        if px is not None:
            out.append(index_price(ts, sym, px))
        for c in out:
            src.in_order(line, c["ts"])
            yield c
