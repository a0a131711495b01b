"""Shared pieces of the importers: rows in, command lines out, never a float.

A reader is a generator of :data:`Batch` es: parallel lists of timestamps and JSON command
lines (each ending ``"\\n"``), in ts order. Lines are written with the formatters below
(:func:`index_line`, :func:`order_line`, ...) straight from the validated decimal strings of
the file: no dict, no encoder, no float on the hot path. A reader reports bad rows through its
:class:`Source`, which counts rows and either raises :class:`ImportFailed` naming file, line
and column, or counts the skip under ``--skip-bad``.

Files are read in blocks of lines (:meth:`Source.text_chunks`, :meth:`Source.byte_chunks`)
so a reader's inner loop is a plain ``for`` over a list; a line that the fast checks refuse
goes to the reader's careful path, which either repairs it (blanks, CRLF, quotes) or names
what is wrong.
"""

from __future__ import annotations

import csv
import datetime as _dt
import functools
import gzip
import io
import os
import re
import zlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, cast

import orjson

from clearsim.events.errors import ClearsimError

Command = dict[str, Any]
#: (timestamps, JSON lines): one entry per command, in ts order
Batch = tuple[list[int], list[str]]

#: a reader yields a batch once it holds about this many commands
BATCH = 4096
_BLOCK = 1 << 20  # characters (or bytes) read at a time

_DECIMAL = re.compile(r"([+-]?)(\d+)?(?:\.(\d*))?")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_US = _dt.timedelta(microseconds=1)


class ImportFailed(ClearsimError):
    """A bad input file or row: ``FILE:LINE: column NAME: what is wrong``."""


class BadRow(Exception):
    """Raised inside a reader for one row; :meth:`Source.bad` turns it into the policy."""

    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message if column is None else f"column {column}: {message}")


class Source:
    """One input file: its name, the rows read, the rows skipped and notes for the summary.

    ``liquidations`` collects the reference records a reader sets aside (tardis
    ``liquidations``, a capture's ``forceOrder``): they never enter the command stream; the
    pipeline writes them to the sidecar file.
    """

    def __init__(self, path: str, *, skip_bad: bool) -> None:
        self.path = path
        self.skip_bad = skip_bad
        self.rows = 0
        self.skipped = 0
        #: prices moved onto the instrument's tick grid (or quantities onto its lot grid)
        self.rounded = 0
        #: breaks in a capture's depth-update sequence
        self.gaps = 0
        self.notes: list[str] = []
        self.last_ts: int | None = None
        self.liquidations: list[tuple[int, str]] = []
        self.liquidation_spill: LineSpill | None = None

    # ------------------------------------------------------------------ reading

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

    def open_bytes(self) -> IO[bytes]:
        try:
            if self.path.endswith(".gz"):
                return cast(IO[bytes], gzip.open(self.path, "rb"))
            return open(self.path, "rb")
        except OSError as e:
            raise ImportFailed(f"{self.path}: {e.strerror or e}") from e

    def csv_rows(self) -> Iterator[tuple[int, list[str]]]:
        """``(line, row)`` for each non-blank CSV row, streamed (the careful, slower way:
        for the small files: funding exports, bars)."""
        with self.open_text() as f:
            reader = csv.reader(f)
            try:
                for row in reader:
                    if row and any(c.strip() for c in row):
                        yield reader.line_num, row
            except (csv.Error, UnicodeDecodeError, EOFError, OSError, zlib.error) as e:
                raise ImportFailed(f"{self.path}:{reader.line_num}: {e}") from e

    def text_chunks(self) -> Iterator[tuple[int, list[str], bool]]:
        """``(number of the first line, lines, all ASCII)`` blocks of the file's lines,
        without their line endings (CRLF read as LF). A reader's fast checks rely on the
        ASCII flag (``str.isdigit`` accepts other scripts' digits)."""
        line = 1
        carry = ""
        with self.open_text() as f:
            while True:
                try:
                    block = f.read(_BLOCK)
                except (UnicodeDecodeError, EOFError, OSError, zlib.error) as e:
                    raise ImportFailed(f"{self.path}: near line {line}: {e}") from e
                if not block:
                    if carry:
                        carry = carry.rstrip("\r")
                        yield line, [carry], carry.isascii()
                    return
                block = carry + block
                if "\r" in block:
                    block = block.replace("\r\n", "\n")
                cut = block.rfind("\n")
                if cut < 0:
                    carry = block
                    continue
                carry = block[cut + 1 :]
                body = block[:cut]
                lines = body.split("\n")
                yield line, lines, body.isascii()
                line += len(lines)

    def byte_chunks(self) -> Iterator[tuple[int, list[bytes]]]:
        """``(number of the first line, lines)`` blocks of the file's lines as bytes."""
        line = 1
        carry = b""
        with self.open_bytes() as f:
            while True:
                try:
                    block = f.read(_BLOCK)
                except (EOFError, OSError, zlib.error) as e:
                    raise ImportFailed(f"{self.path}: near line {line}: {e}") from e
                if not block:
                    if carry.strip():
                        yield line, [carry]
                    return
                block = carry + block
                cut = block.rfind(b"\n")
                if cut < 0:
                    carry = block
                    continue
                carry = block[cut + 1 :]
                lines = block[:cut].split(b"\n")
                yield line, lines
                line += len(lines)

    # ------------------------------------------------------------------ policy

    def bad(self, line: int, err: BadRow | str) -> None:
        """A bad row: skipped and counted under ``--skip-bad``, else the import fails."""
        if self.skip_bad:
            self.skipped += 1
            return
        raise ImportFailed(f"{self.path}:{line}: {err}")

    def in_order(self, line: int, ts: int) -> None:
        """A file's commands must come in ts order (the merge relies on it)."""
        if self.last_ts is not None and ts < self.last_ts:
            self.back_in_time(line, ts)
        self.last_ts = ts

    def back_in_time(self, line: int, ts: int) -> None:
        raise ImportFailed(
            f"{self.path}:{line}: timestamp {ts} goes back in time (after {self.last_ts})"
        )

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def liquidation(self, ts: int, line: str) -> None:
        """Set a reference record aside for the sidecar file (spilled to disk in blocks)."""
        self.liquidations.append((ts, line))
        if len(self.liquidations) >= BATCH and self.liquidation_spill is not None:
            self.liquidation_spill.write(self.liquidations)
            self.liquidations.clear()


