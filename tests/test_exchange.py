"""The exchange's rules with hand-computed numbers (DESIGN §4, §5, §10).

Units as in tests/support.py: tick 0.1, lot 0.001, 6 decimals, so 1 BTC at 50,000 is worth
50,000 USDT = 5e10 atoms; tier 1 (up to 50,000 notional) has IM 10%, MM 0.4%.
"""

from __future__ import annotations

from typing import Any

import pytest
from support import Driver, config, exchange, rejected

from clearsim.clearing import Config, Exchange
from clearsim.events.types import (
    Fill,
    Funding,
    Input,
    LiquidationTriggered,
    MarkPrice,
    OrderCancelled,
    ParamSet,
    Rejected,
    Settlement,
)

USDT = 10**6


def maker_and_taker(**instrument: Any) -> Driver:
    d = Driver(exchange(**instrument))
    d.deposit("mm", "10000000")
    d.deposit("alice", "5000")
    d.index("50000")
    return d


def buy_one_btc(d: Driver, price: str = "50000") -> None:
    d.order("mm", "ask", "sell", "1", price)
    evs = d.order("alice", "buy1", "buy", "1", price, tif="ioc")
    assert any(isinstance(e, Fill) for e in evs), evs


# ------------------------------------------------------------------ sequencing and rejections


def test_every_command_is_an_input_event_then_its_effects() -> None:
    d = Driver(exchange())
    evs = d("deposit", account="alice", amount="100")
    assert isinstance(evs[0], Input) and evs[0].seq == 1 and evs[0].cause == 0
    assert evs[0].command["amount"] == "100"
    assert evs[1].cause == 1
    assert d.ex.accounts["alice"].balance == 100 * USDT


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        ({"type": "deposit", "ts": 5, "account": "alice", "amount": "-1"}, ""),
        ({"type": "deposit", "ts": 5, "account": "alice", "amount": "0"}, "zero"),
        ({"type": "deposit", "ts": 5, "account": "alice", "amount": "0.0000001"}, "decimals"),
        (
            {"type": "withdraw", "ts": 5, "account": "nobody", "amount": "1"},
            "unknown_account: nobody",
        ),
        (
            {
                "type": "order",
                "ts": 5,
                "account": "alice",
                "id": "x",
                "symbol": "ETH-USD",
                "side": "buy",
                "qty": "1",
                "price": "1",
            },
            "unknown_symbol: ETH-USD",
        ),
        (
            {
                "type": "order",
                "ts": 5,
                "account": "alice",
                "id": "x",
                "symbol": "BTC-USD",
                "side": "buy",
                "qty": "1",
                "price": "50000.05",
            },
            "tick",
        ),
        (
            {
                "type": "order",
                "ts": 5,
                "account": "alice",
                "id": "x",
                "symbol": "BTC-USD",
                "side": "buy",
                "qty": "0.0005",
                "price": "50000",
            },
            "lot",
        ),
        ({"type": "teleport", "ts": 5}, "teleport"),
        ({"ts": 5}, "type"),
        ("not json at all", ""),
        ({"type": "deposit", "ts": 5, "account": "#insurance", "amount": "1"}, "reserved"),
    ],
)
def test_bad_commands_become_rejections_and_change_nothing(cmd: Any, reason: str) -> None:
    ex = exchange()
    ex.apply({"type": "deposit", "ts": 1, "account": "alice", "amount": "10"})
    before = ex.state()
    evs = ex.apply(cmd)
    assert [type(e) for e in evs] == [Input, Rejected]
    assert evs[1].cause == evs[0].seq
    assert reason.lower() in evs[1].reason.lower()
    after = ex.state()
    # The clock is the input's; everything else must be exactly as it was.
    assert {k: v for k, v in after.items() if k not in ("seq", "ts")} == {
        k: v for k, v in before.items() if k not in ("seq", "ts")
    }


