"""The views speak in wallet-balance and equity terms (DESIGN §4, §6, §10; issue 9 items 9
and 11, issue 13), worked by hand.

- Wallet balance W = Q + Σ entry value (DESIGN §4): what Binance calls ``walletBalance``
  and BitMEX "Wallet Balance = Deposits - Withdrawals + Realised PNL"
  (fidelity-sources.md §9); equity E = Q + Σ q x mark is their ``marginBalance``.
- The fund is an account with equity (DESIGN §6, BitMEX's liquidation engine: "the
  liquidation engine takes over the position including any remaining maintenance margin,
  and then attempts to liquidate the position with a Limit order at the bankruptcy price",
  fidelity-sources.md §8): its marked equity, not its cash, is "the fund" in the state,
  the fund timeline, the story and the cascade totals; "ran dry" means equity <= 0.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from support import Driver

from clearsim.clearing import Config, Exchange
from clearsim.clearing.accounts import ENTRY_SCALE, INSURANCE, entry_value
from clearsim.clearing.steps import adl
from clearsim.events.codec import Header
from clearsim.events.log import LogReader, LogWriter
from clearsim.events.types import (
    Deposit,
    Event,
    InsuranceDeposit,
    LiquidationTriggered,
    MarkPrice,
    Settlement,
    Takeover,
)
from clearsim.replay import scenarios as scn
from clearsim.replay.cli.render import fund_csv, fund_json, fund_text, state_text, story_text
from clearsim.replay.projections.cascade import cascades
from clearsim.replay.projections.fund import fold_fund
from clearsim.replay.projections.ledger import fold_ledger, state_view
from clearsim.replay.projections.story import FundChange, Story
from clearsim.replay.runner import run

ROOT = Path(__file__).resolve().parents[1]


def one_instrument(**instrument: Any) -> dict[str, Any]:
    """Collateral decimals 0 unless overridden, tick 1, lot 1, IM 10% / MM 5%, no fees."""
    inst = {
        "symbol": "X",
        "tick_size": "1",
        "lot_size": "1",
        "tiers": [{"max_notional": "1000000000", "imr_ppm": 100_000, "mmr_ppm": 50_000}],
    }
    inst.update(instrument)
    return {
        "exchange": {"collateral": "USD", "collateral_decimals": 0, "mark": "oracle"},
        "insurance_fund": {"initial": "0"},
        "instruments": [inst],
    }


def both_views(d: Driver, tmp_path: Path) -> dict[str, Any]:
    """The live state, after checking the projection folded from the log says the same."""
    path = tmp_path / f"log-{d.ts}.jsonl"
    with LogWriter.create(path, Header.new(d.ex.config.to_dict(), 0)) as w:
        w.write_many(d.events)
    live = d.ex.state()
    assert state_view(fold_ledger(path)[0]) == live
    return live


# --------------------------------------------------------------------------- the wallet balance


def test_entry_value_is_the_one_adl_ranks_with() -> None:
    """``accounts.entry_value`` (a spec) and ``steps.adl.entry_value`` (an instrument) are the
    same function: W and the ADL ranking's PnL% read the same entry value."""
    for kind, decimals in (("linear_perpetual", 0), ("inverse_perpetual", 8)):
        cfg = one_instrument(kind=kind)
        cfg["exchange"]["collateral_decimals"] = decimals
        inst = Exchange(Config.from_dict(cfg)).instruments["X"]
        for q in (1, -1, 7, -3, 10_000):
            for entry_e6 in (1, 97_500_000, 102_857_142, 50_000 * ENTRY_SCALE):
                assert entry_value(inst.spec, q, entry_e6) == adl.entry_value(inst, q, entry_e6)


