"""Population arrivals (``"start"``, ``poisson``, ``open_interest``), an imported day as a
scenario's ``[market]``, unevenly spaced bars, and the count of entry orders that did not
fill (apart from rejections) in the run summary, the story and the CLI.

The integer exponential behind Poisson gaps is checked against exact decimals; the
arrivals against their rate, window and the index of their moment; the market merge
against its documented order at one µs and its streaming (the day is never read ahead)."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from decimal import Decimal, getcontext
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_scenario import SMALL, T0, _clearsim, small, toml_text

from clearsim.events.log import LogReader
from clearsim.events.types import (
    Event,
    Fill,
    Input,
    OrderAccepted,
    OrderExpired,
    OrderRejected,
    Rejected,
)
from clearsim.replay import scenarios as scn
from clearsim.replay.cli.render import run_summary, story_text
from clearsim.replay.cli.verbs import read_story
from clearsim.replay.projections.orders import EntryOrders, is_entry_order
from clearsim.replay.runner import RunSummary, run
from clearsim.replay.scenarios import ScenarioError, arrivals, market, sampling

S = 1_000_000
ROOT = Path(__file__).resolve().parents[1]
SHARED_BARS = ROOT.parent / "shared" / "data" / "bitmex" / "XBTUSD-1m-2020-03-12.json"


# --------------------------------------------------------------------------- sampling


def test_ln2_constant_and_integer_log2_are_exact() -> None:
    getcontext().prec = 60
    assert int((Decimal(2).ln() * 2**64).to_integral_value()) == sampling.LN2_64
    one = 1 << sampling.LOG_BITS
    for k in (0, 1, 7, 52, 200):
        assert sampling.log2_fixed(1 << k) == k * one  # powers of two: exact
    for x in (3, 10, 12345, 2**53 - 1, 6_700_417 * 2**30):
        exact = Decimal(x).ln() / Decimal(2).ln() * one
        assert 0 <= exact - sampling.log2_fixed(x) < 2  # rounded down, within 2^-31
    with pytest.raises(ValueError):
        sampling.log2_fixed(0)


def test_exponential_gaps_have_the_mean_and_the_tail_of_an_exponential() -> None:
    r = sampling.rng(5, 3)
    gaps = [sampling.exp_gap(r, 1_000_000, 1) for _ in range(20_000)]  # mean 1e6
    assert min(gaps) >= 0
    assert 0.98e6 <= statistics.mean(gaps) <= 1.02e6  # sd of the mean: 0.7%
    tail = sum(g > 1_000_000 for g in gaps) / len(gaps)
    assert abs(tail - math.exp(-1)) < 0.012  # P(X > mean) = 1/e
    tail3 = sum(g > 3_000_000 for g in gaps) / len(gaps)
    assert abs(tail3 - math.exp(-3)) < 0.005
    # The same seed and stream: the same gaps, on any machine (integers only).
    r2 = sampling.rng(5, 3)
    assert [sampling.exp_gap(r2, 1_000_000, 1) for _ in range(5)] == gaps[:5]
    assert sampling.exp_gap(sampling.rng(0, 3), 7, 2) == sampling.exp_gap(sampling.rng(0, 3), 7, 2)


# --------------------------------------------------------------------------- poisson


def poisson(rate: Any = 2, **window: Any) -> dict[str, Any]:
    """SMALL with Poisson arrivals over a 1,000 s run (no crash, no scheduled event)."""
    d = small(
        **{
            "scenario.steps": 1000,
            "population.count": 100,
            "price.jumps": [],
            "events": [],
        }
    )
    d["population"]["arrivals"] = {"kind": "poisson", "rate_per_min": rate, **window}
    return d


def _entries(sc: scn.Scenario, cmds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = set(sc.population_ids())
    return [c for c in cmds if c["type"] == "order" and c["account"] in ids]


def test_poisson_arrivals_come_at_the_rate_over_the_window() -> None:
    sc = scn.from_dict(poisson(6, start_s=100, end_s=900))
    orders = _entries(sc, list(sc.commands()))
    ts = [o["ts"] for o in orders]
    assert ts == sorted(ts)
    assert all(T0 + 100 * S < t <= T0 + 900 * S for t in ts)
    # 6 a minute over 800 s: 80 expected (sd ~9); the pool of 100 is not exhausted.
    assert 55 <= len(orders) <= 105 and len(orders) < 100
    # In id order: the n-th to arrive is account n.
    assert [o["account"] for o in orders] == sc.population_ids()[: len(orders)]
    gaps = [b - a for a, b in zip([T0 + 100 * S, *ts], ts, strict=False)]
    assert 6 * S <= statistics.mean(gaps) <= 14 * S  # mean 10 s


def test_poisson_rate_forms_and_pool_limit() -> None:
    a = scn.from_dict(poisson(3.5)).population.arrivals
    assert isinstance(a, scn.PoissonArrivals) and (a.rate_num, a.rate_den) == (7, 2)
    assert scn.from_dict(poisson("3.5")).population.arrivals == a
    # 600 a minute over 1,000 s: the whole pool of 100 comes, in the first ~10 s.
    sc = scn.from_dict(poisson(600))
    orders = _entries(sc, list(sc.commands()))
    assert len(orders) == 100 and orders[-1]["ts"] < T0 + 20 * S


def test_the_nth_account_is_the_same_under_every_arrivals() -> None:
    """Side, leverage and size are drawn in id order whatever the arrivals: only the time
    (and the index it enters at) differs."""
    start = scn.from_dict(small(**{"price.vol_ppm": 0, "price.jumps": []}))
    pois = scn.from_dict(
        small(
            **{
                "price.vol_ppm": 0,
                "price.jumps": [],
                "population.arrivals": {"kind": "poisson", "rate_per_min": 6000},
            }
        )
    )
    a = {o["account"]: o for o in _entries(start, list(start.commands()))}
    b = {o["account"]: o for o in _entries(pois, list(pois.commands()))}
    assert a.keys() == b.keys()
    for acct, o in a.items():
        assert (o["side"], o["qty"], o["price"]) == (
            b[acct]["side"],
            b[acct]["qty"],
            b[acct]["price"],
        )
    assert [o["ts"] for o in a.values()] != [o["ts"] for o in b.values()]


def test_each_arrival_enters_at_the_index_of_its_moment() -> None:
    d = poisson(3)
    d["price"] = {"kind": "random_walk", "start": "50000", "vol_ppm": 2000}
    sc = scn.from_dict(d)
    cmds = list(sc.commands())
    index = None
    checked = 0
    for c in cmds:
        if c["type"] == "index_price":
            index = Decimal(c["price"])
        elif c["type"] == "order" and c.get("id") == "entry":
            assert index is not None
            limit = Decimal(c["price"])
            slip = index * Decimal("0.002")
            want = index + slip if c["side"] == "buy" else index - slip
            assert abs(limit - want) <= Decimal("0.1"), (c, index)  # rounded to the tick
            checked += 1
    assert checked >= 30
    prices = {Decimal(c["price"]) for c in cmds if c.get("id") == "entry"}
    assert max(prices) / min(prices) > Decimal("1.05")  # the index moved: so did they


@pytest.mark.parametrize(
    ("arrivals", "message"),
    [
        ({"kind": "poisson"}, "population.arrivals.rate_per_min: required"),
        ({"kind": "poisson", "rate_per_min": 0}, "rate_per_min: expected a positive number"),
        ({"kind": "poisson", "rate_per_min": "x"}, "rate_per_min: expected a positive number"),
        ({"kind": "poisson", "rate_per_min": True}, "rate_per_min: expected a positive"),
        ({"kind": "poisson", "rate_per_min": 1, "colour": 1}, "arrivals.colour: unknown key"),
        ({"kind": "walk"}, "population.arrivals.kind: expected one of poisson, open_interest"),
        ("later", 'population.arrivals: expected "start" or a table'),
        (
            {"kind": "poisson", "rate_per_min": 1, "start_s": 10, "end_s": 5},
            "population.arrivals.end: must be after start",
        ),
        (
            {"kind": "poisson", "rate_per_min": 1, "start_s": 1, "start": 5},
            "give start or start_s, not both",
        ),
        (
            {"kind": "poisson", "rate_per_min": 1, "end_s": 5000},
            "population.arrivals.end: 1700005000000000 is after the run's end",
        ),
        (
            {"kind": "poisson", "rate_per_min": 1, "start": "2023-11-14T22:13:19Z"},
            "population.arrivals.start: 1699999999000000 is before the run's start",
        ),
        (
            {"kind": "poisson", "rate_per_min": 1, "start": "2023-11-14T22:13:30"},
            "has no UTC offset",
        ),
        ({"kind": "open_interest"}, "population.arrivals.target: expected a decimal"),
        (
            {"kind": "open_interest", "target": "0"},
            "population.arrivals.target: quantity must be positive",
        ),
        (
            {"kind": "open_interest", "target": "0.0001"},
            "population.arrivals.target: quantity not a whole number of lots",
        ),
        ({"kind": "open_interest", "target": "1", "check_s": 0}, "check_s: expected an integer"),
    ],
)
def test_arrivals_validation_names_the_key(arrivals: Any, message: str) -> None:
    with pytest.raises(ScenarioError) as e:
        scn.from_dict(small(**{"population.arrivals": arrivals}))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_arrival_window_as_times(tmp_path: Path) -> None:
    """``start``/``end`` as ISO-8601 UTC, µs, or a TOML datetime; ``start_s`` relative."""
    iso = scn.from_dict(
        poisson(1, start="2023-11-14T22:15:00Z", end=T0 + 600 * S)
    ).population.arrivals
    assert isinstance(iso, scn.PoissonArrivals)
    assert (iso.start_ts, iso.end_ts) == (T0 + 100 * S, T0 + 600 * S)
    path = tmp_path / "s.toml"
    text = toml_text(poisson(1)).replace(
        'arrivals = { kind = "poisson", rate_per_min = 1 }',
        'arrivals = { kind = "poisson", rate_per_min = 1, start = 2023-11-14T22:15:00Z }',
    )
    path.write_text(text)
    a = scn.load(path).population.arrivals
    assert isinstance(a, scn.PoissonArrivals) and a.start_ts == T0 + 100 * S


def test_start_arrivals_are_the_default_and_unchanged() -> None:
    sc = scn.from_dict(SMALL)
    assert sc.population.arrivals == scn.StartArrivals()
    explicit = scn.from_dict(small(**{"population.arrivals": "start"}))
    assert list(explicit.commands()) == list(sc.commands())


# --------------------------------------------------------------------------- open interest


def oi_scenario(target: str = "5", **more: Any) -> scn.Scenario:
    d = small(**{"scenario.steps": 600, "events": [], "population.count": 400})
    d["population"]["arrivals"] = {
        "kind": "open_interest",
        "target": target,
        "check_s": 30,
        "max_per_check": 20,
        **more,
    }
    return scn.from_dict(d)


def _population_oi(events: list[Event], ids: set[str]) -> int:
    pos: Counter[str] = Counter()
    for e in events:
        if isinstance(e, Fill):
            q = e.qty if e.taker_side == "buy" else -e.qty
            pos[e.taker_account] += q
            pos[e.maker_account] -= q
    return sum(abs(q) for a, q in pos.items() if a in ids)


def test_open_interest_arrivals_fill_up_to_the_target_and_refill_after_the_crash(
    tmp_path: Path,
) -> None:
    """5 BTC target: accounts arrive at the first checks until the population holds 5 BTC,
    stop while it does, and come again once the crash (150 s..210 s, -30%) liquidated
    some (liquidations close positions: the live exchange is read at every check)."""
    sc = oi_scenario()
    out = tmp_path / "oi.log"
    _, summary = run(sc.config, lambda ex: sc.commands(exchange=ex), out, seed=sc.seed)
    events = list(LogReader(out).events())
    inputs = [e for e in events if isinstance(e, Input)]
    entries = [e for e in inputs if e.command.get("id") == "entry"]
    assert entries and all((e.ts - T0) % (30 * S) == 0 for e in entries)  # at check times
    by_check = Counter((e.ts - T0) // S for e in entries)
    assert by_check[0] == 20  # the first check lets max_per_check in
    # The target is reached before the crash; then nobody comes until it liquidates some.
    assert not [k for k in by_check if 90 <= k < 150], by_check
    assert [k for k in by_check if k >= 150], by_check
    assert sum(by_check.values()) < 400  # it stops: not the whole pool
    ids = set(sc.population_ids())
    before = [e for e in events if e.ts < T0 + 140 * S]
    oi = _population_oi(before, ids)
    # >= 5 BTC (lots of 0.001), and less than one more entry (20,000 USDT = 0.4 BTC) above.
    assert 5000 <= oi < 5000 + 400, oi
    # Deterministic: the same run, the same bytes.
    again = tmp_path / "oi2.log"
    run(sc.config, lambda ex: sc.commands(exchange=ex), again, seed=sc.seed)
    assert again.read_bytes() == out.read_bytes()
    assert summary.entries.orders == len(entries)


def test_open_interest_arrivals_need_the_live_exchange() -> None:
    with pytest.raises(ScenarioError, match="open_interest arrivals read the exchange"):
        list(oi_scenario().commands())


def test_open_interest_scenario_runs_from_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "oi.toml"
    d = small(**{"scenario.steps": 200, "events": [], "population.count": 100})
    d["population"]["arrivals"] = {"kind": "open_interest", "target": "2", "check_s": 20}
    path.write_text(toml_text(d))
    r = _clearsim("run", str(path), "-o", str(tmp_path / "oi.log"))
    assert r.returncode == 0, r.stderr
    assert "entry orders" in r.stdout


# --------------------------------------------------------------------------- uneven bars


def test_uneven_bars_put_each_price_at_its_own_time(tmp_path: Path) -> None:
    bars = [
        {"timestamp": "2020-03-12T00:00:00Z", "close": 100},
        {"timestamp": "2020-03-12T00:01:00Z", "close": 101},
        {"timestamp": "2020-03-12T00:05:00Z", "close": 99},
        {"timestamp": "2020-03-12T00:05:30Z", "close": 98},
    ]
    (tmp_path / "bars.json").write_text(orjson.dumps(bars).decode())
    d = small(
        **{
            "scenario.steps": None,
            "scenario.start_ts": None,
            "scenario.step_s": None,
            "population.count": 0,
            "events": [],
        }
    )
    d["price"] = {"kind": "series", "bars_file": "bars.json"}
    sc = scn.from_dict(d, base_dir=tmp_path)
    t0 = 1_583_971_200_000_000
    assert sc.start_ts == t0 and sc.steps == 4 and sc.duration_s == 330
    index = [c for c in sc.commands() if c["type"] == "index_price"]
    assert [(c["ts"] - t0) // S for c in index] == [0, 60, 300, 330]
    assert [c["price"] for c in index] == ["100.0", "101.0", "99.0", "98.0"]
    assert sc.end_ts() == t0 + 330 * S
    # An explicit step_s spaces them evenly, as before.
    d["scenario"]["step_s"] = 10
    even = scn.from_dict(d, base_dir=tmp_path)
    assert [c["ts"] - t0 for c in even.commands() if c["type"] == "index_price"] == [
        k * 10 * S for k in range(4)
    ]
    bars[2]["timestamp"] = "2020-03-12T00:00:30Z"
    (tmp_path / "bars.json").write_text(orjson.dumps(bars[:3] + bars[:1]).decode())
    with pytest.raises(ScenarioError, match="bar 2: timestamp not after"):
        scn.from_dict({**d, "scenario": {}}, base_dir=tmp_path)


# --------------------------------------------------------------------------- [market]


def market_lines() -> list[dict[str, Any]]:
    """400 s of a market: an index every 10 s (flat, then -30% over 150..210 s), funding at
    200 s and a command type this engine may not know yet, all to pass through."""
    out: list[dict[str, Any]] = []
    for k in range(41):
        t = k * 10
        px = 50000 if t < 150 else max(35000, 50000 - (t - 150) * 250)
        out.append({"type": "index_price", "ts": T0 + t * S, "symbol": "BTC-USD", "price": str(px)})
        if t == 200:
            out.append({"type": "funding", "ts": T0 + t * S, "symbol": "BTC-USD", "rate": "0.0001"})
            out.append({"type": "market_level", "ts": T0 + t * S, "symbol": "BTC-USD", "x": 1})
    return out


def market_scenario(tmp_path: Path, lines: list[dict[str, Any]] | None = None, **ch: Any) -> Path:
    (tmp_path / "day.jsonl").write_bytes(
        b"".join(orjson.dumps(c) + b"\n" for c in (market_lines() if lines is None else lines))
    )
    d = small(
        **{
            "scenario.steps": None,
            "scenario.start_ts": None,
            "scenario.step_s": None,
            "price": None,
            "events": [
                {
                    "at_s": 200,
                    "command": {
                        "type": "set",
                        "path": "waterfall.liquidation_fee_ppm",
                        "value": "2000",
                    },
                }
            ],
            **ch,
        }
    )
    d["market"] = {"commands": "day.jsonl"}
    path = tmp_path / "m.toml"
    path.write_text(toml_text(d))
    return path


def test_market_commands_pass_through_and_interleave_in_the_documented_order(
    tmp_path: Path,
) -> None:
    sc = scn.load(market_scenario(tmp_path))
    assert sc.start_ts == T0 and sc.end_ts() == T0 + 400 * S and sc.market is not None
    cmds = list(sc.commands())
    assert [c["ts"] for c in cmds] == sorted(c["ts"] for c in cmds)
    # Every market command, untouched and in order.
    mine = [c for c in cmds if c.get("symbol") == "BTC-USD" and c["type"] != "order"]
    assert mine == market_lines()
    # At 200 s: the scheduled event, then the market's commands in their order, the
    # makers' re-quote right after the index price.
    at = [c["type"] for c in cmds if c["ts"] == T0 + 200 * S]
    assert at[:2] == ["set", "index_price"] and at[-2:] == ["funding", "market_level"]
    assert set(at[2:-2]) == {"cancel_all", "order"}
    # The makers quote around the market's index: after the crash, around 35,000.
    late = [
        c
        for c in cmds
        if c["type"] == "order" and c["account"] == "mm1" and c["ts"] == T0 + 400 * S
    ]
    assert late and all(abs(Decimal(c["price"]) - 35000) < 500 for c in late)
    # Entries enter at the market's index of their moment (all in the first 100 s: 50,000).
    entries = [c for c in cmds if c.get("id") == "entry"]
    assert len(entries) == 300
    assert {Decimal(c["price"]) for c in entries} == {Decimal("50100"), Decimal("49900")}
    assert sc.prices()[:2] == [500_000, 500_000] and len(sc.prices()) == 41


def _market_files(tmp_path: Path, files: dict[str, list[tuple[int, str]]]) -> scn.Scenario:
    """The market scenario with ``[market] commands`` = these files, in this order: each
    a list of (seconds from T0, command type) written as BTC-USD commands."""
    path = market_scenario(tmp_path)
    for name, rows in files.items():
        stem = name.split(".")[0]
        cmds = [
            {"type": t, "ts": T0 + k * S, "symbol": "BTC-USD", "price": "50000", "n": f"{stem}{i}"}
            for i, (k, t) in enumerate(rows)
        ]
        (tmp_path / name).write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in cmds))
    listed = ", ".join(f'"{n}"' for n in files)
    text = path.read_text().replace('commands = "day.jsonl"', f"commands = [{listed}]")
    assert listed in text
    path.write_text(text)
    return scn.load(path)


def test_market_commands_from_several_files_merge_by_ts_listed_order_first(
    tmp_path: Path,
) -> None:
    """trades.jsonl at 0, 10, 20 s; book.jsonl at 10, 15, 20 and 400 s. Merged: 0 t0,
    10 t1 then b0 (the same ts: the file listed first first), 15 b1, 20 t2 then b2, 400 b3;
    the run ends at the later file's last command."""
    sc = _market_files(
        tmp_path,
        {
            "trades.jsonl": [(0, "index_price"), (10, "index_price"), (20, "index_price")],
            "book.jsonl": [(10, "market_level"), (15, "market_level"), (20, "funding"),
                           (400, "market_level")],
        },
    )  # fmt: skip
    assert sc.end_ts() == T0 + 400 * S and sc.start_ts == T0
    market = [c["n"] for c in sc.commands() if "n" in c]
    assert market == ["trades0", "trades1", "book0", "book1", "trades2", "book2", "book3"]
    assert sc.input_files() == (tmp_path / "trades.jsonl", tmp_path / "book.jsonl")