def test_ts_going_backwards_is_rejected() -> None:
    ex = exchange()
    ex.apply({"type": "deposit", "ts": 10, "account": "alice", "amount": "10"})
    evs = ex.apply({"type": "deposit", "ts": 9, "account": "alice", "amount": "10"})
    assert isinstance(evs[-1], Rejected) and "backwards" in evs[-1].reason
    assert evs[0].ts == 10  # the log's clock never goes backwards either
    assert ex.accounts["alice"].balance == 10 * USDT


# ------------------------------------------------------------------ money


def test_withdrawal_may_not_leave_equity_below_initial_margin() -> None:
    d = maker_and_taker()
    d.index("49000")
    buy_one_btc(d, "49000")  # IM = 10% of 49,000 = 4,900; equity 5,000
    why = rejected(d("withdraw", account="alice", amount="100.000001"))
    assert "initial margin" in (why or "")
    d.ok("withdraw", account="alice", amount="100")
    assert rejected(d("withdraw", account="alice", amount="0.000001"))
    assert d.ex.accounts["alice"].net_deposits == 4900 * USDT


def test_fees_round_up_and_rebates_round_down() -> None:
    d = maker_and_taker(taker_fee_ppm=500, maker_fee_ppm=-100)
    d.order("mm", "ask", "sell", "0.247", "49979.9")
    evs = d.order("alice", "b", "buy", "0.247", "49979.9", tif="ioc")
    (s,) = [e for e in evs if isinstance(e, Settlement)]
    # value = 247 lots x 499,799 ticks x 100 = 12,345,035,300 atoms (12,345.0353 USDT)
    assert s.value == 12_345_035_300
    assert s.buyer_fee == 6_172_518  # 6,172,517.65 rounded up
    assert s.seller_fee == -1_234_503  # rebate 1,234,503.53 rounded down
    assert d.ex.fees.balance == 6_172_518 - 1_234_503
    assert d.ex.accounts["alice"].balance == 5000 * USDT - 12_345_035_300 - 6_172_518


def test_insurance_deposit_funds_the_fund() -> None:
    d = Driver(exchange())
    d.ok("insurance_deposit", amount="2500.5")
    assert d.ex.fund.balance == 2_500_500_000
    assert d.ex.state()["insurance_fund"] == "2500.5"


# ------------------------------------------------------------------ pre-trade check


def test_order_up_to_initial_margin_passes_one_lot_more_fails() -> None:
    d = maker_and_taker()
    # 5,000 of equity at 10% IM carries 50,000 of notional: 1 BTC at 50,000, not 1.001.
    assert rejected(d.order("alice", "o1", "buy", "1.001", "50000")) == "insufficient_margin"
    assert rejected(d.order("alice", "o2", "buy", "1", "50000")) is None


def test_other_open_orders_on_the_same_side_count() -> None:
    d = maker_and_taker()
    assert rejected(d.order("alice", "o1", "buy", "0.6", "50000")) is None
    assert rejected(d.order("alice", "o2", "buy", "0.4", "50000")) is None
    assert rejected(d.order("alice", "o3", "buy", "0.001", "50000")) == "insufficient_margin"
    # ... but not the other side's
    assert rejected(d.order("alice", "o4", "sell", "0.5", "50000.1")) is None


def test_buying_above_the_mark_counts_the_open_loss() -> None:
    d = maker_and_taker()
    # 0.99 BTC at 50,050: IM 4,950 at the mark; open loss 0.99 x 50 = 49.5 -> equity 4,950.5
    assert rejected(d.order("alice", "o1", "buy", "0.99", "50050")) is None
    d("cancel", account="alice", id="o1")
    # 0.999 at 50,050: IM 4,995, equity 5,000 - 49.95 = 4,950.05 < 4,995
    assert rejected(d.order("alice", "o2", "buy", "0.999", "50050")) == "insufficient_margin"