def test_wallet_balance_linear_by_hand(tmp_path: Path) -> None:
    """Deposit 100,000 and buy 2 at 50,000 (linear, contract value 1, no fees): the trade
    moves 2 x 50,000 = 100,000 of cash to the seller, so Q = 0; W = Q + entry value
    2 x 50,000 = 100,000; E = Q + 2 x mark = 100,000 at mark 50,000.
    Mark 49,000: E = 98,000 (unrealized -2,000), W still 100,000 (nothing realized).
    Sell 1 at 49,000: Q = 49,000; the position is 1 @ 50,000 (entry unchanged when it
    shrinks), W = 49,000 + 50,000 = 99,000 = 100,000 deposited + realized -1,000; E = 49,000
    + 49,000 = 98,000."""
    d = Driver(Exchange(Config.from_dict(one_instrument())))
    d.deposit("alice", "100000")
    d.deposit("mm", "10000000")
    d.index("50000", symbol="X")
    d.order("mm", "ask", "sell", "2", "50000", symbol="X")
    d.order("alice", "buy", "buy", "2", "50000", tif="ioc", symbol="X")
    a = both_views(d, tmp_path)["accounts"]["alice"]
    assert (a["quote_balance"], a["balance"], a["equity"]) == ("0", "100000", "100000")
    assert a["net_deposits"] == "100000"

    d.index("49000", symbol="X")
    a = both_views(d, tmp_path)["accounts"]["alice"]
    assert (a["quote_balance"], a["balance"], a["equity"]) == ("0", "100000", "98000")

    d.order("mm", "bid", "buy", "1", "49000", symbol="X")
    d.order("alice", "sell", "sell", "1", "49000", tif="ioc", symbol="X")
    st = both_views(d, tmp_path)
    a = st["accounts"]["alice"]
    assert (a["quote_balance"], a["balance"], a["equity"]) == ("49000", "99000", "98000")
    assert a["positions"]["X"]["qty"] == "1" and a["positions"]["X"]["entry_price"] == "50000"
    # mm, the other side: short 2 @ 50,000 then bought 1 back at 49,000 (realized +1,000)
    m = st["accounts"]["mm"]
    assert (m["quote_balance"], m["balance"]) == ("10051000", "10001000")
    text = state_text(st)
    assert "quote balance" in text and "99000" in text


def test_wallet_balance_inverse_by_hand(tmp_path: Path) -> None:
    """Inverse (collateral BTC, 8 decimals; 1 contract = 1 USD; value = -q / price BTC, the
    XBTUSD model). Deposit 1 BTC, buy 10,000 contracts at 50,000: the position is worth
    -10,000 / 50,000 = -0.2 BTC, so the buyer's cash grows by 0.2: Q = 1.2, W = Q + entry
    value (-0.2) = 1, E = 1 at mark 50,000.
    Mark 40,000: E = 1.2 - 10,000 / 40,000 = 0.95 (a long's inverse PnL
    10,000 x (1/50,000 - 1/40,000) = -0.05), W still 1.
    Sell 5,000 at 40,000: Q = 1.2 - 5,000 / 40,000 = 1.075; left 5,000 @ 50,000 (entry value
    -0.1), W = 0.975 = 1 + realized 5,000 x (1/50,000 - 1/40,000) = 1 - 0.025; E = 1.075 -
    5,000 / 40,000 = 0.95."""
    cfg = one_instrument(kind="inverse_perpetual")
    cfg["exchange"].update(collateral="BTC", collateral_decimals=8)
    d = Driver(Exchange(Config.from_dict(cfg)))
    d.deposit("alice", "1")
    d.deposit("mm", "100")
    d.index("50000", symbol="X")
    d.order("mm", "ask", "sell", "10000", "50000", symbol="X")
    d.order("alice", "buy", "buy", "10000", "50000", tif="ioc", symbol="X")
    a = both_views(d, tmp_path)["accounts"]["alice"]
    assert (a["quote_balance"], a["balance"], a["equity"]) == ("1.2", "1", "1")

    d.index("40000", symbol="X")
    a = both_views(d, tmp_path)["accounts"]["alice"]
    assert (a["quote_balance"], a["balance"], a["equity"]) == ("1.2", "1", "0.95")

    d.order("mm", "bid", "buy", "5000", "40000", symbol="X")
    d.order("alice", "sell", "sell", "5000", "40000", tif="ioc", symbol="X")
    a = both_views(d, tmp_path)["accounts"]["alice"]
    assert (a["quote_balance"], a["balance"], a["equity"]) == ("1.075", "0.975", "0.95")


# --------------------------------------------------------------------------- the fund's equity

CONFIG = {**one_instrument(), "insurance_fund": {"initial": "1000"}}


