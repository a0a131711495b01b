"""Integer rounding rules: every division says which way it rounds, and splits sum exactly.

The exchange never rounds in a trader's favour: requirements and charges round up, payouts
round down. A pro-rata split of a whole uses the largest-remainder method, so the parts add
up to the whole to the atom.
"""

from __future__ import annotations

from collections.abc import Sequence

PPM = 1_000_000


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for ``b > 0``, exact for any sign of ``a``."""
    return -((-a) // b)


def ppm_up(amount: int, ppm: int) -> int:
    """``amount x ppm / 10^6`` rounded up (toward +inf): a charge or a requirement."""
    return -((-amount * ppm) // PPM)


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
