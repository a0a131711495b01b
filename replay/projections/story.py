"""The waterfall story of a log: a fold over its events, with no engine.

Everything here reads event fields only (DESIGN §8 "projections"), so it works on any stream
in the format, whoever wrote it, and on a live stream as well as a log read back.

Pieces, each usable alone:

- :func:`cash_moves` — :func:`.cash.cash_moves` for a typed event. The insurance fund, the
  fee pool, the clawback pool and the debt account (``clearing.accounts``) are accounts
  like any other, so every balance, the fund's included, is the sum of its moves (plus the
  fund's configured initial balance).
- :class:`FundSummary` — the insurance fund in equity terms (DESIGN §6: cash plus its
  positions at the mark, :class:`.fund.FundBook`): start, minimum (with seq and time), end,
  when it ran dry (equity at or below zero), what it paid and took in
  (:func:`.fund.fund_flows`), cash in and out by reason (per event, net), its cash and
  positions, and optionally the timeline. It is not :class:`.fund.FundFold`: that one keeps
  a row per component of a change (fee, surplus and shortfall of one fill apart) with the
  timeline's own reasons, while the story sums each event's cash moves; the two agree on
  the cash and the equity after every event.
- :class:`CascadeFold` — the causal forest: every event's root (the input at the top of its
  ``cause`` chain) and, per root that liquidated anyone, a :class:`RootCascade` of totals.
- :class:`Story` — all of the above plus the waterfall totals (book, backstop, takeover, ADL,
  clawback, system debt), fed one event at a time; ``replay.cli.render.story_text`` tells it.

"The fund" here is its equity: a ``takeover`` leaves it holding a position, bought with
its cash, whose value then moves with the marks (``mark_price`` events) with no cash moving.
A cascade's "fund paid" and "took in" are :func:`.fund.fund_flows`, the same definition
``clearsim cascade`` totals use, and its fund equity before and after are the same figures.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Final

import attrs

from clearsim.clearing.accounts import INSURANCE, MARKET
from clearsim.events.codec import event_to_dict
from clearsim.events.types import (
    BackstopTransfer,
    Clawback,
    Deleveraged,
    Event,
    Fill,
    Funding,
    Halt,
    IndexPrice,
    Input,
    InsurancePayment,
    LiquidationAvoided,
    LiquidationFill,
    LiquidationFinished,
    LiquidationStep,
    LiquidationTriggered,
    MarkPrice,
    ParamSet,
    Rejected,
    SocializedLoss,
    SystemDebt,
    Takeover,
)
from clearsim.replay.projections.cash import Move, Record, money_scale
from clearsim.replay.projections.cash import cash_moves as _raw_cash_moves
from clearsim.replay.projections.fund import FundBook, FundLow, fund_flows
from clearsim.replay.projections.orders import EntryOrders

__all__ = [
    "CascadeFold",
    "FundChange",
    "FundSummary",
    "PriceRange",
    "RootCascade",
    "StepTotals",
    "Story",
    "cash_moves",
]


#: (account, atoms, reason): one account's cash change caused by one event.


# --------------------------------------------------------------------------- cash


def cash_moves(ev: Event) -> list[Move]:
    """The cash ``ev`` moves: ``(account, signed atoms, reason)`` (see
    :func:`.cash.cash_moves`, which this reads through)."""
    return _raw_cash_moves(event_to_dict(ev))


# --------------------------------------------------------------------------- the fund


@attrs.define
class FundChange:
    """One change of the fund: the event, the cash that moved (0 for a mark), the cash and
    the equity after, and why (``"mark"`` for a mark of a held symbol)."""

    seq: int
    ts: int
    delta: int
    cash: int
    equity: int
    reason: str
    account: str  # the counterparty of the move ("" for a deposit or a mark)


class FundSummary:
    """The insurance fund from its configured initial balance, the cash moves, its positions
    and the marks: equity (start, minimum, end, ran dry), cash, what it paid and took in."""

    def __init__(self, config: dict[str, Any], keep_timeline: bool = False) -> None:
        self.book = FundBook(config)
        self.low = FundLow.at(self.book.cash)
        #: events that changed the fund's equity or cash
        self.changes = 0
        self.inflows: Counter[str] = Counter()  # cash, by reason
        self.outflows: Counter[str] = Counter()
        self.paid = 0  # to cover losses (fund_flows)
        self.took_in = 0
        self.timeline: list[FundChange] | None = [] if keep_timeline else None

    # the figures, in equity terms unless named cash

    @property
    def start(self) -> int:
        return self.low.start

    @property
    def equity(self) -> int:
        return self.low.last

    @property
    def cash(self) -> int:
        return self.book.cash

    @property
    def min_equity(self) -> int:
        return self.low.low

    @property
    def min_seq(self) -> int:
        return self.low.low_seq

    @property
    def min_ts(self) -> int:
        return self.low.low_ts

    @property
    def empty_seq(self) -> int:
        return self.low.dry_seq

    @property
    def empty_ts(self) -> int:
        return self.low.dry_ts

    @property
    def position(self) -> dict[str, int]:
        """Lots held, by symbol (after takeovers)."""
        return {s: p.qty for s, p in self.book.positions.items()}

    def feed(self, d: Record, moves: list[Move]) -> int:
        """Apply one record (its cash ``moves`` given); return the fund's cash change."""
        book = self.book
        moved = book.apply(d)
        net = 0
        other = ""
        reason = ""
        for acct, delta, why in moves:
            if acct == INSURANCE:
                net += delta
                reason = why
                if delta > 0:
                    self.inflows[why] += delta
                elif delta < 0:
                    self.outflows[why] -= delta
            else:
                other = other or acct
        paid, took = fund_flows(d)
        self.paid += paid
        self.took_in += took
        if not (net or moved):
            return 0
        book.cash += net
        equity = book.equity() if book.positions else book.cash
        if not net and equity == self.low.last:
            return 0  # a position or a mark that did not change what the fund is worth
        self.changes += 1
        self.low.observe(d["seq"], d["ts"], equity)
        if self.timeline is not None:
            why = reason or ("mark" if d["type"] == "mark_price" else str(d["type"]))
            self.timeline.append(
                FundChange(d["seq"], d["ts"], net, book.cash, equity, why, other)
            )
        return net


