"""``clearsim import``: trades as orders, binance dumps, liquidations, grids, the CLI (issue 12)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clearsim.events.commands import COMMAND_TYPES
from clearsim.replay.importers import ImportFailed, import_files

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
S = 1_000_000
T0 = 1_583_020_800_000_000  # 2020-03-01 00:00 UTC
TRADES_HEAD = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
AGG_HEAD = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"


def need_data() -> Path:
    if not DATA.is_dir():
        pytest.skip("../shared/data not present")
    return DATA


def write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def run_import(fmt: str, inputs: list[Path], tmp: Path, **kw: Any) -> list[dict[str, Any]]:
    out = tmp / "out.jsonl"
    import_files(fmt, [str(i) for i in inputs], out, force=True, **kw)
    return [json.loads(line) for line in out.read_text().splitlines()]


def order(ts: int, oid: str, side: str, qty: str, price: str, sym: str) -> dict[str, Any]:
    return {"type": "order", "ts": ts, "account": "#market", "id": oid, "symbol": sym,
            "side": side, "qty": qty, "price": price, "tif": "ioc"}  # fmt: skip


# --------------------------------------------------------------------------- trades


def test_tardis_trades_as_orders_real_sample(tmp_path: Path) -> None:
    f = need_data() / "tardis" / "bitmex_trades_XBTUSD.csv"
    rows = [x.split(",") for x in f.read_text().splitlines()[1:]]
    got = run_import("tardis", [f], tmp_path, trades="orders")
    assert got == [
        order(int(r[2]), f"t{i}", r[5], r[7], r[6], "XBTUSD") for i, r in enumerate(rows, 1)
    ]
    both = run_import("tardis", [f], tmp_path, trades="both", symbol="BTC-USD")
    assert [c["type"] for c in both] == ["order", "index_price"] * len(rows)
    assert both[1] == {"type": "index_price", "ts": int(rows[0][2]), "symbol": "BTC-USD",
                       "price": rows[0][6]}  # fmt: skip


def test_order_ids_unique_across_inputs_and_unknown_side(tmp_path: Path) -> None:
    a = write(
        tmp_path / "a.csv", TRADES_HEAD + f"x,S,{T0},0,1,buy,10,1\nx,S,{T0 + 2},0,2,sell,11,1\n"
    )
    b = write(
        tmp_path / "b.csv",
        TRADES_HEAD + f"x,S,{T0 + 1},0,1,unknown,12,1\nx,S,{T0 + 1},0,2,BUY,13,2\n",
    )
    out = tmp_path / "o.jsonl"
    s = import_files("tardis", [str(a), str(b)], out, trades="orders")
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(c["ts"] - T0, c["id"], c["price"]) for c in got] == [
        (0, "t1", "10"),
        (1, "t3", "13"),
        (2, "t2", "11"),
    ]  # ids are unique and fixed by the inputs (the merge pulls in a fixed order)
    assert any("1 trades without an aggressor side" in n for n in s.notes)
    assert any("nothing gave an index_price" in n for n in s.notes)


def test_binance_agg_trades_with_and_without_header(tmp_path: Path) -> None:
    rows = f"1,2681.62,1.000,1,2,{T0 // 1000},true\n2,2681.63,0.5,3,3,{T0 // 1000 + 1},false\n"
    a = write(tmp_path / "ETHUSDT-aggTrades-2024-08-08.csv", AGG_HEAD + rows)
    b = write(tmp_path / "ETHUSDT-aggTrades-2024-08-09.csv", rows)
    want = [
        order(T0, "t1", "sell", "1.000", "2681.62", "ETHUSDT"),  # the buyer was the maker
        order(T0 + 1000, "t2", "buy", "0.5", "2681.63", "ETHUSDT"),
    ]
    assert run_import("binance", [a], tmp_path, trades="orders") == want
    assert run_import("binance", [b], tmp_path, trades="orders") == want
    prices = run_import("binance", [a], tmp_path)
    assert [c["price"] for c in prices] == ["2681.62", "2681.63"]


def test_binance_trades_file(tmp_path: Path) -> None:
    f = write(
        tmp_path / "BTCUSDT-trades-2024-08-08.csv",
        "id,price,qty,quote_qty,time,is_buyer_maker\n"
        f"7,60000.1,0.002,120.0002,{T0 // 1000},False\n",
    )
    assert run_import("binance", [f], tmp_path, trades="orders") == [
        order(T0, "t1", "buy", "0.002", "60000.1", "BTCUSDT")
    ]


def test_binance_book_ticker_top(tmp_path: Path) -> None:
    f = write(
        tmp_path / "BTCUSDT-bookTicker-2024-03-01.csv",
        "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,"
        f"event_time\n1,100.0,1,100.1,2,{T0 // 1000},0\n2,100.0,1,100.2,2,{T0 // 1000 + 5},0\n",
    )
    got = run_import("binance", [f], tmp_path, book="top")
    assert [(c["ts"] - T0, c["side"], c["price"], c["qty"]) for c in got] == [
        (0, "buy", "100.0", "1"),
        (0, "sell", "100.1", "2"),
        (5000, "sell", "100.1", "0"),
        (5000, "sell", "100.2", "2"),
    ]


def test_binance_book_depth_bands_at_average_prices(tmp_path: Path) -> None:
    f = write(
        tmp_path / "BTCUSDT-bookDepth-2024-08-08.csv",
        "timestamp,percentage,depth,notional\n"
        "2024-08-08 00:00:08,-2,30,2975\n"
        "2024-08-08 00:00:08,-1,10,995\n"
        "2024-08-08 00:00:08,1,5,503\n"
        "2024-08-08 00:00:08,2,8,806.2\n"
        "2024-08-08 00:00:38,-2,30,2975\n"
        "2024-08-08 00:00:38,-1,12,1194\n"
        "2024-08-08 00:00:38,1,5,503\n"
        "2024-08-08 00:00:38,2,8,806.2\n",
    )
    with pytest.raises(ImportFailed, match="needs the instrument's tick"):
        run_import("binance", [f], tmp_path, book="10")
    got = run_import("binance", [f], tmp_path, book="10", tick_size="0.1")
    t = 1723075208 * S
    assert [(c["ts"] - t, c["side"], c["price"], c["qty"]) for c in got] == [
        # bids: band 1 = 10 at 995/10 = 99.5; band 2 = 20 at 1980/20 = 99.0
        (0, "buy", "99.5", "10"),
        (0, "buy", "99.0", "20"),
        # asks: 5 at 100.6; 3 at 303.2/3 = 101.066.. rounded up to 101.1
        (0, "sell", "100.6", "5"),
        (0, "sell", "101.1", "3"),
        # 30 s later band 1 = 12 at 99.5, band 2 = 18 at 1781/18 = 98.94.. -> 98.9
        (30 * S, "buy", "99.0", "0"),
        (30 * S, "buy", "99.5", "12"),
        (30 * S, "buy", "98.9", "18"),
    ]


# --------------------------------------------------------------------------- grids


CONFIG = """\
[exchange]
collateral = "USD"
collateral_decimals = 6

