"""``clearsim import`` book liquidity: ``market_level`` commands for ``#market`` (issue 12).

The book's emitter against hand-computed commands and against a naive model (the whole
book re-sorted after every update), then the tardis L2 and snapshot files, real and made.
"""

from __future__ import annotations

import json
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsim.replay.importers import ImportFailed, import_files, summary_text
from clearsim.replay.importers._book import Book
from clearsim.replay.importers._common import Source
from clearsim.replay.importers._grid import Grid

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
T0 = 1_640_995_200_000_000
L2_HEAD = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"


def need_data() -> Path:
    if not DATA.is_dir():
        pytest.skip("../shared/data not present")
    return DATA


def lv(ts: int, side: str, price: str, qty: str, sym: str = "BTCUSDT") -> dict[str, Any]:
    return {
        "type": "market_level",
        "ts": ts,
        "symbol": sym,
        "side": side,
        "price": price,
        "qty": qty,
    }


def run_import(fmt: str, inputs: list[Path], tmp: Path, **kw: Any) -> list[dict[str, Any]]:
    out = tmp / "out.jsonl"
    import_files(fmt, [str(i) for i in inputs], out, force=True, **kw)
    return [json.loads(line) for line in out.read_text().splitlines()]


def write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def flush(book: Book, ts: int = 1) -> list[dict[str, Any]]:
    out_ts: list[int] = []
    out: list[str] = []
    book.flush(ts, out_ts, out)
    assert out_ts == [ts] * len(out)
    return [json.loads(x) for x in out]


def new_book(depth: int, grid: Grid | None = None) -> Book:
    return Book('"X"', depth, grid, Source("mem", skip_bad=False))


def short(cmds: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(c["side"], c["price"], c["qty"]) for c in cmds]


# --------------------------------------------------------------------------- the emitter


def test_top_l_removes_a_level_pushed_out_and_brings_back_the_next() -> None:
    b = new_book(2)
    for p, q in (("100", "1"), ("99", "2"), ("98", "3")):
        b.update(True, p, q)
    assert short(flush(b)) == [("buy", "100", "1"), ("buy", "99", "2")]
    b.update(True, "101", "5")  # a better level: 99 leaves the top 2
    assert short(flush(b)) == [("buy", "99", "0"), ("buy", "101", "5")]
    b.update(True, "101", "0")  # gone: 99 comes back
    assert short(flush(b)) == [("buy", "101", "0"), ("buy", "99", "2")]
    b.update(True, "98", "7")  # outside the top 2: nothing to show
    assert flush(b) == []
    b.update(True, "100", "0")
    b.update(True, "99", "0")  # both shown levels gone: 98 (now 7) and nothing else
    assert short(flush(b)) == [("buy", "100", "0"), ("buy", "99", "0"), ("buy", "98", "7")]


def test_asks_best_first_and_removals_before_sets_across_sides() -> None:
    b = new_book(2)
    b.replace([("100", "1")], [("101", "1"), ("102", "2"), ("103", "3")])
    assert short(flush(b)) == [
        ("buy", "100", "1"),
        ("sell", "101", "1"),
        ("sell", "102", "2"),
    ]
    # the market moves up a tick: the ask at 101 is taken, a bid appears there
    b.update(False, "101", "0")
    b.update(True, "101", "4")
    assert short(flush(b)) == [
        ("sell", "101", "0"),  # removals first: the book never crosses in between
        ("buy", "101", "4"),  # the bid at 100 is unchanged and still in the top 2
        ("sell", "103", "3"),  # 103 moves into the top 2 asks
    ]


def test_snapshot_replace_clears_vanished_levels_and_keeps_unchanged_ones() -> None:
    b = new_book(10)
    b.replace([("100", "1"), ("99", "2")], [("101", "1")])
    flush(b)
    b.replace([("100", "1"), ("98", "5")], [("102", "1")])
    assert short(flush(b)) == [
        ("buy", "99", "0"),
        ("sell", "101", "0"),
        ("buy", "98", "5"),
        ("sell", "102", "1"),
    ]  # 100 x 1 is unchanged: not repeated
    b.withdraw()
    assert short(flush(b)) == [("buy", "100", "0"), ("buy", "98", "0"), ("sell", "102", "0")]


def test_same_quantity_again_emits_nothing() -> None:
    b = new_book(5)
    b.update(False, "10.5", "3")
    flush(b)
    b.update(False, "10.5", "3")
    b.update(False, "11", "0")  # removing a level that is not there
    assert flush(b) == []


