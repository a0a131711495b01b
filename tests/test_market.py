"""The historical market's liquidity (clearing/market.py; DESIGN §9): ``market_level``
depth and ``#market``'s orders, numbers worked by hand.

The grid is one tick = 1 USD and one lot = 1 BTC with 0 collateral decimals, so a fill's
value is ``qty x price`` in whole dollars. DESIGN §9: ``#market`` is "the rest of the world:
exempt from margin, never liquidated, its cash may go negative, and conservation still
counts it"; the queue model (a decrease keeps its place, an increase joins the back) is the
one L2 backtesters use (hftbacktest's queue models: depth ahead of an order shrinks, new
depth queues behind it).
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
from fuzzgen import FuzzChecker, FuzzGen, fuzz_config
from test_cli import cli, write_commands

from clearsim import Exchange
from clearsim.clearing import Config
from clearsim.events.types import (
    Deleveraged,
    Event,
    Fill,
    Funding,
    Input,
    LiquidationFill,
    LiquidationTriggered,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    Rejected,
    Settlement,
)
from clearsim.replay.projections.ledger import fold_ledger, state_view
from clearsim.replay.projections.story import Story
from clearsim.replay.runner import run
from clearsim.replay.verify import verify

M = "#market"
S = "BTC-USD"


def config(**waterfall: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "exchange": {"collateral": "USD", "collateral_decimals": 0},
        "instruments": [{
            "symbol": S, "tick_size": "1", "lot_size": "1",
            "tiers": [{"max_notional": "1000000", "imr_ppm": 100000, "mmr_ppm": 50000}],
        }],
    }  # fmt: skip
    if waterfall:
        d["waterfall"] = waterfall
    return d


def level(ts: int, side: str, price: str, qty: str, symbol: str = S) -> dict[str, Any]:
    return {"type": "market_level", "ts": ts, "symbol": symbol, "side": side, "price": price,
            "qty": qty}  # fmt: skip


def order(ts: int, account: str, oid: str, side: str, qty: str, price: str | None = None,
          **kw: Any) -> dict[str, Any]:  # fmt: skip
    c: dict[str, Any] = {"type": "order", "ts": ts, "account": account, "id": oid,
                         "symbol": S, "side": side, "qty": qty, **kw}  # fmt: skip
    if price is not None:
        c["price"] = price
    return c


def dep(ts: int, account: str, amount: str) -> dict[str, Any]:
    return {"type": "deposit", "ts": ts, "account": account, "amount": amount}


def idx(ts: int, price: str) -> dict[str, Any]:
    return {"type": "index_price", "ts": ts, "symbol": S, "price": price}


def run_all(ex: Exchange, cmds: list[dict[str, Any]]) -> list[Event]:
    out: list[Event] = []
    for c in cmds:
        ev = ex.apply(c)
        assert not any(type(e) is Rejected for e in ev), ev
        out += ev
    return out


def fills(events: list[Event]) -> list[tuple[str, str, int, int]]:
    """(maker account, maker order, price, qty) of every fill, in order."""
    return [(e.maker_account, e.maker_order, e.price, e.qty) for e in events if type(e) is Fill]


def placed(events: list[Event]) -> list[str]:
    """The ids of the orders ``market_level`` placed (``#<seq of its command>``)."""
    return [e.order_id for e in events if type(e) is OrderAccepted and e.order_id[:1] == "#"]


def queue(ex: Exchange, side: str, price: int) -> list[tuple[str, int]]:
    """(account, qty) of the live orders at one level, in queue order."""
    book = ex.instruments[S].book
    key = -price if side == "buy" else price
    lvl = (book._bids if side == "buy" else book._asks).levels.get(key, [])
    return [(o.account, o.qty) for o in lvl if o.qty]


def snapshot(ex: Exchange) -> dict[str, Any]:
    return {
        "state": {k: v for k, v in ex.state().items() if k != "seq"},
        "ts": ex.ts,
        "books": {s: [(a, o.order_id, o.side, o.price, o.qty) for a in sorted(ex.accounts)
                      for o in i.book.orders_of(a)] for s, i in ex.instruments.items()},
        "balances": {a: x.balance for a, x in ex.accounts.items()},
        "depth": {s: {k: [o.qty for o in v] for k, v in d.levels.items()}
                  for s, d in ex.market_depth.items()},
    }  # fmt: skip


# --------------------------------------------------------------------------- depth and fills


def test_market_order_fills_the_levels_at_their_prices() -> None:
    """Asks of #market at 101 x 2, 102 x 3, 104 x 5; a market buy of 6 takes 2 @ 101,
    3 @ 102 and 1 @ 104 (price priority): 202 + 306 + 104 = 612 from the buyer to #market,
    which is left short 6 with 4 still resting at 104."""
    ex = Exchange.from_dict(config())
    ev = run_all(ex, [
        level(1, "sell", "101", "2"), level(1, "sell", "102", "3"), level(1, "sell", "104", "5"),
        dep(2, "t", "1000"), idx(2, "101"),
    ])  # fmt: skip
    assert [(e.order_id, e.qty, e.price, e.tif) for e in ev if type(e) is OrderAccepted] == [
        ("#1", 2, 101, "post_only"), ("#3", 3, 102, "post_only"), ("#5", 5, 104, "post_only")
    ]  # fmt: skip
    ev = run_all(ex, [order(3, "t", "b", "buy", "6", tif="ioc")])
    assert fills(ev) == [(M, "#1", 101, 2), (M, "#3", 102, 3), (M, "#5", 104, 1)]
    assert ex.accounts["t"].balance == 1000 - 612
    assert ex.market.balance == 612
    assert ex.accounts["t"].positions[S].qty == 6
    assert ex.market.positions[S].qty == -6
    assert queue(ex, "sell", 104) == [(M, 4)]
    # the level still holds what the L2 feed says: setting it to 4 changes nothing
    assert [type(e) for e in ex.apply(level(4, "sell", "104", "4"))] == [Input]


def test_decrease_keeps_priority_increase_joins_the_back() -> None:
    """Bid 100: #market 5 (A), then trader T joins with 2: [A 5, T 2]. The feed says 3: A
    shrinks in place to 3, still ahead of T: [A 3, T 2]. The feed says 7: the 4 more join
    the back as B: [A 3, T 2, B 4]. A sell of 6 then fills A 3, T 2, B 1 in that order, and
    the level is left with B's 3. The feed says 1: B shrinks to 1; 0: B is cancelled."""
    ex = Exchange.from_dict(config())
    run_all(ex, [level(1, "buy", "100", "5"), dep(1, "t", "1000"), dep(1, "s", "1000"),
                 idx(1, "100"), order(2, "t", "tb", "buy", "2", "100")])  # fmt: skip
    assert queue(ex, "buy", 100) == [(M, 5), ("t", 2)]
    ev = run_all(ex, [level(3, "buy", "100", "3")])
    assert [(e.order_id, e.qty, e.priority_kept) for e in ev if type(e) is OrderAmended] == [
        ("#1", 3, True)
    ]
    assert queue(ex, "buy", 100) == [(M, 3), ("t", 2)]
    ev = run_all(ex, [level(4, "buy", "100", "7")])
    assert [(e.order_id, e.qty) for e in ev if type(e) is OrderAccepted] == [("#14", 4)]
    assert queue(ex, "buy", 100) == [(M, 3), ("t", 2), (M, 4)]
    ev = run_all(ex, [order(5, "s", "sx", "sell", "6", "100", tif="ioc")])
    assert fills(ev) == [(M, "#1", 100, 3), ("t", "tb", 100, 2), (M, "#14", 100, 1)]
    assert queue(ex, "buy", 100) == [(M, 3)]
    ev = run_all(ex, [level(6, "buy", "100", "1")])
    assert [(e.order_id, e.qty, e.priority_kept) for e in ev if type(e) is OrderAmended] == [
        ("#14", 1, True)
    ]
    ev = run_all(ex, [level(7, "buy", "100", "0")])
    assert [(e.order_id, e.qty, e.reason) for e in ev if type(e) is OrderCancelled] == [
        ("#14", 1, "market_level")
    ]
    assert queue(ex, "buy", 100) == []


def test_decrease_takes_the_newest_first() -> None:
    """[A 3, T 2, B 4] and the feed says 2: 5 come off, newest first: B's 4 (cancelled),
    then 1 of A's 3 (A keeps its place ahead of T): [A 2, T 2]."""
    ex = Exchange.from_dict(config())
    a, b = placed(run_all(ex, [
        level(1, "buy", "100", "3"), dep(1, "t", "1000"), idx(1, "100"),
        order(2, "t", "tb", "buy", "2", "100"), level(3, "buy", "100", "7"),
    ]))  # fmt: skip
    assert queue(ex, "buy", 100) == [(M, 3), ("t", 2), (M, 4)]
    ev = run_all(ex, [level(4, "buy", "100", "2")])
    assert [(type(e).__name__, e.order_id, e.qty) for e in ev[1:]] == [
        ("OrderCancelled", b, 4), ("OrderAmended", a, 2)
    ]  # fmt: skip
    assert queue(ex, "buy", 100) == [(M, 2), ("t", 2)]


def test_historical_trade_eats_the_depth_ahead_before_the_trader() -> None:
    """A historical trade is a #market IOC: at bid 100 [#market 3, T 2], a sell of 4 fills
    #market's own 3 first (the world trading with itself: no fee, no position, no cash)
    and 1 of T's 2, at a taker fee of 0.2% / maker 0.1% for that fill: T pays 0.1 -> 1
    (rounded up), #market 0.2 -> 1; its self-fill pays nothing."""
    cfg = config()
    cfg["instruments"][0].update(maker_fee_ppm=1000, taker_fee_ppm=2000)
    ex = Exchange.from_dict(cfg)
    run_all(ex, [level(1, "buy", "100", "3"), dep(1, "t", "1000"), idx(1, "100"),
                 order(2, "t", "tb", "buy", "2", "100")])  # fmt: skip
    ev = run_all(ex, [order(3, M, "trade1", "sell", "4", "100", tif="ioc")])
    assert fills(ev) == [(M, "#1", 100, 3), ("t", "tb", 100, 1)]
    settles = [(e.buyer, e.seller, e.value, e.buyer_fee, e.seller_fee)
               for e in ev if type(e) is Settlement]  # fmt: skip
    assert settles == [(M, M, 300, 0, 0), ("t", M, 100, 1, 1)]
    assert ex.market.positions[S].qty == -1 and ex.market.balance == 100 - 1
    assert ex.accounts["t"].balance == 1000 - 100 - 1
    assert ex.fees.balance == 2
    assert queue(ex, "buy", 100) == [("t", 1)]
    assert ex.instruments[S].last_trade == 100


def test_market_fok_counts_its_own_depth() -> None:
    """#market's orders match each other whatever the STP mode (cancel_taker here), so a
    #market FOK for 5 at 101 against its own ask of 5 fills (under cancel_taker it would
    expire: only what is ahead of an own order counts)."""
    ex = Exchange.from_dict(config())
    run_all(ex, [level(1, "sell", "101", "5")])
    ev = run_all(ex, [order(2, M, "f", "buy", "5", "101", tif="fok")])
    assert fills(ev) == [(M, "#1", 101, 5)]
    assert M not in {a for a, x in ex.accounts.items() if x.positions}


# --------------------------------------------------------------------------- crossing


def test_stale_opposite_market_levels_are_uncrossed() -> None:
    """Asks of #market at 101 x 5 and 102 x 3; the feed moves the bid up to 102 before the
    asks' deletes arrive: both asks are stale (a real book is never crossed), so they are
    cancelled (market_uncross) and the bid of 2 rests at 102."""
    ex = Exchange.from_dict(config())
    a101, a102, _ = placed(run_all(ex, [
        level(1, "sell", "101", "5"), level(1, "sell", "102", "3"), level(1, "sell", "103", "1"),
    ]))  # fmt: skip
    ev = run_all(ex, [level(2, "buy", "102", "2")])
    assert [(type(e).__name__, e.order_id, e.qty) for e in ev[1:]] == [
        ("OrderCancelled", a101, 5), ("OrderCancelled", a102, 3),
        ("OrderAccepted", f"#{ev[0].seq}", 2),
    ]  # fmt: skip
    assert all(e.reason == "market_uncross" for e in ev if type(e) is OrderCancelled)
    book = ex.instruments[S].book
    assert (book.best_bid(), book.best_ask()) == (102, 103)
    # the asks' deletes then arrive: nothing is left to delete
    assert [type(e) for e in ex.apply(level(3, "sell", "101", "0"))] == [Input]


@pytest.mark.parametrize("mixed", [False, True])
def test_level_crossing_another_accounts_order_is_refused(mixed: bool) -> None:
    """A trader's ask at 101 (alone, or behind #market's 2 at that level): a #market bid
    at 101 would cross it, and a quote never trades, so it is refused crosses_book and
    changes nothing, not even the clock or #market's stale ask at 100 below it."""
    ex = Exchange.from_dict(config())
    cmds = [dep(1, "t", "1000"), idx(1, "101"), level(1, "sell", "100", "1")]
    if mixed:
        cmds.append(level(1, "sell", "101", "2"))
    run_all(ex, [*cmds, order(2, "t", "ta", "sell", "1", "101")])
    before = snapshot(ex)
    ev = ex.apply(level(10, "buy", "101", "3"))
    assert [type(e) for e in ev] == [Input, Rejected]
    assert ev[1].reason == "crosses_book: a bid at 101 would cross another account's ask at 101"
    assert ev[0].ts == 2 and snapshot(ex) == before


def test_refused_level_runs_no_funding_that_fell_due() -> None:
    """With funding every 60 s, a crossing level 2 minutes on is refused before anything
    falls due (clearing/admission.py): [Input, Rejected], no round paid, clock unchanged."""
    cfg = config()
    cfg["instruments"][0]["funding_interval_s"] = 60
    ex = Exchange.from_dict(cfg)
    t0 = 1_700_000_000_000_000
    run_all(ex, [dep(t0, "t", "1000"), dep(t0, "u", "1000"), idx(t0, "100"),
                 order(t0, "t", "x", "buy", "1", "100"), order(t0, "u", "y", "sell", "1", "100"),
                 order(t0, "u", "z", "sell", "1", "101")])  # fmt: skip
    before = snapshot(ex)
    ev = ex.apply(level(t0 + 120_000_000, "buy", "101", "1"))
    assert [type(e) for e in ev] == [Input, Rejected], ev
    assert snapshot(ex) == before


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"symbol": "DOGE-USD"}, "unknown_symbol: DOGE-USD"),
        ({"side": "bid"}, "bad_field: side must be one of buy|sell"),
        ({"price": "0"}, "bad_field: zero price"),
        ({"price": "-100"}, "bad_field: negative price"),
        ({"price": "1e2"}, "bad_field: price '1e2' is not a decimal number"),
        ({"price": "100.5"}, "off_grid: price off the tick grid"),
        ({"qty": "-1"}, "bad_field: negative quantity"),
        ({"qty": "1.5"}, "off_grid: quantity not a whole number of lots"),
        ({"qty": 1}, "bad_field: quantity must be a decimal string"),
        ({"price": "1000000000000001"}, "off_grid: price out of range"),
        # 10,000 lots at 10^15 ticks: 10^19 atoms, past 64 bits
        ({"price": "1000000000000000", "qty": "10000"}, "value_out_of_range"),
        ({"account": M}, "unknown_field: 'account' in market_level command"),
    ],
)
def test_bad_level_is_refused_and_changes_nothing(change: dict[str, Any], code: str) -> None:
    ex = Exchange.from_dict(config())
    run_all(ex, [level(5, "buy", "99", "3"), dep(5, "t", "100")])
    before = snapshot(ex)
    ev = ex.apply({**level(9, "buy", "100", "2"), **change})
    assert [type(e) for e in ev] == [Input, Rejected]
    assert ev[1].reason.startswith(code), ev[1].reason
    assert ev[0].ts == 5 and snapshot(ex) == before


