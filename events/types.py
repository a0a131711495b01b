"""Event types: the envelope every record shares and one class per kind of event.

An event is what happened, never what was asked for; inputs are recorded too (``Input``)
so that a log alone re-executes. Every event carries the envelope ``seq`` (gapless from 1),
``ts`` (simulated clock, integer microseconds, taken from the input) and ``cause`` (the seq
of the event that caused it; 0 for inputs, which have no cause inside the log).

All numbers are integers: prices in ticks, quantities in lots, money in atoms of the
collateral currency, rates in ppm. Classes are slotted attrs classes and are treated as
immutable: nothing mutates an event after it is emitted. They are deliberately not
``frozen=True``: attrs' frozen ``__init__`` routes each field through
``object.__setattr__`` and measured about 4x slower to construct (1.57 us against 0.40 us
for an 11-field fill), which alone would use up the engine's per-command budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import attrs

#: type name -> event class, filled in by :func:`event`.
EVENT_TYPES: dict[str, type[Event]] = {}

_E = TypeVar("_E", bound="type[Event]")


def event(type_name: str) -> Callable[[_E], _E]:
    """Class decorator: register an attrs event class under ``type_name``.

    Stacked on top of ``@attrs.define`` (rather than calling it) so that type checkers'
    attrs support sees each class's fields.
    """

    def wrap(cls: _E) -> _E:
        if type_name in EVENT_TYPES:
            raise ValueError(f"duplicate event type {type_name!r}")
        cls.TYPE = type_name
        EVENT_TYPES[type_name] = cls
        return cls

    return wrap


@attrs.define(slots=True, weakref_slot=False)
class Event:
    """The envelope: position in the log, simulated time, and the seq of the cause."""

    TYPE: ClassVar[str] = ""
    seq: int
    ts: int
    cause: int


# --------------------------------------------------------------------------- inputs


@event("input")
@attrs.define(slots=True, weakref_slot=False)
class Input(Event):
    """A command as it was received (decimal strings and all), accepted or not."""

    command: dict[str, Any]


@event("rejected")
@attrs.define(slots=True, weakref_slot=False)
class Rejected(Event):
    """The exchange refused the command at ``cause``; nothing else changed."""

    command_type: str
    reason: str


# --------------------------------------------------------------------------- order book


@event("order_accepted")
@attrs.define(slots=True, weakref_slot=False)
class OrderAccepted(Event):
    """An order entered the book's matching (it may then fill, rest, or expire)."""

    symbol: str
    order_id: str
    account: str
    side: str  # "buy" | "sell"
    qty: int  # lots
    price: int | None  # ticks; None = market order
    tif: str  # "gtc" | "ioc" | "fok" | "post_only"


@event("order_rejected")
@attrs.define(slots=True, weakref_slot=False)
class OrderRejected(Event):
    """The book refused an order (bad price or quantity, duplicate id, post-only would take)."""

    symbol: str
    order_id: str
    account: str
    reason: str


@event("fill")
@attrs.define(slots=True, weakref_slot=False)
class Fill(Event):
    """A match of a resting (maker) and an incoming (taker) order, at the maker's price."""

    symbol: str
    price: int
    qty: int
    maker_order: str
    maker_account: str
    taker_order: str
    taker_account: str
    taker_side: str  # "buy" | "sell"


@event("order_cancelled")
@attrs.define(slots=True, weakref_slot=False)
class OrderCancelled(Event):
    """A resting order left the book unfilled; ``qty`` is what was still open."""

    symbol: str
    order_id: str
    account: str
    qty: int
    reason: str  # "user" | "cancel_all" | "self_trade" | "liquidation" | "market_level" | ...


@event("order_amended")
@attrs.define(slots=True, weakref_slot=False)
class OrderAmended(Event):
    """A resting order's quantity and/or price changed; ``priority_kept``: kept its place."""

    symbol: str
    order_id: str
    account: str
    qty: int
    price: int
    priority_kept: bool


@event("order_expired")
@attrs.define(slots=True, weakref_slot=False)
class OrderExpired(Event):
    """The unfilled remainder of an IOC, FOK or market order, removed without resting."""

    symbol: str
    order_id: str
    account: str
    qty: int
    reason: str  # "ioc" | "market" | "self_trade"


# --------------------------------------------------------------------------- money


@event("deposit")
@attrs.define(slots=True, weakref_slot=False)
class Deposit(Event):
    account: str
    amount: int


@event("withdrawal")
@attrs.define(slots=True, weakref_slot=False)
class Withdrawal(Event):
    account: str
    amount: int


@event("insurance_deposit")
@attrs.define(slots=True, weakref_slot=False)
class InsuranceDeposit(Event):
    amount: int


@event("settlement")
@attrs.define(slots=True, weakref_slot=False)
class Settlement(Event):
    """The cash side of a fill: ``value`` moves from buyer to seller, fees to the fee pool."""

    symbol: str
    price: int
    qty: int
    buyer: str
    seller: str
    value: int  # atoms the buyer pays the seller (linear: qty x price x contract value)
    buyer_fee: int  # atoms; negative = rebate
    seller_fee: int


# --------------------------------------------------------------------------- prices and funding


@event("index_price")
@attrs.define(slots=True, weakref_slot=False)
class IndexPrice(Event):
    symbol: str
    price: int


