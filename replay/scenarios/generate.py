"""Generating a scenario's commands: the price path, the makers' quotes, the population's
entries, each from its own seeded integer stream (see :mod:`replay.scenarios` for the
rules: no float enters a price, size, leverage or time)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from clearsim.clearing.config import InstrumentSpec, fmt_atoms
from clearsim.clearing.margin import notional, value
from clearsim.events.units import PPM, US_PER_S
from clearsim.orderbook.grid import Grid

if TYPE_CHECKING:
    from clearsim.replay.scenarios.model import Scenario

__all__ = ["account_ids", "commands", "prices"]

#: Price state of the random walk is kept in millionths of a tick, so a 1 ppm move on a
#: price of a few thousand ticks is not lost to rounding step after step.
_SUB: Final = 1_000_000
#: Stream numbers for the seeded generators; a new stream never shifts the others' draws.
_POPULATION, _PRICE = 1, 2


def prices(sc: Scenario, seed: int | None = None) -> list[int]:
    """The index (ticks) at each step."""
    p = sc.price
    if p.kind == "series":
        return list(p.series[: sc.steps])
    rng = _rng(sc.seed if seed is None else seed, _PRICE)
    walk = p.start * _SUB
    out: list[int] = []
    for k in range(sc.steps):
        if k:
            move = p.drift_ppm + _noise_ppm(rng, p.vol_ppm)
            walk = max(_SUB, walk * (PPM + move) // PPM)
        t = k * sc.step_s
        level = walk
        for j in p.jumps:
            done = min(max(t - j.at_s, 0), j.over_s)
            level = level * (PPM * j.over_s + j.move_ppm * done) // (PPM * j.over_s)
        out.append(max(1, (level + _SUB // 2) // _SUB))
    return out


def commands(sc: Scenario, seed: int | None = None) -> Iterator[dict[str, Any]]:
    """Every command of the run, in ``ts`` order (non-decreasing)."""
    seed = sc.seed if seed is None else seed
    spec = sc.config.instrument(sc.symbol)
    if spec is None:  # pragma: no cover - checked when the scenario was built
        from clearsim.replay.scenarios.model import ScenarioError  # model imports us

        raise ScenarioError(f"unknown symbol {sc.symbol}")
    grid = Grid(spec.tick_size, spec.lot_size)
    scale = 10**sc.config.collateral_decimals
    sym = sc.symbol
    t0 = sc.start_ts
    step_us = sc.step_s * US_PER_S
    mm = sc.makers
    makers = sc.maker_ids()

    setup = [(m, mm.deposit) for m in makers] + list(sc.accounts)
    for acct, amount in setup:
        yield {"type": "deposit", "ts": t0, "account": acct, "amount": fmt_atoms(amount, scale)}

    entries = _entries(sc, seed)
    scheduled = sorted(
        ((t0 + e.at_s * US_PER_S, i, e.command) for i, e in enumerate(sc.events)),
        key=lambda x: (x[0], x[1]),
    )
    path = prices(sc, seed)
    taker_ppm = max(0, spec.taker_fee_ppm)
    ei = si = 0
    quote_no = 0
    last_quote_ts = -1
    last_quote_px = 0
    thin_w = max(1, mm.thin_window_s // sc.step_s)
    px = path[0]

    for k, px in enumerate(path):
        ts = t0 + k * step_us
        # Everything strictly before this step (scheduled events also at it), in order.
        while True:
            e_ts = entries[ei][0] if ei < len(entries) else None
            s_ts = scheduled[si][0] if si < len(scheduled) else None
            if s_ts is not None and s_ts <= ts and (e_ts is None or s_ts <= e_ts):
                yield {**scheduled[si][2], "ts": s_ts}
                si += 1
            elif e_ts is not None and e_ts < ts:
                yield from _entry(sc, entries[ei], path[k - 1], grid, spec, scale, taker_ppm)
                ei += 1
            else:
                break
        yield {"type": "index_price", "ts": ts, "symbol": sym, "price": grid.fmt_price(px)}
        if not makers:
            continue
        moved = abs(px - last_quote_px) * PPM > mm.requote_move_ppm * last_quote_px
        if last_quote_ts >= 0 and ts - last_quote_ts < mm.refresh_s * US_PER_S and not moved:
            continue
        ref = path[max(0, k - thin_w)]
        thin = mm.thin_move_ppm > 0 and abs(px - ref) * PPM >= mm.thin_move_ppm * ref
        quote_no += 1
        for m in makers:
            if last_quote_ts >= 0:
                yield {"type": "cancel_all", "ts": ts, "account": m}
            for lv_no, lv in enumerate(mm.depth):
                qty = lv.qty * mm.thin_factor_ppm // PPM if thin else lv.qty
                if qty <= 0:
                    continue
                off = lv.offset_ppm * px
                if thin:
                    off = min(off * mm.thin_spread_ppm // PPM, (PPM - 1) * px)
                bid = max(1, min(px - 1, (px * PPM - off) // PPM))
                ask = max(px + 1, -((-(px * PPM + off)) // PPM))
                for side, price in (("buy", bid), ("sell", ask)):
                    yield {
                        "type": "order",
                        "ts": ts,
                        "account": m,
                        "id": f"{side[0]}{lv_no}-{quote_no}",
                        "symbol": sym,
                        "side": side,
                        "qty": grid.fmt_qty(qty),
                        "price": grid.fmt_price(price),
                        "tif": "gtc",
                    }
        last_quote_ts, last_quote_px = ts, px

    # Entries and events are validated to fall inside the run; nothing is left over
    # except entries at the last step's exact µs, which come after it.
    while ei < len(entries):
        yield from _entry(sc, entries[ei], px, grid, spec, scale, taker_ppm)
        ei += 1
    while si < len(scheduled):  # pragma: no cover - validated away
        yield {**scheduled[si][2], "ts": scheduled[si][0]}
        si += 1


def _entries(sc: Scenario, seed: int) -> list[tuple[int, int, str, bool, int, int]]:
    """(ts, n, account, long, leverage, notional atoms) per account, in ts order.

    Every account's draws are made in index order from the population stream, so the
    n-th account is the same whatever the window or the price path.
    """
    pop = sc.population
    rng = _rng(seed, _POPULATION)
    window_us = pop.entry_window_s * US_PER_S
    lo, hi = pop.leverage_min, pop.leverage_max
    sizes = _SizeSampler(pop.size_min, pop.size_max, pop.size_dist)
    out = []
    for n, acct in enumerate(sc.population_ids()):
        is_long = rng.randrange(PPM) < pop.long_ppm
        lev = rng.randrange(lo, hi + 1)
        if pop.leverage_dist == "skewed":
            lev = min(lev, rng.randrange(lo, hi + 1))
        size = sizes.draw(rng)
        ts = sc.start_ts + 1 + rng.randrange(window_us)
        out.append((ts, n, acct, is_long, lev, size))
    out.sort(key=lambda e: (e[0], e[1]))
    return out


def _entry(
    sc: Scenario,
    entry: tuple[int, int, str, bool, int, int],
    index: int,
    grid: Grid,
    spec: InstrumentSpec,
    scale: int,
    taker_ppm: int,
) -> Iterator[dict[str, Any]]:
    ts, _, acct, is_long, lev, size = entry
    pop = sc.population
    slip = pop.entry_slippage_ppm
    # Lots for the wanted notional at the index: linear N = q x p x k, inverse N = q x k / p.
    per = index * spec.k
    lots = size * index // spec.k if spec.inverse else size // per
    lots = max(1, lots)
    up, down = -((-index * (PPM + slip)) // PPM), max(1, index * (PPM - slip) // PPM)
    limit = up if is_long else down
    # Deposit = N / L, plus what the pre-trade check charges on top: the loss against the
    # mark of filling at the limit (from the limit as rounded to the tick, which may be a
    # hair beyond the slippage allowance) and the taker fee. So the order passes
    # "E >= IM" whenever L <= 1 / imr, and the account's leverage is L to within a fee.
    n_max = max(notional(spec, lots, index), notional(spec, lots, limit))
    slip_cost = abs(value(spec, lots, index) - value(spec, lots, limit))
    fee = -((-notional(spec, lots, limit) * taker_ppm) // PPM)
    deposit = -((-n_max) // lev) + slip_cost + fee + 2  # +2: value and notional round
    yield {"type": "deposit", "ts": ts, "account": acct, "amount": fmt_atoms(deposit, scale)}
    order: dict[str, Any] = {
        "type": "order",
        "ts": ts,
        "account": acct,
        "id": "entry",
        "symbol": sc.symbol,
        "side": "buy" if is_long else "sell",
        "qty": grid.fmt_qty(lots),
    }
    if pop.order == "ioc":
        order["price"] = grid.fmt_price(limit)
        order["tif"] = "ioc"
    yield order


# ------------------------------------------------------------------ variants


# --------------------------------------------------------------------------- integer sampling


def _rng(seed: int, stream: int) -> random.Random:
    # An int seed is hashed by CPython without PYTHONHASHSEED; streams are disjoint bit fields.
    return random.Random((seed << 8) | stream)


def _noise_ppm(rng: random.Random, vol_ppm: int) -> int:
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


class _SizeSampler:
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