# --------------------------------------------------------------------------- cascades


@attrs.define
class RootCascade:
    """The liquidations that descend from one root input, and what they cost."""

    root: int
    ts: int
    command: dict[str, Any] | None = None  # the root input's command, when it was seen
    #: (symbol, price before, price after) of the index and mark moves the root caused
    index_move: tuple[str, int | None, int] | None = None
    mark_move: tuple[str, int | None, int] | None = None
    triggered: int = 0
    accounts: set[str] = attrs.field(factory=set)
    #: what the fund paid and took in (fund_flows), and its equity before the root and
    #: after the cascade's last event
    fund_paid: int = 0
    fund_took_in: int = 0
    fund_equity_before: int = 0
    fund_equity_after: int = 0
    book_qty: int = 0
    backstop_qty: int = 0
    takeover_qty: int = 0
    adl_qty: int = 0
    deleveraged: set[str] = attrs.field(factory=set)
    socialized: int = 0
    system_debt: int = 0
    last_seq: int = 0


class CascadeFold:
    """Roots of the cause forest, and per root that triggered liquidations, a :class:`RootCascade`.

    ``root_of(seq)`` is the input at the top of ``seq``'s cause chain and ``chain(seq)`` the
    chain itself. Causes always point backwards, so two arrays indexed by seq hold every
    cause and root (16 bytes an event). A cause that was never seen (a stream that starts
    mid-log) is taken as a root itself.
    """

    def __init__(self) -> None:
        self._root = array("q", [0])
        self._cause = array("q", [0])
        self.cascades: dict[int, RootCascade] = {}
        self._input: Input | None = None
        self._index: dict[str, int] = {}
        self._mark: dict[str, int] = {}
        self._moves: dict[str, tuple[str, int | None, int]] = {}

    def root_of(self, seq: int) -> int:
        return self._root[seq] if 0 < seq < len(self._root) and self._root[seq] else seq

    def cause_of(self, seq: int) -> int:
        """The seq of ``seq``'s cause (0 for an input, or for a seq never seen)."""
        return self._cause[seq] if 0 < seq < len(self._cause) else 0

    def chain(self, seq: int) -> list[int]:
        """``seq`` and its causes, up to its root: ``[seq, cause, cause's cause, ...]``."""
        out = [seq]
        while (c := self.cause_of(out[-1])) and c != out[-1]:
            out.append(c)
        return out

    def descends_from(self, seq: int, ancestor: int) -> bool:
        """Whether ``ancestor`` is on ``seq``'s cause chain (``seq`` itself included)."""
        if self.root_of(seq) != self.root_of(ancestor):
            return False
        s = seq
        while s > ancestor:  # causes point backwards: stop once past the ancestor
            s = self.cause_of(s) or 0
        return s == ancestor

    def feed(self, ev: Event) -> int:
        """Record ``ev``'s root and return it."""
        seq, cause = ev.seq, ev.cause
        root = seq if cause == 0 else self.root_of(cause)
        r = self._root
        if seq >= len(r):
            pad = [0] * (seq - len(r) + 1)
            r.extend(pad)
            self._cause.extend(pad)
        r[seq] = root
        self._cause[seq] = cause
        t = type(ev)
        if t is Input:
            if not isinstance(ev, Input):  # dispatch by type name: a bug, not input
                raise TypeError(f"expected Input, got {type(ev).__name__}")
            self._input = ev
            self._moves = {}
        elif t is IndexPrice:
            if not isinstance(ev, IndexPrice):  # dispatch by type name: a bug, not input
                raise TypeError(f"expected IndexPrice, got {type(ev).__name__}")
            self._moves["index"] = (ev.symbol, self._index.get(ev.symbol), ev.price)
            self._index[ev.symbol] = ev.price
        elif t is MarkPrice:
            if not isinstance(ev, MarkPrice):  # dispatch by type name: a bug, not input
                raise TypeError(f"expected MarkPrice, got {type(ev).__name__}")
            self._moves.setdefault("mark", (ev.symbol, self._mark.get(ev.symbol), ev.price))
            self._mark[ev.symbol] = ev.price
        return root

    def cascade(self, root: int, ts: int) -> RootCascade:
        c = self.cascades.get(root)
        if c is None:
            c = self.cascades[root] = RootCascade(root, ts)
            if self._input is not None and self._input.seq == root:
                c.command = self._input.command
                c.index_move = self._moves.get("index")
                c.mark_move = self._moves.get("mark")
        return c

    def largest(self) -> RootCascade | None:
        """The cascade with the most liquidation triggers (the earliest on a tie)."""
        best: RootCascade | None = None
        for c in self.cascades.values():
            if best is None or c.triggered > best.triggered:
                best = c
        return best


