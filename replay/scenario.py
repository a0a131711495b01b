"""Scenario files: an exchange config plus a seeded synthetic market, turned into commands.

A scenario is one TOML file. Its ``[exchange]``, ``[insurance_fund]``, ``[waterfall]`` and
``[[instruments]]`` tables are an exchange config exactly as ``clearsim run --config`` reads
it (DESIGN §10); the tables below describe the market to simulate on top of it. Every key is
optional unless marked *required*; decimal amounts are strings, as everywhere at the edges.

``[scenario]``
    ``name`` (str, default the file's stem) · ``description`` (free text, ignored) ·
    ``seed`` (int >= 0, default 0; ``clearsim run --seed`` overrides it) ·
    ``symbol`` (the instrument the population trades, the makers quote and the price path
    drives; default the first ``[[instruments]]``) ·
    ``start_ts`` (int µs since the epoch; default 1_700_000_000_000_000, or the first used
    bar's timestamp with ``price.bars_file``) ·
    ``step_s`` (int >= 1 seconds between index prices; default 1, or the bars' spacing) ·
    ``steps`` (int >= 1 index prices; *required* for a random walk, default all the prices
    of a series)

``[population]`` — the synthetic leveraged accounts (ids ``<id_prefix><n>``, zero-padded)
    ``count`` (int >= 0, default 0) · ``id_prefix`` (default ``"u"``) ·
    ``leverage_min``, ``leverage_max`` (ints, 1 <= min <= max; ``leverage_max`` x the first
    tier's ``imr_ppm`` must not exceed 1,000,000, or the entries would be refused) ·
    ``leverage_dist`` (``"uniform"`` or ``"skewed"``: the smaller of two uniform draws, so
    low leverage is more common) ·
    ``size_min``, ``size_max`` (position notional in collateral, decimal strings,
    *required* when ``count > 0``) · ``size_dist`` (``"log_uniform"``, the default: uniform
    in the logarithm, on a 1/4096-octave grid; or ``"uniform"``) ·
    ``long_ppm`` (share of longs, 0..1,000,000, default 500,000) ·
    ``entry_window_s`` (int >= 1, default 60: entry times are uniform over the first N
    seconds, and must fall inside the run) ·
    ``order`` (``"ioc"``, the default: a limit ``entry_slippage_ppm`` through the index;
    or ``"market"``, which the exchange refuses if sweeping the book would cost more than
    that allowance) · ``entry_slippage_ppm`` (int, default 2,000)

    Each account deposits ``notional / leverage`` plus what the pre-trade check charges on
    top (the loss against the mark of filling at its limit, and the taker fee), so it
    passes at exactly its leverage; then it sends one order of ``notional / index``
    rounded down to the lot grid (at least one lot) into the makers' book. Leverage is
    measured against the position's notional at the index when it enters.

``[market_makers]`` — accounts ``<id_prefix><n>`` quoting a ladder around the index
    ``count`` (int >= 0, default 0) · ``id_prefix`` (default ``"mm"``) · ``deposit``
    (decimal, *required* when ``count > 0``) · ``depth`` (*required* when ``count > 0``: a
    list of ``{ offset_ppm, qty }``, offsets strictly increasing, each level quoted on both
    sides by every maker: bid rounded down, ask rounded up to the tick) ·
    ``refresh_s`` (int >= 1, default 5: cancel_all and re-quote this often) ·
    ``requote_move_ppm`` (int >= 0, default 2,000: also re-quote when the index moved more
    than this since the last quote) ·
    ``thin_window_s`` (int >= 1, default 60), ``thin_move_ppm`` (int >= 0, default 0 =
    never), ``thin_factor_ppm`` (0..1,000,000, default 100,000): while the index has moved
    at least ``thin_move_ppm`` over the last ``thin_window_s``, makers quote only
    ``thin_factor_ppm`` of each level (0 = pull it), at ``thin_spread_ppm`` / 10^6 times its
    offset (default 1,000,000: unchanged) — so a crash exhausts the book and liquidation
    orders sweep far through it.

``[price]`` — the index path (one ``index_price`` command per step)
    ``kind`` (``"random_walk"``, the default, or ``"series"``).
    Random walk: ``start`` (decimal, *required*, on the tick grid) · ``vol_ppm`` (int >= 0:
    standard deviation of each step's move, from an Irwin-Hall sum of 12 integer draws) ·
    ``drift_ppm`` (signed int per step) · ``jumps`` (list of ``{ at_s, move_ppm, over_s }``:
    the path is multiplied by a factor going linearly from 1 to ``1 + move_ppm / 10^6``
    over ``over_s`` seconds from ``at_s``; ``move_ppm`` > -1,000,000).
    Series: ``prices`` (list of decimal strings) or ``bars_file`` (a JSON array of bars,
    BitMEX style, path relative to the scenario file) with ``bars_field`` (default
    ``"close"``), ``bars_from`` (first bar, default 0) and ``bars_count`` (default all).
    Series prices are rounded to the nearest tick.

``[[accounts]]`` — other funded accounts (a backstop vault, a whale): ``id`` and
    ``deposit`` (decimal), deposited at ``start_ts``.

``[[events]]`` — commands at a point in the run (policy experiments): ``at_s`` (int >= 0,
    seconds from ``start_ts``, within the run) and ``command`` (a table in the command shape
    of DESIGN §10, without ``ts``). At the same timestamp they run before that step's index
    price.

Generation is deterministic across machines and ``PYTHONHASHSEED``: each part draws from
its own ``random.Random`` seeded from ``(seed, stream)``, using integer methods only
(``randrange``, ``getrandbits``); no float enters a price, size, leverage or time (libm
functions like ``log``/``exp`` may differ in the last bit between platforms). Command order:
setup deposits at ``start_ts``; then in time order: scheduled events, each step's
``index_price`` followed by the makers' re-quotes, and each population entry (a ``deposit``
then an ``order`` at the same µs; entries at a step's exact µs come after the step).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import random
import re
import tomllib
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

import attrs

from clearsim.clearing import Config, ConfigError
from clearsim.clearing.config import InstrumentSpec, fmt_atoms
from clearsim.clearing.margin import notional, value
from clearsim.events.commands import parse_command, to_units
from clearsim.events.errors import ClearsimError
from clearsim.orderbook.grid import Grid, GridError

__all__ = [
    "Jump",
    "Level",
    "MarketMakers",
    "Population",
    "PricePath",
    "Scenario",
    "ScenarioError",
    "ScheduledCommand",
    "bundled",
    "load",
]

PPM: Final = 1_000_000
US: Final = 1_000_000
DEFAULT_START_TS: Final = 1_700_000_000_000_000
#: Price state of the random walk is kept in millionths of a tick, so a 1 ppm move on a
#: price of a few thousand ticks is not lost to rounding step after step.
_SUB: Final = 1_000_000
_CONFIG_TABLES: Final = ("exchange", "insurance_fund", "waterfall", "instruments")
_SCENARIO_TABLES: Final = ("scenario", "population", "market_makers", "price", "accounts", "events")
_ID: Final = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
_DECIMAL: Final = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_BAR_FIELDS: Final = ("open", "high", "low", "close", "vwap")
#: Stream numbers for the seeded generators; a new stream never shifts the others' draws.
_POPULATION, _PRICE = 1, 2


class ScenarioError(ClearsimError, ValueError):
    """A scenario that cannot be run; ``str()`` is one line naming the key."""


# --------------------------------------------------------------------------- the model


@attrs.frozen
class Level:
    """One rung of the makers' ladder, on both sides of the index."""

    offset_ppm: int
    qty: int  # lots


