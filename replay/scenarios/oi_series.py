"""The historical open interest that ``open_interest`` arrivals follow: a column of a ticker.

``[population] arrivals = { kind = "open_interest", series = { file = ..., share_ppm = ... } }``
keeps the population's open interest near a share of the market's, read from a CSV with a
``timestamp`` column and an open-interest column (a tardis ``derivative_ticker`` file, plain
or gzipped, has both: ``open_interest`` is the default column). At each check time the
target is the latest row at or before that moment, times ``share_ppm`` / 1,000,000, rounded
down to the instrument's lot grid; before the first row it is 0 (nobody enters on a market
whose open interest is not known yet).

The file is read as the run goes, one row at a time and at most one row past the check it
answers (to know the row before is the latest), so a whole day's ticker costs constant
memory; a bad row ends the run with an error naming its file, line and column. Values are exact
(``Fraction`` of the decimal text, never a float). The column is taken in the instrument's quantity
units (BitMEX XBTUSD: USD contracts; Binance: the base asset), which is what tardis writes.

- :func:`check_header` — at scenario load: the file opens and has the columns.
- :class:`OiCursor` — the target in lots at each (non-decreasing) check time.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import IO

import attrs

from clearsim.events.errors import ClearsimError
from clearsim.events.units import PPM
from clearsim.replay.importers._common import epoch_to_us

__all__ = ["OiCursor", "OiSeries", "OiSeriesError", "check_header"]

_DECIMAL = re.compile(r"\d+(\.\d+)?")


class OiSeriesError(ClearsimError):
    """The open-interest file cannot be read: names the file, the line and the column."""


@attrs.frozen
class OiSeries:
    """Where the historical open interest is, and the population's share of it."""

    path: Path
    share_ppm: int  # 1..1,000,000: the population's share of the market's open interest
    column: str = "open_interest"
    #: rows of this source symbol only (None: the file must name one symbol, or none)
    symbol: str | None = None


def _open(path: Path) -> IO[str]:
    try:
        if path.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
        return open(path, encoding="utf-8", newline="")
    except OSError as e:
        raise OiSeriesError(f"{path}: cannot open ({e.strerror or e})") from None


def _columns(s: OiSeries, header: list[str]) -> tuple[int, int, int | None]:
    """The indexes of the timestamp, value and symbol columns."""
    col = {name: i for i, name in enumerate(header)}
    for name in ("timestamp", s.column):
        if name not in col:
            raise OiSeriesError(f"{s.path}:1: no {name!r} column (header: {','.join(header)})")
    if s.symbol is not None and "symbol" not in col:
        raise OiSeriesError(f"{s.path}:1: symbol {s.symbol!r} given but the file has no symbol")
    return col["timestamp"], col[s.column], col.get("symbol")


def check_header(s: OiSeries) -> None:
    """Fail now, at load, rather than hours into a run: the file opens and has the columns."""
    with _open(s.path) as f:
        try:
            header = next(csv.reader(f), None)
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as e:
            raise OiSeriesError(f"{s.path}:1: not a readable CSV ({e})") from None
    if header is None:
        raise OiSeriesError(f"{s.path}: empty file (expected a header line)")
    _columns(s, header)


class OiCursor:
    """The target open interest, in lots, at each check time (asked in non-decreasing order).

    ``lot`` is the instrument's lot size as a decimal string."""

    def __init__(self, s: OiSeries, lot: str) -> None:
        self.s = s
        self._per_lot = Fraction(s.share_ppm, PPM) / Fraction(lot)
        self._rows: Iterator[tuple[int, int]] | None = None
        self._next: tuple[int, int] | None = None
        self._target = 0
        self._last_ask: int | None = None

    def target_at(self, ts: int) -> int:
        """Lots: the share of the latest row at or before ``ts`` (0 before the first)."""
        if self._last_ask is not None and ts < self._last_ask:
            raise ValueError(f"check times go back: {ts} after {self._last_ask}")
        self._last_ask = ts
        if self._rows is None:
            self._rows = self._read()
            self._next = next(self._rows, None)
        while self._next is not None and self._next[0] <= ts:
            self._target = self._next[1]
            self._next = next(self._rows, None)
        return self._target

    def _read(self) -> Iterator[tuple[int, int]]:
        """(µs, target lots) per row of the symbol, checked for order and shape."""
        s = self.s
        with _open(s.path) as f:
            rows = csv.reader(f)
            try:
                header = next(rows, None)
                if header is None:
                    return
                check = _Rows(s, header)
                for row in rows:
                    got = check.row(row, rows.line_num)
                    if got is not None:
                        ts, value = got
                        yield ts, int(Fraction(value) * self._per_lot)  # floor: both >= 0
            except (OSError, EOFError, UnicodeDecodeError, csv.Error) as e:
                raise OiSeriesError(f"{s.path}:{rows.line_num}: not a readable CSV ({e})") from None


class _Rows:
    """The checks of one file's rows, in order: width, symbol, timestamp order, value."""

    def __init__(self, s: OiSeries, header: list[str]) -> None:
        self.s = s
        self.ti, self.vi, self.si = _columns(s, header)
        self.width = len(header)
        self.seen: str | None = s.symbol  # the one symbol the rows may name
        self.last = -1

    def row(self, row: list[str], line: int) -> tuple[int, str] | None:
        """(µs, the value's text) of a row that counts; None for one to skip."""
        s = self.s
        if not row:
            return None
        if len(row) != self.width:
            raise OiSeriesError(f"{s.path}:{line}: {len(row)} fields, the header has {self.width}")
        if self.si is not None and not self._symbol_ok(row[self.si], line):
            return None
        ts_text, v = row[self.ti], row[self.vi]
        if not ts_text.isdigit():
            raise OiSeriesError(
                f"{s.path}:{line}: column timestamp: {ts_text!r} is not an integer epoch timestamp"
            )
        ts = epoch_to_us(int(ts_text))  # s, ms, µs or ns by magnitude
        if ts < self.last:
            raise OiSeriesError(
                f"{s.path}:{line}: column timestamp: {ts} is before the row above "
                f"({self.last}); the file must be in time order"
            )
        self.last = ts
        if not v:  # tardis leaves a value empty until the exchange sends one
            return None
        if not _DECIMAL.fullmatch(v):
            raise OiSeriesError(
                f"{s.path}:{line}: column {s.column}: {v!r} is not a non-negative decimal"
            )
        return ts, v

    def _symbol_ok(self, sym: str, line: int) -> bool:
        """Whether the row is of the series' symbol (the first seen, when none was given)."""
        if self.seen is None:
            self.seen = sym
        if sym == self.seen:
            return True
        if self.s.symbol is not None:
            return False
        raise OiSeriesError(
            f"{self.s.path}:{line}: column symbol: a second symbol {sym!r} after "
            f"{self.seen!r}; give series.symbol"
        )
