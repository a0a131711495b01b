"""Reading a scenario file: the TOML tables checked key by key into a :class:`.Scenario`.

Every error is a :class:`.ScenarioError` naming ``<table>.<key>`` (and the file); the
exchange tables are validated by ``clearing.Config`` exactly as ``clearsim run --config``
reads them.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import re
import tomllib
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, Final

from clearsim.clearing import Config, ConfigError
from clearsim.events.commands import parse_command, to_units
from clearsim.events.units import INT64_MAX, MAX_TS, PPM, US_PER_S
from clearsim.orderbook.grid import Grid, GridError
from clearsim.replay.scenarios.generate import account_ids
from clearsim.replay.scenarios.model import (
    DEFAULT_START_TS,
    Arrivals,
    Jump,
    Level,
    Market,
    MarketCommands,
    MarketImport,
    MarketMakers,
    OpenInterestArrivals,
    PoissonArrivals,
    Population,
    PricePath,
    Scenario,
    ScenarioError,
    ScheduledCommand,
    StartArrivals,
)
from clearsim.replay.scenarios.oi_series import OiSeries, OiSeriesError, check_header

__all__ = ["bundled", "bundled_path", "from_dict", "load"]

_CONFIG_TABLES: Final = ("exchange", "insurance_fund", "waterfall", "instruments")
_SCENARIO_TABLES: Final = (
    "scenario", "population", "market_makers", "price", "market", "accounts", "events",
)  # fmt: skip
_ID: Final = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
_DECIMAL: Final = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_BAR_FIELDS: Final = ("open", "high", "low", "close", "vwap")
_EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


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


def _on_grid(read: Callable[[str], int], v: object, key: str) -> int:
    """A decimal string read onto the grid (``grid.price`` or ``grid.qty``) as an integer."""
    if not isinstance(v, str):
        raise ScenarioError(f"{key}: expected a decimal string, got {v!r}")
    try:
        return read(v)
    except GridError as e:
        raise ScenarioError(f"{key}: {e}") from None


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
    """A scenario shipped inside the package (``replay/scenarios/<name>.toml``); the files
    it names (a market's bars) are read from beside it, in the installed package."""
    return load(bundled_path(name))


def bundled_path(name: str = "crash") -> Path:
    """Where the bundled scenario ``name`` is installed (a file on disk: the package is
    installed as files, not zipped)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ScenarioError(f"bundled scenario {name!r}: not a scenario name")
    res = resources.files("clearsim.replay.scenarios").joinpath(f"{name}.toml")
    path = Path(str(res))
    if not path.is_file():
        raise ScenarioError(f"bundled scenario {name!r}: no such scenario in the package")
    return path


def from_dict(
    d: object, base_dir: str | Path | None = None, default_name: str = "scenario"
) -> Scenario:
    """Validate the TOML shape of a scenario. ``base_dir`` resolves ``price.bars_file`` and
    the ``[market]``'s files."""
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
    seed = sc.integer("seed", 0, 0, INT64_MAX)
    symbol = sc.d.get("symbol", config.instruments[0].symbol)
    spec = config.instrument(symbol) if isinstance(symbol, str) else None
    if spec is None:
        raise ScenarioError(f"scenario.symbol: {symbol!r} is not one of the [[instruments]]")
    grid = Grid(spec.tick_size, spec.lot_size)

    if top.has("market"):
        market, start_ts = _market_start(top, sc, base_dir, symbol)
        price, step_s, steps, duration = PricePath("series"), 1, 1, None
    else:
        market = None
        price, start_ts, step_s, steps = _price_steps(top, sc, grid, base_dir)
        duration = (
            price.offsets_us[steps - 1] // US_PER_S if price.offsets_us else (steps - 1) * step_s
        )

    pop = _population(
        top.d.get("population", {}),
        decimals,
        config,
        spec.tiers[0].imr_ppm,
        grid,
        start_ts,
        base_dir,
    )
    if duration is not None:
        _check_arrivals_in_run(pop, start_ts, duration)
    mm = _makers(top.d.get("market_makers", {}), decimals, grid)
    for j, jump in enumerate(price.jumps):
        if duration is not None and jump.at_s > duration:
            raise ScenarioError(f"price.jumps[{j}].at_s: {jump.at_s} is after the run's end")

    accounts: list[tuple[str, int]] = []
    for i, a in enumerate(top.items("accounts")):
        t = _Table(a, f"accounts[{i}]")
        t.known("id", "deposit")
        aid = t.d.get("id")
        _check_id(aid, t.key("id"), prefix=False)
        accounts.append((str(aid), t.atoms("deposit", decimals, True)))
    ids = [a for a, _ in accounts]
    taken = set(account_ids(pop.id_prefix, pop.count)) | set(account_ids(mm.id_prefix, mm.count))
    for i, aid in enumerate(ids):
        if aid in taken or aid in ids[:i]:
            raise ScenarioError(f"accounts[{i}].id: {aid!r} is already used")
    if set(account_ids(pop.id_prefix, pop.count)) & set(account_ids(mm.id_prefix, mm.count)):
        raise ScenarioError("population.id_prefix: clashes with market_makers.id_prefix")

    events: list[ScheduledCommand] = []
    for i, ev in enumerate(top.items("events")):
        t = _Table(ev, f"events[{i}]")
        t.known("at_s", "command")
        at = t.integer("at_s", None, 0, 10**10 if duration is None else duration)
        cmd = t.d.get("command")
        if not isinstance(cmd, dict):
            raise ScenarioError(f"events[{i}].command: expected a table (a command without ts)")
        if "ts" in cmd:
            raise ScenarioError(f"events[{i}].command.ts: set by the scenario from at_s")
        why = parse_command({**cmd, "ts": start_ts + at * US_PER_S})
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
        market=market,
    )


