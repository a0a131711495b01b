"""The waterfall story of a log: a fold over its events, with no engine.

Everything here reads event fields only (DESIGN §8 "projections"), so it works on any stream
in the format, whoever wrote it, and on a live stream as well as a log read back.

Pieces, each usable alone:

- :func:`cash_moves` — :func:`.cash.cash_moves` for a typed event. The insurance fund, the
  fee pool, the clawback pool and the debt account (``clearing.accounts``) are accounts
  like any other, so every balance, the fund's included, is the sum of its moves (plus the
  fund's configured initial balance).
- :class:`FundSummary` — the insurance fund's cash balance: start, minimum (with seq and
  time), end, money in and out by reason (per event, net), and optionally the timeline.
  It is not :class:`.fund.FundFold`: that one keeps a row per component of a change (fee,
  surplus and shortfall of one fill apart) with the timeline's own reasons, while the story
  sums each event's cash moves; the two agree on the balance after every event.
- :class:`CascadeFold` — the causal forest: every event's root (the input at the top of its
  ``cause`` chain) and, per root that liquidated anyone, a :class:`RootCascade` of totals.
- :class:`Story` — all of the above plus the waterfall totals (book, backstop, takeover, ADL,
  clawback, system debt), fed one event at a time; ``replay.cli.render.story_text`` tells it.

The fund's balance here is its *cash*. If a ``takeover`` step leaves the fund holding a
position, its equity differs from its cash by that position's value at the mark; the fold
reports the position's size alongside (``FundSummary.position``) rather than guessing a mark.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Final

import attrs

from clearsim.clearing.accounts import INSURANCE
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
    Settlement,
    SocializedLoss,
    SystemDebt,
    Takeover,
)
from clearsim.replay.projections.cash import Move, initial_fund, money_scale
from clearsim.replay.projections.cash import cash_moves as _raw_cash_moves

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
    """One change of the fund's cash: the event, the amount, the balance after, and why."""

    seq: int
    ts: int
    delta: int
    balance: int
    reason: str
    account: str  # the counterparty of the move ("" for a deposit)


