"""Conservation, no-op rejections and log ordering under random trading (DESIGN §3-§7).

A random session of deposits, withdrawals, orders of every kind, cancels, amends, index
moves (small, and big enough to push accounts below maintenance), funding, insurance deposits
and fee/tier changes is driven through ``Exchange.apply`` twice over: by a Hypothesis state
machine (shrinks a failure to a short command list) and by long seeded sessions (cheap
soaks), under several loss waterfalls. Both use one command generator and one
:class:`Checker`, which pins down:

1. after EVERY event, folded into a shadow ledger (balances from deposits, withdrawals,
   insurance deposits, settlements, funding and the waterfall's transfers; positions from
   settlements and the waterfall's position transfers): the sum of all balances, the
   insurance fund, fee pool, clawback pool and debt account included, equals net deposits,
   and each instrument's positions sum to zero. Each event is also checked against its own
   rule: a settlement matches its fill and charges the configured fees rounded up (none to a
   liquidation order); a funding round's payments sum to zero, payers pay
   ``ceil(|q| x mark x |F|)`` and receivers split it by largest remainder; a liquidation
   fill's delta, fee, surplus and fund payment add up; ADL never flips a counterparty; a
   liquidated account left flat owes nothing;
2. after every command: the shadow ledger equals the engine's balances and positions exactly,
   the engine's balances sum to ``ex.net_deposits``, positions sum to zero, no book is
   crossed, ``ex.state()`` reports the same money, and every account below maintenance
   margin has had a ``LiquidationTriggered`` since it was last above (nobody is missed);
3. a rejected command (``[Input, Rejected]``) changed nothing: balances, positions, resting
   orders, prices and config are as before (so did a command the book refused outright);
4. seqs are gapless and increasing, each event but an input has a cause that precedes it,
   and ``ts`` never decreases.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator, Sequence
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction
from math import ceil, floor
from typing import Any, Protocol, TypeVar

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from clearsim.clearing import Config, Exchange
from clearsim.events.types import (
    BackstopTransfer,
    Clawback,
    Deleveraged,
    Deposit,
    Event,
    Fill,
    Funding,
    Input,
    InsuranceDeposit,
    InsurancePayment,
    LiquidationFill,
    LiquidationFinished,
    LiquidationStep,
    LiquidationTriggered,
    OrderRejected,
    Rejected,
    Settlement,
    SocializedLoss,
    SystemDebt,
    Takeover,
    Withdrawal,
)

T0 = 1_700_000_000_000_000
INSURANCE = "#insurance"
FEES = "#fees"
CLAWBACK_POOL = "#clawback"
DEBT = "#debt"
MARKET = "#market"
PPM = 1_000_000

_T = TypeVar("_T")

#: Loss waterfalls the sessions run under (DESIGN §6): the default, a BitMEX-like takeover,
#: an OKX-like clawback on settle commands, and backstop + ADL + immediate clawback with
#: partial liquidation and the fillable price limit.
WATERFALLS: dict[str, dict[str, Any]] = {
    "default": {},
    "takeover": {"steps": ["takeover", "adl"], "surplus": "insurance_fund",
                 "liquidation_fee_ppm": 0},
    "clawback": {"steps": ["book", "clawback"], "price_limit": "market",
                 "surplus": "insurance_fund", "clawback_period": "settle_command"},
    "backstop": {"steps": ["book", "backstop", "adl", "clawback"], "price_limit": "fillable",
                 "backstop_accounts": ["a0"], "partial": True, "clawback_period": "immediate"},
}  # fmt: skip


def make_config(
    funding_interval_s: int = 0, waterfall: str = "default", fund: str = "1000"
) -> dict[str, Any]:
    """Two linear perpetuals with non-zero fees (maker rebate, taker charge) and 2-3 tiers.

    ``funding_interval_s`` applies to ETH-USD only (BTC-USD funds on commands only);
    ``fund`` is the insurance fund's initial balance.
    """
    cfg: dict[str, Any] = {
        "exchange": {"collateral": "USDT", "collateral_decimals": 6, "mark": "oracle"},
        "insurance_fund": {"initial": fund},
        "instruments": [
            {
                "symbol": "BTC-USD",
                "tick_size": "0.1",
                "lot_size": "0.001",
                "maker_fee_ppm": -100,
                "taker_fee_ppm": 500,
                "tiers": [
                    {"max_notional": "50000", "imr_ppm": 100000, "mmr_ppm": 4000},
                    {"max_notional": "250000", "imr_ppm": 200000, "mmr_ppm": 5000},
                    {"max_notional": "1000000", "imr_ppm": 250000, "mmr_ppm": 10000},
                ],
            },
            {
                "symbol": "ETH-USD",
                "tick_size": "0.01",
                "lot_size": "0.01",
                "maker_fee_ppm": -200,
                "taker_fee_ppm": 700,
                "funding_interval_s": funding_interval_s,
                "tiers": [
                    {"max_notional": "20000", "imr_ppm": 50000, "mmr_ppm": 10000},
                    {"max_notional": "500000", "imr_ppm": 100000, "mmr_ppm": 25000},
                ],
            },
        ],
    }
    if WATERFALLS[waterfall]:
        cfg["waterfall"] = copy.deepcopy(WATERFALLS[waterfall])
    return cfg


# --------------------------------------------------------------------------- generator


class Rand(Protocol):
    """What the generator needs from a source of choices (random.Random, or Hypothesis)."""

    def randint(self, a: int, b: int) -> int: ...

    def choice(self, seq: Sequence[_T]) -> _T: ...


class DrawRand:
    """A :class:`Rand` drawing from Hypothesis' ``st.data()``, so failures shrink."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def randint(self, a: int, b: int) -> int:
        return self.data.draw(st.integers(a, b))

    def choice(self, seq: Sequence[_T]) -> _T:
        return self.data.draw(st.sampled_from(seq))


