"""Projections (DESIGN §8): folds of a hand-written event stream, with no engine.

The stream is built by hand from event classes and written with ``LogWriter`` (so it is a
log "another tool" wrote: nothing in it came from the exchange). Config: collateral
decimals 0, tick 1, lot 1, so atoms = units = ticks x lots; insurance fund 100.

seq ts  event                                         a     b     c    fund  fees pool debt
 1  10  deposit a 1000                              1000
 2  10  deposit b 1000                                    1000
 3  10  deposit c 500                                           500
 4  10  mark 100
 5  20  settle a buys 5 from b @100, fees 1+1        499  1499               2
 6  20  settle c buys 2 from b @110 (b short 7,
        entry (500+220)/7 = 102.857142)                   1719  280
 7  30  mark 80
 8  30  settle b buys 3 from a @78                   733  1485
 9  30  liq fill a: fund pays 6                      739               94
10  30  liq fill a: fee 2, surplus 1                 736               97
11  30  takeover of a's 2 long @80 (value -160)      896               -63 (fund long 2)
12  30  settle c buys 2 from #insurance @85,
        fees 1+1 (c long 4, entry 97.5)                         109   106    4
13  30  insurance deposit 50                                          156
14  30  insurance payment to b 6 (bankruptcy)             1491        150
15  30  ADL: b (short 4) vs c, 1 @90, b pays 90           1401  199
16  30  socialized loss b 20, period 1                    1421                   -20
17  30  clawback: loss 20, base 100, 15% -> c 15                184                -5
18  30  system debt b 5                                   1426                         -5
19  30  funding: b +3, c -3                               1429  181
20  30  withdraw a 96                                800
21  40  mark 90

Net deposits 1000+1000+500+100+50-96 = 2554 = 800+1429+181+150+4-5-5. At mark 90: b (short
3) equity 1429 - 270 = 1159, c (long 3) 181 + 270 = 451. Those cash figures are the quote
balances Q; the wallet balance W = Q + the positions' entry value (DESIGN §4, atoms floored):
a flat, W = Q = 800; b short 3 @ 102.857142, entry value floor(-308.571426) = -309, W = 1120;
c long 3 @ 97.5, entry value floor(292.5) = 292, W = 473.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_conservation import CommandGen, make_config

from clearsim.clearing import Config, Exchange
from clearsim.events.codec import CorruptLog, Header
from clearsim.events.log import LogReader, LogWriter
from clearsim.events.types import (
    Clawback,
    Deleveraged,
    Deposit,
    Event,
    Funding,
    InsuranceDeposit,
    InsurancePayment,
    LiquidationFill,
    MarkPrice,
    Settlement,
    SocializedLoss,
    SystemDebt,
    Takeover,
    Withdrawal,
)
from clearsim.replay.cli.render import fund_csv, fund_json
from clearsim.replay.projections.fund import FundFold, fold_fund
from clearsim.replay.projections.ledger import Ledger, fold_ledger, state_view

S = "BTC-USD"
INS = "#insurance"

CONFIG: dict[str, Any] = {
    "exchange": {"collateral": "USDT", "collateral_decimals": 0, "mark": "oracle"},
    "insurance_fund": {"initial": "100"},
    "instruments": [
        {
            "symbol": S,
            "tick_size": "1",
            "lot_size": "1",
            "tiers": [{"max_notional": "1000000", "imr_ppm": 100000, "mmr_ppm": 50000}],
        }
    ],
}


def stream() -> list[Event]:
    return [
        Deposit(1, 10, 0, "a", 1000),
        Deposit(2, 10, 0, "b", 1000),
        Deposit(3, 10, 0, "c", 500),
        MarkPrice(4, 10, 0, S, 100),
        Settlement(5, 20, 0, S, 100, 5, "a", "b", 500, 1, 1),
        Settlement(6, 20, 0, S, 110, 2, "c", "b", 220, 0, 0),
        MarkPrice(7, 30, 0, S, 80),
        Settlement(8, 30, 7, S, 78, 3, "b", "a", 234, 0, 0),
        LiquidationFill(9, 30, 8, "a", S, 3, 78, 80, -6, 0, 0, 6, 0),
        LiquidationFill(10, 30, 8, "a", S, 1, 82, 80, 3, 2, 1, 0, 0),
        Takeover(11, 30, 7, "a", S, 2, 80, -160),
        Settlement(12, 30, 11, S, 85, 2, "c", INS, 170, 1, 1),
        InsuranceDeposit(13, 30, 0, 50),
        InsurancePayment(14, 30, 7, "b", 6, "bankruptcy"),
        Deleveraged(15, 30, 7, "b", "c", S, 1, 90, 90, 1, "1.500000"),
        SocializedLoss(16, 30, 7, "b", 20, 1),
        Clawback(17, 30, 16, 1, 20, 100, 150000, 15, [["c", 15]]),
        SystemDebt(18, 30, 7, "b", 5, "uncovered"),
        Funding(19, 30, 0, S, 100, 90, [["b", 3], ["c", -3]]),
        Withdrawal(20, 30, 0, "a", 96),
        MarkPrice(21, 40, 0, S, 90),
    ]


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("proj") / "hand.jsonl"
    w = LogWriter.create(path, Header.new(CONFIG, 0))
    w.write_many(stream())
    w.close()
    return path


#: (seq, cash amount, cash after, equity after, reason, cause, account, positions after).
#: The takeover at seq 11 costs the fund 160 of cash for a long 2 worth 2 x 80 = 160 at the
#: mark: cash -63, equity still 97 (DESIGN §6: the fund is its equity, not its cash).
TIMELINE = [
    (9, -6, 94, 94, "shortfall paid", 8, "a", ()),
    (10, 2, 96, 96, "liquidation fee", 8, "a", ()),
    (10, 1, 97, 97, "surplus", 8, "a", ()),
    (11, -160, -63, 97, "takeover", 7, "a", ((S, 2, 80),)),
    (12, 170, 107, 107, "takeover trade (sell)", 11, "c", ()),
    (12, -1, 106, 106, "trading fee", 11, "#fees", ()),
    (13, 50, 156, 156, "deposit", 0, "", ()),
    (14, -6, 150, 150, "bankruptcy payment", 7, "b", ()),
]


def test_ledger_fold_hand_computed(log: Path) -> None:
    led, reader = fold_ledger(log)
    assert reader.torn is None and led.seq == 21 and led.ts == 40
    assert led.balances == {"a": 800, "b": 1429, "c": 181, INS: 150, "#fees": 4,
                            "#clawback": -5, "#debt": -5}  # fmt: skip
    assert sum(led.balances.values()) == 2554
    assert {a: {s: (p.qty, p.entry_e6) for s, p in b.items()} for a, b in led.positions.items()} \
        == {"a": {}, "b": {S: (-3, 102_857_142)}, "c": {S: (3, 97_500_000)}, INS: {}}  # fmt: skip
    # typed events fold the same
    led2 = Ledger(CONFIG)
    for ev in stream():
        led2.apply_event(ev)
    assert led2.to_dict() == led.to_dict()
    # and a snapshot round trip keeps everything
    again = Ledger.from_dict(CONFIG, json.loads(json.dumps(led.to_dict())))
    assert again.to_dict() == led.to_dict()


def test_state_view_hand_computed(log: Path) -> None:
    led, _ = fold_ledger(log)
    v = state_view(led)
    assert (v["seq"], v["insurance_fund"], v["system_debt"]) == (21, "150", "5")
    assert (v["socialized_pending"], v["fee_pool"]) == ("5", "4")
    acc = v["accounts"]
    assert set(acc) == {"a", "b", "c"}
    assert (acc["a"]["balance"], acc["a"]["equity"], acc["a"]["positions"]) == ("800", "800", {})
    assert (acc["b"]["balance"], acc["b"]["quote_balance"], acc["b"]["equity"]) == (
        "1120", "1429", "1159")  # fmt: skip
    assert (acc["c"]["balance"], acc["c"]["quote_balance"], acc["c"]["equity"]) == (
        "473", "181", "451")  # fmt: skip
    assert (acc["a"]["net_deposits"], acc["b"]["net_deposits"]) == ("904", "1000")
    assert v["insurance_fund_cash"] == "150" and v["insurance_fund_positions"] == {}
    assert acc["b"]["positions"][S]["qty"] == "-3"
    assert acc["b"]["positions"][S]["entry_price"] == "102.857142"
    assert acc["c"]["positions"][S]["entry_price"] == "97.5"
    # c long 3: liquidated below m with 181 + 3m < 5% x 3m, i.e. m < -63.5: never
    assert acc["c"]["positions"][S]["liquidation_price"] is None
    # b short 3: 1429 - 3m < 0.15m  <=>  m > 453.65..., so 454
    assert acc["b"]["positions"][S]["liquidation_price"] == "454"
    assert v["instruments"][S] == {"mark": "90", "index": None, "last_trade": "85"}


def test_ledger_at_time_and_seq(log: Path) -> None:
    led, _ = fold_ledger(log, time=20)
    assert led.seq == 6
    v = state_view(led)
    # a: Q = 1000 - 500 - 1 = 499, long 5 @ 100: W = 499 + 500 = 999 = E at mark 100
    a = v["accounts"]["a"]
    assert (a["quote_balance"], a["balance"], a["equity"]) == ("499", "999", "999")
    assert v["accounts"]["b"]["positions"][S]["qty"] == "-7"
    assert fold_ledger(log, time=9)[0].seq == 0


@pytest.mark.parametrize("verify", [True, False])
def test_fund_timeline_hand_computed(log: Path, verify: bool) -> None:
    r = fold_fund(log, verify=verify)
    assert (r.initial, r.equity, r.cash, r.last_seq, r.torn) == (100, 150, 150, 21, None)
    got = [
        (x.seq, x.amount, x.cash, x.equity, x.reason, x.cause, x.account, x.positions)
        for x in r.timeline
    ]
    assert got == TIMELINE
    assert r.positions == ()
    # The minimum is in equity terms: 94 after the shortfall at seq 9. The cash went to -63
    # at seq 11, but the fund held a position worth 160 then: it never ran dry.
    assert (r.low.start, r.low.low, r.low.low_seq, r.low.dry_seq) == (100, 94, 9, 0)
    (p,) = r.clawbacks
    assert (p.period, p.seq, p.loss, p.profit_base, p.rate_ppm, p.collected) == (
        1, 17, 20, 100, 150000, 15)  # fmt: skip
    assert p.losses == [(16, "b", 20)] and p.charges == [("c", 15)] and p.socialized == 20
    (adl,) = r.adl
    assert (adl.seq, adl.account, adl.counterparty, adl.qty, adl.price, adl.rank, adl.score) == (
        15, "b", "c", 1, 90, 1, "1.500000")  # fmt: skip
    # the same fold over typed events
    f = FundFold(CONFIG)
    for ev in stream():
        f.apply_event(ev)
    assert f.timeline == r.timeline and (f.cash, f.equity()) == (150, 150)


def test_fund_renderings(log: Path) -> None:
    r = fold_fund(log)
    j = fund_json(r)
    assert (j["equity"], j["cash"], j["positions"]) == ("150", "150", {})
    assert j["min_equity"] == {"equity": "94", "seq": 9, "ts": 30} and j["ran_dry"] is None
    assert j["timeline"][3] == {
        "seq": 11, "ts": 30, "equity": "97", "cash": "-63", "amount": "-160",
        "reason": "takeover", "cause": 7, "account": "a",
        "positions": {S: {"qty": "2", "price": "80"}},
    }  # fmt: skip
    assert j["clawbacks"][0]["charges"] == {"c": "15"}
    csv = fund_csv(r).splitlines()
    assert csv[0] == "seq,ts,equity,cash,amount,reason,cause,account,position"
    assert csv[1] == "9,30,94,94,-6,shortfall paid,8,a," and len(csv) == 9
    assert csv[4] == "11,30,97,-63,-160,takeover,7,a,BTC-USD 2 @ 80"


def test_fund_torn_tail_and_corruption(log: Path, tmp_path: Path) -> None:
    data = log.read_bytes()
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(data[:-10])
    r = fold_fund(torn)
    assert r.torn is not None and r.last_seq == 20 and r.equity == 150
    lines = data.split(b"\n")
    lines[13] = lines[13].replace(b'"amount":50', b'"amount":51')  # seq 13
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join(lines))
    with pytest.raises(CorruptLog) as e:
        fold_fund(bad)
    assert e.value.seq == 13


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearsim", *map(str, args)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_cli_fund_and_state_time(log: Path) -> None:
    r = _cli("fund", log, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["equity"] == "150"
    r = _cli("fund", log, "--csv")
    assert r.returncode == 0 and r.stdout.splitlines()[2] == "10,30,96,96,2,liquidation fee,8,a,"
    r = _cli("fund", log)
    assert r.returncode == 0, r.stderr
    assert "equity: start 100, minimum 94 at seq 9 (ts 30), end 150" in r.stdout
    r = _cli("state", log, "--time", "20", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accounts"]["a"]["quote_balance"] == "499"
    r = _cli("fund", log.with_name("missing.jsonl"))
    assert r.returncode == 2 and r.stderr.startswith("error:")


@pytest.mark.parametrize(
    "waterfall", ["default", "takeover", "clawback", "backstop", "preset:binance", "preset:bitmex"]
)
def test_projection_matches_the_engine(waterfall: str, tmp_path: Path) -> None:
    """A seeded random session under each waterfall (and two presets: binance liquidates at
    E <= MM, which the projected liquidation prices must honour too): the projected state
    equals the engine's ``state()`` and the fund fold ends at the fund's cash and equity."""
    import random

    preset = waterfall.removeprefix("preset:") if waterfall.startswith("preset:") else None
    wf = "default" if preset else waterfall
    cfg = make_config(waterfall=wf, fund="0" if wf != "takeover" and not preset else "1000")
    if preset:
        cfg["exchange"]["preset"] = preset
    ex = Exchange(Config.from_dict(cfg))
    gen = CommandGen(6)
    path = tmp_path / "s.jsonl"
    w = LogWriter.create(path, Header.new(ex.config.to_dict(), 0))
    for cmd in gen.session(random.Random(3), 1200):
        w.write_many(ex.apply(cmd))
    w.close()
    led, _ = fold_ledger(path)
    assert state_view(led) == ex.state()
    r = fold_fund(path)
    assert r.cash == ex.fund.balance and r.equity == ex.risk(ex.fund)[0]
    assert r.last_seq == ex.seq.last
    assert LogReader(path).verify() is None


def test_fund_deficit_written_off_to_system_debt() -> None:
    """``ledger.to_debt`` moves an account's negative balance to ``#debt`` and records a
    ``system_debt`` naming it; when that account is the fund, the fund's cash goes back to
    zero. Hand-worked: initial 100, a bankruptcy payment of 130 leaves -30, the write-off
    of 30 brings it to 0 (the report showed -0.000069 USDT here before the fold knew it)."""
    f = FundFold(CONFIG)
    f.apply({"seq": 1, "ts": 10, "cause": 0, "type": "insurance_payment", "account": "a",
             "amount": 130, "reason": "bankruptcy"})  # fmt: skip
    f.apply({"seq": 2, "ts": 10, "cause": 1, "type": "system_debt", "account": "#insurance",
             "amount": 30, "reason": "fund deficit"})  # fmt: skip
    assert f.cash == 0 and f.equity() == 0
    last = f.timeline[-1]
    assert (last.seq, last.amount, last.reason, last.account, last.cash) == (
        2, 30, "system debt", "#debt", 0)  # fmt: skip
    assert f.low.low == -30
