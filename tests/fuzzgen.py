"""The command fuzzer of tracker issue 10 ("Keep it held"): generator, checker, sessions.

Shared by ``tests/test_fuzz.py`` (short seeded sessions in CI) and ``bench/soak.py`` (the
same sessions for N minutes). Built on ``test_conservation``'s :class:`CommandGen`,
:func:`make_config` and :class:`Checker` (subclassed, not copied), adding:

- configs across every preset, every mark policy and linear / inverse / future instruments;
- hostile commands: misspelt fields or types with a huge or far-future ``ts``, NaN, inf,
  tuples, 300-deep nesting, Python objects, "1e5", "٣", "²", 10**39 (as int and as a
  decimal string), reserved account ids, stink bids and reduce-only closes into them,
  extreme index prices, ``set`` with unicode digits, fee schedules whose rebate beats the
  taker fee, and 64-bit-sized deposits; the historical market's traffic (``market_level``
  updates, crossing ones and hostile ones among them, and ``#market`` IOC trades);
- after EVERY command, the checks of issue 10 (see :class:`FuzzChecker`), each failure a
  :class:`Violation` with a stable ``kind``. A session keeps going after a violation (the
  shadow ledger is re-synchronised from the engine), so one run reports every distinct kind.

Only public behaviour is read: ``apply``, ``state()``, ``accounts[...].balance/positions``,
``instruments[...]``, ``risk``, ``seq.last``, ``ts``, ``config``; scheduled-work internals
(next funding / clawback time) are read with ``getattr`` so a refactor does not break this.
"""

from __future__ import annotations

import copy
import json
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from test_conservation import WATERFALLS, Checker, CommandGen, Market, Rand, make_config

from clearsim.events.codec import encode_event
from clearsim.events.types import (
    Event,
    Input,
    LiquidationFill,
    LiquidationTriggered,
    Rejected,
    Settlement,
    SocializedLoss,
    SystemDebt,
)

PRESETS = (None, "binance", "bitmex", "dydx", "okx-clawback", "hyperliquid")
MARKS = ("oracle", "median", "mid")
KINDS = ("linear", "inverse", "future")
SYSTEM_PREFIX = ("#", "@")
INT64_MAX = (1 << 63) - 1
MAX_TS = 1 << 62

# --------------------------------------------------------------------------- configs


def fuzz_config(
    preset: str | None,
    mark: str,
    kind: str,
    *,
    waterfall: str = "default",
    fund: str = "1000",
    funding_interval_s: int = 0,
    clawback_period: str | None = None,
) -> dict[str, Any]:
    """``make_config``'s two instruments under a preset and mark policy.

    ``kind``: ``linear`` (two linear perpetuals), ``inverse`` (BTC-USD an inverse perpetual
    of 1-USD contracts, ETH-USD linear) or ``future`` (ETH-USD a linear future).
    Without a preset, ``waterfall`` picks one of ``test_conservation.WATERFALLS``.
    """  # fmt: skip
    cfg = make_config(funding_interval_s=funding_interval_s, waterfall=waterfall, fund=fund)
    if preset is not None:
        cfg.pop("waterfall", None)
        cfg["exchange"]["preset"] = preset
    cfg["exchange"]["mark"] = mark
    btc, eth = cfg["instruments"]
    if kind == "inverse":
        btc.update(kind="inverse_perpetual", tick_size="0.5", lot_size="1")
    elif kind == "future":
        eth["kind"] = "linear_future"
    if clawback_period is not None:
        cfg.setdefault("waterfall", {})["clawback_period"] = clawback_period
    return cfg


def is_linear(cfg: dict[str, Any]) -> bool:
    return all(i.get("kind", "linear_perpetual") != "inverse_perpetual"
               for i in cfg["instruments"])  # fmt: skip


# --------------------------------------------------------------------------- generator


def _deep(n: int) -> list[Any]:
    x: list[Any] = []
    for _ in range(n - 1):
        x = [x]
    return x


class _Opaque:
    """A Python object no log can record (the Python API accepts anything)."""

    def __repr__(self) -> str:
        return "<opaque>"


#: Values that are not what any field wants. Built once (the deep list is costly to build).
HOSTILE_VALUES: list[object] = [
    float("nan"), float("inf"), float("-inf"), (1, 2), _deep(300), _Opaque(), "1e5", "٣",
    "²", "1" + "0" * 39, 10**39, -(10**39), -1, 0, "0", "-5", "0.0", True, None, b"1",
    {"$": 1}, "", " 1", "1_000", "0x10", "\u0661\u0660\u0660", "Infinity", "NaN",
    1.5, [1], "1" * 41,
]  # fmt: skip

