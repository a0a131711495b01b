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
- **Its orders obey the simulated exchange's trading rules** — the grids, a halt, a price
  band — as the world's orders would have under them (a breaker or a band is a what-if of
  the simulated exchange); only margin does not apply. Its depth (``market_level``) is the
  state of the real book, not an order entry: no band, and it moves during a halt.

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
  rounds).
- Its events are the book's own — ``order_accepted`` (post_only), ``order_amended``
  (``priority_kept``), ``order_cancelled`` (``market_level`` / ``market_uncross``) — so
  any fold of the book sees the depth, and ``verify`` re-executes it from the ``input``.

Speed: a day is millions of L2 updates, so an accepted level at a quiet moment (nothing
falls due) takes :func:`apply_fast`, a lane of ``Exchange.apply`` that skips the general
path's generic steps and re-parses no price or quantity text it has seen (``Depth``
remembers them). It gives exactly the general path's events and state (a test compares
the two over hostile sessions); anything else, every refusal included, takes the general
path. ``bench/market_level.py`` measures it against the bare book operation and an order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from clearsim.clearing import marks, watch
from clearsim.clearing.accounts import MARKET
from clearsim.clearing.config import MarkPolicy
from clearsim.clearing.instrument import Instrument
from clearsim.clearing.margin import notional
from clearsim.events import commands as C
from clearsim.events.rejects import RejectCode as R
from clearsim.events.rejects import reason
from clearsim.events.types import Event, Input
from clearsim.events.units import INT64_MAX, MAX_TS
from clearsim.orderbook.book import OrderBook, RestingOrder
from clearsim.orderbook.grid import GridError

if TYPE_CHECKING:
    from clearsim.clearing.exchange import Exchange

__all__ = [
    "MARKET",
    "Depth",
    "apply_fast",
    "level_check",
    "market_level",
    "order_bound",
    "resting_bound",
]

#: ``order_cancelled`` reasons of the depth ``market_level`` removes
SHRUNK = "market_level"
UNCROSSED = "market_uncross"


class Depth:
    """The orders ``market_level`` placed in one book, per level, in queue order; and the
    level texts already parsed.

    ``levels`` is keyed as the book keys its levels (an ask by its price, a bid by minus its
    price), so the two sides share one dict. An order filled or cancelled since (``qty`` 0:
    the book's mark of an order that left it) stays listed until the level is next set; its
    0 adds nothing to :meth:`qty_at`. ``prices`` / ``lots`` remember the price and quantity
    strings that passed every check, with their ticks and lots (a real feed repeats the
    same few hundred of each): a pure function's results, bounded, that change nothing.
    """

    __slots__ = ("levels", "lots", "prices")

    def __init__(self) -> None:
        self.levels: dict[int, list[RestingOrder]] = {}
        self.prices: dict[str, int] = {}
        self.lots: dict[str, int] = {}

    def qty_at(self, key: int) -> int:
        """The resting quantity at level ``key`` (a read: nothing is pruned)."""
        orders = self.levels.get(key)
        return sum(o.qty for o in orders) if orders else 0

    def live(self, key: int) -> list[RestingOrder]:
        """The live orders at ``key``, oldest first, with the departed ones dropped: the
        list ``levels`` holds (a new empty one when there are none)."""
        orders = self.levels.get(key)
        if not orders:
            return []
        if orders[-1].qty and orders[0].qty and len(orders) <= 2:
            return orders  # the common case: one or two orders, both live
        live = [o for o in orders if o.qty]
        if len(live) == len(orders):
            return orders
        if live:
            self.levels[key] = live
        else:
            del self.levels[key]
        return live

    def remember(self, price_text: str, price: int, qty_text: str, lots: int) -> None:
        if len(self.prices) >= _MEMO or len(self.lots) >= _MEMO:
            self.prices.clear()
            self.lots.clear()
        self.prices[price_text] = price
        self.lots[qty_text] = lots


#: At most this many price (and quantity) texts are remembered per book.
_MEMO: Final = 1 << 16


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


def _stale_opposite(inst: Instrument, depth: Depth, buy: bool, price: int) -> list[int] | str:
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
        if depth.qty_at(key) != total:
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
    depth = ex.market_depth[inst.spec.symbol]
    if lots > depth.qty_at(key):
        stale = _stale_opposite(inst, depth, c.side == "buy", price)
        if isinstance(stale, str):
            return stale
    return None


#: What setting one level will do: (instrument, depth, level key, price, new total lots,
#: side, the live orders there, the lots they hold, the #market levels to uncross first).
_Plan = tuple[Instrument, Depth, int, int, int, str, list[RestingOrder], int, list[int]]


def _plan(
    inst: Instrument, depth: Depth, key: int, price: int, lots: int, side: str
) -> _Plan | str | None:
    """The plan of a level, None when it holds ``lots`` already, or why it is refused."""
    mine = depth.live(key)
    have = 0
    for o in mine:
        have += o.qty
    if lots == have:
        return None
    stale: list[int] = []
    if lots > have:
        got = _stale_opposite(inst, depth, side == "buy", price)
        if isinstance(got, str):
            return got
        stale = got
    return inst, depth, key, price, lots, side, mine, have, stale