def test_market_account_trades_but_takes_no_deposits() -> None:
    """order, cancel, cancel_all and amend are #market's; deposit and withdraw are not, and
    no other reserved id may trade."""
    ex = Exchange.from_dict(config())
    for c in (dep(1, M, "5"), {"type": "withdraw", "ts": 1, "account": M, "amount": "5"},
              order(1, "#insurance", "x", "buy", "1", "1"), order(1, "@hlp", "x", "buy", "1", "1")):
        ev = ex.apply(c)
        assert [type(e) for e in ev] == [Input, Rejected] and "reserved" in ev[1].reason, ev
    ev = run_all(ex, [
        order(2, M, "g", "buy", "3", "90"),
        {"type": "amend", "ts": 3, "account": M, "id": "g", "qty": "2"},
        {"type": "cancel", "ts": 4, "account": M, "id": "g"},
        level(5, "buy", "91", "1"),
        {"type": "cancel_all", "ts": 6, "account": M},
    ])  # fmt: skip
    (lv,) = placed(ev)
    assert [(type(e).__name__, e.order_id) for e in ev if type(e) is not Input] == [
        ("OrderAccepted", "g"), ("OrderAmended", "g"), ("OrderCancelled", "g"),
        ("OrderAccepted", lv), ("OrderCancelled", lv),
    ]  # fmt: skip
    # the depth cancel_all removed is no longer the level's: the feed can set it again
    ev = run_all(ex, [level(7, "buy", "91", "2")])
    assert [(e.order_id, e.qty) for e in ev if type(e) is OrderAccepted] == [(f"#{ev[0].seq}", 2)]


