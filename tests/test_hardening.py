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
