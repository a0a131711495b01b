"""Who arrives and when: the population's accounts and their arrival times.

Each account's traits (side, leverage, notional) are drawn from the population stream in
index order by :func:`draws`, the same draws whatever the arrivals, so the n-th account is
the same account under ``"start"``, ``poisson`` and ``open_interest`` (its entry time under
``"start"`` is drawn in its turn and unused by the others). The times:

- :func:`start_entries` — ``"start"``: uniform over the first ``entry_window_s``, all drawn
  up front and sorted by (ts, n);
- :func:`poisson_entries` — one after another, exponential gaps (:func:`.sampling.exp_gap`)
  from the arrivals stream, from the window's start until its end or the pool runs out;
- :func:`check_times` — ``open_interest``: the times the generator looks at the
  population's open interest (and lets accounts in while it is below the target).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Final, NamedTuple

from clearsim.events.units import PPM, US_PER_S
from clearsim.replay.scenarios.sampling import SizeSampler, exp_gap, rng

if TYPE_CHECKING:
    from clearsim.replay.scenarios.model import (
        OpenInterestArrivals,
        PoissonArrivals,
        Scenario,
    )

__all__ = ["ARRIVALS", "POPULATION", "Entry", "check_times", "draws", "poisson_entries"]

#: Stream numbers of the seeded generators (the price path's is 2, in :mod:`.generate`);
#: a new stream never shifts the others' draws.
POPULATION: Final = 1
ARRIVALS: Final = 3


class Entry(NamedTuple):
    """One account's arrival: when, its index, id and traits."""

    ts: int
    n: int
    account: str
    long: bool
    leverage: int
    notional: int  # atoms


def draws(sc: Scenario, seed: int) -> Iterator[Entry]:
    """Every account in index order, with its ``"start"`` entry time."""
    pop = sc.population
    r = rng(seed, POPULATION)
    window_us = pop.entry_window_s * US_PER_S
    lo, hi = pop.leverage_min, pop.leverage_max
    sizes = SizeSampler(pop.size_min, pop.size_max, pop.size_dist)
    for n, acct in enumerate(sc.population_ids()):
        is_long = r.randrange(PPM) < pop.long_ppm
        lev = r.randrange(lo, hi + 1)
        if pop.leverage_dist == "skewed":
            lev = min(lev, r.randrange(lo, hi + 1))
        size = sizes.draw(r)
        ts = sc.start_ts + 1 + r.randrange(window_us)
        yield Entry(ts, n, acct, is_long, lev, size)


def start_entries(sc: Scenario, seed: int) -> list[Entry]:
    """``"start"``: every account, at its uniform time in the entry window, in ts order."""
    return sorted(draws(sc, seed), key=lambda e: (e.ts, e.n))


def poisson_entries(
    sc: Scenario, seed: int, a: PoissonArrivals, end: int | None
) -> Iterator[Entry]:
    """Accounts in index order at Poisson times from ``a.start_ts`` (default the run's
    start), while at or before ``end``."""
    r = rng(seed, ARRIVALS)
    num, den = a.mean_gap_us
    t = sc.start_ts if a.start_ts is None else a.start_ts
    for e in draws(sc, seed):
        t += exp_gap(r, num, den)
        if end is not None and t > end:
            return
        yield e._replace(ts=t)


def check_times(sc: Scenario, a: OpenInterestArrivals, end: int | None) -> Iterator[int]:
    """``open_interest``: every ``check_s`` from ``a.start_ts`` (default the run's start),
    while at or before ``end`` (None: until the generator stops asking)."""
    t = sc.start_ts if a.start_ts is None else a.start_ts
    step = a.check_s * US_PER_S
    while end is None or t <= end:
        yield t
        t += step