@attrs.define
class FundSummary:
    """The insurance fund's cash, from its configured initial balance and the cash moves."""

    start: int = 0
    balance: int = 0
    min_balance: int = 0
    min_seq: int = 0  # 0: the minimum is the start
    min_ts: int = 0
    #: seq and ts of the first change that left the fund at zero (or below), if any
    empty_seq: int = 0
    empty_ts: int = 0
    changes: int = 0
    inflows: Counter[str] = attrs.field(factory=Counter)
    outflows: Counter[str] = attrs.field(factory=Counter)
    position: dict[str, int] = attrs.field(factory=dict)  # lots held after takeovers
    timeline: list[FundChange] | None = None

    @classmethod
    def starting_at(cls, initial: int, keep_timeline: bool = False) -> FundSummary:
        return cls(
            start=initial,
            balance=initial,
            min_balance=initial,
            timeline=[] if keep_timeline else None,
        )

    def feed(self, ev: Event, moves: list[Move]) -> int:
        """Apply ``ev``'s moves; return the fund's net change (0 when untouched)."""
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
        self._positions(ev)
        if not net:
            return 0
        self.balance += net
        self.changes += 1
        if self.balance < self.min_balance:
            self.min_balance, self.min_seq, self.min_ts = self.balance, ev.seq, ev.ts
        if self.balance <= 0 < self.balance - net and not self.empty_seq:
            self.empty_seq, self.empty_ts = ev.seq, ev.ts
        if self.timeline is not None:
            self.timeline.append(FundChange(ev.seq, ev.ts, net, self.balance, reason, other))
        return net

    def _positions(self, ev: Event) -> None:
        t = type(ev)
        if t is Takeover:
            assert isinstance(ev, Takeover)
            self.position[ev.symbol] = self.position.get(ev.symbol, 0) + ev.qty
        elif t is Settlement:
            assert isinstance(ev, Settlement)
            if ev.buyer == INSURANCE:
                self.position[ev.symbol] = self.position.get(ev.symbol, 0) + ev.qty
            if ev.seller == INSURANCE:
                self.position[ev.symbol] = self.position.get(ev.symbol, 0) - ev.qty


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
    fund_in: int = 0
    fund_out: int = 0
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
            assert isinstance(ev, Input)
            self._input = ev
            self._moves = {}
        elif t is IndexPrice:
            assert isinstance(ev, IndexPrice)
            self._moves["index"] = (ev.symbol, self._index.get(ev.symbol), ev.price)
            self._index[ev.symbol] = ev.price
        elif t is MarkPrice:
            assert isinstance(ev, MarkPrice)
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
        self.fund = FundSummary.starting_at(initial_fund(config), keep_fund_timeline)
        backstops = config.get("waterfall", {}).get("backstop_accounts", [])
        self._backstops = frozenset(str(b) for b in backstops)
        #: backstop accounts that were themselves liquidated: id -> (seq, ts) of the first time
        self.backstops_liquidated: dict[str, tuple[int, int]] = {}
        self.cascades = CascadeFold()
        self.events = 0
        self.commands = 0
        self.rejected: Counter[str] = Counter()
        self.first_ts: int | None = None
        self.last_ts = 0
        self.last_seq = 0
        self.index: dict[str, PriceRange] = {}
        self.trades = 0
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
        moves = cash_moves(ev)
        net = self.fund.feed(ev, moves) if moves else 0
        t = type(ev)
        if t is LiquidationTriggered:
            assert isinstance(ev, LiquidationTriggered)
            self.triggered += 1
            self.liquidated.add(ev.account)
            if ev.account in self._backstops:
                self.backstops_liquidated.setdefault(ev.account, (ev.seq, ev.ts))
            c: RootCascade | None = self.cascades.cascade(root, ev.ts)
            assert c is not None
            c.triggered += 1
            c.accounts.add(ev.account)
        else:
            c = self.cascades.cascades.get(root)
            handler = _TOTALS.get(t)
            if handler is not None:
                handler(self, ev, c)
        if c is not None:
            c.last_seq = ev.seq
            if net > 0:
                c.fund_in += net
            elif net < 0:
                c.fund_out -= net

    # Per event type: update the totals, and the cascade ``c`` the event belongs to, if any.

    def _input(self, ev: Event, c: RootCascade | None) -> None:
        self.commands += 1

    def _rejected(self, ev: Event, c: RootCascade | None) -> None:
        assert isinstance(ev, Rejected)
        self.rejected[ev.reason] += 1

    def _fill(self, ev: Event, c: RootCascade | None) -> None:
        self.trades += 1

    def _index_price(self, ev: Event, c: RootCascade | None) -> None:
        assert isinstance(ev, IndexPrice)
        r = self.index.get(ev.symbol)
        if r is None:
            self.index[ev.symbol] = PriceRange.at(ev.price, ev.seq, ev.ts)
        else:
            r.add(ev.price, ev.seq, ev.ts)

    def _step(self, ev: Event, c: RootCascade | None) -> None:
        assert isinstance(ev, LiquidationStep)
        self.steps[ev.step] += 1

    def _liquidation_fill(self, ev: Event, c: RootCascade | None) -> None:
        assert isinstance(ev, LiquidationFill)
        self.book.add(ev, ev.symbol, ev.qty)
        self.shortfall_paid += ev.fund_paid
        self.liquidation_fees += ev.fee
        self.surplus_to_fund += ev.surplus_to_fund
        if c is not None:
            c.book_qty += ev.qty

    def _backstop(self, ev: Event, c: RootCascade | None) -> None:
        assert isinstance(ev, BackstopTransfer)
        self.backstop.add(ev, ev.symbol, ev.qty, ev.backstop, ev.value)
        if c is not None:
            c.backstop_qty += abs(ev.qty)

    def _takeover(self, ev: Event, c: RootCascade | None) -> None:
        assert isinstance(ev, Takeover)
        self.takeover.add(ev, ev.symbol, ev.qty, INSURANCE, ev.value)
        if c is not None:
            c.takeover_qty += abs(ev.qty)

    def _deleveraged(self, ev: Event, c: RootCascade | None) -> None:
        assert isinstance(ev, Deleveraged)
        self.adl.add(ev, ev.symbol, ev.qty, ev.counterparty, ev.value)
        if c is not None:
            c.adl_qty += abs(ev.qty)
            c.deleveraged.add(ev.counterparty)

    def _insurance_payment(self, ev: Event, c: RootCascade | None) -> None:
        assert isinstance(ev, InsurancePayment)
        self.insurance_payments += ev.amount

    def _socialized(self, ev: Event, c: RootCascade | None) -> None:
        assert isinstance(ev, SocializedLoss)
        self.socialized += ev.amount
        if c is not None:
            c.socialized += ev.amount

    def _clawback(self, ev: Event, c: RootCascade | None) -> None:
        assert isinstance(ev, Clawback)
        self.clawback_loss += ev.loss
        self.clawback_collected += ev.collected
        self.clawback_periods += 1
        self.clawed.update(str(a) for a, _ in ev.charges)

    def _system_debt(self, ev: Event, c: RootCascade | None) -> None:
        assert isinstance(ev, SystemDebt)
        self.system_debt += ev.amount
        self.debt_events += 1
        if c is not None:
            c.system_debt += ev.amount

    def _avoided(self, ev: Event, c: RootCascade | None) -> None:
        self.avoided += 1

    def _finished(self, ev: Event, c: RootCascade | None) -> None:
        assert isinstance(ev, LiquidationFinished)
        if ev.remaining:
            self.left_open += 1

    def _halt(self, ev: Event, c: RootCascade | None) -> None:
        self.halts += 1

    def _param_set(self, ev: Event, c: RootCascade | None) -> None:
        self.params_set += 1

    def _funding(self, ev: Event, c: RootCascade | None) -> None:
        assert isinstance(ev, Funding)
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
