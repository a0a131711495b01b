"""Generating a scenario's commands: the price path (or an imported market), the makers'
quotes, the population's arrivals and the scheduled events, merged into one stream.

Each part is a stream of ``(ts, rank, n, payload)`` in its own ts order; :func:`commands`
merges them (``heapq.merge``: one item of each stream held at a time, so an imported day is
never in memory) and expands each item into commands as it is taken. At one µs the rank
decides: scheduled events, then the price step (or the market's commands, in the market's
order, each of its ``index_price`` of the scenario's symbol followed by the makers'
re-quotes), then arrivals; ``n`` keeps each stream's own order. An arrival is expanded when
it is taken, so it enters at the index of its moment: the last price step at or before its
ts. Arrivals before the first index price wait for it; arrivals after a market's last
command are dropped.

See :mod:`replay.scenarios` for the rules (no float enters a price, size, leverage or time);
the draws are :mod:`.sampling`'s, the arrivals :mod:`.arrivals`'.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

from clearsim.clearing.config import fmt_atoms
from clearsim.clearing.margin import notional, value
from clearsim.events.units import PPM, US_PER_S
from clearsim.orderbook.grid import Grid, GridError
from clearsim.replay.scenarios import arrivals
from clearsim.replay.scenarios.arrivals import Entry
from clearsim.replay.scenarios.oi_series import OiCursor
from clearsim.replay.scenarios.sampling import (
    _pow2_fractions,  # noqa: F401 - re-exported for the tests' exact-table check
    account_ids,
    noise_ppm,
    rng,
)

if TYPE_CHECKING:
    from clearsim.clearing import Exchange
    from clearsim.replay.scenarios.model import Scenario

__all__ = ["account_ids", "commands", "prices"]

#: Price state of the random walk is kept in millionths of a tick, so a 1 ppm move on a
#: price of a few thousand ticks is not lost to rounding step after step.
_SUB: Final = 1_000_000
#: The price path's seeded stream (the population's and the arrivals' are in .arrivals).
_PRICE: Final = 2
#: Ranks of the merged streams at one µs.
_EVENT, _STEP, _ARRIVAL, _END = 0, 1, 2, 3

Item = tuple[int, int, int, Any]  # (ts, rank, n, payload)
Command = dict[str, Any]


def prices(sc: Scenario, seed: int | None = None) -> list[int]:
    """The index (ticks) at each step (with a ``market``: each of its ``index_price``
    commands of the scenario's symbol that is on the tick grid)."""
    p = sc.price
    if sc.market is not None:
        grid = _grid(sc)
        return [px for _, px in _market_prices(sc, grid)]
    if p.kind == "series":
        return list(p.series[: sc.steps])
    r = rng(sc.seed if seed is None else seed, _PRICE)
    walk = p.start * _SUB
    out: list[int] = []
    for k in range(sc.steps):
        if k:
            move = p.drift_ppm + noise_ppm(r, p.vol_ppm)
            walk = max(_SUB, walk * (PPM + move) // PPM)
        t = k * sc.step_s
        level = walk
        for j in p.jumps:
            done = min(max(t - j.at_s, 0), j.over_s)
            level = level * (PPM * j.over_s + j.move_ppm * done) // (PPM * j.over_s)
        out.append(max(1, (level + _SUB // 2) // _SUB))
    return out


def commands(
    sc: Scenario, seed: int | None = None, exchange: Exchange | None = None
) -> Iterator[Command]:
    """Every command of the run, in ``ts`` order (non-decreasing); ``exchange``: the one the
    commands are applied to as they are generated (read by ``open_interest`` arrivals)."""
    seed = sc.seed if seed is None else seed
    grid = _grid(sc)
    makers = _Makers(sc, grid)
    for acct, amount in [(m, sc.makers.deposit) for m in makers.ids] + list(sc.accounts):
        yield {"type": "deposit", "ts": sc.start_ts, "account": acct, "amount": makers.fmt(amount)}

    if sc.market is None:
        path = prices(sc, seed)
        offsets = sc.price.offsets_us
        if offsets:
            step_items: Iterator[Item] = (
                (sc.start_ts + offsets[k], _STEP, k, px) for k, px in enumerate(path)
            )
            ref: Callable[[int, int, int], int] = _Window(sc.makers.thin_window_s).ref
        else:
            step_us = sc.step_s * US_PER_S
            step_items = ((sc.start_ts + k * step_us, _STEP, k, px) for k, px in enumerate(path))
            thin_w = max(1, sc.makers.thin_window_s // sc.step_s)

            def ref(k: int, ts: int, px: int) -> int:  # even steps: the level thin_w ago
                return path[max(0, k - thin_w)]
    else:
        step_items = _market_items(sc)
        ref = _Window(sc.makers.thin_window_s).ref

    people = _Arrivals(sc, seed, grid, exchange)
    scheduled = sorted(
        (sc.start_ts + e.at_s * US_PER_S, _EVENT, i, e.command) for i, e in enumerate(sc.events)
    )
    sym = sc.symbol
    index: int | None = None
    held: list[Entry] = []  # arrivals before the first index price
    done = 0  # scheduled events yielded
    for ts, rank, n, item in heapq.merge(scheduled, step_items, people.items()):
        if rank == _EVENT:
            done += 1
            yield {**item, "ts": ts}
        elif rank == _STEP:
            if sc.market is None:
                px: int = item
                yield {"type": "index_price", "ts": ts, "symbol": sym, "price": grid.fmt_price(px)}
            else:
                yield item
                got = _symbol_price(item, sym, grid)
                if got is None:
                    continue
                px = got
            index = px
            yield from makers.step(ts, px, ref(n, ts, px))
            for e in held:
                yield from people.arrive(ts, e, px)
            held.clear()
        elif rank == _ARRIVAL:
            if index is None:
                if item is not None:
                    held.append(item)
                continue
            yield from people.arrive(ts, item, index)
        else:
            break  # the market's end: later arrivals (maybe endless checks) are not run
    for ts, _, _, cmd in scheduled[done:]:
        yield {**cmd, "ts": ts}


def _grid(sc: Scenario) -> Grid:
    spec = sc.config.instrument(sc.symbol)
    if spec is None:  # pragma: no cover - checked when the scenario was built
        from clearsim.replay.scenarios.model import ScenarioError  # model imports us

        raise ScenarioError(f"unknown symbol {sc.symbol}")
    return Grid(spec.tick_size, spec.lot_size)


def _symbol_price(cmd: object, symbol: str, grid: Grid) -> int | None:
    """The ticks of an ``index_price`` of ``symbol`` on the grid (the engine refuses one off
    it, so the makers do not quote around it either), else None."""
    if not isinstance(cmd, dict) or cmd.get("type") != "index_price":
        return None
    price = cmd.get("price")
    if cmd.get("symbol") != symbol or not isinstance(price, str):
        return None
    try:
        return grid.price(price)
    except GridError:
        return None


def _market_items(sc: Scenario) -> Iterator[Item]:
    from clearsim.replay.scenarios.market import stream  # market imports the model

    if sc.market is None:
        return
    n, last = 0, sc.start_ts
    for cmd in stream(sc.market):
        last = cmd["ts"]
        yield (last, _STEP, n, cmd)
        n += 1
    yield (last, _END, n, None)


def _market_prices(sc: Scenario, grid: Grid) -> Iterator[tuple[int, int]]:
    for ts, rank, _, cmd in _market_items(sc):
        px = _symbol_price(cmd, sc.symbol, grid) if rank == _STEP else None
        if px is not None:
            yield ts, px


class _Window:
    """The index ``window_s`` ago, for steps at any spacing: the price of the last step at
    or before ``ts - window`` (the oldest step while there is none that old)."""

    def __init__(self, window_s: int) -> None:
        self.window = window_s * US_PER_S
        self.steps: deque[tuple[int, int]] = deque()

    def ref(self, k: int, ts: int, px: int) -> int:
        s = self.steps
        s.append((ts, px))
        while len(s) > 1 and s[1][0] <= ts - self.window:
            s.popleft()
        return s[0][1]


class _Makers:
    """The market makers' ladders: a re-quote (cancel_all, then every level on both sides)
    every ``refresh_s``, or when the index moved more than ``requote_move_ppm``; thinned
    while the index moved ``thin_move_ppm`` against its level ``thin_window_s`` ago."""

    def __init__(self, sc: Scenario, grid: Grid) -> None:
        self.mm = sc.makers
        self.ids = sc.maker_ids()
        self.grid = grid
        self.symbol = sc.symbol
        self.scale = 10**sc.config.collateral_decimals
        self.quote_no = 0
        self.last_ts = -1
        self.last_px = 0

    def fmt(self, atoms: int) -> str:
        return fmt_atoms(atoms, self.scale)

    def step(self, ts: int, px: int, ref: int) -> Iterator[Command]:
        mm = self.mm
        if not self.ids:
            return
        moved = abs(px - self.last_px) * PPM > mm.requote_move_ppm * self.last_px
        if self.last_ts >= 0 and ts - self.last_ts < mm.refresh_s * US_PER_S and not moved:
            return
        thin = mm.thin_move_ppm > 0 and abs(px - ref) * PPM >= mm.thin_move_ppm * ref
        self.quote_no += 1
        grid = self.grid
        for m in self.ids:
            if self.last_ts >= 0:
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
                        "id": f"{side[0]}{lv_no}-{self.quote_no}",
                        "symbol": self.symbol,
                        "side": side,
                        "qty": grid.fmt_qty(qty),
                        "price": grid.fmt_price(price),
                        "tif": "gtc",
                    }
        self.last_ts, self.last_px = ts, px


class _Arrivals:
    """The population's arrival stream and, as each is taken, its entry commands."""

    def __init__(self, sc: Scenario, seed: int, grid: Grid, exchange: Exchange | None) -> None:
        spec = sc.config.instrument(sc.symbol)
        if spec is None:  # pragma: no cover - checked when the scenario was built
            raise TypeError(f"unknown symbol {sc.symbol}")
        self.sc, self.seed, self.grid, self.spec = sc, seed, grid, spec
        self.exchange = exchange
        self.scale = 10**sc.config.collateral_decimals
        self.taker_ppm = max(0, spec.taker_fee_ppm)
        self.pool: Iterator[Entry] = iter(())
        #: open_interest: arrived accounts that may still hold a position
        self.open: list[str] = []
        #: open_interest with a series: the market's open interest as the run reaches it
        self.oi_series: OiCursor | None = None

    def items(self) -> Iterator[Item]:
        from clearsim.replay.scenarios.model import (  # model imports us
            OpenInterestArrivals,
            PoissonArrivals,
        )

        sc, a = self.sc, self.sc.population.arrivals
        if not sc.population.count:
            return iter(())
        end = sc.end_ts() if sc.market is None else None
        if isinstance(a, PoissonArrivals):
            end = a.end_ts if a.end_ts is not None else end
            return (
                (e.ts, _ARRIVAL, e.n, e) for e in arrivals.poisson_entries(sc, self.seed, a, end)
            )
        if isinstance(a, OpenInterestArrivals):
            self.pool = arrivals.draws(sc, self.seed)
            if a.series is not None:
                self.oi_series = OiCursor(a.series, self.spec.lot_size)
            end = a.end_ts if a.end_ts is not None else end
            return ((t, _ARRIVAL, k, None) for k, t in enumerate(arrivals.check_times(sc, a, end)))
        return ((e.ts, _ARRIVAL, e.n, e) for e in arrivals.start_entries(sc, self.seed))

    def arrive(self, ts: int, item: Entry | None, index: int) -> Iterator[Command]:
        if item is not None:
            yield from self.entry(item if item.ts == ts else item._replace(ts=ts), index)
            return
        yield from self.top_up(ts, index)

    def top_up(self, ts: int, index: int) -> Iterator[Command]:
        """``open_interest``: let accounts in, one at a time, while the population's open
        interest is below the target (each entry is applied before the next is decided:
        the runner pulls one command at a time)."""
        from clearsim.replay.scenarios.model import OpenInterestArrivals, ScenarioError

        a = self.sc.population.arrivals
        if not isinstance(a, OpenInterestArrivals):  # pragma: no cover - items() made checks
            raise TypeError(f"expected open_interest arrivals, got {a!r}")
        ex = self.exchange
        if ex is None:
            raise ScenarioError(
                "population.arrivals: open_interest arrivals read the exchange the commands "
                "are applied to: pass it to Scenario.commands (clearsim run does)"
            )
        oi = self._open_interest(ex)
        target = a.target if self.oi_series is None else self.oi_series.target_at(ts)
        for _ in range(a.max_per_check):
            if oi >= target:
                return
            e = next(self.pool, None)
            if e is None:
                return
            yield from self.entry(e._replace(ts=ts), index)
            q = self._position(ex, e.account)  # applied by now
            if q:
                self.open.append(e.account)
                oi += abs(q)

    def _position(self, ex: Exchange, account: str) -> int:
        acct = ex.accounts.get(account)
        pos = acct.positions.get(self.sc.symbol) if acct is not None else None
        return pos.qty if pos is not None else 0

    def _open_interest(self, ex: Exchange) -> int:
        """The sum of the open arrived accounts' position sizes (flat ones are forgotten:
        an account enters once, so a flat one never trades again)."""
        sizes = [(a, abs(self._position(ex, a))) for a in self.open]
        self.open = [a for a, q in sizes if q]
        return sum(q for _, q in sizes)

    def entry(self, e: Entry, index: int) -> Iterator[Command]:
        """The account's deposit and its one order, priced at ``index``."""
        sc, spec, grid = self.sc, self.spec, self.grid
        pop = sc.population
        slip = pop.entry_slippage_ppm
        # Lots for the wanted notional at the index: linear N = q x p x k, inverse N = q x k / p.
        per = index * spec.k
        lots = e.notional * index // spec.k if spec.inverse else e.notional // per
        lots = max(1, lots)
        up, down = -((-index * (PPM + slip)) // PPM), max(1, index * (PPM - slip) // PPM)
        limit = up if e.long else down
        # Deposit = N / L, plus what the pre-trade check charges on top: the loss against
        # the mark of filling at the limit (from the limit as rounded to the tick, which may
        # be a hair beyond the slippage allowance) and the taker fee. So the order passes
        # "E >= IM" whenever L <= 1 / imr, and the account's leverage is L to within a fee.
        n_max = max(notional(spec, lots, index), notional(spec, lots, limit))
        slip_cost = abs(value(spec, lots, index) - value(spec, lots, limit))
        fee = -((-notional(spec, lots, limit) * self.taker_ppm) // PPM)
        deposit = -((-n_max) // e.leverage) + slip_cost + fee + 2  # +2: value, notional round
        yield {
            "type": "deposit",
            "ts": e.ts,
            "account": e.account,
            "amount": fmt_atoms(deposit, self.scale),
        }
        order: dict[str, Any] = {
            "type": "order",
            "ts": e.ts,
            "account": e.account,
            "id": "entry",
            "symbol": sc.symbol,
            "side": "buy" if e.long else "sell",
            "qty": grid.fmt_qty(lots),
        }
        if pop.order == "ioc":
            order["price"] = grid.fmt_price(limit)
            order["tif"] = "ioc"
        yield order
