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
    ``entry_window_s`` (int >= 1, default 60: with ``arrivals = "start"``, entry times are
    uniform over the first N seconds, and must fall inside the run) ·
    ``arrivals`` — when the accounts come (each enters at the index of its moment):
    ``"start"`` (the default: within ``entry_window_s``), or
    ``{ kind = "poisson", rate_per_min = X }`` (X an integer, a float or a decimal string:
    one after another at seeded exponential gaps of mean 1/X minutes, in id order, until
    the window ends or all ``count`` have come), or
    ``{ kind = "open_interest", target = "Q" }`` (every ``check_s``, default 60, while the
    population's open interest — the sum of its accounts' position sizes, long plus short,
    in the instrument's quantity, e.g. contracts — is below ``Q``, up to ``max_per_check``
    accounts, default 10, enter one after another; it reads the exchange the commands are
    applied to, as ``clearsim run`` does), or the same with
    ``series = { file = "ticker.csv.gz", share_ppm = N }`` in place of ``target``: the
    target at each check is ``N`` / 1,000,000 of the market's open interest then — the
    latest row at or before it of the file's ``open_interest`` column (``column = ...``
    for another; ``symbol = ...`` to pick rows of one source symbol; a tardis
    ``derivative_ticker`` file has both), floored to the lot grid, 0 before the first row. Both take
    a window: ``start`` / ``end`` (µs since the epoch, ISO-8601 UTC or a TOML datetime) or
    ``start_s`` / ``end_s`` (seconds from ``start_ts``); default the whole run. ``count`` is the
    pool they come from ·
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
    Series prices are rounded to the nearest tick. Bars need not be evenly spaced: without
    ``step_s`` each price comes at its own bar's time (with ``step_s``, they are that far
    apart whatever the bars say).

``[market]`` — an imported day as the market, instead of ``[price]`` (and of ``steps`` and
    ``step_s``): exactly one of ``commands`` (a command file, JSON Lines in ts order, such
    as ``clearsim import`` writes; path relative to the scenario file; or a list of them,
    e.g. a day's trades and its book imported from two formats, merged by ts, at one ts in
    the order listed) or ``import`` (an
    importer run in-process as the run goes: ``{ format, files = [...], symbol, every,
    path, price }``, the options of ``clearsim import``; ``symbol`` defaults to the
    scenario's, the files are relative to the scenario file). Both are streamed, never
    held in memory. Every command passes through untouched (``index_price``, ``funding``,
    any other type the engine takes), in the file's order; each ``index_price`` of the
    scenario's symbol is a price step (the makers re-quote after it, the arrivals enter at
    it). ``start_ts`` defaults to the market's first command's ts (and may not be later);
    the run ends with the market's last command (arrivals after it are not generated).

``[[accounts]]`` — other funded accounts (a backstop vault, a whale): ``id`` and
    ``deposit`` (decimal), deposited at ``start_ts``.

``[[events]]`` — commands at a point in the run (policy experiments): ``at_s`` (int >= 0,
    seconds from ``start_ts``, within the run) and ``command`` (a table in the command shape
    of DESIGN §10, without ``ts``). At the same timestamp they run before that step's index
    price (or the market's commands).

Generation is deterministic across machines and ``PYTHONHASHSEED``: each part draws from
its own ``random.Random`` seeded from ``(seed, stream)``, using integer methods only
(``randrange``, ``getrandbits``); no float enters a price, size, leverage or time (libm
functions like ``log``/``exp`` may differ in the last bit between platforms; a Poisson gap
comes from an integer logarithm, :mod:`.sampling`). Command order: setup deposits at
``start_ts``; then in time order: scheduled events, each step's ``index_price`` (or the
market's commands) followed by the makers' re-quotes, and each population entry (a
``deposit`` then an ``order`` at the same µs). At one µs the order is fixed: scheduled
events, then the price step or market commands, then entries (:mod:`.generate`).
"""

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
from clearsim.replay.scenarios.parse import bundled, bundled_path, from_dict, load

__all__ = [
    "DEFAULT_START_TS",
    "Arrivals",
    "Jump",
    "Level",
    "Market",
    "MarketCommands",
    "MarketImport",
    "MarketMakers",
    "OpenInterestArrivals",
    "PoissonArrivals",
    "Population",
    "PricePath",
    "Scenario",
    "ScenarioError",
    "ScheduledCommand",
    "StartArrivals",
    "bundled",
    "bundled_path",
    "from_dict",
    "load",
]