@attrs.frozen
class Jump:
    at_s: int
    move_ppm: int
    over_s: int


@attrs.frozen
class PricePath:
    kind: str  # "random_walk" | "series"
    start: int = 0  # ticks (random walk)
    vol_ppm: int = 0
    drift_ppm: int = 0
    jumps: tuple[Jump, ...] = ()
    series: tuple[int, ...] = ()  # ticks (series)


@attrs.frozen
class Population:
    count: int = 0
    id_prefix: str = "u"
    leverage_min: int = 1
    leverage_max: int = 1
    leverage_dist: str = "uniform"
    size_min: int = 0  # atoms
    size_max: int = 0
    size_dist: str = "log_uniform"
    long_ppm: int = 500_000
    entry_window_s: int = 60
    order: str = "ioc"
    entry_slippage_ppm: int = 2_000


@attrs.frozen
class MarketMakers:
    count: int = 0
    id_prefix: str = "mm"
    deposit: int = 0  # atoms
    depth: tuple[Level, ...] = ()
    refresh_s: int = 5
    requote_move_ppm: int = 2_000
    thin_window_s: int = 60
    thin_move_ppm: int = 0
    thin_factor_ppm: int = 100_000
    thin_spread_ppm: int = PPM


@attrs.frozen
class ScheduledCommand:
    at_s: int
    command: dict[str, Any]  # without ts