def test_a_market_file_going_back_in_time_is_named_with_its_line(tmp_path: Path) -> None:
    sc = _market_files(
        tmp_path,
        {"a.jsonl": [(0, "index_price"), (30, "index_price")], "b.jsonl": [(20, "x"), (10, "x")]},
    )
    with pytest.raises(ScenarioError, match=r"b\.jsonl: command 2: ts .* goes back in time"):
        list(sc.commands())


def test_market_scenario_runs_into_a_log_with_its_commands(tmp_path: Path) -> None:
    path = market_scenario(tmp_path)
    out = tmp_path / "m.log"
    r = _clearsim("run", str(path), "-o", str(out))
    assert r.returncode == 0, r.stderr
    events = list(LogReader(out).events())
    logged = [
        e.command for e in events if isinstance(e, Input) and e.command.get("account") is None
    ]
    assert [c for c in logged if c["type"] != "set"] == market_lines()
    rejected = [e for e in events if isinstance(e, Rejected)]
    # The engine is the judge of what it takes: an unknown type is its rejection, not ours.
    assert [e.command_type for e in rejected] in ([], ["market_level"])


def test_arrivals_before_the_first_index_wait_for_it(tmp_path: Path) -> None:
    lines = [{"type": "funding", "ts": T0, "symbol": "BTC-USD", "rate": "0"}] + [
        c for c in market_lines() if c["ts"] >= T0 + 150 * S
    ]
    sc = scn.load(market_scenario(tmp_path, lines, **{"population.count": 20}))
    cmds = list(sc.commands())
    first = next(i for i, c in enumerate(cmds) if c["type"] == "index_price")
    entries = [i for i, c in enumerate(cmds) if c.get("id") == "entry"]
    assert len(entries) == 20 and min(entries) > first
    assert {cmds[i]["ts"] for i in entries} == {T0 + 150 * S}  # at the first index's µs
    quotes = [i for i, c in enumerate(cmds) if c["type"] == "order" and c["account"] == "mm1"]
    assert max(quotes[:4]) < min(entries)  # after the makers quoted around it


