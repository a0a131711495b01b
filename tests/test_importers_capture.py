"""``clearsim import hftbacktest``: a raw Binance USDⓈ-M websocket capture (issue 12)."""

from __future__ import annotations

import gzip
import itertools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from clearsim.replay.importers import ImportFailed, import_files

ROOT = Path(__file__).resolve().parents[1]
CAPTURE = ROOT.parent / "shared" / "data" / "binance-usdm" / "ethusdt_20240808.gz"
NS = 1_723_161_255_000_000_000  # a local timestamp, ns
US = NS // 1000


def cap(tmp: Path, *msgs: tuple[int, Any], name: str = "ethusdt_20240808") -> Path:
    """A capture file: ``(µs offset, message)`` -> ``<local ns> <json>`` lines."""
    p = tmp / name
    lines = []
    for dt, m in msgs:
        body = m if isinstance(m, str) else orjson.dumps(m).decode()
        lines.append(f"{NS + dt * 1000} {body}")
    p.write_text("\n".join(lines) + "\n")
    return p


def wrap(stream: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"stream": stream, "data": data}


def diff(first: int, last: int, prev: int, b: list[list[str]], a: list[list[str]]) -> Any:
    return wrap(
        "ethusdt@depth@0ms",
        {"e": "depthUpdate", "E": 1, "T": 1, "s": "ETHUSDT", "U": first, "u": last,
         "pu": prev, "b": b, "a": a},
    )  # fmt: skip


def snap(last: int, bids: list[list[str]], asks: list[list[str]]) -> dict[str, Any]:
    return {"lastUpdateId": last, "E": 1, "T": 1, "bids": bids, "asks": asks}


def trade(p: str, q: str, m: bool, tid: int = 1, x: str = "MARKET") -> Any:
    return wrap(
        "ethusdt@trade",
        {"e": "trade", "E": 1, "T": 1, "s": "ETHUSDT", "t": tid, "p": p, "q": q, "X": x, "m": m},
    )


def run(p: Path, tmp: Path, **kw: Any) -> tuple[list[dict[str, Any]], Any]:
    out = tmp / "out.jsonl"
    s = import_files("hftbacktest", [str(p)], out, force=True, **kw)
    return [json.loads(x) for x in out.read_text().splitlines()], s


def lv(dt: int, side: str, price: str, qty: str) -> dict[str, Any]:
    return {"type": "market_level", "ts": US + dt, "symbol": "ETHUSDT", "side": side,
            "price": price, "qty": qty}  # fmt: skip


def test_diffs_before_the_snapshot_are_replayed_onto_it(tmp_path: Path) -> None:
    # as in the real capture: the snapshot (lastUpdateId 5) arrives after the diff that
    # ends at 5 and after the next one (pu=5), which is newer than the snapshot
    f = cap(
        tmp_path,
        (0, diff(1, 5, 0, [["100", "2"]], [])),
        (10, diff(6, 9, 5, [["101", "1"]], [])),
        (20, snap(5, [["100", "2"], ["99", "1"]], [["102", "1"]])),
        (30, diff(10, 12, 9, [], [["102", "0"], ["103", "4"]])),
    )
    got, s = run(f, tmp_path, book="2")
    assert got == [
        lv(20, "buy", "101", "1"),
        lv(20, "buy", "100", "2"),  # 99 is third: not shown
        lv(20, "sell", "102", "1"),
        lv(30, "sell", "102", "0"),
        lv(30, "sell", "103", "4"),
    ]
    assert s.gaps == 0 and s.rows == 4


def test_gap_is_an_error_naming_the_line(tmp_path: Path) -> None:
    f = cap(
        tmp_path,
        (0, snap(5, [["100", "1"]], [["101", "1"]])),
        (10, diff(6, 9, 5, [["100", "2"]], [])),
        (20, diff(12, 15, 11, [["100", "3"]], [])),  # pu 11, but the last u was 9
    )
    with pytest.raises(ImportFailed, match=r"ethusdt_20240808:3: depth gap: update pu=11 is not "
                       r"the previous update's u=9"):  # fmt: skip
        run(f, tmp_path, book="5")


