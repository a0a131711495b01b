"""``open_interest`` arrivals that follow a column of a historical ticker
(``replay/scenarios/oi_series.py``): the target at each check is the latest row's open
interest times ``share_ppm``, floored to the lot grid, 0 before the first row.

The expected targets are worked by hand from the rows written here (and from the tardis
``derivative_ticker`` sample in ``../shared/data``), not read off the code."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_arrivals import S, _population_oi, oi_scenario
from test_scenario import T0, small, toml_text

from clearsim.events.log import LogReader
from clearsim.events.types import Input
from clearsim.replay import scenarios as scn
from clearsim.replay.runner import run
from clearsim.replay.scenarios import ScenarioError
from clearsim.replay.scenarios.oi_series import OiCursor, OiSeries, OiSeriesError

ROOT = Path(__file__).resolve().parents[1]
TICKER = ROOT.parent / "shared" / "data" / "tardis" / "derivative_ticker_1.csv"
HEAD = "exchange,symbol,timestamp,open_interest\n"


def _file(tmp_path: Path, rows: list[str], name: str = "t.csv", head: str = HEAD) -> Path:
    p = tmp_path / name
    text = head + "".join(r + "\n" for r in rows)
    if name.endswith(".gz"):
        p.write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        p.write_text(text)
    return p


def _cursor(path: Path, share_ppm: int, lot: str = "0.001", **kw: Any) -> OiCursor:
    return OiCursor(OiSeries(path=path, share_ppm=share_ppm, **kw), lot)


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz"])
def test_target_is_the_latest_row_times_the_share_floored_to_lots(
    tmp_path: Path, name: str
) -> None:
    """Rows at 100 s (3.0005 BTC), 200 s (empty: no value yet), 300 s (8 BTC); share 50%,
    lot 0.001 BTC. 3.0005 x 0.5 = 1.50025 BTC = 1500.25 lots -> 1500 (floor);
    8 x 0.5 = 4 BTC = 4000 lots. Before 100 s: 0."""
    p = _file(
        tmp_path,
        [
            f"x,BTCUSDT,{T0 + 100 * S},3.0005",
            f"x,BTCUSDT,{T0 + 200 * S},",
            f"x,BTCUSDT,{T0 + 300 * S},8",
        ],
        name,
    )
    c = _cursor(p, 500_000)
    got = [c.target_at(T0 + k * S) for k in (0, 99, 100, 150, 200, 299, 300, 10_000)]
    assert got == [0, 0, 1500, 1500, 1500, 1500, 4000, 4000]


def test_timestamps_in_ms_and_ns_are_read_as_us(tmp_path: Path) -> None:
    """The importers' rule by magnitude: 13 digits are ms, 19 digits ns."""
    ms, ns = (T0 + 10 * S) // 1000, (T0 + 20 * S) * 1000
    c = _cursor(_file(tmp_path, [f"x,A,{ms},1", f"x,A,{ns},2"]), 1_000_000)
    assert [c.target_at(T0 + k * S) for k in (9, 10, 19, 20)] == [0, 1000, 1000, 2000]


def test_symbol_selects_its_rows_and_a_second_symbol_needs_one(tmp_path: Path) -> None:
    p = _file(tmp_path, [f"x,A,{T0},1", f"x,B,{T0 + S},7", f"x,A,{T0 + 2 * S},2"])
    c = _cursor(p, 1_000_000, symbol="B")
    assert [c.target_at(T0 + k * S) for k in (0, 1, 2)] == [0, 7000, 7000]
    c = _cursor(p, 1_000_000)  # the row after T0's is read to know T0's is the latest
    with pytest.raises(OiSeriesError, match=r"t\.csv:3: column symbol: a second symbol 'B'"):
        c.target_at(T0)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([f"x,A,{T0 + S},1", f"x,A,{T0},2"], r":3: column timestamp: .* before the row above"),
        ([f"x,A,{T0},-1"], r":2: column open_interest: '-1' is not a non-negative decimal"),
        ([f"x,A,{T0},1e3"], r":2: column open_interest: '1e3' is not"),
        (["x,A,2020-03-12,1"], r":2: column timestamp: '2020-03-12' is not an integer"),
        ([f"x,A,{T0}"], r":2: 3 fields, the header has 4"),
    ],
)
def test_a_bad_row_names_file_line_and_column(
    tmp_path: Path, rows: list[str], message: str
) -> None:
    c = _cursor(_file(tmp_path, rows), 1_000_000)
    with pytest.raises(OiSeriesError, match=message):
        for k in range(3):
            c.target_at(T0 + k * S)


