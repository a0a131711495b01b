"""Command fuzzer (tracker issue 10, "Keep it held"): seeded hostile sessions, every command
checked, plus one minimal, named reproduction per distinct failure the fuzzer found.

The sessions (``test_fuzz_session``) run :mod:`fuzzgen`'s generator over every preset, every
mark policy and linear / inverse / future instruments, mixing valid traffic with hostile
input, and check after EVERY command (see :class:`fuzzgen.FuzzChecker`):

1. no exception escapes ``apply`` and it returns promptly;
2. conservation: all balances (system accounts included) sum to net deposits, positions to
   zero per instrument (and, for all-linear configs, ``test_conservation.Checker``'s whole
   per-event shadow ledger);
3. a rejected command (``[Input, Rejected]``, the Rejected caused by the Input) changed
   nothing: balances, positions, resting orders, marks / index, config, the clock ``ex.ts``
   and the funding / clawback schedule, and emitted nothing else;
4. an account's own order or amend at unchanged marks never takes its equity below zero
   (unless it already was), and no user account ends a command with equity < 0 that no
   liquidation, system debt or socialised loss recorded;
5. every event encodes (``clearsim.events.codec.encode_event``);
6. no ordinary trade creates money out of fees (the fee pool never pays out net).

A session reports every distinct kind of violation it met (with the first command that
showed it), not just the first. ``python bench/soak.py --minutes N`` runs the same sessions
for longer and prints a minimised reproduction for each kind.

The ``test_*`` functions after the sessions are the reductions: a config and a handful of
commands each, asserting the correct behaviour (DESIGN §3, §4, §6, §7, §10 and issue 10).
They fail on today's engine on purpose; they are the fixer's targets.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fuzzgen import KINDS, MARKS, PRESETS, Hang, _Deadline, run_session, setup_for, short

from clearsim import Exchange
from clearsim.events.codec import encode_event
from clearsim.events.types import (
    Event,
    Funding,
    Input,
    LiquidationTriggered,
    Rejected,
    Settlement,
)

T0 = 1_700_000_000_000_000
MAX_TS = 1 << 62
SESSION_COMMANDS = 500

# --------------------------------------------------------------------------- the sessions

#: every preset x every instrument kind, the mark policy rotating so each policy meets each
#: preset and each kind; two seeds for each.
SESSIONS = [
    (seed, preset, MARKS[(i + j + seed) % len(MARKS)], kind)
    for i, preset in enumerate(PRESETS)
    for j, kind in enumerate(KINDS)
    for seed in (101 + 10 * i + j, 911 + 10 * i + j)
]


@pytest.mark.parametrize(("seed", "preset", "mark", "kind"), SESSIONS)
def test_fuzz_session(seed: int, preset: str | None, mark: str, kind: str) -> None:
    setup = setup_for(seed, preset, mark, kind)
    res = run_session(setup, SESSION_COMMANDS)
    c = res.counts
    # the session really exercised the engine (so the checks bite)
    assert len(res.commands) > 50, res.commands[-1:]
    assert c.get("Rejected", 0) > 10, c
    assert c.get("ParamSet", 0) + c.get("Settlement", 0) > 5, c
    kinds = res.kinds()
    assert not kinds, (
        f"{len(kinds)} kind(s) of violation in session {setup} "
        f"({len(res.commands)} commands):\n"
        + "\n".join(f"  - {v}" for v in kinds.values())
        + f"\n(minimised: python bench/soak.py --minutes 0 --seed {seed} --preset {preset} "
        f"--mark {mark} --kind {kind} --commands {SESSION_COMMANDS})"
    )


# --------------------------------------------------------------------------- reductions

BTC: dict[str, Any] = {
    "symbol": "BTC-USD", "tick_size": "0.1", "lot_size": "0.001",
    "tiers": [{"max_notional": "50000", "imr_ppm": 100000, "mmr_ppm": 4000},
              {"max_notional": "250000", "imr_ppm": 200000, "mmr_ppm": 5000}],
}  # fmt: skip
ETH: dict[str, Any] = {
    "symbol": "ETH-USD", "tick_size": "0.01", "lot_size": "0.01",
    "tiers": [{"max_notional": "1000000", "imr_ppm": 100000, "mmr_ppm": 50000}],
}  # fmt: skip


def cfg(*instruments: dict[str, Any], **waterfall: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "exchange": {"collateral": "USDT", "collateral_decimals": 6, "mark": "oracle"},
        "insurance_fund": {"initial": "0"},
        "instruments": [copy.deepcopy(i) for i in (instruments or (BTC,))],
    }
    if waterfall:
        d["waterfall"] = waterfall
    return d


def run(ex: Exchange, cmds: list[dict[str, Any]]) -> list[Event]:
    out: list[Event] = []
    for c in cmds:
        out += ex.apply(c)
    return out


def rejected(events: list[Event]) -> bool:
    return any(type(e) is Rejected for e in events)


def equity(ex: Exchange, account: str) -> int:
    return ex.risk(ex.accounts[account])[0]


def snapshot(ex: Exchange) -> dict[str, Any]:
    view = ex.state()
    view.pop("seq")
    return {
        "state": view,
        "ts": ex.ts,
        "config": copy.deepcopy(ex.config.to_dict()),
        "balances": {a: x.balance for a, x in ex.accounts.items()},
        "positions": {a: {s: p.qty for s, p in x.positions.items()}
                      for a, x in ex.accounts.items()},
    }  # fmt: skip


def dep(ts: int, account: str, amount: str) -> dict[str, Any]:
    return {"type": "deposit", "ts": ts, "account": account, "amount": amount}


def idx(ts: int, price: str, symbol: str = "BTC-USD") -> dict[str, Any]:
    return {"type": "index_price", "ts": ts, "symbol": symbol, "price": price}


def order(ts: int, account: str, oid: str, side: str, qty: str, price: str | None = None,
          symbol: str = "BTC-USD", **kw: Any) -> dict[str, Any]:  # fmt: skip
    c = {"type": "order", "ts": ts, "account": account, "id": oid, "symbol": symbol,
         "side": side, "qty": qty, **kw}  # fmt: skip
    if price is not None:
        c["price"] = price
    return c


# -- reduce-only orders skip every margin check (clearing/exchange.py Exchange._order)


def test_reduce_only_cannot_drive_equity_negative() -> None:
    """DESIGN §4: a reduce-only order skips the IM check "but may not fill at a price that
    would take the account's equity below zero (or below MM)". Long 0.1 BTC at 50,000 with
    1,000 of cash, a stink bid at 10,000: a reduce-only market sell must not close into it
    (equity 1,000 -> -3,000 today, recorded by nothing)."""
    ex = Exchange.from_dict(cfg())
    run(ex, [
        dep(T0, "a", "1000"), dep(T0, "b", "100000"), idx(T0, "50000"),
        order(T0, "a", "x", "buy", "0.1", "50000"),
        order(T0, "b", "y", "sell", "0.1", "50000"),  # a is long 0.1
        order(T0, "b", "z", "buy", "0.1", "10000"),  # b's stink bid
    ])  # fmt: skip
    assert equity(ex, "a") == 1000 * 10**6
    ev = ex.apply(order(T0 + 1, "a", "w", "sell", "0.1", None, tif="ioc", reduce_only=True))
    e, mm, _ = ex.risk(ex.accounts["a"])
    assert e >= 0, f"a's own reduce-only close took its equity to {e}: {ev}"
    assert e >= mm, f"a's own reduce-only close left it liquidatable ({e} < MM {mm})"


def test_resting_reduce_only_cannot_fill_at_ruinous_price() -> None:
    """The same rule for a resting reduce-only order: short 0.1 BTC at 50,000 with 1,000 of
    cash, a reduce-only buy resting at 100,000 (10x the mark's distance to ruin) must be
    refused or never fill there; today another account's sell fills it and a's equity goes
    to -4,000, with no liquidation, system debt or socialised loss recording it."""
    ex = Exchange.from_dict(cfg())
    run(ex, [
        dep(T0, "a", "1000"), dep(T0, "b", "100000"), idx(T0, "50000"),
        order(T0, "a", "x", "sell", "0.1", "50000"),
        order(T0, "b", "y", "buy", "0.1", "50000"),  # a is short 0.1
        order(T0 + 1, "a", "r", "buy", "0.1", "100000", reduce_only=True),
        order(T0 + 2, "b", "s", "sell", "0.1", "100000"),
    ])  # fmt: skip
    e, _mm, _ = ex.risk(ex.accounts["a"])
    assert e >= 0, f"a's resting reduce-only order filled at a ruinous price: equity {e}"


# -- fee schedules that create money (clearing/config.py _instrument; clearing/params.py)


def test_maker_rebate_cannot_exceed_taker_fee() -> None:
    """A maker rebate larger than the taker fee pays every trade out of the fee pool: two
    accounts washing trades drain it below zero (money from nowhere). Expected: the ``set``
    that makes ``-maker_fee_ppm > taker_fee_ppm`` is rejected (as a config file with it
    should be), so every fill's fees sum to >= 0 and the pool never goes negative."""
    ex = Exchange.from_dict(cfg(dict(BTC, maker_fee_ppm=-100, taker_fee_ppm=500)))
    run(ex, [dep(T0, "a", "100000"), dep(T0, "b", "100000"), idx(T0, "50000")])
    run(ex, [
        {"type": "set", "ts": T0, "path": "instruments.BTC-USD.taker_fee_ppm", "value": "100"},
        {"type": "set", "ts": T0, "path": "instruments.BTC-USD.maker_fee_ppm", "value": "-300"},
    ])  # fmt: skip
    ev = run(ex, [
        order(T0 + 1, "a", "m1", "buy", "0.1", "50000"), order(T0 + 1, "b", "t1", "sell", "0.1"),
        order(T0 + 2, "b", "m2", "buy", "0.1", "50000"), order(T0 + 2, "a", "t2", "sell", "0.1"),
    ])  # fmt: skip
    for s in (e for e in ev if type(e) is Settlement):
        assert s.buyer_fee + s.seller_fee >= 0, f"a wash trade paid out fees: {s}"
    assert ex.fees.balance >= 0, f"fee pool drained to {ex.fees.balance}"


# -- rejected commands move the clock and run scheduled work (clearing/exchange.py apply)


def test_rejected_misspelt_command_with_future_ts_does_not_move_clock() -> None:
    """A command rejected at parse time (a misspelt field) with ts = MAX_TS moves ``ex.ts``
    today (``Exchange.apply``: ``self.ts = ts`` on the parse-reject path), so every later
    command is rejected "ts goes backwards": one typo bricks the exchange. Expected: the
    rejection changes nothing (it is stamped at the current clock, DESIGN §7 keeps the log's
    ts non-decreasing) and the next well-formed command is accepted."""
    ex = Exchange.from_dict(cfg())
    run(ex, [dep(T0, "a", "100")])
    before = snapshot(ex)
    ev = ex.apply({"type": "deposit", "ts": MAX_TS, "acount": "a", "amount": "1"})
    assert [type(e) for e in ev] == [Input, Rejected]
    assert snapshot(ex) == before, f"clock {before['ts']} -> {ex.ts}"
    later = ex.apply(dep(T0 + 1, "a", "1"))
    assert not rejected(later), later


def test_rejected_command_with_future_ts_does_not_move_clock() -> None:
    """The same for a well-formed command that fails a check (withdraw from an unknown
    account) 11 days ahead: ``Exchange.apply`` sets ``self.ts = ts`` before the handler can
    reject it."""
    ex = Exchange.from_dict(cfg())
    run(ex, [dep(T0, "a", "100")])
    before = snapshot(ex)
    ev = ex.apply({"type": "withdraw", "ts": T0 + 10**12, "account": "ghost", "amount": "1"})
    assert [type(e) for e in ev] == [Input, Rejected]
    assert snapshot(ex) == before, f"clock {before['ts']} -> {ex.ts}"
    assert not rejected(ex.apply(dep(T0 + 1, "a", "1")))


def test_rejected_command_runs_no_scheduled_funding() -> None:
    """A rejected command must change nothing, the funding schedule included; today
    ``Exchange.apply`` runs ``_run_scheduled_funding`` (and the clawback schedule) before
    the handler rejects, so a bad order whose ts passes a funding boundary pays a round.
    Expected: exactly ``[Input, Rejected]``; the round is paid by the next accepted command
    that reaches the boundary."""
    ex = Exchange.from_dict(cfg(dict(ETH, funding_interval_s=60)))
    run(ex, [
        dep(T0, "a", "10000"), dep(T0, "b", "10000"), idx(T0, "3000", "ETH-USD"),
        order(T0, "a", "x", "buy", "1", "3000", "ETH-USD"),
        order(T0, "b", "y", "sell", "1", "3000", "ETH-USD"),
    ])  # fmt: skip
    before = snapshot(ex)
    t = T0 + 120 * 10**6
    ev = ex.apply(order(t, "a", "bad", "buy", "1.001", "3000", "ETH-USD"))  # off the lot grid
    assert [type(e) for e in ev] == [Input, Rejected], [type(e).__name__ for e in ev]
    assert snapshot(ex) == before
    ev = ex.apply(dep(t, "a", "1"))
    assert any(type(e) is Funding for e in ev), "the due round must still be paid"


def test_far_future_ts_does_not_hang() -> None:
    """Scheduled funding pays one round per interval the clock passed
    (``Exchange._run_scheduled_funding``), so a command at ts = MAX_TS with a 60 s interval
    loops ~7.7e10 times, emitting an event each: ``apply`` never returns and memory grows
    without bound (the fuzzer's sessions died at 16 GB). Expected: bounded work (reject a
    jump beyond a horizon, or pay the missed rounds as one catch-up) within a second."""
    ex = Exchange.from_dict(cfg(dict(ETH, funding_interval_s=60)))
    run(ex, [dep(T0, "a", "10000"), idx(T0, "3000", "ETH-USD")])
    try:
        with _Deadline(1.0):
            ev = ex.apply(dep(MAX_TS, "a", "1"))
    except Hang:
        pytest.fail("apply did not return within 1 s for a command at ts = MAX_TS")
    assert len(ev) < 10_000, len(ev)


def test_liquidation_from_scheduled_funding_is_stamped_with_command_ts() -> None:
    """A scheduled funding round is stamped with the command's ts, but the liquidation it
    triggers is stamped with the previous clock: ``_run_scheduled_funding`` runs before
    ``self.ts = ts`` and ``after_balance_change`` triggers at ``self.ts``. The log's ts then
    goes backwards inside one command (DESIGN §7)."""
    ex = Exchange.from_dict(cfg(dict(ETH, funding_interval_s=60)))
    setup = run(ex, [
        dep(T0, "a", "300"), dep(T0, "b", "10000"), idx(T0, "3000", "ETH-USD"),
        order(T0, "a", "x", "buy", "1", "3000", "ETH-USD"),
        order(T0, "b", "y", "sell", "1", "3000", "ETH-USD"),
        idx(T0 + 1, "2842.11", "ETH-USD"),  # a: equity 142.11, MM 142.1055
    ])  # fmt: skip
    assert not any(type(e) is LiquidationTriggered for e in setup)
    t = T0 + 120 * 10**6
    ev = ex.apply(dep(t, "b", "1"))  # passes a boundary: a pays 100 ppm and falls below MM
    trig = [e for e in ev if type(e) is LiquidationTriggered]
    assert trig, ev
    stamps = [e.ts for e in ev]
    assert stamps == sorted(stamps), f"ts goes backwards inside one command: {stamps}"
    assert all(e.ts == t for e in trig), trig


# -- unicode digits in set values (clearing/config.py _waterfall, str.isdigit)


@pytest.mark.parametrize("value", ["²", "٣"])
def test_set_clawback_period_rejects_unicode_digits(value: str) -> None:
    """``str.isdigit`` is true for "²" and "٣": ``_waterfall`` then calls ``int()``, which
    raises ValueError (not ConfigError) for "²" straight out of ``apply``, and accepts "٣"
    as 3 s (a config value a TOML file of ASCII decimals never produces; the exchange's own
    schedule check uses ``isdigit`` too). Expected: both rejected, nothing changed."""
    ex = Exchange.from_dict(cfg())
    before = snapshot(ex)
    cmd = {"type": "set", "ts": T0, "path": "waterfall.clawback_period", "value": value}
    try:
        ev = ex.apply(cmd)
    except Exception as e:
        pytest.fail(f"{type(e).__name__} escaped apply for {cmd}: {e}")
    assert [type(e) for e in ev] == [Input, Rejected], ev
    assert snapshot(ex)["config"] == before["config"]


# -- values past 64 bits (clearing/margin.py; prices up to INT64_MAX ticks are accepted)


def test_events_at_extreme_index_price_encode() -> None:
    """An index price of 10^16 (10^17 ticks, accepted: the grid allows up to 2^63 ticks)
    values a 0.001 BTC short at -10^19 atoms: the ``LiquidationTriggered`` carrying that
    equity has an integer past 64 bits and ``encode_event`` raises, so the log cannot be
    written. Expected: either such a price is rejected (a bound that keeps every value,
    equity and notional in 64 bits) or every event encodes."""
    ex = Exchange.from_dict(cfg())
    ev = run(ex, [
        dep(T0, "a", "1000"), dep(T0, "b", "1000"), idx(T0, "50000"),
        order(T0, "a", "x", "sell", "0.001", "50000"),
        order(T0, "b", "y", "buy", "0.001", "50000"),
        idx(T0 + 1, "10000000000000000"),
    ])  # fmt: skip
    for e in ev:
        try:
            encode_event(e)
        except ValueError as x:
            pytest.fail(f"{x}: {short(e)}")


def test_account_below_maintenance_at_extreme_mark_is_triggered() -> None:
    """``margin.liquidation_price`` searches marks in [1, MAX_PRICE = 10^15] ticks, but the
    grid accepts prices to 2^63 ticks: a short whose liquidation price lies beyond 10^15 is
    indexed as "never liquidatable", and when the mark gets there it is below maintenance
    (equity < 0) and never triggered. Expected: the index price is rejected, or ``a`` is
    triggered (DESIGN §4: checked after every mark change)."""
    ex = Exchange.from_dict(cfg())
    run(ex, [
        dep(T0, "a", "9000000000000"), dep(T0, "b", "1000"), idx(T0, "50000"),
        order(T0, "a", "x", "sell", "0.004", "50000"),
        order(T0, "b", "y", "buy", "0.004", "50000"),  # a: liquidation price ~2.2e16 ticks
    ])  # fmt: skip
    ev = ex.apply(idx(T0 + 1, "10000000000000000"))  # 10^17 ticks
    if rejected(ev):
        return
    e, mm, _ = ex.risk(ex.accounts["a"])
    assert e >= mm or any(type(x) is LiquidationTriggered and x.account == "a" for x in ev), (
        f"a is below maintenance (equity {e} < MM {mm}) and was not triggered"
    )


# -- a valuation price the margin watch does not follow (clearing/exchange.py, instrument.py)


def test_last_trade_valuation_move_triggers_liquidation() -> None:
    """With ``mark = "mid"`` and a one-sided book there is no mark, and positions are valued
    at the last trade (``Instrument.price_or``). A trade far from the others moves that
    valuation price for every holder, but only ``_set_mark`` runs the margin watch: a short
    is left at equity -4,000, below maintenance, never triggered. Expected (DESIGN §4:
    checked after every mark change and fill): ``a`` is triggered in the same command."""
    ex = Exchange.from_dict(
        dict(cfg(), exchange={"collateral": "USDT", "collateral_decimals": 6, "mark": "mid"})
    )
    run(ex, [
        dep(T0, "a", "1000"), dep(T0, "b", "100000"), dep(T0, "c", "100000"),
        dep(T0, "d", "100000"),
        order(T0, "b", "x", "buy", "0.1", "50000"),
        order(T0, "a", "y", "sell", "0.1", None, tif="ioc"),  # a: short 0.1 at 50,000
        order(T0, "c", "z", "buy", "0.001", "100000"),  # c's own bad price (margin allows)
    ])  # fmt: skip
    ev = ex.apply(order(T0 + 1, "d", "w", "sell", "0.001", "90000"))  # trades at 100,000
    e, mm, _ = ex.risk(ex.accounts["a"])
    assert e >= mm or any(type(x) is LiquidationTriggered and x.account == "a" for x in ev), (
        f"a is valued below maintenance (equity {e} < MM {mm}) and was not triggered"
    )