def _market_start(
    top: _Table, sc: _Table, base_dir: str | Path | None, symbol: str
) -> tuple[Market, int]:
    """The ``[market]`` and the run's start: its first command's ts, or an earlier
    ``start_ts``. The market replaces ``[price]``, ``steps`` and ``step_s``."""
    market, start_ts = _market(top.d["market"], base_dir, symbol)
    if top.has("price"):
        raise ScenarioError(
            "price: not used with [market] (the market's index_price commands are the price path)"
        )
    for k in ("step_s", "steps"):
        if sc.has(k):
            raise ScenarioError(f"scenario.{k}: not used with [market] (its commands are)")
    if sc.has("start_ts"):
        given = sc.integer("start_ts", None, 0, MAX_TS)
        if given > start_ts:
            raise ScenarioError(
                f"scenario.start_ts: {given} is after the market's first command ({start_ts})"
            )
        start_ts = given
    return market, start_ts


def _price_steps(
    top: _Table, sc: _Table, grid: Grid, base_dir: str | Path | None
) -> tuple[PricePath, int, int, int]:
    """The ``[price]`` path and its clock: (path, start_ts, step_s, steps)."""
    price, bars_start, bars_step = _price(top.d.get("price", {}), grid, base_dir)
    start_ts = sc.integer("start_ts", bars_start or DEFAULT_START_TS, 0, MAX_TS)
    if sc.has("step_s") and price.offsets_us:  # the user's even spacing wins
        price = PricePath("series", series=price.series)
    step_s = sc.integer("step_s", bars_step or 1, 1, 10**7)
    if price.kind == "series":
        steps = sc.integer("steps", len(price.series), 1, len(price.series))
    else:
        steps = sc.integer("steps", None, 1, 10**8)
    return price, start_ts, step_s, steps


def _population(
    d: object,
    decimals: int,
    config: Config,
    imr0: int,
    grid: Grid,
    start_ts: int,
    base_dir: str | Path | None,
) -> Population:
    t = _Table(d, "population")
    t.known(
        "count", "id_prefix", "leverage_min", "leverage_max", "leverage_dist", "size_min",
        "size_max", "size_dist", "long_ppm", "entry_window_s", "order", "entry_slippage_ppm",
        "arrivals",
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
        arrivals=_arrivals(t.d.get("arrivals", "start"), grid, start_ts, base_dir),
    )


