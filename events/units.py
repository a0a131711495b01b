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

#: The largest accepted ``ts`` (µs): schedules add an interval to it and stay in 64 bits.
MAX_TS: Final = 1 << 62
