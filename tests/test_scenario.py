"""Scenario files: validation (one-line errors naming the key), determinism (same file + same
seed = same log bytes, under any PYTHONHASHSEED), and the generated market honouring the
file (population count, leverage bounds, side mix, sizes, price paths, BitMEX bars)."""

from __future__ import annotations

import copy
import itertools
import os
import statistics
import subprocess
import sys
import tomllib
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from clearsim.clearing import Config
from clearsim.events.log import LogReader
from clearsim.events.types import Input, ParamSet, Rejected
from clearsim.replay import scenarios as scn
from clearsim.replay.runner import run
from clearsim.replay.scenarios import ScenarioError, generate

ROOT = Path(__file__).resolve().parents[1]
BARS = ROOT.parent / "shared" / "data" / "bitmex" / "XBTUSD-1m-2020-03-12.json"
T0 = 1_700_000_000_000_000

#: A small but complete scenario: every table, a crash, a backstop, a scheduled `set`.
SMALL: dict[str, Any] = {
    "scenario": {"name": "small", "seed": 7, "start_ts": T0, "step_s": 1, "steps": 400},
    "exchange": {"collateral": "USDT", "collateral_decimals": 6},
    "insurance_fund": {"initial": "2000"},
    "waterfall": {
        "steps": ["book", "backstop", "adl"],
        "price_limit": "market",
        "surplus": "insurance_fund",
        "backstop_accounts": ["vault"],
    },
    "instruments": [
        {
            "symbol": "BTC-USD",
            "tick_size": "0.1",
            "lot_size": "0.001",
            "taker_fee_ppm": 400,
            "band_ppm": 100_000,
            "tiers": [
                {"max_notional": "100000", "imr_ppm": 20_000, "mmr_ppm": 5_000},
                {"max_notional": "100000000", "imr_ppm": 100_000, "mmr_ppm": 25_000},
            ],
        }
    ],
    "population": {
        "count": 300,
        "leverage_min": 2,
        "leverage_max": 50,
        "leverage_dist": "skewed",
        "size_min": "200",
        "size_max": "20000",
        "long_ppm": 650_000,
        "entry_window_s": 100,
    },
    "market_makers": {
        "count": 2,
        "deposit": "5000000",
        "refresh_s": 5,
        "depth": [{"offset_ppm": 300, "qty": "1"}, {"offset_ppm": 2000, "qty": "3"}],
        "thin_move_ppm": 15_000,
        "thin_window_s": 20,
        "thin_factor_ppm": 50_000,
        "thin_spread_ppm": 4_000_000,
    },
    "price": {
        "kind": "random_walk",
        "start": "50000",
        "vol_ppm": 300,
        "jumps": [{"at_s": 150, "move_ppm": -300_000, "over_s": 60}],
    },
    "accounts": [{"id": "vault", "deposit": "100000"}],
    "events": [
        {
            "at_s": 300,
            "command": {"type": "set", "path": "waterfall.liquidation_fee_ppm", "value": "2000"},
        }
    ],
}


def small(**changes: Any) -> dict[str, Any]:
    """SMALL with ``{"table.key": value}`` changes (value ``None`` deletes the key)."""
    d = copy.deepcopy(SMALL)
    for path, v in changes.items():
        *parents, last = path.split(".")
        t = d
        for k in parents:
            t = t[int(k)] if isinstance(t, list) else t.setdefault(k, {})
        if v is None:
            del t[last]
        else:
            t[last] = v
    return d


def toml_text(d: dict[str, Any]) -> str:
    """Minimal TOML writer for the scenario shapes used here (tables, arrays of tables)."""

    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + " }"
        raise TypeError(v)

    out: list[str] = []
    for name, table in d.items():
        if isinstance(table, list):
            for item in table:
                out.append(f"[[{name}]]")
                out += [f"{k} = {val(v)}" for k, v in item.items()]
        else:
            out.append(f"[{name}]")
            out += [f"{k} = {val(v)}" for k, v in table.items()]
        out.append("")
    return "\n".join(out)


@pytest.fixture(scope="module")
def small_scenario() -> scn.Scenario:
    return scn.from_dict(SMALL)