def test_market_order_value_is_bounded_by_64_bits() -> None:
    """#market skips every margin check; its only bound is that a fill's value fits 64 bits
    of atoms. A trader's stink ask of 10,000 at 10^15 (the trader's margin is on 10,000 at
    the mark 100, IM 100,000): a #market market buy of 10,000 would fill at 10^19 atoms, and
    is refused; one of 9 (9 x 10^15) is not."""
    ex = Exchange.from_dict(config())
    run_all(ex, [dep(1, "t", "200000"), idx(1, "100"),
                 order(1, "t", "s", "sell", "10000", "1000000000000000")])  # fmt: skip
    before = snapshot(ex)
    ev = ex.apply(order(2, M, "big", "buy", "10000", tif="ioc"))
    assert [type(e) for e in ev] == [Input, Rejected]
    assert ev[1].reason.startswith("value_out_of_range")
    assert snapshot(ex) == before
    run_all(ex, [order(3, M, "small", "buy", "9", tif="ioc")])  # 9 x 10^15: fits


# --------------------------------------------------------------------------- never liquidated


def test_market_is_never_liquidated_and_its_cash_may_go_negative() -> None:
    """#market sells 10 @ 100 to t (cash +1,000, short 10), then buys 20 @ 150 from u with
    no margin check (cash 1,000 - 3,000 = -2,000, long 10); the index goes to 10 (#market's
    equity -2,000 + 10 x 10 = -1,900, far below any maintenance): no trigger, no flag, and
    the state view shows it apart from the accounts."""
    ex = Exchange.from_dict(config())
    run_all(ex, [dep(1, "t", "10000"), dep(1, "u", "10000"), idx(1, "100"),
                 level(1, "sell", "100", "10"), order(2, "t", "b", "buy", "10", tif="ioc"),
                 order(3, "u", "a", "sell", "20", "150"),
                 order(4, M, "hist", "buy", "20", "150", tif="ioc")])  # fmt: skip
    assert ex.market.balance == -2000 and ex.market.positions[S].qty == 10
    ev = run_all(ex, [idx(5, "10"), idx(6, "1")])
    assert not any(type(e) is LiquidationTriggered and e.account == M for e in ev)
    assert ex.risk(ex.market)[0] == -2000 + 10 * 1
    assert not ex.market.flagged and M not in ex.stuck
    view = ex.state()
    assert M not in view["accounts"]
    assert view["market"] == {  # balance W = Q + entry value = -2,000 + 10 x 150
        "balance": "-500", "quote_balance": "-2000", "equity": "-1990",
        "positions": {S: {"qty": "10", "entry_price": "150"}},
    }  # fmt: skip
    # and it still trades: no margin to run out of
    run_all(ex, [order(7, M, "more", "buy", "1", "150")])


