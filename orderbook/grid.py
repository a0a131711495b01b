"""The price and quantity grid of an instrument: decimal strings <-> integer ticks and lots.

This module owns the one place where decimal text meets the book's integers. Parsing is
exact (``decimal.Decimal`` turned into an integer ratio, then integer arithmetic only; never
a float) and strict: a value off the grid is an error, never rounded. Formatting is exact
too: ``fmt_price(ticks)`` is ``ticks x tick_size`` written with exactly the grid's number of
decimals (tick "0.1" -> "50000.0", lot "0.001" -> "0.500"), no exponent.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from clearsim.events.errors import ClearsimError
from clearsim.events.units import INT64_MAX, MAX_PRICE_TICKS

__all__ = ["Grid", "GridError"]

# Plain decimal notation only: no exponent (an exponent of 10**9 would make a huge integer),
# no whitespace, no underscores (both of which Decimal() would accept).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_MAX_LEN = 64  # longer text is refused before it is parsed
_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)?").fullmatch  # unsigned, digits on both sides


class GridError(ClearsimError, ValueError):
    """A value that is not on the grid; ``reason`` is a short human-readable phrase."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _ratio(text: object, what: str) -> tuple[int, int]:
    """Exact ``(numerator, denominator > 0)`` of a decimal string.

    Only ``str`` is accepted: an int would be ambiguous (ticks or units?) and a float is
    never exact, so both are refused rather than guessed at.
    """
    if not isinstance(text, str) or len(text) > _MAX_LEN or not _DECIMAL.fullmatch(text):
        raise GridError(f"{what} is not a decimal string")
    try:
        return Decimal(text).as_integer_ratio()
    except (InvalidOperation, ValueError) as e:  # pragma: no cover - the regex prevents it
        raise GridError(f"{what} is not a decimal string") from e


def _step(text: str, what: str) -> tuple[int, int, int, int]:
    """A tick or lot size: (num, den, decimals, size x 10**decimals)."""
    num, den = _ratio(text, what)
    if num <= 0:
        raise GridError(f"{what} must be positive")
    # Decimals = the fewest that write the size exactly: normalize() drops trailing zeros.
    exp = Decimal(num) / Decimal(den)
    decimals = max(0, -int(exp.normalize().as_tuple().exponent))
    scaled = num * 10**decimals
    if scaled % den:  # pragma: no cover - a decimal input always divides out
        raise GridError(f"{what} is not a finite decimal")
    return num, den, decimals, scaled // den


class Grid:
    """Tick and lot sizes of one instrument, e.g. ``Grid("0.1", "0.001")``."""

    __slots__ = ("_lot", "_tick", "lot_size", "price_decimals", "qty_decimals", "tick_size")

    def __init__(self, tick_size: str, lot_size: str) -> None:
        self._tick = _step(tick_size, "tick size")
        self._lot = _step(lot_size, "lot size")
        self.price_decimals = self._tick[2]
        self.qty_decimals = self._lot[2]
        self.tick_size = _fmt(1, self._tick)
        self.lot_size = _fmt(1, self._lot)

    def __repr__(self) -> str:
        return f"Grid(tick_size={self.tick_size!r}, lot_size={self.lot_size!r})"

    def price(self, text: str) -> int:
        """Decimal price -> ticks. Raises GridError for a non-positive or off-grid price, or
        one above :data:`~clearsim.events.units.MAX_PRICE_TICKS`."""
        ticks = _steps(text, self._tick, "price", "not a positive price", "price off the tick grid")
        if ticks > MAX_PRICE_TICKS:
            raise GridError(f"price out of range (more than {MAX_PRICE_TICKS} ticks)")
        return ticks

    def qty(self, text: str) -> int:
        """Decimal quantity -> lots. Raises GridError unless a positive whole number of lots."""
        return _steps(
            text,
            self._lot,
            "quantity",
            "quantity must be positive",
            "quantity not a whole number of lots",
        )

    def fmt_price(self, ticks: int) -> str:
        """Ticks -> decimal string with the grid's decimals (negative allowed)."""
        return _fmt(ticks, self._tick)

    def fmt_qty(self, lots: int) -> str:
        """Lots -> decimal string with the grid's decimals (negative allowed: positions)."""
        return _fmt(lots, self._lot)


def _steps(
    text: str, step: tuple[int, int, int, int], what: str, not_positive: str, off_grid: str
) -> int:
    """``text / step`` as an exact whole number of steps, else GridError. The sign is
    checked first, so "-0.05" is reported as not positive rather than off the grid."""
    if type(text) is str and len(text) <= _MAX_LEN and _PLAIN(text) is not None:
        # The common form ("50012.3"): its exact ratio without Decimal, same result.
        whole, _, frac = text.partition(".")
        num, den = int(whole + frac), int(10 ** len(frac))
    else:
        num, den = _ratio(text, what)
    if num <= 0:
        raise GridError(not_positive)
    # text / step = (num / den) / (snum / sden) = (num * sden) / (den * snum)
    top = num * step[1]
    bottom = den * step[0]
    if top % bottom:
        raise GridError(off_grid)
    steps = top // bottom
    if steps > INT64_MAX:
        # The log stores 64-bit integers: a larger price or quantity could never be recorded.
        raise GridError(f"{what} out of range")
    return steps


def _fmt(units: int, step: tuple[int, int, int, int]) -> str:
    decimals, scaled = step[2], step[3]
    v = units * scaled  # the value x 10**decimals, an exact integer
    sign = "-" if v < 0 else ""
    v = abs(v)
    if not decimals:
        return f"{sign}{v}"
    whole, frac = divmod(v, 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"
