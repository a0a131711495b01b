"""Hand-worked order books: every order type, priority rule, STP mode and rejection reason."""

from __future__ import annotations

from typing import Any

import pytest

from clearsim.events.sequencer import Sequencer
from clearsim.events.types import (
    Event,
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
)
from clearsim.orderbook import REJECT_REASONS, OrderBook

# events.types' classes are built by a decorator mypy cannot see through (see book.py).
_Fill: Any = Fill
_Accepted: Any = OrderAccepted
_Expired: Any = OrderExpired
_Cancelled: Any = OrderCancelled
_Rejected: Any = OrderRejected
_Amended: Any = OrderAmended


def book(stp: str = "cancel_taker") -> OrderBook:
    return OrderBook("BTC-USD", Sequencer(), stp)


def sub(
    b: OrderBook,
    oid: str,
    acct: str,
    side: str,
    qty: Any,
    price: Any,
    tif: str = "gtc",
    *,
    ts: int = 7,
    cause: int = 0,
) -> list[Any]:
    out: list[Any] = []
    b.submit(out, ts, cause, oid, acct, side, qty, price, tif)
    return out


def types(events: list[Event]) -> list[str]:
    return [e.TYPE for e in events]


def fills(events: list[Event]) -> list[tuple[str, str, int, int]]:
    """(maker account, maker order, price, qty) of each fill, in order."""
    return [(e.maker_account, e.maker_order, e.price, e.qty) for e in events if type(e) is Fill]


def depth(b: OrderBook) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    return list(b.levels("buy")), list(b.levels("sell"))


# --------------------------------------------------------------------------- resting, fills


def test_gtc_rests_with_only_an_accepted_event() -> None:
    b = book()
    ev = sub(b, "o1", "A", "buy", 5, 100, ts=11, cause=3)
    assert ev == [_Accepted(1, 11, 3, "BTC-USD", "o1", "A", "buy", 5, 100, "gtc")]
    assert depth(b) == ([(100, 5)], [])
    assert b.best_bid() == 100 and b.best_ask() is None and b.mid2() is None
    o = b.get("A", "o1")
    assert o is not None
    assert (o.order_id, o.account, o.side, o.price, o.qty) == ("o1", "A", "buy", 100, 5)
    assert len(b) == 1
    b.check_invariants()


def test_gtc_partial_fill_then_rests_remainder() -> None:
    b = book()
    sub(b, "s1", "M", "sell", 3, 101)
    ev = sub(b, "b1", "T", "buy", 5, 102, ts=9, cause=4)
    assert ev == [
        _Accepted(2, 9, 4, "BTC-USD", "b1", "T", "buy", 5, 102, "gtc"),
        _Fill(3, 9, 2, "BTC-USD", 101, 3, "s1", "M", "b1", "T", "buy"),
    ]
    # The remainder rests at its own limit, not at the fill price.
    assert depth(b) == ([(102, 2)], [])
    assert b.get("M", "s1") is None
    rest = b.get("T", "b1")
    assert rest is not None and rest.qty == 2
    b.check_invariants()


def test_partially_filled_maker_keeps_its_place_and_remainder() -> None:
    b = book()
    sub(b, "s1", "M", "sell", 10, 101)
    sub(b, "s2", "N", "sell", 10, 101)
    ev = sub(b, "b1", "T", "buy", 4, 101)
    assert fills(ev) == [("M", "s1", 101, 4)]
    assert depth(b) == ([], [(101, 16)])
    ev = sub(b, "b2", "T", "buy", 7, 101)
    assert fills(ev) == [("M", "s1", 101, 6), ("N", "s2", 101, 1)]
    s2 = b.get("N", "s2")
    assert s2 is not None and s2.qty == 9
    b.check_invariants()


def test_price_priority_across_levels_fills_at_makers_prices() -> None:
    b = book()
    sub(b, "s3", "M", "sell", 1, 103)
    sub(b, "s1", "M", "sell", 1, 101)
    sub(b, "s2", "M", "sell", 1, 102)
    ev = sub(b, "b", "T", "buy", 3, 105, "ioc")
    assert fills(ev) == [("M", "s1", 101, 1), ("M", "s2", 102, 1), ("M", "s3", 103, 1)]
    assert types(ev) == ["order_accepted", "fill", "fill", "fill"]
    assert len(b) == 0 and depth(b) == ([], [])