def test_gap_with_skip_bad_withdraws_until_the_next_snapshot(tmp_path: Path) -> None:
    f = cap(
        tmp_path,
        (0, snap(5, [["100", "1"]], [["101", "1"]])),
        (10, diff(6, 9, 5, [["100", "2"]], [])),
        (20, diff(12, 15, 11, [["100", "3"]], [])),  # the gap
        (30, diff(16, 18, 15, [["100", "4"]], [])),  # continues the gapped one: still waits
        (40, trade("100", "1", True)),
        (50, snap(17, [["100", "9"]], [["102", "1"]])),  # the diff ending 18 spans 17
        (60, diff(19, 20, 18, [], [["102", "2"]])),
    )
    got, s = run(f, tmp_path, book="5", skip_bad=True)
    assert [c for c in got if c["type"] == "market_level"] == [
        lv(0, "buy", "100", "1"),
        lv(0, "sell", "101", "1"),
        lv(10, "buy", "100", "2"),
        lv(20, "buy", "100", "0"),  # withdrawn at the gap
        lv(20, "sell", "101", "0"),
        # nothing at 30: the book is unknown; at 50 the snapshot and the diff (16..18)
        # kept from before it, which spans its id
        lv(50, "buy", "100", "4"),
        lv(50, "sell", "102", "1"),
        lv(60, "sell", "102", "2"),
    ]
    assert s.gaps == 1 and s.skipped == 0
    assert any("1 depth gaps (first at line 3)" in n for n in s.notes)
    # the trade still came through, as an order (--book given) at its own time
    assert [(c["ts"], c["side"]) for c in got if c["type"] == "order"] == [(US + 40, "sell")]


def test_first_diff_must_follow_the_snapshot(tmp_path: Path) -> None:
    f = cap(
        tmp_path,
        (0, snap(5, [["100", "1"]], [])),
        (10, diff(8, 9, 7, [["100", "2"]], [])),  # U > 5 and pu != 5: 6..7 are missing
    )
    with pytest.raises(ImportFailed, match=r":2: depth gap: the first update after the "
                       r"snapshot \(U=8, pu=7\) does not follow its lastUpdateId 5"):  # fmt: skip
        run(f, tmp_path, book="5")


def test_stale_diffs_dropped_and_unwrapped_messages(tmp_path: Path) -> None:
    d = diff(1, 3, 0, [["100", "7"]], [])["data"]  # not wrapped
    f = cap(
        tmp_path,
        (0, snap(5, [["100", "1"]], [])),
        (10, d),  # u=3 < 5: older than the snapshot
        (20, diff(4, 6, 3, [["100", "2"]], [])),  # spans 5
    )
    got, _ = run(f, tmp_path, book="5")
    assert got == [lv(0, "buy", "100", "1"), lv(20, "buy", "100", "2")]


def test_trades_sides_ids_and_non_market_prints(tmp_path: Path) -> None:
    agg = wrap("ethusdt@aggTrade", {"e": "aggTrade", "s": "ETHUSDT", "a": 1, "p": "5",
                                    "q": "1", "m": False})  # fmt: skip
    f = cap(
        tmp_path,
        (0, trade("2681.62", "1.000", True, 1)),
        (0, trade("2681.63", "0.5", False, 2)),
        (5, trade("2681.00", "9", True, 3, x="INSURANCE_FUND")),
        (6, agg),  # the trade stream came first: the same trades again, ignored
    )
    got, s = run(f, tmp_path, trades="both", symbol="ETH-USD")
    assert got == [
        {"type": "order", "ts": US, "account": "#market", "id": "t1", "symbol": "ETH-USD",
         "side": "sell", "qty": "1.000", "price": "2681.62", "tif": "ioc"},
        {"type": "index_price", "ts": US, "symbol": "ETH-USD", "price": "2681.62"},
        {"type": "order", "ts": US, "account": "#market", "id": "t2", "symbol": "ETH-USD",
         "side": "buy", "qty": "0.5", "price": "2681.63", "tif": "ioc"},
        {"type": "index_price", "ts": US, "symbol": "ETH-USD", "price": "2681.63"},
    ]  # fmt: skip
    assert any("1 trades not on the market" in n for n in s.notes)
    assert any("1 aggTrade messages not used" in n for n in s.notes)
    prices_only, _ = run(f, tmp_path)  # no --book: trades are prices
    assert [c["type"] for c in prices_only] == ["index_price", "index_price"]