class LineSpill:
    """A temporary file of ``ts<TAB>line`` records, read back in order (sidecar merge)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._f: IO[str] | None = None

    def write(self, records: list[tuple[int, str]]) -> None:
        if self._f is None:
            # kept open across writes; closed by read() or remove()
            self._f = open(self.path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        self._f.write("".join(f"{ts}\t{line}" for ts, line in records))
        self.count += len(records)

    def read(self) -> Iterator[tuple[int, str]]:
        if self._f is None:
            return
        self._f.close()
        with open(self.path, encoding="utf-8", newline="\n") as f:
            for rec in f:
                ts, _, line = rec.partition("\t")
                yield int(ts), line

    def remove(self) -> None:
        if self._f is not None:
            self._f.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


# ---------------------------------------------------------------------- decimals


def plain_ok(s: str) -> bool:
    """The fast check of an unsigned plain decimal (``123``, ``0.5``; not ``.5``, ``5.``,
    ``+5``, ``1e3``) as the engine's grammar has it. ASCII input only (see
    :meth:`Source.text_chunks`)."""
    return s.replace(".", "", 1).isdigit() and s[0] != "." != s[-1]


def decimal_str(text: str, column: str) -> str:
    """A decimal string in the engine's plain form, copied as written where it already is
    (surrounding blanks dropped; ``+5`` -> ``5``, ``.5`` -> ``0.5``, ``5.`` -> ``5``)."""
    s = text.strip()
    m = _DECIMAL.fullmatch(s)
    if not s.isascii() or not m or (m.group(2) is None and not m.group(3)):
        raise BadRow(column, f"{text!r} is not a decimal")
    sign, whole, frac = m.groups()
    out = (whole or "0") + (f".{frac}" if frac else "")
    return ("-" + out) if sign == "-" else out


def positive_str(text: str, column: str) -> str:
    """A price or a trade's quantity: a decimal above zero."""
    s = decimal_str(text, column)
    if s.startswith("-") or is_zero(s):
        raise BadRow(column, f"{text!r} is not above zero")
    return s


def size_str(text: str, column: str) -> str:
    """A book level's quantity: a decimal of zero (the level is gone) or more."""
    s = decimal_str(text, column)
    if s.startswith("-"):
        raise BadRow(column, f"{text!r} is negative")
    return s


def is_zero(s: str) -> bool:
    """A plain decimal string equal to zero (``0``, ``0.000``)."""
    return not s.strip("0.")


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