def test_price_priority_for_sells_hits_highest_bid_first() -> None:
    b = book()
    sub(b, "b1", "M", "buy", 2, 98)
    sub(b, "b2", "M", "buy", 2, 100)
    sub(b, "b3", "M", "buy", 2, 99)
    assert b.best_bid() == 100
    assert list(b.levels("buy")) == [(100, 2), (99, 2), (98, 2)]
    ev = sub(b, "s", "T", "sell", 5, 99)
    assert fills(ev) == [("M", "b2", 100, 2), ("M", "b3", 99, 2)]
    # The remainder rests at 99, the limit; 98 is untouched.
    assert depth(b) == ([(98, 2)], [(99, 1)])
    b.check_invariants()


def test_time_priority_within_a_level() -> None:
    b = book()
    for i, acct in enumerate(["A", "B", "C", "D"]):
        sub(b, f"s{i}", acct, "sell", 2, 100)
    ev = sub(b, "t", "T", "buy", 5, 100, "ioc")
    assert fills(ev) == [("A", "s0", 100, 2), ("B", "s1", 100, 2), ("C", "s2", 100, 1)]
    assert types(ev)[-1] == "fill"  # nothing left to expire
    assert depth(b) == ([], [(100, 3)])


def test_limit_stops_the_sweep() -> None:
    b = book()
    sub(b, "s1", "M", "sell", 2, 100)
    sub(b, "s2", "M", "sell", 2, 101)
    sub(b, "s3", "M", "sell", 2, 102)
    ev = sub(b, "t", "T", "buy", 10, 101, "ioc")
    assert fills(ev) == [("M", "s1", 100, 2), ("M", "s2", 101, 2)]
    assert ev[-1] == _Expired(7, 7, 4, "BTC-USD", "t", "T", 6, "ioc")
    assert depth(b) == ([], [(102, 2)])


# --------------------------------------------------------------------------- ioc / fok / post-only


def test_ioc_remainder_expires_and_never_rests() -> None:
    b = book()
    sub(b, "s1", "M", "sell", 2, 100)
    ev = sub(b, "t", "T", "buy", 5, 100, "ioc", cause=12)
    assert ev == [
        _Accepted(2, 7, 12, "BTC-USD", "t", "T", "buy", 5, 100, "ioc"),
        _Fill(3, 7, 2, "BTC-USD", 100, 2, "s1", "M", "t", "T", "buy"),
        _Expired(4, 7, 2, "BTC-USD", "t", "T", 3, "ioc"),
    ]
    assert len(b) == 0


def test_ioc_with_nothing_to_hit_expires_whole() -> None:
    b = book()
    sub(b, "s1", "M", "sell", 2, 105)
    ev = sub(b, "t", "T", "buy", 5, 100, "ioc")
    assert types(ev) == ["order_accepted", "order_expired"]
    assert ev[1].qty == 5 and ev[1].reason == "ioc"
    assert depth(b) == ([], [(105, 2)])


def test_fok_not_fillable_expires_whole_and_changes_nothing() -> None:
    b = book()
    sub(b, "s1", "M", "sell", 2, 100)
    sub(b, "s2", "M", "sell", 2, 101)
    sub(b, "s3", "M", "sell", 9, 102)
    ev = sub(b, "t", "T", "buy", 5, 101, "fok")  # only 4 at <= 101
    assert ev == [
        _Accepted(4, 7, 0, "BTC-USD", "t", "T", "buy", 5, 101, "fok"),
        _Expired(5, 7, 4, "BTC-USD", "t", "T", 5, "fok"),
    ]
    assert depth(b) == ([], [(100, 2), (101, 2), (102, 9)])
    ev = sub(b, "u", "T", "buy", 5, 99, "fok")  # nothing crosses at all
    assert types(ev) == ["order_accepted", "order_expired"] and ev[1].reason == "fok"
    ev = sub(b, "v", "T", "buy", 1, None, "fok")
    assert types(ev) == ["order_accepted", "fill"]  # market fok, fillable
    b.check_invariants()


