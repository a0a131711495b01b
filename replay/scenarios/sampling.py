"""Seeded integer sampling for the scenario generator: every draw an integer method of a
``random.Random`` seeded from ``(seed, stream)`` (``randrange``, ``getrandbits``) and
integer arithmetic after it, so a draw is the same on every machine (no float, no libm:
``log``/``exp`` may differ in the last bit between platforms).

- :func:`rng` — a stream's generator; :func:`noise_ppm` — the random walk's zero-mean moves;
- :class:`SizeSampler` — notional sizes, uniform or log-uniform on a 1/4096-octave grid;
- :func:`exp_gap` — an exponential draw (Poisson arrivals' gaps), from an integer binary
  logarithm (:func:`log2_fixed`).
"""

from __future__ import annotations

import math
import random
from typing import Final

__all__ = ["SizeSampler", "account_ids", "exp_gap", "log2_fixed", "noise_ppm", "rng"]


def rng(seed: int, stream: int) -> random.Random:
    # An int seed is hashed by CPython without PYTHONHASHSEED; streams are disjoint bit fields.
    return random.Random((seed << 8) | stream)


def noise_ppm(rng: random.Random, vol_ppm: int) -> int:
    """A zero-mean move with standard deviation ~``vol_ppm``: Irwin-Hall, 12 x 20 bits."""
    if not vol_ppm:
        return 0
    s = sum(rng.getrandbits(20) for _ in range(12)) - 6 * (1 << 20)
    mag = (abs(s) * vol_ppm) >> 20  # symmetric rounding: no drift from flooring negatives
    return mag if s >= 0 else -mag


_FRAC_BITS: Final = 12
_FIXED: Final = 62


def _pow2_fractions() -> tuple[int, ...]:
    """``2^(i/4096)`` for i in [0, 4096), fixed point with 62 bits, from integer square roots
    only (so the table is the same on every machine)."""
    roots = []
    r = 2 << _FIXED
    for _ in range(_FRAC_BITS):
        r = math.isqrt(r << _FIXED)  # sqrt of the previous root: 2^(1/2), 2^(1/4), ...
        roots.append(r)
    table = []
    for i in range(1 << _FRAC_BITS):
        v = 1 << _FIXED
        for j in range(_FRAC_BITS):
            if (i >> (_FRAC_BITS - 1 - j)) & 1:
                v = (v * roots[j]) >> _FIXED
        table.append(v)
    return tuple(table)


_POW2: tuple[int, ...] | None = None


class SizeSampler:
    """Notional sizes in atoms: uniform, or uniform in log2 on a 1/4096-octave grid."""

    def __init__(self, lo: int, hi: int, dist: str) -> None:
        global _POW2
        self.lo, self.hi, self.log = lo, hi, dist == "log_uniform"
        self.span = 0
        if self.log and hi > lo:
            if _POW2 is None:
                _POW2 = _pow2_fractions()
            self.table = _POW2
            # The number of grid steps from lo to hi (the first step that reaches hi).
            octaves = (hi // lo).bit_length() - 1
            u = octaves << _FRAC_BITS
            while self._at(u) < hi:
                u += 1
            while u > 0 and self._at(u - 1) >= hi:
                u -= 1
            self.span = u

    def _at(self, u: int) -> int:
        return ((self.lo * self.table[u & ((1 << _FRAC_BITS) - 1)]) >> _FIXED) << (u >> _FRAC_BITS)

    def draw(self, rng: random.Random) -> int:
        if self.hi <= self.lo:
            return self.lo
        if not self.log:
            return rng.randrange(self.lo, self.hi + 1)
        return min(self.hi, max(self.lo, self._at(rng.randrange(self.span + 1))))


def account_ids(prefix: str, count: int) -> list[str]:
    width = len(str(max(count, 1)))
    return [f"{prefix}{n:0{width}d}" for n in range(1, count + 1)]


# --------------------------------------------------------------------------- exponential

#: Fractional bits of :func:`log2_fixed` and of the exponential draw.
LOG_BITS: Final = 32
#: round(ln 2 x 2^64) (tests check it against a 60-digit decimal).
LN2_64: Final = 12786308645202655660
#: Bits of the uniform draw behind an exponential: U = (r + 1) / 2^53 in (0, 1].
_U_BITS: Final = 53
_NORM: Final = 64  # fixed-point bits of the mantissa while squaring


def log2_fixed(x: int) -> int:
    """``log2(x)`` for an integer ``x >= 1``, times 2^32 and rounded down, by the classic
    bit-by-bit squaring of the mantissa (integers only, so the same on every machine)."""
    if x < 1:
        raise ValueError("log2_fixed: x must be >= 1")
    n = x.bit_length() - 1
    m = x << (_NORM - n) if n <= _NORM else x >> (n - _NORM)  # x / 2^n in [1, 2), 64 bits
    two = 2 << _NORM
    frac = 0
    for i in range(LOG_BITS):
        m = (m * m) >> _NORM
        if m >= two:
            m >>= 1
            frac |= 1 << (LOG_BITS - 1 - i)
    return (n << LOG_BITS) | frac


def exp_gap(r: random.Random, mean_num: int, mean_den: int) -> int:
    """An exponential draw of mean ``mean_num / mean_den``, rounded to an integer (>= 0):
    ``-ln(U) x mean`` for a uniform ``U`` in (0, 1] of 53 bits."""
    u = r.getrandbits(_U_BITS) + 1
    neg_log2 = (_U_BITS << LOG_BITS) - log2_fixed(u)  # -log2(U), 2^-32 units
    e = (neg_log2 * LN2_64) >> 64  # -ln(U) = ln 2 x -log2(U)
    den = mean_den << LOG_BITS
    return (2 * e * mean_num + den) // (2 * den)