@attrs.frozen
class Scenario:
    """A validated scenario; :meth:`commands` generates its command stream."""

    name: str
    seed: int
    config: Config
    symbol: str
    start_ts: int
    step_s: int
    steps: int
    population: Population
    makers: MarketMakers
    price: PricePath
    accounts: tuple[tuple[str, int], ...]  # (id, atoms)
    events: tuple[ScheduledCommand, ...]

    @property
    def duration_s(self) -> int:
        """Seconds from ``start_ts`` to the last step."""
        return (self.steps - 1) * self.step_s

    def population_ids(self) -> list[str]:
        return _ids(self.population.id_prefix, self.population.count)

    def maker_ids(self) -> list[str]:
        return _ids(self.makers.id_prefix, self.makers.count)

    # ------------------------------------------------------------------ the price path

    def prices(self, seed: int | None = None) -> list[int]:
        """The index (ticks) at each step."""
        p = self.price
        if p.kind == "series":
            return list(p.series[: self.steps])
        rng = _rng(self.seed if seed is None else seed, _PRICE)
        walk = p.start * _SUB
        out: list[int] = []
        for k in range(self.steps):
            if k:
                move = p.drift_ppm + _noise_ppm(rng, p.vol_ppm)
                walk = max(_SUB, walk * (PPM + move) // PPM)
            t = k * self.step_s
            level = walk
            for j in p.jumps:
                done = min(max(t - j.at_s, 0), j.over_s)
                level = level * (PPM * j.over_s + j.move_ppm * done) // (PPM * j.over_s)
            out.append(max(1, (level + _SUB // 2) // _SUB))
        return out

    # ------------------------------------------------------------------ the command stream

    def commands(self, seed: int | None = None) -> Iterator[dict[str, Any]]:
        """Every command of the run, in ``ts`` order (non-decreasing)."""
        seed = self.seed if seed is None else seed
        spec = self.config.instrument(self.symbol)
        assert spec is not None  # checked when the scenario was built
        grid = Grid(spec.tick_size, spec.lot_size)
        scale = 10**self.config.collateral_decimals
        sym = self.symbol
        t0 = self.start_ts
        step_us = self.step_s * US
        mm = self.makers
        makers = self.maker_ids()

        setup = [(m, mm.deposit) for m in makers] + list(self.accounts)
        for acct, amount in setup:
            yield {"type": "deposit", "ts": t0, "account": acct, "amount": fmt_atoms(amount, scale)}

        entries = self._entries(seed)
        scheduled = sorted(
            ((t0 + e.at_s * US, i, e.command) for i, e in enumerate(self.events)),
            key=lambda x: (x[0], x[1]),
        )
        prices = self.prices(seed)
        taker_ppm = max(0, spec.taker_fee_ppm)
        ei = si = 0
        quote_no = 0
        last_quote_ts = -1
        last_quote_px = 0
        thin_w = max(1, mm.thin_window_s // self.step_s)
        px = prices[0]

        for k, px in enumerate(prices):
            ts = t0 + k * step_us
            # Everything strictly before this step (scheduled events also at it), in order.
            while True:
                e_ts = entries[ei][0] if ei < len(entries) else None
                s_ts = scheduled[si][0] if si < len(scheduled) else None
                if s_ts is not None and s_ts <= ts and (e_ts is None or s_ts <= e_ts):
                    yield {**scheduled[si][2], "ts": s_ts}
                    si += 1
                elif e_ts is not None and e_ts < ts:
                    yield from self._entry(entries[ei], prices[k - 1], grid, spec, scale, taker_ppm)
                    ei += 1
                else:
                    break
            yield {"type": "index_price", "ts": ts, "symbol": sym, "price": grid.fmt_price(px)}
            if not makers:
                continue
            moved = abs(px - last_quote_px) * PPM > mm.requote_move_ppm * last_quote_px
            if last_quote_ts >= 0 and ts - last_quote_ts < mm.refresh_s * US and not moved:
                continue
            ref = prices[max(0, k - thin_w)]
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
            yield from self._entry(entries[ei], px, grid, spec, scale, taker_ppm)
            ei += 1
        while si < len(scheduled):  # pragma: no cover - validated away
            yield {**scheduled[si][2], "ts": scheduled[si][0]}
            si += 1

    def _entries(self, seed: int) -> list[tuple[int, int, str, bool, int, int]]:
        """(ts, n, account, long, leverage, notional atoms) per account, in ts order.

        Every account's draws are made in index order from the population stream, so the
        n-th account is the same whatever the window or the price path.
        """
        pop = self.population
        rng = _rng(seed, _POPULATION)
        window_us = pop.entry_window_s * US
        lo, hi = pop.leverage_min, pop.leverage_max
        sizes = _SizeSampler(pop.size_min, pop.size_max, pop.size_dist)
        out = []
        for n, acct in enumerate(self.population_ids()):
            is_long = rng.randrange(PPM) < pop.long_ppm
            lev = rng.randrange(lo, hi + 1)
            if pop.leverage_dist == "skewed":
                lev = min(lev, rng.randrange(lo, hi + 1))
            size = sizes.draw(rng)
            ts = self.start_ts + 1 + rng.randrange(window_us)
            out.append((ts, n, acct, is_long, lev, size))
        out.sort(key=lambda e: (e[0], e[1]))
        return out

    def _entry(
        self,
        entry: tuple[int, int, str, bool, int, int],
        index: int,
        grid: Grid,
        spec: InstrumentSpec,
        scale: int,
        taker_ppm: int,
    ) -> Iterator[dict[str, Any]]:
        ts, _, acct, is_long, lev, size = entry
        pop = self.population
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
            "symbol": self.symbol,
            "side": "buy" if is_long else "sell",
            "qty": grid.fmt_qty(lots),
        }
        if pop.order == "ioc":
            order["price"] = grid.fmt_price(limit)
            order["tif"] = "ioc"
        yield order

    # ------------------------------------------------------------------ variants

    def with_population(self, count: int) -> Scenario:
        """The same market with ``count`` accounts: the makers' depth and deposits, the funded
        accounts, the insurance fund and (when growing) the largest risk tier's cap scale in
        proportion (rounded to lots / atoms), so the crash plays out with the same shape and
        the bigger makers and backstops are not refused for the size of their positions."""
        old = max(1, self.population.count)
        scale = 10**self.config.collateral_decimals
        fund = self.config.insurance_initial * count // old
        raw = {**self.config.to_dict(), "insurance_fund": {"initial": fmt_atoms(fund, scale)}}
        if count > old:
            instruments = []
            for spec, inst in zip(self.config.instruments, raw["instruments"], strict=True):
                tiers = [dict(t) for t in inst["tiers"]]
                cap = spec.tiers[-1].max_notional * count // old
                tiers[-1]["max_notional"] = fmt_atoms(cap, scale)
                instruments.append({**inst, "tiers": tiers})
            raw["instruments"] = instruments
        mm = self.makers
        return attrs.evolve(
            self,
            config=Config.from_dict(raw),
            population=attrs.evolve(self.population, count=count),
            makers=attrs.evolve(
                mm,
                deposit=mm.deposit * count // old,
                depth=tuple(Level(v.offset_ppm, max(1, v.qty * count // old)) for v in mm.depth),
            ),
            accounts=tuple((a, amt * count // old) for a, amt in self.accounts),
        )


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


def _ids(prefix: str, count: int) -> list[str]:
    width = len(str(max(count, 1)))
    return [f"{prefix}{n:0{width}d}" for n in range(1, count + 1)]


# --------------------------------------------------------------------------- parsing


class _Table:
    """Typed reads of one TOML table, every error naming ``<table>.<key>``."""

    def __init__(self, d: object, where: str) -> None:
        if not isinstance(d, dict):
            raise ScenarioError(f"{where}: expected a table")
        self.d: dict[str, Any] = d
        self.where = where

    def key(self, k: str) -> str:
        return f"{self.where}.{k}" if self.where else k

    def known(self, *keys: str) -> None:
        for k in self.d:
            if k not in keys:
                raise ScenarioError(f"{self.key(k)}: unknown key")

    def has(self, k: str) -> bool:
        return k in self.d

    def integer(self, k: str, default: int | None, lo: int, hi: int) -> int:
        v = self.d.get(k, default)
        if v is None:
            raise ScenarioError(f"{self.key(k)}: required")
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ScenarioError(f"{self.key(k)}: expected an integer in [{lo}, {hi}], got {v!r}")
        return v

    def choice(self, k: str, default: str, options: tuple[str, ...]) -> str:
        v = self.d.get(k, default)
        if v not in options:
            raise ScenarioError(f"{self.key(k)}: expected one of {', '.join(options)}, got {v!r}")
        return str(v)

    def ident(self, k: str, default: str | None) -> str:
        v = self.d.get(k, default)
        if v is None:
            raise ScenarioError(f"{self.key(k)}: required")
        _check_id(v, self.key(k))
        return str(v)

    def atoms(self, k: str, decimals: int, required: bool) -> int:
        v = self.d.get(k)
        if v is None:
            if required:
                raise ScenarioError(f"{self.key(k)}: required")
            return 0
        return _atoms(v, decimals, self.key(k))

    def items(self, k: str) -> list[Any]:
        v = self.d.get(k, [])
        if not isinstance(v, list):
            raise ScenarioError(f"{self.key(k)}: expected a list")
        return v


def _check_id(v: object, key: str, prefix: bool = True) -> None:
    # A prefix is checked with a sample suffix appended: the ids made from it must be valid.
    if not isinstance(v, str) or not _ID.match(v + ("1" if prefix else "")) or v[:1] in "#@":
        raise ScenarioError(
            f"{key}: expected an account id (letters, digits, _.:@-, not starting with # or @),"
            f" got {v!r}"
        )


def _atoms(v: object, decimals: int, key: str) -> int:
    if not isinstance(v, str) or not _DECIMAL.match(v):
        raise ScenarioError(f"{key}: expected a non-negative decimal string, got {v!r}")
    try:
        return to_units(v, decimals)
    except ValueError as e:
        raise ScenarioError(f"{key}: {e}") from None


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario file (errors are :class:`ScenarioError`, prefixed with
    the path)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ScenarioError(f"{p}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{p}: not valid TOML: {e}") from None
    try:
        return from_dict(data, base_dir=p.parent, default_name=p.stem)
    except ScenarioError as e:
        raise ScenarioError(f"{p}: {e}") from None


def bundled(name: str = "crash") -> Scenario:
    """A scenario shipped inside the package (``replay/scenarios/<name>.toml``)."""
    from importlib import resources

    res = resources.files("clearsim.replay").joinpath("scenarios", f"{name}.toml")
    try:
        data = tomllib.loads(res.read_text(encoding="utf-8"))
    except (OSError, FileNotFoundError) as e:
        raise ScenarioError(f"bundled scenario {name!r}: {e}") from None
    return from_dict(data, base_dir=None, default_name=name)


def from_dict(
    d: object, base_dir: str | Path | None = None, default_name: str = "scenario"
) -> Scenario:
    """Validate the TOML shape of a scenario. ``base_dir`` resolves ``price.bars_file``."""
    top = _Table(d, "")
    top.known(*_CONFIG_TABLES, *_SCENARIO_TABLES)
    try:
        config = Config.from_dict({k: v for k, v in top.d.items() if k in _CONFIG_TABLES})
    except ConfigError as e:
        raise ScenarioError(str(e)) from None
    decimals = config.collateral_decimals

    sc = _Table(top.d.get("scenario", {}), "scenario")
    sc.known("name", "seed", "symbol", "start_ts", "step_s", "steps", "description")
    name = sc.d.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ScenarioError("scenario.name: expected a non-empty string")
    seed = sc.integer("seed", 0, 0, 2**63 - 1)
    symbol = sc.d.get("symbol", config.instruments[0].symbol)
    spec = config.instrument(symbol) if isinstance(symbol, str) else None
    if spec is None:
        raise ScenarioError(f"scenario.symbol: {symbol!r} is not one of the [[instruments]]")
    grid = Grid(spec.tick_size, spec.lot_size)

    price, bars_start, bars_step = _price(top.d.get("price", {}), grid, base_dir)
    start_ts = sc.integer("start_ts", bars_start or DEFAULT_START_TS, 0, 2**62)
    step_s = sc.integer("step_s", bars_step or 1, 1, 10**7)
    if price.kind == "series":
        steps = sc.integer("steps", len(price.series), 1, len(price.series))
    else:
        steps = sc.integer("steps", None, 1, 10**8)
    duration = (steps - 1) * step_s

    pop = _population(top.d.get("population", {}), decimals, config, spec.tiers[0].imr_ppm)
    if pop.count and pop.entry_window_s > duration:
        raise ScenarioError(
            f"population.entry_window_s: {pop.entry_window_s} runs past the end of the run "
            f"({duration} s = (steps - 1) x step_s)"
        )
    mm = _makers(top.d.get("market_makers", {}), decimals, grid)
    for j, jump in enumerate(price.jumps):
        if jump.at_s > duration:
            raise ScenarioError(f"price.jumps[{j}].at_s: {jump.at_s} is after the run's end")

    accounts: list[tuple[str, int]] = []
    for i, a in enumerate(top.items("accounts")):
        t = _Table(a, f"accounts[{i}]")
        t.known("id", "deposit")
        aid = t.d.get("id")
        _check_id(aid, t.key("id"), prefix=False)
        accounts.append((str(aid), t.atoms("deposit", decimals, True)))
    ids = [a for a, _ in accounts]
    taken = set(_ids(pop.id_prefix, pop.count)) | set(_ids(mm.id_prefix, mm.count))
    for i, aid in enumerate(ids):
        if aid in taken or aid in ids[:i]:
            raise ScenarioError(f"accounts[{i}].id: {aid!r} is already used")
    if set(_ids(pop.id_prefix, pop.count)) & set(_ids(mm.id_prefix, mm.count)):
        raise ScenarioError("population.id_prefix: clashes with market_makers.id_prefix")

    events: list[ScheduledCommand] = []
    for i, ev in enumerate(top.items("events")):
        t = _Table(ev, f"events[{i}]")
        t.known("at_s", "command")
        at = t.integer("at_s", None, 0, duration)
        cmd = t.d.get("command")
        if not isinstance(cmd, dict):
            raise ScenarioError(f"events[{i}].command: expected a table (a command without ts)")
        if "ts" in cmd:
            raise ScenarioError(f"events[{i}].command.ts: set by the scenario from at_s")
        why = parse_command({**cmd, "ts": start_ts + at * US})
        if isinstance(why, str):
            raise ScenarioError(f"events[{i}].command: {why}")
        events.append(ScheduledCommand(at, dict(cmd)))

    return Scenario(
        name=name,
        seed=seed,
        config=config,
        symbol=symbol,
        start_ts=start_ts,
        step_s=step_s,
        steps=steps,
        population=pop,
        makers=mm,
        price=price,
        accounts=tuple(accounts),
        events=tuple(events),
    )


def _population(d: object, decimals: int, config: Config, imr0: int) -> Population:
    t = _Table(d, "population")
    t.known(
        "count", "id_prefix", "leverage_min", "leverage_max", "leverage_dist", "size_min",
        "size_max", "size_dist", "long_ppm", "entry_window_s", "order", "entry_slippage_ppm",
    )  # fmt: skip
    count = t.integer("count", 0, 0, 10**8)
    prefix = t.ident("id_prefix", "u")
    lo = t.integer("leverage_min", 1, 1, 1000)
    hi = t.integer("leverage_max", lo, 1, 1000)
    if hi < lo:
        raise ScenarioError("population.leverage_max: must be >= leverage_min")
    if hi * imr0 > PPM:
        raise ScenarioError(
            f"population.leverage_max: {hi}x needs an initial margin of at most "
            f"{PPM // hi} ppm, but the first tier's imr_ppm is {imr0}"
        )
    size_min = t.atoms("size_min", decimals, count > 0)
    size_max = t.atoms("size_max", decimals, count > 0) if t.has("size_max") or count else 0
    if count and size_min <= 0:
        raise ScenarioError("population.size_min: must be positive")
    if size_max < size_min:
        raise ScenarioError("population.size_max: must be >= size_min")
    return Population(
        count=count,
        id_prefix=prefix,
        leverage_min=lo,
        leverage_max=hi,
        leverage_dist=t.choice("leverage_dist", "uniform", ("uniform", "skewed")),
        size_min=size_min,
        size_max=size_max,
        size_dist=t.choice("size_dist", "log_uniform", ("log_uniform", "uniform")),
        long_ppm=t.integer("long_ppm", 500_000, 0, PPM),
        entry_window_s=t.integer("entry_window_s", 60, 1, 10**8),
        order=t.choice("order", "ioc", ("ioc", "market")),
        entry_slippage_ppm=t.integer("entry_slippage_ppm", 2_000, 0, PPM - 1),
    )


def _makers(d: object, decimals: int, grid: Grid) -> MarketMakers:
    t = _Table(d, "market_makers")
    t.known(
        "count", "id_prefix", "deposit", "depth", "refresh_s", "requote_move_ppm",
        "thin_window_s", "thin_move_ppm", "thin_factor_ppm", "thin_spread_ppm",
    )  # fmt: skip
    count = t.integer("count", 0, 0, 10_000)
    depth: list[Level] = []
    for i, lv in enumerate(t.items("depth")):
        lt = _Table(lv, f"market_makers.depth[{i}]")
        lt.known("offset_ppm", "qty")
        off = lt.integer("offset_ppm", None, 1, PPM - 1)
        q = lt.d.get("qty")
        try:
            lots = grid.qty(q) if isinstance(q, str) else None
        except GridError as e:
            raise ScenarioError(f"{lt.key('qty')}: {e}") from None
        if lots is None:
            raise ScenarioError(f"{lt.key('qty')}: expected a decimal string, got {q!r}")
        if depth and off <= depth[-1].offset_ppm:
            raise ScenarioError(f"{lt.key('offset_ppm')}: offsets must increase level by level")
        depth.append(Level(off, lots))
    if count and not depth:
        raise ScenarioError("market_makers.depth: required (at least one level) when count > 0")
    return MarketMakers(
        count=count,
        id_prefix=t.ident("id_prefix", "mm"),
        deposit=t.atoms("deposit", decimals, count > 0),
        depth=tuple(depth),
        refresh_s=t.integer("refresh_s", 5, 1, 10**7),
        requote_move_ppm=t.integer("requote_move_ppm", 2_000, 0, PPM),
        thin_window_s=t.integer("thin_window_s", 60, 1, 10**7),
        thin_move_ppm=t.integer("thin_move_ppm", 0, 0, PPM),
        thin_factor_ppm=t.integer("thin_factor_ppm", 100_000, 0, PPM),
        thin_spread_ppm=t.integer("thin_spread_ppm", PPM, PPM, 100 * PPM),
    )


def _price(
    d: object, grid: Grid, base_dir: str | Path | None
) -> tuple[PricePath, int | None, int | None]:
    """The price path, and for bars the first used bar's ts and the bars' spacing (s)."""
    t = _Table(d, "price")
    kind = t.choice("kind", "random_walk", ("random_walk", "series"))
    if kind == "random_walk":
        t.known("kind", "start", "vol_ppm", "drift_ppm", "jumps")
        start = t.d.get("start")
        if start is None:
            raise ScenarioError("price.start: required for a random walk")
        try:
            ticks = grid.price(start) if isinstance(start, str) else None
        except GridError as e:
            raise ScenarioError(f"price.start: {e}") from None
        if ticks is None:
            raise ScenarioError(f"price.start: expected a decimal string, got {start!r}")
        jumps = []
        for i, j in enumerate(t.items("jumps")):
            jt = _Table(j, f"price.jumps[{i}]")
            jt.known("at_s", "move_ppm", "over_s")
            jumps.append(
                Jump(
                    jt.integer("at_s", None, 0, 10**9),
                    jt.integer("move_ppm", None, -PPM + 1, 100 * PPM),
                    jt.integer("over_s", 1, 1, 10**9),
                )
            )
        return (
            PricePath(
                kind,
                start=ticks,
                vol_ppm=t.integer("vol_ppm", 0, 0, PPM // 10),
                drift_ppm=t.integer("drift_ppm", 0, -PPM // 10, PPM // 10),
                jumps=tuple(jumps),
            ),
            None,
            None,
        )
    t.known("kind", "prices", "bars_file", "bars_field", "bars_from", "bars_count")
    if t.has("prices") == t.has("bars_file"):
        raise ScenarioError("price: a series needs exactly one of prices and bars_file")
    if t.has("prices"):
        values = []
        for i, v in enumerate(t.items("prices")):
            if not isinstance(v, str) or not _DECIMAL.match(v):
                raise ScenarioError(f"price.prices[{i}]: expected a decimal string, got {v!r}")
            values.append(Decimal(v))
        if not values:
            raise ScenarioError("price.prices: expected at least one price")
        return PricePath(kind, series=_to_ticks(values, grid, "price.prices")), None, None
    return _bars(t, grid, base_dir)


def _bars(t: _Table, grid: Grid, base_dir: str | Path | None) -> tuple[PricePath, int, int | None]:
    f = t.d["bars_file"]
    if not isinstance(f, str) or not f:
        raise ScenarioError("price.bars_file: expected a path")
    path = Path(f) if base_dir is None else Path(base_dir) / f
    field = t.choice("bars_field", "close", _BAR_FIELDS)
    try:
        # parse_float=Decimal: the file's numbers are read exactly, never through a float.
        bars = json.loads(path.read_bytes(), parse_float=Decimal)
    except OSError as e:
        raise ScenarioError(f"price.bars_file: {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise ScenarioError(f"price.bars_file: {path}: not valid JSON: {e}") from None
    if not isinstance(bars, list) or not bars:
        raise ScenarioError(f"price.bars_file: {path}: expected a non-empty JSON array of bars")
    first = t.integer("bars_from", 0, 0, len(bars) - 1)
    count = t.integer("bars_count", len(bars) - first, 1, len(bars) - first)
    used = bars[first : first + count]
    values: list[Decimal] = []
    stamps: list[int] = []
    for i, b in enumerate(used, start=first):
        v = b.get(field) if isinstance(b, dict) else None
        if isinstance(v, bool) or not isinstance(v, int | Decimal) or not v > 0:
            raise ScenarioError(f"price.bars_file: bar {i}: no positive {field!r}")
        values.append(Decimal(v))
        if len(stamps) < 2:
            stamps.append(_bar_ts(b, i))
    step = (stamps[1] - stamps[0]) // US if len(stamps) == 2 and stamps[1] > stamps[0] else None
    series = _to_ticks(values, grid, "price.bars_file")
    return PricePath("series", series=series), stamps[0], step


def _bar_ts(bar: dict[str, Any], i: int) -> int:
    ts = bar.get("timestamp")
    try:
        if not isinstance(ts, str):
            raise ValueError
        dt = _dt.datetime.fromisoformat(ts)
    except ValueError:
        raise ScenarioError(f"price.bars_file: bar {i}: no ISO 'timestamp'") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_dt.UTC)
    return (dt - _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)) // _dt.timedelta(microseconds=1)


def _to_ticks(values: list[Decimal], grid: Grid, key: str) -> tuple[int, ...]:
    """Decimal prices rounded half-up to the nearest tick (at least one tick)."""
    tick = Decimal(grid.tick_size)
    out = []
    for i, v in enumerate(values):
        try:
            out.append(max(1, int((v / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP))))
        except InvalidOperation:
            raise ScenarioError(f"{key}[{i}]: not a usable price: {v}") from None
    return tuple(out)