def test_trade_limits_round_toward_the_level_they_hit(tmp_path: Path) -> None:
    f = cap(
        tmp_path,
        (0, trade("100.3", "1.25", False)),  # a buy: the limit rounds up
        (1, trade("100.3", "0.05", True)),  # under one lot: no order
        (2, trade("100.7", "2", True)),  # a sell: the limit rounds down
    )
    got, s = run(f, tmp_path, trades="orders", tick_size="0.5", lot_size="0.1")
    assert [(c["side"], c["price"], c["qty"]) for c in got] == [
        ("buy", "100.5", "1.2"),
        ("sell", "100.5", "2"),
    ]
    assert s.rounded == 3
    assert any("1 trades under one lot" in n for n in s.notes)


def test_book_top_uses_book_ticker(tmp_path: Path) -> None:
    def bt(b: str, bq: str, a: str, aq: str) -> Any:
        return wrap("ethusdt@bookTicker", {"e": "bookTicker", "s": "ETHUSDT", "b": b, "B": bq,
                                           "a": a, "A": aq})  # fmt: skip

    f = cap(
        tmp_path,
        (0, bt("100", "1", "101", "2")),
        (1, bt("100", "1", "101", "3")),
        (2, bt("100.5", "4", "101", "3")),
        (3, diff(1, 2, 0, [["99", "1"]], [])),  # depth: not used under --book top
    )
    got, s = run(f, tmp_path, book="top")
    assert got == [
        lv(0, "buy", "100", "1"),
        lv(0, "sell", "101", "2"),
        lv(1, "sell", "101", "3"),
        lv(2, "buy", "100", "0"),
        lv(2, "buy", "100.5", "4"),
    ]
    assert any("1 depthUpdate messages not used" in n for n in s.notes)


def test_mark_price_funding_and_liquidation_sidecar(tmp_path: Path) -> None:
    t_fund = US // 1000 + 1000  # ms: one second after the first message
    mark = {"e": "markPriceUpdate", "E": 1, "s": "ETHUSDT", "p": "2681.5", "i": "2681.1",
            "P": "2681.4", "r": "0.00010000", "T": t_fund}  # fmt: skip
    liq = {"e": "forceOrder", "E": 1, "o": {"s": "ETHUSDT", "S": "SELL", "o": "LIMIT",
           "q": "0.5", "p": "2600.00", "ap": "2650.10", "X": "FILLED", "z": "0.5"}}  # fmt: skip
    f = cap(
        tmp_path,
        (0, wrap("ethusdt@markPrice@1s", mark)),
        (500_000, liq),
        (1_000_000, wrap("ethusdt@markPrice@1s", dict(mark, T=t_fund + 8 * 3600_000))),
    )
    got, s = run(f, tmp_path)
    assert got == [
        {"type": "index_price", "ts": US, "symbol": "ETHUSDT", "price": "2681.1"},
        {"type": "funding", "ts": US + 1_000_000, "symbol": "ETHUSDT", "rate": "0.00010000"},
        {"type": "index_price", "ts": US + 1_000_000, "symbol": "ETHUSDT", "price": "2681.1"},
    ]
    side = tmp_path / "out.liquidations.jsonl"
    assert s.liquidations == 1 and s.liquidations_path == str(side)
    assert [json.loads(x) for x in side.read_text().splitlines()] == [
        {"type": "liquidation", "ts": US + 500_000, "symbol": "ETHUSDT", "side": "sell",
         "price": "2650.10", "qty": "0.5"}
    ]  # fmt: skip