def test_reduce_only_passes_the_margin_check_and_cannot_increase() -> None:
    d = maker_and_taker()
    buy_one_btc(d)
    d.index("46000")  # deep loss: equity 1,000, IM 4,600
    assert rejected(d.order("alice", "more", "buy", "0.001", "46000")) == "insufficient_margin"
    assert "reduce_only: order would not reduce" in (
        rejected(d.order("alice", "ro1", "buy", "0.1", "46000", reduce_only=True)) or ""
    )
    evs = d.order("alice", "ro2", "sell", "5", "47000", reduce_only=True)
    assert rejected(evs) is None
    # clamped to the 1 BTC position
    assert d.ex.instruments["BTC-USD"].book.get("alice", "ro2").qty == 1000


def test_resting_reduce_only_order_is_trimmed_when_the_position_shrinks() -> None:
    d = maker_and_taker()
    buy_one_btc(d)
    d.order("alice", "ro", "sell", "1", "51000", reduce_only=True)
    d.order("mm", "bid", "buy", "0.4", "50000")
    d.order("alice", "s", "sell", "0.4", "50000", tif="ioc")  # position now 0.6
    assert d.ex.instruments["BTC-USD"].book.get("alice", "ro").qty == 600
    d.order("mm", "bid2", "buy", "0.6", "50000")
    evs = d.order("alice", "s2", "sell", "0.6", "50000", tif="ioc")  # flat
    assert any(isinstance(e, OrderCancelled) and e.reason == "reduce_only" for e in evs)
    assert d.ex.instruments["BTC-USD"].book.get("alice", "ro") is None


def test_price_band() -> None:
    d = maker_and_taker(band_ppm=10_000)  # 1% around the mark
    assert rejected(d.order("alice", "in", "buy", "0.01", "49500")) is None
    assert rejected(d.order("alice", "out", "buy", "0.01", "49499.9")) == "price_outside_band"


# ------------------------------------------------------------------ positions and liquidation


def test_entry_price_averages_up_keeps_on_reduce_resets_on_flip() -> None:
    d = maker_and_taker()
    d.order("mm", "a1", "sell", "0.1", "50000")
    d.order("mm", "a2", "sell", "0.3", "50100")
    d.order("alice", "b", "buy", "0.4", "50100", tif="ioc")
    pos = d.ex.state()["accounts"]["alice"]["positions"]["BTC-USD"]
    assert pos["qty"] == "0.400" and pos["entry_price"] == "50075"  # (0.1x50000+0.3x50100)/0.4
    d.order("mm", "b1", "buy", "0.1", "49000")
    d.order("alice", "s", "sell", "0.1", "49000", tif="ioc")
    assert d.ex.state()["accounts"]["alice"]["positions"]["BTC-USD"]["entry_price"] == "50075"
    d.order("mm", "b2", "buy", "0.5", "49000")
    d.order("alice", "s2", "sell", "0.5", "49000", tif="ioc")
    pos = d.ex.state()["accounts"]["alice"]["positions"]["BTC-USD"]
    assert pos["qty"] == "-0.200" and pos["entry_price"] == "49000"


def test_liquidation_triggers_exactly_at_the_liquidation_price() -> None:
    d = maker_and_taker()
    buy_one_btc(d)
    st = d.ex.state()["accounts"]["alice"]["positions"]["BTC-USD"]
    assert st["liquidation_price"] == "45180.7"
    evs = d.index("45180.8")
    assert not any(isinstance(e, LiquidationTriggered) for e in evs)
    evs = d.index("45180.7")
    (trig,) = [e for e in evs if isinstance(e, LiquidationTriggered)]
    (mark,) = [e for e in evs if isinstance(e, MarkPrice)]
    assert trig.account == "alice" and trig.cause == mark.seq
    # E = 5,000 - 0.1 x 48,19.3 ... exactly: 1 BTC x (45,180.7 - 50,000) = -4,819.3
    assert trig.equity == 180_700_000
    assert trig.maintenance == 180_722_800  # 45,180.7 x 0.4% = 180.7228


