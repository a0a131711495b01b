"""The market's liquidity: the reserved ``#market`` account and the ``market_level`` command.

A historical day (DESIGN §9) lays a synthetic population on a real book. The importer
turns the book's L2 updates into ``market_level`` commands and the historical trades into
IOC orders of ``#market``, so a trader's order, and a liquidation's ``book`` step, trade
against the depth that was really there and queue behind the quantity that was really
ahead of them.

What ``#market`` is — "the rest of the world" — rule by rule:

- **Exempt from margin.** Its orders skip the pre-trade, reduce-only and tier checks
  (``orders.order`` / ``orders.amend`` and their ``admission`` twins); they are only
  bounded so that every fill's value fits the log's 64-bit integers (:func:`order_bound`,
  ``value_out_of_range``): other accounts are bounded by their margin, it by nothing else.
- **Never liquidated; its cash may go negative.** It is in ``accounts.SYSTEM``, so the
  margin watch never indexes or triggers it. It takes no deposits or withdrawals (refused
  when the command is parsed).
- **Counted by conservation.** Its cash and positions move only through the ledger, like
  everyone's; its position is exactly minus the sum of everyone else's.
- **Pays funding** like any holder: a round has to sum to zero.
- **Never deleveraged, never clawed back.** An aggregate of the world with no margin has
  no honest PnL% or leverage to rank by (its equity means nothing), nor a period profit to
  claw from; ADL and clawback act on the modelled population, and a loss it cannot cover
  is recorded as system debt rather than vanishing into the world (DESIGN §6.3).
- **Fees: like anyone's against a trader, none against itself.** A trader's fill against
  the real book costs what it would cost, and a trader's maker rebate is paid from a real
  taker's fee, as on the exchange (so the fee pool never pays out net on an ordinary
  trade). A ``#market``-with-``#market`` match — a historical trade against historical
  depth — is the world trading with itself: charging it would fill the fee pool with the
  whole day's volume, when the pool should show what the population paid.
- **Its own orders match each other** (``OrderBook(stp_exempt=MARKET)``): a historical trade
  eats the historical depth ahead of a trader's order before it reaches the trader's, as
  the real trade ate the real queue.

``market_level`` (one L2 update) makes ``#market``'s resting quantity at (symbol, side,
price) ``qty``. The level's quantity is that of the orders ``market_level`` placed there
(ids ``#<seq of the command>``: no command can name them, only ``cancel_all`` of
``#market`` reaches them); ``#market`` orders sent as ``order`` commands are not counted.

- A decrease keeps queue priority: the newest of those orders shrink first (an amend that
  keeps its place, or a cancel of a whole order).
- An increase appends one order for the difference at the back of the level's queue:
  depth that arrives after a trader joined the level queues behind the trader, the queue
  model of L2 backtesting.
- ``qty`` "0" removes it all; the quantity it already has changes nothing (accepted).
- It never trades: the order is ``post_only``, and there is no margin path (this is the
  fast command). A new or larger level that reaches the opposite side's best price is
  resolved in favour of the newer update: real L2 feeds update one side before the other
  (a bid moves up to the old ask before the ask's delete arrives), so the ``#market``
  levels it crosses are stale and are cancelled first (reason ``market_uncross``). If it
  would cross anyone else's order, the command is refused ``crosses_book`` and changes
  nothing: that order is the population's, and a historical trade (a ``#market`` IOC)
  fills it when one reaches its price; a quote never trades.
- Price on the tick grid and quantity on the lot grid, or ``off_grid`` (the importer
  rounds). No price-band check (real depth is not an order entry decision) and accepted
  during a halt (the world's book moves on; nothing trades).
- Its events are the book's own — ``order_accepted`` (post_only), ``order_amended``
  (``priority_kept``), ``order_cancelled`` (``market_level`` / ``market_uncross``) — so
  any fold of the book sees the depth, and ``verify`` re-executes it from the ``input``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearsim.clearing.accounts import MARKET
from clearsim.clearing.margin import notional
from clearsim.events import commands as C
from clearsim.events.rejects import RejectCode as R
from clearsim.events.rejects import reason
from clearsim.events.types import Event
from clearsim.events.units import INT64_MAX
from clearsim.orderbook.book import OrderBook, RestingOrder
from clearsim.orderbook.grid import GridError

if TYPE_CHECKING:
    from clearsim.clearing.exchange import Exchange
    from clearsim.clearing.instrument import Instrument

__all__ = ["MARKET", "Depth", "level_check", "market_level", "order_bound", "resting_bound"]

#: ``order_cancelled`` reasons of the depth ``market_level`` removes
SHRUNK = "market_level"
UNCROSSED = "market_uncross"


class Depth:
    """The orders ``market_level`` placed in one book, per level, in queue order.

    Keyed as the book keys its levels (an ask by its price, a bid by minus its price), so
    the two sides share one dict. An order filled or cancelled since (``qty`` 0: the book's
    mark of an order that left it) stays listed until the level is next set; its 0 adds
    nothing to :meth:`qty_at`.
    """

    __slots__ = ("levels",)

    def __init__(self) -> None:
        self.levels: dict[int, list[RestingOrder]] = {}

    def qty_at(self, key: int) -> int:
        """The resting quantity at level ``key`` (a read: nothing is pruned)."""
        orders = self.levels.get(key)
        return sum(o.qty for o in orders) if orders else 0

    def live(self, key: int) -> list[RestingOrder]:
        """The live orders at ``key``, oldest first, with the departed ones dropped."""
        orders = self.levels.get(key)
        if not orders:
            return []
        live = [o for o in orders if o.qty]
        if len(live) != len(orders):
            if live:
                self.levels[key] = live
            else:
                del self.levels[key]
        return live


# --------------------------------------------------------------------------- market_level


def _terms(ex: Exchange, c: C.MarketLevel) -> tuple[Instrument, int, int, int] | str:
    """(instrument, level key, price ticks, lots) of a level, or why it is refused for what
    it is."""
    inst = ex.instruments.get(c.symbol)
    if inst is None:
        return reason(R.UNKNOWN_SYMBOL, c.symbol)
    try:
        price = inst.grid.price(c.price)
        lots = inst.grid.qty(c.qty) if c.qty.strip("0.") else 0
    except GridError as e:
        return reason(R.OFF_GRID, str(e))
    if lots and notional(inst.spec, lots, price) > INT64_MAX:
        return reason(R.VALUE_OUT_OF_RANGE, "the level's value would not fit 64 bits of atoms")
    return inst, (-price if c.side == "buy" else price), price, lots


def _stale_opposite(
    inst: Instrument, depth: Depth | None, buy: bool, price: int
) -> list[int] | str:
    """The keys of the ``#market`` levels a new ``buy`` (or sell) level at ``price`` would
    cross, or why it cannot rest (it would cross another account's order)."""
    book = inst.book
    best = book.best_ask() if buy else book.best_bid()
    if best is None or (price < best if buy else price > best):
        return []  # the common case: nothing crossed
    stale: list[int] = []
    for p, total in book.levels("sell" if buy else "buy"):
        if p > price if buy else p < price:
            break
        key = p if buy else -p
        if depth is None or depth.qty_at(key) != total:
            fmt = inst.grid.fmt_price
            side, other = ("bid", "ask") if buy else ("ask", "bid")
            return reason(
                R.CROSSES_BOOK,
                f"a {side} at {fmt(price)} would cross another account's {other} at {fmt(p)}",
            )
        stale.append(key)
    return stale


def level_check(ex: Exchange, c: C.MarketLevel) -> str | None:
    """Why ``c`` is refused, or None: :func:`market_level`'s refusals, which depend on the
    book only (also :mod:`~clearsim.clearing.admission`'s check)."""
    t = _terms(ex, c)
    if isinstance(t, str):
        return t
    inst, key, price, lots = t
    depth = ex.market_depth.get(inst.spec.symbol)
    if lots > (depth.qty_at(key) if depth is not None else 0):
        stale = _stale_opposite(inst, depth, c.side == "buy", price)
        if isinstance(stale, str):
            return stale
    return None


def market_level(ex: Exchange, out: list[Event], cause: int, c: C.MarketLevel) -> str | None:
    """Set ``#market``'s resting quantity at one level (see the module docstring)."""
    t = _terms(ex, c)
    if isinstance(t, str):
        return t
    inst, key, price, lots = t
    sym = inst.spec.symbol
    depth = ex.market_depth.get(sym)
    mine = depth.live(key) if depth is not None else []
    have = 0
    for o in mine:
        have += o.qty
    if lots == have:
        return None
    book = inst.book
    ts = c.ts
    if lots < have:
        _shrink(book, out, ts, cause, mine, have - lots)
        if depth is not None:  # (it is: there was quantity)
            depth.live(key)
    else:
        stale = _stale_opposite(inst, depth, c.side == "buy", price)
        if isinstance(stale, str):
            return stale
        if depth is None:
            depth = ex.market_depth[sym] = Depth()
        for k in stale:
            for o in depth.levels.pop(k):
                if o.qty:
                    book.cancel(out, ts, cause, MARKET, o.order_id, UNCROSSED)
        oid = f"#{cause}"  # unique (a seq), and outside the ids a command may use
        book.submit(out, ts, cause, oid, MARKET, c.side, lots - have, price, "post_only")
        placed = book.get(MARKET, oid)
        if placed is not None:  # (it rests: it was checked not to cross)
            mine.append(placed)
            depth.levels[key] = mine
    ex.after_book_events(out, len(out), inst, ts)
    return None


def _shrink(
    book: OrderBook, out: list[Event], ts: int, cause: int, mine: list[RestingOrder], cut: int
) -> None:
    """Take ``cut`` lots off a level's ``#market`` orders, newest first: the ones ahead
    keep their place in the queue."""
    for o in reversed(mine):
        q = o.qty
        if q > cut:
            book.amend(out, ts, cause, MARKET, o.order_id, q - cut, None)
            return
        book.cancel(out, ts, cause, MARKET, o.order_id, SHRUNK)
        cut -= q
        if not cut:
            return


# --------------------------------------------------------------------------- #market's orders


def order_bound(inst: Instrument, side: str, qty: int, price: int | None) -> str | None:
    """Why an order of ``#market`` is refused, or None: it skips every margin check, so the
    only bound is that each of its fills' value fits 64 bits of atoms.

    A fill is at most ``qty`` lots at a price between the opposite best and the order's
    limit (a market order: the worst price its sweep reaches), and a value is monotonic in
    the price (rising for linear, falling for inverse), so the ends of that range bound it.
    """
    book = inst.book
    best = book.best_ask() if side == "buy" else book.best_bid()
    ends: list[int] = []
    if price is not None:
        ends.append(price)
    if best is not None:
        ends.append(best)
        if price is None:
            ends.append(inst.sweep_price(side, qty, best))
    spec = inst.spec
    for p in ends:
        if notional(spec, qty, p) > INT64_MAX:
            return reason(R.VALUE_OUT_OF_RANGE, "a fill's value would not fit 64 bits of atoms")
    return None


def resting_bound(inst: Instrument, qty: int, price: int) -> str | None:
    """Why an amend of a ``#market`` order to ``qty`` at ``price`` is refused (an amend
    never trades: it fills, later, at its own price)."""
    if notional(inst.spec, qty, price) > INT64_MAX:
        return reason(R.VALUE_OUT_OF_RANGE, "a fill's value would not fit 64 bits of atoms")
    return None
