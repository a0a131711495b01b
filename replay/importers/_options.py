"""The import options, parsed once: what to take from the data and how to shape it.

- ``book``: ``none`` (no liquidity), ``top`` (the best bid and ask: a capture's
  ``bookTicker`` stream, any other source's best level), or ``L`` (the ``L`` best levels per
  side of the full book) as ``#market`` levels.
- ``trades``: ``prices`` (each trade's price as an ``index_price``), ``orders`` (each trade as
  a ``#market`` IOC order: the aggressor's side, the trade price as its limit) or ``both``.
  The default is ``prices`` without a book and ``orders`` with one: trades become orders
  only when the user asks for liquidity.
- ``grids``: the tick/lot each output symbol is rounded to (:mod:`._grid`).
"""

from __future__ import annotations

import enum

import attrs

from clearsim.replay.importers._common import ImportFailed
from clearsim.replay.importers._grid import Grid, GridTable, grid_table

__all__ = ["Ids", "Options", "TradesAs", "parse_book"]


class TradesAs(enum.StrEnum):
    PRICES = "prices"
    ORDERS = "orders"
    BOTH = "both"


def parse_book(text: str | int | None) -> tuple[int, bool]:
    """``none`` -> (0, False); ``top`` -> (1, True); ``L`` -> (L, False)."""
    if text is None or text == "none":
        return 0, False
    if text == "top":
        return 1, True
    s = str(text).strip()
    if not (s.isdigit() and s.isascii()) or not 1 <= int(s) <= 100_000:
        raise ImportFailed(f"--book {text!r}: expected none, top or a number of levels (1..100000)")
    return int(s), False


class Ids:
    """The import's one order-id counter (``t1``, ``t2``, ...): unique across the inputs."""

    __slots__ = ("next_id",)

    def __init__(self) -> None:
        self.next_id = 1

    def take(self, n: int = 1) -> int:
        """Reserve ``n`` ids; the first of them."""
        first = self.next_id
        self.next_id += n
        return first


@attrs.define
class Options:
    symbol: str | None = None
    depth: int = 0
    top: bool = False
    trades: TradesAs = TradesAs.PRICES
    price: str = "index"
    path: str = "close"
    grids: GridTable = attrs.field(factory=grid_table)
    #: one counter for the whole import: order ids are unique across inputs
    ids: Ids = attrs.field(factory=Ids)
    _grid_cache: dict[str, Grid | None] = attrs.field(factory=dict)

    def grid(self, symbol: str) -> Grid | None:
        try:
            return self._grid_cache[symbol]
        except KeyError:
            g = self._grid_cache[symbol] = self.grids(symbol)
            return g

    def out_symbol(self, source_symbol: str) -> str:
        return self.symbol or source_symbol

    @property
    def orders(self) -> bool:
        return self.trades is not TradesAs.PRICES

    @property
    def prices(self) -> bool:
        return self.trades is not TradesAs.ORDERS
