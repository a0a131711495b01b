"""Price bars -> ``index_price``: BitMEX bucketed JSON and plain OHLC CSV.

BitMEX JSON (``[{"timestamp": "2020-03-12T00:01:00.000Z", "open": 7931.5, ...}, ...]``) is
one small array per day: it is read whole (about 1,440 objects), its numbers parsed as
strings (``parse_float=str``) so no float ever exists. The CSV (``timestamp,open,high,low,
close[,volume]``, timestamp ISO-8601 or an integer epoch in s/ms/µs told apart by its
magnitude, header optional) is streamed.

By default one ``index_price`` per bar, the close, at the bar's timestamp. ``path="ohlc"``
walks a common intrabar path: open at +0 s, then the high and the low (the high first when
the bar closes down, close < open, else the low first) at +15 s and +30 s, the close at +45 s.
Bars may be unevenly spaced (but a bar must start at least 45 s after the previous one
under ``ohlc``, or the file is out of order).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from clearsim.replay.importers._common import (
    BATCH,
    BadRow,
    Batch,
    Command,
    ImportFailed,
    Source,
    any_ts,
    decimal_str,
    index_line,
    index_price,
    iso_to_us,
    sym_json,
    symbol_from_name,
)
from clearsim.replay.importers._options import Options

_S = 1_000_000
_COLS = ("timestamp", "open", "high", "low", "close")


def _walk(ts: int, o: str, h: str, lo: str, c: str, path: str) -> list[tuple[int, str]]:
    if path != "ohlc":
        return [(ts, c)]
    mid = (h, lo) if Decimal(c) < Decimal(o) else (lo, h)
    return [(ts, o), (ts + 15 * _S, mid[0]), (ts + 30 * _S, mid[1]), (ts + 45 * _S, c)]


def read(src: Source, opts: Options) -> Iterator[Batch]:
    if src.path.endswith((".json", ".json.gz")):
        commands = _json(src, opts.symbol, opts.path)
    else:
        commands = _csv(src, opts.symbol, opts.path)
    out_ts: list[int] = []
    out: list[str] = []
    for c in commands:
        out_ts.append(c["ts"])
        out.append(index_line(c["ts"], sym_json(c["symbol"]), c["price"]))
        if len(out) >= BATCH:
            yield out_ts, out
            out_ts, out = [], []
    if out:
        yield out_ts, out


def _json(src: Source, symbol: str | None, path: str) -> Iterator[Command]:
    with src.open_text() as f:
        try:
            data: Any = json.loads(f.read(), parse_float=str, parse_int=str)
        except (ValueError, OSError, EOFError) as e:
            raise ImportFailed(f"{src.path}: not a JSON array of bars: {e}") from e
    if not isinstance(data, list):
        raise ImportFailed(f"{src.path}: not a JSON array of bars")
    for i, bar in enumerate(data, 1):  # "line" = the bar's position in the array
        src.rows += 1
        try:
            if not isinstance(bar, dict):
                raise BadRow("timestamp", "the bar is not an object")
            vals = []
            for k in _COLS:
                v = bar.get(k)
                if not isinstance(v, str):
                    raise BadRow(k, f"{v!r} is missing or not a number")
                vals.append(v)
            ts = iso_to_us(vals[0], "timestamp")
            o, h, lo, c = (decimal_str(v, k) for v, k in zip(vals[1:], _COLS[1:], strict=True))
            sym = symbol or str(bar.get("symbol") or symbol_from_name(src.path))
        except BadRow as e:
            src.bad(i, f"bar {i}: {e}")
            continue
        for t, p in _walk(ts, o, h, lo, c, path):
            src.in_order(i, t)
            yield index_price(t, sym, p)


def _csv(src: Source, symbol: str | None, path: str) -> Iterator[Command]:
    sym = symbol or symbol_from_name(src.path)
    cols = {k: i for i, k in enumerate(_COLS)}
    for line, row in src.csv_rows():
        if line == 1 and row[0].strip().lower() in ("timestamp", "time", "date", "open_time"):
            cols = {k.strip().lower(): i for i, k in enumerate(row)}
            if "time" in cols and "timestamp" not in cols:
                cols["timestamp"] = cols["time"]
            missing = [k for k in _COLS if k not in cols]
            if missing:
                raise ImportFailed(f"{src.path}:1: missing columns {missing}")
            continue
        src.rows += 1
        try:
            if len(row) <= max(cols[k] for k in _COLS):
                raise BadRow("close", f"expected at least {len(_COLS)} columns, got {len(row)}")
            ts = any_ts(row[cols["timestamp"]], "timestamp", src)
            o, h, lo, c = (decimal_str(row[cols[k]], k) for k in _COLS[1:])
        except BadRow as e:
            src.bad(line, e)
            continue
        for t, p in _walk(ts, o, h, lo, c, path):
            src.in_order(line, t)
            yield index_price(t, sym, p)