def takeover_stream() -> list[Event]:
    """A hand-written log (no engine): alice (100) buys 10 @ 100 from mm; mark 94: she is
    liquidated (E = -900 + 940 = 40 < MM 47) and the fund takes her long 10 over at her
    bankruptcy price 90, paying 900 (value -900: what alice received). The mark then falls
    to 92 and 85 with no cash moving; bob lifts the fund's offer, 10 @ 90; mark 80.

    fund   cash  position    equity
    start  1000  -           1000
    seq 7   100  10 @ 94     100 + 940 = 1040  (alice's remaining margin 40 comes with it)
    seq 8   100  10 @ 92     1020              (a "mark" row: cash unchanged)
    seq 9   100  10 @ 85      950              (the minimum)
    seq 10 1000  -           1000              (sold at 90: the fall from 94 to 90 cost 40)
    seq 11 1000  -           1000              (flat: the mark moves nothing, no row)

    Measured in cash, the fund would have "fallen" to 100 at seq 7 and never seen 950.
    """
    return [
        Deposit(1, 10, 0, "alice", 100),
        Deposit(2, 10, 0, "mm", 100_000),
        Deposit(3, 10, 0, "bob", 100_000),
        MarkPrice(4, 20, 0, "X", 100),
        Settlement(5, 20, 0, "X", 100, 10, "alice", "mm", 1000, 0, 0),
        MarkPrice(6, 30, 0, "X", 94),
        Takeover(7, 30, 6, "alice", "X", 10, 90, -900),
        MarkPrice(8, 40, 0, "X", 92),
        MarkPrice(9, 50, 0, "X", 85),
        Settlement(10, 60, 0, "X", 90, 10, "bob", INSURANCE, 900, 0, 0),
        MarkPrice(11, 70, 0, "X", 80),
    ]


@pytest.fixture(scope="module")
def hand_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("views") / "takeover.jsonl"
    with LogWriter.create(path, Header.new(CONFIG, 0)) as w:
        w.write_many(takeover_stream())
    return path


HAND_TIMELINE = [
    # (seq, equity, cash, amount, reason, positions (symbol, lots, valuation price))
    (7, 1040, 100, -900, "takeover", (("X", 10, 94),)),
    (8, 1020, 100, 0, "mark", (("X", 10, 92),)),
    (9, 950, 100, 0, "mark", (("X", 10, 85),)),
    (10, 1000, 1000, 900, "takeover trade (sell)", ()),
]


def test_fund_timeline_values_the_fund_at_the_marks(hand_log: Path) -> None:
    r = fold_fund(hand_log)
    got = [(x.seq, x.equity, x.cash, x.amount, x.reason, x.positions) for x in r.timeline]
    assert got == HAND_TIMELINE
    assert (r.initial, r.equity, r.cash, r.positions) == (1000, 1000, 1000, ())
    assert (r.low.low, r.low.low_seq, r.low.low_ts, r.low.dry_seq) == (950, 9, 50, 0)
    j = fund_json(r)
    assert j["min_equity"] == {"equity": "950", "seq": 9, "ts": 50} and j["ran_dry"] is None
    assert j["timeline"][2]["positions"] == {"X": {"qty": "10", "price": "85"}}
    assert fund_csv(r).splitlines()[3] == "9,50,950,100,0,mark,0,,X 10 @ 85"
    text = fund_text(r)
    assert "equity: start 1000, minimum 950 at seq 9 (ts 50), end 1000" in text
    assert "cash 1000; no positions" in text


def test_fund_in_the_state_is_its_equity(hand_log: Path) -> None:
    """After the mark of 85 (ts 50): insurance_fund = 100 + 10 x 85 = 950, its cash 100,
    its position long 10 at entry 90 (the bankruptcy price it took it at)."""
    st = state_view(fold_ledger(hand_log, time=50)[0])
    assert (st["insurance_fund"], st["insurance_fund_cash"]) == ("950", "100")
    assert st["insurance_fund_positions"] == {"X": {"qty": "10", "entry_price": "90"}}
    assert "insurance fund 950 (equity; cash 100; holds X 10 @ 90)" in state_text(st)
    # alice is flat: she got 900 for a position she paid 1000 for; W = Q = 100 - 1000 + 900
    assert st["accounts"]["alice"]["balance"] == "0" == st["accounts"]["alice"]["equity"]
    end = state_view(fold_ledger(hand_log)[0])
    assert (end["insurance_fund"], end["insurance_fund_cash"]) == ("1000", "1000")


