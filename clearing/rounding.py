"""Integer rounding rules: every division says which way it rounds, and splits sum exactly.

The exchange never rounds in a trader's favour: requirements and charges round up, payouts
round down. A pro-rata split of a whole uses the largest-remainder method, so the parts add
up to the whole to the atom.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from clearsim.events.units import PPM

__all__ = ["PPM", "ceil_div", "largest_satisfying", "ppm_up", "split_largest_remainder"]


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for ``b > 0``, exact for any sign of ``a``."""
    return -((-a) // b)


def ppm_up(amount: int, ppm: int) -> int:
    """``amount x ppm / 10^6`` rounded up (toward +inf): a charge or a requirement."""
    return -((-amount * ppm) // PPM)


def largest_satisfying(pred: Callable[[int], bool], lo: int, hi: int) -> int:
    """The largest ``x`` in ``[lo, hi]`` with ``pred(x)``, for ``pred`` true up to a threshold
    and false beyond it; ``lo`` when nothing above it holds (``pred(lo)`` is never asked).

    The one binary search of the clearing layer (bankruptcy prices, affordable fills,
    backstop capacity): O(log(hi - lo)) calls of ``pred``.
    """
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if pred(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def split_largest_remainder(total: int, weights: Sequence[int], keys: Sequence[str]) -> list[int]:
    """Split ``total`` (>= 0) pro rata to ``weights`` (>= 0, not all 0); parts sum to ``total``.

    Each part gets the floor of its exact share; the atoms left over go one each to the
    largest remainders, ties broken by ``keys`` ascending, so the result does not depend on
    the order the parts were listed in.
    """
    wsum = sum(weights)
    if wsum <= 0:
        raise ValueError("split needs a positive weight sum")
    parts = []
    rems = []
    for i, w in enumerate(weights):
        q, r = divmod(total * w, wsum)
        parts.append(q)
        rems.append((-r, keys[i], i))
    left = total - sum(parts)
    if left:
        rems.sort()
        for _, _, i in rems[:left]:
            parts[i] += 1
    return parts