def test_liquidation_eats_the_market_depth() -> None:
    """L deposits 100 and buys 10 @ 100 from #market (IM 10% of 1,000 = 100: just enough).
    #market then bids 93 x 4, 91 x 3, 89 x 10. The index falls to 94: equity -900 + 940 =
    40 < MM 5% x 940 = 47, so L is liquidated; bankruptcy price -Q/q = 900/10 = 90, so the
    IOC sells into 93 (4) and 91 (3) but not 89: deltas 4 x 3 = 12 and 3 x 1 = 3. Left long
    3: equity -900 + 372 + 273 + 3 x 94 = 27 >= MM 0.05 x 282 -> 15, so it stops there."""
    ex = Exchange.from_dict(config(steps=["book"], liquidation_fee_ppm=0))
    run_all(ex, [level(1, "sell", "100", "10"), dep(1, "L", "100"), idx(1, "100"),
                 order(2, "L", "x", "buy", "10", tif="ioc"),
                 level(3, "buy", "93", "4"), level(3, "buy", "91", "3"),
                 level(3, "buy", "89", "10")])  # fmt: skip
    ev = run_all(ex, [idx(4, "94")])
    trig = [e for e in ev if type(e) is LiquidationTriggered]
    assert [(e.account, e.equity, e.maintenance) for e in trig] == [("L", 40, 47)]
    assert [(e.maker_account, e.price, e.qty) for e in ev if type(e) is Fill] == [
        (M, 93, 4), (M, 91, 3)
    ]
    assert [(e.bankruptcy_price, e.delta) for e in ev if type(e) is LiquidationFill] == [
        (90, 12), (90, 3)
    ]
    assert ex.accounts["L"].positions[S].qty == 3 and ex.risk(ex.accounts["L"])[:2] == (27, 15)
    assert ex.market.positions[S].qty == -3 and ex.market.balance == 1000 - 372 - 273
    assert queue(ex, "buy", 89) == [(M, 10)]