class Market:
    """The generator's view of one instrument: its grid and a moving index (in ticks)."""

    def __init__(self, symbol: str, tick: str, lot: str, index: int) -> None:
        self.symbol = symbol
        self.tick = Decimal(tick)
        self.lot = Decimal(lot)
        self.index = index

    def price(self, ticks: int) -> str:
        return format(ticks * self.tick, "f")

    def qty(self, lots: int) -> str:
        return format(lots * self.lot, "f")


_TIER_SETS = [
    # tighter: maintenance up to 2-3%, so a raise pushes leveraged accounts under
    [
        {"max_notional": "50000", "imr_ppm": 100000, "mmr_ppm": 30000},
        {"max_notional": "250000", "imr_ppm": 200000, "mmr_ppm": 40000},
        {"max_notional": "1000000", "imr_ppm": 250000, "mmr_ppm": 50000},
    ],
    # the original
    [
        {"max_notional": "50000", "imr_ppm": 100000, "mmr_ppm": 4000},
        {"max_notional": "250000", "imr_ppm": 200000, "mmr_ppm": 5000},
        {"max_notional": "1000000", "imr_ppm": 250000, "mmr_ppm": 10000},
    ],
]

MALFORMED: list[object] = [
    "this is not json",
    [1, 2, 3],
    42,
    None,
    {},
    {"type": "teleport", "ts": T0},
    {"type": "deposit"},
    {"type": "deposit", "ts": "soon", "account": "a0", "amount": "1"},
    {"type": "deposit", "ts": T0, "account": "a0", "amount": 1.5},
    {"type": "deposit", "ts": T0, "account": "#insurance", "amount": "1"},
    {"type": "withdraw", "ts": T0, "account": "a0", "amount": "1", "to": "elsewhere"},
    {"type": "order", "ts": T0, "account": "a0", "id": "p", "symbol": "BTC-USD",
     "side": "buy", "qty": "1", "tif": "post_only"},
    {"type": "amend", "ts": T0, "account": "a0", "id": "o1"},
    {"type": "order", "ts": T0, "account": "a0", "id": "bad id!", "symbol": "BTC-USD",
     "side": "buy", "qty": "1", "price": "50000"},
]  # fmt: skip