def _arrivals(v: object, grid: Grid, start_ts: int, base_dir: str | Path | None) -> Arrivals:
    """``population.arrivals``: ``"start"``, or a table with ``kind`` poisson or
    open_interest and a window (``start``/``end``: µs, ISO-8601 UTC or a TOML datetime;
    or ``start_s``/``end_s``: seconds from the run's start)."""
    if v == "start":
        return StartArrivals()
    if isinstance(v, str):
        raise ScenarioError(
            f'population.arrivals: expected "start" or a table with kind = "poisson" or '
            f'"open_interest", got {v!r}'
        )
    t = _Table(v, "population.arrivals")
    kind = t.choice("kind", "", ("poisson", "open_interest"))
    window = ("start", "end", "start_s", "end_s")
    begin, end = _moment(t, "start", start_ts), _moment(t, "end", start_ts)
    if begin is not None and begin < start_ts:
        raise ScenarioError(f"population.arrivals.start: {begin} is before the run's start")
    if begin is not None and end is not None and end <= begin:
        raise ScenarioError("population.arrivals.end: must be after start")
    if kind == "poisson":
        t.known("kind", "rate_per_min", *window)
        num, den = _rate(t.d.get("rate_per_min"), t.key("rate_per_min"))
        return PoissonArrivals(num, den, begin, end)
    t.known("kind", "target", "series", "check_s", "max_per_check", *window)
    if t.has("target") and t.has("series"):
        raise ScenarioError(f"{t.key('series')}: give target or series, not both")
    series = _oi_series(t.d["series"], t.key("series"), base_dir) if t.has("series") else None
    target = 0
    if series is None:  # positive, on the grid
        target = _on_grid(grid.qty, t.d.get("target"), t.key("target"))
    return OpenInterestArrivals(
        target=target,
        check_s=t.integer("check_s", 60, 1, 10**7),
        max_per_check=t.integer("max_per_check", 10, 1, 10**6),
        start_ts=begin,
        end_ts=end,
        series=series,
    )


def _oi_series(v: object, key: str, base_dir: str | Path | None) -> OiSeries:
    """``arrivals.series``: ``{ file, share_ppm, column = "open_interest", symbol }``; the
    file's header is checked now (its rows are read as the run goes)."""
    t = _Table(v, key)
    t.known("file", "share_ppm", "column", "symbol")
    if not t.has("file"):
        raise ScenarioError(f"{t.key('file')}: required (a CSV with timestamp and the column)")
    column, symbol = t.d.get("column", "open_interest"), t.d.get("symbol")
    if not isinstance(column, str) or not column:
        raise ScenarioError(f"{t.key('column')}: expected a column name, got {column!r}")
    if symbol is not None and (not isinstance(symbol, str) or not symbol):
        raise ScenarioError(f"{t.key('symbol')}: expected a symbol, got {symbol!r}")
    s = OiSeries(
        path=_path(t.d["file"], base_dir, t.key("file")),
        share_ppm=t.integer("share_ppm", None, 1, PPM),
        column=column,
        symbol=symbol,
    )
    try:
        check_header(s)
    except OiSeriesError as e:
        raise ScenarioError(f"{key}: {e}") from None
    return s


def _moment(t: _Table, k: str, start_ts: int) -> int | None:
    """``k`` (a time) or ``k_s`` (seconds from ``start_ts``) as µs, or None when absent."""
    rel = f"{k}_s"
    if t.has(k) and t.has(rel):
        raise ScenarioError(f"{t.key(k)}: give {k} or {rel}, not both")
    if t.has(rel):
        return start_ts + t.integer(rel, None, 0, 10**10) * US_PER_S
    if not t.has(k):
        return None
    v = t.d[k]
    if isinstance(v, _dt.datetime):
        if v.tzinfo is None:
            raise ScenarioError(f"{t.key(k)}: a datetime without a UTC offset: add Z")
        d = v - _EPOCH
        return (d.days * 86_400 + d.seconds) * US_PER_S + d.microseconds
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_TS:
        return v
    if isinstance(v, str):
        from clearsim.replay.cli.times import parse_time  # the cli imports the scenarios

        try:
            return parse_time(v)
        except ValueError as e:
            raise ScenarioError(f"{t.key(k)}: {e}") from None
    raise ScenarioError(f"{t.key(k)}: expected µs since the epoch or an ISO-8601 UTC time")


def _rate(v: object, key: str) -> tuple[int, int]:
    """A positive rate (an integer, a float as written or a decimal string) as a fraction."""
    if v is None:
        raise ScenarioError(f"{key}: required")
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise ScenarioError(f"{key}: expected a positive number, got {v!r}")
    # A TOML float is read back through its shortest repr, so 3.5 is exactly 7/2.
    text = repr(v) if isinstance(v, float) else str(v)
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise ScenarioError(f"{key}: expected a positive number, got {v!r}") from None
    if not d.is_finite() or not 0 < d <= 10**9:
        raise ScenarioError(f"{key}: expected a positive number up to 10^9, got {v!r}")
    num, den = d.as_integer_ratio()
    return num, den