def test_a_short_is_triggered_when_the_mark_rises() -> None:
    d = maker_and_taker()
    d.order("mm", "bid", "buy", "1", "50000")
    d.order("alice", "s", "sell", "1", "50000", tif="ioc")
    assert d.ex.state()["accounts"]["alice"]["positions"]["BTC-USD"]["liquidation_price"] == (
        "54776.2"
    )
    assert not any(isinstance(e, LiquidationTriggered) for e in d.index("54776.1"))
    assert any(isinstance(e, LiquidationTriggered) for e in d.index("54776.2"))


def test_a_fill_can_trigger_liquidation_of_the_maker() -> None:
    d = maker_and_taker()
    # A resting bid for 0.5 at 49,000 and a 0.5 long from 50,000 use all 5,000 of margin.
    assert rejected(d.order("alice", "bid", "buy", "0.5", "49000")) is None
    d.order("mm", "ask", "sell", "0.5", "50000")
    assert rejected(d.order("alice", "b", "buy", "0.5", "50000", tif="ioc")) is None
    d.index("41000")  # equity 5,000 - 0.5 x 9,000 = 500 > MM 82: safe
    assert not d.ex.accounts["alice"].flagged
    # The stale bid fills 8,000 above the mark: equity 500 - 4,000 < MM
    evs = d.order("mm", "hit", "sell", "0.5", "49000", tif="ioc")
    settle = [e for e in evs if isinstance(e, Settlement)]
    (trig,) = [e for e in evs if isinstance(e, LiquidationTriggered)]
    assert trig.account == "alice" and trig.cause == settle[-1].seq
    assert trig.equity == -3500 * USDT


def test_a_deposit_rescues_an_account_the_waterfall_could_not_close() -> None:
    cfg = config()
    cfg["waterfall"] = {"steps": ["book"]}  # and no bids: nothing can close alice
    d = Driver(exchange(cfg))
    d.deposit("mm", "10000000")
    d.deposit("alice", "5000")
    d.index("50000")
    buy_one_btc(d)
    d.index("45000")
    assert d.ex.accounts["alice"].flagged and "alice" in d.ex.stuck
    d.deposit("alice", "1000")
    assert not d.ex.accounts["alice"].flagged and "alice" not in d.ex.stuck
    assert d.ex.state()["accounts"]["alice"]["liquidatable"] is False


def test_raising_the_mmr_triggers_liquidation_caused_by_the_set() -> None:
    d = maker_and_taker()
    buy_one_btc(d)
    d.index("46000")  # equity 1,000, MM 184: safe
    tiers = '[{"max_notional":"250000","imr_ppm":100000,"mmr_ppm":25000}]'
    evs = d.ok("set", path="instruments.BTC-USD.tiers", value=tiers)  # MM 2.5% = 1,150
    (ps,) = [e for e in evs if isinstance(e, ParamSet)]
    (trig,) = [e for e in evs if isinstance(e, LiquidationTriggered)]
    assert trig.cause == ps.seq and ps.path == "instruments.BTC-USD.tiers"


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("instruments.BTC-USD.tick_size", "1", "cannot change"),
        ("instruments.ETH-USD.taker_fee_ppm", "1", "unknown symbol"),
        ("waterfall.nonsense", "1", "unknown parameter"),
        ("waterfall.liquidation_fee_ppm", "abc", "integer"),
        ("waterfall.liquidation_fee_ppm", "-5", "liquidation_fee_ppm"),
        ("exchange.mark", "vibes", "mark"),
    ],
)
def test_bad_set_commands_are_rejected(path: str, value: str, reason: str) -> None:
    d = Driver(exchange())
    assert reason in (rejected(d("set", path=path, value=value)) or "")