@pytest.fixture(scope="module")
def small_commands(small_scenario: scn.Scenario) -> list[dict[str, Any]]:
    return list(small_scenario.commands())


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": {}}, "colour: unknown key"),
        ({"population.colour": 1}, "population.colour: unknown key"),
        ({"scenario.steps": None}, "scenario.steps: required"),
        ({"scenario.steps": 0}, "scenario.steps: expected an integer in [1, "),
        ({"scenario.step_s": "1"}, "scenario.step_s: expected an integer"),
        ({"scenario.seed": -1}, "scenario.seed: expected an integer"),
        ({"scenario.symbol": "ETH-USD"}, "scenario.symbol: 'ETH-USD' is not one of"),
        ({"scenario.name": ""}, "scenario.name"),
        ({"population.leverage_max": 0}, "population.leverage_max: expected an integer"),
        ({"population.leverage_min": 10, "population.leverage_max": 5}, "must be >= leverage_min"),
        ({"population.leverage_max": 60}, "population.leverage_max: 60x needs an initial margin"),
        ({"population.leverage_dist": "normal"}, "population.leverage_dist: expected one of"),
        ({"population.size_min": 200}, "population.size_min: expected a non-negative decimal"),
        ({"population.size_min": None}, "population.size_min: required"),
        ({"population.size_min": "0"}, "population.size_min: must be positive"),
        ({"population.size_max": "100"}, "population.size_max: must be >= size_min"),
        ({"population.size_min": "0.0000001"}, "population.size_min: more than 6 decimals"),
        ({"population.long_ppm": 1_000_001}, "population.long_ppm: expected an integer in [0,"),
        ({"population.entry_window_s": 500}, "population.entry_window_s: 500 runs past the end"),
        ({"population.id_prefix": "#u"}, "population.id_prefix: expected an account id"),
        ({"population.order": "fok"}, "population.order: expected one of ioc, market"),
        ({"market_makers.deposit": None}, "market_makers.deposit: required"),
        ({"market_makers.depth": []}, "market_makers.depth: required"),
        ({"market_makers.depth": "deep"}, "market_makers.depth: expected a list"),
        (
            {
                "market_makers.depth": [
                    {"offset_ppm": 300, "qty": "1"},
                    {"offset_ppm": 300, "qty": "1"},
                ]
            },
            "market_makers.depth[1].offset_ppm: offsets must increase",
        ),
        (
            {"market_makers.depth": [{"offset_ppm": 300, "qty": "0.0005"}]},
            "market_makers.depth[0].qty: quantity not a whole number of lots",
        ),
        (
            {"market_makers.depth": [{"offset_ppm": 300, "qty": 1}]},
            "depth[0].qty: expected a decimal",
        ),
        ({"market_makers.depth": [{"offset_ppm": 0, "qty": "1"}]}, "depth[0].offset_ppm: expected"),
        (
            {"market_makers.thin_spread_ppm": 5},
            "market_makers.thin_spread_ppm: expected an integer",
        ),
        ({"price.kind": "brownian"}, "price.kind: expected one of random_walk, series"),
        ({"price.start": None}, "price.start: required for a random walk"),
        ({"price.start": "50000.05"}, "price.start: price off the tick grid"),
        ({"price.start": 50000}, "price.start: expected a decimal string"),
        ({"price.vol_ppm": -1}, "price.vol_ppm: expected an integer"),
        ({"price.jumps": [{"at_s": 10, "move_ppm": -1_000_000}]}, "price.jumps[0].move_ppm"),
        ({"price.jumps": [{"move_ppm": -10}]}, "price.jumps[0].at_s: required"),
        ({"price.jumps": [{"at_s": 999, "move_ppm": -10}]}, "price.jumps[0].at_s: 999 is after"),
        (
            {"price": {"kind": "series"}},
            "price: a series needs exactly one of prices and bars_file",
        ),
        ({"price": {"kind": "series", "prices": []}}, "price.prices: expected at least one"),
        ({"price": {"kind": "series", "prices": ["1", 2]}}, "price.prices[1]: expected a decimal"),
        ({"price": {"kind": "series", "prices": ["1"], "start": "1"}}, "price.start: unknown key"),
        (
            {"price": {"kind": "series", "bars_file": "/nonexistent/bars.json"}},
            "price.bars_file: /nonexistent/bars.json:",
        ),
        ({"accounts": [{"id": "#evil", "deposit": "1"}]}, "accounts[0].id: expected an account id"),
        ({"accounts": [{"id": "@x", "deposit": "1"}]}, "accounts[0].id: expected an account id"),
        ({"accounts": [{"id": "mm1", "deposit": "1"}]}, "accounts[0].id: 'mm1' is already used"),
        ({"accounts": [{"id": "v"}]}, "accounts[0].deposit: required"),
        ({"events": [{"at_s": 1}]}, "events[0].command: expected a table"),
        (
            {"events": [{"at_s": 1, "command": {"type": "settle_period", "ts": 5}}]},
            "events[0].command.ts",
        ),
        (
            {"events": [{"at_s": 1, "command": {"type": "explode"}}]},
            "events[0].command: unknown_type",
        ),
        (
            {"events": [{"at_s": 1, "command": {"type": "set", "path": "x", "value": 2}}]},
            "events[0].command:",
        ),
        (
            {"events": [{"at_s": 400, "command": {"type": "settle_period"}}]},
            "events[0].at_s: expected",
        ),
        (
            {"instruments.0.tick_size": "0"},
            "instruments[0].tick_size and lot_size must be positive",
        ),
        ({"waterfall.steps": ["book", "pray"]}, "waterfall.steps: expected a list drawn from"),
    ],
)
def test_validation_errors_are_one_line_and_name_the_key(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ScenarioError) as e:
        scn.from_dict(small(**changes))
    text = str(e.value)
    assert message in text
    assert "\n" not in text


