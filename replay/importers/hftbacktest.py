"""A raw Binance USDⓈ-M websocket capture (hftbacktest's format) -> commands.

One message per line, ``<local_timestamp_ns> <raw JSON>``; a stream message may come
wrapped as ``{"stream": ..., "data": ...}``. The commands' ts is the local timestamp (µs):
the only clock in file order (the exchange times of the different streams interleave out
of order by tens of ms).

- REST depth snapshot (``{"lastUpdateId": L, "bids": [[p, q], ...], "asks": ...}``) and
  ``depthUpdate`` diffs (``--book L``): the book is rebuilt from a snapshot and the diffs
  after it, by Binance's rules: a diff with ``u < L`` is stale; the first one applied must
  span ``L`` (``U <= L <= u``, or ``pu == L``); each next one's ``pu`` must be the previous
  one's ``u``. The last diffs are kept (a bounded window) because a capture records the
  snapshot when it arrives, after diffs that are newer than it: they are replayed onto it.
  A break in the sequence (a gap) is an error; with ``--skip-bad`` it is counted and noted,
  ``#market``'s book is withdrawn (every shown level removed) and no book change is emitted
  until the next snapshot. Diffs before the first snapshot wait for it.
- ``bookTicker`` (``--book top``): the best bid and ask, each message replacing the top.
- ``trade`` (``X`` ``MARKET``; liquidation and ADL prints are not market trades and are
  skipped, counted) or ``aggTrade``: trades as prices and/or ``#market`` IOC orders
  (:mod:`._trades`); the aggressor sells when the buyer was the maker (``m``). The first
  trade stream seen is used; the other, which would repeat the same trades, is ignored
  (counted).
- ``markPriceUpdate``: an ``index_price`` from ``i`` (``p`` with ``--price mark``) and one
  ``funding`` per funding time ``T`` at rate ``r`` (:mod:`._funding`).
- ``forceOrder``: liquidations, to the sidecar file.

Messages the options do not use (``bookTicker`` without ``--book top``, depth without
``--book L``) are recognised by their text and not parsed; the summary counts them.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from clearsim.replay.importers._book import Book
from clearsim.replay.importers._common import (
    BadRow,
    Batch,
    ImportFailed,
    Source,
    decimal_str,
    epoch_to_us,
    index_line,
    is_zero,
    liquidation_line,
    plain_ok,
    sym_json,
    symbol_from_name,
)
from clearsim.replay.importers._funding import FundingClock
from clearsim.replay.importers._options import Options
from clearsim.replay.importers._snapshots import crossed_note
from clearsim.replay.importers._trades import TradeSink

__all__ = ["RECENT", "read"]

#: depth diffs kept for a snapshot that arrives after them
RECENT = 1000

Handler = Callable[[int, int, dict[str, Any], list[int], list[str]], None]
_DiffEntry = tuple[int, int, int, "Levels", "Levels", int]


def _field(path: str, message: str) -> BadRow:
    return BadRow(None, f"field {path}: {message}")


def _dec(v: Any, path: str, positive: bool) -> str:
    if type(v) is not str:
        raise _field(path, f"{v!r} is not a decimal string")
    s: str = v
    if not (s and s.isascii() and plain_ok(s)):
        try:
            s = decimal_str(s, path)
        except BadRow:
            raise _field(path, f"{v!r} is not a decimal") from None
        if s.startswith("-"):
            raise _field(path, f"{v!r} is negative")
    if positive and is_zero(s):
        raise _field(path, f"{v!r} is not above zero")
    return s


def _int(v: Any, path: str) -> int:
    if type(v) is not int or v < 0:
        raise _field(path, f"{v!r} is not a sequence number")
    return v


# A whole list of prices (each with a non-zero digit) or quantities, joined by commas,
# checked by one regex: the fast path for the hundreds of levels of a depth message.
_PRICES = re.compile(
    r"(?:(?=[0-9.]*[1-9])[0-9]+(?:\.[0-9]+)?)(?:,(?=[0-9.]*[1-9])[0-9]+(?:\.[0-9]+)?)*"
)
_QTYS = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:,[0-9]+(?:\.[0-9]+)?)*")
_LIST = {list}
Levels = tuple[tuple[str, ...], tuple[str, ...]]


def _columns(v: Any, path: str) -> Levels:
    """A ``[[price, qty], ...]`` list as its prices and its quantities, validated."""
    if type(v) is list:
        if not v:
            return (), ()
        if set(map(type, v)) == _LIST:
            try:
                ps, qs = zip(*v, strict=False)
                if _PRICES.fullmatch(",".join(ps)) and _QTYS.fullmatch(",".join(qs)):
                    return ps, qs
            except (ValueError, TypeError):
                pass
    got = _levels(v, path)  # names the bad level
    return tuple(p for p, _ in got), tuple(q for _, q in got)


def _levels(v: Any, path: str) -> list[tuple[str, str]]:
    if type(v) is not list:
        raise _field(path, "not a list of [price, qty]")
    out = []
    for j, lv in enumerate(v):
        if type(lv) is not list or len(lv) < 2:
            raise _field(f"{path}[{j}]", "not a [price, qty] pair")
        out.append((_dec(lv[0], f"{path}[{j}][0]", True), _dec(lv[1], f"{path}[{j}][1]", False)))
    return out


class _Capture:
    def __init__(self, src: Source, opts: Options) -> None:
        self.src = src
        self.opts = opts
        self.sink = TradeSink(src, opts)
        self.trade_stream: str | None = None
        self.clock = FundingClock()
        self.tops: dict[str, Book] = {}
        self.not_used: dict[str, int] = {}
        self.not_market = 0
        # depth
        self.book: Book | None = None
        self.depth_symbol: str | None = None
        self.recent: deque[_DiffEntry] = deque(maxlen=RECENT)
        self.synced = False
        self.first = False
        self.snap_id = 0
        self.last_u = 0
        self.waited = 0  # diffs applied only once a snapshot came
        self.first_gap: int | None = None
        self.handlers: dict[str, Handler] = {
            "bookTicker": self.top,
            "depthUpdate": self.diff,
            "snapshot": self.snapshot,
            "trade": self.trade,
            "aggTrade": self.trade,
            "markPriceUpdate": self.mark,
            "forceOrder": self.liquidation,
        }

    # ------------------------------------------------------------------ messages

    def message(self, i: int, ts: int, d: Any, out_ts: list[int], out: list[str]) -> None:
        if type(d) is dict and "data" in d and "stream" in d:
            d = d["data"]
        if type(d) is not dict:
            raise BadRow(None, "the message is not a JSON object")
        e = d.get("e")
        if e is None and "lastUpdateId" in d:
            e = "snapshot"
        handler = self.handlers.get(e)  # type: ignore[arg-type]
        if handler is None:
            self.skip(str(e))
        else:
            handler(i, ts, d, out_ts, out)

    def top(self, i: int, ts: int, d: dict[str, Any], out_ts: list[int], out: list[str]) -> None:
        b, bq, a, aq = d.get("b"), d.get("B"), d.get("a"), d.get("A")
        try:  # the four fields at once; one by one only to name a bad one
            ok = bool(_PRICES.fullmatch(f"{b},{a}") and _QTYS.fullmatch(f"{bq},{aq}"))
            ok = ok and type(b) is type(a) is type(bq) is type(aq) is str
        except TypeError:
            ok = False
        if not ok:
            b, a = _dec(b, "b", True), _dec(a, "a", True)
            bq, aq = _dec(bq, "B", False), _dec(aq, "A", False)
        book = self.tops.get(d.get("s"))  # type: ignore[arg-type]
        if book is None:
            sym = self.symbol(d)
            out_sym = self.opts.out_symbol(sym)
            book = self.tops[sym] = Book(sym_json(out_sym), 1, self.opts.grid(out_sym), self.src)
        book.set_top((b, bq), (a, aq))  # type: ignore[arg-type]
        book.flush(ts, out_ts, out)

    def skip(self, kind: str) -> None:
        self.not_used[kind] = self.not_used.get(kind, 0) + 1

    def symbol(self, d: dict[str, Any]) -> str:
        s = d.get("s")
        if type(s) is not str or not s:
            raise _field("s", f"{s!r} is not a symbol")
        return s

    def trade(self, i: int, ts: int, d: dict[str, Any], out_ts: list[int], out: list[str]) -> None:
        e = d["e"]
        if self.trade_stream is None:
            self.trade_stream = e
        elif e != self.trade_stream:
            self.skip(e)
            return
        x = d.get("X", "MARKET")
        if x != "MARKET":
            self.not_market += 1
            return
        m = d.get("m")
        if type(m) is not bool:
            raise _field("m", f"{m!r} is not true or false")
        p = _dec(d.get("p"), "p", True)
        q = _dec(d.get("q"), "q", True)
        self.sink.emit(ts, self.symbol(d), "sell" if m else "buy", p, q, out_ts, out)

    def mark(self, i: int, ts: int, d: dict[str, Any], out_ts: list[int], out: list[str]) -> None:
        symj = sym_json(self.opts.out_symbol(self.symbol(d)))
        key = "p" if self.opts.price == "mark" else "i"
        px = _dec(d.get(key), key, True) if d.get(key) not in (None, "") else None
        fund = None
        if d.get("r") not in (None, "") and d.get("T"):
            try:
                rate = decimal_str(d["r"], "r") if type(d["r"]) is str else None
            except BadRow:
                rate = None
            if rate is None:
                raise _field("r", f"{d['r']!r} is not a decimal")
            fund = (epoch_to_us(_int(d["T"], "T")), rate)
        self.clock.row(ts, symj, fund, out_ts, out)
        if px is not None:
            out.append(index_line(ts, symj, px))
            out_ts.append(ts)

    def liquidation(
        self, i: int, ts: int, d: dict[str, Any], out_ts: list[int], out: list[str]
    ) -> None:
        o = d.get("o")
        if type(o) is not dict:
            raise _field("o", "not an object")
        side = o.get("S")
        if side not in ("BUY", "SELL"):
            raise _field("o.S", f"{side!r} is not BUY or SELL")
        p = _dec(o.get("ap") or o.get("p"), "o.ap", True)
        q = _dec(o.get("z") or o.get("q"), "o.q", True)
        symj = sym_json(self.opts.out_symbol(self.symbol(o)))
        self.src.liquidation(ts, liquidation_line(ts, symj, side.lower(), p, q))

    # ------------------------------------------------------------------ depth

    def the_book(self, symbol: str | None) -> Book:
        if self.book is None:
            sym = symbol or self.depth_symbol or symbol_from_name(self.src.path).upper()
            out_sym = self.opts.out_symbol(sym)
            self.book = Book(sym_json(out_sym), self.opts.depth, self.opts.grid(out_sym), self.src)
        return self.book

    def snapshot(
        self, i: int, ts: int, d: dict[str, Any], out_ts: list[int], out: list[str]
    ) -> None:
        snap_id = _int(d.get("lastUpdateId"), "lastUpdateId")
        bids, asks = _columns(d.get("bids"), "bids"), _columns(d.get("asks"), "asks")
        book = self.the_book(None)
        book.withdraw()
        book.update_many(True, *bids)
        book.update_many(False, *asks)
        self.synced, self.first, self.snap_id, self.last_u = True, True, snap_id, snap_id
        for entry in list(self.recent):  # the diffs that arrived before it, newer than it
            if not self.synced:
                break
            self.apply(entry, ts, out_ts, out, replay=True)
        book.flush(ts, out_ts, out)

    def diff(self, i: int, ts: int, d: dict[str, Any], out_ts: list[int], out: list[str]) -> None:
        sym = self.symbol(d)
        if self.depth_symbol is None:
            self.depth_symbol = sym
        elif sym != self.depth_symbol:
            raise _field("s", f"depth of a second symbol {sym!r} (the capture's is "
                         f"{self.depth_symbol!r}): one book per capture")  # fmt: skip
        entry = (
            _int(d.get("U"), "U"),
            _int(d.get("u"), "u"),
            _int(d.get("pu"), "pu"),
            _columns(d.get("b"), "b"),
            _columns(d.get("a"), "a"),
            i,
        )
        self.recent.append(entry)
        if self.synced:
            self.apply(entry, ts, out_ts, out, replay=False)
            if self.book is not None:
                self.book.flush(ts, out_ts, out)

    def apply(
        self, entry: _DiffEntry, ts: int, out_ts: list[int], out: list[str], *, replay: bool
    ) -> None:
        first_id, u, pu, bids, asks, i = entry
        if self.first:
            if u < self.snap_id:
                return  # older than the snapshot
            if not (first_id <= self.snap_id <= u or pu == self.snap_id):
                self.gap(i, ts, f"the first update after the snapshot (U={first_id}, "
                         f"pu={pu}) does not follow its lastUpdateId {self.snap_id}",
                         out_ts, out)  # fmt: skip
                return
            self.first = False
        elif pu != self.last_u:
            self.gap(i, ts, f"update pu={pu} is not the previous update's u={self.last_u}",
                     out_ts, out)  # fmt: skip
            return
        book = self.the_book(None)
        book.update_many(True, *bids)
        book.update_many(False, *asks)
        self.last_u = u
        if replay:
            self.waited += 1

    def gap(self, i: int, ts: int, why: str, out_ts: list[int], out: list[str]) -> None:
        src = self.src
        src.gaps += 1
        if not src.skip_bad:
            raise ImportFailed(
                f"{src.path}:{i}: depth gap: {why}; the book is not known from here "
                "(--skip-bad withdraws #market's book until the next snapshot and goes on)"
            )
        if self.first_gap is None:
            self.first_gap = i
        self.synced = False
        book = self.the_book(None)
        book.withdraw()
        book.flush(ts, out_ts, out)

    # ------------------------------------------------------------------ summary

    def notes(self) -> None:
        src = self.src
        self.sink.notes()
        if self.not_market:
            src.note(f"{self.not_market:,} trades not on the market (liquidation, ADL): skipped")
        for kind, n in sorted(self.not_used.items()):
            why = {
                "bookTicker": " (--book top uses them)",
                "depthUpdate": " (--book L uses them)",
                "snapshot": " (--book L uses them)",
                "trade": " (the aggTrade stream came first)",
                "aggTrade": " (the trade stream came first)",
            }.get(kind, "")
            src.note(f"{n:,} {kind} messages not used{why}")
        if src.gaps:
            src.note(
                f"{src.gaps:,} depth gaps (first at line {self.first_gap}): #market's book "
                "withdrawn until the next snapshot"
            )
        if self.opts.depth and not self.opts.top and self.book is None:
            src.note("no depth snapshot in the capture: no book")
        elif self.opts.depth and not self.opts.top and not self.synced and self.recent:
            src.note("the capture ends without a snapshot after its last gap")
        books = list(self.tops.values()) + ([self.book] if self.book is not None else [])
        crossed_note(src, books)


# Quick recognition of the message kinds the options do not use, by their text.
_KINDS = (
    (b'"e":"bookTicker"', "bookTicker"),
    (b'"e":"depthUpdate"', "depthUpdate"),
    (b'"lastUpdateId"', "snapshot"),
)


def read(src: Source, opts: Options) -> Iterator[Batch]:
    cap = _Capture(src, opts)
    use_book = opts.depth > 0 and not opts.top
    unused = tuple(
        (pat, kind)
        for pat, kind in _KINDS
        if (kind == "bookTicker" and not opts.top) or (kind != "bookTicker" and not use_book)
    )
    last = src.last_ts if src.last_ts is not None else -1
    for ln, lines in src.byte_chunks():
        out_ts: list[int] = []
        out: list[str] = []
        for i, line in enumerate(lines, ln):
            sp = line.find(b" ")
            stamp = line[:sp]
            if sp <= 0 or not stamp.isdigit():
                if not line.strip():
                    continue
                src.rows += 1
                src.bad(i, "column 1: expected '<local timestamp ns> <JSON message>'")
                continue
            src.rows += 1
            for pat, kind in unused:
                if pat in line:
                    cap.skip(kind)
                    break
            else:
                ts = int(stamp) // 1000 if len(stamp) == 19 else epoch_to_us(int(stamp), src)
                if ts < last:
                    src.last_ts = last
                    src.back_in_time(i, ts)
                last = ts
                try:
                    d = orjson.loads(line[sp + 1 :])
                except orjson.JSONDecodeError as e:
                    src.bad(i, f"column {sp + 2 + e.pos}: not JSON ({e.msg})")
                    continue
                mark = len(out)
                try:
                    cap.message(i, ts, d, out_ts, out)
                except BadRow as e:
                    del out[mark:], out_ts[mark:]
                    src.bad(i, e)
        if out:
            yield out_ts, out
    if last >= 0:
        src.last_ts = last
    cap.notes()
