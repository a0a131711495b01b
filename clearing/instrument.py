"""One instrument's live state: its book, index/mark/last-trade prices, holders, funding
accumulators and liquidation index."""

from __future__ import annotations

from collections import deque

from clearsim.clearing import funding as fnd
from clearsim.clearing.accounts import MARKET, Account, Position
from clearsim.clearing.breaker import Breaker
from clearsim.clearing.config import InstrumentSpec, Stp
from clearsim.clearing.liqindex import LiquidationIndex
from clearsim.events.errors import ClearsimError
from clearsim.events.sequencer import Sequencer
from clearsim.orderbook.book import OrderBook
from clearsim.orderbook.grid import Grid


class NoPrice(ClearsimError):
    """An instrument has neither a mark nor a trade yet, so a position in it has no value.

    The engine only values positions, which exist only after a trade; so this is raised
    where a price is required, never silently turned into a default."""


class Instrument:
    """One instrument's live state (see the module docstring)."""

    __slots__ = (
        "basis", "book", "breaker", "grid", "halt_queue", "halted_until", "holders", "index",
        "last_rate", "last_trade", "liq", "mark", "next_funding", "premium_n", "premium_sum",
        "spec",
    )  # fmt: skip

    def __init__(self, spec: InstrumentSpec, seq: Sequencer, stp: Stp, basis_samples: int) -> None:
        self.spec = spec
        # The historical market's orders match each other: a historical trade (its IOC)
        # against historical depth (its resting levels) is a trade (clearing.market).
        self.book = OrderBook(spec.symbol, seq, stp, stp_exempt=MARKET)
        self.grid = Grid(spec.tick_size, spec.lot_size)
        self.index: int | None = None
        self.mark: int | None = None
        self.last_trade: int | None = None
        self.liq = LiquidationIndex()
        #: accounts with a non-zero position here, in the order they opened it
        self.holders: dict[str, Account] = {}
        self.next_funding = 0  # µs; 0 = not yet scheduled
        self.last_rate = 0
        self.premium_sum = 0
        self.premium_n = 0
        self.basis: deque[int] = deque(maxlen=basis_samples)
        self.breaker = Breaker()
        self.halted_until = 0  # µs; trading is halted while the clock is before it
        #: accounts whose liquidation waits for the halt to end -> the seq that queued them
        self.halt_queue: dict[str, int] = {}

    def price_or(self, default: int | None) -> int | None:
        """The price positions are valued at: the mark, else the last trade, else ``default``."""
        if self.mark is not None:
            return self.mark
        if self.last_trade is not None:
            return self.last_trade
        return default

    def valuation_price(self) -> int:
        """The price positions are valued at: the mark, else the last trade.

        Raises :class:`NoPrice` when there is neither (no position can exist then)."""
        if self.mark is not None:
            return self.mark
        if self.last_trade is not None:
            return self.last_trade
        raise NoPrice(f"{self.spec.symbol} has no mark and no trade to value positions at")

    def sweep_price(self, side: str, qty: int, fallback: int) -> int:
        """The worst price a market order of ``qty`` would reach in the book now."""
        worst = fallback
        for price, level_qty in self.book.levels("sell" if side == "buy" else "buy"):
            worst = price
            qty -= level_qty
            if qty <= 0:
                break
        return worst

    def move_position(self, acct: Account, dq: int, price: int) -> None:
        """Apply a signed fill to ``acct``'s position here, keeping ``holders`` exact."""
        sym = self.spec.symbol
        pos = acct.positions.get(sym)
        if pos is None:
            pos = acct.positions[sym] = Position()
            self.holders[acct.id] = acct
        pos.trade(dq, price)
        if pos.qty == 0:
            del acct.positions[sym]
            del self.holders[acct.id]
            self.liq.discard(acct.id)

    # ------------------------------------------------------------------ funding inputs

    def sample_premium(self) -> None:
        """Take a premium sample (and a mid-minus-index basis sample) at a new index."""
        idx = self.index
        if idx is None:
            return
        bid = fnd.impact_price(self.book.levels("buy"), self.spec)
        ask = fnd.impact_price(self.book.levels("sell"), self.spec)
        if bid is not None and ask is not None:
            self.premium_sum += fnd.premium_ppm(bid, ask, idx)
            self.premium_n += 1
        mid2 = self.book.mid2()
        if mid2 is not None:
            self.basis.append(mid2 // 2 - idx)

    def computed_rate(self) -> int:
        n = self.premium_n
        avg = 0 if n == 0 else (abs(self.premium_sum) // n) * (1 if self.premium_sum >= 0 else -1)
        return fnd.rate_ppm(avg, self.spec)

    def reset_funding_samples(self, rate: int) -> None:
        self.last_rate = rate
        self.premium_sum = 0
        self.premium_n = 0

    def resize_basis(self, n: int) -> None:
        if self.basis.maxlen != n:
            self.basis = deque(self.basis, maxlen=n)
