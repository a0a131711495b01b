"""What falls due with time or by command: funding (every ``funding_interval_s`` or on a
``funding`` command, paid through the ledger in chunked ``Funding`` events) and clawback
periods (every N seconds, or on ``settle_period`` when so configured)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from clearsim.clearing import clawback, watch
from clearsim.clearing import funding as fnd
from clearsim.clearing.config import Every, OnCommand
from clearsim.clearing.instrument import Instrument
from clearsim.events import commands as C
from clearsim.events.rejects import RejectCode as R
from clearsim.events.rejects import reason
from clearsim.events.types import Event, Funding
from clearsim.events.units import PPM, US_PER_S

if TYPE_CHECKING:
    from clearsim.clearing.exchange import Exchange

#: payments per ``Funding`` event: keeps every record small however many holders there are
_FUNDING_CHUNK = 5000


def _ppm_truncated(text: str) -> int:
    d = Decimal(text) * PPM
    return int(d.to_integral_value(rounding="ROUND_DOWN"))


def rate_error(text: str) -> str | None:
    """Why a given funding rate cannot be paid: more than 100% of the position per round
    (a payment past the position's whole value, and past 64 bits for large rates)."""
    if _ppm_truncated(text.lstrip("-")) > PPM:
        return reason(R.BAD_RATE, f"{text} is more than 100% per round")
    return None


def funding(ex: Exchange, out: list[Event], cause: int, c: C.Funding) -> str | None:
    inst = ex.instruments.get(c.symbol)
    if inst is None:
        return reason(R.UNKNOWN_SYMBOL, c.symbol)
    if not inst.spec.perpetual:
        return reason(R.NOT_PERPETUAL, c.symbol)
    if c.rate is not None and (why := rate_error(c.rate)) is not None:
        return why
    if c.rate is None:
        rate = inst.computed_rate()
    else:
        neg = c.rate.startswith("-")
        try:
            # Rates beyond ppm precision are truncated toward zero: funding is a transfer
            # between traders, so no side is favoured.
            mag = _ppm_truncated(c.rate.lstrip("-"))
        except ValueError as e:
            return reason(R.BAD_RATE, str(e))
        rate = -mag if neg else mag
    if inst.price_or(None) is None:
        return reason(R.NO_MARK, c.symbol)
    pay_funding(ex, out, inst, rate, c.ts, cause)
    return None


def funding_rounds_due(ex: Exchange, ts: int) -> int:
    """How many funding rounds a command at ``ts`` would make fall due (the most over the
    instruments); computed without paying any."""
    most = 0
    for inst in ex.instruments.values():
        interval = inst.spec.funding_interval_s * US_PER_S
        if interval and inst.spec.perpetual and inst.next_funding and inst.next_funding <= ts:
            most = max(most, (ts - inst.next_funding) // interval + 1)
    return most


def anything_due(ex: Exchange, ts: int) -> bool:
    """Whether a command at ``ts`` makes anything fall due that cannot be undone: a funding
    round (or the first command, which starts the funding schedule) or a clawback period."""
    for inst in ex.instruments.values():
        interval = inst.spec.funding_interval_s * US_PER_S
        if interval and inst.spec.perpetual and (not inst.next_funding or inst.next_funding <= ts):
            return True
    if type(ex.config.waterfall.clawback_period) is Every:
        return not ex.next_clawback or ex.next_clawback <= ts
    return False


#: Where the schedules stand: each instrument's next funding time, the next clawback time,
#: the clawback period and its profit bases.
Schedules = tuple[tuple[int, ...], int, int, dict[str, int]]


def marks_of(ex: Exchange) -> Schedules:
    """The schedules as they stand, for :func:`restore` to put back when nothing that ran
    emitted an event (a schedule that only started, or an empty clawback period)."""
    funding = tuple(i.next_funding for i in ex.instruments.values())
    return funding, ex.next_clawback, ex.period, ex.period_base  # period_base is replaced,
    # never mutated, by clawback.settle: keeping the reference is keeping the value


def restore(ex: Exchange, saved: Schedules) -> None:
    for inst, at in zip(ex.instruments.values(), saved[0], strict=True):
        inst.next_funding = at
    ex.next_clawback, ex.period, ex.period_base = saved[1], saved[2], saved[3]


def run_scheduled_funding(ex: Exchange, out: list[Event], ts: int, cause: int) -> None:
    """Pay funding at every interval boundary the clock passed since the last command."""
    for inst in ex.instruments.values():
        interval = inst.spec.funding_interval_s * US_PER_S
        if not interval or not inst.spec.perpetual:
            continue
        if not inst.next_funding:
            inst.next_funding = (ts // interval + 1) * interval
            continue
        while inst.next_funding <= ts:
            # Stamped with the command's ts: the log's clock never goes backwards, and the
            # boundary is implied by the interval.
            if inst.price_or(None) is not None:
                pay_funding(ex, out, inst, inst.computed_rate(), ts, cause)
            inst.next_funding += interval


def pay_funding(
    ex: Exchange, out: list[Event], inst: Instrument, rate: int, ts: int, cause: int
) -> None:
    mark = inst.valuation_price()
    holders = {a: acct.positions[inst.spec.symbol].qty for a, acct in inst.holders.items()}
    pays = fnd.payments(inst.spec, holders, mark, rate)
    inst.reset_funding_samples(rate)
    first = ex.seq.last + 1
    for i in range(0, max(len(pays), 1), _FUNDING_CHUNK):
        chunk = pays[i : i + _FUNDING_CHUNK]
        out.append(
            Funding(
                ex.seq.next(),
                ts,
                cause,
                inst.spec.symbol,
                rate,
                mark,
                [list(p) for p in chunk],
            )
        )
    ex.ledger.pay_funding(pays)
    for account_id, _ in pays:
        watch.after_balance_change(ex, out, ex.accounts[account_id], first)


def run_scheduled_clawback(ex: Exchange, out: list[Event], ts: int, cause: int) -> None:
    period = ex.config.waterfall.clawback_period
    if type(period) is not Every:
        return
    every = period.seconds * US_PER_S
    if not ex.next_clawback:
        ex.next_clawback = (ts // every + 1) * every
        return
    if ex.next_clawback <= ts:
        clawback.settle(ex, out, ts, cause)
        ex.next_clawback = (ts // every + 1) * every


def settle_period(ex: Exchange, out: list[Event], cause: int, c: C.SettlePeriod) -> str | None:
    if not isinstance(ex.config.waterfall.clawback_period, OnCommand):
        return reason(
            R.NOT_BY_COMMAND, "clawback periods are not closed by command in this configuration"
        )
    clawback.settle(ex, out, c.ts, cause)
    return None