def test_population_and_makers_prefixes_must_not_clash() -> None:
    with pytest.raises(ScenarioError, match=r"population\.id_prefix: clashes"):
        scn.from_dict(small(**{"population.id_prefix": "mm", "market_makers.count": 300}))


def test_load_prefixes_the_path_and_reports_toml_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[scenario\nname = 1\n")
    with pytest.raises(ScenarioError, match=r"bad\.toml: not valid TOML"):
        scn.load(bad)
    with pytest.raises(ScenarioError, match=r"missing\.toml: No such file"):
        scn.load(tmp_path / "missing.toml")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(toml_text(small(**{"population.long_ppm": -1})))
    with pytest.raises(ScenarioError, match=r"wrong\.toml: population\.long_ppm"):
        scn.load(wrong)


def test_toml_round_trip_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(toml_text(small(**{"scenario.name": None})))
    sc = scn.load(path)
    assert sc.name == "s"  # the file's stem
    assert sc.seed == 7 and sc.symbol == "BTC-USD" and sc.duration_s == 399
    assert sc.population.count == 300 and sc.population.size_dist == "log_uniform"
    assert sc.makers.depth[1] == scn.Level(2000, 3000)
    assert sc.accounts == (("vault", 100_000_000_000),)
    minimal = scn.from_dict(
        {"instruments": [{"symbol": "X"}], "price": {"start": "10"}, "scenario": {"steps": 3}}
    )
    assert [c["type"] for c in minimal.commands()] == ["index_price"] * 3
    assert minimal.start_ts == scn.DEFAULT_START_TS and minimal.step_s == 1


def test_cli_reports_a_bad_scenario_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml_text(small(**{"population.leverage_max": 0})))
    r = _clearsim("run", str(path), "-o", str(tmp_path / "x.log"))
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert "population.leverage_max" in r.stderr and "Traceback" not in r.stderr
    r = _clearsim("run", str(path), "--config", "c.toml", "-o", str(tmp_path / "x.log"))
    assert r.returncode == 2 and "not both" in r.stderr
    r = _clearsim("run", "-o", str(tmp_path / "x.log"))
    assert r.returncode == 2 and "expected a scenario file" in r.stderr


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_commands_other_seed_other_commands(small_scenario: scn.Scenario) -> None:
    a = list(small_scenario.commands())
    assert a == list(scn.from_dict(SMALL).commands())
    b = list(small_scenario.commands(seed=8))
    assert a != b
    assert len({c["type"] for c in a}) >= 5


def test_same_file_same_seed_same_log_bytes(tmp_path: Path, small_scenario: scn.Scenario) -> None:
    paths = []
    for i in range(2):
        p = tmp_path / f"run{i}.log"
        run(small_scenario.config, small_scenario.commands(), p, seed=small_scenario.seed)
        paths.append(p)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert LogReader(paths[0]).header.seed == 7