#: ``ts`` values a misspelt or otherwise rejected command may carry.
FAR_TS = [MAX_TS, MAX_TS + 1, 10**39, 2**63, -1]


class FuzzGen(CommandGen):
    """``CommandGen`` plus the hostile traffic of issue 10 and inverse-instrument sizes."""

    def __init__(self, cfg: dict[str, Any], n_accounts: int = 6, ts_step: int = 3) -> None:
        super().__init__(n_accounts, ts_step=ts_step, fund_deposits=True)
        self.cfg = cfg
        self.markets = {}
        self.lot_ranges: dict[str, list[tuple[int, int]]] = {}
        for i in cfg["instruments"]:
            sym, tick, lot = i["symbol"], i["tick_size"], i["lot_size"]
            index = int(Decimal({"BTC-USD": "50000", "ETH-USD": "3000"}[sym]) / Decimal(tick))
            self.markets[sym] = Market(sym, tick, lot, index)
            if i.get("kind") == "inverse_perpetual":  # 1-USD contracts: 10^6..10^10 lots
                self.lot_ranges[sym] = [(10**6, 10**8), (10**8, 15 * 10**8),
                                        (15 * 10**8, 10**10)]  # fmt: skip
        self.symbols = list(self.markets)
        backstops = cfg.get("waterfall", {}).get("backstop_accounts", [])
        if cfg["exchange"].get("preset") == "hyperliquid":
            backstops = ["hlp"]
        for b in backstops:
            if b not in self.accounts:
                self.accounts.append(b)
        #: set by the session: the engine's clock, so that after a command that moved it
        #: (a bug this fuzzer looks for) the session keeps producing accepted commands
        self.clock: Callable[[], int] | None = None
        #: set by the session: (account, symbol, signed qty) of every open position
        self.holdings: Callable[[], list[tuple[str, str, int]]] | None = None
        #: set by the session: (symbol, side, price ticks, lots) of #market's resting orders
        self.market_orders: Callable[[], list[tuple[str, str, int, int]]] | None = None

    # -- pieces

    def next_ts(self, r: Rand) -> int:
        if self.clock is not None:
            self.ts = max(self.ts, self.clock())
        return super().next_ts(r)

    def lots(self, r: Rand, sym: str) -> int:
        ranges = self.lot_ranges.get(sym)
        if ranges is None:
            return super().lots(r, sym)
        lo, hi = r.choice(ranges)
        return r.randint(lo, hi)

    # -- hostile commands

    def hostile_value(self, r: Rand) -> object:
        """A well-formed command with one field replaced by a hostile value."""
        base = r.choice([self.deposit, self.withdraw, self.order, self.index_small,
                         self.funding, self.amend, self.insurance_deposit])(r)  # fmt: skip
        assert isinstance(base, dict)
        keys = [k for k in base if k != "type"]
        base[r.choice(keys)] = r.choice(HOSTILE_VALUES)
        return base

    def misspelt_future(self, r: Rand) -> dict[str, Any]:
        """A command the engine must reject, carrying a ts far ahead of (or beyond) the
        clock: a misspelt field or type, or a valid shape that fails a semantic check."""
        k = r.randint(0, 5)
        far = r.choice([self.ts + 10**12, self.ts + 365 * 86400 * 10**6, *FAR_TS])
        acct = r.choice(self.accounts)
        if k == 0:
            return {"type": "deposit", "ts": far, "acount": acct, "amount": "1"}
        if k == 1:
            return {"type": "depositt", "ts": far, "account": acct, "amount": "1"}
        if k == 2:
            return {"type": "withdraw", "ts": far, "account": "ghost", "amount": "1"}
        if k == 3:
            return {"type": "order", "ts": far, "account": acct, "id": "zz", "symbol": "DOGE-USD",
                    "side": "buy", "qty": "1", "price": "1"}  # fmt: skip
        if k == 4:
            return {"type": "index_price", "ts": far, "symbol": self.symbols[0], "price": "-1"}
        return {"type": "set", "ts": far, "path": "nope.path", "value": "1"}

    def reserved(self, r: Rand) -> dict[str, Any]:
        who = r.choice(["#insurance", "#fees", "#debt", "#clawback", "@hlp", "#market"])
        k = r.randint(0, 2)
        if k == 0:
            return {"type": "deposit", "ts": self.next_ts(r), "account": who, "amount": "1000"}
        if k == 1:
            return {"type": "withdraw", "ts": self.next_ts(r), "account": who, "amount": "1"}
        m = self.markets[r.choice(self.symbols)]
        return {"type": "order", "ts": self.next_ts(r), "account": who, "id": "r1",
                "symbol": m.symbol, "side": "buy", "qty": m.qty(1),
                "price": m.price(m.index)}  # fmt: skip

    def market_level(self, r: Rand) -> dict[str, Any]:
        """An L2 update of the historical book (clearing.market): ``#market``'s depth near
        the index on either side, so that some levels cross (stale ``#market`` levels are
        uncrossed, other accounts' orders refuse them), a third of them removals; and
        hostile ones: off either grid, unknown symbol, a hostile value in any field, a level
        whose value passes 64 bits, prices at the grid's ends."""
        resting = self.market_orders() if self.market_orders is not None else []
        if resting and r.randint(0, 2) == 0:
            # a level #market holds: shrink it (priority kept), remove it or grow it
            sym, side, ticks, held = r.choice(resting)
            m = self.markets[sym]
            lots = r.choice([0, max(0, held - r.randint(1, held)), held + self.lots(r, sym)])
        else:
            m = self.markets[r.choice(self.symbols)]
            side = r.choice(["buy", "sell"])
            off = r.randint(-8, 40)  # ticks away from the index on its own side; < 0 crosses
            ticks = max(1, m.index - off if side == "buy" else m.index + off)
            lots = r.choice([0, self.lots(r, m.symbol)])
        cmd: dict[str, Any] = {"type": "market_level", "ts": self.next_ts(r),
                               "symbol": m.symbol, "side": side, "price": m.price(ticks),
                               "qty": m.qty(lots)}  # fmt: skip
        k = r.randint(0, 29)
        if k == 0:
            cmd["price"] = m.price(ticks) + "3"  # off the tick grid
        elif k == 1:
            cmd["qty"] = m.qty(max(1, lots)) + "7"  # off the lot grid
        elif k == 2:
            cmd["symbol"] = "DOGE-USD"
        elif k == 3:
            cmd[r.choice(["ts", "symbol", "side", "price", "qty"])] = r.choice(HOSTILE_VALUES)
        elif k == 4:
            cmd["qty"] = m.qty(r.choice([INT64_MAX, 10**15, 10**12]))  # past 64 bits of value
        elif k == 5:
            cmd["price"] = m.price(r.choice([1, 10**15, 10**15 + 1]))
        elif k == 6:
            cmd["extra"] = 1
        return cmd

    def market_trade(self, r: Rand) -> dict[str, Any]:
        """A historical trade: an IOC of ``#market`` near the index (it eats ``#market``'s
        depth and the population's resting orders alike); sometimes a market order, a gtc,
        or a cancel-all of ``#market``'s orders."""
        m = self.markets[r.choice(self.symbols)]
        k = r.randint(0, 19)
        if k == 0:
            return {"type": "cancel_all", "ts": self.next_ts(r), "account": "#market"}
        self.n += 1
        cmd: dict[str, Any] = {"type": "order", "ts": self.next_ts(r), "account": "#market",
                               "id": f"t{self.n}", "symbol": m.symbol,
                               "side": r.choice(["buy", "sell"]),
                               "qty": m.qty(self.lots(r, m.symbol)),
                               "price": m.price(self.near(r, m)), "tif": "ioc"}  # fmt: skip
        if k == 1:
            del cmd["price"]
        elif k == 2:
            cmd["tif"] = "gtc"
            self.ids.append(("#market", cmd["id"]))
        elif k == 3:
            cmd["qty"] = m.qty(r.choice([INT64_MAX // 2, 10**15]))  # value past 64 bits
        return cmd

    def stink(self, r: Rand) -> dict[str, Any]:
        """A resting order far from the index: the liquidity a terrible close fills against.

        Buying far below or selling far above the mark costs no margin, so any account can
        rest one; rarely at an absurd price (an ask at 10^17 units)."""
        m = self.markets[r.choice(self.symbols)]
        self.n += 1
        side = r.choice(["buy", "sell"])
        if side == "buy":
            price = max(1, m.index * r.randint(5, 60) // 100)
        elif r.randint(0, 9) == 0:
            price = r.choice([10**17, INT64_MAX // 1000, INT64_MAX])
        else:
            price = m.index * r.randint(140, 400) // 100
        cmd = {"type": "order", "ts": self.next_ts(r), "account": r.choice(self.accounts),
               "id": f"s{self.n}", "symbol": m.symbol, "side": side,
               "qty": m.qty(self.lots(r, m.symbol)), "price": m.price(price),
               "tif": "gtc"}  # fmt: skip
        self.ids.append((cmd["account"], cmd["id"]))
        return cmd

    def reduce_only_close(self, r: Rand) -> dict[str, Any]:
        """A reduce-only close of an open position, as a market order or at a terrible limit."""
        held = self.holdings() if self.holdings is not None else []
        if not held:
            return self.order(r)
        acct, sym, q = r.choice(held)
        m = self.markets[sym]
        self.n += 1
        side = "sell" if q > 0 else "buy"
        cmd: dict[str, Any] = {"type": "order", "ts": self.next_ts(r), "account": acct,
                               "id": f"c{self.n}", "symbol": sym, "side": side,
                               "qty": m.qty(abs(q)), "reduce_only": True}  # fmt: skip
        k = r.randint(0, 3)
        if k == 0:
            cmd["tif"] = "ioc"
        elif k == 1:
            cmd["tif"] = r.choice(["ioc", "gtc"])
            bad = m.index // 10 if side == "sell" else m.index * 10
            cmd["price"] = m.price(max(1, bad))
        elif k == 2:
            cmd["qty"] = m.qty(max(1, abs(q) // 2))
        self.ids.append((acct, cmd["id"]))
        return cmd

    def index_extreme(self, r: Rand) -> dict[str, Any]:
        m = self.markets[r.choice(self.symbols)]
        ticks = r.choice([1, 2, 10**17, INT64_MAX, m.index * 50, max(1, m.index // 50)])
        cmd = {"type": "index_price", "ts": self.next_ts(r), "symbol": m.symbol,
               "price": m.price(ticks)}  # fmt: skip
        if ticks in (m.index * 50, max(1, m.index // 50)):
            m.index = ticks  # a real crash or melt-up: the session trades on from there
        return cmd

    def index_restore(self, r: Rand) -> dict[str, Any]:
        """Bring a market back near its start, so a session does not stay at an extreme."""
        m = self.markets[r.choice(self.symbols)]
        start = int(Decimal({"BTC-USD": "50000", "ETH-USD": "3000"}[m.symbol]) / m.tick)
        m.index = start
        return {"type": "index_price", "ts": self.next_ts(r), "symbol": m.symbol,
                "price": m.price(start)}  # fmt: skip

    def big_deposit(self, r: Rand) -> dict[str, Any]:
        """Amounts at the edge of 64 bits of atoms (9.2e12 units at 6 decimals)."""
        amt = r.choice(["9000000000000", "9223372036854.775807", "9223372036854.775808",
                        "4611686018427"])  # fmt: skip
        return {
            "type": r.choice(["deposit", "deposit", "insurance_deposit"]),
            "ts": self.next_ts(r),
            "account": r.choice(self.accounts),
            "amount": amt,
        }

    def set_hostile(self, r: Rand) -> dict[str, Any]:
        sym = r.choice(self.symbols)
        path, value = r.choice([
            ("waterfall.clawback_period", "²"), ("waterfall.clawback_period", "٣"),
            ("waterfall.clawback_period", "0"), ("waterfall.clawback_period", "-1"),
            ("waterfall.clawback_period", "30"), ("waterfall.clawback_period", "immediate"),
            ("waterfall.clawback_period", "settle_command"),
            ("waterfall.liquidation_fee_ppm", "٣"), ("waterfall.liquidation_fee_ppm", "1e5"),
            ("waterfall.liquidation_fee_ppm", "1" + "0" * 39),
            (f"instruments.{sym}.maker_fee_ppm", "-300"),
            (f"instruments.{sym}.taker_fee_ppm", "100"),
            (f"instruments.{sym}.maker_fee_ppm", "²"),
            (f"instruments.{sym}.band_ppm", r.choice(["0", "50000", "200000"])),
            (f"instruments.{sym}.funding_interval_s", r.choice(["0", "60", "3600"])),
            (f"instruments.{sym}.tiers", json.dumps(
                [{"max_notional": "1" + "0" * 39, "imr_ppm": 100000, "mmr_ppm": 4000}])),
            (f"instruments.{sym}.tiers", "[{\"max_notional\": 1e5}]"),
            ("exchange.mark", r.choice(["oracle", "median", "mid", "last"])),
            ("waterfall.partial", r.choice(["true", "false", "yes"])),
            ("waterfall.price_limit", r.choice(["bankruptcy", "fillable", "market"])),
            ("waterfall.surplus", r.choice(["trader", "insurance_fund"])),
            ("waterfall.steps", r.choice(['["book","adl"]', '["book","clawback"]',
                                           '["takeover","adl"]', '["book","book"]'])),
            ("exchange.collateral_decimals", "2"),
        ])  # fmt: skip
        return {"type": "set", "ts": self.next_ts(r), "path": path, "value": value}

    def weighted(self) -> list[tuple[Callable[[Rand], object], int]]:
        return [*super().weighted(),
                (self.hostile_value, 3), (self.misspelt_future, 1), (self.reserved, 1),
                (self.stink, 4), (self.reduce_only_close, 5), (self.index_extreme, 1),
                (self.index_restore, 2), (self.big_deposit, 1), (self.set_hostile, 2),
                (self.market_level, 8), (self.market_trade, 3)]  # fmt: skip


# --------------------------------------------------------------------------- checker

#: Seconds one ``apply`` may take before the fuzzer calls it a hang (normal: well under 10 ms).
APPLY_LIMIT_S = 1.0


class Hang(BaseException):
    """Raised into ``apply`` by the timer (a BaseException: the engine's ``except
    Exception`` must not swallow it)."""


def _on_alarm(signum: int, frame: object) -> None:
    raise Hang()


class _Deadline:
    """``with _Deadline(s):`` raises :class:`Hang` after ``s`` seconds (main thread, POSIX;
    elsewhere a no-op)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed = hasattr(signal, "setitimer") and (
            threading.current_thread() is threading.main_thread()
        )

    def __enter__(self) -> None:
        if self.armed:
            self.old = signal.signal(signal.SIGALRM, _on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)


@dataclass
class Violation:
    kind: str
    index: int  # of the command in the session (0-based)
    command: object
    message: str

    def __str__(self) -> str:
        return f"[{self.kind}] at command #{self.index} {short(self.command)}: {self.message}"


def short(v: object, limit: int = 300) -> str:
    try:
        text = repr(v)
    except Exception:  # pragma: no cover
        text = "<unrepresentable>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Label:
    """Stands in for a command in ``Checker`` messages without being compared to the
    ``Input`` record (an unrecordable command is recorded as a description, by design)."""

    __slots__ = ("cmd",)

    def __init__(self, cmd: object) -> None:
        self.cmd = cmd

    def __repr__(self) -> str:
        return short(self.cmd)


_LIQ_EVENTS = (LiquidationTriggered, SystemDebt, SocializedLoss, LiquidationFill)


class FuzzChecker(Checker):
    """``Checker`` plus the checks of issue 10, after every command:

    1. ``exception``: nothing escapes ``apply``; ``hang``: it returns within
       :data:`APPLY_LIMIT_S` (the session stops there);
    2. ``conservation``: balances (system accounts included) sum to net deposits and each
       instrument's positions to zero (plus, for all-linear configs, the whole per-event
       shadow ledger of ``Checker``: kinds ``checker:...``);
    3. ``rejected_*``: a command answered ``[Input, Rejected]`` (Rejected caused by the
       Input) changed nothing: balances, positions, resting orders, marks and index,
       config, the clock ``ex.ts`` and the funding / clawback schedule; and emitted nothing
       else (no funding round or clawback ran for it);
    4. ``own_order_negative_equity``: an account's own accepted order or amend, with no
       mark or index moving, never takes its equity below zero unless it already was;
       ``unrecorded_negative_equity``: no user account ends a command with equity < 0
       unless a liquidation, system debt or socialised loss recorded it;
    5. ``encode``: every event encodes with ``clearsim.events.codec.encode_event``;
    6. ``fee_creates_money``: no ordinary trade pays out more in fees than it collects,
       and the fee pool never goes negative.
    """

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__(cfg)
        self.full = is_linear(cfg)
        self.violations: list[Violation] = []
        self.checks = 0
        self.index = -1
        self.watch: set[str] = set()  # accounts a liquidation-type event recorded
        self.max_ts = -1
        self.restore_clock: int | None = None
        self.dead = False

    # -- views

    def holdings(self) -> list[tuple[str, str, int]]:
        return [(a, s, p.qty) for a in sorted(self.ex.accounts) if a[:1] not in SYSTEM_PREFIX
                for s, p in sorted(self.ex.accounts[a].positions.items())]  # fmt: skip

    def market_orders(self) -> list[tuple[str, str, int, int]]:
        return [(s, o.side, o.price, o.qty) for s, inst in sorted(self.ex.instruments.items())
                for o in inst.book.orders_of("#market")]  # fmt: skip

    def full_snapshot(self) -> dict[str, Any]:
        """``Checker.snapshot`` plus the state view, the clock, the config and the schedule."""
        snap = {"base": self.snapshot()}
        ex = self.ex
        view = ex.state()
        view.pop("seq", None)
        view.pop("ts", None)  # the clock is compared on its own
        snap["state"] = view
        snap["clock"] = ex.ts
        snap["config_dict"] = copy.deepcopy(ex.config.to_dict())
        snap["schedule"] = {
            "funding": {s: getattr(i, "next_funding", None) for s, i in ex.instruments.items()},
            "halts": {s: getattr(i, "halted_until", None) for s, i in ex.instruments.items()},
            "clawback": getattr(ex, "next_clawback", None),
            "period": getattr(ex, "period", None),
            "period_base": dict(getattr(ex, "period_base", {})),
        }
        return snap

    def _marks(self) -> dict[str, tuple[Any, Any]]:
        return {s: (i.index, i.mark) for s, i in self.ex.instruments.items()}

    # -- driving

    def fail(self, kind: str, cmd: object, message: str) -> None:
        self.violations.append(Violation(kind, self.index, cmd, message))

    def apply(self, cmd: object) -> list[Event]:  # type: ignore[override]
        self.index += 1
        ex = self.ex
        before = self.full_snapshot()
        marks0 = self._marks()
        actor = cmd.get("account") if isinstance(cmd, dict) else None
        eq0 = None
        if isinstance(actor, str) and actor in ex.accounts:
            eq0 = ex.risk(ex.accounts[actor])[0]
        n_before = len(self.violations)
        try:
            with _Deadline(APPLY_LIMIT_S):
                events = ex.apply(cmd)
        except Hang:
            self.fail(
                "hang",
                cmd,
                f"apply did not return within {APPLY_LIMIT_S} s "
                f"(clock {before['clock']}, seq {ex.seq.last})",
            )
            self.dead = True  # the engine stopped mid-command: nothing after this is sound
            return []
        except Exception as e:  # 1.
            self.fail("exception", cmd, f"{type(e).__name__}: {e}")
            self.resync()
            return []
        self.commands += 1
        if not self.full:
            for e in events:
                name = type(e).__name__
                self.counts[name] = self.counts.get(name, 0) + 1
        self._check_encode(cmd, events)  # 5.
        self._check_rejected(cmd, events, before)  # 3.
        self._check_equity(cmd, events, actor, eq0, marks0)  # 4.
        self._check_fees_create_no_money(cmd, events)  # 6.
        self._check_conservation(cmd, events)  # 2.
        if self.full:  # 2., the whole shadow ledger
            try:
                self.check_events(_Label(cmd), events)
                self.check_command(cmd, events, before["base"])
            except AssertionError as e:
                self.fail(_kind_of(str(e)), cmd, short(str(e), 600))
        self.checks += 7 + 2 * len(events)
        if self.restore_clock is not None:
            ex.ts = self.max_ts = self.last_ts = self.restore_clock
            self.restore_clock = None
        if len(self.violations) > n_before:
            self.resync()
        return events

    def resync(self) -> None:
        """After a violation, take the engine's word for the ledger so checking goes on."""
        ex = self.ex
        self.bal = {a: acct.balance for a, acct in ex.accounts.items()}
        self.pos = {s: {a: acct.positions[s].qty for a, acct in ex.accounts.items()
                        if s in acct.positions} for s in ex.instruments}  # fmt: skip
        self.nd = ex.net_deposits
        self.next_seq = ex.seq.last + 1
        self.last_ts = self.max_ts = max(self.max_ts, self.last_ts, ex.ts)
        self.under = {a for a, acct in ex.accounts.items()
                      if a[:1] not in SYSTEM_PREFIX and acct.positions
                      and ex.risk(acct)[0] < ex.risk(acct)[1]}  # fmt: skip

    # -- the checks

    def _check_encode(self, cmd: object, events: list[Event]) -> None:
        for e in events:
            try:
                encode_event(e)
            except Exception as x:
                self.fail("encode", cmd, f"{type(x).__name__}: {x} (event {short(e, 200)})")
                return

    def _check_rejected(self, cmd: object, events: list[Event], before: dict[str, Any]) -> None:
        rej = [e for e in events if type(e) is Rejected]
        if not rej or type(events[0]) is not Input or rej[0].cause != events[0].seq:
            return
        after = self.full_snapshot()
        extra = [type(e).__name__ for e in events[1:] if type(e) is not Rejected]
        if (
            any(e.split(":")[0] in _FELL_DUE for e in extra)
            and _money_refusal(rej[0].reason)
            and events[0].ts == after["clock"]
        ):
            # The one documented exception (clearing/admission.py): a round fell due at this
            # ts (paid whatever the command's fate), and the refusal depends on money after
            # it. Time passed; the command itself changed nothing else.
            return
        if after["clock"] != before["clock"]:
            self.fail("rejected_moved_clock", cmd,
                      f"ex.ts {before['clock']} -> {after['clock']} ({rej[0].reason})")  # fmt: skip
            # Undo the move (ex.ts is public), recorded above: otherwise one far-future ts
            # bricks the rest of the session and hides every later bug.
            self.restore_clock = before["clock"]
        if extra:
            self.fail("rejected_ran_scheduled_work", cmd,
                      f"a rejected command also emitted {extra} ({rej[0].reason})")  # fmt: skip
        changed = sorted(k for k in before if k != "clock" and before[k] != after[k])
        if changed:
            self.fail("rejected_changed_state", cmd, f"changed {changed} ({rej[0].reason})")

    def _check_equity(self, cmd: object, events: list[Event], actor: object, eq0: int | None,
                      marks0: dict[str, tuple[Any, Any]]) -> None:  # fmt: skip
        ex = self.ex
        for e in events:
            if isinstance(e, _LIQ_EVENTS):
                self.watch.add(e.account)
        rejected = any(type(e) is Rejected for e in events)
        if (not rejected and isinstance(cmd, dict) and cmd.get("type") in ("order", "amend")
                and isinstance(actor, str) and actor in ex.accounts and eq0 is not None
                and actor[:1] not in SYSTEM_PREFIX  # #market: exempt from margin
                and eq0 >= 0 and self._marks() == marks0):  # fmt: skip
            eq1 = ex.risk(ex.accounts[actor])[0]
            if eq1 < 0:
                ro = " reduce-only" if cmd.get("reduce_only") else ""
                self.fail("own_order_negative_equity", cmd,
                          f"{actor}'s own{ro} {cmd['type']} took its equity {eq0} -> {eq1} "
                          f"at unchanged marks")  # fmt: skip
        for a, acct in ex.accounts.items():
            if a[:1] in SYSTEM_PREFIX:
                continue
            equity, mm, _ = ex.risk(acct)
            if equity < 0 and a not in self.watch:
                self.fail("unrecorded_negative_equity", cmd,
                          f"{a} has equity {equity} and no liquidation / system debt / "
                          f"socialised loss recorded it")  # fmt: skip
                self.watch.add(a)  # report once per episode
            elif equity >= mm and equity >= 0:
                self.watch.discard(a)

    def _check_fees_create_no_money(self, cmd: object, events: list[Event]) -> None:
        liq_orders = {e.cause for e in events if type(e) is LiquidationFill}
        for e in events:
            if (type(e) is Settlement and e.seq not in liq_orders
                    and e.buyer_fee + e.seller_fee < 0):  # fmt: skip
                spec = self.ex.instruments[e.symbol].spec
                self.fail("fee_creates_money", cmd,
                          f"settlement seq {e.seq} pays out {-(e.buyer_fee + e.seller_fee)}"
                          f" net in fees (maker {spec.maker_fee_ppm} ppm, taker "
                          f"{spec.taker_fee_ppm} ppm)")  # fmt: skip
                return
        if self.ex.fees.balance < 0:
            self.fail("fee_creates_money", cmd, f"fee pool is negative: {self.ex.fees.balance}")

    def _check_conservation(self, cmd: object, events: list[Event]) -> None:
        ex = self.ex
        for e in events:
            if e.ts < self.max_ts:
                self.fail("ts_backwards", cmd, f"event {short(e, 200)} after ts {self.max_ts}")
                break
            self.max_ts = e.ts
        total = sum(a.balance for a in ex.accounts.values())
        if total != ex.net_deposits:
            self.fail("conservation", cmd,
                      f"balances sum to {total}, net deposits {ex.net_deposits}")  # fmt: skip
        for sym in ex.instruments:
            s = sum(a.positions[sym].qty for a in ex.accounts.values() if sym in a.positions)
            if s:
                self.fail("conservation", cmd, f"{sym} positions sum to {s}")


def _kind_of(message: str) -> str:
    """A stable kind for a ``Checker`` assertion: its leading words, numbers dropped."""
    words = []
    for w in message.strip("\"'(").replace(":", " ").split():
        if not w.replace("-", "").replace("'", "").isalpha():
            break
        words.append(w)
        if len(words) == 5:
            break
    return "checker:" + ("_".join(words) or "assertion")


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class Setup:
    """One session's configuration, derived from its seed."""

    seed: int
    preset: str | None
    mark: str
    kind: str
    waterfall: str = "default"
    fund: str = "1000"
    funding_interval_s: int = 0
    clawback_period: str | None = None

    def config(self) -> dict[str, Any]:
        return fuzz_config(self.preset, self.mark, self.kind, waterfall=self.waterfall,
                           fund=self.fund, funding_interval_s=self.funding_interval_s,
                           clawback_period=self.clawback_period)  # fmt: skip

    def __str__(self) -> str:
        return (f"seed={self.seed} preset={self.preset} mark={self.mark} kind={self.kind} "
                f"waterfall={self.waterfall} fund={self.fund} "
                f"funding_interval_s={self.funding_interval_s} "
                f"clawback_period={self.clawback_period}")  # fmt: skip


def setup_for(seed: int, preset: str | None = ..., mark: str | None = None,  # type: ignore[assignment]
              kind: str | None = None) -> Setup:  # fmt: skip
    """A session setup drawn from the seed; any of preset / mark / kind may be pinned."""
    r = random.Random(seed * 7919 + 1)
    p = r.choice(PRESETS) if preset is ... else preset
    wf = r.choice(sorted(WATERFALLS)) if p is None else "default"
    cp = None
    if p is None and wf == "default" and r.randint(0, 2) == 0:
        cp = r.choice(["30", "settle_command"])
    return Setup(seed=seed, preset=p, mark=mark or r.choice(MARKS), kind=kind or r.choice(KINDS),
                 waterfall=wf, fund=r.choice(["0", "1000", "1000"]),
                 funding_interval_s=r.choice([0, 0, 60]), clawback_period=cp)  # fmt: skip


def commands_for(setup: Setup, n: int, chk: FuzzChecker) -> Iterator[object]:
    """The session's commands, lazily (each sees the state its predecessors left)."""
    gen = FuzzGen(setup.config(), ts_step=r_step(setup))
    gen.live = chk.resting
    gen.holdings = chk.holdings
    gen.market_orders = chk.market_orders
    gen.clock = lambda: chk.ex.ts
    rng = random.Random(setup.seed)
    yield from gen.session(rng, n)


def r_step(setup: Setup) -> int:
    return 3_000_000 if setup.funding_interval_s or setup.clawback_period == "30" else 3


@dataclass
class Result:
    setup: Setup
    commands: list[object] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    checks: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def kinds(self) -> dict[str, Violation]:
        """The first violation of each kind."""
        out: dict[str, Violation] = {}
        for v in self.violations:
            out.setdefault(v.kind, v)
        return out


def run_session(setup: Setup, n: int) -> Result:
    t = time.perf_counter()
    chk = FuzzChecker(setup.config())
    res = Result(setup)
    for cmd in commands_for(setup, n, chk):
        res.commands.append(cmd)
        chk.apply(cmd)
        if chk.dead:
            break
    res.violations = chk.violations
    res.checks = chk.checks
    res.counts = chk.counts
    res.seconds = time.perf_counter() - t
    return res


def replay(setup: Setup, commands: list[object]) -> FuzzChecker:
    chk = FuzzChecker(setup.config())
    for cmd in commands:
        chk.apply(cmd)
        if chk.dead:
            break
    return chk


def reproduces(setup: Setup, commands: list[object], kind: str) -> bool:
    return any(v.kind == kind for v in replay(setup, commands).violations)


def shortest_prefix(setup: Setup, commands: list[object], kind: str) -> list[object]:
    """The shortest prefix of ``commands`` that still shows a ``kind`` violation (bisection:
    a prefix that shows it stays showing it when lengthened)."""
    lo, hi = 1, len(commands)
    if not reproduces(setup, commands, kind):
        return commands
    while lo < hi:
        mid = (lo + hi) // 2
        if reproduces(setup, commands[:mid], kind):
            hi = mid
        else:
            lo = mid + 1
    return commands[:lo]


def minimise(
    setup: Setup, commands: list[object], kind: str, budget_s: float = 20.0
) -> list[object]:
    """The shortest prefix, then greedy removal of chunks of commands (ddmin-like, bounded in
    time) while the violation kind still shows; the last command always stays."""
    cmds = shortest_prefix(setup, commands, kind)
    deadline = time.perf_counter() + budget_s
    chunk = max(1, len(cmds) // 2)
    while chunk >= 1 and time.perf_counter() < deadline:
        i = 0
        removed = False
        while i < len(cmds) - 1 and time.perf_counter() < deadline:
            trial = cmds[:i] + cmds[i + chunk :] if i + chunk < len(cmds) else None
            if trial and reproduces(setup, trial, kind):
                cmds = trial
                removed = True
            else:
                i += chunk
        if not removed:
            chunk //= 2
    return cmds


#: What falls due when the clock passes a boundary (it cannot be undone).
_FELL_DUE = frozenset({"Funding", "Clawback", "Resume", "SocializedLoss"})


def _money_refusal(why: str) -> bool:
    """A refusal that depends on money (margin), so on a funding round paid just before."""
    code = why.split(":")[0]
    return code in ("insufficient_margin", "profit_locked") or (
        code == "reduce_only" and "maintenance margin" in why
    )