# ---------------------------------------------------------------------- times


def int_ts(text: str, column: str) -> int:
    s = text.strip()
    if not (s.isdigit() and s.isascii()):
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


# ---------------------------------------------------------------------- command lines


@functools.lru_cache(maxsize=256)
def sym_json(symbol: str) -> str:
    """A symbol as a JSON string literal (quotes included), encoded once."""
    return orjson.dumps(symbol).decode()


# The formatters take validated pieces: decimals in plain form (digits, one dot), ids from
# the importer's own counter, sides from a closed set, symbols through sym_json. Key order
# is the one the dict-built commands had, so outputs stay byte-identical.


def index_line(ts: int, symj: str, price: str) -> str:
    return f'{{"type":"index_price","ts":{ts},"symbol":{symj},"price":"{price}"}}\n'


def funding_line(ts: int, symj: str, rate: str) -> str:
    return f'{{"type":"funding","ts":{ts},"symbol":{symj},"rate":"{rate}"}}\n'


def order_line(ts: int, oid: str, symj: str, side: str, qty: str, price: str) -> str:
    """A historical trade as an IOC order of the reserved ``#market`` account."""
    return (
        f'{{"type":"order","ts":{ts},"account":"#market","id":"{oid}","symbol":{symj},'
        f'"side":"{side}","qty":"{qty}","price":"{price}","tif":"ioc"}}\n'
    )


def level_line(ts: int, symj: str, side: str, price: str, qty: str) -> str:
    """``#market``'s total resting quantity at one price level (``qty`` "0" removes it)."""
    return (
        f'{{"type":"market_level","ts":{ts},"symbol":{symj},"side":"{side}",'
        f'"price":"{price}","qty":"{qty}"}}\n'
    )


def liquidation_line(
    ts: int, symj: str, side: str, price: str, qty: str, source_id: str | None = None
) -> str:
    """A historical liquidation, for the sidecar file (not a command)."""
    rec: dict[str, Any] = {"type": "liquidation", "ts": ts}
    rec["symbol"] = orjson.loads(symj)
    rec.update(side=side, price=price, qty=qty)
    if source_id:
        rec["source_id"] = source_id
    return orjson.dumps(rec).decode() + "\n"


def index_price(ts: int, symbol: str, price: str) -> Command:
    return {"type": "index_price", "ts": ts, "symbol": symbol, "price": price}


def funding(ts: int, symbol: str, rate: str) -> Command:
    return {"type": "funding", "ts": ts, "symbol": symbol, "rate": rate}


Chunks = Iterator[tuple[int, list[str], bool]]


def first_line(src: Source) -> tuple[list[str], str, int, Chunks] | None:
    """The first non-blank line of a CSV file (its fields, its text and its number) and the
    blocks of lines after it; None for an empty file."""
    chunks = src.text_chunks()
    for ln, lines, ascii_ in chunks:
        for j, line in enumerate(lines):
            if line.strip():
                try:
                    fields = [c.strip() for c in next(csv.reader([line]))]
                except csv.Error as e:
                    raise ImportFailed(f"{src.path}:{ln + j}: {e}") from e
                return fields, line, ln + j, _rest(ln + j + 1, lines[j + 1 :], ascii_, chunks)
    return None


def _rest(ln: int, lines: list[str], ascii_: bool, chunks: Chunks) -> Chunks:
    if lines:
        yield ln, lines, ascii_
    yield from chunks


def csv_fields(line: str) -> list[str] | None:
    """One CSV line's fields, blanks stripped (the careful path); None for a blank line."""
    if not line.strip():
        return None
    try:
        return [c.strip() for c in next(csv.reader([line]))]
    except csv.Error as e:
        raise BadRow(None, str(e)) from None


def careful_rows(src: Source, n: int, chunks: Chunks) -> Iterator[tuple[int, list[str]]]:
    """Every row the careful way: ``(line, fields)`` of each non-blank row of ``n`` columns
    (rows of another width are reported). For the files that are small or whose rows are
    wide (tickers, snapshots, funding)."""
    for ln, lines, _ in chunks:
        for i, line in enumerate(lines, ln):
            try:
                row = csv_fields(line)
            except BadRow as e:
                src.rows += 1
                src.bad(i, e)
                continue
            if row is None:
                continue
            src.rows += 1
            if len(row) != n:
                src.bad(i, f"expected {n} columns, got {len(row)}")
                continue
            yield i, row
