"""What each integer field of an event counts: the one table of event-field units.

The log stores integers (DESIGN §3); a field's name says what it counts, the same in every
event type that has it: a price in ticks, a quantity in lots of its event's ``symbol``,
money in atoms of the collateral, a time in µs. Everything that shows an event's numbers
as decimals (``clearsim cascade``, the tables of ``clearsim export``) reads this table, and
a test holds every integer field of every event type to be in :data:`KINDS` or
:data:`PLAIN`, so a new field's unit is decided once, here.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["KINDS", "PLAIN", "Kind"]

#: What a column's integers count: ``plain`` integers (counts, ppm, ranks) are never scaled.
Kind = Literal["plain", "price", "qty", "money", "time"]

#: The unit of every integer field that is an amount, by field name.
KINDS: Final[dict[str, Kind]] = {
    "price": "price",
    "bankruptcy_price": "price",
    "mark": "price",
    "reference": "price",
    "qty": "qty",
    "amount": "money",
    "value": "money",
    "buyer_fee": "money",
    "seller_fee": "money",
    "equity": "money",
    "maintenance": "money",
    "delta": "money",
    "fee": "money",
    "surplus_to_fund": "money",
    "fund_paid": "money",
    "socialized": "money",
    "loss": "money",
    "profit_base": "money",
    "collected": "money",
    "until": "time",
}

#: Integer fields that are not amounts: kept as integers in every unit. ``remaining`` is
#: the lots still open summed over an account's symbols, which no one lot size can scale.
PLAIN: Final = frozenset({"rate_ppm", "move_ppm", "rank", "period", "queued", "remaining"})