def test_new_depth_retries_a_stuck_liquidation() -> None:
    """As above but the only bid is #market's 2 @ 91 with steps = ["book"] and nothing
    else: the IOC closes 2 @ 91 and L stays stuck, below MM (cash -900 + 182 = -718, long 8:
    equity -718 + 752 = 34 < MM 0.05 x 752 -> 38). A new level bid 90 x 8 is activity in
    the book, so the stuck liquidation is retried in the same command and sells the 8 at
    90; their bankruptcy price is 718 / 8 = 89.75, rounded down to 89 for a long (the
    fund's favour), so delta = 720 - 8 x 89 = 8."""
    ex = Exchange.from_dict(config(steps=["book"], liquidation_fee_ppm=0))
    run_all(ex, [level(1, "sell", "100", "10"), dep(1, "L", "100"), idx(1, "100"),
                 order(2, "L", "x", "buy", "10", tif="ioc"),
                 level(3, "buy", "91", "2")])  # fmt: skip
    ev = run_all(ex, [idx(4, "94")])
    assert [(e.price, e.qty) for e in ev if type(e) is Fill] == [(91, 2)]
    assert "L" in ex.stuck and ex.risk(ex.accounts["L"])[:2] == (34, 38)
    ev = run_all(ex, [level(5, "buy", "90", "8")])
    assert [(e.maker_account, e.price, e.qty) for e in ev if type(e) is Fill] == [(M, 90, 8)]
    assert [(e.bankruptcy_price, e.delta) for e in ev if type(e) is LiquidationFill] == [(89, 8)]
    assert S not in ex.accounts["L"].positions and "L" not in ex.stuck


