"""Rows that are each the book's top (tardis ``book_snapshot_N`` / ``quotes``, binance
``bookTicker`` / ``bookDepth``) -> level changes: each row replaces the book, and
:class:`._book.Book` emits only the difference from the previous row."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from clearsim.replay.importers._book import Book
from clearsim.replay.importers._common import (
    BadRow,
    Batch,
    Source,
    is_zero,
    plain_ok,
    positive_str,
    size_str,
    sym_json,
)
from clearsim.replay.importers._options import Options

__all__ = ["LevelCols", "Rows", "crossed_note", "level", "replace_one", "replace_rows"]

Rows = Iterator[tuple[int, list[str]]]
#: (price column, quantity column, name for messages) of one level
LevelCols = list[tuple[int, int, str]]


def level(row: list[str], ip: int, iq: int, name: str) -> tuple[str, str] | None:
    """One level of a row: ``(price, qty)``, or None when both cells are empty (a snapshot
    with fewer levels than its depth)."""
    p, q = row[ip], row[iq]
    if not p and not q:
        return None
    if not (p and plain_ok(p)):
        p = positive_str(p, f"{name}.price")
    if not (q and plain_ok(q)):
        q = size_str(q, f"{name}.amount")
    if is_zero(p):
        raise BadRow(f"{name}.price", f"{p!r} is not above zero")
    return p, q


def replace_rows(
    src: Source,
    opts: Options,
    rows: Rows,
    ts_of: Callable[[list[str]], int],
    sym_of: Callable[[list[str]], str],
    bid_cols: LevelCols,
    ask_cols: LevelCols,
) -> Iterator[Batch]:
    books: dict[str, Book] = {}
    out_ts: list[int] = []
    out: list[str] = []
    for line, row in rows:
        try:
            ts = ts_of(row)
            sym = sym_of(row)
            bids = [lv for ip, iq, name in bid_cols if (lv := level(row, ip, iq, name))]
            asks = [lv for ip, iq, name in ask_cols if (lv := level(row, ip, iq, name))]
        except BadRow as e:
            src.bad(line, e)
            continue
        src.in_order(line, ts)
        replace_one(src, opts, books, ts, sym, bids, asks, out_ts, out)
        if len(out) >= 4096:
            yield out_ts, out
            out_ts, out = [], []
    crossed_note(src, list(books.values()))
    if out:
        yield out_ts, out


def replace_one(
    src: Source,
    opts: Options,
    books: dict[str, Book],
    ts: int,
    sym: str,
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
    out_ts: list[int],
    out: list[str],
) -> None:
    """Replace ``sym``'s book with these levels at ``ts``; the changes go to ``out``."""
    book = books.get(sym)
    if book is None:
        out_sym = opts.out_symbol(sym)
        book = books[sym] = Book(sym_json(out_sym), opts.depth, opts.grid(out_sym), src)
    book.replace(bids, asks)
    book.flush(ts, out_ts, out)


def crossed_note(src: Source, books: list[Book]) -> None:
    crossed = sum(b.crossed for b in books)
    if crossed:
        src.note(f"the book was crossed (best bid >= best ask) after {crossed:,} updates")