[[instruments]]
symbol = "BTC-USD"
tick_size = "0.5"
lot_size = "1"
"""


def test_config_grid_for_orders_and_missing_instrument(tmp_path: Path) -> None:
    cfg = write(tmp_path / "C.toml", CONFIG)
    f = write(
        tmp_path / "t.csv",
        TRADES_HEAD + f"x,XBTUSD,{T0},0,a,buy,8531.2,2\nx,XBTUSD,{T0},0,b,sell,8531.7,3.5\n",
    )
    got = run_import("tardis", [f], tmp_path, trades="orders", config=str(cfg), symbol="BTC-USD")
    assert [(c["side"], c["price"], c["qty"]) for c in got] == [
        ("buy", "8531.5", "2"),
        ("sell", "8531.5", "3"),
    ]
    missing = r"C\.toml: no instrument 'XBTUSD' \(instruments: BTC-USD"
    with pytest.raises(ImportFailed, match=missing):
        run_import("tardis", [f], tmp_path, trades="orders", config=str(cfg))
    with pytest.raises(ImportFailed, match="not both"):
        run_import("tardis", [f], tmp_path, config=str(cfg), tick_size="1")
    with pytest.raises(ImportFailed, match=r"--tick-size '-1': must be above zero"):
        run_import("tardis", [f], tmp_path, tick_size="-1")


# --------------------------------------------------------------------------- liquidations


LIQ = (
    TRADES_HEAD
    + f"binance-futures,BTCUSDT,{T0 + 5},0,l1,sell,7900.5,0.5\n"
    + f"binance-futures,BTCUSDT,{T0 + 9},0,l2,buy,7950,1.25\n"
)


def test_tardis_liquidations_go_to_the_sidecar_only(tmp_path: Path) -> None:
    liq = write(tmp_path / "binance-futures_liquidations_2020-03-01_BTCUSDT.csv", LIQ)
    tr = write(tmp_path / "trades.csv", TRADES_HEAD + f"x,BTCUSDT,{T0 + 7},0,a,buy,7920,1\n")
    out = tmp_path / "day.jsonl"
    s = import_files("tardis", [str(liq), str(tr)], out)
    assert [json.loads(x)["type"] for x in out.read_text().splitlines()] == ["index_price"]
    side = tmp_path / "day.liquidations.jsonl"
    assert s.liquidations == 2 and s.liquidations_path == str(side)
    assert [json.loads(x) for x in side.read_text().splitlines()] == [
        {"type": "liquidation", "ts": T0 + 5, "symbol": "BTCUSDT", "side": "sell",
         "price": "7900.5", "qty": "0.5", "source_id": "l1"},
        {"type": "liquidation", "ts": T0 + 9, "symbol": "BTCUSDT", "side": "buy",
         "price": "7950", "qty": "1.25", "source_id": "l2"},
    ]  # fmt: skip
    # an existing sidecar is not overwritten without --force, and nothing is written
    out.unlink()
    with pytest.raises(ImportFailed, match=r"day\.liquidations\.jsonl: exists"):
        import_files("tardis", [str(liq)], out)
    assert not out.exists() and not list(tmp_path.glob("*.partial*"))
    other = tmp_path / "liq.jsonl"
    s = import_files("tardis", [str(liq)], out, liquidations=str(other))
    assert other.read_text() == side.read_text() and s.commands == 0


def test_no_sidecar_without_liquidations(tmp_path: Path) -> None:
    tr = write(tmp_path / "trades.csv", TRADES_HEAD + f"x,BTCUSDT,{T0},0,a,buy,7920,1\n")
    s = import_files("tardis", [str(tr)], tmp_path / "day.jsonl")
    assert s.liquidations == 0 and not (tmp_path / "day.liquidations.jsonl").exists()


# --------------------------------------------------------------------------- funding file


def test_funding_file_merged_keeps_only_funding(tmp_path: Path) -> None:
    tr = write(tmp_path / "trades.csv", TRADES_HEAD + f"x,XBTUSD,{T0 + S},0,a,buy,8531,1\n")
    tick = need_data() / "tardis" / "derivative_ticker_1.csv"
    got = run_import("tardis", [tr], tmp_path, funding=str(tick))
    assert got == [
        {"type": "funding", "ts": 1583020800000000, "symbol": "XBTUSD", "rate": "0.0001"},
        {"type": "index_price", "ts": T0 + S, "symbol": "XBTUSD", "price": "8531"},
        {"type": "funding", "ts": 1583020860000000, "symbol": "XBTUSD", "rate": "0.00015"},
    ]
    bad = write(tmp_path / "x.csv", "a,b\n1,2\n")
    with pytest.raises(ImportFailed, match="--funding: not a tardis derivative_ticker"):
        run_import("tardis", [tr], tmp_path, funding=str(bad))


def test_options_that_do_not_apply_or_are_wrong(tmp_path: Path) -> None:
    f = write(tmp_path / "b.csv", "timestamp,open,high,low,close\n0,1,1,1,1\n")
    with pytest.raises(ImportFailed, match="format bars: option 'book' does not apply"):
        run_import("bars", [f], tmp_path, book="5")
    with pytest.raises(ImportFailed, match=r"--book 'x': expected none, top or a number"):
        run_import("tardis", [f], tmp_path, book="x")
    with pytest.raises(ImportFailed, match=r"--trades 'all'"):
        run_import("tardis", [f], tmp_path, trades="all")


# --------------------------------------------------------------------------- CLI


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearsim", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_l2_import_with_book_10(tmp_path: Path) -> None:
    f = need_data() / "tardis" / "deltas_with_snapshot.csv"
    out = tmp_path / "day.jsonl"
    p = cli("import", "tardis", str(f), "--book", "10", "-o", str(out), cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[:2] == [
        f"9 rows read (0 skipped) -> 12 commands, ts 1640995200000000..1640995302000000 µs, "
        f"written to {out}",
        "  12 market_level",
    ]
    bad = cli("import", "tardis", str(f), "--book", "ten", "-o", str(out), "--force", cwd=ROOT)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --book 'ten': expected none, top or a number of levels (1..100000)"
    ]


def test_cli_capture_gap_is_one_error_line(tmp_path: Path) -> None:
    f = tmp_path / "cap"
    f.write_text(
        '1723161255000000000 {"lastUpdateId":5,"bids":[["1","1"]],"asks":[]}\n'
        '1723161255000001000 {"e":"depthUpdate","s":"X","U":9,"u":9,"pu":8,"b":[],"a":[]}\n'
    )
    p = cli("import", "hftbacktest", str(f), "--book", "5", "-o", str(tmp_path / "o"), cwd=ROOT)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {f}:2: depth gap: ")


# --------------------------------------------------------------------------- end to end


ENGINE_CONFIG = """\
[exchange]
collateral = "USDT"
collateral_decimals = 6