def test_market_is_never_deleveraged() -> None:
    """L is long 10 from #market (short 10) and from nobody else; with steps = ["adl"] the
    only opposite position is #market's, which is never a counterparty: nothing is
    deleveraged. With a trader short 4 beside it, the ADL takes that trader's 4 only."""
    for with_trader in (False, True):
        ex = Exchange.from_dict(config(steps=["adl"]))
        cmds = [level(1, "sell", "100", "6"), dep(1, "L", "100"), dep(1, "s", "1000"),
                idx(1, "100"), order(2, "L", "x", "buy", "6", tif="ioc")]  # fmt: skip
        if with_trader:
            cmds += [order(2, "s", "a", "sell", "4", "100")]
        else:
            cmds += [level(2, "sell", "100", "4")]
        cmds += [order(2, "L", "y", "buy", "4", tif="ioc")]
        run_all(ex, cmds)
        ev = run_all(ex, [idx(3, "94")])
        assert any(type(e) is LiquidationTriggered and e.account == "L" for e in ev)
        adl: dict[str, int] = {}
        for e in ev:
            if type(e) is Deleveraged:  # an exact value may be two pieces (split_value)
                adl[e.counterparty] = adl.get(e.counterparty, 0) + e.qty
        assert adl == ({"s": 4} if with_trader else {}), adl


def test_market_pays_funding() -> None:
    """t long 10, #market short 10, funding 0.1% at mark 100: t pays 10 x 100 x 0.001 = 1,
    #market receives it (a round sums to zero)."""
    ex = Exchange.from_dict(config())
    run_all(ex, [level(1, "sell", "100", "10"), dep(1, "t", "1000"), idx(1, "100"),
                 order(2, "t", "b", "buy", "10", tif="ioc")])  # fmt: skip
    ev = run_all(ex, [{"type": "funding", "ts": 3, "symbol": S, "rate": "0.001"}])
    pays = sorted(tuple(p) for e in ev if type(e) is Funding for p in e.payments)
    assert pays == [(M, 1), ("t", -1)]