def _execute(ex: Exchange, out: list[Event], cause: int, ts: int, plan: _Plan) -> None:
    inst, depth, key, price, lots, side, mine, have, stale = plan
    book = inst.book
    if lots < have:
        left = _shrink(book, out, ts, cause, mine, have - lots)
        if left:
            del mine[left:]  # the cancelled newest ones
        else:
            del depth.levels[key]
    else:
        for k in stale:
            for o in depth.levels.pop(k):
                if o.qty:
                    book.cancel(out, ts, cause, MARKET, o.order_id, UNCROSSED)
        oid = f"#{cause}"  # unique (a seq), and outside the ids a command may use
        book.submit(out, ts, cause, oid, MARKET, side, lots - have, price, "post_only")
        placed = book.get(MARKET, oid)
        if placed is not None:  # (it rests: it was checked not to cross)
            mine.append(placed)
            depth.levels[key] = mine
    # orders.after_book_events with no fill to settle: the book moved (a stuck liquidation
    # is retried, DESIGN §6), and a mid or median mark follows it.
    ex.active[inst.spec.symbol] = None
    if ex.config.mark is not MarkPolicy.ORACLE:
        marks.remark(ex, out, inst, ts, out[-1].seq)


def market_level(ex: Exchange, out: list[Event], cause: int, c: C.MarketLevel) -> str | None:
    """Set ``#market``'s resting quantity at one level (see the module docstring)."""
    t = _terms(ex, c)
    if isinstance(t, str):
        return t
    inst, key, price, lots = t
    plan = _plan(inst, ex.market_depth[inst.spec.symbol], key, price, lots, c.side)
    if plan is None or isinstance(plan, str):
        return plan
    _execute(ex, out, cause, c.ts, plan)
    return None


#: ``apply_fast`` is on; tests turn it off to compare it with the general path.
FAST = True

_LEVEL_KEYS: Final = frozenset(("type", "ts", "symbol", "side", "price", "qty"))


def apply_fast(ex: Exchange, d: dict[str, Any]) -> list[Event] | None:
    """``ex.apply(d)`` for an accepted ``market_level`` in a quiet moment, or None.

    The fast lane of the command a historical day is mostly made of (one per L2 update):
    exactly the events and state the general path (``Exchange.apply``) gives, for a level
    that is well formed, with texts already seen (remembered by :class:`Depth`; a new one
    goes through the command parser and the grid), at a ``ts`` that passes the clock
    checks and makes nothing fall due, and that is accepted. Anything else is None, before
    anything changed, and the general path decides (and words any refusal).
    """
    if not FAST or d.keys() != _LEVEL_KEYS:
        return None
    ts, symbol, side, ptext, qtext = d["ts"], d["symbol"], d["side"], d["price"], d["qty"]
    if (
        type(ts) is not int
        or not 0 <= ts <= MAX_TS
        or type(symbol) is not str
        or len(symbol) > _MAX_SYMBOL
        or type(side) is not str
        or (side != "buy" and side != "sell")
        or type(ptext) is not str
        or type(qtext) is not str
    ):
        return None
    depth = ex.market_depth.get(symbol)
    if depth is None:
        return None
    inst = ex.instruments[symbol]
    price = depth.prices.get(ptext)
    lots = depth.lots.get(qtext)
    if price is None or lots is None:
        c = C.parse_command(d)
        if not isinstance(c, C.MarketLevel):
            return None
        t = _terms(ex, c)
        if isinstance(t, str):
            return None
        _, _, price, lots = t
        depth.remember(ptext, price, qtext, lots)
    elif lots and notional(inst.spec, lots, price) > INT64_MAX:
        return None
    if not ex.quiet_at(ts):
        return None
    plan = _plan(inst, depth, -price if side == "buy" else price, price, lots, side)
    if isinstance(plan, str):
        return None
    seq = ex.seq
    s = seq.last + 1
    seq.last = s
    out: list[Event] = [Input(s, ts, 0, dict(d))]
    ex.ts = ts
    if plan is not None:
        _execute(ex, out, s, ts, plan)
    if ex.queue or ex.stuck:
        watch.drain(ex, out)
    else:
        ex.active.clear()  # (what drain ends with)
    return out


#: the longest symbol a command may name (events.commands)
_MAX_SYMBOL: Final = 64


def _shrink(
    book: OrderBook, out: list[Event], ts: int, cause: int, mine: list[RestingOrder], cut: int
) -> int:
    """Take ``cut`` lots off a level's ``#market`` orders, newest first: the ones ahead
    keep their place in the queue. Returns how many of ``mine`` are left (a prefix)."""
    n = len(mine)
    while True:
        n -= 1
        o = mine[n]
        q = o.qty
        if q > cut:
            book.amend(out, ts, cause, MARKET, o.order_id, q - cut, None)
            return n + 1
        book.cancel(out, ts, cause, MARKET, o.order_id, SHRUNK)
        cut -= q
        if not cut:
            return n


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
