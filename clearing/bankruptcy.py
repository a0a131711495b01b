"""Bankruptcy and fillable prices of a liquidation (DESIGN §4, §6; dYdX v4's general form).

Closing ``dq`` lots (signed change of the position, opposite in sign to it) at the
bankruptcy price takes the account's equity down by its share of the whole: the close's
share of maintenance margin, ``E x |dMM| / MM``. In value terms the close must fetch

    value(dq, p_b) = value(dq, mark) + E x |dMM| / MM

which, for a one-position account closing fully, is ``p_b = -Q / q``. The tick price is
rounded toward the side that costs the insurance fund less: down when the close sells,
up when it buys (a fill's shortfall against ``p_b`` is what the fund pays).

Transfers outside the book (backstop, takeover, ADL) do not use a tick price: they move the
exact bankruptcy *value* :func:`bankruptcy_value` (dYdX's ``GetBankruptcyPriceInQuoteQuantums``,
recomputed from the account's state before each piece, so the pieces add up to the whole).
A log event has one tick price per transfer and the log format is fixed (value = qty x
price x contract value), so :func:`split_value` spreads the value over at most two adjacent
tick prices: ``b`` lots at ``p + 1`` and the rest at ``p``. With one atom per tick and lot
(``k = 1``) that is exact. Otherwise a value that is not a whole number of contract values
(``k`` atoms) is rounded once, by less than ``k`` atoms, against the liquidated account (the
engine's one rounding rule: never in a trader's favour); the insurance fund tops up those
few atoms at the end (``InsurancePayment``), or, with the fund empty, they are recorded as
system debt. That is the whole of the rounding: the engine used to round the *price* and
could leave up to ``|q| x k`` atoms uncovered. (dYdX, which has no price grid on transfers,
rounds its quote quantums toward the account instead; clearsim's log format fixes value =
qty x price x k per event, which the conservation tests check.)

The fillable price is the worst price a liquidation order may reach under
``price_limit = "fillable"``: ``(PNNV - ABR x SMMR x PMMR) / PS`` with the adjusted
bankruptcy rating ``ABR = clamp(BA x (1 - E / MM), 0, 1)``, exact, then rounded to the tick
toward the oracle (up for a sell that closes a long, down for a buy that closes a short:
dYdX's ``ConvertFillablePriceToSubticks``), so the order never fills worse than it.
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


def bankruptcy_value(
    spec: InstrumentSpec, q: int, dq: int, mark: int, equity: int, total_mm: int
) -> int:
    """What the account pays (negative: receives) for changing position ``q`` by ``dq`` (a
    close) at its bankruptcy value: ``value(dq, mark) + E x |dMM| / MM`` in atoms."""
    mm_before = maintenance(spec, notional(spec, q, mark))
    mm_after = maintenance(spec, notional(spec, q + dq, mark))
    d_mm = abs(mm_before - mm_after)
    # E x |dMM| / MM rounded toward -inf (dYdX: ``big.Int.Div``): the account pays at most,
    # receives at least, its exact bankruptcy value.
    share = equity * d_mm // total_mm if total_mm > 0 else equity
    return value(spec, dq, mark) + share


def bankruptcy_price(
    spec: InstrumentSpec, q: int, dq: int, mark: int, equity: int, total_mm: int
) -> int:
    """Bankruptcy price of changing position ``q`` by ``dq`` (a close) at ``mark``, on the
    tick grid in the fund's favour (what a book fill's delta is measured against)."""
    return price_for_value(spec, dq, bankruptcy_value(spec, q, dq, mark, equity, total_mm))


def resting_price(spec: InstrumentSpec, dq: int, target: int) -> int:
    """The tick price of an order for ``dq`` that never trades worse than ``target``'s value:
    a sell rounds up, a buy down (a taken-over position worked at its bankruptcy price)."""
    return price_for_value(spec, -dq, -target)


def split_value(spec: InstrumentSpec, dq: int, target: int) -> list[tuple[int, int]]:
    """``dq`` (signed lots) as at most two (lots, tick price) pieces whose values add up to
    ``target`` (atoms the account pays), a remainder below one contract value rounded
    against the account (see the module docstring). Inverse contracts, and a value outside
    the price range, get one piece at the tick-rounded price (value then not exact)."""
    n = abs(dq)
    sign = 1 if dq > 0 else -1
    if spec.inverse:
        return [(dq, price_for_value(spec, dq, target))]
    # the sum of the lots' tick prices; off the grid, the account pays a little more when
    # buying (ceil) and receives a little less when selling (floor)
    ticks = ceil_div(target, spec.k) if dq > 0 else -target // spec.k
    p, b = divmod(ticks, n)
    if p < 1 or p + (1 if b else 0) > MAX_PRICE:
        return [(dq, price_for_value(spec, dq, target))]
    pieces = [(sign * (n - b), p)] if n > b else []
    if b:
        pieces.append((sign * b, p + 1))
    return pieces


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
    as the account nears bankruptcy, at most SMMR x the position's maintenance margin.

    ``(PNNV - ABR x SMMR x PMMR) / PS`` exactly (a per-lot price: it does not depend on
    ``dq``), rounded toward the oracle: up for a sell, down for a buy (dYdX v4
    ``GetFillablePrice`` / ``ConvertFillablePriceToSubticks``)."""
    pmmr = maintenance(spec, notional(spec, q, mark))
    if total_mm <= 0:
        abr_num, abr_den = 0, 1
    else:
        # ABR = BA x (1 - E/MM) = BA x (MM - E) / MM, clamped to [0, 1]
        abr_num, abr_den = ba_ppm * (total_mm - equity), PPM * total_mm
        abr_num = min(max(abr_num, 0), abr_den)
    # the spread for the whole position, as the fraction spread_num / spread_den atoms
    spread_num, spread_den = abr_num * smmr_ppm * pmmr, abr_den * PPM
    sell = dq < 0
    if not spec.inverse:
        # price = (q x mark x k - spread) / (q x k); q < 0 makes it mark + spread / |q|k
        num = q * mark * spec.k * spread_den - spread_num
        den = q * spec.k * spread_den
        p = ceil_div(num, den) if sell else num // den
        return min(max(p, 1), MAX_PRICE)
    # inverse: the close's share of the spread as a value, searched toward the oracle
    give_num, give_den = spread_num * abs(dq), spread_den * abs(q)
    give = ceil_div(give_num, give_den) if sell else give_num // give_den
    return resting_price(spec, dq, value(spec, dq, mark) + give)
