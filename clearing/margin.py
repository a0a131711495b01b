"""Margin arithmetic: position value and notional, risk tiers, IM/MM, and liquidation prices.

All integer. Value is what a position is worth at a price in collateral atoms (the quote
balance already holds the entry cost, DESIGN §4); notional is its size for the tiers.
Requirements round up, equity-side values round down (in the exchange's favour).

Liquidation price: the predicate ``E(m) < MM(m)`` (``<=`` with ``liquidate_at_equal``) is
monotone in the mark for a single position (a long gets worse as the mark falls, a short as
it rises), so the threshold is found exactly with the integer predicate: a closed-form guess
from the current tier, then a galloping search that corrects it across tier boundaries.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

from clearsim.clearing.config import InstrumentSpec, Tier
from clearsim.clearing.rounding import ceil_div, ppm_up
from clearsim.events.units import MAX_PRICE_TICKS, PPM

#: Prices are searched in [1, MAX_PRICE] ticks.
MAX_PRICE = MAX_PRICE_TICKS


def value(spec: InstrumentSpec, q: int, price: int) -> int:
    """Atoms a position of ``q`` lots is worth at ``price`` ticks (floor for inverse)."""
    if spec.inverse:
        return (-q * spec.k) // price
    return q * price * spec.k


def notional(spec: InstrumentSpec, q: int, price: int) -> int:
    """Absolute size in atoms used for tiers and requirements (ceil for inverse)."""
    if spec.inverse:
        return ceil_div(abs(q) * spec.k, price)
    return abs(q) * price * spec.k


def tier_for(spec: InstrumentSpec, n: int) -> Tier:
    """The tier whose range holds notional ``n``; beyond the last tier, the last tier."""
    tiers = spec.tiers
    i = bisect_left(spec.tier_maxes, n)
    return tiers[i] if i < len(tiers) else tiers[-1]


def maintenance(spec: InstrumentSpec, n: int) -> int:
    """Maintenance margin ``N x mmr - cum`` for notional ``n`` (rounded up)."""
    t = tier_for(spec, n)
    return ppm_up(n, t.mmr_ppm) - t.cum


def initial(spec: InstrumentSpec, n: int) -> int:
    """Initial margin ``N x imr`` for notional ``n`` (rounded up)."""
    t = tier_for(spec, n)
    return ppm_up(n, t.imr_ppm)


def liquidatable_at(
    spec: InstrumentSpec, q: int, base_equity: int, base_mm: int, m: int, at_equal: bool = False
) -> bool:
    """Would the account be below maintenance with this position marked at ``m``?

    ``base_equity`` and ``base_mm`` are the account's cash plus the value and maintenance of
    its other positions (held at their own marks). ``at_equal``: ``E <= MM`` liquidates too
    (``waterfall.liquidate_at_equal``; the same test as ``WaterfallConfig.liquidatable``).
    """
    e = base_equity + value(spec, q, m)
    mm = base_mm + maintenance(spec, notional(spec, q, m))
    if e < mm:
        return True
    return at_equal and e == mm and mm > 0


def liquidation_price(
    spec: InstrumentSpec,
    q: int,
    base_equity: int,
    base_mm: int,
    hint: int | None = None,
    at_equal: bool = False,
) -> int | None:
    """The mark at which the position becomes liquidatable, or None if no mark does.

    For a long: the highest mark ``m`` with ``E(m) < MM(m)`` (liquidated when the mark falls
    to ``m`` or below). For a short: the lowest such mark (liquidated at ``m`` or above).
    """
    if q == 0:
        return None
    guess = _guess(spec, q, base_equity - base_mm, hint)

    def pred(m: int) -> bool:
        return liquidatable_at(spec, q, base_equity, base_mm, m, at_equal)

    if q > 0:
        return _last_true(pred, guess)
    return _first_true(pred, guess)


def _guess(spec: InstrumentSpec, q: int, cushion: int, hint: int | None) -> int:
    """Closed-form threshold for a linear position in the tier at ``hint`` (a starting point)."""
    if spec.inverse:
        return max(1, hint or 1)
    # Solve the threshold in each tier and keep the one whose notional range holds its own
    # answer: exact but for rounding, so the search below checks two marks and stops.
    g = hint or 1
    lo_notional = 0
    for t in spec.tiers:
        c = cushion + t.cum
        if q > 0:
            g = (-c * PPM - 1) // (q * spec.k * (PPM - t.mmr_ppm))
        else:
            g = (c * PPM) // (-q * spec.k * (PPM + t.mmr_ppm)) + 1
        if g >= 1 and lo_notional < notional(spec, q, g) <= t.max_notional:
            break
        lo_notional = t.max_notional
    return min(max(g, 1), MAX_PRICE)


def _last_true(p: Callable[[int], bool], guess: int) -> int | None:
    """Largest m in [1, MAX_PRICE] with pred(m), for pred true below a threshold."""
    if p(guess):
        lo, step = guess, 1
        while lo + step <= MAX_PRICE and p(lo + step):
            lo += step
            step *= 2
        hi = min(lo + step, MAX_PRICE + 1)  # p(hi) is false (or hi is past the range)
    else:
        hi, step = guess, 1
        while hi - step >= 1 and not p(hi - step):
            hi -= step
            step *= 2
        if hi - step < 1:
            if not p(1):
                return None
            lo = 1
        else:
            lo = hi - step
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if p(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _first_true(p: Callable[[int], bool], guess: int) -> int | None:
    """Smallest m in [1, MAX_PRICE] with pred(m), for pred true above a threshold."""
    if p(guess):
        hi, step = guess, 1
        while hi - step >= 1 and p(hi - step):
            hi -= step
            step *= 2
        lo = max(hi - step, 0)  # p(lo) is false (or lo is below the range)
    else:
        lo, step = guess, 1
        while lo + step <= MAX_PRICE and not p(lo + step):
            lo += step
            step *= 2
        if lo + step > MAX_PRICE:
            if not p(MAX_PRICE):
                return None
            hi = MAX_PRICE
        else:
            hi = lo + step
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if p(mid):
            hi = mid
        else:
            lo = mid
    return hi
