"""An instrument's tick and lot as the importers round to them (``--tick-size``, ``--config``).

The engine refuses a price off its tick grid; historical data does not always sit on the
grid the simulated instrument uses (a coarser tick, a different venue). The importer moves
such prices onto the grid, never inward: a resting buy level rounds down and a resting sell
level up (the book never crosses because of the rounding), and an aggressive order's limit
rounds the other way (a buy up, a sell down) so that it still reaches the level it traded
against. Quantities round down to the lot; a level or trade that rounds to nothing is
dropped. Exact :class:`decimal.Decimal` arithmetic; each rounding is counted by the caller.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path

from clearsim.replay.importers._common import BadRow, ImportFailed, decimal_str

__all__ = ["Grid", "GridTable", "grid_table"]

_CTX = decimal.Context(prec=60, traps=[decimal.InvalidOperation, decimal.DivisionByZero])


def _step(text: str, what: str) -> Decimal:
    try:
        s = decimal_str(text, what)
    except BadRow:
        raise ImportFailed(f"--{what} {text!r}: not a decimal") from None
    d = Decimal(s)
    if d <= 0:
        raise ImportFailed(f"--{what} {text!r}: must be above zero")
    return d


def _decimals(d: Decimal) -> int:
    exp = d.normalize().as_tuple().exponent
    if not isinstance(exp, int):  # "n", "N" or "F": _step lets only finite decimals through
        raise ImportFailed(f"{d}: not a finite decimal")
    return max(0, -exp)


class Grid:
    """Tick and lot of one instrument (either may be unknown: that side is not rounded)."""

    __slots__ = ("_fast", "_lot_q", "_tick_q", "lot", "tick")

    def __init__(self, tick: Decimal | None, lot: Decimal | None) -> None:
        self.tick = tick
        self.lot = lot
        self._tick_q = Decimal(1).scaleb(-_decimals(tick)) if tick is not None else None
        self._lot_q = Decimal(1).scaleb(-_decimals(lot)) if lot is not None else None
        # A power-of-ten tick (0.01): a price is on it when it has no more decimals than the
        # tick, a test on the text alone; other ticks (0.5) need the division.
        self._fast = (
            _decimals(tick) if tick is not None and tick == self._tick_q and tick <= 1 else None
        )

    def __repr__(self) -> str:
        return f"Grid(tick={self.tick}, lot={self.lot})"

    def price_text(self, s: str, up: bool) -> tuple[str, bool]:
        """A plain price string on the grid: ``(text, moved)``; the text unchanged when the
        price is already on it."""
        if self.tick is None:
            return s, False
        if self._fast is not None:
            dot = s.find(".")
            if dot < 0 or len(s) - dot - 1 <= self._fast:
                return s, False
        d = Decimal(s)
        g = self.price(d, up)
        if g == d:
            return s, False
        return self.fmt_price(g), True

    def price(self, d: Decimal, up: bool) -> Decimal:
        """``d`` rounded onto the tick grid, up or down (itself when on the grid)."""
        tick = self.tick
        if tick is None:
            return d
        n = _CTX.divide(d, tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
        return _CTX.multiply(n, tick)

    def fmt_price(self, d: Decimal) -> str:
        """A grid price with exactly the tick's decimals (tick 0.5 -> ``100.0``)."""
        if self._tick_q is None:
            return format(d, "f")
        return format(d.quantize(self._tick_q, context=_CTX), "f")

    def qty(self, d: Decimal) -> Decimal:
        """``d`` rounded down to a whole number of lots."""
        lot = self.lot
        if lot is None:
            return d
        n = _CTX.divide(d, lot).to_integral_value(rounding=ROUND_FLOOR)
        return _CTX.multiply(n, lot)

    def fmt_qty(self, d: Decimal) -> str:
        if self._lot_q is None:
            return "0" if d == 0 else format(d.normalize(), "f")
        return format(d.quantize(self._lot_q, context=_CTX), "f")

    def qty_text(self, s: str) -> tuple[str | None, bool]:
        """A plain quantity string rounded down to the lot: ``(text or None when it rounds
        to nothing, moved)``."""
        if self.lot is None:
            return s, False
        d = Decimal(s)
        q = self.qty(d)
        if q == 0:
            return None, True
        if q == d:
            return s, False
        return self.fmt_qty(q), True


#: output symbol -> its grid (None: nothing to round to)
GridTable = Callable[[str], "Grid | None"]


def _none(symbol: str) -> Grid | None:
    return None


def grid_table(
    tick_size: str | None = None, lot_size: str | None = None, config: str | None = None
) -> GridTable:
    """The grids to round to: one ``--tick-size``/``--lot-size`` for every symbol, or each
    instrument's own from a config file (a symbol the config lacks is an error)."""
    if config is not None and (tick_size is not None or lot_size is not None):
        raise ImportFailed("give --config or --tick-size/--lot-size, not both")
    if config is not None:
        from clearsim.clearing import Config

        if not Path(config).exists():
            raise ImportFailed(f"{config}: no such file")
        cfg = Config.from_toml(config)
        grids = {s.symbol: Grid(Decimal(s.tick_size), Decimal(s.lot_size)) for s in cfg.instruments}

        def from_config(symbol: str) -> Grid | None:
            g = grids.get(symbol)
            if g is None:
                raise ImportFailed(
                    f"{config}: no instrument {symbol!r} (instruments: "
                    f"{', '.join(sorted(grids)) or 'none'}; give --symbol to name it)"
                )
            return g

        return from_config
    if tick_size is None and lot_size is None:
        return _none
    one = Grid(
        _step(tick_size, "tick-size") if tick_size is not None else None,
        _step(lot_size, "lot-size") if lot_size is not None else None,
    )
    return lambda symbol: one