def test_log_bytes_do_not_depend_on_pythonhashseed(tmp_path: Path) -> None:
    path = tmp_path / "small.toml"
    path.write_text(toml_text(SMALL))
    logs = []
    for hashseed in ("0", "4242"):
        out = tmp_path / f"h{hashseed}.log"
        r = _clearsim("run", str(path), "-o", str(out), "--seed", "11", hashseed=hashseed)
        assert r.returncode == 0, r.stderr
        logs.append(out.read_bytes())
    assert logs[0] == logs[1]
    header = LogReader(tmp_path / "h0.log").header
    assert header.seed == 11  # --seed overrides [scenario].seed and is recorded
    # ...and the in-process run with that seed writes the very same bytes.
    sc = scn.load(path)
    mine = tmp_path / "inproc.log"
    run(sc.config, sc.commands(11), mine, seed=11)
    assert mine.read_bytes() == logs[0]


def test_run_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        toml_text(small(**{"population.count": 5, "scenario.steps": 200, "events": []}))
    )
    out = tmp_path / "x.log"
    assert _clearsim("run", str(path), "-o", str(out)).returncode == 0
    r = _clearsim("run", str(path), "-o", str(out))
    assert r.returncode == 2 and "already exists" in r.stderr
    assert _clearsim("run", str(path), "-o", str(out), "--force").returncode == 0


def test_integer_sampling_tables_are_exact() -> None:
    table = generate._pow2_fractions()
    one = 1 << 62
    assert table[0] == one
    assert abs(table[2048] - 6521908912666391106) <= 1  # sqrt(2) x 2^62
    assert all(a < b for a, b in itertools.pairwise(table))
    assert (table[-1] * table[1]) >> 62 <= 2 * one


# --------------------------------------------------------------------------- the market


