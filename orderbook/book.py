"""The limit order book of one instrument: price-time priority matching, in ticks and lots.

This module owns the resting orders of one instrument and the matching rules: validation of
an order's shape, price-time priority, time in force (gtc, ioc, fok, post_only, market),
self-trade prevention, cancel, cancel-all and amend. It knows nothing of money, accounts'
balances or margin (``clearing`` decides whether an order may be sent at all); it never
raises on bad input (a malformed order gets an ``OrderRejected`` event with a short
snake_case reason); and it is deterministic: no set iteration, no randomness, no clock.
Every change is reported as events appended to the caller's ``out`` list, with seqs from
the shared :class:`~events.sequencer.Sequencer` and the caller's ``ts``.

Layout (chosen for the costs the engine is budgeted for):

* Each side is a :class:`_Side`: a ``SortedList`` of price *keys* plus a dict key -> level,
  and the best key cached. Asks are keyed by price and bids by ``-price``, so on both sides
  "better" is "smaller key", the best level is the first key, and one matching loop serves
  both sides (an incoming order crosses a level when ``key <= limit_key``).
  A new level costs O(log P); an order at an existing level O(1).
* A level (:class:`_Level`) is a ``deque`` of :class:`RestingOrder` in time priority with a
  running total. Cancels are lazy: the order's ``qty`` is set to 0 (a live order always has
  ``qty > 0``) and it is skipped when it reaches the front; a level is dropped as soon as its
  total is 0, and compacted when dead entries outnumber live ones, so cancel is O(1)
  amortized and matching O(fills + skipped dead entries), each dead entry skipped once.
* ``_acct`` maps account -> {order_id: RestingOrder} in arrival order; it is the id index
  (no tuple keys) and gives ``orders_of`` / ``cancel_all`` without a scan.

Rules where a choice had to be made:

* Validation order: order id, account, side, tif, qty, price (market + post_only after
  qty), duplicate id, then post_only_would_take. One ``OrderRejected`` and nothing else.
* A market order (price None) never rests, whatever its tif: its remainder expires with
  reason "market"; a limit ioc's with "ioc"; a gtc/post_only limit remainder rests.
* post_only is rejected if its price reaches the opposite best, whoever owns that order.
* Self-trade prevention: ``cancel_both`` emits the maker's ``OrderCancelled`` first, then
  the taker's ``OrderExpired``; ``cancel_taker`` expires a gtc remainder too (it does not
  rest); a market order whose makers were all cancelled by ``cancel_maker`` expires as
  "market". One account may be exempt (``stp_exempt``): its orders match each other like
  anyone's, as under ``none`` (clearing's ``#market``: the historical market is many
  traders, and a historical trade against historical depth is a trade).
* :meth:`OrderBook.fillable` is others' liquidity (the account's own orders never count,
  whatever the STP mode). A fok is decided by :meth:`OrderBook.executable` -- what matching
  would really fill under the current STP mode -- so a fok that is accepted always fills
  completely: under ``cancel_taker`` / ``cancel_both`` only what is ahead of the taker's
  first own order counts; under ``cancel_maker`` own orders are skipped (they are cancelled
  only if the fok executes); under ``none`` they count.
* An amend never trades: a new price reaching the opposite best is ``would_cross``. A
  smaller (or equal) qty at the same price keeps queue priority; anything else goes to the
  back of the (new) level. ``qty=None`` and ``price=None`` means unchanged (both None is a
  no-op amend that keeps priority).
* Arrival order (``orders_of``, ``cancel_all``) is the order in which orders came to rest;
  an amend keeps an order's arrival place even when it loses its queue place.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import attrs
from sortedcontainers import SortedList

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

__all__ = ["REJECT_REASONS", "STP_MODES", "OrderBook", "RestingOrder"]

#: Self-trade prevention modes, by the code the hot path tests (0 = off, so ``if stp:``).
STP_MODES: dict[str, int] = {"none": 0, "cancel_taker": 1, "cancel_maker": 2, "cancel_both": 3}
_STP_NAMES = {v: k for k, v in STP_MODES.items()}

#: Every reason the book can put in an ``OrderRejected``.
REJECT_REASONS = (
    "bad_order_id",
    "bad_account",
    "bad_side",
    "bad_tif",
    "bad_qty",
    "bad_price",
    "market_post_only",
    "duplicate_id",
    "post_only_would_take",
    "unknown_order",
    "would_cross",
)

# A level is compacted once it holds more than _COMPACT_MIN_DEAD dead entries *and* dead
# entries make up more than 1/_COMPACT_SHARE of it: small levels never pay for a rebuild,
# big ones stay at most half garbage. (Tests turn both knobs to compact at every cancel.)
_COMPACT_MIN_DEAD = 16
_COMPACT_SHARE = 2

# ----------------------------------------------------------------------- building events
#

# The hot paths build RestingOrders and the three hottest events (OrderAccepted, Fill,
# OrderCancelled) as object.__new__ plus slot stores in the caller. Measured: 124 ns
# against 271 ns for a RestingOrder through its __init__, 187 ns against 257 ns for a
# Fill through attrs' __init__: the Python-level __init__ call is most of the cost, and
# with 1.4 events per operation this is a tenth of the engine's time.
_new_object: Any = object.__new__


def _require_plain_fields(cls: type, names: tuple[str, ...]) -> None:
    """Building an event without its __init__ is only equivalent while the class has
    exactly these fields and an __init__ that only assigns them; fail at import, loudly,
    the day events.types changes."""
    fields = attrs.fields(cls)
    plain = all(
        f.validator is None
        and f.converter is None
        and f.default is attrs.NOTHING
        and f.init
        and f.on_setattr is None
        for f in fields
    )
    hooks = hasattr(cls, "__attrs_post_init__") or hasattr(cls, "__attrs_pre_init__")
    if tuple(f.name for f in fields) != names or not plain or hooks:
        raise ImportError(
            f"orderbook.book builds {cls.__name__} field by field and expects exactly the "
            f"plain fields {names}; update the book's hot paths to match events.types"
        )


_ENVELOPE = ("seq", "ts", "cause")
_require_plain_fields(
    OrderAccepted, (*_ENVELOPE, "symbol", "order_id", "account", "side", "qty", "price", "tif")
)
_require_plain_fields(
    Fill,
    (
        *_ENVELOPE,
        "symbol",
        "price",
        "qty",
        "maker_order",
        "maker_account",
        "taker_order",
        "taker_account",
        "taker_side",
    ),
)
_require_plain_fields(
    OrderCancelled, (*_ENVELOPE, "symbol", "order_id", "account", "qty", "reason")
)


class RestingOrder:
    """An order resting in the book. Read-only for everyone but the book.

    ``qty`` is the remaining quantity; it is 0 once the order has left the book (filled,
    cancelled, or replaced by an amend that lost priority), which is also how the book
    recognises a dead queue entry.
    """

    __slots__ = ("account", "level", "order_id", "price", "qty", "side")

    def __init__(
        self, order_id: str, account: str, side: str, price: int, qty: int, level: _Level
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.side = side
        self.price = price
        self.qty = qty
        self.level = level

    def __repr__(self) -> str:
        return (
            f"RestingOrder({self.account!r}, {self.order_id!r}, {self.side}, "
            f"price={self.price}, qty={self.qty})"
        )


class _Level(deque[RestingOrder]):
    """One price level: its orders in time priority (dead entries included) and live totals.

    Subclassing deque rather than holding one saves an attribute load on every append,
    peek and pop in the matching loop. Made by :func:`_new_level` (a Python ``__init__``
    calling ``deque.__init__`` cost 5x a bare deque).
    """

    __slots__ = ("dead", "key", "price", "total")
    price: int
    key: int
    total: int  # sum of live orders' qty; 0 <=> no live order
    dead: int  # entries with qty == 0 still in the deque


def _new_level(side: _Side, price: int, key: int) -> _Level:
    """Create, index and return the empty level ``key`` of ``side``: O(log P)."""
    lvl = _Level()
    lvl.price = price
    lvl.key = key
    lvl.total = 0
    lvl.dead = 0
    side.levels[key] = lvl
    side.keys.add(key)
    b = side.best
    if b is None or key < b:
        side.best = key
    return lvl


def _compact(lvl: _Level) -> int:
    """Drop a level's dead entries, keeping the live ones in order; return the new dead
    count (0). O(len(lvl)), paid for by the more than len/2 cancels that made them."""
    live = [x for x in lvl if x.qty]
    lvl.clear()
    lvl.extend(live)
    return 0


def _iter_levels(side: _Side) -> Iterator[tuple[int, int]]:
    levels = side.levels
    for key in side.keys:
        lvl = levels[key]
        yield lvl.price, lvl.total


class _Side:
    """All levels of one side, keyed so that smaller key = better price."""

    __slots__ = ("best", "keys", "levels", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.keys = SortedList()
        self.levels: dict[int, _Level] = {}
        self.best: int | None = None  # keys[0], cached: read on every incoming order


class OrderBook:
    """Price-time priority book of one instrument; see the module docstring.

    Mutating methods take ``out`` (events are appended), ``ts`` (copied into every event)
    and ``cause`` (the seq of what caused the call; events that follow from an
    ``OrderAccepted`` name that event's seq instead).
    """

    __slots__ = ("_acct", "_asks", "_bids", "_n", "_seq", "_stp", "_stp_exempt", "symbol")

    def __init__(
        self,
        symbol: str,
        seq: Sequencer,
        stp: str = "cancel_taker",
        stp_exempt: str | None = None,
    ) -> None:
        self.symbol = symbol
        #: the account whose own orders match each other whatever the STP mode
        self._stp_exempt = stp_exempt
        self._seq = seq
        self._bids = _Side("buy")
        self._asks = _Side("sell")
        self._acct: dict[str, dict[str, RestingOrder]] = {}
        self._n = 0
        self._stp = 1
        self.stp = stp

    # ------------------------------------------------------------------ configuration

    @property
    def stp(self) -> str:
        """Self-trade prevention mode: cancel_taker | cancel_maker | cancel_both | none."""
        return _STP_NAMES[self._stp]

    @stp.setter
    def stp(self, mode: str) -> None:
        code = STP_MODES.get(mode) if isinstance(mode, str) else None
        if code is None:
            raise ValueError(f"unknown self-trade prevention mode {mode!r}")
        self._stp = code

    # ------------------------------------------------------------------ commands

    def submit(
        self,
        out: list[Event],
        ts: int,
        cause: int,
        order_id: str,
        account: str,
        side: str,
        qty: int,
        price: int | None,
        tif: str,
    ) -> None:
        """Validate, match and (gtc / post_only limit remainder) rest a new order."""
        # Validation: one OrderRejected and nothing else. `type(x) is int` also refuses
        # bool, which is an int subclass but never a quantity or a price.
        if type(order_id) is not str or not order_id:
            return self._reject(out, ts, cause, order_id, account, "bad_order_id")
        if type(account) is not str or not account:
            return self._reject(out, ts, cause, order_id, account, "bad_account")
        if side == "buy":
            opp = self._asks
            same = self._bids
            buy = True
        elif side == "sell":
            opp = self._bids
            same = self._asks
            buy = False
        else:
            return self._reject(out, ts, cause, order_id, account, "bad_side")
        if tif != "gtc" and tif != "ioc" and tif != "fok" and tif != "post_only":
            return self._reject(out, ts, cause, order_id, account, "bad_tif")
        if type(qty) is not int or qty <= 0:
            return self._reject(out, ts, cause, order_id, account, "bad_qty")
        if price is None:
            if tif == "post_only":
                return self._reject(out, ts, cause, order_id, account, "market_post_only")
            lim = None
        elif type(price) is not int or price <= 0:
            return self._reject(out, ts, cause, order_id, account, "bad_price")
        else:
            lim = price if buy else -price
        mine = self._acct.get(account)
        if mine is not None and order_id in mine:
            return self._reject(out, ts, cause, order_id, account, "duplicate_id")
        best = opp.best
        crosses = best is not None and (lim is None or best <= lim)
        if crosses and tif == "post_only":
            return self._reject(out, ts, cause, order_id, account, "post_only_would_take")

        seqr = self._seq
        acc = seqr.last + 1
        seqr.last = acc
        e = _new_object(OrderAccepted)  # = OrderAccepted(acc, ts, cause, ...), faster
        e.seq = acc
        e.ts = ts
        e.cause = cause
        e.symbol = self.symbol
        e.order_id = order_id
        e.account = account
        e.side = side
        e.qty = qty
        e.price = price
        e.tif = tif
        out.append(e)
        rem = qty
        if tif == "fok" and (not crosses or self._executable(opp, qty, lim, account) < qty):
            s = seqr.last + 1
            seqr.last = s
            out.append(OrderExpired(s, ts, acc, self.symbol, order_id, account, qty, "fok"))
            return None
        if crosses:
            rem = self._take(out, ts, acc, order_id, account, side, rem, lim, opp)
            if not rem:
                return None
        if lim is None or tif == "ioc":
            s = seqr.last + 1
            seqr.last = s
            reason = "market" if lim is None else "ioc"
            out.append(OrderExpired(s, ts, acc, self.symbol, order_id, account, rem, reason))
            return None
        # gtc or post_only remainder rests at the back of its level. (Here lim is not None,
        # so neither is price; mypy cannot follow that, hence the ignores.)
        # Its key on its own side is -lim: lim is the key it crosses on the other side.
        key = -lim
        lvl = same.levels.get(key)
        if lvl is None:
            lvl = _new_level(same, price, key)  # type: ignore[arg-type]
        # RestingOrder.__init__ inlined: a bare object plus slot stores is half the cost of
        # the call (keep in step with RestingOrder.__init__).
        o = _new_object(RestingOrder)
        o.order_id = order_id
        o.account = account
        o.side = side
        o.price = price
        o.qty = rem
        o.level = lvl
        lvl.append(o)
        lvl.total += rem
        if mine is None:
            # Re-read: matching never removes an account's dict, but it may not exist yet.
            mine = self._acct.setdefault(account, {})
        mine[order_id] = o
        self._n += 1
        return None

    def cancel(
        self,
        out: list[Event],
        ts: int,
        cause: int,
        account: str,
        order_id: str,
        reason: str = "user",
    ) -> bool:
        """Cancel a resting order; False (and an ``unknown_order`` rejection) if there is none."""
        try:
            o = self._acct[account].pop(order_id)
        except (KeyError, TypeError):  # TypeError: an unhashable id is unknown too
            self._reject(out, ts, cause, order_id, account, "unknown_order")
            return False
        # _unlink, inlined: cancels are a quarter of the traffic.
        qty = o.qty
        o.qty = 0
        lvl = o.level
        total = lvl.total - qty
        lvl.total = total
        self._n -= 1
        if not total:
            self._drop(lvl)
        else:
            dead = lvl.dead + 1
            if dead > _COMPACT_MIN_DEAD and dead * _COMPACT_SHARE > len(lvl):
                dead = _compact(lvl)
            lvl.dead = dead
        seqr = self._seq
        s = seqr.last + 1
        seqr.last = s
        e = _new_object(OrderCancelled)  # = OrderCancelled(s, ts, cause, ...), faster
        e.seq = s
        e.ts = ts
        e.cause = cause
        e.symbol = self.symbol
        e.order_id = order_id
        e.account = account
        e.qty = qty
        e.reason = reason
        out.append(e)
        return True

    def cancel_all(
        self, out: list[Event], ts: int, cause: int, account: str, reason: str = "cancel_all"
    ) -> int:
        """Cancel every resting order of ``account``, in arrival order; return how many."""
        try:
            mine = self._acct.get(account)
        except TypeError:
            return 0
        if not mine:
            return 0
        orders = list(mine.values())
        mine.clear()
        seqr = self._seq
        sym = self.symbol
        for o in orders:
            qty = o.qty
            self._unlink(o)
            s = seqr.last + 1
            seqr.last = s
            out.append(OrderCancelled(s, ts, cause, sym, o.order_id, account, qty, reason))
        return len(orders)

    def amend(
        self,
        out: list[Event],
        ts: int,
        cause: int,
        account: str,
        order_id: str,
        qty: int | None,
        price: int | None,
    ) -> bool:
        """Change a resting order's remaining ``qty`` and/or ``price`` (None = unchanged).

        Reducing the quantity at the same price keeps the order's place in the queue; a
        larger quantity or a new price sends it to the back of its (new) level. A new
        price that would cross the opposite best is rejected (``would_cross``): an amend
        never trades.
        """
        if qty is not None and (type(qty) is not int or qty <= 0):
            self._reject(out, ts, cause, order_id, account, "bad_qty")
            return False
        if price is not None and (type(price) is not int or price <= 0):
            self._reject(out, ts, cause, order_id, account, "bad_price")
            return False
        try:
            mine = self._acct[account]
            o = mine[order_id]
        except (KeyError, TypeError):
            self._reject(out, ts, cause, order_id, account, "unknown_order")
            return False
        old_qty = o.qty
        new_qty = old_qty if qty is None else qty
        new_price = o.price if price is None else price
        side = o.side
        if new_price == o.price and new_qty <= old_qty:
            lvl = o.level
            lvl.total -= old_qty - new_qty
            o.qty = new_qty
            kept = True
        else:
            if new_price != o.price:
                if side == "buy":
                    ask = self._asks.best
                    if ask is not None and new_price >= ask:
                        self._reject(out, ts, cause, order_id, account, "would_cross")
                        return False
                else:
                    bid = self._bids.best
                    if bid is not None and new_price <= -bid:
                        self._reject(out, ts, cause, order_id, account, "would_cross")
                        return False
            # Losing priority = a new queue entry at the back; the old one goes dead. The
            # account's dict keeps the id's position (assignment to an existing key).
            self._unlink(o)
            same = self._bids if side == "buy" else self._asks
            key = -new_price if side == "buy" else new_price
            dest = same.levels.get(key)
            if dest is None:
                dest = _new_level(same, new_price, key)
            n = RestingOrder(order_id, account, side, new_price, new_qty, dest)
            dest.append(n)
            dest.total += new_qty
            mine[order_id] = n
            self._n += 1
            kept = False
        seqr = self._seq
        s = seqr.last + 1
        seqr.last = s
        out.append(
            OrderAmended(s, ts, cause, self.symbol, order_id, account, new_qty, new_price, kept)
        )
        return True

    # ------------------------------------------------------------------ queries

    def best_bid(self) -> int | None:
        """Highest bid price, or None."""
        b = self._bids.best
        return None if b is None else -b

    def best_ask(self) -> int | None:
        """Lowest ask price, or None."""
        return self._asks.best

    def mid2(self) -> int | None:
        """best bid + best ask (twice the mid, so it stays an exact integer), or None."""
        b = self._bids.best
        a = self._asks.best
        if a is None or b is None:
            return None
        return a - b

    def get(self, account: str, order_id: str) -> RestingOrder | None:
        """The live order ``(account, order_id)``, or None."""
        try:
            return self._acct[account].get(order_id)
        except (KeyError, TypeError):
            return None

    def orders_of(self, account: str) -> list[RestingOrder]:
        """The account's live orders in arrival order (a copy)."""
        try:
            mine = self._acct.get(account)
        except TypeError:
            return []
        return list(mine.values()) if mine else []

    def levels(self, side: str) -> Iterator[tuple[int, int]]:
        """``(price, total qty)`` per level of ``side`` ("buy" = bids), best first.

        Lazy (so top-of-book reads cost only what they read); do not change the book while
        iterating. An unknown side is a programming error: ValueError.
        """
        return _iter_levels(self._side(side))  # the side is checked now, not at first next()

    def fillable(self, side: str, qty: int, limit: int | None, account: str | None = None) -> int:
        """How much of an incoming ``side`` order for ``qty`` could fill at prices no worse
        than ``limit`` (None = any price), not counting ``account``'s own resting orders.

        This is liquidity from others, whatever the STP mode. What ``submit`` would really
        fill under the book's STP mode (what decides a fok) is :meth:`executable`.
        """
        opp = self._asks if self._side(side) is self._bids else self._bids
        if type(qty) is not int or qty <= 0:
            return 0
        lim = None if limit is None else (limit if side == "buy" else -limit)
        return self._available(opp, qty, lim, account, stop_at_own=False)

    def executable(self, side: str, qty: int, limit: int | None, account: str) -> int:
        """How much an incoming order would fill right now under the book's STP mode.

        ``none``: own orders trade like anyone's. ``cancel_maker``: own orders are cancelled
        and skipped, so they do not count (= :meth:`fillable`). ``cancel_taker`` and
        ``cancel_both``: matching stops at the first own order met, so only what is ahead of
        it counts. The ``stp_exempt`` account's own orders count, as under ``none``. A fok
        order fills iff this is ``qty``.
        """
        opp = self._asks if self._side(side) is self._bids else self._bids
        if type(qty) is not int or qty <= 0:
            return 0
        lim = None if limit is None else (limit if side == "buy" else -limit)
        return self._executable(opp, qty, lim, account)

    def __len__(self) -> int:
        return self._n

    def check_invariants(self) -> None:
        """Verify every internal invariant; raise AssertionError naming the first broken one.

        For tests and for replay verification; O(orders).
        """
        n = 0
        for side in (self._bids, self._asks):
            keys = list(side.keys)
            if sorted(side.levels) != keys:
                raise AssertionError(f"{side.name}: key list and level dict disagree")
            if side.best != (keys[0] if keys else None):
                raise AssertionError(f"{side.name}: cached best {side.best} != {keys[:1]}")
            for key in keys:
                lvl = side.levels[key]
                if lvl.key != key or lvl.price != (-key if side is self._bids else key):
                    raise AssertionError(f"{side.name}: level {key} has wrong key/price")
                live = [o for o in lvl if o.qty]
                if len(lvl) - len(live) != lvl.dead:
                    raise AssertionError(f"{side.name} {lvl.price}: dead count {lvl.dead} wrong")
                if not live or sum(o.qty for o in live) != lvl.total:
                    raise AssertionError(f"{side.name} {lvl.price}: total {lvl.total} wrong")
                for o in live:
                    if o.level is not lvl or o.price != lvl.price or o.side != side.name:
                        raise AssertionError(f"{o!r} is misfiled")
                    if self.get(o.account, o.order_id) is not o:
                        raise AssertionError(f"{o!r} is not in the account index")
                if len({id(o) for o in live}) != len(live):
                    raise AssertionError(f"{side.name} {lvl.price}: order queued twice")
                n += len(live)
        indexed = sum(len(d) for d in self._acct.values())
        if n != self._n or indexed != n:
            raise AssertionError(f"order count: queued {n}, indexed {indexed}, len {self._n}")
        for d in self._acct.values():
            for o in d.values():
                if o.qty <= 0:
                    raise AssertionError(f"{o!r} indexed but not live")
        b, a = self.best_bid(), self.best_ask()
        if b is not None and a is not None and b >= a:
            raise AssertionError(f"crossed book at rest: bid {b} >= ask {a}")

    # ------------------------------------------------------------------ internals

    def _side(self, side: str) -> _Side:
        if side == "buy":
            return self._bids
        if side == "sell":
            return self._asks
        raise ValueError(f"side must be 'buy' or 'sell', not {side!r}")

    def _reject(
        self, out: list[Event], ts: int, cause: int, order_id: object, account: object, reason: str
    ) -> None:
        seqr = self._seq
        s = seqr.last + 1
        seqr.last = s
        # Whatever was sent is recorded; a non-string id or account as its repr so the
        # event stays encodable.
        oid = order_id if type(order_id) is str else repr(order_id)
        acc = account if type(account) is str else repr(account)
        out.append(OrderRejected(s, ts, cause, self.symbol, oid, acc, reason))

    def _unlink(self, o: RestingOrder) -> None:
        """Take a live order out of its level (lazily) and the order count.

        The caller has already removed it from the account index (or is replacing it).
        """
        lvl = o.level
        lvl.total -= o.qty
        o.qty = 0
        self._n -= 1
        if not lvl.total:
            self._drop(lvl)
            return
        dead = lvl.dead + 1
        if dead > _COMPACT_MIN_DEAD and dead * _COMPACT_SHARE > len(lvl):
            dead = _compact(lvl)
        lvl.dead = dead

    def _drop(self, lvl: _Level) -> None:
        """Remove an empty level (its deque holds only dead entries)."""
        side = self._bids if lvl.key < 0 else self._asks
        key = lvl.key
        del side.levels[key]
        lvl.clear()  # dead entries point back at the level: break the cycles now, not in gc
        keys = side.keys
        keys.remove(key)
        if side.best == key:
            side.best = keys[0] if keys else None

    def _take(
        self,
        out: list[Event],
        ts: int,
        acc: int,
        order_id: str,
        account: str,
        side: str,
        rem: int,
        lim: int | None,
        opp: _Side,
    ) -> int:
        """Match an incoming order against ``opp`` (whose best crosses ``lim``).

        Returns the unfilled remainder; 0 also when self-trade prevention expired the
        taker (that event is emitted here). Fills are caused by the OrderAccepted ``acc``.
        The seq is kept in a local and written back whenever something else may bump it.
        """
        levels = opp.levels
        keys = opp.keys
        key: int = opp.best  # type: ignore[assignment]  # the caller saw it cross: not None
        seqr = self._seq
        s = seqr.last
        sym = self.symbol
        acct = self._acct
        stp = self._stp
        new = _new_object
        filled_out = 0  # orders that left the book, for self._n
        stopped = False
        while True:
            lvl = levels[key]
            price = lvl.price
            total = lvl.total
            while True:
                o = lvl[0]
                oq = o.qty
                if not oq:
                    lvl.popleft()
                    lvl.dead -= 1
                    continue
                macc = o.account
                if stp and macc == account and account != self._stp_exempt:
                    # Self-trade prevention (rare path, so clarity over speed).
                    if stp != 1:  # cancel_maker / cancel_both: the maker goes
                        s += 1
                        out.append(
                            OrderCancelled(s, ts, acc, sym, o.order_id, macc, oq, "self_trade")
                        )
                        o.qty = 0
                        lvl.popleft()
                        del acct[macc][o.order_id]
                        total -= oq
                        filled_out += 1
                    if stp != 2:  # cancel_taker / cancel_both: the taker's rest expires
                        s += 1
                        out.append(
                            OrderExpired(s, ts, acc, sym, order_id, account, rem, "self_trade")
                        )
                        rem = 0
                        stopped = True
                        break
                    if not total:
                        break
                    continue
                if oq <= rem:
                    s += 1
                    moid = o.order_id
                    e = new(Fill)  # = Fill(s, ts, acc, sym, price, oq, ...), faster
                    e.seq = s
                    e.ts = ts
                    e.cause = acc
                    e.symbol = sym
                    e.price = price
                    e.qty = oq
                    e.maker_order = moid
                    e.maker_account = macc
                    e.taker_order = order_id
                    e.taker_account = account
                    e.taker_side = side
                    out.append(e)
                    o.qty = 0
                    lvl.popleft()
                    del acct[macc][moid]
                    filled_out += 1
                    rem -= oq
                    total -= oq
                    if not total or not rem:
                        break
                else:
                    s += 1
                    e = new(Fill)
                    e.seq = s
                    e.ts = ts
                    e.cause = acc
                    e.symbol = sym
                    e.price = price
                    e.qty = rem
                    e.maker_order = o.order_id
                    e.maker_account = macc
                    e.taker_order = order_id
                    e.taker_account = account
                    e.taker_side = side
                    out.append(e)
                    o.qty = oq - rem
                    total -= rem
                    rem = 0
                    break
            lvl.total = total
            if not total:
                # The level is spent: drop it with any dead entries left in it. It is the
                # best level, so index 0 of the key list.
                del levels[key]
                lvl.clear()  # dead entries left in it would form cycles with it
                keys.pop(0)
                if not keys:
                    opp.best = None
                    break
                key = keys[0]
                opp.best = key
                if not rem or (lim is not None and key > lim):
                    break
            else:
                break
        self._n -= filled_out
        seqr.last = s
        if stopped:
            return 0
        return rem

    def _executable(self, opp: _Side, qty: int, lim: int | None, account: str) -> int:
        stp = self._stp
        if stp == 0 or account == self._stp_exempt:
            return self._available(opp, qty, lim, None, stop_at_own=False)
        return self._available(opp, qty, lim, account, stop_at_own=stp != 2)

    def _available(
        self, opp: _Side, qty: int, lim: int | None, account: str | None, stop_at_own: bool
    ) -> int:
        """Liquidity in ``opp`` up to ``qty`` within key ``lim``, excluding ``account``'s
        orders; with ``stop_at_own``, counting only what is ahead of the first of them."""
        mine: dict[str, RestingOrder] | None = None
        if account is not None:
            try:
                mine = self._acct.get(account)
            except TypeError:
                mine = None
        own: dict[int, int] = {}  # key -> own live qty at that level, on the opposite side
        if mine:
            for o in mine.values():
                lvl = o.level
                if o.side == opp.name and (lim is None or lvl.key <= lim):
                    own[lvl.key] = own.get(lvl.key, 0) + o.qty
        got = 0
        levels = opp.levels
        for key in opp.keys:
            if lim is not None and key > lim:
                break
            lvl = levels[key]
            mine_here = own.get(key, 0)
            if not mine_here:
                got += lvl.total
            elif not stop_at_own:
                got += lvl.total - mine_here
            else:
                for o in lvl:
                    if not o.qty:
                        continue
                    if o.account == account:
                        return min(got, qty)
                    got += o.qty
                    if got >= qty:
                        return qty
            if got >= qty:
                return qty
        return got