def test_fok_fillable_fills_completely() -> None:
    b = book()
    sub(b, "s1", "M", "sell", 2, 100)
    sub(b, "s2", "N", "sell", 2, 101)
    sub(b, "s3", "M", "sell", 9, 102)
    ev = sub(b, "t", "T", "buy", 4, 101, "fok")  # exactly what is there
    assert fills(ev) == [("M", "s1", 100, 2), ("N", "s2", 101, 2)]
    assert types(ev) == ["order_accepted", "fill", "fill"]
    assert depth(b) == ([], [(102, 9)])
    ev = sub(b, "u", "T", "buy", 3, None, "fok")
    assert fills(ev) == [("M", "s3", 102, 3)]
    assert depth(b) == ([], [(102, 6)])


def test_empty_book_fok_expires() -> None:
    b = book()
    ev = sub(b, "t", "T", "sell", 4, None, "fok")
    assert types(ev) == ["order_accepted", "order_expired"] and ev[1].reason == "fok"


def test_post_only_rests_when_it_would_not_take() -> None:
    b = book()
    sub(b, "s1", "M", "sell", 2, 101)
    ev = sub(b, "p", "T", "buy", 3, 100, "post_only")
    assert ev == [_Accepted(2, 7, 0, "BTC-USD", "p", "T", "buy", 3, 100, "post_only")]
    assert depth(b) == ([(100, 3)], [(101, 2)])


@pytest.mark.parametrize("price", [101, 102])
def test_post_only_that_would_take_is_rejected(price: int) -> None:
    b = book()
    sub(b, "s1", "M", "sell", 2, 101)
    ev = sub(b, "p", "T", "buy", 3, price, "post_only", cause=5)
    assert ev == [_Rejected(2, 7, 5, "BTC-USD", "p", "T", "post_only_would_take")]
    assert depth(b) == ([], [(101, 2)])
    assert b.get("T", "p") is None


def test_post_only_sell_against_bid() -> None:
    b = book()
    sub(b, "b1", "M", "buy", 2, 100)
    assert types(sub(b, "p", "T", "sell", 1, 100, "post_only")) == ["order_rejected"]
    assert types(sub(b, "q", "T", "sell", 1, 101, "post_only")) == ["order_accepted"]


# --------------------------------------------------------------------------- market orders


def test_market_sweeps_then_expires_remainder_leaving_empty_book() -> None:
    b = book()
    sub(b, "s1", "M", "sell", 2, 100)
    sub(b, "s2", "N", "sell", 3, 150)
    sub(b, "b1", "M", "buy", 3, 90)
    ev = sub(b, "m", "T", "buy", 10, None, "ioc")
    assert ev[0] == _Accepted(4, 7, 0, "BTC-USD", "m", "T", "buy", 10, None, "ioc")
    assert fills(ev) == [("M", "s1", 100, 2), ("N", "s2", 150, 3)]
    assert ev[-1] == _Expired(7, 7, 4, "BTC-USD", "m", "T", 5, "market")
    assert depth(b) == ([(90, 3)], [])
    assert b.best_ask() is None


def test_market_on_empty_side_expires_whole() -> None:
    b = book()
    ev = sub(b, "m", "T", "sell", 4, None, "ioc")
    assert types(ev) == ["order_accepted", "order_expired"]
    assert ev[1].qty == 4 and ev[1].reason == "market"


def test_market_gtc_never_rests() -> None:
    b = book()
    sub(b, "b1", "M", "buy", 1, 90)
    ev = sub(b, "m", "T", "sell", 4, None, "gtc")
    assert fills(ev) == [("M", "b1", 90, 1)]
    assert ev[-1].TYPE == "order_expired" and ev[-1].reason == "market" and ev[-1].qty == 3
    assert len(b) == 0


# --------------------------------------------------------------------------- cancel


def test_cancel_emits_remaining_qty_and_removes_level() -> None:
    b = book()
    sub(b, "s1", "M", "sell", 5, 101)
    sub(b, "t", "T", "buy", 2, 101)
    out: list[Any] = []
    assert b.cancel(out, 20, 9, "M", "s1") is True
    assert out == [_Cancelled(4, 20, 9, "BTC-USD", "s1", "M", 3, "user")]
    assert depth(b) == ([], []) and len(b) == 0 and b.get("M", "s1") is None
    b.check_invariants()


