"""The contract between the liquidation runner and the waterfall's steps (DESIGN §6).

:class:`Step` is what a step is (a name, whether it takes the uncovered loss instead of
closing lots, ``applies`` and ``close``); :class:`Case` is the position being closed;
:class:`WaterfallContext` is everything a step may read or do — the accounts, the
instruments, ``risk``, the fund and the ledger, the clock and the event stream, the book
(``submit``, settled and re-checked like any order) and the margin re-check of an account
it touched. A step never sees the :class:`~clearsim.clearing.exchange.Exchange`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from clearsim.clearing.accounts import Account
from clearsim.clearing.config import WaterfallConfig
from clearsim.clearing.instrument import Instrument
from clearsim.clearing.ledger import Ledger
from clearsim.events.sequencer import Sequencer

if TYPE_CHECKING:
    from clearsim.events.types import Event

#: (equity, maintenance margin, initial margin) of an account at current marks
Risk = Callable[[Account], tuple[int, int, int]]
#: settle and re-check the book events from index n0 on: (out, n0, inst, ts, fee_exempt)
AfterBook = Callable[["list[Event]", int, Instrument, int, "tuple[str, str] | None"], None]
#: re-index and re-check an account whose cash or position changed: (out, acct, cause)
AfterChange = Callable[["list[Event]", Account, int], None]


class RiskSource(Protocol):
    """Anything that can value an account at current marks (the context, the exchange)."""

    def risk(self, acct: Account, /) -> tuple[int, int, int]: ...


class Case:
    """One position of a liquidated account on its way through the steps.

    The runner fills ``account`` .. ``mm`` before asking a step whether it ``applies``
    (at that time ``p_b`` and ``cause`` are 0), then the bankruptcy price of closing
    ``remaining`` lots and the seq of the ``liquidation_step`` event before ``close``.
    """

    __slots__ = (
        "account", "cause", "equity", "final", "inst", "mark", "mm", "p_b", "qty", "remaining",
    )  # fmt: skip

    def __init__(
        self, account: Account, inst: Instrument, remaining: int, mark: int, equity: int, mm: int
    ) -> None:
        self.account = account
        self.inst = inst
        self.qty = account.positions[inst.spec.symbol].qty  # signed, non-zero
        self.remaining = remaining  # lots still to close, > 0
        self.mark = mark
        self.equity = equity
        self.mm = mm
        self.p_b = 0
        self.cause = 0
        #: the close is the account's whole position here (not a partial slice): only then
        #: does ``surplus = "insurance_fund"`` send a fill's surplus to the fund
        self.final = True

    @property
    def sign(self) -> int:
        """+1 for a long being closed (by selling), -1 for a short."""
        return 1 if self.qty > 0 else -1


class WaterfallContext:
    """What the steps of one liquidation see of the exchange (see the module docstring)."""

    __slots__ = (
        "_after_book", "_after_change", "accounts", "adl_cache", "instruments", "ledger",
        "may_socialise", "out", "risk", "seq", "ts", "waterfall",
    )  # fmt: skip

    def __init__(
        self,
        *,
        out: list[Event],
        ts: int,
        seq: Sequencer,
        ledger: Ledger,
        instruments: Mapping[str, Instrument],
        waterfall: WaterfallConfig,
        may_socialise: bool,
        risk: Risk,
        after_book: AfterBook,
        after_change: AfterChange,
        adl_cache: object = None,
    ) -> None:
        self.out = out
        self.ts = ts
        self.seq = seq
        self.ledger = ledger
        self.accounts: Mapping[str, Account] = ledger.accounts
        self.instruments = instruments
        self.waterfall = waterfall
        #: a later step takes whatever loss the fund cannot (so a book fill may go ahead)
        self.may_socialise = may_socialise
        self.risk = risk
        self._after_book = after_book
        self._after_change = after_change
        #: the exchange's ADL ranking cache (``steps.adl.AdlCache``), kept between steps
        self.adl_cache = adl_cache

    @property
    def fund(self) -> Account:
        return self.ledger.fund

    def fund_available(self) -> int:
        """What the insurance fund can pay out: its equity, never below zero."""
        return max(0, self.risk(self.ledger.fund)[0])

    def next_seq(self) -> int:
        return self.seq.next()

    def emit(self, event: Event) -> None:
        self.out.append(event)

    def touched(self, acct: Account, cause: int) -> None:
        """Re-check the margin of an account (not the liquidated one) a step changed."""
        self._after_change(self.out, acct, cause)

    def submit(
        self,
        inst: Instrument,
        cause: int,
        order_id: str,
        account_id: str,
        side: str,
        qty: int,
        price: int,
        tif: str,
        *,
        fee_exempt: bool = False,
    ) -> int:
        """Submit an order to ``inst``'s book and settle what it fills, like any order;
        return the index in ``out`` of its first event. ``fee_exempt``: its own fills pay
        no trading fee (a liquidation order)."""
        out = self.out
        n0 = len(out)
        inst.book.submit(out, self.ts, cause, order_id, account_id, side, qty, price, tif)
        self._after_book(out, n0, inst, self.ts, (account_id, order_id) if fee_exempt else None)
        return n0


class Step(Protocol):
    """One step of the loss waterfall, registered by ``name`` in ``steps.STEPS``."""

    #: the name ``[waterfall] steps`` lists it by
    name: str
    #: True for a step that takes the loss nobody covered instead of closing lots
    socialises: bool

    def applies(self, ctx: WaterfallContext, case: Case) -> bool:
        """Whether the step runs for this case now (no side effects)."""
        ...

    def close(self, ctx: WaterfallContext, case: Case) -> int:
        """Close up to ``case.remaining`` lots of the position; return the lots closed."""
        ...
