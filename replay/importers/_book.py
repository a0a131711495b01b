"""A historical order book -> ``market_level`` commands for the reserved ``#market`` account.

:class:`Book` keeps one symbol's source levels (absolute quantities per price, as L2 data
gives them), and what ``#market`` shows: at most ``depth`` best levels per side. Changes
are collected per batch (one exchange message, or the rows of one timestamp) and
:meth:`Book.flush` emits the difference between what is shown and what should be: a level
whose total changed, a level that entered the top ``depth``, and ``qty "0"`` for a level
that vanished or left the top ``depth``. Only levels in the changed range are examined, so
a flush costs the batch's size, not the book's.

A snapshot (:meth:`Book.replace`) makes the book exactly the given levels: everything else
is removed. With a grid (:mod:`._grid`), source prices round outward onto the tick (buys
down, sells up) and the source levels that land on one grid price are summed; the shown
quantity is that sum rounded down to the lot (a level under one lot is not shown).

Within one flush, removals come first (buys, then sells, best price first), then the other
changes in the same order, so the book never crosses in between. The output depends only
on the input: no set iteration, no clock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from decimal import Decimal
from typing import TypeAlias

from clearsim.replay.importers._common import Source, is_zero, level_line
from clearsim.replay.importers._grid import Grid

__all__ = ["Book"]

_ZERO = Decimal(0)
#: a level's key: a signed exact price (an int scaled by 10**30 without a grid; a Decimal
#: on a grid or beyond 30 decimals); ints and Decimals compare exactly with each other
Key: TypeAlias = Decimal | int
_KEYS = 50_000  # price texts remembered per side
_DIGITS = 30  # decimals of the integer keys of a book without a grid
_SCALE = 10**_DIGITS


class _Side:
    """One side. Keys are signed prices (asks ``+p``, bids ``-p``) so that ascending order
    is best first on both sides."""

    __slots__ = (
        "changed",
        "cut",
        "disp",
        "gtot",
        "keyof",
        "keys",
        "name",
        "shown",
        "sign",
        "src",
        "up",
    )  # fmt: skip

    def __init__(self, name: str, sign: int) -> None:
        self.name = name
        self.sign = sign
        self.up = sign > 0  # a sell level's price rounds up, a buy level's down
        #: grid mode only: source key -> (qty, grid key); grid key -> summed qty
        self.src: dict[Key, tuple[Decimal, Decimal]] = {}
        self.gtot: dict[Key, Decimal] = {}
        #: the levels that could be shown, best first, and their (price, qty) text
        self.keys: list[Key] = []
        self.disp: dict[Key, tuple[str, str]] = {}
        #: what #market shows now
        self.shown: dict[Key, tuple[str, str]] = {}
        #: keys touched since the last flush (a dict: an ordered set)
        self.changed: dict[Key, None] = {}
        #: the key of the worst shown level when the side had ``depth`` levels, else None
        self.cut: Key | None = None
        #: price text -> key: a source repeats its prices; bounded (cleared when full)
        self.keyof: dict[str, Key] = {}

    def key(self, price: str) -> Key:
        """A plain price's key: the exact integer ``price x 10**30`` (int comparisons are
        several times cheaper than Decimal ones), signed; a price with more decimals keeps
        an exact Decimal key, which compares correctly with the integers."""
        k = self.keyof.get(price)
        if k is None:
            if len(self.keyof) >= _KEYS:
                self.keyof.clear()
            dot = price.find(".")
            if dot < 0:
                v: Key = int(price) * _SCALE
            elif len(price) - dot - 1 <= _DIGITS:
                v = int(price[:dot] + price[dot + 1 :]) * 10 ** (_DIGITS - (len(price) - dot - 1))
            else:
                v = Decimal(price).scaleb(_DIGITS)
            k = self.keyof[price] = v if self.sign > 0 else -v
        return k

    def show(self, k: Key, text: tuple[str, str] | None) -> None:
        """Set what could be shown at key ``k`` (None: nothing)."""
        disp = self.disp
        if text is None:
            if k in disp:
                del disp[k]
                keys = self.keys
                del keys[bisect_left(keys, k)]
        else:
            if k not in disp:
                insort(self.keys, k)
            disp[k] = text
        # A key beyond the shown boundary is not a candidate: if the boundary moves out
        # past it, the flush examines the keys between the old and the new boundary.
        cut = self.cut
        if cut is None or k <= cut:
            self.changed[k] = None

    def clear(self) -> None:
        for k in self.disp:
            self.changed[k] = None
        self.src.clear()
        self.gtot.clear()
        self.keys.clear()
        self.disp.clear()


class Book:
    """One symbol's book, shown as ``#market``'s ``depth`` best levels per side."""

    __slots__ = ("asks", "bids", "crossed", "depth", "grid", "src", "symj")

    def __init__(self, symj: str, depth: int, grid: Grid | None, src: Source) -> None:
        self.symj = symj
        self.depth = depth
        self.grid = grid if grid is not None and (grid.tick or grid.lot) else None
        self.src = src
        self.bids = _Side("buy", -1)
        self.asks = _Side("sell", 1)
        #: flushes after which the shown book was crossed (best bid >= best ask)
        self.crossed = 0

    # ------------------------------------------------------------------ changes

    def update(self, buy: bool, price: str, qty: str) -> None:
        """One source level: its new absolute quantity (``0`` removes it). ``price`` and
        ``qty`` are validated plain decimals, the price above zero."""
        side = self.bids if buy else self.asks
        grid = self.grid
        if grid is not None:
            self._update_grid(grid, side, price, qty)
            return
        k = side.keyof.get(price)
        if k is None:
            k = side.key(price)
        side.show(k, (price, qty) if qty.strip("0.") else None)

    def update_many(self, buy: bool, prices: Iterable[str], qtys: Iterable[str]) -> None:
        """:meth:`update` for each (price, qty), the plain case inlined (a depth message
        brings hundreds)."""
        side = self.bids if buy else self.asks
        grid = self.grid
        if grid is not None:
            for p, q in zip(prices, qtys, strict=True):
                self._update_grid(grid, side, p, q)
            return
        disp, keys, changed, keyof, cut = side.disp, side.keys, side.changed, side.keyof, side.cut
        for p, q in zip(prices, qtys, strict=True):
            k = keyof.get(p)
            if k is None:
                k = side.key(p)
            if q.strip("0."):
                if k not in disp:
                    insort(keys, k)
                disp[k] = (p, q)
            elif k in disp:
                del disp[k]
                del keys[bisect_left(keys, k)]
            else:
                continue
            if cut is None or k <= cut:  # see _Side.show
                changed[k] = None

    def _update_grid(self, grid: Grid, side: _Side, price: str, qty: str) -> None:
        d = Decimal(price)
        sk = d if side.sign > 0 else -d
        q = Decimal(qty)
        old = side.src.get(sk)
        if old is None:
            if q == 0:
                return
            g = grid.price(d, side.up)
            if g != d:
                self.src.rounded += 1
            gk = g if side.sign > 0 else -g
            oq = _ZERO
        else:
            oq, gk = old
            if q == oq:
                return
            if gk != sk:
                self.src.rounded += 1
        if q == 0:
            del side.src[sk]
        else:
            side.src[sk] = (q, gk)
        tot = side.gtot.get(gk, _ZERO) + q - oq
        if tot == 0:
            side.gtot.pop(gk, None)
        else:
            side.gtot[gk] = tot
        shown = grid.qty(tot)
        if shown > 0:
            side.show(gk, (grid.fmt_price(abs(gk)), grid.fmt_qty(shown)))
        else:
            side.show(gk, None)

    def replace(self, bids: Iterable[tuple[str, str]], asks: Iterable[tuple[str, str]]) -> None:
        """A snapshot: the book becomes exactly these levels (zero quantities ignored)."""
        self.bids.clear()
        self.asks.clear()
        for p, q in bids:
            self.update(True, p, q)
        for p, q in asks:
            self.update(False, p, q)

    def set_top(self, bid: tuple[str, str], ask: tuple[str, str]) -> None:
        """:meth:`replace` with one level per side (a best bid/ask stream), cheaper when
        the price stays and only the quantity moves."""
        if self.grid is None:
            for side, (p, q) in ((self.bids, bid), (self.asks, ask)):
                disp = side.disp
                if len(disp) == 1:
                    k = side.key(p)
                    if k in disp:
                        if disp[k][1] != q:
                            side.show(k, None if is_zero(q) else (p, q))
                        continue
                side.clear()
                if not is_zero(q):
                    side.show(side.key(p), (p, q))
            return
        self.replace([bid], [ask])

    def withdraw(self) -> None:
        """Take all of ``#market``'s liquidity away (the book is not known any more)."""
        self.bids.clear()
        self.asks.clear()

    # ------------------------------------------------------------------ output

    def flush(self, ts: int, out_ts: list[int], out: list[str]) -> int:
        """Emit, at ``ts``, what changed in the shown book since the last flush; returns the
        number of commands emitted."""
        if not (self.bids.changed or self.asks.changed):
            return 0
        removals: list[str] = []
        sets: list[str] = []
        # a side without a change inside its boundary cannot have moved the boundary
        if self.bids.changed:
            self._flush_side(self.bids, ts, removals, sets)
        if self.asks.changed:
            self._flush_side(self.asks, ts, removals, sets)
        lines = removals + sets
        out.extend(lines)
        out_ts.extend([ts] * len(lines))
        b, a = self.bids.keys, self.asks.keys
        if b and a and lines and -b[0] >= a[0]:
            self.crossed += 1
        return len(lines)

    def _flush_side(self, s: _Side, ts: int, removals: list[str], sets: list[str]) -> None:
        keys, depth = s.keys, self.depth
        n = len(keys)
        new_cut = keys[depth - 1] if n >= depth else None
        cand = s.changed
        old_cut = s.cut
        if old_cut != new_cut:
            # keys between the old and the new boundary changed status without changing
            lo = bisect_right(keys, old_cut) if old_cut is not None else n
            hi = bisect_right(keys, new_cut) if new_cut is not None else n
            if lo > hi:
                lo, hi = hi, lo
            for k in keys[lo:hi]:
                cand[k] = None
        s.cut = new_cut
        if not cand:
            return
        shown, disp, symj, name = s.shown, s.disp, self.symj, s.name
        for k in sorted(cand):
            want = disp.get(k) if new_cut is None or k <= new_cut else None
            have = shown.get(k)
            if want == have:
                continue
            if want is not None:
                shown[k] = want
                sets.append(level_line(ts, symj, name, want[0], want[1]))
            elif have is not None:  # always, as want != have: shown, no longer wanted
                del shown[k]
                removals.append(level_line(ts, symj, name, have[0], "0"))
        cand.clear()

    def shown_levels(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """What ``#market`` shows, best first (for tests and checks)."""
        return (
            [self.bids.shown[k] for k in sorted(self.bids.shown)],
            [self.asks.shown[k] for k in sorted(self.asks.shown)],
        )