[[instruments]]
symbol = "BTCUSDT"
tick_size = "0.1"
lot_size = "0.1"
tiers = [ { max_notional = "100000000", imr_ppm = 10000, mmr_ppm = 5000 } ]
"""


@pytest.mark.skipif(
    "market_level" not in COMMAND_TYPES, reason="the engine does not know market_level yet"
)
def test_imported_book_and_trades_run_through_the_engine(tmp_path: Path) -> None:
    d = need_data() / "tardis"
    cfg = write(tmp_path / "C.toml", ENGINE_CONFIG)
    trades = write(
        tmp_path / "trades.csv",
        TRADES_HEAD + "binance-futures,BTCUSDT,1640995201500000,0,a,buy,50001.0,0.5\n",
    )
    out = tmp_path / "day.jsonl"
    p = cli("import", "tardis", str(d / "deltas_with_snapshot.csv"), str(trades), "--book", "10",
            "--trades", "both", "--config", str(cfg), "-o", str(out), cwd=ROOT)  # fmt: skip
    assert p.returncode == 0, p.stderr
    r = cli("run", "--config", str(cfg), "--commands", str(out), "-o", str(tmp_path / "x.log"),
            cwd=ROOT)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "(0 rejected)" in r.stdout


@pytest.mark.parametrize("trades", ["prices", "orders", "both"])
@pytest.mark.parametrize("unit", [1, 1000, -1000])  # µs, ns, ms timestamps
def test_fast_rows_equal_the_careful_path(tmp_path: Path, trades: str, unit: int) -> None:
    """The hot loop's inlined checks and formatting give, byte for byte, what the careful
    path gives for the same rows (made to take it by blanks around each field)."""
    import random

    rnd = random.Random(3)
    clean, padded, ts = [], [], T0
    for i in range(3000):
        ts += rnd.randint(0, 3) * 1000
        t = ts * unit if unit > 0 else ts // -unit
        p = f"{rnd.randint(0, 99999)}.{rnd.randint(1, 9)}"
        q = rnd.choice(("1", "0.001", "25", "0.5"))
        row = ["x", rnd.choice(("XBTUSD", "ETHUSD")), str(t), "0", str(i),
               rnd.choice(("buy", "sell")), p, q]  # fmt: skip
        clean.append(",".join(row) + "\n")
        padded.append(",".join(f" {c} " for c in row) + "\n")
    outs = []
    for name, rows in (("clean", clean), ("padded", padded)):
        f = write(tmp_path / f"{name}.csv", TRADES_HEAD + "".join(rows))
        out = tmp_path / f"{name}.jsonl"
        import_files("tardis", [str(f)], out, trades=trades)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert len(outs[0].splitlines()) == 3000 * (2 if trades == "both" else 1)