def test_grid_rounds_outward_and_sums_levels_on_one_price() -> None:
    # tick 0.5, lot 0.1: bids round down, asks up; two bids land on 100.0 and add up
    b = new_book(5, Grid(Decimal("0.5"), Decimal("0.1")))
    b.update(True, "100.2", "1.05")  # -> 100.0, 1.0 (lot floor of 1.05)
    b.update(True, "100.4", "0.5")  # -> 100.0 too: 1.55 -> 1.5
    b.update(True, "99.5", "0.04")  # on the grid, under one lot: not shown
    b.update(False, "100.6", "2")  # -> 101.0
    assert short(flush(b)) == [("buy", "100.0", "1.5"), ("sell", "101.0", "2.0")]
    assert b.src.rounded == 3
    b.update(True, "100.4", "0")  # 1.05 left -> 1.0
    b.update(True, "99.5", "0.2")
    assert short(flush(b)) == [("buy", "100.0", "1.0"), ("buy", "99.5", "0.2")]


# --------------------------------------------------------------------------- model check


_PRICES = [str(p) for p in range(90, 111)] + ["100.5", "99.25", "101.75"]
_QTYS = ["0", "0", "1", "2", "0.5", "3.25"]
level_st = st.tuples(st.sampled_from(_PRICES), st.sampled_from(_QTYS))
op_st = st.one_of(
    st.tuples(st.just("update"), st.booleans(), level_st),
    st.tuples(st.just("replace"), st.lists(level_st, max_size=6), st.lists(level_st, max_size=6)),
    st.tuples(st.just("withdraw")),
    st.tuples(st.just("flush")),
)


def _want(
    src: dict[bool, dict[Decimal, Decimal]], depth: int, grid: Grid | None
) -> dict[tuple[str, Decimal], Decimal]:
    """The naive answer: group, round, sort the whole book, keep the top ``depth``."""
    got: dict[tuple[str, Decimal], Decimal] = {}
    for buy, levels in src.items():
        tot: dict[Decimal, Decimal] = {}
        for p, q in levels.items():
            if grid is not None and grid.tick is not None:
                p = (p / grid.tick).to_integral_value(
                    rounding=ROUND_FLOOR if buy else ROUND_CEILING
                ) * grid.tick
            tot[p] = tot.get(p, Decimal(0)) + q
        shown = {p: (grid.qty(q) if grid is not None else q) for p, q in tot.items()}
        shown = {p: q for p, q in shown.items() if q > 0}
        best = sorted(shown, reverse=buy)[:depth]
        for p in best:
            got[("buy" if buy else "sell", p)] = shown[p]
    return got


@settings(max_examples=300, deadline=None)
@given(
    depth=st.integers(1, 5),
    gridded=st.sampled_from([None, ("0.5", "0.5"), ("2", None)]),
    ops=st.lists(op_st, max_size=40),
)
def test_emitted_levels_always_equal_the_naive_top_l(
    depth: int, gridded: tuple[str, str | None] | None, ops: list[Any]
) -> None:
    grid = None
    if gridded is not None:
        grid = Grid(Decimal(gridded[0]), Decimal(gridded[1]) if gridded[1] else None)
    book = new_book(depth, grid)
    src: dict[bool, dict[Decimal, Decimal]] = {True: {}, False: {}}
    market: dict[tuple[str, Decimal], Decimal] = {}  # what the commands built
    for op in [*ops, ("flush",)]:
        if op[0] == "update":
            _, buy, (p, q) = op
            book.update(buy, p, q)
            if Decimal(q):
                src[buy][Decimal(p)] = Decimal(q)
            else:
                src[buy].pop(Decimal(p), None)
        elif op[0] == "replace":
            book.replace(op[1], op[2])
            for buy, levels in ((True, op[1]), (False, op[2])):
                src[buy] = {}
                for p, q in levels:
                    if Decimal(q):
                        src[buy][Decimal(p)] = Decimal(q)
                    else:
                        src[buy].pop(Decimal(p), None)
        elif op[0] == "withdraw":
            book.withdraw()
            src = {True: {}, False: {}}
        else:
            cmds = flush(book)
            zeros = [c["qty"] == "0" for c in cmds]
            assert zeros == sorted(zeros, reverse=True), "removals come first"
            for c in cmds:
                k = (c["side"], Decimal(c["price"]))
                q = Decimal(c["qty"])
                assert market.get(k) != (q if q else None), f"no-op command {c}"
                if q:
                    market[k] = q
                else:
                    assert k in market, f"removal of a level not shown {c}"
                    del market[k]
            assert market == _want(src, depth, grid)