def test_set_changes_a_fee_from_that_point_on() -> None:
    d = maker_and_taker()
    evs = d.ok("set", path="instruments.BTC-USD.taker_fee_ppm", value="1000")
    (ps,) = [e for e in evs if isinstance(e, ParamSet)]
    assert (ps.old, ps.new) == ("0", "1000")
    d.order("mm", "ask", "sell", "0.01", "50000")
    evs = d.order("alice", "b", "buy", "0.01", "50000", tif="ioc")
    (s,) = [e for e in evs if isinstance(e, Settlement)]
    assert s.buyer_fee == 500_000  # 500 USDT x 0.1%


# ------------------------------------------------------------------ funding


def three_holders(d: Driver) -> None:
    d.deposit("bob", "100000")
    d.deposit("carol", "100000")
    d.order("bob", "a", "sell", "0.6", "50000")
    d.order("carol", "a", "sell", "0.4", "50000")
    d.order("alice", "b", "buy", "1", "50000", tif="ioc")


def funding_of(evs: list[Any]) -> dict[str, int]:
    return {a: amt for e in evs if isinstance(e, Funding) for a, amt in e.payments}


def test_positive_funding_longs_pay_shorts() -> None:
    d = maker_and_taker()
    three_holders(d)
    evs = d.ok("funding", symbol="BTC-USD", rate="0.0001")
    assert funding_of(evs) == {"alice": -5 * USDT, "bob": 3 * USDT, "carol": 2 * USDT}


def test_negative_funding_shorts_pay_longs() -> None:
    d = maker_and_taker()
    three_holders(d)
    evs = d.ok("funding", symbol="BTC-USD", rate="-0.0001")
    assert funding_of(evs) == {"alice": 5 * USDT, "bob": -3 * USDT, "carol": -2 * USDT}


def test_funding_split_that_does_not_divide_evenly() -> None:
    d = maker_and_taker()
    for who in ("bob", "carol", "dave"):
        d.deposit(who, "1000")
        d.order(who, "a", "sell", "0.001", "50000")
    d.order("alice", "b", "buy", "0.003", "50000", tif="ioc")
    # alice pays 150 USDT x 1 ppm = 150 atoms -> 50 each; at 0.000001 + 1 atom more:
    evs = d.ok("funding", symbol="BTC-USD", rate="0.000001")
    assert funding_of(evs) == {"alice": -150, "bob": 50, "carol": 50, "dave": 50}
    d.index("33333.4")  # alice's 0.003 BTC = 100.0002 USDT -> pays 100.0002 atoms, rounded up
    evs = d.ok("funding", symbol="BTC-USD", rate="0.000001")
    # 101 atoms among three equal shorts: 33 each, the 2 left over go by account id
    assert funding_of(evs) == {"alice": -101, "bob": 34, "carol": 34, "dave": 33}


def test_computed_funding_rate_uses_premium_samples() -> None:
    d = maker_and_taker(interest_ppm=100)
    d.order("mm", "bid", "buy", "1", "50100")  # book trades 0.2% above the index
    d.order("mm", "ask", "sell", "1", "50200")
    d.deposit("bob", "100000")
    d.order("alice", "b", "buy", "0.1", "50200", tif="ioc")
    d.index("50000")  # one sample: (50,100 - 50,000) / 50,000 = 2,000 ppm
    evs = d.ok("funding", symbol="BTC-USD")
    (f,) = [e for e in evs if isinstance(e, Funding)]
    # F = P + clamp(I - P, -500, 500) = 2000 - 500 = 1500 ppm
    assert f.rate_ppm == 1500