def test_the_file_is_read_as_the_run_goes(tmp_path: Path) -> None:
    """A bad row two rows past the moment asked is not read yet: the cursor reads one row
    beyond the moment (to know the row before it is the latest), never more (constant
    memory over a whole day's ticker)."""
    c = _cursor(_file(tmp_path, [f"x,A,{T0},1", f"x,A,{T0 + 60 * S},1", "x,A,bad,1"]), 10**6)
    assert c.target_at(T0 + 30 * S) == 1000
    with pytest.raises(OiSeriesError, match=":4: column timestamp"):
        c.target_at(T0 + 60 * S)


def test_the_tardis_derivative_ticker_sample() -> None:
    """``derivative_ticker_1.csv``: BitMEX XBTUSD, open_interest 1,000,000 then 1,000,500
    contracts (lot 1). At 0.1% (1,000 ppm): 1,000 and 1,000.5 -> 1,000 contracts."""
    if not TICKER.exists():
        pytest.skip(f"{TICKER} not present (the shared market data)")
    c = _cursor(TICKER, 1_000, lot="1")
    first, second = 1583020803145000, 1583020863145000
    assert [c.target_at(t) for t in (first - 1, first, second)] == [0, 1000, 1000]
    c = _cursor(TICKER, 2_000, lot="1")  # 0.2%: 2,000 and 2,001
    assert [c.target_at(t) for t in (first, second)] == [2000, 2001]


# --------------------------------------------------------------------------- scenarios


def _series_scenario(path: Path, share_ppm: int) -> scn.Scenario:
    """test_arrivals' open-interest scenario (checks every 30 s, 20 a check, the crash at
    150..210 s) with the series in place of its 5 BTC target."""
    d = small(**{"scenario.steps": 600, "events": [], "population.count": 400})
    d["population"]["arrivals"] = {
        **oi_scenario_arrivals(),
        "series": {"file": str(path), "share_ppm": share_ppm},
    }
    return scn.from_dict(d)


def oi_scenario_arrivals() -> dict[str, Any]:
    a = {"kind": "open_interest", "check_s": 30, "max_per_check": 20}
    assert oi_scenario().population.arrivals == scn.OpenInterestArrivals(5000, 30, 20)
    return a


