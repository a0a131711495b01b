"""Bankruptcy and fillable prices of a liquidation (DESIGN §4, §6; dYdX v4's general form).

Closing ``dq`` lots (signed change of the position, opposite in sign to it) at the
bankruptcy price takes the account's equity down by its share of the whole: the close's
share of maintenance margin, ``E x |dMM| / MM``. In value terms the close must fetch

    value(dq, p_b) = value(dq, mark) + E x |dMM| / MM

which, for a one-position account closing fully, is ``p_b = -Q / q``. The tick price is
rounded toward the side that costs the insurance fund less: down when the close sells,
up when it buys (a fill's shortfall against ``p_b`` is what the fund pays).

The fillable price is the worst price a liquidation order may reach under
``price_limit = "fillable"``: ``(PNNV - ABR x SMMR x PMMR) / PS`` with the adjusted
bankruptcy rating ``ABR = clamp(BA x (1 - E / MM), 0, 1)``.
"""

from __future__ import annotations

from clearsim.clearing.config import InstrumentSpec
from clearsim.clearing.margin import MAX_PRICE, maintenance, notional, value
from clearsim.clearing.rounding import ceil_div, largest_satisfying
from clearsim.events.units import PPM


def price_for_value(spec: InstrumentSpec, dq: int, target: int) -> int:
    """The tick price ``p`` that makes ``value(dq, p)`` reach ``target`` in the fund's favour.

    Selling (dq < 0): the highest ``p`` with ``value(dq, p) >= target``. Buying (dq > 0): the
    lowest such ``p``. Clamped to [1, MAX_PRICE].
    """
    if not spec.inverse:
        den = dq * spec.k
        # dq x k x p >= target: p <= target/den when selling (den < 0), p >= when buying
        p = target // den if dq < 0 else ceil_div(target, den)
        return min(max(p, 1), MAX_PRICE)
    # value(dq, p) is monotone in p (increasing when buying): binary search the tick.
    if dq < 0:
        if value(spec, dq, 1) < target:
            return 1
        # highest p with value >= target
        return largest_satisfying(lambda p: value(spec, dq, p) >= target, 1, MAX_PRICE)
    if value(spec, dq, MAX_PRICE) < target:
        return MAX_PRICE
    if value(spec, dq, 1) >= target:
        return 1
    # lowest p with value >= target: one above the highest p with value < target
    return largest_satisfying(lambda p: value(spec, dq, p) < target, 1, MAX_PRICE - 1) + 1


def bankruptcy_price(
    spec: InstrumentSpec, q: int, dq: int, mark: int, equity: int, total_mm: int
) -> int:
    """Bankruptcy price of changing position ``q`` by ``dq`` (a close) at ``mark``."""
    mm_before = maintenance(spec, notional(spec, q, mark))
    mm_after = maintenance(spec, notional(spec, q + dq, mark))
    d_mm = abs(mm_before - mm_after)
    # E x |dMM| / MM rounded toward -inf: the target rises as little as possible, so the
    # account is credited no more than its share (dYdX rounds the same way).
    share = equity * d_mm // total_mm if total_mm > 0 else equity
    return price_for_value(spec, dq, value(spec, dq, mark) + share)


def fillable_price(
    spec: InstrumentSpec,
    q: int,
    dq: int,
    mark: int,
    equity: int,
    total_mm: int,
    ba_ppm: int,
    smmr_ppm: int,
) -> int:
    """dYdX's fillable price for closing ``dq`` of ``q``: mark minus a spread that grows
    as the account nears bankruptcy, at most SMMR x the position's maintenance margin."""
    pmmr = maintenance(spec, notional(spec, q, mark))
    if total_mm <= 0:
        abr_num, abr_den = 0, 1
    else:
        # ABR = BA x (1 - E/MM) = BA x (MM - E) / MM, clamped to [0, 1]
        abr_num, abr_den = ba_ppm * (total_mm - equity), PPM * total_mm
        abr_num = min(max(abr_num, 0), abr_den)
    spread = abr_num * smmr_ppm * pmmr // (abr_den * PPM)  # atoms, for the whole position
    # per |dq| of |q|: the close may give up at most its share of the spread
    give = spread * abs(dq) // abs(q)
    return price_for_value(spec, dq, value(spec, dq, mark) + give)