def test_cancel_with_reason_and_cancel_twice() -> None:
    b = book()
    sub(b, "s1", "M", "sell", 5, 101)
    out: list[Any] = []
    assert b.cancel(out, 1, 0, "M", "s1", reason="liquidation")
    assert out[-1].reason == "liquidation"
    assert b.cancel(out, 1, 0, "M", "s1") is False
    assert out[-1] == _Rejected(3, 1, 0, "BTC-USD", "s1", "M", "unknown_order")


def test_cancel_someone_elses_id_is_unknown() -> None:
    b = book()
    sub(b, "x", "M", "sell", 5, 101)
    out: list[Any] = []
    assert b.cancel(out, 1, 0, "N", "x") is False
    assert b.cancel(out, 1, 0, "M", ["not", "hashable"]) is False  # type: ignore[arg-type]
    assert types(out) == ["order_rejected", "order_rejected"]
    assert len(b) == 1


def test_cancel_middle_of_queue_keeps_others_order() -> None:
    b = book()
    for i in range(5):
        sub(b, f"s{i}", "M", "sell", 1, 100)
    out: list[Any] = []
    b.cancel(out, 1, 0, "M", "s1")
    b.cancel(out, 1, 0, "M", "s3")
    assert depth(b) == ([], [(100, 3)])
    ev = sub(b, "t", "T", "buy", 3, 100)
    assert [f[1] for f in fills(ev)] == ["s0", "s2", "s4"]
    b.check_invariants()


def test_matching_skips_cancelled_entries_at_the_front() -> None:
    b = book()
    for i in range(4):
        sub(b, f"s{i}", "M", "sell", 2, 100)
    out: list[Any] = []
    b.cancel(out, 1, 0, "M", "s0")
    b.cancel(out, 1, 0, "M", "s1")
    b.check_invariants()  # two dead entries queued
    ev = sub(b, "t", "T", "buy", 3, 100)
    assert fills(ev) == [("M", "s2", 100, 2), ("M", "s3", 100, 1)]
    b.check_invariants()  # and they were dropped, with the dead count kept right
    lvl = b.get("M", "s3")
    assert lvl is not None and len(lvl.level) == 1 and lvl.level.dead == 0


def test_many_cancels_compact_a_level_without_losing_order() -> None:
    b = book()
    for i in range(200):
        sub(b, f"s{i}", "M", "sell", 1, 100)
    out: list[Any] = []
    for i in range(200):
        if i % 10:
            b.cancel(out, 1, 0, "M", f"s{i}")
            b.check_invariants()
    lvl = b.get("M", "s0")
    assert lvl is not None and len(lvl.level) <= 2 * 20 + 1  # compacted, not 200 entries
    ev = sub(b, "t", "T", "buy", 20, 100)
    assert [f[1] for f in fills(ev)] == [f"s{i}" for i in range(0, 200, 10)]
    assert len(b) == 0


def test_cancel_all_in_arrival_order_across_sides_and_levels() -> None:
    b = book()
    sub(b, "a", "A", "sell", 1, 105)
    sub(b, "b", "A", "buy", 2, 95)
    sub(b, "x", "B", "buy", 2, 95)
    sub(b, "c", "A", "sell", 3, 103)
    sub(b, "d", "A", "buy", 4, 99)
    out: list[Any] = []
    assert b.cancel_all(out, 5, 8, "A") == 4
    assert out == [
        _Cancelled(6, 5, 8, "BTC-USD", "a", "A", 1, "cancel_all"),
        _Cancelled(7, 5, 8, "BTC-USD", "b", "A", 2, "cancel_all"),
        _Cancelled(8, 5, 8, "BTC-USD", "c", "A", 3, "cancel_all"),
        _Cancelled(9, 5, 8, "BTC-USD", "d", "A", 4, "cancel_all"),
    ]
    assert depth(b) == ([(95, 2)], [])
    assert b.orders_of("A") == [] and len(b) == 1
    assert b.cancel_all(out, 5, 8, "A") == 0 and len(out) == 4
    assert b.cancel_all(out, 5, 8, "nobody", reason="liquidation") == 0
    b.check_invariants()