def test_arrivals_after_the_market_ends_are_not_generated(tmp_path: Path) -> None:
    d = {"population.arrivals": {"kind": "poisson", "rate_per_min": 30}}
    sc = scn.load(market_scenario(tmp_path, **d))
    orders = [c for c in sc.commands() if c.get("id") == "entry"]
    assert orders and max(c["ts"] for c in orders) <= T0 + 400 * S
    assert 130 <= len(orders) <= 280  # 30 a minute over 400 s: 200 expected


def test_market_is_streamed_never_read_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = scn.load(market_scenario(tmp_path))
    real = market.stream
    taken = [0]

    def counting(m: scn.Market) -> Any:
        for c in real(m):
            taken[0] += 1
            yield c

    monkeypatch.setattr(market, "stream", counting)
    it = sc.commands()
    for _ in range(20):
        next(it)
    assert taken[0] <= 2  # one market command held by the merge, one being expanded


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"price": {"kind": "random_walk", "start": "1"}}, "price: not used with [market]"),
        ({"scenario": {"steps": 5}}, "scenario.steps: not used with [market]"),
        ({"scenario": {"start_ts": T0 + 1}}, "scenario.start_ts: 1700000000000001 is after"),
        ({"market": {}}, "market: expected exactly one of commands and import"),
        ({"market": {"commands": "nope.jsonl"}}, "nope.jsonl: no such file"),
        ({"market": {"commands": "day.jsonl", "x": 1}}, "market.x: unknown key"),
        ({"market": {"commands": []}}, "market.commands: expected a file or a list of files"),
        ({"market": {"commands": ["day.jsonl", "nope.jsonl"]}}, "nope.jsonl: no such file"),
        ({"market": {"commands": ["day.jsonl", 3]}}, "market.commands[1]: expected a path"),
        ({"market": {"import": {"format": "csv", "files": ["day.jsonl"]}}}, "market.import.format"),
        ({"market": {"import": {"format": "bars", "files": []}}}, "market.import.files"),
        (
            {"market": {"import": {"format": "bars", "files": ["day.jsonl"], "price": "mark"}}},
            "market.import.price: does not apply to format bars",
        ),
        (
            {"market": {"import": {"format": "bars", "files": ["day.jsonl"], "every": "1x"}}},
            "market.import.every",
        ),
    ],
)
def test_market_validation(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    path = market_scenario(tmp_path)
    import tomllib

    d = tomllib.loads(path.read_text())
    for k, v in change.items():
        d[k] = {**d.get(k, {}), **v} if k == "scenario" else v
    with pytest.raises(ScenarioError) as e:
        scn.from_dict(d, base_dir=tmp_path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_market_that_goes_back_in_time_is_one_error_line(tmp_path: Path) -> None:
    lines = market_lines()
    lines[20]["ts"] = T0
    path = market_scenario(tmp_path, lines)
    with pytest.raises(ScenarioError, match=r"command 21: ts 1700000000000000 goes back"):
        list(scn.load(path).commands())
    r = _clearsim("run", str(path), "-o", str(tmp_path / "x.log"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "goes back in time" in r.stderr
    assert not (tmp_path / "x.log").exists() and not (tmp_path / "x.log.partial").exists()
    (tmp_path / "day.jsonl").write_text('{"type": "index_price"}\n')
    with pytest.raises(ScenarioError, match="command 1: no integer ts"):
        scn.load(path)


@pytest.mark.skipif(
    not SHARED_BARS.exists(), reason=f"shared market data not found at {SHARED_BARS}"
)
def test_market_import_in_process_equals_the_imported_file(tmp_path: Path) -> None:
    """``[market] import = {...}`` gives exactly the commands of ``clearsim import`` to a
    file used as ``[market] commands``."""
    day = tmp_path / "day.jsonl"
    r = _clearsim(
        "import", "bars", str(SHARED_BARS), "--symbol", "XBTUSD", "--path", "ohlc", "-o", str(day)
    )
    assert r.returncode == 0, r.stderr
    base = scn.bundled("black-thursday").with_population(200)
    cfg = base.config.to_dict()
    d: dict[str, Any] = {
        **cfg,
        "scenario": {"symbol": "XBTUSD", "seed": 3},
        "population": {
            "count": 200,
            "leverage_max": 20,
            "size_min": "0.01",
            "size_max": "1",
            "arrivals": {"kind": "poisson", "rate_per_min": 0.2},
        },
        "market_makers": {
            "count": 1,
            "deposit": "100",
            "depth": [{"offset_ppm": 500, "qty": "5000"}],
        },
    }
    from_file = scn.from_dict({**d, "market": {"commands": str(day)}})
    imported = scn.from_dict(
        {**d, "market": {"import": {"format": "bars", "files": [str(SHARED_BARS)], "path": "ohlc"}}}
    )
    a, b = list(from_file.commands()), list(imported.commands())
    assert a == b and len(a) > 5760
    assert from_file.start_ts == imported.start_ts == 1_583_971_200_000_000
    assert imported.end_ts() == from_file.end_ts() == 1_583_971_200_000_000 + (1439 * 60 + 45) * S


# --------------------------------------------------------------------------- entry orders


def _ev(cls: type[Event], seq: int, cause: int, **f: Any) -> Event:
    return cls(seq=seq, ts=seq, cause=cause, **f)


def _order(seq: int, account: str = "u1", **c: Any) -> Event:
    cmd = {"type": "order", "ts": seq, "account": account, "id": "entry", "symbol": "X",
           "side": "buy", "qty": "1", "price": "10", "tif": "ioc", **c}  # fmt: skip
    return _ev(Input, seq, 0, command=cmd)


def _acc(seq: int, cause: int, account: str = "u1") -> Event:
    return _ev(OrderAccepted, seq, cause, symbol="X", order_id="entry", account=account,
               side="buy", qty=5, price=10, tif="ioc")  # fmt: skip


def _fill(seq: int, cause: int, qty: int, account: str = "u1") -> Event:
    return _ev(Fill, seq, cause, symbol="X", price=10, qty=qty, maker_order="m",
               maker_account="mm", taker_order="entry", taker_account=account,
               taker_side="buy")  # fmt: skip


def _exp(seq: int, cause: int, qty: int, account: str = "u1") -> Event:
    return _ev(OrderExpired, seq, cause, symbol="X", order_id="entry", account=account,
               qty=qty, reason="ioc")  # fmt: skip


def test_entry_orders_fold_by_hand() -> None:
    """Five entries: filled whole; filled 2 of 5; nothing filled (expired); refused by the
    exchange; refused by the book. Not entries: a GTC quote, a reduce-only IOC, a #market
    IOC. A fill of another account's order does not count as this one's."""
    evs = [
        _order(1), _acc(2, 1), _fill(3, 1, 5),
        _order(4), _acc(5, 4), _fill(6, 4, 2), _exp(7, 4, 3),
        _order(8), _acc(9, 8), _fill(10, 8, 5, account="u9"), _exp(11, 8, 5),
        _order(12), _ev(Rejected, 13, 12, command_type="order", reason="insufficient_margin"),
        _order(14),
        _ev(OrderRejected, 15, 14, symbol="X", order_id="entry", account="u1", reason="x"),
        _order(16, tif="gtc"), _acc(17, 16),
        _order(18, reduce_only=True), _acc(19, 18), _exp(20, 18, 5),
        _order(21, account="#market"), _acc(22, 21, "#market"), _exp(23, 21, 5, "#market"),
    ]  # fmt: skip
    fold = EntryOrders()
    for e in evs:
        fold.feed(e)
    t = fold.totals()
    assert (t.orders, t.filled, t.partly, t.unfilled, t.rejected) == (5, 1, 1, 1, 2)
    assert t.did_not_fill == 3
    assert fold.orders == 5  # the last command (#market) was not an entry: nothing pending
    # Per command, as the runner feeds it: the same.
    per = EntryOrders()
    cmd: list[Event] = []
    for e in evs:
        if isinstance(e, Input) and cmd:
            per.command(cmd)
            cmd = []
        cmd.append(e)
    per.command(cmd)
    assert per == t
    assert is_entry_order({"type": "order", "account": "a", "side": "buy", "qty": "1"})  # market
    assert not is_entry_order({"type": "order", "account": "a", "price": "1", "tif": "post_only"})
    assert not is_entry_order("garbage")


def test_unfilled_entries_are_counted_apart_from_rejections(tmp_path: Path) -> None:
    """Makers far from the index (5%) and entries allowed 0.2% of slippage: every IOC entry
    expires unfilled. Nothing is rejected; the summary, the CLI and the story say so."""
    d = small(**{"scenario.steps": 200, "events": [], "population.count": 50, "price.jumps": []})
    d["market_makers"]["depth"] = [{"offset_ppm": 50_000, "qty": "1"}]
    sc = scn.from_dict(d)
    out = tmp_path / "x.log"
    _, summary = run(sc.config, sc.commands(), out, seed=sc.seed)
    assert summary.rejected == 0
    e = summary.entries
    assert (e.orders, e.unfilled, e.filled, e.partly, e.rejected) == (50, 50, 0, 0, 0)
    expired = [x for x in LogReader(out).events() if isinstance(x, OrderExpired)]
    assert len(expired) == 50
    text = run_summary(summary, str(out))
    assert "(0 rejected)" in text
    assert "50 of 50 entry orders (IOC/FOK/market) did not fill: 50 expired with nothing" in text
    story, _ = read_story(out)
    told = story_text(story)
    assert "50 of 50 entry orders (IOC/FOK/market) did not fill" in told
    path = tmp_path / "x.toml"
    path.write_text(toml_text(d))
    r = _clearsim("run", str(path), "-o", str(tmp_path / "y.log"))
    assert r.returncode == 0 and "50 of 50 entry orders" in r.stdout
    assert r.stderr == ""  # no structlog line beside the summary, no progress in a pipe


def test_run_summary_without_entries_is_one_line() -> None:
    s = RunSummary(commands=3, events=7, last_seq=7)
    assert run_summary(s, "x.log").count("\n") == 1


def test_commands_callable_gets_the_runs_exchange(tmp_path: Path) -> None:
    seen: list[object] = []
    cfg = scn.from_dict(SMALL).config

    def commands(ex: object) -> list[dict[str, Any]]:
        seen.append(ex)
        return [{"type": "deposit", "ts": 1, "account": "a", "amount": "1"}]

    ex, summary = run(cfg, commands, tmp_path / "c.log")
    assert seen == [ex] and summary.commands == 1


def test_arrival_streams_are_deterministic_across_calls() -> None:
    sc = scn.from_dict(poisson(5))
    a = sc.population.arrivals
    assert isinstance(a, scn.PoissonArrivals)
    one = list(arrivals.poisson_entries(sc, 1, a, None))
    two = list(arrivals.poisson_entries(sc, 1, a, None))
    assert one == two and len(one) == 100
    assert one != list(arrivals.poisson_entries(sc, 2, a, None))


def test_run_refuses_to_write_over_the_market_file(tmp_path: Path) -> None:
    path = market_scenario(tmp_path)
    day = tmp_path / "day.jsonl"
    before = day.read_bytes()
    r = _clearsim("run", str(path), "-o", str(day), "--force")
    assert r.returncode == 2 and "refusing to write over an input" in r.stderr
    assert day.read_bytes() == before
