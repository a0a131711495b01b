"""Shared pieces of the importers: rows in, command dicts out, never a float.

A reader is a generator of :data:`Command` dicts in ts order. It reports bad rows through a
:class:`Source` (which counts rows and either raises :class:`ImportError_` naming file, line
and column, or counts the skip under ``--skip-bad``).
"""

from __future__ import annotations

import csv
import datetime as _dt
import gzip
import io
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from clearsim.events.errors import ClearsimError

Command = dict[str, Any]

_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_US = _dt.timedelta(microseconds=1)


class ImportFailed(ClearsimError):
    """A bad input file or row: ``FILE:LINE: column NAME: what is wrong``."""


class BadRow(Exception):
    """Raised inside a reader for one row; :meth:`Source.bad` turns it into the policy."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(f"column {column}: {message}")


class Source:
    """One input file: its name, the rows read, the rows skipped and notes for the summary."""

    def __init__(self, path: str, *, skip_bad: bool) -> None:
        self.path = path
        self.skip_bad = skip_bad
        self.rows = 0
        self.skipped = 0
        self.notes: list[str] = []
        self.last_ts: int | None = None

    def open_text(self) -> IO[str]:
        """The file as a text stream (gzip when the name ends ``.gz``); a BOM is dropped."""
        try:
            if self.path.endswith(".gz"):
                return io.TextIOWrapper(
                    gzip.open(self.path, "rb"), encoding="utf-8-sig", newline=""
                )
            return open(self.path, encoding="utf-8-sig", newline="")
        except OSError as e:
            raise ImportFailed(f"{self.path}: {e.strerror or e}") from e

    def csv_rows(self) -> Iterator[tuple[int, list[str]]]:
        """``(line, row)`` for each non-blank CSV row, streamed."""
        with self.open_text() as f:
            reader = csv.reader(f)
            try:
                for row in reader:
                    if row and any(c.strip() for c in row):
                        yield reader.line_num, row
            except (csv.Error, UnicodeDecodeError, EOFError, OSError) as e:
                raise ImportFailed(f"{self.path}:{reader.line_num}: {e}") from e

    def bad(self, line: int, err: BadRow | str) -> None:
        """A bad row: skipped and counted under ``--skip-bad``, else the import fails."""
        if self.skip_bad:
            self.skipped += 1
            return
        raise ImportFailed(f"{self.path}:{line}: {err}")

    def in_order(self, line: int, ts: int) -> None:
        """A file's commands must come in ts order (the merge relies on it)."""
        if self.last_ts is not None and ts < self.last_ts:
            raise ImportFailed(
                f"{self.path}:{line}: timestamp {ts} goes back in time (after {self.last_ts})"
            )
        self.last_ts = ts

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def decimal_str(text: str, column: str) -> str:
    """A decimal string, checked and copied as written (surrounding blanks dropped)."""
    s = text.strip()
    if not _DECIMAL.match(s):
        raise BadRow(column, f"{text!r} is not a decimal")
    return s


def percent_to_rate(text: str, column: str) -> str:
    """``"-0.300000%"`` -> ``"-0.003"``: exact, by :class:`decimal.Decimal`."""
    s = text.strip()
    if not s.endswith("%"):
        raise BadRow(column, f"{text!r} is not a percentage")
    d = Decimal(decimal_str(s[:-1], column)).scaleb(-2)
    return plain(d)


def plain(d: Decimal) -> str:
    """A Decimal as a plain string without trailing zeros or exponent (``0`` for zero)."""
    if d == 0:
        return "0"
    return format(d.normalize(), "f")


def int_ts(text: str, column: str) -> int:
    s = text.strip()
    if not s.isdigit():
        raise BadRow(column, f"{text!r} is not an integer timestamp")
    return int(s)


def epoch_to_us(value: int, src: Source | None = None) -> int:
    """An integer epoch timestamp in s, ms, µs or ns, told apart by its magnitude."""
    if value < 10**11:
        return value * 1_000_000
    if value < 10**14:
        return value * 1_000
    if value < 10**17:
        return value
    if src is not None:
        src.note("nanosecond timestamps (19 digits) divided by 1000")
    return value // 1000


def iso_to_us(text: str, column: str) -> int:
    """An ISO-8601 timestamp (``Z`` or an offset; naive = UTC) as µs since the epoch."""
    try:
        t = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadRow(column, f"{text!r} is not an ISO-8601 timestamp") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    return (t - _EPOCH) // _US


def any_ts(text: str, column: str, src: Source) -> int:
    """An integer epoch (by magnitude) or an ISO-8601 timestamp, as µs."""
    s = text.strip()
    if s.isdigit():
        return epoch_to_us(int(s), src)
    return iso_to_us(s, column)


def symbol_from_name(path: str) -> str:
    """``BTCUSDT-1m-2024-01-01.csv`` -> ``BTCUSDT``: the default symbol of a file without one."""
    name = Path(path).name
    for ext in (".gz", ".csv", ".json"):
        name = name.removesuffix(ext)
    return name.split("-")[0].split("_")[0]


def index_price(ts: int, symbol: str, price: str) -> Command:
    return {"type": "index_price", "ts": ts, "symbol": symbol, "price": price}


def funding(ts: int, symbol: str, rate: str) -> Command:
    return {"type": "funding", "ts": ts, "symbol": symbol, "rate": rate}