def test_orders_of_arrival_order_and_amend_keeps_it() -> None:
    b = book()
    sub(b, "a", "A", "sell", 1, 105)
    sub(b, "b", "A", "buy", 2, 95)
    sub(b, "c", "A", "sell", 3, 103)
    out: list[Any] = []
    b.amend(out, 1, 0, "A", "a", 5, 110)  # loses queue priority, keeps arrival place
    assert [o.order_id for o in b.orders_of("A")] == ["a", "b", "c"]
    assert b.orders_of("nobody") == []


# --------------------------------------------------------------------------- amend


def _two_at_100() -> OrderBook:
    b = book()
    sub(b, "a", "A", "sell", 5, 100)
    sub(b, "b", "B", "sell", 5, 100)
    return b


def test_amend_down_keeps_priority() -> None:
    b = _two_at_100()
    out: list[Any] = []
    assert b.amend(out, 3, 2, "A", "a", 2, None) is True
    assert out == [_Amended(3, 3, 2, "BTC-USD", "a", "A", 2, 100, True)]
    assert depth(b) == ([], [(100, 7)])
    ev = sub(b, "t", "T", "buy", 3, 100)
    assert fills(ev) == [("A", "a", 100, 2), ("B", "b", 100, 1)]
    b.check_invariants()


def test_amend_same_qty_same_price_keeps_priority() -> None:
    b = _two_at_100()
    out: list[Any] = []
    assert b.amend(out, 3, 2, "A", "a", 5, 100)
    assert b.amend(out, 3, 2, "A", "a", None, None)
    assert [e.priority_kept for e in out] == [True, True]
    assert fills(sub(b, "t", "T", "buy", 1, 100)) == [("A", "a", 100, 1)]


def test_amend_up_loses_priority() -> None:
    b = _two_at_100()
    out: list[Any] = []
    assert b.amend(out, 3, 2, "A", "a", 6, None)
    assert out == [_Amended(3, 3, 2, "BTC-USD", "a", "A", 6, 100, False)]
    assert depth(b) == ([], [(100, 11)])
    ev = sub(b, "t", "T", "buy", 7, 100)
    assert fills(ev) == [("B", "b", 100, 5), ("A", "a", 100, 2)]
    b.check_invariants()


def test_amend_price_moves_to_back_of_new_level() -> None:
    b = _two_at_100()
    sub(b, "c", "C", "sell", 1, 101)
    out: list[Any] = []
    assert b.amend(out, 3, 2, "A", "a", None, 101)
    assert out[-1] == _Amended(4, 3, 2, "BTC-USD", "a", "A", 5, 101, False)
    assert depth(b) == ([], [(100, 5), (101, 6)])
    # Even a smaller qty at a new price loses priority.
    assert b.amend(out, 3, 2, "B", "b", 1, 101)
    assert out[-1].priority_kept is False
    assert depth(b) == ([], [(101, 7)])  # level 100 is gone
    ev = sub(b, "t", "T", "buy", 7, 101)
    assert [f[1] for f in fills(ev)] == ["c", "a", "b"]
    b.check_invariants()


def test_amend_price_improve_within_spread() -> None:
    b = book()
    sub(b, "bid", "A", "buy", 1, 95)
    sub(b, "ask", "B", "sell", 1, 105)
    out: list[Any] = []
    assert b.amend(out, 1, 0, "A", "bid", None, 104)
    assert not b.amend(out, 1, 0, "B", "ask", None, 96)
    # 96 <= 104 would cross the amended bid: the second amend is rejected.
    assert out[-1].TYPE == "order_rejected" and out[-1].reason == "would_cross"
    assert b.best_bid() == 104 and b.best_ask() == 105 and b.mid2() == 209


@pytest.mark.parametrize(
    ("acct", "oid", "price"),
    [("A", "bid", 105), ("A", "bid", 110), ("B", "ask", 95), ("B", "ask", 90)],
)
def test_amend_that_would_cross_is_rejected(acct: str, oid: str, price: int) -> None:
    b = book()
    sub(b, "bid", "A", "buy", 1, 95)
    sub(b, "ask", "B", "sell", 1, 105)
    out: list[Any] = []
    assert b.amend(out, 4, 6, acct, oid, None, price) is False
    assert out == [_Rejected(3, 4, 6, "BTC-USD", oid, acct, "would_cross")]
    assert depth(b) == ([(95, 1)], [(105, 1)])