def _check_arrivals_in_run(pop: Population, start_ts: int, duration: int) -> None:
    """Arrivals must fall inside a run whose length is known (a [price] path)."""
    if not pop.count:
        return
    a = pop.arrivals
    end = start_ts + duration * US_PER_S
    if isinstance(a, StartArrivals):
        if pop.entry_window_s > duration:
            raise ScenarioError(
                f"population.entry_window_s: {pop.entry_window_s} runs past the end of the run "
                f"({duration} s = (steps - 1) x step_s)"
            )
        return
    for name, ts in (("start", a.start_ts), ("end", a.end_ts)):
        if ts is not None and ts > end:
            raise ScenarioError(
                f"population.arrivals.{name}: {ts} is after the run's end ({end} µs)"
            )


def _market(d: object, base_dir: str | Path | None, symbol: str) -> tuple[Market, int]:
    """``[market]``: a command file or an importer's input, and its first command's ts."""
    t = _Table(d, "market")
    t.known("commands", "import")
    if t.has("commands") == t.has("import"):
        raise ScenarioError("market: expected exactly one of commands and import")
    m: Market
    if t.has("commands"):
        v = t.d["commands"]
        if isinstance(v, list):
            if not v:
                raise ScenarioError("market.commands: expected a file or a list of files")
            named = [_path(f, base_dir, f"market.commands[{i}]") for i, f in enumerate(v)]
        else:
            named = [_path(v, base_dir, "market.commands")]
        m = MarketCommands(tuple(named))
    else:
        it = _Table(t.d["import"], "market.import")
        it.known("format", "files", "symbol", "every", "path", "price")
        from clearsim.replay.importers import FORMATS, parse_every
        from clearsim.replay.importers._common import ImportFailed

        fmt = it.choice("format", "", tuple(FORMATS))
        files = it.items("files")
        if not files:
            raise ScenarioError("market.import.files: expected a list of at least one file")
        paths = tuple(_path(f, base_dir, f"market.import.files[{i}]") for i, f in enumerate(files))
        sym = it.d.get("symbol", symbol)
        if not isinstance(sym, str) or not sym:
            raise ScenarioError("market.import.symbol: expected a symbol")
        every = it.d.get("every")
        if every is not None:
            try:
                parse_every(str(every))
            except ImportFailed as e:
                raise ScenarioError(f"market.import.every: {e}") from None
        takes = FORMATS[fmt][1]
        options = []
        for k in ("path", "price"):
            if it.has(k):
                if k not in takes:
                    raise ScenarioError(f"market.import.{k}: does not apply to format {fmt}")
                options.append((k, str(it.d[k])))
        m = MarketImport(fmt, paths, sym, None if every is None else str(every), tuple(options))
    for p in m.paths if isinstance(m, MarketCommands) else m.files:
        if not p.is_file():
            raise ScenarioError(f"market: {p}: no such file")
    from clearsim.replay.scenarios.market import first_ts  # market imports the model

    return m, first_ts(m)


def _path(v: object, base_dir: str | Path | None, key: str) -> Path:
    if not isinstance(v, str) or not v:
        raise ScenarioError(f"{key}: expected a path")
    return Path(v) if base_dir is None else Path(base_dir) / v


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
        lots = _on_grid(grid.qty, lt.d.get("qty"), lt.key("qty"))
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
        ticks = _on_grid(grid.price, start, "price.start")
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
        ts = _bar_ts(b, i)
        if stamps and ts <= stamps[-1]:
            raise ScenarioError(f"price.bars_file: bar {i}: timestamp not after the bar before")
        stamps.append(ts)
    step = (stamps[1] - stamps[0]) // US_PER_S if len(stamps) >= 2 else None
    series = _to_ticks(values, grid, "price.bars_file")
    gaps = {b - a for a, b in itertools.pairwise(stamps)}
    if len(gaps) <= 1 and (not gaps or min(gaps) % US_PER_S == 0):
        return PricePath("series", series=series), stamps[0], step
    # Unevenly spaced bars: each price at its own bar's time.
    offsets = tuple(s - stamps[0] for s in stamps)
    return PricePath("series", series=series, offsets_us=offsets), stamps[0], max(1, step or 1)


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
