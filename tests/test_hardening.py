"""Promises kept at the edges (tracker issue 10): hostile commands through ``Exchange.apply``.

Each test reproduces one reported failure and pins the promised behaviour:

- item 3: a command that is not a well-formed command in time changes nothing — not the
  clock, not funding, not clawback periods — and its ``input`` is stamped with the current
  clock, so a typo with a nanosecond ``ts`` cannot brick the rest of a replay;
- item 4: values past 64 bits are refused at parse time, never crash the encoder;
- item 5: a command the log cannot record exactly (NaN, tuples, deep nesting, objects) is
  recorded as a bounded description and rejected, and the log re-executes byte for byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clearsim.clearing import Config, Exchange
from clearsim.events.codec import encode_event
from clearsim.events.rejects import code_of
from clearsim.events.types import Funding, Input, Rejected
from clearsim.replay.runner import run
from clearsim.replay.verify import verify

T0 = 1_700_000_000_000_000


def _config(funding_interval_s: int = 0) -> dict[str, Any]:
    return {
        "exchange": {"collateral": "USD", "collateral_decimals": 0},
        "instruments": [
            {
                "symbol": "X",
                "tick_size": "1",
                "lot_size": "1",
                "funding_interval_s": funding_interval_s,
                "tiers": [{"max_notional": "1000000", "imr_ppm": 100000, "mmr_ppm": 50000}],
            }
        ],
    }


def _rejected(events: list[Any]) -> str:
    assert len(events) == 2 and type(events[0]) is Input and type(events[1]) is Rejected
    return str(events[1].reason)


def test_a_typo_with_a_nanosecond_ts_does_not_move_the_clock() -> None:
    """Reported: a misspelt field with ts in ns became the clock; every later command was
    then 'ts goes backwards'. Now the rejected input is stamped with the current clock."""
    ex = Exchange.from_dict(_config())
    ex.apply({"type": "deposit", "ts": T0, "account": "a", "amount": "100"})
    bad = ex.apply({"type": "deposit", "ts": T0 * 1000, "acount": "a", "amount": "1"})
    assert code_of(_rejected(bad)) == "unknown_field"
    assert bad[0].ts == T0 and ex.ts == T0
    ok = ex.apply({"type": "deposit", "ts": T0 + 1, "account": "a", "amount": "1"})
    assert type(ok[-1]) is not Rejected
    assert ex.ts == T0 + 1


def test_a_rejected_shape_runs_no_scheduled_funding() -> None:
    """Funding every 60 s: a malformed command 10 minutes later pays nothing and leaves the
    schedule where it was; the next good command pays the funding that fell due."""
    ex = Exchange.from_dict(_config(funding_interval_s=60))
    ex.apply({"type": "index_price", "ts": T0, "symbol": "X", "price": "100"})
    for aid in ("a", "b"):
        ex.apply({"type": "deposit", "ts": T0, "account": aid, "amount": "1000"})
    ex.apply(
        {
            "type": "order",
            "ts": T0,
            "account": "a",
            "id": "s",
            "symbol": "X",
            "side": "sell",
            "qty": "1",
            "price": "100",
        }
    )
    ex.apply(
        {
            "type": "order",
            "ts": T0,
            "account": "b",
            "id": "b",
            "symbol": "X",
            "side": "buy",
            "qty": "1",
            "price": "100",
        }
    )
    before = {**ex.state(), "seq": 0}
    later = T0 + 600_000_000
    bad = ex.apply(
        {
            "type": "order",
            "ts": later,
            "account": "a",
            "id": "x",
            "symbol": "X",
            "side": "buy",
            "qty": "1",
            "price": "100",
            "colour": "red",
        }
    )
    _rejected(bad)
    assert not any(type(e) is Funding for e in bad)
    assert ex.ts == T0 and {**ex.state(), "seq": 0} == before
    good = ex.apply({"type": "index_price", "ts": later, "symbol": "X", "price": "100"})
    assert any(type(e) is Funding for e in good)


@pytest.mark.parametrize(
    "field, value",
    [("amount", "1" + "0" * 39), ("amount", "9223372036854775808")],
)
def test_values_past_64_bits_are_refused_not_crashed(field: str, value: str) -> None:
    ex = Exchange.from_dict(_config())
    events = ex.apply({"type": "deposit", "ts": T0, "account": "a", field: value})
    assert code_of(_rejected(events)) == "bad_amount"
    for e in events:
        encode_event(e)  # what the log writer does: must not raise


def test_a_price_past_64_bits_is_refused() -> None:
    ex = Exchange.from_dict(_config())
    ex.apply({"type": "deposit", "ts": T0, "account": "a", "amount": "100"})
    events = ex.apply({"type": "index_price", "ts": T0, "symbol": "X", "price": "1" + "0" * 39})
    assert code_of(_rejected(events)) == "off_grid"
    for e in events:
        encode_event(e)


def _deep(n: int) -> object:
    v: object = 1
    for _ in range(n):
        v = [v]
    return v


HOSTILE: list[object] = [
    {"type": "deposit", "ts": T0, "account": "a", "amount": float("nan")},
    {"type": "deposit", "ts": T0, "account": "a", "amount": ("1",)},
    {"type": "deposit", "ts": T0, "account": "a", "amount": "1", "x": _deep(260)},
    {"type": "deposit", "ts": T0, "account": "a", "amount": object()},
    {"type": "deposit", "ts": 10**40, "account": "a", "amount": "1"},
    {
        "type": "order",
        "ts": T0,
        "account": "a",
        "id": "o",
        "symbol": "\ud800",
        "side": "buy",
        "qty": "1",
        "price": "1",
    },
    ("not", "a", "dict"),
    float("inf"),
]


def test_unrecordable_commands_are_rejected_and_the_log_reexecutes(tmp_path: Path) -> None:
    """Reported: these crashed the encoder or gave logs `verify` called divergent."""
    cmds: list[object] = [{"type": "deposit", "ts": T0, "account": "a", "amount": "100"}]
    for h in HOSTILE:
        cmds.append(h)
        cmds.append({"type": "deposit", "ts": T0 + len(cmds), "account": "a", "amount": "1"})
    log = tmp_path / "hostile.log"
    ex, summary = run(Config.from_dict(_config()), cmds, log)
    assert summary.rejected == len(HOSTILE)
    assert summary.commands == len(cmds)
    res = verify(log)
    assert res.ok, (res.divergence, res.corrupt, res.conservation)
    assert ex.accounts["a"].balance == 100 + len(HOSTILE)


def test_an_unrecordable_command_changes_nothing() -> None:
    ex = Exchange.from_dict(_config())
    ex.apply({"type": "deposit", "ts": T0, "account": "a", "amount": "100"})
    before = ({**ex.state(), "seq": 0}, ex.ts, ex.seq.last)
    events = ex.apply({"type": "deposit", "ts": T0 + 5, "account": "a", "amount": float("nan")})
    why = _rejected(events)
    assert code_of(why) == "malformed" and "unrecordable" in why
    assert events[0].command == {"raw": events[0].command["raw"]}
    assert ({**ex.state(), "seq": 0}, ex.ts) == before[:2] and ex.seq.last == before[2] + 2


def _btc() -> dict[str, Any]:
    return {
        "exchange": {"collateral": "USDT", "collateral_decimals": 6},
        "instruments": [
            {
                "symbol": "BTC",
                "tick_size": "0.1",
                "lot_size": "0.001",
                "tiers": [{"max_notional": "10000000", "imr_ppm": 100000, "mmr_ppm": 50000}],
            }
        ],
    }


def _short_with_1000_equity() -> Exchange:
    """alice: deposit 1,000, short 0.1 BTC at 50,000 (IM 500, MM 250 at mark 50,000)."""
    ex = Exchange.from_dict(_btc())
    ex.apply({"type": "index_price", "ts": T0, "symbol": "BTC", "price": "50000"})
    for aid, amt in (("alice", "1000"), ("mm", "1000000")):
        ex.apply({"type": "deposit", "ts": T0, "account": aid, "amount": amt})
    ex.apply(
        {
            "type": "order",
            "ts": T0,
            "account": "mm",
            "id": "b",
            "symbol": "BTC",
            "side": "buy",
            "qty": "0.1",
            "price": "50000",
        }
    )
    ex.apply(
        {
            "type": "order",
            "ts": T0,
            "account": "alice",
            "id": "s",
            "symbol": "BTC",
            "side": "sell",
            "qty": "0.1",
            "price": "50000",
        }
    )
    ex.apply(
        {
            "type": "order",
            "ts": T0,
            "account": "mm",
            "id": "a",
            "symbol": "BTC",
            "side": "sell",
            "qty": "0.1",
            "price": "100000",
        }
    )
    return ex


def test_reduce_only_cannot_close_into_negative_equity() -> None:
    """Issue 10 item 1, the reporter's numbers: short 0.1 at 50,000 with 1,000 of equity; a
    reduce-only buy at 100,000 against the resting ask would realise 0.1 x 50,000 = 5,000 of
    loss, leaving 1,000 - 5,000 = -4,000. DESIGN §4: refused (it used to fill)."""
    ex = _short_with_1000_equity()
    eq_before = ex.risk(ex.accounts["alice"])[0]
    assert eq_before == 1000 * 10**6
    events = ex.apply(
        {
            "type": "order",
            "ts": T0 + 1,
            "account": "alice",
            "id": "c",
            "symbol": "BTC",
            "side": "buy",
            "qty": "0.1",
            "price": "100000",
            "reduce_only": True,
        }
    )
    assert code_of(_rejected(events)) == "reduce_only"
    assert ex.accounts["alice"].positions["BTC"].qty == -100
    assert ex.risk(ex.accounts["alice"])[0] == eq_before


def test_reduce_only_close_within_margin_is_allowed() -> None:
    """The same account closing at 59,000: loss 0.1 x 9,000 = 900, equity 100 >= MM 0 of the
    flat account: allowed, and it fills against an ask placed there."""
    ex = _short_with_1000_equity()
    ex.apply(
        {
            "type": "order",
            "ts": T0,
            "account": "mm",
            "id": "a2",
            "symbol": "BTC",
            "side": "sell",
            "qty": "0.1",
            "price": "59000",
        }
    )
    events = ex.apply(
        {
            "type": "order",
            "ts": T0 + 1,
            "account": "alice",
            "id": "c",
            "symbol": "BTC",
            "side": "buy",
            "qty": "0.1",
            "price": "59000",
            "reduce_only": True,
        }
    )
    assert type(events[-1]) is not Rejected
    assert "BTC" not in ex.accounts["alice"].positions
    assert ex.accounts["alice"].balance == 100 * 10**6


def test_reduce_only_amend_to_a_ruinous_price_is_refused() -> None:
    """A resting reduce-only bid at 40,000 amended up to 100,000 would close at -4,000."""
    ex = _short_with_1000_equity()
    ok = ex.apply(
        {
            "type": "order",
            "ts": T0 + 1,
            "account": "alice",
            "id": "c",
            "symbol": "BTC",
            "side": "buy",
            "qty": "0.1",
            "price": "40000",
            "reduce_only": True,
        }
    )
    assert type(ok[-1]) is not Rejected
    events = ex.apply(
        {"type": "amend", "ts": T0 + 2, "account": "alice", "id": "c", "price": "100000"}
    )
    assert code_of(_rejected(events)) == "reduce_only"


def test_fee_schedule_that_creates_money_is_refused_at_load_and_by_set() -> None:
    """Issue 10 item 2: maker -300 ppm with taker 100 ppm let two accounts wash-trade the fee
    pool below zero. Refused at config load, and by `set` mid-run."""
    from clearsim.clearing import ConfigError

    cfg = _btc()
    cfg["instruments"][0].update(maker_fee_ppm=-300, taker_fee_ppm=100)
    with pytest.raises(ConfigError, match="rebate of 300 ppm exceeds the taker fee of 100"):
        Config.from_dict(cfg)
    cfg["instruments"][0].update(maker_fee_ppm=-100, taker_fee_ppm=100)
    ex = Exchange.from_dict(cfg)
    events = ex.apply(
        {"type": "set", "ts": T0, "path": "instruments.BTC.maker_fee_ppm", "value": "-300"}
    )
    assert code_of(_rejected(events)) == "bad_param"
    assert ex.config.instruments[0].maker_fee_ppm == -100


@pytest.mark.parametrize("value", ["²", "٣", "3\n"])
def test_clawback_period_accepts_ascii_digits_only(value: str) -> None:
    """Issue 10 item 6: "²" passed isdigit() and crashed int(); "٣" was taken as 3 s."""
    from clearsim.clearing import ConfigError

    cfg = _config()
    cfg["waterfall"] = {"steps": ["book", "clawback"], "clawback_period": value}
    with pytest.raises(ConfigError, match="clawback_period"):
        Config.from_dict(cfg)
    cfg["waterfall"]["clawback_period"] = "immediate"
    ex = Exchange.from_dict(cfg)
    seq = ex.seq.last
    events = ex.apply(
        {"type": "set", "ts": T0, "path": "waterfall.clawback_period", "value": value}
    )
    assert code_of(_rejected(events)) == "bad_param"
    assert ex.seq.last == seq + 2


def test_a_liquidation_fills_maker_rebate_is_paid_only_from_the_fee_pool() -> None:
    """A liquidation order pays no trading fee, so its maker's rebate would come out of a
    fee pool that earned nothing on the fill. By hand (tick 1, lot 1, decimals 0, maker
    -100 ppm, taker +100 ppm, IM 10%, MM 5%):
    alice deposits 10,010 and buys 100 @ 1,000 from mm's ask: taker fee
    ceil(100,000 x 100e-6) = 10 to the pool, mm's rebate 10 out of it: pool 0.
    Index 905: equity 10,010 - 100,010 + 90,500 = 500 < MM 4,525, liquidated; the sell
    fills mm's bid 100 @ 905: the rebate would be ceil(-90,500 x 100e-6) = -9 from a pool
    of 0: paid 0 instead, and the pool never goes below zero."""
    from clearsim.events.types import Settlement

    cfg = _config()
    cfg["instruments"][0].update(maker_fee_ppm=-100, taker_fee_ppm=100)
    cfg["instruments"][0]["tiers"] = [
        {"max_notional": "100000000", "imr_ppm": 100000, "mmr_ppm": 50000}
    ]
    ex = Exchange.from_dict(cfg)
    ex.apply({"type": "index_price", "ts": T0, "symbol": "X", "price": "1000"})
    ex.apply({"type": "deposit", "ts": T0, "account": "mm", "amount": "1000000"})
    ex.apply({"type": "deposit", "ts": T0, "account": "alice", "amount": "10010"})
    ex.apply(
        {
            "type": "order",
            "ts": T0,
            "account": "mm",
            "id": "a",
            "symbol": "X",
            "side": "sell",
            "qty": "100",
            "price": "1000",
        }
    )
    ex.apply(
        {
            "type": "order",
            "ts": T0,
            "account": "alice",
            "id": "b",
            "symbol": "X",
            "side": "buy",
            "qty": "100",
            "price": "1000",
        }
    )
    assert ex.fees.balance == 0
    ex.apply(
        {
            "type": "order",
            "ts": T0,
            "account": "mm",
            "id": "bid",
            "symbol": "X",
            "side": "buy",
            "qty": "100",
            "price": "905",
        }
    )
    events = ex.apply({"type": "index_price", "ts": T0 + 1, "symbol": "X", "price": "905"})
    fills = [e for e in events if type(e) is Settlement]
    assert len(fills) == 1 and fills[0].seller == "alice" and fills[0].price == 905
    assert (fills[0].buyer_fee, fills[0].seller_fee) == (0, 0)
    assert ex.fees.balance == 0
