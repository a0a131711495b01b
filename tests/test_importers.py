"""``clearsim import``: historical prices and funding -> commands (issue 12, first slice)."""

from __future__ import annotations

import datetime as dt
import gzip
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clearsim.replay.importers import ImportFailed, import_files, thin
from clearsim.replay.importers.binance import london_rule_to_us, london_to_us

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
S = 1_000_000
T0 = 1_583_020_800_000_000  # 2020-03-01 00:00 UTC


def need_data() -> Path:
    if not DATA.is_dir():
        pytest.skip("../shared/data not present")
    return DATA


def run_import(fmt: str, inputs: list[Path], tmp: Path, **kw: Any) -> list[dict[str, Any]]:
    out = tmp / "out.jsonl"
    import_files(fmt, [str(i) for i in inputs], out, force=True, **kw)
    return [json.loads(line) for line in out.read_text().splitlines()]


def ip(ts: int, price: str, sym: str = "XBTUSD") -> dict[str, Any]:
    return {"type": "index_price", "ts": ts, "symbol": sym, "price": price}


def fu(ts: int, rate: str, sym: str = "XBTUSD") -> dict[str, Any]:
    return {"type": "funding", "ts": ts, "symbol": sym, "rate": rate}


def write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


TICKER_HEAD = (
    "exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,"
    "predicted_funding_rate,open_interest,last_price,index_price,mark_price\n"
)
TRADES_HEAD = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"


# --------------------------------------------------------------------------- tardis


def test_tardis_ticker_funding_once_per_timestamp_when_reached(tmp_path: Path) -> None:
    f = write(
        tmp_path / "t.csv",
        TICKER_HEAD
        + f"bitmex,XBTUSD,{T0 - 2 * S},0,{T0},0.0001,0,1,1,9500.0,9500.5\n"
        + f"bitmex,XBTUSD,{T0 - S},0,{T0},0.0002,0,1,1,9501.0,9501.5\n"
        + f"bitmex,XBTUSD,{T0 + S},0,{T0 + 3600 * S},0.0003,0,1,1,9502.0,9502.5\n"
        + f"bitmex,XBTUSD,{T0 + 2 * S},0,{T0 + 3600 * S},0.0004,0,1,1,9503.0,9503.5\n",
    )
    assert run_import("tardis", [f], tmp_path) == [
        ip(T0 - 2 * S, "9500.0"),
        ip(T0 - S, "9501.0"),
        fu(T0, "0.0002"),
        ip(T0 + S, "9502.0"),
        ip(T0 + 2 * S, "9503.0"),
    ]
    got = run_import("tardis", [f], tmp_path, price="mark", symbol="BTC")
    assert [c["price"] for c in got if c["type"] == "index_price"][:2] == ["9500.5", "9501.5"]
    assert {c["symbol"] for c in got} == {"BTC"}


def test_tardis_ticker_funding_per_symbol(tmp_path: Path) -> None:
    f = write(
        tmp_path / "t.csv",
        TICKER_HEAD
        + f"x,A,{T0 - S},0,{T0},0.0001,0,1,1,1.0,1.0\n"
        + f"x,B,{T0 - S},0,{T0},0.0005,0,1,1,2.0,2.0\n"
        + f"x,A,{T0 + S},0,{T0 + 3600 * S},0.0002,0,1,1,1.5,1.5\n"
        + f"x,B,{T0 + S},0,{T0 + 3600 * S},0.0006,0,1,1,2.5,2.5\n",
    )
    assert run_import("tardis", [f], tmp_path) == [
        ip(T0 - S, "1.0", "A"),
        ip(T0 - S, "2.0", "B"),
        fu(T0, "0.0001", "A"),
        fu(T0, "0.0005", "B"),  # due as soon as any row reaches it: the output stays in order
        ip(T0 + S, "1.5", "A"),
        ip(T0 + S, "2.5", "B"),
    ]