# --------------------------------------------------------------------------- conservation, logs


class _MarketGen(FuzzGen):
    """The fuzzer's traffic with the historical market's weighted up."""

    def weighted(self) -> list[Any]:
        return [(f, w * (6 if f.__name__ in ("market_level", "market_trade") else 1))
                for f, w in super().weighted()]  # fmt: skip


def test_conservation_with_the_market() -> None:
    """A seeded session of market_level updates, #market trades and the population's
    orders, index jumps, funding and liquidations, with every event folded into
    ``test_conservation``'s shadow ledger (all balances, #market's among them, sum to net
    deposits; positions to zero) and the fuzzer's checks after every command."""
    cfg = fuzz_config(None, "oracle", "linear", waterfall="default")
    chk = FuzzChecker(cfg)
    gen = _MarketGen(copy.deepcopy(cfg))
    gen.live = chk.resting
    gen.holdings = chk.holdings
    gen.market_orders = chk.market_orders
    gen.clock = lambda: chk.ex.ts
    for cmd in gen.session(random.Random(12), 1500):
        chk.apply(cmd)
    assert not chk.violations, "\n".join(map(str, chk.violations[:5]))
    ex = chk.ex
    assert chk.full  # the whole per-event shadow ledger ran
    assert sum(a.balance for a in ex.accounts.values()) == ex.net_deposits
    c = chk.counts
    assert c.get("Settlement", 0) > 100 and c.get("LiquidationTriggered", 0) > 0, c
    assert ex.market.positions or ex.market.balance  # #market really traded


def test_verify_reexecutes_a_log_with_market_levels(tmp_path: Path) -> None:
    """A run with market_level depth, #market trades and a liquidation into that depth
    verifies byte for byte (``clearsim verify``), and the state folded from the log, the
    market's included, is the live exchange's."""
    cmds = [
        level(1, "sell", "100", "10"), level(1, "sell", "101", "5"), dep(1, "L", "100"),
        idx(1, "100"), order(2, "L", "x", "buy", "10", tif="ioc"),
        level(3, "buy", "93", "4"), level(3, "buy", "91", "3"), level(3, "buy", "93", "2"),
        order(3, M, "t1", "buy", "2", "101", tif="ioc"), level(3, "sell", "101", "3"),
        level(4, "buy", "102", "1"),  # uncrosses the stale ask at 101
        idx(5, "94"), level(6, "buy", "102", "0"),
    ]  # fmt: skip
    cfg = config(steps=["book"], liquidation_fee_ppm=0)
    log = tmp_path / "m.log"
    ex, _ = run(Config.from_dict(cfg), cmds, log)
    res = verify(log)
    assert res.ok, res
    led, _ = fold_ledger(log)
    assert state_view(led) == ex.state()
    assert "market" in ex.state()
    story = Story(cfg).feed_all(_events(log))
    assert story.liquidated == {"L"} and story.market_trades == 1
    # and through the CLI, from a commands file
    (tmp_path / "c.toml").write_text(_toml(cfg))
    write_commands(tmp_path / "c.jsonl", cmds)
    r = cli("run", "--config", tmp_path / "c.toml", "--commands", tmp_path / "c.jsonl",
            "-o", tmp_path / "cli.log")  # fmt: skip
    assert r.returncode == 0, r
    assert (tmp_path / "cli.log").read_bytes().splitlines()[1:] == log.read_bytes().splitlines()[1:]
    r = cli("verify", tmp_path / "cli.log")
    assert r.returncode == 0 and r.stdout.startswith("OK "), r
    r = cli("state", tmp_path / "cli.log", "--json")
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["market"] == ex.state()["market"]
    m = ex.state()["market"]
    r = cli("state", tmp_path / "cli.log")
    assert r.returncode == 0 and f"market (#market, no margin): balance {m['balance']}" in r.stdout
    assert "#market" not in r.stdout.split("accounts", 1)[1], r.stdout  # not among the traders
    r = cli("story", tmp_path / "cli.log")
    assert r.returncode == 0 and "(1 of them the historical market's own)" in r.stdout, r
    assert "1 accounts liquidated" in r.stdout, r.stdout