# --------------------------------------------------------------------------- tardis L2


def test_tardis_l2_real_sample_snapshot_rebuild(tmp_path: Path) -> None:
    f = need_data() / "tardis" / "deltas_with_snapshot.csv"
    t1 = T0 + 100_000_000
    assert run_import("tardis", [f], tmp_path, book="10") == [
        lv(T0, "buy", "50000.0", "1.0"),
        lv(T0, "sell", "50001.0", "2.0"),
        lv(T0 + 1_000_000, "buy", "49999.0", "0.5"),
        lv(T0 + 2_000_000, "sell", "50002.0", "1.5"),
        # 49998.0 x 0.0 at T0+3 s removes a level that was never there: nothing
        # the second snapshot: every level of the first is gone
        lv(t1, "buy", "50000.0", "0"),
        lv(t1, "buy", "49999.0", "0"),
        lv(t1, "sell", "50001.0", "0"),
        lv(t1, "sell", "50002.0", "0"),
        lv(t1, "buy", "50100.0", "3.0"),
        lv(t1, "sell", "50101.0", "4.0"),
        lv(t1 + 1_000_000, "buy", "50099.0", "1.0"),
        lv(t1 + 2_000_000, "sell", "50102.0", "2.0"),
    ]


def test_tardis_l2_top_1_and_trades_merged(tmp_path: Path) -> None:
    f = need_data() / "tardis" / "deltas_with_snapshot.csv"
    got = run_import("tardis", [f], tmp_path, book="top", symbol="BTC-USD")
    assert [(c["ts"] - T0, c["side"], c["price"], c["qty"]) for c in got] == [
        (0, "buy", "50000.0", "1.0"),
        (0, "sell", "50001.0", "2.0"),
        (100_000_000, "buy", "50000.0", "0"),
        (100_000_000, "sell", "50001.0", "0"),
        (100_000_000, "buy", "50100.0", "3.0"),
        (100_000_000, "sell", "50101.0", "4.0"),
    ]  # 49999 and 50099 bids, 50002 and 50102 asks are never the best
    assert {c["symbol"] for c in got} == {"BTC-USD"}


def test_tardis_deribit_l2_real_sample(tmp_path: Path) -> None:
    f = need_data() / "tardis" / "deribit_incremental_book_L2_BTC-PERPETUAL.csv"
    rows = [x.split(",") for x in f.read_text().splitlines()[1:]]
    got = run_import("tardis", [f], tmp_path, book="1000")
    # with every level shown, replaying the rows into a dict gives the same book
    want: dict[tuple[str, Decimal], str] = {}
    prev_snap = False
    for r in rows:
        k = ("buy" if r[5] == "bid" else "sell", Decimal(r[6]))
        if r[4] == "true" and not prev_snap:
            want.clear()
        prev_snap = r[4] == "true"
        if Decimal(r[7]):
            want[k] = r[7]
        else:
            want.pop(k, None)
    market: dict[tuple[str, Decimal], str] = {}
    for c in got:
        k = (c["side"], Decimal(c["price"]))
        if c["qty"] == "0":
            del market[k]
        else:
            market[k] = c["qty"]
    assert market == want
    assert all(c["symbol"] == "BTC-PERPETUAL" for c in got)


def test_tardis_l2_snapshot_at_a_new_timestamp_is_a_new_snapshot(tmp_path: Path) -> None:
    f = write(
        tmp_path / "l2.csv",
        L2_HEAD
        + f"x,S,{T0},0,true,bid,10,1\n"
        + f"x,S,{T0},0,true,ask,11,1\n"
        + f"x,S,{T0 + 5},0,true,bid,9,2\n"  # a second snapshot straight after the first
        + f"x,S,{T0 + 5},0,true,ask,12,2\n"
        + f"x,S,{T0 + 6},0,false,ask,12,0\n",
    )
    assert short(run_import("tardis", [f], tmp_path, book="5")) == [
        ("buy", "10", "1"),
        ("sell", "11", "1"),
        ("buy", "10", "0"),
        ("sell", "11", "0"),
        ("buy", "9", "2"),
        ("sell", "12", "2"),
        ("sell", "12", "0"),
    ]