def test_amend_unknown_and_bad_values() -> None:
    b = book()
    sub(b, "a", "A", "buy", 3, 95)
    out: list[Any] = []
    assert not b.amend(out, 1, 0, "A", "zz", 1, None)
    assert not b.amend(out, 1, 0, "B", "a", 1, None)
    bad: Any
    for bad in (0, -1, True, 1.5, "2"):
        assert not b.amend(out, 1, 0, "A", "a", bad, None)
    for bad in (0, -3, False, 99.0):
        assert not b.amend(out, 1, 0, "A", "a", None, bad)
    reasons = [e.reason for e in out]
    assert reasons == ["unknown_order"] * 2 + ["bad_qty"] * 5 + ["bad_price"] * 4
    assert depth(b) == ([(95, 3)], [])
    b.check_invariants()


# --------------------------------------------------------------------------- self-trade prevention


def _stp_book(stp: str) -> OrderBook:
    b = book(stp)
    sub(b, "y", "Y", "sell", 2, 100)
    sub(b, "x", "X", "sell", 3, 100)
    sub(b, "z", "Z", "sell", 4, 101)
    return b


def test_stp_cancel_taker() -> None:
    b = _stp_book("cancel_taker")
    ev = sub(b, "t", "X", "buy", 10, 101)
    assert ev[1:] == [
        _Fill(5, 7, 4, "BTC-USD", 100, 2, "y", "Y", "t", "X", "buy"),
        _Expired(6, 7, 4, "BTC-USD", "t", "X", 8, "self_trade"),
    ]
    assert depth(b) == ([], [(100, 3), (101, 4)])  # the gtc remainder does not rest
    assert b.get("X", "t") is None and b.get("X", "x") is not None
    b.check_invariants()


def test_stp_cancel_maker() -> None:
    b = _stp_book("cancel_maker")
    ev = sub(b, "t", "X", "buy", 10, 101)
    assert ev[1:] == [
        _Fill(5, 7, 4, "BTC-USD", 100, 2, "y", "Y", "t", "X", "buy"),
        _Cancelled(6, 7, 4, "BTC-USD", "x", "X", 3, "self_trade"),
        _Fill(7, 7, 4, "BTC-USD", 101, 4, "z", "Z", "t", "X", "buy"),
    ]
    assert depth(b) == ([(101, 4)], [])
    assert b.get("X", "x") is None
    b.check_invariants()


def test_stp_cancel_both() -> None:
    b = _stp_book("cancel_both")
    ev = sub(b, "t", "X", "buy", 10, 101)
    assert ev[1:] == [
        _Fill(5, 7, 4, "BTC-USD", 100, 2, "y", "Y", "t", "X", "buy"),
        _Cancelled(6, 7, 4, "BTC-USD", "x", "X", 3, "self_trade"),
        _Expired(7, 7, 4, "BTC-USD", "t", "X", 8, "self_trade"),
    ]
    assert depth(b) == ([], [(101, 4)])
    b.check_invariants()


def test_stp_none_trades_with_itself() -> None:
    b = _stp_book("none")
    ev = sub(b, "t", "X", "buy", 10, 101)
    assert fills(ev) == [("Y", "y", 100, 2), ("X", "x", 100, 3), ("Z", "z", 101, 4)]
    assert depth(b) == ([(101, 1)], [])


def test_stp_cancel_maker_emptying_the_book_then_market_expires() -> None:
    b = book("cancel_maker")
    sub(b, "x", "X", "sell", 3, 100)
    ev = sub(b, "m", "X", "buy", 2, None, "ioc")
    assert types(ev) == ["order_accepted", "order_cancelled", "order_expired"]
    assert ev[2].reason == "market" and ev[2].qty == 2
    assert len(b) == 0 and b.best_ask() is None


def test_stp_mode_is_settable_and_validated() -> None:
    b = book()
    assert b.stp == "cancel_taker"
    b.stp = "none"
    assert b.stp == "none"
    with pytest.raises(ValueError):
        b.stp = "bogus"
    with pytest.raises(ValueError):
        OrderBook("X", Sequencer(), "cancel_all")