def test_tardis_trades_ns_timestamps_divided(tmp_path: Path) -> None:
    f = write(
        tmp_path / "tr.csv",
        TRADES_HEAD
        + "bitmex,XBTUSD,1583020803145000000,1583020803307160000,a,sell,8531.50,2152\n"
        + "bitmex,XBTUSD,1583020803145001000,1583020803307160000,b,buy,8531.0,1\n",
    )
    out = tmp_path / "o.jsonl"
    s = import_files("tardis", [str(f)], out)
    assert [json.loads(x) for x in out.read_text().splitlines()] == [
        ip(1583020803145000, "8531.50"),
        ip(1583020803145001, "8531.0"),
    ]
    assert s.rows == 2 and s.commands == 2 and s.first_ts == 1583020803145000
    assert any("nanosecond" in n for n in s.notes)


def test_tardis_real_samples() -> None:
    d = need_data() / "tardis"
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        got = run_import("tardis", [d / "derivative_ticker_1.csv", d / "trades_1.csv"], Path(tmp))
    assert got == [
        fu(1583020800000000, "0.0001"),
        ip(1583020803145000, "9500.0"),
        ip(1583020803145000, "8531.5"),
        ip(1583020803145000, "8531.0"),
        fu(1583020860000000, "0.00015"),
        ip(1583020863145000, "9500.5"),
    ]


def test_bad_row_names_file_line_column_and_skip_bad(tmp_path: Path) -> None:
    f = write(
        tmp_path / "day.csv",
        TRADES_HEAD
        + f"bitmex,XBTUSD,{T0},0,a,sell,8531.5,1\n"
        + f"bitmex,XBTUSD,{T0 + 1},0,b,sell,abc,1\n"
        + f"bitmex,XBTUSD,{T0 + 2},0,c,sell,8532,1\n",
    )
    out = tmp_path / "o.jsonl"
    with pytest.raises(ImportFailed, match=r"day\.csv:3: column price: 'abc' is not a decimal"):
        import_files("tardis", [str(f)], out)
    assert not out.exists() and not (tmp_path / "o.jsonl.partial").exists()
    s = import_files("tardis", [str(f)], out, skip_bad=True)
    assert (s.rows, s.skipped, s.commands) == (3, 1, 2)
    assert [json.loads(x)["price"] for x in out.read_text().splitlines()] == ["8531.5", "8532"]


def test_out_of_order_file_refused(tmp_path: Path) -> None:
    f = write(
        tmp_path / "o.csv",
        TRADES_HEAD + f"bitmex,XBTUSD,{T0 + 5},0,a,sell,1,1\nbitmex,XBTUSD,{T0},0,b,sell,1,1\n",
    )
    with pytest.raises(ImportFailed, match=r"o\.csv:3: timestamp .* goes back in time"):
        import_files("tardis", [str(f)], tmp_path / "x.jsonl")


def test_gzip_input(tmp_path: Path) -> None:
    f = tmp_path / "tr.csv.gz"
    with gzip.open(f, "wt") as g:
        g.write(TRADES_HEAD + f"bitmex,XBTUSD,{T0},0,a,sell,8531.5,1\n")
    assert run_import("tardis", [f], tmp_path) == [ip(T0, "8531.5")]


# --------------------------------------------------------------------------- merge, every


def test_merge_interleaves_by_ts_ties_keep_file_order(tmp_path: Path) -> None:
    a = write(
        tmp_path / "a.csv",
        TRADES_HEAD + f"x,XBTUSD,{T0},0,a,sell,1,1\nx,XBTUSD,{T0 + 2 * S},0,a,sell,3,1\n",
    )
    b = write(
        tmp_path / "BTCUSDT-fundingRate.csv",
        "calc_time,funding_interval_hours,last_funding_rate\n"
        f"{T0 // 1000},8,0.0001\n{(T0 + S) // 1000},8,-0.0002\n",
    )
    trades = run_import("tardis", [a], tmp_path)
    rates = run_import("binance", [b], tmp_path, symbol="XBTUSD")
    assert rates == [fu(T0, "0.0001"), fu(T0 + S, "-0.0002")]
    # mixed formats are two imports; one format, several files, merges:
    c = write(
        tmp_path / "c.csv",
        TRADES_HEAD + f"x,XBTUSD,{T0},0,c,sell,9,1\nx,XBTUSD,{T0 + S},0,c,sell,2,1\n",
    )
    got = run_import("tardis", [a, c], tmp_path)
    assert got == [ip(T0, "1"), ip(T0, "9"), ip(T0 + S, "2"), ip(T0 + 2 * S, "3")]
    assert trades == [ip(T0, "1"), ip(T0 + 2 * S, "3")]


