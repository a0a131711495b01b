"""How the traders' entry orders ended: filled, filled in part, not filled, rejected.

An *entry order* is an input ``order`` that takes liquidity at once and cannot rest: IOC,
FOK, or a market order (no price); not reduce-only, from a trader (not a system account,
``#...``). A scenario's population enters with exactly such orders. Its fate is settled
inside its own command's events, so the fold only looks at those:

- rejected: the command was refused (``rejected``), or the book refused the order
  (``order_rejected``);
- not filled: accepted, nothing filled, the remainder expired (``order_expired``: no
  liquidity within its limit, a FOK that could not fill whole, a self-trade);
- filled in part: some filled, the rest expired;
- filled: filled whole.

An IOC remainder that expires is not a rejection: the exchange took the order and there was
nothing to fill it against. ``clearsim run`` counts it apart from the rejected commands,
and the story tells it (``N entry orders did not fill``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import attrs

from clearsim.events.types import Event, Fill, Input, OrderAccepted, OrderExpired, OrderRejected
from clearsim.events.types import Rejected as RejectedEvent

__all__ = ["EntryOrders", "is_entry_order"]

_TAKER_TIFS: Final = ("ioc", "fok")
#: The events that tell how an entry order ended.
_WATCHED: Final = frozenset({Fill, OrderExpired, OrderAccepted, OrderRejected, RejectedEvent})


def is_entry_order(command: object) -> bool:
    """Whether a command is an entry order (see the module docstring)."""
    if not isinstance(command, dict) or command.get("type") != "order":
        return False
    account = command.get("account")
    if not isinstance(account, str) or account.startswith("#"):
        return False
    if command.get("reduce_only") is True:
        return False
    return "price" not in command or command.get("tif") in _TAKER_TIFS


@attrs.define
class _Pending:
    """The entry order of the command being folded."""

    input_seq: int
    account: str
    order_id: str
    accepted: bool = False
    filled: int = 0  # lots
    expired: int = 0
    rejected: bool = False


@attrs.define
class EntryOrders:
    """Counts of entry orders by how they ended; fed every event (:meth:`feed`) or each
    command's events (:meth:`command`)."""

    orders: int = 0
    filled: int = 0
    partly: int = 0
    unfilled: int = 0
    rejected: int = 0
    _pending: _Pending | None = None

    @property
    def did_not_fill(self) -> int:
        """Entry orders that filled nothing: not filled, or rejected."""
        return self.unfilled + self.rejected

    def totals(self) -> EntryOrders:
        """The counts with the last command's order counted (a copy: feeding goes on)."""
        out = attrs.evolve(self)
        out.finish()
        return out

    def command(self, events: Iterable[Event]) -> None:
        """One command's events, its ``Input`` first (what the runner holds per command)."""
        for ev in events:
            self.feed(ev)
        self.finish()

    def feed(self, ev: Event) -> None:
        t = type(ev)  # exact types, not isinstance: this runs for every event of a run
        if t is Input:
            if not isinstance(ev, Input):  # pragma: no cover - narrows the type
                raise TypeError(f"expected Input, got {t.__name__}")
            self.finish()
            c = ev.command
            if is_entry_order(c):
                self._pending = _Pending(ev.seq, str(c["account"]), str(c.get("id")))
            return
        p = self._pending
        if p is None or t not in _WATCHED:
            return
        if isinstance(ev, Fill):
            if ev.taker_order == p.order_id and ev.taker_account == p.account:
                p.filled += ev.qty
        elif isinstance(ev, OrderExpired | OrderAccepted | OrderRejected):
            if ev.order_id == p.order_id and ev.account == p.account:
                if isinstance(ev, OrderExpired):
                    p.expired += ev.qty
                elif isinstance(ev, OrderAccepted):
                    p.accepted = True
                else:
                    p.rejected = True
        elif ev.cause == p.input_seq:  # a Rejected: of this command
            p.rejected = True

    def finish(self) -> None:
        """Count the pending order (the last command's), if any."""
        p = self._pending
        if p is None:
            return
        self._pending = None
        self.orders += 1
        if p.rejected or not p.accepted:
            self.rejected += 1
        elif not p.filled:
            self.unfilled += 1
        elif p.expired:
            self.partly += 1
        else:
            self.filled += 1