def test_tardis_l2_needs_book_and_bad_row_names_line_and_column(tmp_path: Path) -> None:
    f = write(
        tmp_path / "l2.csv",
        L2_HEAD
        + f"x,S,{T0},0,true,bid,10,1\n"
        + f"x,S,{T0 + 1},0,false,bid,10,-1\n"
        + f"x,S,{T0 + 2},0,false,middle,10,1\n"
        + f"x,S,{T0 + 3},0,false,ask,11,2\n",
    )
    with pytest.raises(ImportFailed, match="--book top or --book L"):
        run_import("tardis", [f], tmp_path)
    with pytest.raises(ImportFailed, match=r"l2\.csv:3: column amount: '-1' is negative"):
        run_import("tardis", [f], tmp_path, book="5")
    out = tmp_path / "o.jsonl"
    s = import_files("tardis", [str(f)], out, book="5", skip_bad=True)
    assert (s.rows, s.skipped, s.commands) == (4, 2, 2)
    assert short([json.loads(x) for x in out.read_text().splitlines()]) == [
        ("buy", "10", "1"),
        ("sell", "11", "2"),
    ]


def test_tardis_l2_crlf_blank_lines_and_ns_timestamps(tmp_path: Path) -> None:
    f = tmp_path / "l2.csv"
    f.write_bytes(
        (
            L2_HEAD
            + f"x,S,{T0 * 1000},0,true,bid, 10 ,1\n\n"
            + f"x,S,{T0 * 1000 + 1000},0,false,ask,11,1\n"
        )
        .replace("\n", "\r\n")
        .encode()
    )
    out = tmp_path / "o.jsonl"
    s = import_files("tardis", [str(f)], out, book="5")
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(c["ts"], c["price"]) for c in got] == [(T0, "10"), (T0 + 1, "11")]
    assert s.rows == 2 and any("nanosecond" in n for n in s.notes)


# --------------------------------------------------------------------------- snapshots


def test_tardis_book_snapshot_5_real_sample_diffs(tmp_path: Path) -> None:
    f = need_data() / "tardis" / "binance-futures_book_snapshot_5_BTCUSDT.csv"
    got = run_import("tardis", [f], tmp_path, book="3")
    t = 1598918403696000
    # the first row: its 3 best levels per side, bids then asks
    assert got[:6] == [
        lv(t, "buy", "11657.07", "10.896"),
        lv(t, "buy", "11656.97", "0.2"),
        lv(t, "buy", "11655.78", "0.2"),
        lv(t, "sell", "11657.08", "1.714"),
        lv(t, "sell", "11657.54", "5.4"),
        lv(t, "sell", "11657.56", "0.238"),
    ]
    # then only what moved: rows 2 and 3 change the best ask's size alone
    assert got[6:8] == [
        lv(1598918403888000, "sell", "11657.08", "1.476"),
        lv(1598918403930000, "sell", "11657.08", "1.475"),
    ]
    # a level that drops out of the top 3 is removed
    assert lv(1598918404132000, "buy", "11655.78", "0") in got


def test_tardis_quotes_top_of_book(tmp_path: Path) -> None:
    f = write(
        tmp_path / "quotes.csv",
        "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount\n"
        f"x,S,{T0},0,1,101,100,2\n"
        f"x,S,{T0 + 1},0,1,101,100,3\n"
        f"x,S,{T0 + 2},0,,,100,3\n",
    )
    assert short(run_import("tardis", [f], tmp_path, book="top")) == [
        ("buy", "100", "2"),
        ("sell", "101", "1"),
        ("buy", "100", "3"),
        ("sell", "101", "0"),  # no ask any more
    ]


def test_tick_size_rounds_levels_outward_and_counts(tmp_path: Path) -> None:
    f = write(
        tmp_path / "l2.csv",
        L2_HEAD
        + f"x,S,{T0},0,true,bid,100.3,1\n"
        + f"x,S,{T0},0,true,bid,100.2,2\n"
        + f"x,S,{T0},0,true,ask,100.6,1\n"
        + f"x,S,{T0},0,true,ask,101.0,1\n",
    )
    out = tmp_path / "o.jsonl"
    s = import_files("tardis", [str(f)], out, book="5", tick_size="0.5")
    assert short([json.loads(x) for x in out.read_text().splitlines()]) == [
        ("buy", "100.0", "3"),  # 100.3 and 100.2 both round down onto 100.0
        ("sell", "101.0", "2"),  # 100.6 rounds up onto 101.0, where 1 already rests
    ]
    assert s.rounded == 3
    assert "3 prices or quantities rounded" in summary_text(s, "o.jsonl")
