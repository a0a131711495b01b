"""The insurance-fund projection: the fund timeline, the clawback ledger and the ADL ledger.

The fund is an account with equity (DESIGN §6): after a ``takeover`` it holds positions,
and its *marked equity* — cash plus its positions valued at the mark — not its cash, is
what "the fund" means in every view. The pieces, each shared by the views that need them:

- :class:`FundBook` — the fund's cash, positions and the prices they are valued at,
  folded from records: :meth:`FundBook.equity` is the one definition of the fund's equity
  in the projections (the same as ``Exchange.state()["insurance_fund"]``).
- :class:`FundLow` — start, minimum (with seq and ts) and the first time the fund "ran
  dry" (equity at or below zero, having been above), in equity terms.
- :func:`fund_flows` — what the fund *paid* to cover losses (shortfalls of liquidation
  fills, bankruptcy payments) and *took in* (liquidation fees, surpluses) in one record:
  the one definition of "fund paid" the story and ``clearsim cascade`` both use (issue 13).
  Position transfers (takeover, the fund's own trades, deleveraging of its position) are
  neither: they swap cash for a position at a price, and the mark then moves the equity.

:class:`FundFold` folds one row per change of the fund's cash (seq, ts, equity and cash
after, amount, reason, cause, the fund's positions) and, **while the fund holds a position,
one row per ``mark_price`` event of a held symbol that changes its equity** (reason
``"mark"``, amount 0): without those the minimum equity would be wrong, since a held
position loses value with no cash moving. The timeline is so bounded by the fund's cash
changes plus the mark events of the symbols it holds, while it holds them. It also folds the
clawback periods (the socialized losses, loss, profit base, rate, charge per account) and
the deleveragings. :func:`fold_fund` runs it over a log file on the reader's fast path:
only the lines holding :data:`FUND_TOKENS` are parsed (see
:meth:`events.log.LogReader.select`).

Positions are valued at the last ``mark_price`` of their symbol; before any mark (never in
practice: a takeover is triggered by a mark), at the last price the fund traded at there —
the fast path does not read other accounts' trades, so this fallback may differ from the
engine's "last trade".
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Final

import attrs
import orjson

from clearsim.clearing.accounts import CLAWBACK_POOL, DEBT, FEES, INSURANCE, Position
from clearsim.clearing.config import Config, InstrumentSpec
from clearsim.clearing.margin import value
from clearsim.events.codec import event_to_dict
from clearsim.events.log import LogReader, Progress, TornTail
from clearsim.events.types import Event
from clearsim.orderbook.grid import Grid
from clearsim.replay.projections.cash import Record, cash_moves, initial_fund, money_scale

__all__ = [
    "FUND_TOKENS",
    "AdlRow",
    "ClawbackPeriod",
    "FundBook",
    "FundFold",
    "FundLow",
    "FundReport",
    "FundRow",
    "fold_fund",
    "fund_flows",
]


# --------------------------------------------------------------------------- shared pieces


def fund_flows(d: Record) -> tuple[int, int]:
    """(paid, took in) by the fund in one record, atoms (see the module docstring).

    Paid: a liquidation fill's ``fund_paid`` (the gap below bankruptcy) and an
    ``insurance_payment`` (a bankrupt account's negative equity). Took in: a liquidation
    fill's ``fee`` and ``surplus_to_fund``. Both are cash moves with no position in return,
    so each is the same change of the fund's equity.
    """
    t = d["type"]
    if t == "liquidation_fill":
        return d["fund_paid"], d["fee"] + d["surplus_to_fund"]
    if t == "insurance_payment":
        return d["amount"], 0
    return 0, 0


class FundBook:
    """The insurance fund as an account with equity: cash, positions, valuation prices.

    :meth:`apply` folds what a record changes of the fund's *positions* and prices (a
    takeover, the fund's trades, a backstop transfer to it, a deleveraging of or against
    its position, a mark); the caller moves ``cash`` (the fund fold by its rows, the story
    by ``cash_moves``), so each keeps its own reasons. ``equity()`` is cash plus every
    position at its price (``clearing.margin.value``, as the engine values it).
    """

    __slots__ = ("_marks", "cash", "positions", "prices", "specs")

    def __init__(self, config: dict[str, Any]) -> None:
        self.specs: dict[str, InstrumentSpec] = {
            s.symbol: s for s in Config.from_dict(config).instruments
        }
        self.cash = initial_fund(config)
        self.positions: dict[str, Position] = {}
        #: symbol -> the last mark (else the last price the fund traded at), in ticks
        self.prices: dict[str, int] = {}
        self._marks: set[str] = set()

    def equity(self) -> int:
        e = self.cash
        for sym, pos in self.positions.items():
            e += value(self.specs[sym], pos.qty, self.prices[sym])
        return e

    def held(self) -> tuple[tuple[str, int, int], ...]:
        """(symbol, lots, valuation price) of every position, by symbol."""
        return tuple(
            (sym, self.positions[sym].qty, self.prices[sym]) for sym in sorted(self.positions)
        )

    def feed(self, d: Record) -> None:
        """Fold all of ``d``: its change of the fund's positions and prices, and its cash
        (``cash_moves``, the log's cash semantics) — for a view that needs the fund's
        equity along a log and nothing else of it."""
        self.apply(d)
        for account, amount, _ in cash_moves(d):
            if account == INSURANCE:
                self.cash += amount

    def _trade(self, sym: str, dq: int, price: int) -> None:
        pos = self.positions.get(sym)
        if pos is None:
            pos = self.positions[sym] = Position()
        pos.trade(dq, price)
        if pos.qty == 0:
            del self.positions[sym]
        if sym not in self._marks:
            self.prices[sym] = price

    def apply(self, d: Record) -> bool:
        """Fold ``d``'s change of the fund's positions or their prices; True if the fund's
        equity may have changed with it (a position moved, or a held symbol's mark)."""
        t = d["type"]
        if t == "mark_price":
            sym = d["symbol"]
            self._marks.add(sym)
            self.prices[sym] = d["price"]
            return sym in self.positions
        if t == "settlement":
            moved = False
            if d["buyer"] == INSURANCE:
                self._trade(d["symbol"], d["qty"], d["price"])
                moved = True
            if d["seller"] == INSURANCE:
                self._trade(d["symbol"], -d["qty"], d["price"])
                moved = True
            return moved
        if t == "takeover":  # ``qty`` is the liquidated position's, signed: the fund's now
            self._trade(d["symbol"], d["qty"], d["price"])
            return True
        if t == "backstop_transfer" and d["backstop"] == INSURANCE:
            self._trade(d["symbol"], d["qty"], d["price"])
            return True
        if t == "deleveraged" and INSURANCE in (d["account"], d["counterparty"]):
            # ADL closes the fund's position (as the deleveraged account or as the
            # counterparty on the other side): either way it shrinks toward zero.
            sym = d["symbol"]
            pos = self.positions.get(sym)
            q = 0 if pos is None else pos.qty
            self._trade(sym, -(1 if q > 0 else -1) * d["qty"], d["price"])
            return True
        return False


@attrs.define
class FundLow:
    """Start, minimum and the first time "ran dry" of the fund's equity (DESIGN §6: "ran
    dry" means equity at or below zero, reached from above)."""

    start: int
    low: int = 0
    low_seq: int = 0  # 0: the minimum is the start
    low_ts: int = 0
    dry_seq: int = 0  # 0: never ran dry
    dry_ts: int = 0
    last: int = 0

    @classmethod
    def at(cls, start: int) -> FundLow:
        return cls(start, low=start, last=start)

    def observe(self, seq: int, ts: int, equity: int) -> None:
        if equity < self.low:
            self.low, self.low_seq, self.low_ts = equity, seq, ts
        if equity <= 0 < self.last and not self.dry_seq:
            self.dry_seq, self.dry_ts = seq, ts
        self.last = equity


# --------------------------------------------------------------------------- the timeline


@attrs.frozen
class FundRow:
    """One change of the insurance fund: its ``equity`` and ``cash`` after it, the cash
    ``amount`` that moved (0 for a mark), and ``positions`` (symbol, lots, valuation price)
    held after it."""

    seq: int
    ts: int
    equity: int
    cash: int
    amount: int
    reason: str
    cause: int
    account: str  # the account on the other side ("" for a deposit or a mark)
    positions: tuple[tuple[str, int, int], ...] = ()


@attrs.define
class ClawbackPeriod:
    """One clawback period: the losses socialized into it and, once closed, its charges."""

    period: int
    losses: list[tuple[int, str, int]] = attrs.Factory(list)  # (seq, account, amount)
    seq: int = 0  # the Clawback event (0: not closed yet)
    ts: int = 0
    loss: int = 0
    profit_base: int = 0
    rate_ppm: int = 0
    collected: int = 0
    charges: list[tuple[str, int]] = attrs.Factory(list)

    @property
    def socialized(self) -> int:
        return sum(a for _, _, a in self.losses)


@attrs.frozen
class AdlRow:
    seq: int
    ts: int
    cause: int
    account: str
    counterparty: str
    symbol: str
    qty: int
    price: int
    value: int
    rank: int
    score: str


@attrs.define
class FundReport:
    """What :func:`fold_fund` returns: the three ledgers and how the log ended.

    ``equity`` (the fund, DESIGN §6) and ``cash`` at the end; ``low`` its start, minimum
    and "ran dry" in equity terms; ``positions`` (symbol, lots, valuation price) held at
    the end; ``grids`` to format lots and ticks.
    """

    initial: int
    equity: int
    cash: int
    low: FundLow
    timeline: list[FundRow]
    clawbacks: list[ClawbackPeriod]
    adl: list[AdlRow]
    last_seq: int
    torn: TornTail | None
    scale: int
    positions: tuple[tuple[str, int, int], ...]
    grids: dict[str, Grid]


#: Byte patterns of the records :class:`FundFold` reads (canonical encoding: no spaces).
FUND_TOKENS: Final[tuple[bytes, ...]] = (
    orjson.dumps(INSURANCE),  # any record naming the fund
    b'"type":"mark_price"',  # what the fund's positions are worth
    b'"type":"insurance_',
    b'"type":"liquidation_fill"',
    b'"type":"takeover"',
    b'"type":"clawback"',
    b'"type":"socialized_loss"',
    b'"type":"deleveraged"',
)


class FundFold:
    """Folds records into the fund timeline, the clawback ledger and the ADL ledger.

    Only records matching :data:`FUND_TOKENS` matter, so it can be fed a prefiltered stream.
    The fund's cash moves with deposits, liquidation fees and surpluses, shortfalls it pays,
    bankruptcy payments, takeovers (the position's value at the bankruptcy price), and any
    settlement, funding payment or clawback charge naming ``#insurance`` (a taken-over
    position worked in the book); its equity moves with those and with the marks of the
    symbols it holds (:class:`FundBook`).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.book = FundBook(config)
        self.initial = self.book.cash
        self.low = FundLow.at(self.initial)
        self.timeline: list[FundRow] = []
        self.periods: dict[int, ClawbackPeriod] = {}
        self.adl: list[AdlRow] = []
        self.last_seq = 0

    @property
    def cash(self) -> int:
        return self.book.cash

    def equity(self) -> int:
        return self.book.equity()

    def _row(self, d: Record, amount: int, reason: str, account: str) -> None:
        if amount == 0:
            return
        book = self.book
        book.cash += amount
        self.timeline.append(
            FundRow(
                d["seq"], d["ts"], book.equity(), book.cash, amount, reason, d["cause"],
                account, book.held(),
            )
        )  # fmt: skip

    def _period(self, n: int) -> ClawbackPeriod:
        p = self.periods.get(n)
        if p is None:
            p = self.periods[n] = ClawbackPeriod(n)
        return p

    def apply_event(self, ev: Event) -> None:
        self.apply(event_to_dict(ev))

    def fold(self, records: Iterable[Record]) -> FundFold:
        for d in records:
            self.apply(d)
        return self

    def apply(self, d: Record) -> None:
        t = d["type"]
        self.last_seq = d["seq"]
        book = self.book
        before = book.equity() if book.positions else book.cash
        n = len(self.timeline)
        moved = book.apply(d)  # the position first: a row's equity is after the whole event
        self._cash(d, t)
        if moved and len(self.timeline) == n:
            # no cash moved (a mark of a held symbol, or a position moved at no cost)
            equity = book.equity()
            if equity != before:
                reason = "mark" if t == "mark_price" else t
                self.timeline.append(
                    FundRow(
                        d["seq"], d["ts"], equity, book.cash, 0, reason, d["cause"], "",
                        book.held(),
                    )
                )  # fmt: skip
        if len(self.timeline) > n:
            self.low.observe(d["seq"], d["ts"], self.timeline[-1].equity)

    def _cash(self, d: Record, t: str) -> None:
        if t == "liquidation_fill":
            a = d["account"]
            self._row(d, d["fee"], "liquidation fee", a)
            self._row(d, d["surplus_to_fund"], "surplus", a)
            self._row(d, -d["fund_paid"], "shortfall paid", a)
        elif t == "insurance_payment":
            self._row(d, -d["amount"], f"{d['reason']} payment", d["account"])
        elif t == "insurance_deposit":
            self._row(d, d["amount"], "deposit", "")
        elif t == "takeover":
            self._row(d, d["value"], "takeover", d["account"])
        elif t == "backstop_transfer":
            if d["backstop"] == INSURANCE:
                self._row(d, d["value"], "backstop transfer", d["account"])
        elif t == "settlement":
            if d["buyer"] == INSURANCE:
                self._row(d, -d["value"], "takeover trade (buy)", d["seller"])
                self._row(d, -d["buyer_fee"], "trading fee", FEES)
            if d["seller"] == INSURANCE:
                self._row(d, d["value"], "takeover trade (sell)", d["buyer"])
                self._row(d, -d["seller_fee"], "trading fee", FEES)
        elif t == "funding":
            for account, amount in d["payments"]:
                if account == INSURANCE:
                    self._row(d, amount, "funding", "")
        elif t == "clawback":
            p = self._period(d["period"])
            p.seq, p.ts = d["seq"], d["ts"]
            p.loss, p.profit_base, p.rate_ppm = d["loss"], d["profit_base"], d["rate_ppm"]
            p.collected = d["collected"]
            p.charges = [(str(a), int(c)) for a, c in d["charges"]]
            for account, charge in d["charges"]:
                if account == INSURANCE:
                    self._row(d, -charge, "clawback charge", CLAWBACK_POOL)
        elif t == "system_debt":
            if d["account"] == INSURANCE:
                # the fund's own deficit written off to #debt (ledger.to_debt): back to zero
                self._row(d, d["amount"], "system debt", DEBT)
        elif t == "socialized_loss":
            self._period(d["period"]).losses.append((d["seq"], d["account"], d["amount"]))
        elif t == "deleveraged":
            self.adl.append(
                AdlRow(
                    d["seq"],
                    d["ts"],
                    d["cause"],
                    d["account"],
                    d["counterparty"],
                    d["symbol"],
                    d["qty"],
                    d["price"],
                    d["value"],
                    d["rank"],
                    d["score"],
                )
            )
            if INSURANCE in (d["account"], d["counterparty"]):
                # the fund's own taken-over position deleveraged (or used as counterparty)
                fund_pays = d["value"] if d["account"] == INSURANCE else -d["value"]
                other = d["counterparty"] if d["account"] == INSURANCE else d["account"]
                self._row(d, -fund_pays, "deleveraged", other)

    def report(self, scale: int, torn: TornTail | None) -> FundReport:
        book = self.book
        return FundReport(
            initial=self.initial,
            equity=book.equity(),
            cash=book.cash,
            low=self.low,
            timeline=self.timeline,
            clawbacks=[self.periods[k] for k in sorted(self.periods)],
            adl=self.adl,
            last_seq=self.last_seq,
            torn=torn,
            scale=scale,
            positions=book.held(),
            grids={s: Grid(sp.tick_size, sp.lot_size) for s, sp in book.specs.items()},
        )


def fold_fund(
    path: str | os.PathLike[str],
    *,
    verify: bool = True,
    progress: Progress | None = None,
) -> FundReport:
    """The fund timeline, clawback ledger and ADL ledger of a log (the fast path).

    ``verify`` checks every record's checksum chain on the way (hashing each line, parsing
    only the relevant ones). A torn tail or a corrupt record makes it re-read the log with
    :class:`LogReader`, which keeps everything before a torn tail (reported in ``torn``) and
    raises :class:`events.codec.CorruptLog` for anything else. ``progress(records read,
    bytes read)`` is called by the reader once per block it reads (8 MiB; every few
    thousand records after such a hand-over), see :meth:`LogReader.select`.
    """
    reader = LogReader(path)  # checks the header
    config = reader.header.config
    records = reader.select(FUND_TOKENS, verify=verify, progress=progress)
    fold = FundFold(config).fold(records)
    fold.last_seq = reader.last_seq
    return fold.report(money_scale(config), reader.torn)