# --------------------------------------------------------------------------- the story


@attrs.define
class StepTotals:
    """One way positions were closed: how many events, lots per symbol, accounts involved."""

    count: int = 0
    qty: Counter[str] = attrs.field(factory=Counter)
    accounts: set[str] = attrs.field(factory=set)  # counterparties (backstops, ADL'd)
    value: int = 0
    first_seq: int = 0
    first_ts: int = 0

    def add(self, ev: Event, symbol: str, qty: int, counterparty: str = "", value: int = 0) -> None:
        if not self.count:
            self.first_seq, self.first_ts = ev.seq, ev.ts
        self.count += 1
        self.qty[symbol] += abs(qty)
        if counterparty:
            self.accounts.add(counterparty)
        self.value += value


@attrs.define
class PriceRange:
    """First, lowest, highest and last price of a series, with where the extremes fell."""

    first: int
    low: int
    high: int
    last: int
    low_seq: int
    low_ts: int
    high_seq: int
    high_ts: int
    first_ts: int

    @classmethod
    def at(cls, price: int, seq: int, ts: int) -> PriceRange:
        return cls(price, price, price, price, seq, ts, seq, ts, ts)

    def add(self, price: int, seq: int, ts: int) -> None:
        self.last = price
        if price < self.low:
            self.low, self.low_seq, self.low_ts = price, seq, ts
        if price > self.high:
            self.high, self.high_seq, self.high_ts = price, seq, ts