def test_a_series_scenario_waits_for_the_market_then_fills_to_its_share(tmp_path: Path) -> None:
    """The market's open interest is unknown before 60 s, then 10 BTC: at 50% the
    population's target is 5 BTC from the 60 s check on (checks every 30 s, up to 20
    accounts each). Nobody enters before 60 s; the first check after it lets 20 in; the
    population holds 5 BTC before the crash (150 s), less than one more entry above it
    (entries are at most 20,000 USDT = 0.4 BTC)."""
    p = _file(tmp_path, [f"x,BTC-USD,{T0 + 45 * S},10"])
    sc = _series_scenario(p, 500_000)
    out = tmp_path / "oi.log"
    _, summary = run(sc.config, lambda ex: sc.commands(exchange=ex), out, seed=sc.seed)
    events = list(LogReader(out).events())
    entries = [e for e in events if isinstance(e, Input) and e.command.get("id") == "entry"]
    by_check = Counter((e.ts - T0) // S for e in entries)
    assert min(by_check) == 60 and by_check[60] == 20, by_check
    oi = _population_oi([e for e in events if e.ts < T0 + 140 * S], set(sc.population_ids()))
    assert 5000 <= oi < 5000 + 400, oi
    assert summary.entries.orders == len(entries)
    again = tmp_path / "oi2.log"
    run(sc.config, lambda ex: sc.commands(exchange=ex), again, seed=sc.seed)
    assert again.read_bytes() == out.read_bytes()


def test_a_series_scenario_loads_from_toml_with_a_relative_file(tmp_path: Path) -> None:
    _file(tmp_path, [f"x,BTC-USD,{T0},10"], "ticker.csv.gz")
    d = small(**{"scenario.steps": 600, "events": [], "population.count": 40})
    d["population"]["arrivals"] = {
        "kind": "open_interest",
        "series": {"file": "ticker.csv.gz", "share_ppm": 1000, "symbol": "BTC-USD"},
    }
    path = tmp_path / "s.toml"
    path.write_text(toml_text(d))
    a = scn.load(path).population.arrivals
    assert isinstance(a, scn.OpenInterestArrivals)
    assert a.series == OiSeries(tmp_path / "ticker.csv.gz", 1000, "open_interest", "BTC-USD")


@pytest.mark.parametrize(
    ("series", "extra", "message"),
    [
        ({"share_ppm": 1}, {}, "population.arrivals.series.file: required"),
        ({"file": "t.csv"}, {}, "population.arrivals.series.share_ppm: required"),
        ({"file": "t.csv", "share_ppm": 0}, {}, "share_ppm: expected an integer in [1, 1000000]"),
        ({"file": "t.csv", "share_ppm": 1, "colour": 1}, {}, "series.colour: unknown key"),
        ({"file": "t.csv", "share_ppm": 1}, {"target": "1"}, "give target or series, not both"),
        ({"file": "nope.csv", "share_ppm": 1}, {}, "nope.csv: cannot open"),
        (
            {"file": "t.csv", "share_ppm": 1, "column": "oi"},
            {},
            "t.csv:1: no 'oi' column (header: exchange,symbol,timestamp,open_interest)",
        ),
        ({"file": "t.csv", "share_ppm": 1, "column": 3}, {}, "series.column: expected a column"),
    ],
)
def test_series_validation_names_the_key(
    tmp_path: Path, series: dict[str, Any], extra: dict[str, Any], message: str
) -> None:
    _file(tmp_path, [f"x,BTC-USD,{T0},10"])
    d = small(**{"scenario.steps": 600, "events": [], "population.count": 40})
    d["population"]["arrivals"] = {"kind": "open_interest", "series": series, **extra}
    with pytest.raises(ScenarioError) as e:
        scn.from_dict(d, base_dir=tmp_path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_bad_row_mid_run_is_one_error_line_and_no_output(tmp_path: Path) -> None:
    """Found hours into a run, the bad row still ends it with one ``error:`` line naming
    the file and line, and no log is left behind (written to a temporary and renamed)."""
    import subprocess
    import sys

    _file(tmp_path, [f"x,BTC-USD,{T0},10", f"x,BTC-USD,{T0 + 100 * S},ten"])
    d = small(**{"scenario.steps": 600, "events": [], "population.count": 40})
    d["population"]["arrivals"] = {
        "kind": "open_interest",
        "series": {"file": "t.csv", "share_ppm": 10_000},
        "check_s": 30,
    }
    (tmp_path / "s.toml").write_text(toml_text(d))
    out = tmp_path / "out.log"
    p = subprocess.run(
        [sys.executable, "-m", "clearsim", "run", str(tmp_path / "s.toml"), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), p.stderr
    assert "t.csv:3: column open_interest: 'ten'" in lines[0]
    assert not out.exists()
