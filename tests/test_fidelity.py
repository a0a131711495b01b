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

from typing import Any

from support import Driver

from clearsim.clearing import Config, Exchange
from clearsim.clearing.bankruptcy import fillable_price
from clearsim.events.types import (
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