def test_funding_every_interval_of_simulated_time() -> None:
    cfg = config(funding_interval_s=3600)
    d = maker_and_taker(**cfg["instruments"][0])
    three_holders(d)
    hour = 3600 * 10**6
    nxt = (d.ts // hour + 1) * hour
    d.ts = nxt - 10
    evs = d.index("50000.1")
    assert not funding_of(evs)
    d.ts = nxt + 2 * hour + 5  # three boundaries passed
    evs = d.index("50000.2")
    rounds = [e for e in evs if isinstance(e, Funding)]
    assert [e.ts for e in rounds] == [d.ts] * 3  # stamped with the command: ts never goes back
    assert all(e.rate_ppm == 100 for e in rounds)  # no premium: the interest rate


# ------------------------------------------------------------------ mark policies


def test_mid_mark_follows_the_book() -> None:
    cfg = config()
    cfg["exchange"]["mark"] = "mid"
    d = Driver(exchange(cfg))
    d.deposit("mm", "1000000")
    d.order("mm", "b", "buy", "1", "49999.9")
    evs = d.order("mm", "a", "sell", "1", "50000.2")
    (m,) = [e for e in evs if isinstance(e, MarkPrice)]
    assert m.price == 500_000  # (499,999 + 500,002) // 2
    d.index("40000")
    assert d.ex.instruments["BTC-USD"].mark == 500_000  # the index does not move a mid mark


def test_median_mark() -> None:
    cfg = config()
    cfg["exchange"]["mark"] = "median"
    d = Driver(exchange(cfg))
    d.deposit("mm", "1000000")
    d.order("mm", "b", "buy", "1", "50090")
    d.order("mm", "a", "sell", "1", "50110")
    d.index("50000")
    # p1 = index (no funding yet) = 50,000; p2 = index + basis(100) = 50,100; no trade -> index
    assert d.ex.instruments["BTC-USD"].mark == 500_000
    d.deposit("bob", "100000")
    d.order("bob", "t", "buy", "0.1", "50110", tif="ioc")  # last trade 50,110
    assert d.ex.instruments["BTC-USD"].mark == 501_000  # median(50,000, 50,100, 50,110)


def test_state_json_shape() -> None:
    d = maker_and_taker()
    buy_one_btc(d)
    st = d.ex.state()
    assert set(st) >= {"seq", "insurance_fund", "system_debt", "accounts"}
    a = st["accounts"]["alice"]
    # Q = 5,000 - 50,000; W = Q + the entry cost 50,000 (nothing realized); E at mark 50,000
    assert (a["quote_balance"], a["balance"], a["equity"]) == ("-45000", "5000", "5000")
    assert a["positions"]["BTC-USD"] == {
        "qty": "1.000",
        "entry_price": "50000",
        "liquidation_price": "45180.7",
    }


def test_closed_vocabularies_are_typed_but_the_header_keeps_the_config_text() -> None:
    """DESIGN §2: mark policy, STP mode, price limit, surplus and clawback period are parsed
    once into types; ``Config.to_dict()`` (the log header) still records the strings the
    config wrote, "060" seconds included, and ``set`` reports old and new as that text."""
    from clearsim.clearing.config import Every, MarkPolicy, PriceLimit, Stp, Surplus

    cfg = config()
    cfg["exchange"] = {"mark": "mid", "stp": "cancel_both"}
    cfg["waterfall"] = {"price_limit": "fillable", "surplus": "insurance_fund",
                        "clawback_period": "060"}  # fmt: skip
    c = Config.from_dict(cfg)
    assert (c.mark, c.stp) == (MarkPolicy.MID, Stp.CANCEL_BOTH)
    w = c.waterfall
    assert (w.price_limit, w.surplus) == (PriceLimit.FILLABLE, Surplus.INSURANCE_FUND)
    assert w.clawback_period == Every(60, "060")
    d = c.to_dict()
    assert (d["exchange"]["mark"], d["exchange"]["stp"]) == ("mid", "cancel_both")
    assert type(d["exchange"]["mark"]) is str and type(d["waterfall"]["surplus"]) is str
    assert (d["waterfall"]["price_limit"], d["waterfall"]["clawback_period"]) == ("fillable", "060")
    dr = Driver(Exchange(c))
    (ps,) = [e for e in dr("set", path="exchange.mark", value="oracle") if isinstance(e, ParamSet)]
    assert (ps.old, ps.new) == ("mid", "oracle") and dr.ex.config.mark is MarkPolicy.ORACLE