def test_every_keeps_last_price_of_window_in_ts_order(tmp_path: Path) -> None:
    cmds = [
        ip(0, "1"),
        ip(10 * S, "2"),
        fu(20 * S, "0.01"),
        ip(30 * S, "3"),
        ip(60 * S, "4"),
        ip(119 * S, "5"),
        ip(200 * S, "6"),
    ]
    assert list(thin(cmds, 60 * S)) == [
        fu(20 * S, "0.01"),
        ip(30 * S, "3"),
        ip(119 * S, "5"),
        ip(200 * S, "6"),
    ]
    f = write(
        tmp_path / "b.csv",
        "timestamp,open,high,low,close\n"
        + "".join(f"{T0 // S + 60 * i},1,2,0.5,{i}\n" for i in range(10)),
    )
    got = run_import("bars", [f], tmp_path, every="5m", symbol="X")
    assert got == [ip(T0 + 240 * S, "4", "X"), ip(T0 + 540 * S, "9", "X")]
    with pytest.raises(ImportFailed, match="--every"):
        run_import("bars", [f], tmp_path, every="5x")


# --------------------------------------------------------------------------- bars


def test_bars_csv_close_and_ohlc_path(tmp_path: Path) -> None:
    f = write(
        tmp_path / "XBT-bars.csv",
        "2020-03-12T00:00:00Z,100,110,90,95,7\n"
        "2020-03-12T00:01:00Z,95,99,94,98\n"
        f"{(1583971200 + 3600) * 1000},98,98.5,97,97.5\n",
    )  # ms, uneven spacing
    t = 1583971200 * S
    assert run_import("bars", [f], tmp_path) == [
        ip(t, "95", "XBT"),
        ip(t + 60 * S, "98", "XBT"),
        ip(t + 3600 * S, "97.5", "XBT"),
    ]
    got = run_import("bars", [f], tmp_path, path="ohlc", symbol="X")
    assert got[:8] == [
        ip(t, "100", "X"),
        ip(t + 15 * S, "110", "X"),
        ip(t + 30 * S, "90", "X"),
        ip(t + 45 * S, "95", "X"),  # closed down: high first
        ip(t + 60 * S, "95", "X"),
        ip(t + 75 * S, "94", "X"),
        ip(t + 90 * S, "99", "X"),
        ip(t + 105 * S, "98", "X"),  # closed up: low first
    ]


def test_bars_json_numbers_never_floats(tmp_path: Path) -> None:
    f = write(
        tmp_path / "b.json",
        '[{"timestamp":"2020-03-12T00:00:00.000Z","symbol":"XBTUSD",'
        '"open":7931.5,"high":7939,"low":7931,"close":7939.50,"vwap":7936.5079}]',
    )
    assert run_import("bars", [f], tmp_path) == [ip(1583971200 * S, "7939.50")]


def test_bars_bitmex_real_day() -> None:
    f = need_data() / "bitmex" / "XBTUSD-1m-2020-03-12.json"
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        got = run_import("bars", [f], Path(tmp))
    assert len(got) == 1440
    assert got[0] == ip(1583971200 * S, "7939")
    assert all(b["ts"] - a["ts"] == 60 * S for a, b in itertools.pairwise(got))
    assert got[-1] == ip(1584057540 * S, "4534")


# --------------------------------------------------------------------------- binance


EXPORT_HEAD = '\ufeff"Time","Contracts","Funding Interval","Funding Rate"\n'


def test_binance_export_london_time_and_percent(tmp_path: Path) -> None:
    f = write(
        tmp_path / "e.csv",
        EXPORT_HEAD
        + '"2020-07-01 09:00:00","BTCUSDT Perpetual","8h","0.010000%"\n'
        + '"2020-03-13 08:00:00","BTCUSDT Perpetual","8h","-0.300000%"\n',
    )
    mar = int(dt.datetime(2020, 3, 13, 8, tzinfo=dt.UTC).timestamp()) * S
    jul = int(dt.datetime(2020, 7, 1, 8, tzinfo=dt.UTC).timestamp()) * S
    assert run_import("binance", [f], tmp_path) == [
        fu(mar, "-0.003", "BTCUSDT"),
        fu(jul, "0.0001", "BTCUSDT"),
    ]