def test_bad_json_and_bad_field_name_line_and_column(tmp_path: Path) -> None:
    f = cap(
        tmp_path,
        (0, trade("1", "1", True)),
        (1, '{"stream":"x","data":{"e":"trade",'),
        (2, trade("1.2.3", "1", True)),
        (3, diff(1, 2, 0, [["100", "x"]], [])),
        (4, trade("2", "1", False)),
    )
    with pytest.raises(ImportFailed, match=r"ethusdt_20240808:2: column \d+: not JSON"):
        run(f, tmp_path, book="1")
    f2 = cap(tmp_path, (0, trade("1.2.3", "1", True)), name="b")
    with pytest.raises(ImportFailed, match=r"b:1: field p: '1\.2\.3' is not a decimal"):
        run(f2, tmp_path)
    f3 = cap(tmp_path, (0, diff(1, 2, 0, [["100", "1"], ["100", "x"]], [])), name="c")
    with pytest.raises(ImportFailed, match=r"c:1: field b\[1\]\[1\]: 'x' is not a decimal"):
        run(f3, tmp_path, book="1")
    _, s = run(f, tmp_path, book="1", skip_bad=True)
    assert (s.rows, s.skipped) == (5, 3)


# --------------------------------------------------------------------------- the real one


def need_capture() -> Path:
    if not CAPTURE.exists():
        pytest.skip("../shared/data/binance-usdm not present")
    return CAPTURE


def _naive_book(path: Path) -> tuple[dict[Decimal, str], dict[Decimal, str], list[Any]]:
    """The capture's final book, rebuilt the plain way (snapshot, then every diff with
    u > lastUpdateId in file order, checking pu), and its trades."""
    bids: dict[Decimal, str] = {}
    asks: dict[Decimal, str] = {}
    diffs: list[Any] = []
    trades: list[Any] = []
    snap_id = None
    last_u = None
    with gzip.open(path) as f:
        for line in f:
            d = orjson.loads(line.split(b" ", 1)[1])
            d = d.get("data", d)
            if "lastUpdateId" in d:
                snap_id = d["lastUpdateId"]
                bids = {Decimal(p): q for p, q in d["bids"]}
                asks = {Decimal(p): q for p, q in d["asks"]}
                pending, diffs = diffs, []
                last_u = snap_id
                for x in pending:
                    if x["u"] > snap_id:
                        diffs.append(x)
            elif d.get("e") == "depthUpdate":
                diffs.append(d)
            elif d.get("e") == "trade":
                trades.append(d)
            if snap_id is not None:
                for x in diffs:
                    assert last_u == snap_id or x["pu"] == last_u
                    for side, key in ((bids, "b"), (asks, "a")):
                        for p, q in x[key]:
                            if Decimal(q):
                                side[Decimal(p)] = q
                            else:
                                side.pop(Decimal(p), None)
                    last_u = x["u"]
                diffs = []
    return bids, asks, trades


def test_real_capture_book_and_trades(tmp_path: Path) -> None:
    f = need_capture()
    got, s = run(f, tmp_path, book="20")
    assert s.gaps == 0 and s.skipped == 0 and s.rows == 74_655
    bids, asks, trades = _naive_book(f)
    shown: dict[tuple[str, Decimal], str] = {}
    for c in got:
        if c["type"] == "market_level":
            k = (c["side"], Decimal(c["price"]))
            if c["qty"] == "0":
                del shown[k]
            else:
                shown[k] = c["qty"]
    want = {("buy", p): bids[p] for p in sorted(bids, reverse=True)[:20]}
    want |= {("sell", p): asks[p] for p in sorted(asks)[:20]}
    assert shown == want
    orders = [c for c in got if c["type"] == "order"]
    assert len(orders) == len(trades) == 14_076
    assert [(o["side"], o["price"], o["qty"]) for o in orders] == [
        ("sell" if t["m"] else "buy", t["p"], t["q"]) for t in trades
    ]
    assert len({o["id"] for o in orders}) == len(orders)
    assert all(a["ts"] <= b["ts"] for a, b in itertools.pairwise(got))
    # the first book appears with the snapshot (line 41), at its local time
    first = next(c for c in got if c["type"] == "market_level")
    assert first["ts"] == 1723161255378345