class Story:
    """Everything :func:`render` prints, folded one event at a time (:meth:`feed`)."""

    def __init__(self, config: dict[str, Any], keep_fund_timeline: bool = False) -> None:
        self.config = config
        self.scale = money_scale(config)
        self.fund = FundSummary(config, keep_fund_timeline)
        self._root_seq = 0  # the last input seen, and the fund's equity before it
        self._root_equity = self.fund.equity
        backstops = config.get("waterfall", {}).get("backstop_accounts", [])
        self._backstops = frozenset(str(b) for b in backstops)
        #: backstop accounts that were themselves liquidated: id -> (seq, ts) of the first time
        self.backstops_liquidated: dict[str, tuple[int, int]] = {}
        self.cascades = CascadeFold()
        self.events = 0
        self.commands = 0
        self.rejected: Counter[str] = Counter()
        #: the traders' entry orders (IOC, FOK, market): how they ended (.orders)
        self.entry_orders = EntryOrders()
        self.first_ts: int | None = None
        self.last_ts = 0
        self.last_seq = 0
        self.index: dict[str, PriceRange] = {}
        self.trades = 0
        #: of the trades, the historical market's with itself (a ``#market`` IOC against its
        #: own depth: clearing.market), so a replay's own trading can be told from the day's
        self.market_trades = 0
        self.triggered = 0
        self.liquidated: set[str] = set()
        self.avoided = 0
        self.left_open = 0
        self.steps: Counter[str] = Counter()
        self.book = StepTotals()
        self.backstop = StepTotals()
        self.takeover = StepTotals()
        self.adl = StepTotals()
        self.shortfall_paid = 0
        self.liquidation_fees = 0
        self.surplus_to_fund = 0
        self.insurance_payments = 0
        self.socialized = 0
        self.clawback_loss = 0
        self.clawback_collected = 0
        self.clawback_periods = 0
        self.clawed: set[str] = set()
        self.system_debt = 0
        self.debt_events = 0
        self.halts = 0
        self.params_set = 0
        self.funding_rounds = 0
        self._funding_key: tuple[int, int, str] | None = None

    def feed_all(self, events: Iterable[Event]) -> Story:
        feed = self.feed
        for ev in events:
            feed(ev)
        return self

    def feed(self, ev: Event) -> None:
        self.events += 1
        self.last_seq = ev.seq
        if self.first_ts is None:
            self.first_ts = ev.ts
        self.last_ts = ev.ts
        root = self.cascades.feed(ev)
        self.entry_orders.feed(ev)
        t = type(ev)
        fund = self.fund
        if t is Input:
            self._root_seq, self._root_equity = ev.seq, fund.equity
        d = event_to_dict(ev)
        moves = _raw_cash_moves(d)
        if moves or t is MarkPrice:  # a mark values the fund's positions, held or later
            fund.feed(d, moves)
        if t is LiquidationTriggered:
            if not isinstance(ev, LiquidationTriggered):  # dispatch by type name: a bug, not input
                raise TypeError(f"expected LiquidationTriggered, got {type(ev).__name__}")
            self.triggered += 1
            self.liquidated.add(ev.account)
            if ev.account in self._backstops:
                self.backstops_liquidated.setdefault(ev.account, (ev.seq, ev.ts))
            c: RootCascade | None = self.cascades.cascade(root, ev.ts)
            if c is None:  # pragma: no cover - cascade() creates the root's cascade
                raise TypeError(f"no cascade for root seq {root}")
            if not c.triggered:
                c.fund_equity_before = self._root_equity if root == self._root_seq else fund.equity
            c.triggered += 1
            c.accounts.add(ev.account)
        else:
            c = self.cascades.cascades.get(root)
            handler = _TOTALS.get(t)
            if handler is not None:
                handler(self, ev, c)
        if c is not None:
            c.last_seq = ev.seq
            c.fund_equity_after = fund.equity
            paid, took = fund_flows(d)
            c.fund_paid += paid
            c.fund_took_in += took

    # Per event type: update the totals, and the cascade ``c`` the event belongs to, if any.

    def _input(self, ev: Event, c: RootCascade | None) -> None:
        self.commands += 1

    def _rejected(self, ev: Event, c: RootCascade | None) -> None:
        if not isinstance(ev, Rejected):  # dispatch by type name: a bug, not input
            raise TypeError(f"expected Rejected, got {type(ev).__name__}")
        self.rejected[ev.reason] += 1

    def _fill(self, ev: Event, c: RootCascade | None) -> None:
        if not isinstance(ev, Fill):  # dispatch by type name: a bug, not input
            raise TypeError(f"expected Fill, got {type(ev).__name__}")
        self.trades += 1
        if ev.taker_account == MARKET and ev.maker_account == MARKET:
            self.market_trades += 1

    def _index_price(self, ev: Event, c: RootCascade | None) -> None:
        if not isinstance(ev, IndexPrice):  # dispatch by type name: a bug, not input
            raise TypeError(f"expected IndexPrice, got {type(ev).__name__}")
        r = self.index.get(ev.symbol)
        if r is None:
            self.index[ev.symbol] = PriceRange.at(ev.price, ev.seq, ev.ts)
        else:
            r.add(ev.price, ev.seq, ev.ts)

    def _step(self, ev: Event, c: RootCascade | None) -> None:
        if not isinstance(ev, LiquidationStep):  # dispatch by type name: a bug, not input
            raise TypeError(f"expected LiquidationStep, got {type(ev).__name__}")
        self.steps[ev.step] += 1

    def _liquidation_fill(self, ev: Event, c: RootCascade | None) -> None:
        if not isinstance(ev, LiquidationFill):  # dispatch by type name: a bug, not input
            raise TypeError(f"expected LiquidationFill, got {type(ev).__name__}")
        self.book.add(ev, ev.symbol, ev.qty)
        self.shortfall_paid += ev.fund_paid
        self.liquidation_fees += ev.fee
        self.surplus_to_fund += ev.surplus_to_fund
        if c is not None:
            c.book_qty += ev.qty

    def _backstop(self, ev: Event, c: RootCascade | None) -> None:
        if not isinstance(ev, BackstopTransfer):  # dispatch by type name: a bug, not input
            raise TypeError(f"expected BackstopTransfer, got {type(ev).__name__}")
        self.backstop.add(ev, ev.symbol, ev.qty, ev.backstop, ev.value)
        if c is not None:
            c.backstop_qty += abs(ev.qty)

    def _takeover(self, ev: Event, c: RootCascade | None) -> None:
        if not isinstance(ev, Takeover):  # dispatch by type name: a bug, not input
            raise TypeError(f"expected Takeover, got {type(ev).__name__}")
        self.takeover.add(ev, ev.symbol, ev.qty, INSURANCE, ev.value)
        if c is not None:
            c.takeover_qty += abs(ev.qty)

    def _deleveraged(self, ev: Event, c: RootCascade | None) -> None:
        if not isinstance(ev, Deleveraged):  # dispatch by type name: a bug, not input
            raise TypeError(f"expected Deleveraged, got {type(ev).__name__}")
        self.adl.add(ev, ev.symbol, ev.qty, ev.counterparty, ev.value)
        if c is not None:
            c.adl_qty += abs(ev.qty)
            c.deleveraged.add(ev.counterparty)

    def _insurance_payment(self, ev: Event, c: RootCascade | None) -> None:
        if not isinstance(ev, InsurancePayment):  # dispatch by type name: a bug, not input
            raise TypeError(f"expected InsurancePayment, got {type(ev).__name__}")
        self.insurance_payments += ev.amount

    def _socialized(self, ev: Event, c: RootCascade | None) -> None:
        if not isinstance(ev, SocializedLoss):  # dispatch by type name: a bug, not input
            raise TypeError(f"expected SocializedLoss, got {type(ev).__name__}")
        self.socialized += ev.amount
        if c is not None:
            c.socialized += ev.amount

    def _clawback(self, ev: Event, c: RootCascade | None) -> None:
        if not isinstance(ev, Clawback):  # dispatch by type name: a bug, not input
            raise TypeError(f"expected Clawback, got {type(ev).__name__}")
        self.clawback_loss += ev.loss
        self.clawback_collected += ev.collected
        self.clawback_periods += 1
        self.clawed.update(str(a) for a, _ in ev.charges)

    def _system_debt(self, ev: Event, c: RootCascade | None) -> None:
        if not isinstance(ev, SystemDebt):  # dispatch by type name: a bug, not input
            raise TypeError(f"expected SystemDebt, got {type(ev).__name__}")
        self.system_debt += ev.amount
        self.debt_events += 1
        if c is not None:
            c.system_debt += ev.amount

    def _avoided(self, ev: Event, c: RootCascade | None) -> None:
        self.avoided += 1

    def _finished(self, ev: Event, c: RootCascade | None) -> None:
        if not isinstance(ev, LiquidationFinished):  # dispatch by type name: a bug, not input
            raise TypeError(f"expected LiquidationFinished, got {type(ev).__name__}")
        if ev.remaining:
            self.left_open += 1

    def _halt(self, ev: Event, c: RootCascade | None) -> None:
        self.halts += 1

    def _param_set(self, ev: Event, c: RootCascade | None) -> None:
        self.params_set += 1

    def _funding(self, ev: Event, c: RootCascade | None) -> None:
        if not isinstance(ev, Funding):  # dispatch by type name: a bug, not input
            raise TypeError(f"expected Funding, got {type(ev).__name__}")
        # One round is split over several events with the same cause: count it once.
        key = (ev.cause, ev.ts, ev.symbol)
        if key != self._funding_key:
            self._funding_key = key
            self.funding_rounds += 1


_Handler = Callable[[Story, Event, "RootCascade | None"], None]
_TOTALS: Final[dict[type[Event], _Handler]] = {
    Input: Story._input,
    Rejected: Story._rejected,
    Fill: Story._fill,
    IndexPrice: Story._index_price,
    LiquidationStep: Story._step,
    LiquidationFill: Story._liquidation_fill,
    BackstopTransfer: Story._backstop,
    Takeover: Story._takeover,
    Deleveraged: Story._deleveraged,
    InsurancePayment: Story._insurance_payment,
    SocializedLoss: Story._socialized,
    Clawback: Story._clawback,
    SystemDebt: Story._system_debt,
    LiquidationAvoided: Story._avoided,
    LiquidationFinished: Story._finished,
    Halt: Story._halt,
    ParamSet: Story._param_set,
    Funding: Story._funding,
}