def test_fok_under_stp_counts_only_what_would_really_fill() -> None:
    # Asks: Y 2@100, X 3@100, Z 4@101. X buys 6 fok at 101.
    b = _stp_book("cancel_taker")
    assert b.fillable("buy", 6, 101, "X") == 6  # others' liquidity: 2 + 4
    assert b.executable("buy", 6, 101, "X") == 2  # matching would stop at X's own order
    ev = sub(b, "t", "X", "buy", 6, 101, "fok")
    assert types(ev) == ["order_accepted", "order_expired"] and ev[1].reason == "fok"
    assert depth(b) == ([], [(100, 5), (101, 4)])  # nothing cancelled either
    assert types(sub(b, "u", "X", "buy", 2, 101, "fok")) == ["order_accepted", "fill"]

    b = _stp_book("cancel_maker")
    assert b.executable("buy", 6, 101, "X") == 6
    ev = sub(b, "t", "X", "buy", 6, 101, "fok")
    assert types(ev) == ["order_accepted", "fill", "order_cancelled", "fill"]
    assert depth(b) == ([], [])

    b = _stp_book("none")
    assert b.executable("buy", 9, 101, "X") == 9
    assert fills(sub(b, "t", "X", "buy", 9, 101, "fok"))[1] == ("X", "x", 100, 3)

    b = _stp_book("cancel_both")
    assert b.executable("buy", 9, 101, "X") == 2


# --------------------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("o", "A", "hold", 1, 100, "gtc"), "bad_side"),
        (("o", "A", None, 1, 100, "gtc"), "bad_side"),
        (("o", "A", "buy", 1, 100, "day"), "bad_tif"),
        (("o", "A", "buy", 1, 100, ["gtc"]), "bad_tif"),
        (("o", "A", "buy", 0, 100, "gtc"), "bad_qty"),
        (("o", "A", "buy", -2, 100, "gtc"), "bad_qty"),
        (("o", "A", "buy", True, 100, "gtc"), "bad_qty"),
        (("o", "A", "buy", 1.0, 100, "gtc"), "bad_qty"),
        (("o", "A", "buy", "1", 100, "gtc"), "bad_qty"),
        (("o", "A", "buy", None, 100, "gtc"), "bad_qty"),
        (("o", "A", "buy", 1, 0, "gtc"), "bad_price"),
        (("o", "A", "buy", 1, -100, "gtc"), "bad_price"),
        (("o", "A", "buy", 1, True, "gtc"), "bad_price"),
        (("o", "A", "buy", 1, 100.0, "gtc"), "bad_price"),
        (("o", "A", "buy", 1, "100", "gtc"), "bad_price"),
        (("o", "A", "buy", 1, None, "post_only"), "market_post_only"),
        (("", "A", "buy", 1, 100, "gtc"), "bad_order_id"),
        ((7, "A", "buy", 1, 100, "gtc"), "bad_order_id"),
        (("o", "", "buy", 1, 100, "gtc"), "bad_account"),
        (("o", ["A"], "buy", 1, 100, "gtc"), "bad_account"),
        (("live", "A", "sell", 1, 200, "gtc"), "duplicate_id"),
        (("live", "A", "sell", 1, 200, "ioc"), "duplicate_id"),
        (("o", "A", "sell", 1, 90, "post_only"), "post_only_would_take"),
    ],
)
def test_every_submit_rejection_is_one_event_and_no_change(
    args: tuple[Any, ...], reason: str
) -> None:
    b = book()
    sub(b, "live", "A", "buy", 2, 90)
    out: list[Any] = []
    b.submit(out, 33, 21, *args)
    assert len(out) == 1
    e = out[0]
    assert type(e) is OrderRejected
    assert (e.seq, e.ts, e.cause, e.symbol, e.reason) == (2, 33, 21, "BTC-USD", reason)
    assert isinstance(e.order_id, str) and isinstance(e.account, str)
    assert reason in REJECT_REASONS
    assert depth(b) == ([(90, 2)], []) and len(b) == 1
    b.check_invariants()


