"""Property tests of the order book: random command streams over a narrow price range.

Three independent checks of the same streams:

* a naive reference book (lists, sort on every match; written from the rules, not from
  book.py) must emit exactly the same events and hold the same state after every command;
* an event-only ledger (it sees nothing but the events) checks quantity conservation per
  order and in total, FIFO within a level, best-price-first, and never-crossed-at-rest;
* the same stream twice gives identical event lists.

A RuleBasedStateMachine drives the same comparison step by step.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from clearsim.events.sequencer import Sequencer
from clearsim.events.types import (
    Event,
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
)
from clearsim.orderbook import OrderBook
from clearsim.orderbook import book as book_module

# events.types' classes are built by a decorator mypy cannot see through (see book.py).
_Fill: Any = Fill
_Accepted: Any = OrderAccepted
_Expired: Any = OrderExpired
_Cancelled: Any = OrderCancelled
_Rejected: Any = OrderRejected
_Amended: Any = OrderAmended

SYM = "T-PERP"
ACCOUNTS = ["A", "B", "C"]
IDS = ["o0", "o1", "o2", "o3", "o4", "o5"]
STPS = ["cancel_taker", "cancel_maker", "cancel_both", "none"]
PRICES = list(range(97, 104))


# --------------------------------------------------------------------------- reference model


class _ROrder:
    def __init__(
        self, account: str, oid: str, side: str, price: int, qty: int, prio: int, arrival: int
    ) -> None:
        self.account, self.oid, self.side = account, oid, side
        self.price, self.qty, self.prio, self.arrival = price, qty, prio, arrival


class RefBook:
    """The rules, written as plainly as possible: a flat list, sorted when needed."""

    def __init__(self, stp: str) -> None:
        self.seq = Sequencer()
        self.stp = stp
        self.orders: list[_ROrder] = []
        self.clock = 0

    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    def _find(self, account: Any, oid: Any) -> _ROrder | None:
        for o in self.orders:
            if o.account == account and o.oid == oid:
                return o
        return None

    def _reject(self, out: list[Event], ts: int, cause: int, oid: Any, acct: Any, why: str) -> None:
        oid = oid if type(oid) is str else repr(oid)
        acct = acct if type(acct) is str else repr(acct)
        out.append(_Rejected(self.seq.next(), ts, cause, SYM, oid, acct, why))

    @staticmethod
    def _int_pos(v: Any) -> bool:
        return type(v) is int and v > 0

    def submit(
        self,
        out: list[Event],
        ts: int,
        cause: int,
        oid: Any,
        acct: Any,
        side: Any,
        qty: Any,
        price: Any,
        tif: Any,
    ) -> None:
        if type(oid) is not str or oid == "":
            return self._reject(out, ts, cause, oid, acct, "bad_order_id")
        if type(acct) is not str or acct == "":
            return self._reject(out, ts, cause, oid, acct, "bad_account")
        if side not in ("buy", "sell"):
            return self._reject(out, ts, cause, oid, acct, "bad_side")
        if tif not in ("gtc", "ioc", "fok", "post_only"):
            return self._reject(out, ts, cause, oid, acct, "bad_tif")
        if not self._int_pos(qty):
            return self._reject(out, ts, cause, oid, acct, "bad_qty")
        if price is None and tif == "post_only":
            return self._reject(out, ts, cause, oid, acct, "market_post_only")
        if price is not None and not self._int_pos(price):
            return self._reject(out, ts, cause, oid, acct, "bad_price")
        if self._find(acct, oid) is not None:
            return self._reject(out, ts, cause, oid, acct, "duplicate_id")

        def crosses(o: _ROrder) -> bool:
            if price is None:
                return True
            return bool(o.price <= price if side == "buy" else o.price >= price)

        makers = sorted(
            (o for o in self.orders if o.side != side and crosses(o)),
            key=lambda o: (o.price if side == "buy" else -o.price, o.prio),
        )
        if tif == "post_only" and makers:
            return self._reject(out, ts, cause, oid, acct, "post_only_would_take")
        acc = self.seq.next()
        out.append(_Accepted(acc, ts, cause, SYM, oid, acct, side, qty, price, tif))
        if tif == "fok":
            avail = 0
            for o in makers:
                if o.account == acct and self.stp != "none":
                    if self.stp == "cancel_maker":
                        continue
                    break
                avail += o.qty
            if avail < qty:
                out.append(_Expired(self.seq.next(), ts, acc, SYM, oid, acct, qty, "fok"))
                return None
        rem = qty
        for o in makers:
            if rem == 0:
                break
            if o.account == acct and self.stp != "none":
                if self.stp in ("cancel_maker", "cancel_both"):
                    out.append(
                        _Cancelled(
                            self.seq.next(), ts, acc, SYM, o.oid, o.account, o.qty, "self_trade"
                        )
                    )
                    self.orders.remove(o)
                if self.stp in ("cancel_taker", "cancel_both"):
                    out.append(
                        _Expired(self.seq.next(), ts, acc, SYM, oid, acct, rem, "self_trade")
                    )
                    return None
                continue
            q = min(rem, o.qty)
            out.append(
                _Fill(self.seq.next(), ts, acc, SYM, o.price, q, o.oid, o.account, oid, acct, side)
            )
            rem -= q
            o.qty -= q
            if o.qty == 0:
                self.orders.remove(o)
        if rem == 0:
            return None
        if price is None or tif == "ioc":
            why = "market" if price is None else "ioc"
            out.append(_Expired(self.seq.next(), ts, acc, SYM, oid, acct, rem, why))
            return None
        t = self._tick()
        self.orders.append(_ROrder(acct, oid, side, price, rem, t, t))
        return None

    def cancel(
        self, out: list[Event], ts: int, cause: int, acct: Any, oid: Any, reason: str = "user"
    ) -> bool:
        o = self._find(acct, oid)
        if o is None:
            self._reject(out, ts, cause, oid, acct, "unknown_order")
            return False
        self.orders.remove(o)
        out.append(_Cancelled(self.seq.next(), ts, cause, SYM, oid, acct, o.qty, reason))
        return True

    def cancel_all(
        self, out: list[Event], ts: int, cause: int, acct: Any, reason: str = "cancel_all"
    ) -> int:
        mine = sorted((o for o in self.orders if o.account == acct), key=lambda o: o.arrival)
        for o in mine:
            self.cancel(out, ts, cause, acct, o.oid, reason)
        return len(mine)

    def amend(
        self, out: list[Event], ts: int, cause: int, acct: Any, oid: Any, qty: Any, price: Any
    ) -> bool:
        if qty is not None and not self._int_pos(qty):
            self._reject(out, ts, cause, oid, acct, "bad_qty")
            return False
        if price is not None and not self._int_pos(price):
            self._reject(out, ts, cause, oid, acct, "bad_price")
            return False
        o = self._find(acct, oid)
        if o is None:
            self._reject(out, ts, cause, oid, acct, "unknown_order")
            return False
        nq = o.qty if qty is None else qty
        np_ = o.price if price is None else price
        kept = np_ == o.price and nq <= o.qty
        if np_ != o.price:
            opp = [x.price for x in self.orders if x.side != o.side]
            if opp and (np_ >= min(opp) if o.side == "buy" else np_ <= max(opp)):
                self._reject(out, ts, cause, oid, acct, "would_cross")
                return False
        o.qty, o.price = nq, np_
        if not kept:
            o.prio = self._tick()
        out.append(_Amended(self.seq.next(), ts, cause, SYM, oid, acct, nq, np_, kept))
        return True

    def state(self) -> dict[str, Any]:
        def levels(side: str) -> list[tuple[int, int]]:
            tot: Counter[int] = Counter()
            for o in self.orders:
                if o.side == side:
                    tot[o.price] += o.qty
            return sorted(tot.items(), reverse=side == "buy")

        by_acct = {
            a: [
                (o.oid, o.side, o.price, o.qty)
                for o in sorted(self.orders, key=lambda o: o.arrival)
                if o.account == a
            ]
            for a in ACCOUNTS
        }
        return {
            "bids": levels("buy"),
            "asks": levels("sell"),
            "n": len(self.orders),
            "accounts": by_acct,
        }


def book_state(b: OrderBook) -> dict[str, Any]:
    by_acct = {a: [(o.order_id, o.side, o.price, o.qty) for o in b.orders_of(a)] for a in ACCOUNTS}
    return {
        "bids": list(b.levels("buy")),
        "asks": list(b.levels("sell")),
        "n": len(b),
        "accounts": by_acct,
    }


# --------------------------------------------------------------------------- command streams

# Mostly well-formed orders over 7 prices and 3 accounts, so that orders cross, queue,
# self-trade and reuse ids often; malformed ones are a small share so they do not crowd
# out the interesting cases.
prices = st.sampled_from([None, *PRICES, *PRICES])
good_submits = st.tuples(
    st.just("submit"),
    st.sampled_from(IDS),
    st.sampled_from(ACCOUNTS),
    st.sampled_from(["buy", "sell"]),
    st.integers(1, 6),
    prices,
    st.sampled_from(["gtc", "gtc", "gtc", "ioc", "fok", "post_only"]),
)
bad_submits = st.tuples(
    st.just("submit"),
    st.sampled_from(["o0", "", 5]),
    st.sampled_from(["A", "", None]),
    st.sampled_from(["buy", "sell", "hold"]),
    st.sampled_from([1, 0, -1, True, 1.0]),
    st.sampled_from([None, 100, 0, -5, False, 100.0]),
    st.sampled_from(["gtc", "post_only", "day"]),
)
submits = st.one_of(good_submits, bad_submits)
# A cancel or amend names its order by id, or by an int k: "the account's k-th live order
# (mod how many it has)", resolved when it runs, so that most of them hit a live order.
targets = st.sampled_from([0, 1, 2, 3, 0, 1, 2, 3, "o0", "o5", "zz"])
cancels = st.tuples(st.just("cancel"), st.sampled_from(ACCOUNTS), targets)
amends = st.tuples(
    st.just("amend"),
    st.sampled_from(ACCOUNTS),
    targets,
    st.sampled_from([None, None, 1, 2, 3, 5, 8, 0]),
    st.sampled_from([None, None, *PRICES, -1]),
)
cancel_alls = st.tuples(st.just("cancel_all"), st.sampled_from(ACCOUNTS))
stp_sets = st.tuples(st.just("stp"), st.sampled_from(STPS))
# A weighted choice (st.one_of draws its branches far from evenly in practice).
_KINDS = [good_submits] * 12 + [cancels] * 3 + [amends] * 3 + [bad_submits, cancel_alls, stp_sets]
commands = st.sampled_from(range(len(_KINDS))).flatmap(lambda i: _KINDS[i])
streams = st.lists(commands, min_size=10, max_size=80)


def _target(b: Any, acct: str, t: str | int) -> str:
    if isinstance(t, str):
        return t
    if isinstance(b, RefBook):
        ids = [o.oid for o in sorted(b.orders, key=lambda o: o.arrival) if o.account == acct]
    else:
        ids = [o.order_id for o in b.orders_of(acct)]
    return ids[t % len(ids)] if ids else "none"


def apply(b: Any, cmd: tuple[Any, ...], ts: int) -> list[Event]:
    """Run one command on an OrderBook or a RefBook; return its events."""
    out: list[Event] = []
    kind = cmd[0]
    if kind == "submit":
        b.submit(out, ts, ts, *cmd[1:])
    elif kind == "cancel":
        b.cancel(out, ts, ts, cmd[1], _target(b, cmd[1], cmd[2]))
    elif kind == "amend":
        b.amend(out, ts, ts, cmd[1], _target(b, cmd[1], cmd[2]), cmd[3], cmd[4])
    elif kind == "cancel_all":
        b.cancel_all(out, ts, ts, cmd[1])
    else:
        b.stp = cmd[1]
    return out


# --------------------------------------------------------------------------- event-only ledger


class Ledger:
    """Rebuilds what it can from events alone and checks every event against it.

    One entry per incarnation of (account, order_id): an id is reused only once its order
    is gone, so events always refer to the latest incarnation.
    """

    def __init__(self) -> None:
        self.live: dict[tuple[str, str], dict[str, Any]] = {}  # current incarnation
        self.all: list[dict[str, Any]] = []
        # (side, price) -> queue of resting incarnations in time priority, from events
        self.queues: dict[tuple[str, int], list[dict[str, Any]]] = {}

    def _best(self, side: str) -> int | None:
        ps = [p for (s, p), q in self.queues.items() if s == side and q]
        if not ps:
            return None
        return max(ps) if side == "buy" else min(ps)

    def _dequeue(self, o: dict[str, Any]) -> None:
        q = self.queues.get((o["side"], o["price"]), [])
        if o in q:
            q.remove(o)

    def fold(self, events: list[Event]) -> None:
        takers: list[dict[str, Any]] = []
        for e in events:
            if type(e) is OrderAccepted:
                key = (e.account, e.order_id)
                assert key not in self.live or self.live[key]["rem"] == 0, "id reused while live"
                o: dict[str, Any] = {
                    "key": key,
                    "side": e.side,
                    "price": e.price,
                    "tif": e.tif,
                    "placed": e.qty,
                    "rem": e.qty,
                    "filled": 0,
                    "cancelled": 0,
                    "expired": 0,
                    "expired_flag": False,
                }
                self.live[key] = o
                self.all.append(o)
                takers.append(o)
            elif type(e) is Fill:
                m = self.live[(e.maker_account, e.maker_order)]
                t = self.live[(e.taker_account, e.taker_order)]
                assert m["side"] != t["side"] == e.taker_side
                assert m["price"] == e.price, "fill not at the maker's price"
                lim = t["price"]
                if lim is not None:
                    assert e.price <= lim if t["side"] == "buy" else e.price >= lim
                # Best price first, and FIFO within the level.
                assert e.price == self._best(m["side"]), "fill not at the best level"
                q = self.queues[(m["side"], e.price)]
                assert q[0] is m, "maker is not at the front of its level (FIFO broken)"
                assert 0 < e.qty <= min(m["rem"], t["rem"])
                for o in (m, t):
                    o["rem"] -= e.qty
                    o["filled"] += e.qty
                if m["rem"] == 0:
                    q.pop(0)
            elif type(e) is OrderCancelled:
                o = self.live[(e.account, e.order_id)]
                assert e.qty == o["rem"] > 0, "cancel must remove exactly what was open"
                o["rem"] = 0
                o["cancelled"] += e.qty
                self._dequeue(o)
            elif type(e) is OrderExpired:
                o = self.live[(e.account, e.order_id)]
                assert e.qty == o["rem"] > 0, "expiry must remove exactly what was open"
                o["rem"] = 0
                o["expired"] += e.qty
            elif type(e) is OrderAmended:
                o = self.live[(e.account, e.order_id)]
                assert o["rem"] > 0 and e.qty > 0
                if e.priority_kept:
                    assert e.price == o["price"] and e.qty <= o["rem"]
                o["placed"] += e.qty - o["rem"]
                o["rem"] = e.qty
                if not e.priority_kept:
                    self._dequeue(o)
                    o["price"] = e.price
                    self.queues.setdefault((o["side"], e.price), []).append(o)
            else:
                assert type(e) is OrderRejected
        for o in takers:
            if o["rem"] > 0:  # not filled, not expired: it rested
                assert o["tif"] in ("gtc", "post_only") and o["price"] is not None
                self.queues.setdefault((o["side"], o["price"]), []).append(o)
        bb, ba = self._best("buy"), self._best("sell")
        assert bb is None or ba is None or bb < ba, "crossed at rest (from events)"

    def check_against(self, b: OrderBook) -> None:
        resting = 0
        for o in self.all:
            # Per order: placed (with amends) = resting + filled + cancelled + expired.
            assert o["placed"] == o["rem"] + o["filled"] + o["cancelled"] + o["expired"]
            if self.live.get(o["key"]) is o and o["rem"] > 0:
                r = b.get(*o["key"])
                assert r is not None and r.qty == o["rem"] and r.price == o["price"]
                resting += o["rem"]
        total = {
            k: sum(o[k] for o in self.all) for k in ("placed", "filled", "cancelled", "expired")
        }
        assert total["placed"] == resting + total["filled"] + total["cancelled"] + total["expired"]
        assert resting == sum(q for _, q in b.levels("buy")) + sum(q for _, q in b.levels("sell"))
        # Level totals from events equal the book's.
        for side in ("buy", "sell"):
            ev_levels = sorted(
                (
                    (p, sum(o["rem"] for o in q))
                    for (s, p), q in self.queues.items()
                    if s == side and q
                ),
                reverse=side == "buy",
            )
            assert ev_levels == list(b.levels(side))


# --------------------------------------------------------------------------- properties

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(stp=st.sampled_from(STPS), cmds=streams)
def test_same_events_and_state_as_the_reference_model(stp: str, cmds: list[Any]) -> None:
    b = OrderBook(SYM, Sequencer(), stp)
    r = RefBook(stp)
    for i, cmd in enumerate(cmds, 1):
        got = apply(b, cmd, i)
        want = apply(r, cmd, i)
        assert got == want, f"command {i} {cmd}"
        assert book_state(b) == r.state()


@FAST
@given(stp=st.sampled_from(STPS), cmds=streams)
def test_level_compaction_changes_nothing(stp: str, cmds: list[Any]) -> None:
    # Compact at every dead entry (normally 16 and half the level are needed): the
    # lazy-cancel cleanup runs constantly and must not change order or totals.
    saved = book_module._COMPACT_MIN_DEAD, book_module._COMPACT_SHARE
    book_module._COMPACT_MIN_DEAD, book_module._COMPACT_SHARE = 0, 1_000_000
    try:
        b = OrderBook(SYM, Sequencer(), stp)
        r = RefBook(stp)
        for i, cmd in enumerate(cmds, 1):
            assert apply(b, cmd, i) == apply(r, cmd, i)
            b.check_invariants()
        assert book_state(b) == r.state()
    finally:
        book_module._COMPACT_MIN_DEAD, book_module._COMPACT_SHARE = saved


@FAST
@given(stp=st.sampled_from(STPS), cmds=streams)
def test_invariants_from_events_alone(stp: str, cmds: list[Any]) -> None:
    b = OrderBook(SYM, Sequencer(), stp)
    ledger = Ledger()
    last_seq = 0
    for i, cmd in enumerate(cmds, 1):
        ev = apply(b, cmd, i)
        assert [e.seq for e in ev] == list(range(last_seq + 1, last_seq + 1 + len(ev)))
        last_seq += len(ev)
        ledger.fold(ev)
        ledger.check_against(b)
        b.check_invariants()
        bid, ask = b.best_bid(), b.best_ask()
        assert bid is None or ask is None or bid < ask
        assert b.mid2() == (None if bid is None or ask is None else bid + ask)
        # Level totals equal the sums of the orders in them.
        per_level: Counter[tuple[str, int]] = Counter()
        for a in ACCOUNTS:
            for o in b.orders_of(a):
                per_level[(o.side, o.price)] += o.qty
        for side in ("buy", "sell"):
            assert list(b.levels(side)) == sorted(
                ((p, q) for (s, p), q in per_level.items() if s == side), reverse=side == "buy"
            )


@FAST
@given(stp=st.sampled_from(STPS), cmds=streams)
def test_same_input_same_events(stp: str, cmds: list[Any]) -> None:
    runs = []
    for _ in range(2):
        b = OrderBook(SYM, Sequencer(), stp)
        runs.append([e for i, c in enumerate(cmds, 1) for e in apply(b, c, i)])
    assert runs[0] == runs[1]


@settings(max_examples=200, deadline=None)
@given(
    stp=st.sampled_from(STPS),
    cmds=streams,
    side=st.sampled_from(["buy", "sell"]),
    qty=st.integers(1, 30),
    limit=st.sampled_from([None, *PRICES]),
    acct=st.sampled_from(ACCOUNTS),
)
def test_fillable_and_executable_agree_with_what_fills(
    stp: str, cmds: list[Any], side: str, qty: int, limit: int | None, acct: str
) -> None:
    b = OrderBook(SYM, Sequencer(), stp)
    for i, cmd in enumerate(cmds, 1):
        apply(b, cmd, i)
    # fillable: others' liquidity within the limit, from the levels and orders_of.
    others = 0
    for a in ACCOUNTS:
        if a == acct:
            continue
        for o in b.orders_of(a):
            if o.side != side and (
                limit is None or (o.price <= limit if side == "buy" else o.price >= limit)
            ):
                others += o.qty
    assert b.fillable(side, qty, limit, acct) == min(qty, others)
    # executable: exactly what an ioc of the same shape fills (fresh id, so no duplicate).
    expect = b.executable(side, qty, limit, acct)
    out: list[Event] = []
    b.submit(out, 0, 0, "probe", acct, side, qty, limit, "ioc")
    assert sum(e.qty for e in out if type(e) is Fill) == expect


# --------------------------------------------------------------------------- state machine


class BookMachine(RuleBasedStateMachine):
    """Step by step against the reference model, invariants after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.book = OrderBook(SYM, Sequencer(), "cancel_taker")
        self.ref = RefBook("cancel_taker")
        self.ledger = Ledger()
        self.ts = 0

    def _run(self, cmd: tuple[Any, ...]) -> None:
        self.ts += 1
        got = apply(self.book, cmd, self.ts)
        assert got == apply(self.ref, cmd, self.ts)
        self.ledger.fold(got)

    @rule(cmd=submits)
    def submit(self, cmd: tuple[Any, ...]) -> None:
        self._run(cmd)

    @rule(cmd=cancels)
    def cancel(self, cmd: tuple[Any, ...]) -> None:
        self._run(cmd)

    @rule(cmd=amends)
    def amend(self, cmd: tuple[Any, ...]) -> None:
        self._run(cmd)

    @rule(cmd=cancel_alls)
    def cancel_all(self, cmd: tuple[Any, ...]) -> None:
        self._run(cmd)

    @rule(cmd=stp_sets)
    def set_stp(self, cmd: tuple[Any, ...]) -> None:
        self._run(cmd)

    @invariant()
    def same_state_as_reference(self) -> None:
        assert book_state(self.book) == self.ref.state()

    @invariant()
    def internally_consistent(self) -> None:
        self.book.check_invariants()
        self.ledger.check_against(self.book)


BookMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
TestBookMachine = BookMachine.TestCase