class CommandGen:
    """Random DESIGN §10 commands over a few accounts, with prices near a moving index.

    Each method draws one command from a :class:`Rand`; a few percent of them are bad on
    purpose (off-grid, negative, unknown symbol or account, ts going backwards, ...).
    """

    def __init__(self, n_accounts: int, ts_step: int = 3, fund_deposits: bool = True) -> None:
        self.accounts = [f"a{i}" for i in range(n_accounts)]
        self.fund_deposits = fund_deposits
        self.markets = {
            "BTC-USD": Market("BTC-USD", "0.1", "0.001", 500_000),
            "ETH-USD": Market("ETH-USD", "0.01", "0.01", 300_000),
        }
        self.symbols = list(self.markets)
        self.ts = T0
        self.ts_step = ts_step
        self.n = 0
        self.ids: list[tuple[str, str]] = []  # (account, order id) ever submitted
        #: optional view of the orders resting now, so cancels and amends mostly hit one
        self.live: Callable[[], list[tuple[str, str]]] | None = None

    # -- pieces

    def next_ts(self, r: Rand) -> int:
        if r.randint(0, 99) < 2:
            return self.ts - r.randint(1, 1000)  # backwards: rejected, clock unchanged
        self.ts += r.randint(0, self.ts_step)
        return self.ts

    def amount(self, r: Rand) -> str:
        k = r.randint(0, 99)
        if k < 3:
            return r.choice(["-5", "0", "1.0000001", "abc", "0.000000"])  # rejected
        whole = r.choice([0, 1, 10, 250, 1000, 5000, 20000, 100000, 400000])
        whole += r.randint(0, 999)
        if k < 30:
            return f"{whole}.{r.randint(0, 999_999):06d}"
        return str(whole)

    def lots(self, r: Rand, sym: str) -> int:
        if sym == "BTC-USD":
            lo, hi = r.choice([(1, 50), (50, 600), (600, 4000)])
        else:
            lo, hi = r.choice([(1, 100), (100, 1500), (1500, 20000)])
        return r.randint(lo, hi)

    def near(self, r: Rand, m: Market) -> int:
        return max(1, m.index + r.randint(-12, 12))

    def pick_order(self, r: Rand) -> tuple[str, str]:
        k = r.randint(0, 99)
        if not self.ids or k < 5:
            return r.choice(self.accounts), "o999999"
        live = self.live() if self.live is not None else []
        if live and k < 85:
            return r.choice(live)
        return r.choice(self.ids[-60:])

    # -- commands

    def opening(self, r: Rand) -> list[dict[str, Any]]:
        cmds: list[dict[str, Any]] = []
        for a in self.accounts:
            amt = r.choice(["8000", "20000", "60000", "250000"])
            cmds.append({"type": "deposit", "ts": self.ts, "account": a, "amount": amt})
        for m in self.markets.values():
            cmds.append({"type": "index_price", "ts": self.ts, "symbol": m.symbol,
                         "price": m.price(m.index)})  # fmt: skip
        return cmds

    def deposit(self, r: Rand) -> dict[str, Any]:
        return {"type": "deposit", "ts": self.next_ts(r), "account": r.choice(self.accounts),
                "amount": self.amount(r)}  # fmt: skip

    def withdraw(self, r: Rand) -> dict[str, Any]:
        acct = r.choice([*self.accounts, "ghost"])
        return {"type": "withdraw", "ts": self.next_ts(r), "account": acct,
                "amount": self.amount(r)}  # fmt: skip

    def insurance_deposit(self, r: Rand) -> dict[str, Any]:
        return {"type": "insurance_deposit", "ts": self.next_ts(r), "amount": self.amount(r)}

    def order(self, r: Rand) -> dict[str, Any]:
        sym = r.choice(self.symbols)
        m = self.markets[sym]
        acct = r.choice(self.accounts)
        self.n += 1
        oid = f"o{self.n}"
        lots = self.lots(r, sym)
        price = self.near(r, m)
        cmd: dict[str, Any] = {
            "type": "order", "ts": self.next_ts(r), "account": acct, "id": oid, "symbol": sym,
            "side": r.choice(["buy", "sell"]), "qty": m.qty(lots), "price": m.price(price),
            "tif": r.choice(["gtc", "gtc", "gtc", "ioc", "fok", "post_only"]),
        }  # fmt: skip
        k = r.randint(0, 99)
        if k < 14:  # market order
            del cmd["price"]
            cmd["tif"] = r.choice(["gtc", "ioc"])
            if k < 4:
                del cmd["tif"]
        elif k < 26:
            cmd["reduce_only"] = True
            if k < 18:
                del cmd["price"]
                cmd["tif"] = "ioc"
        elif k < 28:
            cmd["price"] = m.price(price) + "3"  # one digit past the tick: off-grid
        elif k < 30:
            cmd["qty"] = m.qty(lots) + "7"  # off the lot grid
        elif k < 31:
            cmd["price"] = "-" + m.price(price)
        elif k < 32:
            cmd["qty"] = "-" + m.qty(lots)
        elif k < 33:
            cmd["symbol"] = "DOGE-USD"
        elif k < 34:
            cmd["account"] = "ghost"
        elif k < 36 and self.ids:
            cmd["account"], cmd["id"] = r.choice(self.ids)  # duplicate id (or re-use)
        elif k < 37:
            cmd["tif"] = "day"
        elif k < 40:
            cmd["price"] = m.price(price + r.choice([-400, -150, 150, 400]))  # far off
        self.ids.append((cmd["account"], cmd["id"]))
        return cmd

    def cancel(self, r: Rand) -> dict[str, Any]:
        acct, oid = self.pick_order(r)
        if r.randint(0, 99) < 3:
            acct = "ghost"
        return {"type": "cancel", "ts": self.next_ts(r), "account": acct, "id": oid}

    def cancel_all(self, r: Rand) -> dict[str, Any]:
        acct = r.choice([*self.accounts, *self.accounts, "ghost"])
        return {"type": "cancel_all", "ts": self.next_ts(r), "account": acct}

    def amend(self, r: Rand) -> dict[str, Any]:
        acct, oid = self.pick_order(r)
        cmd: dict[str, Any] = {"type": "amend", "ts": self.next_ts(r), "account": acct,
                               "id": oid}  # fmt: skip
        sym = r.choice(self.symbols)
        m = self.markets[sym]
        k = r.randint(0, 99)
        if k < 40:
            cmd["qty"] = m.qty(self.lots(r, sym))
        elif k < 75:
            cmd["price"] = m.price(self.near(r, m))
        elif k < 94:
            cmd["qty"] = m.qty(self.lots(r, sym))
            cmd["price"] = m.price(self.near(r, m))
        elif k < 97:
            cmd["price"] = m.price(self.near(r, m)) + "3"
        else:
            cmd["qty"] = "-1"
        return cmd

    def index_small(self, r: Rand) -> dict[str, Any]:
        m = self.markets[r.choice(self.symbols)]
        k = r.randint(0, 99)
        if k < 3:
            return {"type": "index_price", "ts": self.next_ts(r), "symbol": m.symbol,
                    "price": r.choice(["0", "-1", m.price(m.index) + "3"])}  # fmt: skip
        if k < 5:
            return {"type": "index_price", "ts": self.next_ts(r), "symbol": "DOGE-USD",
                    "price": "1"}  # fmt: skip
        m.index = max(1000, m.index + r.randint(-40, 40))
        return {"type": "index_price", "ts": self.next_ts(r), "symbol": m.symbol,
                "price": m.price(m.index)}  # fmt: skip

    def index_jump(self, r: Rand) -> dict[str, Any]:
        m = self.markets[r.choice(self.symbols)]
        pct = r.choice([-30, -15, -8, -4, 4, 8, 15, 30])
        m.index = max(1000, m.index * (100 + pct) // 100)
        return {"type": "index_price", "ts": self.next_ts(r), "symbol": m.symbol,
                "price": m.price(m.index)}  # fmt: skip

    def funding(self, r: Rand) -> dict[str, Any]:
        sym = r.choice([*self.symbols, *self.symbols, "DOGE-USD"])
        cmd: dict[str, Any] = {"type": "funding", "ts": self.next_ts(r), "symbol": sym}
        rate = r.choice([None, None, "0.0001", "-0.0001", "0.0005", "-0.0007", "0.003",
                         "-0.003", "0.00000123", "-0.0000009", "0", "0.01", "abc"])  # fmt: skip
        if rate is not None:
            cmd["rate"] = rate
        return cmd

    def set_param(self, r: Rand) -> dict[str, Any]:
        sym = r.choice(self.symbols)
        k = r.randint(0, 9)
        if k < 3:
            path, value = f"instruments.{sym}.taker_fee_ppm", str(r.randint(0, 1000))
        elif k < 6:
            path, value = f"instruments.{sym}.maker_fee_ppm", str(r.randint(-300, 0))
        elif k < 7:
            path, value = "instruments.BTC-USD.tiers", json.dumps(r.choice(_TIER_SETS))
        elif k < 8:
            path, value = "waterfall.liquidation_fee_ppm", str(r.randint(0, 10000))
        else:  # rejected: out of range, immutable, unknown
            path, value = r.choice([
                (f"instruments.{sym}.taker_fee_ppm", "200000"),
                (f"instruments.{sym}.maker_fee_ppm", "1.5"),
                ("instruments.BTC-USD.tick_size", "1"),
                ("instruments.DOGE-USD.taker_fee_ppm", "1"),
                ("nope.path", "1"),
            ])  # fmt: skip
        return {"type": "set", "ts": self.next_ts(r), "path": path, "value": value}

    def settle_period(self, r: Rand) -> dict[str, Any]:
        return {"type": "settle_period", "ts": self.next_ts(r)}

    def malformed(self, r: Rand) -> object:
        return r.choice(MALFORMED)

    def weighted(self) -> list[tuple[Callable[[Rand], object], int]]:
        return [
            (self.order, 36), (self.cancel, 6), (self.cancel_all, 2), (self.amend, 7),
            (self.deposit, 6), (self.withdraw, 5), (self.index_small, 15), (self.index_jump, 4),
            (self.funding, 6), (self.insurance_deposit, 2 if self.fund_deposits else 0),
            (self.set_param, 3),
            (self.settle_period, 1), (self.malformed, 2),
        ]  # fmt: skip

    def session(self, rng: random.Random, n: int) -> Iterator[object]:
        """The opening, then ``n`` commands drawn by weight: a whole seeded session.

        Lazy, so that with :attr:`live` set each command sees the state its predecessors left.
        """
        kinds = self.weighted()
        makers = [f for f, _ in kinds]
        weights = [w for _, w in kinds]
        yield from self.opening(rng)
        for _ in range(n):
            yield rng.choices(makers, weights)[0](rng)


# --------------------------------------------------------------------------- checker


class _At:
    """Where a check failed, rendered only if it does (formatting every event is slow)."""

    __slots__ = ("cmd", "ev")

    def __init__(self, ev: Event, cmd: object) -> None:
        self.ev = ev
        self.cmd = cmd

    def __str__(self) -> str:
        return f"event {self.ev} of command {self.cmd!r}"

    __repr__ = __str__


class Checker:
    """Applies commands to an exchange and checks every event and every command (see top)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        #: (account, symbol) -> the current liquidation step closes the whole position
        self.step_final: dict[tuple[str, str], bool] = {}
        self.ex = Exchange(Config.from_dict(cfg))
        dec = cfg["exchange"]["collateral_decimals"]
        self.scale = 10**dec
        #: atoms per lot x tick, computed here from the config's decimal strings
        self.k = {
            i["symbol"]: int(Decimal(i["tick_size"]) * Decimal(i["lot_size"]) * self.scale)
            for i in cfg["instruments"]
        }
        #: funding rounds or clawback periods may fall due inside any command
        self.scheduled = any(i.get("funding_interval_s", 0) for i in cfg["instruments"]) or (
            str(cfg.get("waterfall", {}).get("clawback_period", "")).isdigit()
        )
        initial = int(Decimal(cfg["insurance_fund"]["initial"]) * self.scale)
        self.bal: dict[str, int] = {INSURANCE: initial, FEES: 0}
        self.nd = initial
        self.pos: dict[str, dict[str, int]] = {s: {} for s in self.k}
        self.next_seq = 1
        self.last_ts = -1
        self.under: set[str] = set()
        self.counts: dict[str, int] = {}
        self.commands = 0
        self.rejected = 0

    # -- driving

    def resting(self) -> list[tuple[str, str]]:
        """(account, order id) of every resting order, in a deterministic order."""
        ex = self.ex
        return [(o.account, o.order_id) for inst in ex.instruments.values()
                for a in sorted(ex.accounts) for o in inst.book.orders_of(a)]  # fmt: skip

    def apply(self, cmd: object) -> list[Event]:
        before = self.snapshot()
        events = self.ex.apply(cmd)
        self.commands += 1
        self.check_events(cmd, events)
        self.check_command(cmd, events, before)
        return events

    def snapshot(self) -> dict[str, Any]:
        ex = self.ex
        books = {}
        for sym, inst in ex.instruments.items():
            book = inst.book
            books[sym] = (
                len(book),
                book.best_bid(),
                book.best_ask(),
                {a: [(o.order_id, o.side, o.price, o.qty) for o in book.orders_of(a)]
                 for a in ex.accounts},
                (inst.index, inst.mark, inst.last_trade),
            )  # fmt: skip
        return {
            "balances": {a: acct.balance for a, acct in ex.accounts.items()},
            "net_deposits": {a: acct.net_deposits for a, acct in ex.accounts.items()},
            "positions": {
                a: {s: (p.qty, getattr(p, "entry_e6", None)) for s, p in acct.positions.items()}
                for a, acct in ex.accounts.items()
            },
            "flagged": sorted(a for a, acct in ex.accounts.items() if acct.flagged),
            "books": books,
            "config": ex.config,
        }

    # -- the shadow ledger

    def _move(self, account: str, amount: int) -> None:
        self.bal[account] = self.bal.get(account, 0) + amount

    def _shift(self, sym: str, account: str, dq: int) -> None:
        p = self.pos[sym]
        p[account] = p.get(account, 0) + dq

    def _transfer(self, frm: str, to: str, sym: str, dq: int, price: int) -> int:
        """``frm``'s position changes by ``dq`` at ``price`` outside the book, ``to`` takes
        the other side; returns the value ``frm`` pays (negative: receives)."""
        val = dq * price * self.k[sym]
        self._move(frm, -val)
        self._move(to, val)
        self._shift(sym, frm, dq)
        self._shift(sym, to, -dq)
        return val

    # -- 1 and 4: every event

    def check_events(self, cmd: object, events: list[Event]) -> None:
        assert events, f"no events for {cmd!r}"
        first = events[0]
        assert type(first) is Input, f"first event is not the input: {first}"
        if isinstance(cmd, dict):
            assert first.command == cmd, (first.command, cmd)
        fills: dict[int, Fill] = {}
        settlements: dict[int, Settlement] = {}
        liq_settlements: dict[int, str] = {}  # settlement seq -> liquidated account
        pool_before: dict[int, int] = {}  # settlement seq -> the fee pool just before it
        round_key: tuple[Any, ...] | None = None
        round_sum = 0
        for i, ev in enumerate(events):
            t = type(ev)
            self.counts[t.__name__] = self.counts.get(t.__name__, 0) + 1
            where = _At(ev, cmd)
            # 4. ordering
            assert ev.seq == self.next_seq, f"seq gap: expected {self.next_seq}, {where}"
            self.next_seq += 1
            assert ev.cause < ev.seq, f"cause not before seq: {where}"
            if i == 0:
                assert ev.cause == 0, where
            else:
                assert t is not Input, f"two inputs in one command: {where}"
                # (a retried liquidation may point back to its trigger in an earlier command)
                assert ev.cause >= 1, f"caused by nothing: {where}"
            assert ev.ts >= self.last_ts, f"ts goes backwards ({self.last_ts} -> {ev.ts}): {where}"
            self.last_ts = ev.ts
            # funding rounds: consecutive Funding chunks of one (symbol, ts, cause, rate, mark)
            key = (ev.symbol, ev.ts, ev.cause, ev.rate_ppm, ev.mark) if t is Funding else None
            if key != round_key:
                assert round_sum == 0, f"funding round {round_key} pays {round_sum} in total"
                round_key, round_sum = key, 0
            # 1. fold into the shadow ledger, checking each event's own rule
            if t is Deposit:
                assert ev.amount > 0, where
                self._move(ev.account, ev.amount)
                self.nd += ev.amount
            elif t is Withdrawal:
                assert ev.amount > 0, where
                self._move(ev.account, -ev.amount)
                self.nd -= ev.amount
            elif t is InsuranceDeposit:
                assert ev.amount > 0, where
                self._move(INSURANCE, ev.amount)
                self.nd += ev.amount
            elif t is LiquidationStep:
                # DESIGN §6, partial liquidation stops when healthy: a step that closes less
                # than the whole position keeps each fill's surplus with the trader.
                held = self.pos.get(ev.symbol, {}).get(ev.account, 0)
                self.step_final[(ev.account, ev.symbol)] = abs(ev.qty) == abs(held)
            elif t is Fill:
                fills[ev.seq] = ev
            elif t is Settlement:
                f = fills.get(ev.cause)
                assert f is not None, f"settlement not caused by a fill of its command: {where}"
                self._check_settlement_shape(ev, f, where)
                settlements[ev.seq] = ev
                pool_before[ev.seq] = self.bal.get(FEES, 0)
                self._move(ev.buyer, -ev.value - ev.buyer_fee)
                self._move(ev.seller, ev.value - ev.seller_fee)
                self._move(FEES, ev.buyer_fee + ev.seller_fee)
                self._shift(ev.symbol, ev.buyer, ev.qty)
                self._shift(ev.symbol, ev.seller, -ev.qty)
            elif t is Funding:
                self._check_funding(ev, where)
                for acct, amount in ev.payments:
                    self._move(acct, amount)
                    round_sum += amount
            elif t is LiquidationTriggered:
                assert ev.equity < ev.maintenance, f"liquidated above maintenance: {where}"
                assert not ev.account.startswith("#"), f"system account liquidated: {where}"
            elif t is LiquidationFill:
                s = settlements.get(ev.cause)
                assert s is not None, f"liquidation fill without its settlement: {where}"
                liq_settlements[s.seq] = ev.account
                self._check_liquidation_fill(ev, s, where)
                to_fund = ev.fee + ev.surplus_to_fund - ev.fund_paid
                self._move(ev.account, -to_fund)
                self._move(INSURANCE, to_fund)
            elif t is InsurancePayment:
                self._move(ev.account, ev.amount)
                self._move(INSURANCE, -ev.amount)
            elif t is BackstopTransfer:
                assert ev.qty != 0, where
                val = self._transfer(ev.account, ev.backstop, ev.symbol, -ev.qty, ev.price)
                assert ev.value == val, f"value {ev.value}, moved {val}: {where}"
            elif t is Takeover:
                assert ev.qty != 0, where
                val = self._transfer(ev.account, INSURANCE, ev.symbol, -ev.qty, ev.price)
                assert ev.value == val, f"value {ev.value}, moved {val}: {where}"
            elif t is Deleveraged:
                q = self.pos[ev.symbol].get(ev.account, 0)
                c = self.pos[ev.symbol].get(ev.counterparty, 0)
                assert q != 0 and 0 < ev.qty <= abs(q), f"ADL of {ev.qty} from {q}: {where}"
                assert c * q < 0 and ev.qty <= abs(c), f"ADL would flip {c}: {where}"
                sign = 1 if q > 0 else -1
                val = self._transfer(ev.account, ev.counterparty, ev.symbol, -sign * ev.qty,
                                     ev.price)  # fmt: skip
                assert ev.value == val, f"value {ev.value}, moved {val}: {where}"
            elif t is SocializedLoss:
                assert ev.amount > 0, where
                self._move(ev.account, ev.amount)
                self._move(CLAWBACK_POOL, -ev.amount)
            elif t is Clawback:
                charged = [c for _, c in ev.charges]
                assert all(c > 0 for c in charged), where
                assert sum(charged) == ev.collected <= ev.loss, where
                for acct, c in ev.charges:
                    self._move(acct, -c)
                self._move(CLAWBACK_POOL, ev.collected)
            elif t is SystemDebt:
                assert ev.amount > 0, where
                self._move(ev.account, ev.amount)
                self._move(DEBT, -ev.amount)
            elif t is LiquidationFinished and ev.remaining == 0:
                left = self.bal.get(ev.account, 0)
                assert left >= 0, f"flat after liquidation but owes {-left}: {where}"
            # the per-event invariants
            total = sum(self.bal.values())
            assert total == self.nd, (
                f"after seq {ev.seq}: balances sum to {total}, net deposits {self.nd}; {where}"
            )
            for sym, p in self.pos.items():
                assert sum(p.values()) == 0, f"after seq {ev.seq}: {sym} positions {p}; {where}"
        assert round_sum == 0, f"funding round {round_key} pays {round_sum} in total"
        for seq, st_ in settlements.items():
            self._check_fees(st_, fills[st_.cause], liq_settlements.get(seq), cmd, pool_before[seq])

    def _check_settlement_shape(self, ev: Settlement, f: Fill, where: object) -> None:
        assert (f.symbol, f.price, f.qty) == (ev.symbol, ev.price, ev.qty), (f, where)
        taker_buys = f.taker_side == "buy"
        buyer, seller = (
            (f.taker_account, f.maker_account) if taker_buys else (f.maker_account, f.taker_account)
        )
        assert (ev.buyer, ev.seller) == (buyer, seller), (f, where)
        assert ev.qty > 0 and ev.price > 0, where
        value = ev.qty * ev.price * self.k[ev.symbol]
        assert ev.value == value, f"value {ev.value} != qty x price x k = {value}: {where}"

    def _check_fees(
        self, ev: Settlement, f: Fill, liquidated: str | None, cmd: object, pool: int
    ) -> None:
        """Fees round in the exchange's favour (charges up, rebates down: both toward +inf);
        a liquidation order pays no trading fee (the liquidation fee replaces it)."""
        spec = self.ex.instruments[ev.symbol].spec
        taker, maker = spec.taker_fee_ppm, spec.maker_fee_ppm
        if liquidated is not None and liquidated == f.taker_account:
            taker = 0
        if f.taker_account == f.maker_account == MARKET:
            taker = maker = 0  # the historical market trading with itself (clearing.market)
        taker_buys = f.taker_side == "buy"
        buyer_ppm, seller_ppm = (taker, maker) if taker_buys else (maker, taker)
        want = (ceil(Fraction(ev.value * buyer_ppm, PPM)),
                ceil(Fraction(ev.value * seller_ppm, PPM)))  # fmt: skip
        if want[0] + want[1] < 0:
            # A rebate is paid only from what the fee pool holds (a liquidation order pays
            # no fee, so its maker's rebate could otherwise drive the pool below zero).
            floor = -pool
            if want[0] < 0:
                want = (max(want[0], min(0, floor - want[1])), want[1])
            else:
                want = (want[0], max(want[1], min(0, floor - want[0])))
        got = (ev.buyer_fee, ev.seller_fee)
        assert got == want, f"fees {got}, expected {want}: settlement {ev} of command {cmd!r}"

    def _check_funding(self, ev: Funding, where: object) -> None:
        holders = {a: q for a, q in self.pos[ev.symbol].items() if q}
        pays = dict((a, amt) for a, amt in ev.payments)
        assert len(pays) == len(ev.payments), f"an account paid twice: {where}"
        if ev.rate_ppm == 0 or not holders:
            assert not pays, f"payments without a rate or holders: {where}"
            return
        assert set(pays) == set(holders), f"payers/receivers {set(pays)} != {holders}: {where}"
        k = self.k[ev.symbol]
        arate = abs(ev.rate_ppm)
        longs_pay = ev.rate_ppm > 0
        total = 0
        recv_w = 0
        for a, q in holders.items():
            if (q > 0) == longs_pay:
                due = ceil(Fraction(abs(q) * ev.mark * k * arate, PPM))
                assert pays[a] == -due, f"{a} pays {-pays[a]}, owes {due}: {where}"
                total += due
            else:
                recv_w += abs(q)
        for a, q in holders.items():
            if (q > 0) != longs_pay:
                share = Fraction(total * abs(q), recv_w)
                assert floor(share) <= pays[a] <= ceil(share), (
                    f"{a} receives {pays[a]}, pro-rata share {float(share)}: {where}"
                )

    def _check_liquidation_fill(self, ev: LiquidationFill, s: Settlement, where: object) -> None:
        """delta = fill value - value at the bankruptcy price (for the liquidated account);
        a gain pays the capped liquidation fee (and the surplus, per policy) to the fund, a
        loss is paid by the fund or left to be socialised."""
        assert (ev.symbol, ev.qty, ev.price) == (s.symbol, s.qty, s.price), where
        assert ev.account in (s.buyer, s.seller), where
        k = self.k[ev.symbol]
        sold = ev.account == s.seller
        delta = ev.qty * k * ((ev.price - ev.bankruptcy_price) if sold
                              else (ev.bankruptcy_price - ev.price))  # fmt: skip
        assert ev.delta == delta, f"delta {ev.delta}, expected {delta}: {where}"
        w = self.ex.config.waterfall
        if delta >= 0:
            fee = min(ceil(Fraction(ev.qty * ev.price * k * w.liquidation_fee_ppm, PPM)), delta)
            final = self.step_final.get((ev.account, ev.symbol), True)
            surplus = delta - fee if w.surplus == "insurance_fund" and final else 0
            assert (ev.fee, ev.surplus_to_fund, ev.fund_paid, ev.socialized) == (
                fee, surplus, 0, 0), where  # fmt: skip
        else:
            assert ev.fee == ev.surplus_to_fund == 0, where
            assert ev.fund_paid >= 0 and ev.socialized >= 0, where
            assert ev.fund_paid + ev.socialized == -delta, where
            if ev.socialized:
                assert "clawback" in w.steps, f"loss socialised without a clawback step: {where}"

    # -- 2 and 3: every command

    def check_command(self, cmd: object, events: list[Event], before: dict[str, Any]) -> None:
        ex = self.ex
        assert ex.seq.last == self.next_seq - 1, (ex.seq.last, self.next_seq)
        where = f"after command {cmd!r}"
        # 2. the shadow ledger is the engine's ledger
        engine_bal = {a: acct.balance for a, acct in ex.accounts.items()}
        shadow = {a: b for a, b in self.bal.items() if b or a in engine_bal}
        for a in engine_bal:
            shadow.setdefault(a, 0)
        assert engine_bal == shadow, f"balances: engine {engine_bal} != events {shadow}; {where}"
        assert sum(engine_bal.values()) == ex.net_deposits == self.nd, where
        for sym, inst in ex.instruments.items():
            engine_pos = {a: acct.positions[sym].qty for a, acct in ex.accounts.items()
                          if sym in acct.positions}  # fmt: skip
            assert all(engine_pos.values()), f"zero position kept: {engine_pos}; {where}"
            shadow_pos = {a: q for a, q in self.pos[sym].items() if q}
            assert engine_pos == shadow_pos, f"{sym} engine {engine_pos} != {shadow_pos}; {where}"
            assert sum(engine_pos.values()) == 0, where
            bid, ask = inst.book.best_bid(), inst.book.best_ask()
            assert bid is None or ask is None or bid < ask, f"{sym} book crossed; {where}"
        self._check_state_view(where)
        # 3. a rejected command changed nothing
        rejections = [e for e in events if type(e) is Rejected]
        assert len(rejections) <= 1, f"two Rejected events; {where}"
        if rejections:
            assert rejections[0].cause == events[0].seq, f"stray Rejected event; {where}"
            self.rejected += 1
            others = [e for e in events[1:] if type(e) is not Rejected]
            if not others:
                assert events[-1] is rejections[0], where
                assert self.snapshot() == before, f"a rejected command changed state; {where}"
            else:
                self._only_scheduled(others, events[0].seq, where)
        elif len(events) > 1 and all(type(e) is OrderRejected for e in events[1:]):
            assert self.snapshot() == before, f"a refused order changed state; {where}"
        if not rejections and isinstance(cmd, dict) and cmd.get("type") == "funding":
            self._check_funding_rate(cmd, events, where)
        self._check_liquidations(events, where)

    def _only_scheduled(self, others: list[Event], input_seq: int, where: str) -> None:
        """A rejected command may only carry what fell due as its ts passed (funding rounds,
        a clawback period's end) and the consequences of that — including the retry of a
        liquidation queued by an earlier command, whose events name that earlier trigger,
        once what fell due has moved its account's money."""
        assert self.scheduled, f"rejected command emitted events {others}; {where}"
        caused: set[int] = set()
        due = False
        for e in others:
            due = due or type(e) in (Funding, Clawback)
            if type(e) in (Funding, Clawback) or e.cause in caused or (due and e.cause < input_seq):
                caused.add(e.seq)
            else:
                raise AssertionError(f"rejected command emitted {e}; {where}")

    def _check_funding_rate(self, cmd: dict[str, Any], events: list[Event], where: str) -> None:
        """A given rate is used truncated to ppm; a computed one stays within the cap."""
        rounds = [e for e in events if type(e) is Funding and e.cause == events[0].seq
                  and e.symbol == cmd["symbol"]]  # fmt: skip
        assert rounds, f"accepted funding command paid no round; {where}"
        # Rounds that fell due on the clock are paid first; the command's own round is last.
        mine = [e for e in rounds if e.rate_ppm == rounds[-1].rate_ppm][-1:]
        if cmd.get("rate") is not None:
            want = int((Decimal(cmd["rate"]) * PPM).to_integral_value(ROUND_DOWN))
            assert all(e.rate_ppm == want for e in mine), f"rate_ppm != {want}; {where}"
        else:
            cap = self.ex.instruments[cmd["symbol"]].spec.funding_cap_ppm
            assert all(abs(e.rate_ppm) <= cap for e in mine), where

    def _equity(self, account: str) -> int:
        """Cash plus positions at the marks, from the shadow ledger."""
        e = self.bal.get(account, 0)
        for sym, p in self.pos.items():
            if p.get(account):
                mark = self.ex.instruments[sym].price_or(None)
                assert mark is not None
                e += p[account] * mark * self.k[sym]
        return e

    def _check_state_view(self, where: str) -> None:
        view = self.ex.state()
        sc = self.scale
        assert view["seq"] == self.ex.seq.last, where
        assert Decimal(view["insurance_fund"]) * sc == self._equity(INSURANCE), (view, where)
        assert Decimal(view["insurance_fund_cash"]) * sc == self.bal.get(INSURANCE, 0), where
        assert Decimal(view["system_debt"]) * sc == -self.bal.get(DEBT, 0), (view, where)
        for a, acct in view["accounts"].items():
            # the view's quote balance is the cash (its "balance" is the wallet balance W)
            assert Decimal(acct["quote_balance"]) * sc == self.bal.get(a, 0), (a, acct, where)
            assert Decimal(acct["equity"]) * sc == self._equity(a), (a, acct, where)

    def _check_liquidations(self, events: list[Event], where: str) -> None:
        """Every user account below maintenance has been triggered since it was last above."""
        triggered = {e.account for e in events if type(e) is LiquidationTriggered}
        under: set[str] = set()
        for a, acct in self.ex.accounts.items():
            if a.startswith("#") or not acct.positions:
                continue
            equity, mm, _ = self.ex.risk(acct)
            if equity < mm:
                under.add(a)
                assert a in triggered or a in self.under, (
                    f"{a} is below maintenance (equity {equity} < MM {mm}) and was not "
                    f"triggered; {where}"
                )
        self.under = under


# --------------------------------------------------------------------------- hypothesis


class ConservationMachine(RuleBasedStateMachine):
    """Random commands under a random waterfall, every event and command checked."""

    def __init__(self) -> None:
        super().__init__()
        self.gen = CommandGen(4)
        self.chk = Checker(make_config())

    @initialize(n=st.integers(4, 6), waterfall=st.sampled_from(sorted(WATERFALLS)),
                fund=st.sampled_from(["0", "1000"]), data=st.data())  # fmt: skip
    def open_session(self, n: int, waterfall: str, fund: str, data: st.DataObject) -> None:
        self.gen = CommandGen(n)
        self.chk = Checker(make_config(waterfall=waterfall, fund=fund))
        self.gen.live = self.chk.resting
        for cmd in self.gen.opening(DrawRand(data)):
            self.chk.apply(cmd)

    def _do(self, make: Callable[[Rand], object], data: st.DataObject) -> None:
        self.chk.apply(make(DrawRand(data)))

    @rule(data=st.data())
    def order(self, data: st.DataObject) -> None:
        self._do(self.gen.order, data)

    @rule(data=st.data())
    def order_again(self, data: st.DataObject) -> None:
        self._do(self.gen.order, data)

    @rule(data=st.data())
    def order_more(self, data: st.DataObject) -> None:
        self._do(self.gen.order, data)

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        self._do(self.gen.cancel, data)

    @rule(data=st.data())
    def cancel_all(self, data: st.DataObject) -> None:
        self._do(self.gen.cancel_all, data)

    @rule(data=st.data())
    def amend(self, data: st.DataObject) -> None:
        self._do(self.gen.amend, data)

    @rule(data=st.data())
    def deposit(self, data: st.DataObject) -> None:
        self._do(self.gen.deposit, data)

    @rule(data=st.data())
    def withdraw(self, data: st.DataObject) -> None:
        self._do(self.gen.withdraw, data)

    @rule(data=st.data())
    def index_small(self, data: st.DataObject) -> None:
        self._do(self.gen.index_small, data)

    @rule(data=st.data())
    def index_small_again(self, data: st.DataObject) -> None:
        self._do(self.gen.index_small, data)

    @rule(data=st.data())
    def index_jump(self, data: st.DataObject) -> None:
        self._do(self.gen.index_jump, data)

    @rule(data=st.data())
    def funding(self, data: st.DataObject) -> None:
        self._do(self.gen.funding, data)

    @rule(data=st.data())
    def insurance_deposit(self, data: st.DataObject) -> None:
        self._do(self.gen.insurance_deposit, data)

    @rule(data=st.data())
    def set_param(self, data: st.DataObject) -> None:
        self._do(self.gen.set_param, data)

    @rule(data=st.data())
    def settle_period(self, data: st.DataObject) -> None:
        self._do(self.gen.settle_period, data)

    @rule(data=st.data())
    def malformed(self, data: st.DataObject) -> None:
        self._do(self.gen.malformed, data)


ConservationMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestConservation = ConservationMachine.TestCase


# --------------------------------------------------------------------------- soaks


def _soak(cfg: dict[str, Any], ts_step: int, n: int, fund_deposits: bool = True) -> Checker:
    rng = random.Random(7)
    gen = CommandGen(6, ts_step=ts_step, fund_deposits=fund_deposits)
    chk = Checker(cfg)
    gen.live = chk.resting
    for cmd in gen.session(rng, n):
        chk.apply(cmd)
    return chk


@pytest.mark.parametrize(
    ("waterfall", "fund"),
    [("default", "rich"), ("default", "starved"), ("takeover", "rich"),
     ("clawback", "starved"), ("backstop", "starved")],
)  # fmt: skip
def test_soak_seeded_session(waterfall: str, fund: str) -> None:
    """~3,000 seeded random commands, every event checked; the session really trades,
    funds, rejects and liquidates (so the checks bite). A starved insurance fund (nothing
    in it, no insurance deposits) makes losses reach the clawback or system debt."""
    starved = fund == "starved"
    cfg = make_config(waterfall=waterfall, fund="0" if starved else "1000")
    chk = _soak(cfg, ts_step=3, n=3000, fund_deposits=not starved)
    c = chk.counts
    assert c.get("Settlement", 0) > 200, c
    assert c.get("Funding", 0) > 20, c
    assert c.get("LiquidationTriggered", 0) > 0, c
    assert c.get("ParamSet", 0) > 10, c
    assert c.get("OrderAmended", 0) > 10, c
    assert c.get("OrderCancelled", 0) > 10, c
    assert chk.rejected > 100, chk.rejected
    assert chk.ex.fees.balance != 0
    if starved:
        assert c.get("SocializedLoss", 0) + c.get("SystemDebt", 0) > 0, c
    if waterfall in ("clawback", "backstop"):
        assert c.get("Clawback", 0) > 0, c


def test_soak_with_scheduled_funding_and_clawback() -> None:
    """The soak with ETH-USD funding every 60 s and a clawback period of 45 s of simulated
    time (commands ~1.5 s apart) and a starved fund, so funding rounds and clawbacks also
    fall due inside other commands, rejected ones included."""
    cfg = make_config(funding_interval_s=60, fund="0")
    cfg["waterfall"] = {"steps": ["book", "adl", "clawback"], "clawback_period": "45"}
    chk = _soak(cfg, ts_step=3_000_000, n=3000, fund_deposits=False)
    assert chk.counts.get("Funding", 0) > 60, chk.counts
    assert chk.counts.get("Clawback", 0) > 0, chk.counts


def test_scheduled_funding_keeps_ts_non_decreasing() -> None:
    """Funding that falls due while the clock jumps is stamped no earlier than the command
    that carried the clock past it: a log's ``ts`` never goes backwards (DESIGN §7)."""
    chk = Checker(make_config(funding_interval_s=10))
    t = T0
    for cmd in [
        {"type": "deposit", "ts": t, "account": "a", "amount": "100000"},
        {"type": "deposit", "ts": t, "account": "b", "amount": "100000"},
        {"type": "index_price", "ts": t + 1, "symbol": "ETH-USD", "price": "3000"},
        {"type": "order", "ts": t + 2, "account": "a", "id": "x", "symbol": "ETH-USD",
         "side": "sell", "qty": "1", "price": "3000"},
        {"type": "order", "ts": t + 3, "account": "b", "id": "y", "symbol": "ETH-USD",
         "side": "buy", "qty": "1", "price": "3000"},
    ]:  # fmt: skip
        chk.apply(cmd)
    # the clock jumps 35 s: three rounds fall due inside this one command
    events = chk.ex.apply({"type": "deposit", "ts": t + 35_000_000, "account": "a",
                           "amount": "1"})  # fmt: skip
    assert len([e for e in events if type(e) is Funding]) == 3
    ts = [e.ts for e in events]
    assert ts == sorted(ts), f"ts goes backwards inside one command: {ts}"


def test_rejected_malformed_command_keeps_ts_non_decreasing() -> None:
    """A command rejected before it is parsed is stamped with its own ts when that is ahead
    of the clock; the clock must then not let a later command be stamped earlier."""
    chk = Checker(make_config())
    events: list[Event] = []
    for cmd in [
        {"type": "deposit", "ts": T0 + 10, "account": "a", "amount": "1"},
        {"type": "deposit", "ts": T0 + 20, "account": "a", "amount": "-1"},  # rejected
        {"type": "deposit", "ts": T0 + 15, "account": "a", "amount": "1"},
    ]:
        events += chk.ex.apply(cmd)
    ts = [e.ts for e in events]
    assert ts == sorted(ts), f"ts goes backwards across commands: {ts}"