def test_every_reason_is_reachable_and_listed() -> None:
    # The parametrized cases above plus cancel/amend cover REJECT_REASONS exactly.
    seen = {"unknown_order", "would_cross"}
    seen |= {"bad_side", "bad_tif", "bad_qty", "bad_price", "market_post_only"}
    seen |= {"bad_order_id", "bad_account", "duplicate_id", "post_only_would_take"}
    assert seen == set(REJECT_REASONS)


def test_validation_order_side_before_tif_before_qty_before_price() -> None:
    b = book()
    out: list[Any] = []
    b.submit(out, 1, 0, "o", "A", "x", 0, 0, "x")
    b.submit(out, 1, 0, "o", "A", "buy", 0, 0, "x")
    b.submit(out, 1, 0, "o", "A", "buy", 0, 0, "gtc")
    b.submit(out, 1, 0, "o", "A", "buy", 1, 0, "gtc")
    assert [e.reason for e in out] == ["bad_side", "bad_tif", "bad_qty", "bad_price"]


# --------------------------------------------------------------------------- ids


def test_duplicate_live_id_rejected_but_reusable_after_done() -> None:
    b = book()
    sub(b, "o", "A", "buy", 2, 90)
    assert types(sub(b, "o", "A", "buy", 1, 80)) == ["order_rejected"]
    # Same id, another account: a different order.
    assert types(sub(b, "o", "B", "sell", 1, 95)) == ["order_accepted"]
    # Filled: the id is free again.
    sub(b, "t", "C", "sell", 2, 90)
    assert b.get("A", "o") is None
    assert types(sub(b, "o", "A", "buy", 1, 80)) == ["order_accepted"]
    # Cancelled: free again.
    out: list[Any] = []
    b.cancel(out, 1, 0, "A", "o")
    assert types(sub(b, "o", "A", "buy", 1, 80)) == ["order_accepted"]
    # An ioc that expired never held the id.
    assert types(sub(b, "i", "A", "buy", 1, 10, "ioc")) == ["order_accepted", "order_expired"]
    assert types(sub(b, "i", "A", "buy", 1, 10, "ioc")) == ["order_accepted", "order_expired"]


# --------------------------------------------------------------------------- queries


def test_fillable_levels_and_mid2() -> None:
    b = book()
    assert b.mid2() is None and b.fillable("buy", 5, None) == 0
    sub(b, "s1", "M", "sell", 2, 100)
    sub(b, "s2", "N", "sell", 3, 100)
    sub(b, "s3", "M", "sell", 4, 102)
    sub(b, "b1", "M", "buy", 7, 97)
    sub(b, "b2", "N", "buy", 1, 98)
    assert list(b.levels("sell")) == [(100, 5), (102, 4)]
    assert list(b.levels("buy")) == [(98, 1), (97, 7)]
    assert b.mid2() == 198
    assert b.fillable("buy", 100, None) == 9
    assert b.fillable("buy", 6, None) == 6
    assert b.fillable("buy", 100, 101) == 5
    assert b.fillable("buy", 100, 99) == 0
    assert b.fillable("buy", 100, None, "M") == 3
    assert b.fillable("buy", 100, None, "N") == 6
    assert b.fillable("buy", 100, None, "nobody") == 9
    assert b.fillable("sell", 100, 98) == 1
    assert b.fillable("sell", 100, None, "N") == 7
    assert b.fillable("sell", 0, None) == 0
    assert b.fillable("sell", -1, None) == 0
    with pytest.raises(ValueError):
        b.fillable("short", 1, None)
    with pytest.raises(ValueError):
        b.levels("bids")
    # Queries change nothing and emit nothing.
    b.check_invariants()
    assert len(b) == 5


def test_seq_is_gapless_and_causes_link_to_acceptance() -> None:
    seq = Sequencer(100)
    b = OrderBook("ETH-USD", seq)
    out: list[Any] = []
    b.submit(out, 1, 50, "s", "M", "sell", 1, 10, "gtc")
    b.submit(out, 2, 51, "t", "T", "buy", 2, 10, "ioc")
    b.cancel(out, 3, 52, "M", "nope")
    assert [e.seq for e in out] == [101, 102, 103, 104, 105]
    assert [e.cause for e in out] == [50, 51, 102, 102, 52]
    assert [e.ts for e in out] == [1, 2, 2, 2, 3]
    assert all(e.symbol == "ETH-USD" for e in out)
    assert seq.last == 105
