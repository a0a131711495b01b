"""Funding: premium samples, the rate formula of DESIGN §5, and the exact payment split.

Rate ``F = P + clamp(I - P, -0.05%, +0.05%)``, then clamped to the instrument's cap, with P
the average premium sample ``[max(0, impact_bid - index) - max(0, index - impact_ask)] /
index``. Payment ``q x mark x F``: payers (longs when F > 0) pay their amount rounded up, and
what they paid is split among the receivers pro rata to position size by largest remainder,
so payments sum to exactly zero.
"""

from __future__ import annotations

from collections.abc import Iterable

from clearsim.clearing.config import InstrumentSpec
from clearsim.clearing.margin import notional
from clearsim.clearing.rounding import ceil_div, ppm_up, split_largest_remainder
from clearsim.events.units import PPM

#: The ±0.05% band around the interest rate in the funding formula.
PREMIUM_BAND_PPM = 500


def _tdiv(a: int, b: int) -> int:
    """Integer division truncated toward zero (for a signed rate)."""
    q = abs(a) // b
    return q if a >= 0 else -q


def impact_price(levels: Iterable[tuple[int, int]], spec: InstrumentSpec) -> int | None:
    """Average price (ticks, truncated) to fill ``impact_notional`` against ``levels``.

    With ``impact_notional`` 0 this is the best price. None when the side is too thin.
    """
    target = spec.impact_notional
    filled_qty = 0
    cost = 0  # sum of qty x price in lot-ticks
    got = 0  # atoms of notional filled so far
    for price, qty in levels:
        if target == 0:
            return price
        need = target - got
        level_notional = notional(spec, qty, price)
        take = qty if level_notional <= need else ceil_div(need * qty, level_notional)
        filled_qty += take
        cost += take * price
        got += notional(spec, take, price)
        if got >= target:
            return cost // filled_qty
    return None


def premium_ppm(impact_bid: int, impact_ask: int, index: int) -> int:
    """One premium sample in ppm of the index (truncated toward zero)."""
    num = max(0, impact_bid - index) - max(0, index - impact_ask)
    return _tdiv(num * PPM, index)


def rate_ppm(avg_premium: int, spec: InstrumentSpec) -> int:
    """The funding rate from an average premium, the interest rate and the cap."""
    i = spec.interest_ppm
    f = avg_premium + min(max(i - avg_premium, -PREMIUM_BAND_PPM), PREMIUM_BAND_PPM)
    cap = spec.funding_cap_ppm
    return min(max(f, -cap), cap)


def payments(
    spec: InstrumentSpec, holders: dict[str, int], mark: int, rate: int
) -> list[tuple[str, int]]:
    """Signed cash changes per account (negative = pays), summing to exactly zero.

    ``holders`` maps account id -> position qty (non-zero), in any order; the result is
    sorted by account id.
    """
    if rate == 0 or not holders:
        return []
    payer_sign = 1 if rate > 0 else -1  # longs pay when rate > 0
    arate = abs(rate)
    paid: dict[str, int] = {}
    recv_ids: list[str] = []
    recv_w: list[int] = []
    for acct in sorted(holders):
        q = holders[acct]
        if (q > 0) == (payer_sign > 0):
            n = notional(spec, q, mark)
            paid[acct] = ppm_up(n, arate)  # payers round up
        else:
            recv_ids.append(acct)
            recv_w.append(abs(q))
    total = sum(paid.values())
    out = {a: -v for a, v in paid.items()}
    if recv_ids and total:
        for a, v in zip(recv_ids, split_largest_remainder(total, recv_w, recv_ids), strict=True):
            out[a] = v
    elif not recv_ids:  # nobody on the other side (cannot happen: positions net to zero)
        return []
    return sorted(out.items())
