"""The time series the log report plots that no projection keeps, folded from events.

The projections (:mod:`replay.projections`) keep the fund's timeline, the ADL and clawback
ledgers, the cascades and the story's totals; a report also needs the market and the
waterfall *over time*: :class:`SeriesFold` keeps, per symbol, every index price, mark price
and trade price (ts and ticks, in ``array('q')``: 16 bytes a point), the liquidation steps
per minute by waterfall step, and every system-debt write-off. It reads event fields only,
so it rides on the same pass over the log as :class:`.story.Story`.

:func:`envelope` thins a long series for plotting without hiding its extremes: per time
bucket the lowest and the highest point, in time order.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Sequence

import attrs

from clearsim.events.types import Event, Fill, IndexPrice, LiquidationStep, MarkPrice, SystemDebt

__all__ = ["MINUTE_US", "DebtRow", "PriceSeries", "SeriesFold", "envelope"]

MINUTE_US = 60_000_000


@attrs.define
class PriceSeries:
    """(ts, ticks) points of one price of one symbol, in log order."""

    ts: array[int] = attrs.field(factory=lambda: array("q"))
    ticks: array[int] = attrs.field(factory=lambda: array("q"))

    def add(self, ts: int, ticks: int) -> None:
        self.ts.append(ts)
        self.ticks.append(ticks)

    def __len__(self) -> int:
        return len(self.ts)


@attrs.frozen
class DebtRow:
    """One system-debt write-off and the system's debt after it (atoms)."""

    seq: int
    ts: int
    account: str
    amount: int
    total: int
    reason: str


class SeriesFold:
    """Index, mark and trade prices per symbol, liquidation steps per minute by step, and
    the system-debt write-offs, fed one event at a time (:meth:`feed`)."""

    def __init__(self) -> None:
        self.index: dict[str, PriceSeries] = {}
        self.mark: dict[str, PriceSeries] = {}
        self.trades: dict[str, PriceSeries] = {}
        #: (minute start ts, step name) -> liquidation steps run in that minute
        self.steps_per_minute: Counter[tuple[int, str]] = Counter()
        self.debt: list[DebtRow] = []
        self.debt_total = 0

    @staticmethod
    def _series(table: dict[str, PriceSeries], symbol: str) -> PriceSeries:
        s = table.get(symbol)
        if s is None:
            s = table[symbol] = PriceSeries()
        return s

    def feed(self, ev: Event) -> None:
        t = type(ev)
        if t is Fill or t is IndexPrice or t is MarkPrice:
            if not isinstance(ev, Fill | IndexPrice | MarkPrice):  # a bug, not input
                raise TypeError(f"expected a price event, got {type(ev).__name__}")
            table = self.trades if t is Fill else self.index if t is IndexPrice else self.mark
            self._series(table, ev.symbol).add(ev.ts, ev.price)
        elif t is LiquidationStep:
            if not isinstance(ev, LiquidationStep):  # dispatch by type: a bug, not input
                raise TypeError(f"expected LiquidationStep, got {type(ev).__name__}")
            self.steps_per_minute[ev.ts - ev.ts % MINUTE_US, ev.step] += 1
        elif t is SystemDebt:
            if not isinstance(ev, SystemDebt):  # dispatch by type: a bug, not input
                raise TypeError(f"expected SystemDebt, got {type(ev).__name__}")
            self.debt_total += ev.amount
            self.debt.append(
                DebtRow(ev.seq, ev.ts, ev.account, ev.amount, self.debt_total, ev.reason)
            )


def envelope(ts: Sequence[int], values: Sequence[int], max_points: int) -> list[int]:
    """Indexes of the points to plot: all of them when there are at most ``max_points``,
    else per equal time bucket (``max_points // 2`` of them) the lowest and the highest
    point, in time order, so a thinned line keeps every bucket's extremes."""
    n = len(ts)
    if n <= max_points:
        return list(range(n))
    buckets = max(1, max_points // 2)
    t0, t1 = ts[0], ts[-1]
    width = max(1, -(-(t1 - t0 + 1) // buckets))
    out: list[int] = []
    bucket = -1
    lo = hi = 0
    for i in range(n):
        b = (ts[i] - t0) // width
        if b != bucket:
            if bucket >= 0:
                out.extend(sorted({lo, hi}))
            bucket, lo, hi = b, i, i
            continue
        v = values[i]
        if v < values[lo]:
            lo = i
        if v > values[hi]:
            hi = i
    if bucket >= 0:
        out.extend(sorted({lo, hi}))
    return out
