"""Circuit breaker: the largest mark move within a sliding time window, in O(1) amortised.

Two monotonic deques hold the window's running maximum and minimum, so each mark update
costs O(1) amortised however many updates the window holds. A move of more than
``breaker_ppm`` from either extreme halts the instrument (DESIGN §6).
"""

from __future__ import annotations

from collections import deque

from clearsim.events.units import PPM


class Breaker:
    __slots__ = ("_max", "_min")

    def __init__(self) -> None:
        self._max: deque[tuple[int, int]] = deque()  # (ts, price), prices decreasing
        self._min: deque[tuple[int, int]] = deque()  # (ts, price), prices increasing

    def observe(self, ts: int, price: int, window_us: int) -> tuple[int, int]:
        """Add a mark; return (reference price, move in ppm) for the largest move from an
        extreme of the window (the new mark included) to the new mark."""
        hi, lo = self._max, self._min
        while hi and hi[-1][1] <= price:
            hi.pop()
        hi.append((ts, price))
        while lo and lo[-1][1] >= price:
            lo.pop()
        lo.append((ts, price))
        start = ts - window_us
        while hi[0][0] < start:
            hi.popleft()
        while lo[0][0] < start:
            lo.popleft()
        top, bottom = hi[0][1], lo[0][1]
        down = (top - price) * PPM // top
        up = (price - bottom) * PPM // bottom
        return (top, down) if down >= up else (bottom, up)

    def reset(self) -> None:
        self._max.clear()
        self._min.clear()