def test_story_fund_is_its_equity(hand_log: Path) -> None:
    reader = LogReader(hand_log)
    st = Story(reader.header.config, keep_fund_timeline=True).feed_all(reader.events())
    f = st.fund
    assert (f.start, f.min_equity, f.min_seq, f.equity, f.cash) == (1000, 950, 9, 1000, 1000)
    assert f.empty_seq == 0 and f.position == {}
    assert f.timeline == [
        FundChange(7, 30, -900, 100, 1040, "takeover", "alice"),
        FundChange(8, 40, 0, 100, 1020, "mark", ""),
        FundChange(9, 50, 0, 100, 950, "mark", ""),
        FundChange(10, 60, 900, 1000, 1000, "trade", "bob"),
    ]
    assert "minimum 950 USD at seq 9" in story_text(st)


def test_ran_dry_is_equity_at_or_below_zero(tmp_path: Path) -> None:
    """A fund of 0 plus 100 deposited takes over a long 10 at 90 with the mark at 90 (so
    nothing comes with it): cash 100 - 900 = -800 but equity 100, not dry. Mark 80: equity
    -800 + 800 = 0: ran dry, with no cash moving at all."""
    cfg = one_instrument()
    path = tmp_path / "dry.jsonl"
    stream = [
        InsuranceDeposit(1, 5, 0, 100),
        Deposit(2, 10, 0, "alice", 100),
        Deposit(3, 10, 0, "mm", 100_000),
        MarkPrice(4, 20, 0, "X", 100),
        Settlement(5, 20, 0, "X", 100, 10, "alice", "mm", 1000, 0, 0),
        MarkPrice(6, 30, 0, "X", 90),
        LiquidationTriggered(7, 30, 6, "alice", 0, 45),
        Takeover(8, 30, 7, "alice", "X", 10, 90, -900),
        MarkPrice(9, 40, 0, "X", 80),
    ]
    with LogWriter.create(path, Header.new(cfg, 0)) as w:
        w.write_many(stream)
    r = fold_fund(path)
    assert [(x.seq, x.equity, x.cash) for x in r.timeline] == [
        (1, 100, 100), (8, 100, -800), (9, 0, -800)]  # fmt: skip
    assert (r.low.dry_seq, r.low.dry_ts, r.low.low) == (9, 40, 0)
    reader = LogReader(path)
    st = Story(reader.header.config).feed_all(reader.events())
    assert (st.fund.empty_seq, st.fund.min_equity) == (9, 0)
    assert "ran dry (equity at or below zero) at seq 9" in story_text(st)


# --------------------------------------------------------------------------- a real takeover


def bitmex_config() -> dict[str, Any]:
    """fixtures/fund_gap's exchange (tick 1, lot 1, 0 decimals, MM 5%, fund 1000) with
    BitMEX's waterfall: the book at no worse than bankruptcy, then the takeover, then ADL."""
    with (ROOT / "fixtures" / "fund_gap" / "config.toml").open("rb") as f:
        cfg = tomllib.load(f)
    cfg = copy.deepcopy(cfg)
    cfg["waterfall"] = {"steps": ["book", "takeover", "adl"], "price_limit": "bankruptcy"}
    return cfg


