"""Mark price policies (DESIGN §5): ``oracle``, ``mid`` and Binance's ``median``.

``oracle``: the mark is the last index price. ``mid``: the book's mid (rounded down to a
tick) whenever both sides are present. ``median``: the median of
``index x (1 + last funding rate x time left in the interval)``, ``index + moving average of
(mid - index)`` and the last trade; with fewer than three of them, the index stands in.
"""

from __future__ import annotations

from collections import deque

from clearsim.events.units import PPM


def median3(a: int, b: int, c: int) -> int:
    return max(min(a, b), min(max(a, b), c))


def funding_basis_price(index: int, last_rate_ppm: int, left_us: int, interval_us: int) -> int:
    """``index x (1 + rate x left / interval)``, truncated toward the index."""
    if interval_us <= 0:
        left_us, interval_us = 1, 1
    num = index * last_rate_ppm * left_us
    den = PPM * interval_us
    adj = abs(num) // den
    return index + (adj if num >= 0 else -adj)


def median_mark(
    index: int,
    last_rate_ppm: int,
    left_us: int,
    interval_us: int,
    basis: deque[int],
    last_trade: int | None,
) -> int:
    p1 = funding_basis_price(index, last_rate_ppm, left_us, interval_us)
    p2 = index + (sum(basis) // len(basis) if basis else 0)
    p3 = last_trade if last_trade is not None else index
    return max(1, median3(p1, p2, p3))
