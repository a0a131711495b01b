"""The units every layer shares: one definition of each constant.

Prices are integer ticks, quantities integer lots, money integer atoms, rates integer ppm
(DESIGN §3). The log stores integers in 64 bits, so anything the engine records is bounded
by :data:`INT64_MAX`; timestamps (integer µs since the epoch) by :data:`MAX_TS`, which
leaves headroom for the clock arithmetic of funding and clawback schedules.
"""

from __future__ import annotations

from typing import Final

#: Parts per million: rates, fees and ratios are integers scaled by this.
PPM: Final = 1_000_000

#: Microseconds per second: the log's clock is integer µs.
US_PER_S: Final = 1_000_000

#: The largest integer a log record may carry (JSON integers are read as signed 64-bit).
INT64_MAX: Final = (1 << 63) - 1

#: The largest price, in ticks: prices, marks and liquidation thresholds live in [1, this],
#: which keeps a position's value inside 64 bits for any position a risk tier allows.
MAX_PRICE_TICKS: Final = 10**15

#: At most this many funding rounds may fall due at once; a command further ahead is
#: refused (the engine pays each round, so an unbounded jump would never return).
MAX_FUNDING_ROUNDS: Final = 100_000

#: The furthest a command may move a running clock in one step (10 years of µs): a ``ts``
#: in nanoseconds or with a digit too many is refused instead of ending the replay.
MAX_CLOCK_JUMP: Final = 10 * 366 * 86_400 * US_PER_S

#: The largest accepted ``ts`` (µs): schedules add an interval to it and stay in 64 bits.
MAX_TS: Final = 1 << 62