def _population(sc: scn.Scenario, cmds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ids = set(sc.population_ids())
    out: dict[str, dict[str, Any]] = {}
    for c in cmds:
        acct = c.get("account")
        if acct in ids:
            out.setdefault(acct, {"deposits": [], "orders": []})[
                "deposits" if c["type"] == "deposit" else "orders"
            ].append(c)
    return out


def test_commands_are_in_ts_order_and_valid(
    small_scenario: scn.Scenario, small_commands: list[dict[str, Any]]
) -> None:
    ts = [c["ts"] for c in small_commands]
    assert ts == sorted(ts)
    from clearsim.events.commands import parse_command

    assert not [c for c in small_commands if isinstance(parse_command(c), str)]
    index = [c for c in small_commands if c["type"] == "index_price"]
    assert len(index) == 400
    assert [c["ts"] for c in index] == [T0 + k * 1_000_000 for k in range(400)]
    setup = small_commands[:3]
    assert [(c["account"], c["amount"]) for c in setup] == [
        ("mm1", "5000000"),
        ("mm2", "5000000"),
        ("vault", "100000"),
    ]
    sched = [c for c in small_commands if c["type"] == "set"]
    assert sched == [
        {
            "type": "set",
            "path": "waterfall.liquidation_fee_ppm",
            "value": "2000",
            "ts": T0 + 300_000_000,
        }
    ]
    # It runs before that step's index price.
    i = small_commands.index(sched[0])
    assert small_commands[i + 1] == index[300]


def test_population_count_leverage_sides_and_sizes(
    small_scenario: scn.Scenario, small_commands: list[dict[str, Any]]
) -> None:
    pop = _population(small_scenario, small_commands)
    assert len(pop) == 300
    longs = 0
    leverages = []
    notionals = []
    window_end = T0 + 100 * 1_000_000
    for acct, p in pop.items():
        (dep,), (order,) = p["deposits"], p["orders"]
        assert dep["ts"] == order["ts"] and T0 < order["ts"] <= window_end
        assert small_commands.index(dep) + 1 == small_commands.index(order)
        assert order["tif"] == "ioc" and order["id"] == "entry"
        longs += order["side"] == "buy"
        index = _index_before(small_commands, order["ts"])
        notional = Decimal(order["qty"]) * index
        leverage = notional / Decimal(dep["amount"])
        leverages.append(leverage)
        notionals.append(notional)
        # The deposit carries an allowance for slippage and fees: a touch under L, never over.
        assert Decimal(2) * Decimal("0.98") <= leverage <= 50, (acct, leverage)
        assert notional <= 20000
        assert notional > 200 - Decimal("0.001") * index
    assert 0.58 <= longs / 300 <= 0.72  # long_ppm = 650,000: ~3.3 sd either way
    # skewed: the smaller of two uniform draws, mean ~ lo + (hi - lo) / 3 = 18
    assert 14 <= statistics.mean(leverages) <= 22
    # log-uniform: the median near the geometric mean of 200 and 20000
    assert 1300 <= statistics.median(notionals) <= 3000


def test_uniform_distributions_and_market_orders() -> None:
    sc = scn.from_dict(
        small(
            **{
                "population.leverage_dist": "uniform",
                "population.size_dist": "uniform",
                "population.order": "market",
                "population.count": 400,
            }
        )
    )
    cmds = list(sc.commands())
    pop = _population(sc, cmds)
    orders = [p["orders"][0] for p in pop.values()]
    assert all("price" not in o and "tif" not in o for o in orders)
    levs = [
        Decimal(o["qty"]) * _index_before(cmds, o["ts"]) / Decimal(p["deposits"][0]["amount"])
        for o, p in zip(orders, pop.values(), strict=True)
    ]
    assert 22 <= statistics.mean(levs) <= 30  # uniform 2..50: mean 26
    sizes = [Decimal(o["qty"]) * _index_before(cmds, o["ts"]) for o in orders]
    assert 8000 <= statistics.mean(sizes) <= 12000  # uniform 200..20000: mean ~10100


def _index_before(cmds: list[dict[str, Any]], ts: int) -> Decimal:
    last = None
    for c in cmds:
        if c["ts"] > ts:
            break
        if c["type"] == "index_price":
            last = c["price"]
    assert last is not None
    return Decimal(last)


def test_makers_quote_a_ladder_and_thin_it_after_a_fast_move(
    small_scenario: scn.Scenario, small_commands: list[dict[str, Any]]
) -> None:
    quotes = [c for c in small_commands if c["type"] == "order" and c["account"] == "mm1"]
    first = [q for q in quotes if q["ts"] == T0]
    assert [(q["side"], q["price"], q["qty"]) for q in first] == [
        ("buy", "49985.0", "1.000"),
        ("sell", "50015.0", "1.000"),
        ("buy", "49900.0", "3.000"),
        ("sell", "50100.0", "3.000"),
    ]
    cancels = [c for c in small_commands if c["type"] == "cancel_all" and c["account"] == "mm1"]
    refreshes = sorted({q["ts"] for q in quotes})
    assert len(cancels) == len(refreshes) - 1  # every re-quote but the first cancels first
    assert len(refreshes) >= 400 // 5
    # During the crash (150 s .. 210 s, -30%), quotes are 5% of the size and 4x as wide.
    prices = small_scenario.prices()
    thin = [q for q in quotes if T0 + 185_000_000 <= q["ts"] <= T0 + 210_000_000]
    assert thin and all(q["qty"] in ("0.050", "0.150") for q in thin)
    for q in thin:
        k = (q["ts"] - T0) // 1_000_000
        px = Decimal(prices[k]) / 10
        off = abs(Decimal(q["price"]) - px) / px
        assert off > Decimal("0.0011"), (q, px)


def test_random_walk_jumps_land_where_configured() -> None:
    sc = scn.from_dict(
        small(
            **{
                "price.vol_ppm": 0,
                "price.jumps": [
                    {"at_s": 100, "move_ppm": -350_000, "over_s": 50},
                    {"at_s": 300, "move_ppm": 100_000, "over_s": 1},
                ],
            }
        )
    )
    p = sc.prices()
    assert p[0] == p[100] == 500_000
    assert p[125] == 500_000 - 87_500  # half way: the factor is linear in time
    assert p[150] == p[300] == 325_000
    assert p[301] == p[-1] == 357_500


def test_random_walk_volatility_and_seed() -> None:
    sc = scn.from_dict(
        small(
            **{
                "price.vol_ppm": 1000,
                "price.jumps": [],
                "scenario.steps": 3000,
                "price.start": "100000",
            }
        )
    )
    p = sc.prices()
    rets = [(b - a) / a for a, b in itertools.pairwise(p)]
    assert 0.00092 <= statistics.pstdev(rets) <= 0.00108
    assert p != sc.prices(seed=1)
    assert p == sc.prices()


def test_price_series_from_a_list() -> None:
    sc = scn.from_dict(
        small(
            **{
                "price": {"kind": "series", "prices": ["50000", "49000.04", "48000.05", "47000"]},
                "scenario.steps": None,
                "population.count": 0,
                "events": [],
            }
        )
    )
    assert sc.steps == 4
    assert sc.prices() == [500_000, 490_000, 480_001, 470_000]  # half-up to the 0.1 tick


@pytest.mark.skipif(not BARS.exists(), reason=f"shared market data not found at {BARS}")
def test_price_series_from_bitmex_bars(tmp_path: Path) -> None:
    d = small(
        **{
            "scenario.steps": None,
            "scenario.start_ts": None,
            "scenario.step_s": None,
            "population.entry_window_s": 600,
            "events": [],
        }
    )
    d["price"] = {"kind": "series", "bars_file": str(BARS)}
    sc = scn.from_dict(d)
    assert sc.steps == 1440 and sc.step_s == 60
    assert sc.start_ts == 1_583_971_200_000_000  # 2020-03-12T00:00:00Z
    p = sc.prices()
    assert p[0] == 79390 and p[-1] == 45340  # closes 7939 and 4534, in 0.1 ticks
    assert min(p) == 43455
    cmds = list(sc.commands())
    index = [c for c in cmds if c["type"] == "index_price"]
    assert len(index) == 1440 and index[1]["ts"] - index[0]["ts"] == 60_000_000
    assert index[600]["price"] == f"{Decimal(p[600]) / 10:.1f}"

    # A window of the day, relative to the scenario file, by another field.
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bars.json").write_bytes(BARS.read_bytes())
    d["price"] = {
        "kind": "series",
        "bars_file": "data/bars.json",
        "bars_field": "low",
        "bars_from": 600,
        "bars_count": 120,
    }
    d["population"]["entry_window_s"] = 60
    path = tmp_path / "day.toml"
    path.write_text(toml_text(d))
    sc = scn.load(path)
    assert sc.steps == 120 and sc.start_ts == 1_583_971_200_000_000 + 600 * 60_000_000
    raw = tomllib.loads(path.read_text())
    assert raw["price"]["bars_from"] == 600


def test_scaled_population_scales_the_book(small_scenario: scn.Scenario) -> None:
    big = small_scenario.with_population(3000)
    assert big.population.count == 3000
    assert big.makers.depth[0].qty == 10 * small_scenario.makers.depth[0].qty
    assert big.makers.deposit == 10 * small_scenario.makers.deposit
    assert big.accounts == (("vault", 1_000_000_000_000),)
    assert big.config.insurance_initial == 10 * small_scenario.config.insurance_initial
    caps = [t.max_notional for t in big.config.instruments[0].tiers]
    assert caps == [100_000_000_000, 1_000_000_000_000_000]  # the last tier grew 10x
    fewer = small_scenario.with_population(30)
    assert fewer.config.instruments == small_scenario.config.instruments
    assert isinstance(big.config, Config)


def test_scheduled_events_reach_the_log(tmp_path: Path, small_scenario: scn.Scenario) -> None:
    out = tmp_path / "x.log"
    _, summary = run(small_scenario.config, small_scenario.commands(), out, seed=7)
    events = list(LogReader(out).events())
    sets = [e for e in events if type(e) is ParamSet]
    assert [(e.path, e.new, e.ts) for e in sets] == [
        ("waterfall.liquidation_fee_ppm", "2000", T0 + 300_000_000)
    ]
    rejected = Counter(e.reason for e in events if type(e) is Rejected)
    assert sum(rejected.values()) <= 3, rejected  # the generated market is well-formed
    assert summary.commands == sum(1 for e in events if type(e) is Input)


def test_bundled_crash_scenario_ships_with_the_package() -> None:
    sc = scn.bundled("crash")
    assert sc.name == "crash"
    assert 3000 <= sc.population.count <= 5000
    assert sc.config.insurance_initial > 0 and sc.config.waterfall.backstop_accounts
    assert "backstop" in sc.config.waterfall.steps and "adl" in sc.config.waterfall.steps
    p = sc.prices()
    assert min(p) <= p[0] * 70 // 100  # a drop of 30% or more
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "*.toml" in pyproject["tool"]["setuptools"]["package-data"]["clearsim.replay.scenarios"]
    with pytest.raises(ScenarioError, match="bundled scenario 'nope'"):
        scn.bundled("nope")


# --------------------------------------------------------------------------- helpers


def _clearsim(*args: str, hashseed: str = "0") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    return subprocess.run(
        [sys.executable, "-m", "clearsim", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
