"""``clearsim sweep`` and ``clearsim calibrate`` (issue 14), on markets small enough to run
in a fraction of a second.

The hand-computed day (``DROP``): ``mm`` deposits 1,000,000 and ``alice`` 5,000; index
50,000; alice buys 1 BTC from mm at 50,000 (IM 10% = 5,000: exactly enough); the index
drops to 44,000 (oracle mark). Alice's equity is 5,000 - 6,000 = -1,000 < MM: liquidated.
Her bankruptcy value is 45,000 (where her equity is zero). The waterfall is
``takeover -> adl``:

- fund >= 1,000: the fund takes the long over at 45,000 while it is worth 44,000, so its
  equity falls by exactly 1,000 (start 5,000 -> min and end 4,000); no ADL.
- fund < 1,000: taking it over would leave the fund below zero, so the takeover step does
  not apply and ADL closes the long against mm's short at the bankruptcy value: one
  deleveraging of 45,000 notional; the fund is untouched.

So the smallest fund with no ADL is exactly 1,000 USDT, which calibrate must find with a
tolerance of one atom.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from test_cli import assert_user_error, clearsim_argv, cli

from clearsim.clearing import Config
from clearsim.events.log import LogReader
from clearsim.replay.cli import render
from clearsim.replay.projections.fund import fold_fund
from clearsim.replay.sweep import calibrate as cal
from clearsim.replay.sweep import overrides, results, spec
from clearsim.replay.sweep.cell import NONDETERMINISTIC, Outcome, run_cell
from clearsim.replay.sweep.pool import Backend, run_cells

T0 = 1_700_000_000_000_000
USDT = 1_000_000

DAY_TOML = """\
[exchange]
collateral = "USDT"
collateral_decimals = 6
mark = "oracle"

[insurance_fund]
initial = "0"

[waterfall]
steps = ["takeover", "adl"]
price_limit = "bankruptcy"

[[instruments]]
symbol = "BTC-USD"
tick_size = "0.1"
lot_size = "0.001"
tiers = [ { max_notional = "50000", imr_ppm = 100000, mmr_ppm = 4000 },
          { max_notional = "250000", imr_ppm = 200000, mmr_ppm = 5000 } ]
"""

DROP: list[dict[str, Any]] = [
    {"type": "deposit", "ts": T0, "account": "mm", "amount": "1000000"},
    {"type": "deposit", "ts": T0 + 1, "account": "alice", "amount": "5000"},
    {"type": "index_price", "ts": T0 + 2, "symbol": "BTC-USD", "price": "50000"},
    {"type": "order", "ts": T0 + 3, "account": "mm", "id": "m1", "symbol": "BTC-USD",
     "side": "sell", "qty": "1", "price": "50000", "tif": "gtc"},
    {"type": "order", "ts": T0 + 4, "account": "alice", "id": "a1", "symbol": "BTC-USD",
     "side": "buy", "qty": "1", "price": "50000", "tif": "gtc"},
    {"type": "index_price", "ts": T0 + 5, "symbol": "BTC-USD", "price": "44000"},
]  # fmt: skip

#: A small crash: 60 leveraged accounts, two thin makers, a -30% slide at 100 s.
TINY = """\
[scenario]
name = "tiny"
seed = 7
start_ts = 1700000000000000
steps = 200

[exchange]
collateral = "USDT"
collateral_decimals = 6

[insurance_fund]
initial = "2000"

[waterfall]
steps = ["book", "backstop", "adl"]
price_limit = "market"
surplus = "insurance_fund"
backstop_accounts = ["vault"]

[[instruments]]
symbol = "BTC-USD"
tick_size = "0.1"
lot_size = "0.001"
taker_fee_ppm = 400
band_ppm = 100000
tiers = [
  { max_notional = "100000", imr_ppm = 20000, mmr_ppm = 5000 },
  { max_notional = "100000000", imr_ppm = 100000, mmr_ppm = 25000 },
]

[population]
count = 60
leverage_min = 2
leverage_max = 50
leverage_dist = "skewed"
size_min = "200"
size_max = "20000"
long_ppm = 650000
entry_window_s = 60

[market_makers]
count = 2
deposit = "5000000"
depth = [{ offset_ppm = 300, qty = "0.2" }, { offset_ppm = 2000, qty = "0.5" }]
thin_move_ppm = 15000
thin_window_s = 20
thin_factor_ppm = 50000
thin_spread_ppm = 4000000