@event("mark_price")
@attrs.define(slots=True, weakref_slot=False)
class MarkPrice(Event):
    """The mark changed (under any mark policy); margin is evaluated at this price."""

    symbol: str
    price: int


@event("funding")
@attrs.define(slots=True, weakref_slot=False)
class Funding(Event):
    """A funding round: ``payments`` lists ``[account, amount]`` (negative = paid); sums to 0."""

    symbol: str
    rate_ppm: int
    mark: int
    payments: list[list[Any]]


# --------------------------------------------------------------------------- risk and governance


@event("liquidation_triggered")
@attrs.define(slots=True, weakref_slot=False)
class LiquidationTriggered(Event):
    """Account equity fell below maintenance margin."""

    account: str
    equity: int
    maintenance: int


@event("param_set")
@attrs.define(slots=True, weakref_slot=False)
class ParamSet(Event):
    path: str
    old: str
    new: str


# --------------------------------------------------------------------------- liquidation, waterfall


@event("liquidation_avoided")
@attrs.define(slots=True, weakref_slot=False)
class LiquidationAvoided(Event):
    """Cancelling the account's open orders was enough: equity is back at or above MM."""

    account: str
    equity: int
    maintenance: int


@event("liquidation_step")
@attrs.define(slots=True, weakref_slot=False)
class LiquidationStep(Event):
    """One waterfall step starts on ``qty`` lots of a position (signed: + = long being closed)."""

    account: str
    symbol: str
    step: str  # "book" | "backstop" | "takeover" | "adl"
    qty: int
    bankruptcy_price: int


@event("liquidation_fill")
@attrs.define(slots=True, weakref_slot=False)
class LiquidationFill(Event):
    """Settlement of one book fill of a liquidation order against the bankruptcy price.

    ``delta`` = fill value minus value at the bankruptcy price, for the liquidated account
    (positive = better). Of a positive delta, ``fee`` goes to the insurance fund and
    ``surplus_to_fund`` too (surplus = insurance_fund); of a negative one the fund pays
    ``fund_paid`` and ``socialized`` is left to the clawback.
    """

    account: str
    symbol: str
    qty: int
    price: int
    bankruptcy_price: int
    delta: int
    fee: int
    surplus_to_fund: int
    fund_paid: int
    socialized: int


@event("backstop_transfer")
@attrs.define(slots=True, weakref_slot=False)
class BackstopTransfer(Event):
    """A backstop account took ``qty`` (signed, the liquidated side) at the bankruptcy price."""

    account: str
    backstop: str
    symbol: str
    qty: int
    price: int
    value: int  # atoms the liquidated account paid (negative = received)


@event("takeover")
@attrs.define(slots=True, weakref_slot=False)
class Takeover(Event):
    """The insurance fund took ``qty`` (signed, the liquidated side) at the bankruptcy price."""

    account: str
    symbol: str
    qty: int
    price: int
    value: int


@event("deleveraged")
@attrs.define(slots=True, weakref_slot=False)
class Deleveraged(Event):
    """ADL: ``counterparty``'s opposite position was closed by ``qty`` at the bankruptcy price.

    ``rank`` is 1 for the first account deleveraged in this step; ``score`` is the ranking
    value (PnL% x effective leverage, or PnL% / leverage for losing positions) as a decimal
    string.
    """

    account: str
    counterparty: str
    symbol: str
    qty: int
    price: int
    value: int
    rank: int
    score: str


@event("insurance_payment")
@attrs.define(slots=True, weakref_slot=False)
class InsurancePayment(Event):
    """The fund paid ``amount`` to ``account`` (negative: received from it), and why."""

    account: str
    amount: int
    reason: str


@event("socialized_loss")
@attrs.define(slots=True, weakref_slot=False)
class SocializedLoss(Event):
    """A bankrupt account's uncovered loss, moved to the clawback pool for the period."""

    account: str
    amount: int
    period: int


@event("clawback")
@attrs.define(slots=True, weakref_slot=False)
class Clawback(Event):
    """A period's socialised loss charged pro rata to period profit (``charges`` sum to
    ``collected``; what could not be collected is system debt)."""

    period: int
    loss: int
    profit_base: int
    rate_ppm: int
    collected: int
    charges: list[list[Any]]


@event("system_debt")
@attrs.define(slots=True, weakref_slot=False)
class SystemDebt(Event):
    """A loss nobody could be made to pay: recorded, never dropped."""

    account: str
    amount: int
    reason: str


@event("liquidation_finished")
@attrs.define(slots=True, weakref_slot=False)
class LiquidationFinished(Event):
    """The waterfall ended for ``account``: ``remaining`` lots still open (0 = done)."""

    account: str
    equity: int
    maintenance: int
    remaining: int


@event("halt")
@attrs.define(slots=True, weakref_slot=False)
class Halt(Event):
    """Circuit breaker: the mark moved ``move_ppm`` within the window; halted until ``until``."""

    symbol: str
    reference: int
    price: int
    move_ppm: int
    until: int


@event("resume")
@attrs.define(slots=True, weakref_slot=False)
class Resume(Event):
    """The halt on ``symbol`` ended; queued liquidations run now."""

    symbol: str
    queued: int
