"""Why a command was rejected: a stable machine-readable code, then the human detail.

A ``rejected`` event's ``reason`` is ``"<code>"`` or ``"<code>: <detail>"``
(``"unknown_symbol: XYZ"``), so a user can count rejections by kind with
``reason.split(":")[0]`` and a test can assert the kind rather than a sentence. The codes are
part of the public contract: add new ones, never rename one.
"""

from __future__ import annotations

from enum import StrEnum


class RejectCode(StrEnum):
    """Every kind of rejection, grouped by the stage that finds it."""

    # the command's shape (events.commands)
    MALFORMED = "malformed"  # not JSON, not an object, too long, too deep
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_FIELD = "unknown_field"
    MISSING_FIELD = "missing_field"
    BAD_FIELD = "bad_field"  # a field of the wrong type or out of range
    # the clock
    TS_BACKWARDS = "ts_backwards"
    TS_OUT_OF_RANGE = "ts_out_of_range"
    # references
    UNKNOWN_ACCOUNT = "unknown_account"
    UNKNOWN_SYMBOL = "unknown_symbol"
    UNKNOWN_ORDER = "unknown_order"
    # values on the instrument's grid and in money
    OFF_GRID = "off_grid"  # a price or quantity that is not a whole number of ticks or lots
    BAD_AMOUNT = "bad_amount"
    BAD_RATE = "bad_rate"
    # market state
    HALTED = "halted"
    PRICE_OUTSIDE_BAND = "price_outside_band"
    NO_MARK = "no_mark"
    NOT_PERPETUAL = "not_perpetual"
    CROSSES_BOOK = "crosses_book"  # a market_level that would cross other accounts' orders
    # risk
    INSUFFICIENT_MARGIN = "insufficient_margin"
    TIER_EXCEEDED = "tier_exceeded"
    REDUCE_ONLY = "reduce_only"  # a reduce-only order that would not reduce
    PROFIT_LOCKED = "profit_locked"  # a withdrawal of profit a pending clawback may claim
    #: an order or level of the margin-exempt #market whose fills' value could not be
    #: logged (more than 64 bits of atoms); other accounts are bounded by their margin
    VALUE_OUT_OF_RANGE = "value_out_of_range"
    # governance and periods
    BAD_PARAM = "bad_param"
    NOT_BY_COMMAND = "not_by_command"


def reason(code: RejectCode, detail: str | None = None) -> str:
    """The ``reason`` text of a rejection: ``code`` alone, or ``"code: detail"``."""
    return code.value if not detail else f"{code.value}: {detail}"


def code_of(reason_text: str) -> str:
    """The code of a logged reason (the text before the first ``": "``)."""
    return reason_text.split(": ", 1)[0]
