"""Fidelity: every preset pays like the exchange it names (tracker issue 9).

One hand-computed scenario per defect, the numbers worked from the exchange's own formula
(sources and worked examples: /work/notes/fidelity-sources.md, cited by section as "notes
§n"). Units as in tests/test_waterfall.py: tick 1, lot 1, 0 collateral decimals, so a lot at
price p is worth p and money is whole units. One tier, MM 5% (IM 5% so that the notes'
deposits can open their positions).

The usual account of the notes: alice deposits D and buys 100 @ 100 from ``mm`` (who is then
short 100), so Q = D - 10 000, equity at mark m is Q + 100m and MM = 5m.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from support import Driver
from test_conservation import CommandGen, make_config

from clearsim.clearing import Config, Exchange
from clearsim.clearing.bankruptcy import fillable_price
from clearsim.clearing.config import ConfigError
from clearsim.clearing.presets import PRESETS
from clearsim.events.types import (
    BackstopTransfer,
    Deleveraged,
    Event,
    LiquidationFill,
    LiquidationStep,
    LiquidationTriggered,
    Rejected,
    SystemDebt,
    Takeover,
)

TIERS = [{"max_notional": "1000000000", "imr_ppm": 50_000, "mmr_ppm": 50_000}]


def cfg(preset: str | None = None, fund: str = "0", symbols: tuple[str, ...] = ("X",),
        **waterfall: Any) -> dict[str, Any]:
    ex: dict[str, Any] = {"collateral": "USD", "collateral_decimals": 0, "mark": "oracle"}
    if preset:
        ex["preset"] = preset
    insts = [{"symbol": s, "tick_size": "1", "lot_size": "1", "tiers": TIERS} for s in symbols]
    return {"exchange": ex, "insurance_fund": {"initial": fund}, "waterfall": waterfall,
            "instruments": insts}  # fmt: skip


def ok(evs: list[Event]) -> list[Event]:
    assert not [e for e in evs if isinstance(e, Rejected)], evs
    return evs


def victim(c: dict[str, Any], deposit: str, qty: str = "100", others: tuple[str, ...] = ("mm",
           "bidder", "s1", "s2", "s3")) -> Driver:  # fmt: skip
    """alice buys ``qty`` @ 100 from mm with ``deposit``; others get 1 000 000 each."""
    d = Driver(Exchange(Config.from_dict(c)))
    for who in others:
        d.deposit(who, "1000000")
    d.deposit("alice", deposit)
    d.index("100", symbol="X")
    ok(d.order("mm", "ask", "sell", qty, "100", symbol="X"))
    ok(d.order("alice", "buy", "buy", qty, "100", tif="ioc", symbol="X"))
    return d


def bid(d: Driver, who: str, qty: str, price: str, symbol: str = "X") -> None:
    ok(d.order(who, f"b{price}{symbol}", "buy", qty, price, symbol=symbol))


def of(evs: list[Event], t: type) -> list[Any]:
    return [e for e in evs if isinstance(e, t)]


def bal(d: Driver, who: str) -> int:
    return d.ex.accounts[who].balance


def qty(d: Driver, who: str, sym: str = "X") -> int:
    p = d.ex.accounts[who].positions.get(sym)
    return p.qty if p else 0


def equity(d: Driver, who: str) -> int:
    return d.ex.risk(d.ex.accounts[who])[0]


# ------------------------------------------------------------------ 1. binance partial


def test_binance_partial_slice_leaves_the_surplus_with_the_trader() -> None:
    """Notes §1 (Binance "Liquidation" FAQ + TraderWagon mirror: "If the user is margin
    compliant after calculating the realized losses and liquidation fee deductions, the
    liquidation will stop").

    D = 785: Q = -9 215. At 96: E = 385 < MM 480. Slice = 25% = 25 lots, sold @ 96 into the
    only bid: notional 2 400, fee 0.5% = 12 to the fund, nothing else taken.
    Q = -9 215 + 2 400 - 12 = -6 827, 75 lots: E = -6 827 + 7 200 = 373 >= MM 360: stop.
    Before the fix the slice's surplus over its bankruptcy value (88) also went to the fund,
    leaving E = 285 < 360, and alice was liquidated to the end.
    """
    d = victim(cfg("binance", fund="10000"), "785")
    bid(d, "bidder", "25", "96")
    evs = d.index("96", symbol="X")
    (f,) = of(evs, LiquidationFill)
    assert (f.qty, f.price, f.fee, f.surplus_to_fund) == (25, 96, 12, 0)
    assert qty(d, "alice") == 75 and bal(d, "alice") == -6827
    assert equity(d, "alice") == 373 and not d.ex.accounts["alice"].flagged
    assert bal(d, "#insurance") == 10_012 and not of(evs, Deleveraged)


def test_binance_final_slice_sends_the_remaining_margin_to_the_fund() -> None:
    """Notes §1, final-slice variant: no bid at all, the IOC fills nothing, the account is
    still deficient, so the fund takes the whole 100 at the exact bankruptcy value 9 215
    (price 92.15, off the tick grid: two pieces, 85 @ 92 + 15 @ 93 = 7 820 + 1 395). Fund
    cash 10 000 - 9 215 = 785, long 100: marked at 96 its equity is 10 385 (alice's 385 of
    margin went to it). Alice ends at Q = 0."""
    d = victim(cfg("binance", fund="10000"), "785")
    evs = d.index("96", symbol="X")
    takes = of(evs, Takeover)
    assert sum(t.value for t in takes) == -9215 and sum(t.qty for t in takes) == 100
    assert [(t.qty, t.price) for t in takes] == [(85, 92), (15, 93)]
    assert bal(d, "alice") == 0 and qty(d, "alice") == 0
    assert bal(d, "#insurance") == 785 and qty(d, "#insurance") == 100
    assert equity(d, "#insurance") == 10_385
    assert not of(evs, Deleveraged)


# ------------------------------------------------------------------ 2. binance fund first


def test_binance_fund_takes_over_instead_of_adl() -> None:
    """Notes §2 (a) (Binance ADL FAQ: "ADL is the final step taken only when the Insurance
    Fund cannot accept the bankrupt client's positions"; Insurance Fund: position notional
    capped at 100% of the fund). D = 785, index 93: E = 85 < MM 465. The only bid is
    100 @ 91, below the bankruptcy price 92.15, so the book step fills nothing. Fund 10 000
    >= notional 9 300: it takes 100 at value 9 215 and sells them @ 91 = 9 100: a loss of
    115, fund cash 9 885, flat. No ADL (before the fix: mm was deleveraged at 92)."""
    d = victim(cfg("binance", fund="10000"), "785")
    bid(d, "bidder", "100", "91")
    evs = d.index("93", symbol="X")
    assert not of(evs, Deleveraged)
    assert sum(t.value for t in of(evs, Takeover)) == -9215
    assert bal(d, "#insurance") == 9885 and qty(d, "#insurance") == 0
    assert bal(d, "alice") == 0 and qty(d, "bidder") == 100 and qty(d, "mm") == -100


def test_binance_adl_when_the_fund_is_too_small() -> None:
    """Notes §2 (b): fund 5 000 < notional 9 300 (100% cap), so the fund cannot take the
    position and ADL runs: mm (the only short) takes 100 at exactly 9 215 (85 @ 92 +
    15 @ 93); alice ends at 0, the fund is unchanged at 5 000."""
    d = victim(cfg("binance", fund="5000"), "785")
    bid(d, "bidder", "100", "91")
    evs = d.index("93", symbol="X")
    adl = of(evs, Deleveraged)
    assert not of(evs, Takeover)
    assert [(a.counterparty, a.qty, a.price) for a in adl] == [("mm", 85, 92), ("mm", 15, 93)]
    assert sum(a.value for a in adl) == -9215
    assert bal(d, "alice") == 0 and bal(d, "#insurance") == 5000 and qty(d, "mm") == 0


# ------------------------------------------------------------------ 3. dydx: ADL only at TNC < 0


def test_dydx_positive_equity_is_not_deleveraged_but_retried() -> None:
    """Notes §3 (dYdX v4 ``CanDeleverageSubaccount``: deleverage only with negative TNC;
    ``MaybeDeleverageSubaccount`` returns early otherwise). D = 1 000: Q = -9 000. No bids.
    index 94: TNC 400 < TMMR 470, the liquidation order (limit 93) fills nothing and TNC >= 0:
    no ADL, alice keeps 100 and stays queued (before the fix: deleveraged at once).
    index 89: TNC = -100 < 0: ADL at the bankruptcy value 8 900 - (-100) = 9 000; mm gives up
    its short, alice ends flat at Q = 0; the fund is unchanged."""
    d = victim(cfg("dydx"), "1000")
    evs = d.index("94", symbol="X")
    assert of(evs, LiquidationTriggered) and not of(evs, Deleveraged)
    assert qty(d, "alice") == 100 and bal(d, "alice") == -9000
    assert "alice" in d.ex.stuck
    evs = d.index("89", symbol="X")
    adl = of(evs, Deleveraged)
    assert [(a.counterparty, a.qty, a.value) for a in adl] == [("mm", 100, -9000)]
    assert bal(d, "alice") == 0 and qty(d, "alice") == 0 and qty(d, "mm") == 0
    assert bal(d, "#insurance") == 0


# ------------------------------------------------------------------ 4. dydx fillable rounding


def test_dydx_fillable_price_rounds_toward_the_oracle() -> None:
    """Notes §4 (dYdX ``ConvertFillablePriceToSubticks``: "round up for sells that close
    longs, and round down for buys that close shorts"). D = 1 000, index 94: TNC 400, TMMR
    470, ABR = 1 - 400/470 = 7/47, spread = 7/47 x 1.5 x 470 = 105, fillable =
    (9 400 - 105)/100 = 92.95: dYdX's limit is 93; the engine gave 92. With the only bid at
    92 dYdX does not fill (and, TNC >= 0, does not deleverage); the engine sold at 92."""
    d = victim(cfg("dydx"), "1000")
    spec = d.ex.instruments["X"].spec
    assert fillable_price(spec, 100, -100, 94, 400, 470, 1_000_000, 1_500_000) == 93
    # the mirror case: a short of 100 at 94 rounds down (94 x (1 + 0.075 x 7/47) = 95.05 -> 95)
    assert fillable_price(spec, -100, 100, 94, 400, 470, 1_000_000, 1_500_000) == 95
    bid(d, "bidder", "100", "92")
    evs = d.index("94", symbol="X")
    assert not of(evs, LiquidationFill) and qty(d, "alice") == 100


def test_dydx_fill_at_the_rounded_fillable_price() -> None:
    """Notes §4 worked example: bids 100 @ 93 and 100 @ 92; dYdX fills 100 @ 93, bankruptcy
    value 9 000, delta +300. Fee: dYdX floors 1.5% x 9 300 = 139.5 to 139; clearsim rounds
    charges up (rounding.py: never in a trader's favour), 140 — a one-atom difference kept
    on purpose. Alice: Q = -9 000 + 9 300 - 140 = 160, flat; the fund gets 140."""
    d = victim(cfg("dydx"), "1000")
    bid(d, "bidder", "100", "93")
    bid(d, "s1", "100", "92")
    evs = d.index("94", symbol="X")
    (f,) = of(evs, LiquidationFill)
    assert (f.qty, f.price, f.fee) == (100, 93, 140)
    assert bal(d, "alice") == 160 and bal(d, "#insurance") == 140


# ------------------------------------------------------------------ 10. threshold equality


def test_liquidate_at_equal_per_preset_and_in_the_index() -> None:
    """Notes §10: D = 785, index 97: E = 485 = MM 485 (margin ratio exactly 100%). Binance
    ("when your margin ratio reaches 100%") liquidates; dYdX (``IsLiquidatable``: MMR > TNC)
    does not. One tick either side: at 98 (E 585 > MM 490) neither, at 96 both. The
    liquidation index agrees: the highest mark that liquidates is 97 for binance, 96 for
    dydx."""
    for preset, at_equal in (("binance", True), ("dydx", False)):
        d = victim(cfg(preset, fund="100000"), "785")
        alice = d.ex.accounts["alice"]
        assert d.ex.liquidation_price(alice, "X") == (97 if at_equal else 96), preset
        assert not of(d.index("98", symbol="X"), LiquidationTriggered)
        trig = of(d.index("97", symbol="X"), LiquidationTriggered)
        assert bool(trig) == at_equal, preset
        if not at_equal:
            assert of(d.index("96", symbol="X"), LiquidationTriggered)


def test_liquidate_at_equal_can_be_set() -> None:
    d = victim(cfg(None, fund="100000", steps=["book"]), "785")
    d.index("97", symbol="X")
    assert not d.ex.accounts["alice"].flagged
    evs = d.ok("set", path="waterfall.liquidate_at_equal", value="true")
    assert of(evs, LiquidationTriggered)


# ------------------------------------------------------------------ 6. one position at a time


def test_multi_position_account_stops_once_healthy() -> None:
    """Notes §6 (dYdX ``GetPerpetualPositionToLiquidate``: one position per liquidation order,
    ``EnsureIsLiquidatable`` before each). Alice deposits 500, buys 10 A @ 100 and 10 B @ 100:
    Q = -1 500. index B 96, then A 60: E = -1 500 + 600 + 960 = 60 < MM 30 + 48 = 78.
    clearsim closes the position with the largest MM first (B, 48; dYdX's own order is the
    smallest id, or a pseudo-random one today: a clearsim choice). Fillable for B: ABR =
    1 - 60/78 = 3/13, spread 3/13 x 1.5 x 48 = 16.6, (960 - 16.6)/10 = 94.3 -> 95; the bid
    10 @ 96 fills. Fee ceil(1.5% x 960) = 15. Q = -1 500 + 960 - 15 = -555, E = -555 + 600 =
    45 >= MM 30: stop, A is kept (before the fix both were closed)."""
    c = cfg("dydx", symbols=("A", "B"))
    d = Driver(Exchange(Config.from_dict(c)))
    for who in ("mm", "bidder"):
        d.deposit(who, "1000000")
    d.deposit("alice", "500")
    for s in ("A", "B"):
        d.index("100", symbol=s)
        ok(d.order("mm", f"ask{s}", "sell", "10", "100", symbol=s))
        ok(d.order("alice", f"buy{s}", "buy", "10", "100", tif="ioc", symbol=s))
    bid(d, "bidder", "10", "96", symbol="B")
    bid(d, "bidder", "10", "59", symbol="A")
    d.index("96", symbol="B")
    evs = d.index("60", symbol="A")
    steps = of(evs, LiquidationStep)
    assert [s.symbol for s in steps] == ["B"]
    (f,) = of(evs, LiquidationFill)
    assert (f.symbol, f.qty, f.price, f.fee) == ("B", 10, 96, 15)
    assert qty(d, "alice", "A") == 10 and qty(d, "alice", "B") == 0
    assert bal(d, "alice") == -555 and equity(d, "alice") == 45
    assert not d.ex.accounts["alice"].flagged


# ------------------------------------------------------------------ 5. exact transfer values


def test_adl_moves_the_exact_bankruptcy_value_per_fill() -> None:
    """Notes §5 (dYdX ``GetBankruptcyPriceInQuoteQuantums``, per offsetting fill). Alice
    deposits 100 and buys 3 @ 100 (1 lot from each of s1, s2, s3): Q = -200. index 60:
    TNC = -20, TMMR = 9, no bids: ADL. Fill 1: 60 - floor(-20 x 3/9) = 60 + 7 = 67, then
    TNC -13, TMMR 6: 60 + 7 = 67, then TNC -6, TMMR 3: 66. 67 + 67 + 66 = 200: alice exactly
    flat at 0, no fund payment, no system debt. Before: one price floor(200/3) = 66 for all,
    198 in total, and 2 of system debt."""
    d = Driver(Exchange(Config.from_dict(cfg(None, steps=["adl"]))))
    for who in ("s1", "s2", "s3"):
        d.deposit(who, "1000")
    d.deposit("alice", "100")
    d.index("100", symbol="X")
    for who in ("s1", "s2", "s3"):
        ok(d.order(who, "a", "sell", "1", "100", symbol="X"))
    ok(d.order("alice", "b", "buy", "3", "100", tif="ioc", symbol="X"))
    evs = d.index("60", symbol="X")
    adl = of(evs, Deleveraged)
    assert [(a.counterparty, a.qty, a.price, a.value) for a in adl] == [
        ("s1", 1, 67, -67), ("s2", 1, 67, -67), ("s3", 1, 66, -66)
    ]
    assert bal(d, "alice") == 0 and not of(evs, SystemDebt)
    assert d.ex.state()["system_debt"] == "0"


# ------------------------------------------------------------------ 8. the fund's own equity


def test_bitmex_fund_below_zero_is_deleveraged() -> None:
    """Notes §8 (BitMEX: the liquidation engine "takes over the position including any
    remaining maintenance margin"; ADL once "the Insurance Fund is depleted for the given
    contract"). D = 785, fund 100. index 96: E 385 < MM 480, the fund takes 100 long for
    9 215 (85 @ 92 + 15 @ 93): fund cash -9 115; it rests a sell at 93 (92.15 rounded up,
    never below the value paid). index 92: fund equity -9 115 + 9 200 = 85, still >= 0.
    index 91: -15 < 0 — before the fix it stayed there, negative, with no ADL and no debt.
    Now the fund's order is cancelled and its position deleveraged against mm (the only
    short) at the fund's own bankruptcy value 9 100 + 15 = 9 115 (85 @ 91 + 15 @ 92): the
    fund ends flat at 0. (BitMEX closes at the *original* bankruptcy price 92.15 once the
    mark reaches it and the fund cannot aggress, restoring the fund to 100; clearsim waits
    until the fund's equity is gone: a simplification, see presets.py.)"""
    d = victim(cfg("bitmex", fund="100"), "785")
    evs = d.index("96", symbol="X")
    assert [(t.qty, t.price) for t in of(evs, Takeover)] == [(85, 92), (15, 93)]
    assert bal(d, "#insurance") == -9115
    (o,) = d.ex.instruments["X"].book.orders_of("#insurance")
    assert (o.side, o.price, o.qty) == ("sell", 93, 100)
    assert not of(d.index("92", symbol="X"), Deleveraged) and equity(d, "#insurance") == 85
    evs = d.index("91", symbol="X")
    adl = of(evs, Deleveraged)
    assert [(a.account, a.counterparty, a.qty, a.price) for a in adl] == [
        ("#insurance", "mm", 85, 91), ("#insurance", "mm", 15, 92)
    ]
    assert qty(d, "#insurance") == 0 and bal(d, "#insurance") == 0 and qty(d, "mm") == 0
    assert not d.ex.instruments["X"].book.orders_of("#insurance")
    assert not of(evs, SystemDebt) and not of(evs, LiquidationTriggered)


# ------------------------------------------------------------------ 7. clawback never overdraws


def clawback_session() -> Driver:
    """c (deposit 100) and d (deposit 10 000) each sell 10 @ 100 to b; index 90: c and d have
    a period profit of 100 each (E 200 and 10 100), b has lost 200. c withdraws 110 while no
    loss is pending (E 200 - 110 = 90 >= IM 90): E 90, period profit still 100."""
    c = cfg(None, steps=["book", "clawback"], clawback_period="settle_command")
    c["instruments"][0]["tiers"] = [
        {"max_notional": "1000000000", "imr_ppm": 100_000, "mmr_ppm": 50_000}
    ]
    d = Driver(Exchange(Config.from_dict(c)))
    for who, cash in (("b", "100000"), ("c", "100"), ("d", "10000")):
        d.deposit(who, cash)
    d.index("100", symbol="X")
    for who in ("c", "d"):
        ok(d.order(who, "a", "sell", "10", "100", symbol="X"))
        ok(d.order("b", f"b{who}", "buy", "10", "100", tif="ioc", symbol="X"))
    d.index("90", symbol="X")
    ok(d("withdraw", account="c", amount="110"))
    assert equity(d, "c") == 90
    return d


def pending_loss(d: Driver, amount: int) -> None:
    # A socialised loss of ``amount`` awaiting the settle command; the fee pool takes the
    # other side so cash stays conserved (as tests/test_waterfall.py does for the cap).
    d.ex.pool.balance -= amount
    d.ex.fees.balance += amount


def test_clawback_charge_is_capped_at_equity_and_re_spread() -> None:
    """Notes §7 (OKX "full account clawback" by "each user's entire account profit"; the rate
    is the loss over the period's total profit, DCoin's formula). Loss 190, profits c 100 +
    d 100 = 200: rate 95%, pro rata c 95, d 95. c holds only 90: before the fix it was
    charged 95 and left at E = -5 (the overdraw). Now c pays 90, its 5 of shortfall is
    re-spread to d (95 + 5 = 100, within d's profit): collected 190, nobody below zero."""
    from clearsim.events.types import Clawback

    d = clawback_session()
    pending_loss(d, 190)
    (cb,) = of(d.ok("settle_period"), Clawback)
    assert (cb.loss, cb.profit_base, cb.rate_ppm) == (190, 200, 950_000)
    assert dict((a, x) for a, x in cb.charges) == {"c": 90, "d": 100}
    assert cb.collected == 190 and equity(d, "c") == 0
    assert d.ex.state()["system_debt"] == "0"


def test_clawback_cap_with_nobody_left_is_system_debt() -> None:
    """Loss 300 >= profits 200: rate 100%, c 100 and d 100 nominally; c holds 90, d is at
    its 100% cap already: collected 190, the 110 left is recorded as system debt, and the
    event reports only what was collected."""
    from clearsim.events.types import Clawback

    d = clawback_session()
    pending_loss(d, 300)
    evs = d.ok("settle_period")
    (cb,) = of(evs, Clawback)
    assert cb.rate_ppm == 1_000_000 and dict((a, x) for a, x in cb.charges) == {"c": 90, "d": 100}
    assert cb.collected == 190 and equity(d, "c") == 0
    (debt,) = of(evs, SystemDebt)
    assert debt.amount == 110


def test_profit_is_locked_while_a_socialised_loss_is_pending() -> None:
    """Notes §7 (OKX: RPL "will be delivered to future account balance [at the weekly
    delivery], and can be used to open positions or withdraw"). With a loss pending, d
    (E 10 100, period profit 100) may withdraw only its non-profit money, 10 000: 10 001 is
    rejected ``profit_locked`` (E would be 99 < the 100 the clawback may claim; IM 90 alone
    would allow it); 10 000 is accepted. Before the fix both were accepted."""
    d = clawback_session()
    pending_loss(d, 50)
    assert d("withdraw", account="d", amount="10001")[-1].reason.startswith("profit_locked")
    ok(d("withdraw", account="d", amount="10000"))
    assert equity(d, "d") == 100


# ------------------------------------------------------------------ hyperliquid backstop


def test_hyperliquid_backstop_strictly_below_two_thirds_of_mm() -> None:
    """Notes §11 (Hyperliquid: "If the account equity drops below 2/3 of the maintenance
    margin without successful liquidation through the book, a backstop liquidation
    happens"). D = 720 (Q = -9 280), index 96: E = 320, MM = 480, 2/3 MM = 320: not below,
    so no backstop (the engine's 666 667 ppm gave 320e6 < 320 000 160: backstop). The book
    has no bids and E > 0 (no ADL): alice waits. D = 785, index 95: E = 285 < 316.67:
    the vault takes long 100 for exactly 9 215 (85 @ 92 + 15 @ 93), alice ends at 0."""
    d = victim(cfg("hyperliquid"), "720", others=("mm", "hlp"))
    evs = d.index("96", symbol="X")
    assert of(evs, LiquidationTriggered) and not of(evs, BackstopTransfer)
    assert qty(d, "alice") == 100 and "alice" in d.ex.stuck
    d = victim(cfg("hyperliquid"), "785", others=("mm", "hlp"))
    evs = d.index("95", symbol="X")
    bs = of(evs, BackstopTransfer)
    assert [(b.backstop, b.qty, b.price) for b in bs] == [("hlp", 85, 92), ("hlp", 15, 93)]
    assert sum(b.value for b in bs) == -9215 and bal(d, "alice") == 0 and qty(d, "hlp") == 100


def test_hyperliquid_backstop_that_does_not_exist_fails_loudly() -> None:
    """The preset names "hlp"; accounts exist once deposited to. A run whose backstop step
    is reached with no such account raises a ConfigError naming the key, instead of
    quietly handing the position to ADL."""
    d = victim(cfg("hyperliquid"), "785", others=("mm",))
    with pytest.raises(ConfigError, match=r"waterfall\.backstop_accounts: none of hlp"):
        d.index("95", symbol="X")


# ------------------------------------------------------------------ every preset, any session


def crash(gen: CommandGen) -> list[dict[str, Any]]:
    """A crash and a squeeze on every market (as tests/test_determinism.py ends its session)."""
    cmds = []
    for pct in (-40, 150, -60, 100, -30):
        for m in gen.markets.values():
            gen.ts += 1
            m.index = m.index * (100 + pct) // 100
            cmds.append({"type": "index_price", "ts": gen.ts, "symbol": m.symbol,
                         "price": m.price(m.index)})  # fmt: skip
    return cmds


@pytest.mark.parametrize("fund", ["0", "1000"])
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_no_silent_losses_under_any_preset(preset: str, fund: str) -> None:
    """A seeded random session (tests/test_conservation.py's generator: trading, index jumps
    that liquidate, funding, fee and tier changes, insurance deposits, settle commands) under
    every preset, rich and starved fund. After every command: the insurance fund's equity is
    never below zero, and no user account is left with negative equity unless the fund has
    nothing left to pay and the loss is recorded (system debt, or a socialised loss pending)
    — or the account is still queued for its waterfall (open positions, flagged)."""
    cfg_ = make_config(fund=fund)
    cfg_["exchange"]["preset"] = preset
    if preset == "hyperliquid":
        cfg_["waterfall"] = {"backstop_accounts": ["a0"]}  # a generated account, funded
    ex = Exchange(Config.from_dict(cfg_))
    gen = CommandGen(6, ts_step=3, fund_deposits=fund != "0")
    gen.live = lambda: [(o.account, o.order_id) for inst in ex.instruments.values()
                        for a in sorted(ex.accounts) for o in inst.book.orders_of(a)]  # fmt: skip
    rng = random.Random(7)
    liquidations = 0
    for cmd in [*gen.session(rng, 2500), *crash(gen)]:
        evs = ex.apply(cmd)
        liquidations += len(of(evs, LiquidationTriggered))
        fund_equity = ex.risk(ex.fund)[0]
        assert fund_equity >= 0, (preset, cmd, fund_equity)
        recorded = ex.debt.balance < 0 or ex.pool.balance < 0
        for a in ex.user_accounts():
            e = ex.risk(a)[0]
            if e >= 0 or (a.positions and a.flagged):
                continue
            assert fund_equity == 0 and recorded, (preset, a.id, e, cmd)
    assert liquidations > 0, preset  # the session reaches the waterfall