def test_london_rule_matches_zoneinfo() -> None:
    t = dt.datetime(2019, 1, 1)
    while t < dt.datetime(2025, 1, 1):
        assert london_rule_to_us(t) == london_to_us(t.isoformat(), "Time"), t
        t += dt.timedelta(hours=1)
    # the repeated hour in October: its first occurrence (BST)
    oct_ = dt.datetime(2020, 10, 25, 1, 0)
    assert (
        london_rule_to_us(oct_) == int(dt.datetime(2020, 10, 25, 0, tzinfo=dt.UTC).timestamp()) * S
    )


def test_binance_klines_with_and_without_header(tmp_path: Path) -> None:
    rows = f"{T0 // 1000},1,2,0.5,1.5,10,{T0 // 1000 + 59999},0,0,0,0,0\n"
    a = write(tmp_path / "BTCUSDT-1m-2020-03-01.csv", rows)
    b = write(
        tmp_path / "BTCUSDT-1m-h.csv",
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        "taker_buy_volume,taker_buy_quote_volume,ignore\n" + rows,
    )
    want = [ip(T0 + 59999000, "1.5", "BTCUSDT")]
    assert run_import("binance", [a], tmp_path) == want
    assert run_import("binance", [b], tmp_path) == want


def test_binance_real_funding_export() -> None:
    f = need_data() / "binance-funding" / "BTCUSDT-funding-history-2019-09-10_2024-08-09.csv"
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        got = run_import("binance", [f], Path(tmp))
    n = sum(1 for line in f.read_text(encoding="utf-8-sig").splitlines()[1:] if line.strip())
    assert len(got) == n
    assert fu(1584086400 * S, "-0.003", "BTCUSDT") in got
    assert all(a["ts"] < b["ts"] for a, b in itertools.pairwise(got))


# --------------------------------------------------------------------------- CLI


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearsim", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


CONFIG = """\
[exchange]
collateral = "USD"
collateral_decimals = 6
mark = "oracle"

[insurance_fund]
initial = "0"

[[instruments]]
symbol = "XBTUSD"
kind = "linear_perpetual"
tick_size = "0.5"
lot_size = "1"
tiers = [ { max_notional = "1000000", imr_ppm = 10000, mmr_ppm = 5000 } ]
"""


def test_cli_bitmex_day_into_run(tmp_path: Path) -> None:
    f = need_data() / "bitmex" / "XBTUSD-1m-2020-03-12.json"
    out = tmp_path / "day.jsonl"
    p = cli("import", "bars", str(f), "--symbol", "XBTUSD", "-o", str(out), cwd=ROOT)
    assert p.returncode == 0, p.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 1440
    assert all(json.loads(x)["type"] == "index_price" for x in lines)
    assert "1,440 commands" in p.stdout
    again = cli("import", "bars", str(f), "--symbol", "XBTUSD", "-o", str(out), cwd=ROOT)
    assert again.returncode == 2 and again.stderr.startswith("error: ")
    assert "--force" in again.stderr
    assert cli("import", "bars", str(f), "-o", str(out), "--force", cwd=ROOT).returncode == 0
    write(tmp_path / "C.toml", CONFIG)
    r = cli(
        "run",
        "--config",
        str(tmp_path / "C.toml"),
        "--commands",
        str(out),
        "-o",
        str(tmp_path / "x.log"),
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    assert "1440 commands (0 rejected)" in r.stdout


def test_cli_bad_row_one_error_line(tmp_path: Path) -> None:
    f = write(tmp_path / "day.csv", TRADES_HEAD + f"x,XBTUSD,{T0},0,a,sell,abc,1\n")
    p = cli("import", "tardis", str(f), "-o", str(tmp_path / "o.jsonl"), cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [f"error: {f}:2: column price: 'abc' is not a decimal"]