def _events(log: Path) -> list[Event]:
    from clearsim.events.codec import to_event
    from clearsim.events.log import LogReader

    return [to_event(d) for d in LogReader(log).records()]


def _toml(cfg: dict[str, Any]) -> str:
    inst = cfg["instruments"][0]
    tiers = ", ".join(
        f'{{ max_notional = "{t["max_notional"]}", imr_ppm = {t["imr_ppm"]}, '
        f'mmr_ppm = {t["mmr_ppm"]} }}'
        for t in inst["tiers"]
    )
    wf = cfg.get("waterfall", {})
    return (
        '[exchange]\ncollateral = "USD"\ncollateral_decimals = 0\n\n'
        f"[waterfall]\nsteps = {json.dumps(wf['steps'])}\n"
        f"liquidation_fee_ppm = {wf['liquidation_fee_ppm']}\n\n"
        f'[[instruments]]\nsymbol = "{inst["symbol"]}"\ntick_size = "1"\nlot_size = "1"\n'
        f"tiers = [{tiers}]\n"
    )


@pytest.mark.parametrize(
    ("mark", "funding_interval_s", "seed"),
    [("oracle", 0, 1), ("mid", 0, 2), ("median", 60, 3), ("oracle", 60, 4)],
)
def test_fast_lane_is_the_general_path(mark: str, funding_interval_s: int, seed: int) -> None:
    """``market.apply_fast`` is an optimisation only: over a seeded market-heavy session
    (hostile levels, crossing ones, removals, #market trades, funding falling due between
    levels, liquidations) every command gives the same encoded events and the exchanges end
    in the same state as with the fast lane off."""
    from clearsim.clearing import market
    from clearsim.events.codec import encode_event

    cfg = fuzz_config(None, mark, "linear", funding_interval_s=funding_interval_s)
    fast, slow = Exchange.from_dict(copy.deepcopy(cfg)), Exchange.from_dict(copy.deepcopy(cfg))
    chk = FuzzChecker(copy.deepcopy(cfg))
    chk.ex = fast  # the generator reads the live state of the fast exchange
    gen = _MarketGen(copy.deepcopy(cfg), ts_step=3_000_000 if funding_interval_s else 3)
    gen.live, gen.holdings, gen.market_orders = chk.resting, chk.holdings, chk.market_orders
    gen.clock = lambda: fast.ts
    took = 0
    try:
        for cmd in gen.session(random.Random(seed), 1200):
            twin = copy.deepcopy(cmd)
            market.FAST = True
            a = fast.apply(cmd)
            market.FAST = False
            b = slow.apply(twin)
            assert [encode_event(e) for e in a] == [encode_event(e) for e in b], cmd
            took += isinstance(cmd, dict) and cmd.get("type") == "market_level"
    finally:
        market.FAST = True
    assert took > 300
    assert fast.state() == slow.state() and fast.ts == slow.ts
    assert snapshot(fast) == snapshot(slow)


def test_market_orders_obey_halts_and_bands_its_depth_does_not() -> None:
    """A 10% band around mark 100 refuses a #market order at 111 (|111 - 100| > 10) as
    anyone's, but a level at 120 is the real book and rests. A breaker at 5% halts the
    instrument when the index moves 100 -> 94: #market's IOC is refused (halted) while its
    depth still moves (a level at 93 is accepted)."""
    cfg = config()
    cfg["instruments"][0].update(band_ppm=100_000, breaker_ppm=50_000, breaker_window_s=60)
    ex = Exchange.from_dict(cfg)
    run_all(ex, [idx(1, "100")])
    ev = ex.apply(order(2, M, "far", "buy", "1", "111", tif="ioc"))
    assert [type(e) for e in ev] == [Input, Rejected] and ev[1].reason == "price_outside_band"
    run_all(ex, [level(2, "sell", "120", "1")])
    ev = run_all(ex, [idx(3, "94")])
    assert ex.instruments[S].halted_until > 3
    ev = ex.apply(order(4, M, "h", "sell", "1", "94", tif="ioc"))
    assert [type(e) for e in ev] == [Input, Rejected] and ev[1].reason.startswith("halted")
    ev = run_all(ex, [level(4, "buy", "93", "2")])
    assert [(e.price, e.qty) for e in ev if type(e) is OrderAccepted] == [(93, 2)]