[price]
kind = "random_walk"
start = "50000"
vol_ppm = 300
jumps = [{ at_s = 100, move_ppm = -300000, over_s = 40 }]

[[accounts]]
id = "vault"
deposit = "20000"
"""


@pytest.fixture
def pa() -> Any:
    """pyarrow, for the tests of the results table (else they are skipped)."""
    return pytest.importorskip("pyarrow", reason="sweep results need pyarrow (clearsim[data])")


def _drop_dir(d: Path, grid: str) -> Path:
    (d / "day.toml").write_text(DAY_TOML)
    (d / "day.jsonl").write_text("".join(json.dumps(c) + "\n" for c in DROP))
    sweep = d / "drop.sweep.toml"
    sweep.write_text(
        '[sweep]\nscenarios = [{ name = "drop", config = "day.toml", commands = "day.jsonl" }]\n'
        + grid
    )
    return sweep


def _tiny_dir(d: Path, body: str) -> Path:
    (d / "tiny.toml").write_text(TINY)
    sweep = d / "tiny.sweep.toml"
    sweep.write_text(body)
    return sweep


TINY_GRID = """\
[sweep]
scenarios = ["tiny.toml"]
seeds = [1, 2]
[grid]
"insurance_fund.initial" = ["0", "50000"]
"waterfall.steps" = [["book", "adl"], ["book", "backstop", "adl"]]
"""


# --------------------------------------------------------------------------- the sweep file


def test_grid_expands_into_days_cases_seeds_in_order(tmp_path: Path) -> None:
    sw = spec.load(_tiny_dir(tmp_path, TINY_GRID))
    cells = sw.cells()
    assert len(cells) == 2 * 2 * 2
    assert [(dict(c.params)["insurance_fund.initial"], c.seed) for c in cells[:4]] == [
        ("0", 1), ("0", 2), ("0", 1), ("0", 2)
    ]  # fmt: skip
    assert dict(cells[2].params)["waterfall.steps"] == ["book", "backstop", "adl"]
    assert len({c.key for c in cells}) == len(cells)
    # The same file read again gives the same keys; a changed scenario byte changes them all.
    assert [c.key for c in spec.load(tmp_path / "tiny.sweep.toml").cells()] == [
        c.key for c in cells
    ]
    (tmp_path / "tiny.toml").write_text(TINY + "# a comment\n")
    again = spec.load(tmp_path / "tiny.sweep.toml").cells()
    assert not {c.key for c in again} & {c.key for c in cells}


def test_listed_cases_and_the_scenarios_own_seed(tmp_path: Path) -> None:
    sw = spec.load(
        _tiny_dir(
            tmp_path,
            '[sweep]\nscenarios = ["tiny.toml"]\n'
            '[[cases]]\n"exchange.preset" = "bitmex"\n'
            '[[cases]]\n"waterfall.liquidation_fee_ppm" = "2000"\n',
        )
    )
    cells = sw.cells()
    assert [c.params for c in cells] == [
        (("exchange.preset", "bitmex"),),
        (("waterfall.liquidation_fee_ppm", 2000),),  # read as set reads it: an integer
    ]
    assert [c.seed for c in cells] == [7, 7]  # [scenario].seed


def test_overrides_reach_the_config_and_a_preset_replaces_the_scenarios_rules(
    tmp_path: Path,
) -> None:
    _tiny_dir(tmp_path, "")
    day = spec.load(_tiny_dir(tmp_path, '[sweep]\nscenarios = ["tiny.toml"]\n')).days[0]
    sc = spec.build(
        day,
        (
            ("exchange.preset", "bitmex"),
            ("waterfall.liquidation_fee_ppm", 123),
            ("insurance_fund.initial", "777.5"),
            ("instruments.BTC-USD.taker_fee_ppm", "100"),
            ("population.count", 10),
        ),
    )
    assert not isinstance(sc, Config)
    w = sc.config.waterfall
    # bitmex's steps and price limit, not the scenario's book -> backstop -> adl at market
    assert w.steps == ("takeover", "adl")
    assert w.price_limit.value == "bankruptcy"
    assert w.liquidation_fee_ppm == 123  # the cell's own parameter wins over the preset
    assert w.backstop_accounts == ("vault",)  # not decided by the preset: the file's
    assert sc.config.insurance_initial == 777_500_000
    assert sc.config.instruments[0].taker_fee_ppm == 100
    assert sc.population.count == 10


@pytest.mark.parametrize(
    ("grid", "mentions"),
    [
        ('"waterfall.nope" = [1]', ["waterfall.nope: unknown parameter"]),
        ('"instruments.ETH-USD.band_ppm" = [1]', ["no instrument 'ETH-USD'"]),
        ('"waterfall.liquidation_fee_ppm" = [0.5]', ["a float is not accepted"]),
        ('"waterfall.steps" = ["book", "adl"]', ["waterfall.steps: expected a list"]),
        ('"exchange.preset" = ["nasdaq"]', ["unknown preset 'nasdaq'"]),
        ('"scenario.seed" = [1]', ["[sweep] seeds"]),
        ('"population.bogus" = [1]', ["population.bogus: unknown key"]),
        ('"insurance_fund.initial" = []', ["expected a non-empty list"]),
        ('"waterfall.liquidation_fee_ppm" = ["5", "005"]', ["two cells are the same run"]),
    ],
)
def test_a_bad_sweep_file_is_one_error_line(tmp_path: Path, grid: str, mentions: list[str]) -> None:
    sweep = _tiny_dir(tmp_path, '[sweep]\nscenarios = ["tiny.toml"]\n[grid]\n' + grid + "\n")
    with pytest.raises(spec.SweepError) as e:
        spec.load(sweep)
    text = str(e.value)
    assert "\n" not in text and str(sweep) in text
    for m in mentions:
        assert m in text


def test_sweep_file_shape_errors(tmp_path: Path) -> None:
    for body, mention in [
        ("[sweep]\n", "sweep.scenarios"),
        ('[sweep]\nscenarios = ["missing.toml"]\n', "missing.toml"),
        ('[sweep]\nscenarios = ["tiny.toml"]\n[grid]\n[[cases]]\n', "not both"),
        ('[sweep]\nscenarios = ["tiny.toml"]\nseeds = [1, 1]\n', "listed twice"),
        ('[sweep]\nscenarios = ["tiny.toml"]\n[other]\n', "unknown table"),
        ('[sweep]\nscenarios = [{ config = "x.toml" }]\n', "config = and commands ="),
    ]:
        with pytest.raises(spec.SweepError, match=mention):
            spec.load(_tiny_dir(tmp_path, body))


def test_overrides_canonical_reads_values_as_set_does() -> None:
    tier = {"max_notional": "9", "imr_ppm": 1, "mmr_ppm": 1}
    doc = {"instruments": [{"symbol": "X", "tick_size": "1", "lot_size": "1", "tiers": [tier]}]}
    assert overrides.canonical(doc, "waterfall.partial", "true", scenario=False) is True
    assert overrides.canonical(doc, "waterfall.steps", '["adl"]', scenario=False) == ["adl"]
    assert overrides.canonical(doc, "insurance_fund.initial", 5, scenario=False) == "5"
    with pytest.raises(overrides.OverrideError, match="a day of commands has no"):
        overrides.canonical(doc, "population.count", 5, scenario=False)


# --------------------------------------------------------------------------- one cell


def test_the_hand_computed_day_gives_the_hand_computed_outcomes(tmp_path: Path) -> None:
    sw = spec.load(
        _drop_dir(tmp_path, '[grid]\n"insurance_fund.initial" = ["999.999999", "5000"]\n')
    )
    poor, rich = (run_cell(c, str(tmp_path)) for c in sw.cells())
    assert (poor.liquidations, poor.liq_takeover_count, poor.liq_adl_count) == (1, 1, 1)
    assert (poor.adl_count, poor.adl_notional, poor.adl_accounts) == (1, 45_000 * USDT, 1)
    assert poor.liq_takeover_notional == 0 and poor.liq_adl_notional == 45_000 * USDT
    assert poor.fund_start == poor.fund_min == poor.fund_end == 999_999_999
    assert (rich.adl_count, rich.adl_notional) == (0, 0)
    assert rich.liq_takeover_notional == 45_000 * USDT
    assert (rich.fund_start, rich.fund_min, rich.fund_end) == (
        5000 * USDT,
        4000 * USDT,
        4000 * USDT,
    )
    for o in (poor, rich):
        assert (o.commands, o.rejected, o.system_debt, o.socialized) == (6, 0, 0, 0)
        assert (o.largest_cascade_liquidations, o.collateral, o.seed) == (1, "USDT", 0)
        # The row agrees with the fund fold of its log, and names the log's last checksum.
        log = tmp_path / f"{o.key}.log"
        rep = fold_fund(log)
        assert (rep.low.low, rep.equity, len(rep.adl)) == (o.fund_min, o.fund_end, o.adl_count)
        reader = LogReader(log)
        assert sum(1 for _ in reader.events()) == o.events == o.last_seq
        assert reader.last_h == o.chain_hash
    assert cli("verify", tmp_path / f"{poor.key}.log").returncode == 0


def test_a_cell_refuses_files_that_changed_since_the_sweep_was_read(tmp_path: Path) -> None:
    sw = spec.load(_drop_dir(tmp_path, ""))
    with (tmp_path / "day.jsonl").open("a") as f:
        f.write(json.dumps({"type": "settle_period", "ts": T0 + 9}) + "\n")
    with pytest.raises(Exception, match="changed since the sweep was read"):
        run_cell(sw.cells()[0])


# --------------------------------------------------------------------------- the table


def _table(outcomes: list[Outcome], order: list[str]) -> Any:
    return results.merge(None, results.to_table(outcomes), order)


def test_results_columns_types_and_order(tmp_path: Path, pa: Any) -> None:
    sw = spec.load(_drop_dir(tmp_path, '[grid]\n"insurance_fund.initial" = ["0", "1000"]\n'))
    cells = sw.cells()
    outs = [run_cell(c) for c in reversed(cells)]  # completion order: reversed
    t = _table(outs, [c.key for c in cells])
    assert t.column_names[:4] == ["key", "day", "seed", "param:insurance_fund.initial"]
    assert t.column_names[-3:] == list(NONDETERMINISTIC) == ["run_s", "cpu_s", "commands_per_s"]
    assert t.column("key").to_pylist() == [c.key for c in cells]  # the sweep's order
    assert t.schema.field("fund_min").type == pa.decimal128(38, 6)  # USDT's 6 decimals
    assert [str(v) for v in t.column("fund_start").to_pylist()] == ["0.000000", "1000.000000"]
    # A day of another collateral_decimals: the merged table keeps every amount exact.
    sats = attrs.evolve(outs[0], key="other", decimals=8, fund_start=123)
    both = results.merge(t, results.to_table([sats]), [c.key for c in cells])
    assert both.schema.field("fund_start").type == pa.decimal128(38, 8)
    assert both.column("fund_start").to_pylist() == [
        Decimal(0),
        Decimal(1000),
        Decimal("0.00000123"),
    ]
    assert t.column("param:insurance_fund.initial").to_pylist() == ["0", "1000"]
    path = tmp_path / "r.parquet"
    results.write(path, t)
    assert results.read(path).equals(t)
    (tmp_path / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(results.ResultsError, match="not a Parquet file"):
        results.read(tmp_path / "x.parquet")


def _det(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = results.deterministic(results.read(path)).to_pylist()
    return rows


def test_sweep_cli_is_deterministic_whatever_the_workers_and_resumes(
    tmp_path: Path, pa: Any
) -> None:
    sweep = _tiny_dir(tmp_path, TINY_GRID)
    one, two = tmp_path / "one.parquet", tmp_path / "two.parquet"
    r1 = cli("sweep", sweep, "-o", one, "--workers", "1")
    assert r1.returncode == 0, r1.stderr
    assert r1.stderr == ""  # no progress bar in a pipe
    assert "8 cells: 8 run on 1 process" in r1.stdout
    r2 = cli("sweep", sweep, "-o", two, "--workers", "2")
    assert r2.returncode == 0, r2.stderr
    rows = _det(one)
    assert rows == _det(two)  # row for row, chain hashes included
    assert len({r["chain_hash"] for r in rows}) == 8
    assert any(r["adl_count"] for r in rows) and not all(r["adl_count"] for r in rows)

    # A crash after three rows: the re-run runs the other five and keeps the three.
    full = results.read(one)
    results.write(one, full.slice(0, 3))
    kept = full.slice(0, 3).column("commands_per_s").to_pylist()
    r3 = cli("sweep", sweep, "-o", one, "--workers", "1")
    assert r3.returncode == 0, r3.stderr
    assert "5 run on 1 process" in r3.stdout and "3 already in" in r3.stdout
    assert _det(one) == rows
    assert results.read(one).slice(0, 3).column("commands_per_s").to_pylist() == kept
    r4 = cli("sweep", sweep, "-o", one)
    assert "0 run" in r4.stdout and "8 already in" in r4.stdout


def test_sweep_cli_refuses_bad_outputs(tmp_path: Path, pa: Any) -> None:
    sweep = _drop_dir(tmp_path, "")
    assert_user_error(cli("sweep", sweep, "-o", sweep), "refusing to write over an input")
    other = tmp_path / "notes.parquet"
    other.write_text("hello")
    assert_user_error(cli("sweep", sweep, "-o", other), "not a Parquet file", "--force")
    assert other.read_text() == "hello"
    assert_user_error(cli("sweep", sweep, "-o", tmp_path / "no" / "r.parquet"), "no such dir")
    assert_user_error(cli("sweep", sweep, "-o", tmp_path / "r.parquet", "--workers", "0"))
    (tmp_path / "bad.sweep.toml").write_text('[sweep]\nscenarios = ["nope.toml"]\n')
    assert_user_error(cli("sweep", tmp_path / "bad.sweep.toml", "-o", other), "nope.toml")
    r = cli("sweep", sweep, "-o", other, "--force", "--keep-logs", tmp_path / "logs")
    assert r.returncode == 0, r.stderr
    (log,) = (tmp_path / "logs").glob("*.log")
    assert LogReader(log).header.config["insurance_fund"]["initial"] == "0"


def test_missing_pyarrow_names_the_extra(tmp_path: Path) -> None:
    sweep = _drop_dir(tmp_path, "")
    code = (
        "import sys; sys.modules['pyarrow'] = None; from clearsim.replay.cli import main; "
        f"sys.exit(main(['sweep', {str(sweep)!r}, '-o', {str(tmp_path / 'r.parquet')!r}]))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert_user_error(r, "pip install 'clearsim[data]'")


def test_progress_bar_on_a_terminal_only(tmp_path: Path, pa: Any) -> None:
    sweep = _drop_dir(tmp_path, '[grid]\n"insurance_fund.initial" = ["0", "1000"]\n')
    master, slave = pty.openpty()
    proc = subprocess.run(
        [*clearsim_argv(), "sweep", str(sweep), "-o", str(tmp_path / "r.parquet"),
         "--workers", "1"],
        stdout=subprocess.PIPE, stderr=slave, text=True, check=False, timeout=120,
    )  # fmt: skip
    os.close(slave)
    drawn = b""
    try:
        while chunk := os.read(master, 1 << 16):
            drawn += chunk
    except OSError:  # the pty's other end is closed
        pass
    os.close(master)
    assert proc.returncode == 0
    assert b"runs" in drawn and b"2/2" in drawn
    assert "runs" not in proc.stdout.splitlines()[0]  # the summary, not the bar


# --------------------------------------------------------------------------- calibrate


def test_calibrate_finds_the_hand_computed_fund(tmp_path: Path) -> None:
    sw = spec.load(_drop_dir(tmp_path, ""))
    dom = cal.domain(sw, "insurance_fund.initial")
    assert (dom.scale, dom.unit, dom.start) == (USDT, "USDT", 0)
    res = cal.calibrate(sw, dom, cal.Target.NO_ADL, Backend(workers=1), tolerance=1, hi=5000 * USDT)
    (case,) = res.results
    assert case.value == 1000 * USDT  # exactly: one atom less needs ADL
    assert case.lo == 1000 * USDT - 1
    assert case.violations == ()
    met = {r.value: r.met for r in res.runs}
    assert met[0] is False and met[5000 * USDT] is True
    assert all(v >= 1000 * USDT for v, ok in met.items() if ok)
    # A range that holds no answer, and one whose low end already meets the target.
    (none,) = cal.calibrate(sw, dom, cal.Target.NO_ADL, Backend(), hi=500 * USDT).results
    assert (none.value, none.lo) == (None, 500 * USDT)
    low = cal.calibrate(sw, dom, cal.Target.NO_ADL, Backend(), lo=2000 * USDT, hi=4000 * USDT)
    assert low.results[0].value == 2000 * USDT and len(low.runs) == 2
    text = render.calibrate_text(low)
    assert "2000 USDT (met at the low end; 2 values tried)" in text
    # Without a range: up from one unit, doubling, then 1% of the bracket.
    res2 = cal.calibrate(sw, dom, cal.Target.NO_ADL, Backend(workers=1))
    (c2,) = res2.results
    assert c2.value is not None and 1000 * USDT <= c2.value <= 1000 * USDT + c2.value // 100


def test_calibrate_cli_text_json_and_reuse(tmp_path: Path, pa: Any) -> None:
    sweep = _drop_dir(tmp_path, "")
    runs = tmp_path / "runs.parquet"
    args = ["calibrate", sweep, "--param", "insurance_fund.initial", "--target", "no_adl",
            "--range", "0", "4000", "--tolerance", "10", "--workers", "1"]  # fmt: skip
    r = cli(*args, "-o", runs)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[1]
    assert "(the scenario as written): 1000 USDT" in first, r.stdout
    assert "monotone over every run made" in r.stdout
    made = results.read(runs).num_rows
    assert made == sum(1 for line in r.stdout.splitlines() if " drop " in line)
    again = cli(*args, "-o", runs, "--json")
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["results"][0]["value"] == "1000" and data["results"][0]["monotone"]
    assert all(run["cached"] for run in data["runs"])  # nothing ran twice
    assert results.read(runs).num_rows == made
    assert_user_error(
        cli("calibrate", sweep, "--param", "waterfall.steps", "--target", "no_adl"),
        "only integers and amounts",
    )
    fine = ["--tolerance", "0.0000001"]
    assert_user_error(
        cli("calibrate", sweep, "--param", "insurance_fund.initial", "--target", "no_adl", *fine),
        "finer than one atom",
    )


def test_monotonicity_violations_are_reported() -> None:
    dom = cal.Domain("insurance_fund.initial", USDT, "USDT")
    runs = [
        cal.Run(0, v * USDT, "d", 1, f"k{v}", met, {})
        for v, met in [(0, False), (10, True), (20, False), (40, True)]
    ]
    assert cal._violations(runs, dom) == ("d seed 1: met at 10 USDT but not at 20 USDT",)
    assert cal._violations(runs[:2] + runs[3:], dom) == ()


# --------------------------------------------------------------------------- ray, report


def test_ray_gives_the_process_pools_rows(tmp_path: Path, pa: Any) -> None:
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'clearsim[ray]'")
    sw = spec.load(_tiny_dir(tmp_path, TINY_GRID))
    cells = sw.cells()
    order = [c.key for c in cells]
    pool = _table(list(run_cells(cells, Backend(workers=2))), order)
    logs = tmp_path / "ray-logs"
    try:
        by_ray = _table(list(run_cells(cells, Backend(workers=2, ray=True, keep_logs=logs))), order)
    finally:
        ray.shutdown()
    assert results.deterministic(by_ray).to_pylist() == results.deterministic(pool).to_pylist()
    for row in by_ray.to_pylist():  # the logs came back from the workers, intact
        reader = LogReader(logs / f"{row['key']}.log")
        sum(1 for _ in reader.events())
        assert reader.last_h == row["chain_hash"]


def test_sweep_report_has_one_chart_per_outcome_per_day(tmp_path: Path, pa: Any) -> None:
    pytest.importorskip("plotly", reason="the report needs plotly (clearsim[report])")
    import re

    from clearsim.replay.sweep.report import OUTCOMES, sweep_report_html

    (tmp_path / "tiny.toml").write_text(TINY)
    (tmp_path / "tiny2.toml").write_text(TINY.replace('name = "tiny"', 'name = "tiny2"'))
    sw = spec.load(
        _tiny_dir(
            tmp_path,
            '[sweep]\nscenarios = ["tiny.toml", "tiny2.toml"]\n'
            '[grid]\n"insurance_fund.initial" = ["0", "50000"]\n'
            '"exchange.preset" = ["bitmex", "binance"]\n',
        )
    )
    (tmp_path / "tiny2.toml").write_text(TINY.replace('name = "tiny"', 'name = "tiny2"'))
    cells = sw.cells()
    path = tmp_path / "r.parquet"
    results.write(path, _table([run_cell(c) for c in cells], [c.key for c in cells]))
    page = sweep_report_html(path)
    assert page == sweep_report_html(path)  # fixed element ids: the same table, the same page
    charts = re.findall(r'<div id="(day\d+-[a-z_]+)" class="plotly-graph-div"', page)
    assert charts == [f"day{d}-{col}" for d in range(2) for col, _ in OUTCOMES]
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)
    assert "<h2>tiny.toml</h2>" in page and "<h2>tiny2.toml</h2>" in page
    assert "exchange.preset=bitmex" in page  # one line per preset, the fund on the x axis
    assert '"title":{"text":"insurance_fund.initial"}' in page
    # `clearsim report` hands a .parquet input to this page.
    r = cli("report", path, "-o", tmp_path / "sweep.html")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "sweep.html").read_text() == page