def test_takeover_run_fund_cash_stays_while_its_equity_falls(tmp_path: Path) -> None:
    """The engine, end to end. alice deposits 100 and buys 10 @ 100 (Q = -900). Index 94:
    E = -900 + 940 = 40 < MM 0.05 x 940 = 47, liquidated. Bankruptcy price -Q/q = 90; the
    book has no bid, so the fund takes the long 10 over at value 900 (cash 1000 - 900 =
    100) with alice's 40 of equity (equity 100 + 940 = 1040) and rests a sell 10 @ 90.
    Index 92 and 85: the fund's cash stays 100, its equity falls to 1020 and 950. bob buys
    10 @ 90 from it: cash 1000, flat, equity 1000. Index 80: nothing (the fund is flat)."""
    d = Driver(Exchange(Config.from_dict(bitmex_config())))
    d.deposit("mm", "1000000")
    d.deposit("bob", "1000000")
    d.deposit("alice", "100")
    d.index("100", symbol="X")
    d.order("mm", "ask", "sell", "10", "100", symbol="X")
    d.order("alice", "buy", "buy", "10", "100", tif="ioc", symbol="X")
    d.index("94", symbol="X")
    (tk,) = [e for e in d.events if isinstance(e, Takeover)]
    assert (tk.account, tk.qty, tk.price, tk.value) == ("alice", 10, 90, -900)
    marks: dict[str, dict[str, Any]] = {"94": both_views(d, tmp_path)}
    for px in ("92", "85"):
        d.index(px, symbol="X")
        marks[px] = both_views(d, tmp_path)
    for px, equity in (("94", "1040"), ("92", "1020"), ("85", "950")):
        st = marks[px]
        assert (st["insurance_fund"], st["insurance_fund_cash"]) == (equity, "100"), px
        assert st["insurance_fund_positions"] == {"X": {"qty": "10", "entry_price": "90"}}
    d.ok("order", account="bob", id="lift", symbol="X", side="buy", qty="10", price="90",
         tif="ioc")  # fmt: skip
    d.index("80", symbol="X")
    st = both_views(d, tmp_path)
    assert (st["insurance_fund"], st["insurance_fund_cash"]) == ("1000", "1000")
    assert st["insurance_fund_positions"] == {}

    path = tmp_path / "takeover.log"
    with LogWriter.create(path, Header.new(d.ex.config.to_dict(), 0)) as w:
        w.write_many(d.events)
    r = fold_fund(path)
    rows = [(x.equity, x.cash, x.amount, x.reason, x.positions) for x in r.timeline]
    assert rows == [
        (1040, 100, -900, "takeover", (("X", 10, 94),)),
        (1020, 100, 0, "mark", (("X", 10, 92),)),
        (950, 100, 0, "mark", (("X", 10, 85),)),
        (1000, 1000, 900, "takeover trade (sell)", ()),
    ]
    assert (r.low.low, r.equity, r.cash, r.low.dry_seq) == (950, 1000, 1000, 0)
    reader = LogReader(path)
    story = Story(reader.header.config).feed_all(reader.events())
    assert (story.fund.min_equity, story.fund.equity, story.fund.cash) == (950, 1000, 1000)
    assert story.takeover.count == 1 and story.fund.paid == 0


# --------------------------------------------------------------------------- one "fund paid"


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The log ``clearsim demo`` runs (the bundled crash scenario, its own seed)."""
    sc = scn.bundled("crash")
    path = tmp_path_factory.mktemp("demo") / "crash.log"
    run(sc.config, sc.commands(sc.seed), path, seed=sc.seed)
    return path


def test_story_and_cascade_agree_on_the_demos_largest_cascade(demo_log: Path) -> None:
    """Issue 13: the story's "the fund paid X and took in Y (equity A -> B)" for the largest
    cascade and ``clearsim cascade``'s totals for it are one definition (``fund_flows``,
    ``FundBook``), so the same numbers; and the fund's equity moved by exactly took in -
    paid over it (no takeover in the demo's waterfall)."""
    reader = LogReader(demo_log)
    story = Story(reader.header.config).feed_all(reader.events())
    big = story.cascades.largest()
    assert big is not None and big.fund_paid > 0
    (c,), _, fmt = cascades(demo_log, top=1)
    assert c.top == big.root
    t = c.totals
    assert t["fund_paid"] == fmt.money(big.fund_paid)
    assert t["fund_took_in"] == fmt.money(big.fund_took_in)
    assert t["fund_equity_before"] == fmt.money(big.fund_equity_before)
    assert t["fund_equity_after"] == fmt.money(big.fund_equity_after)
    assert big.fund_equity_after - big.fund_equity_before == big.fund_took_in - big.fund_paid
    # and the fund timeline's equity after the cascade is the same figure
    r = fold_fund(demo_log)
    after = [x.equity for x in r.timeline if x.seq <= big.last_seq][-1]
    assert after == big.fund_equity_after
    assert r.equity == story.fund.equity and r.low.low == story.fund.min_equity
    assert r.low.dry_seq == story.fund.empty_seq
