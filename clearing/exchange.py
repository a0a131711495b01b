"""The exchange: the clock, the dispatch of commands and the emission of their events.

``Exchange.apply(command) -> events`` sequences every command (an ``Input`` event,
accepted or not), keeps the simulated clock (the inputs' ``ts``, never going back), runs
what fell due as the clock passed (funding, clawback periods, the end of halts), hands the
command to its handler and, when the handler refuses it, emits the ``Rejected`` event;
then it drains the liquidation queue. The work lives beside it, one module per concern:

- :mod:`~clearsim.clearing.money` — deposits, withdrawals, insurance deposits;
- :mod:`~clearsim.clearing.orders` — orders, cancels, amends, reduce-only, fill settlement;
- :mod:`~clearsim.clearing.watch` — pre-trade risk and the margin watch (risk, the
  liquidation index, trigger and queue);
- :mod:`~clearsim.clearing.market` — the historical market's liquidity: ``#market`` and
  ``market_level``;
- :mod:`~clearsim.clearing.marks` — index, mark policies, circuit breaker, halts;
- :mod:`~clearsim.clearing.schedule` — funding and clawback periods;
- :mod:`~clearsim.clearing.governance` — the ``set`` command;
- :mod:`~clearsim.clearing.view` — the state view;
- :mod:`~clearsim.clearing.ledger` — the only code that changes cash and positions.

The exchange holds the state those modules work on (accounts through the ledger,
instruments, the liquidation queue, reduce-only orders, clawback periods). Nothing here
raises on bad input: a bad command becomes a ``Rejected`` event with a reason and changes
nothing else.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from clearsim.clearing import (
    admission,
    governance,
    market,
    marks,
    money,
    orders,
    schedule,
    view,
    watch,
)
from clearsim.clearing.accounts import SYSTEM, Account
from clearsim.clearing.config import Config
from clearsim.clearing.instrument import Instrument
from clearsim.clearing.ledger import Ledger
from clearsim.clearing.steps.adl import AdlCache
from clearsim.events import commands as C
from clearsim.events.commands import command_of_record, parse_command, record_form
from clearsim.events.rejects import RejectCode as R
from clearsim.events.rejects import reason
from clearsim.events.sequencer import Sequencer
from clearsim.events.types import Event, Input, Rejected, SystemDebt
from clearsim.events.units import MAX_CLOCK_JUMP, MAX_FUNDING_ROUNDS


class Exchange:
    """One exchange: accounts, books, marks, margin. Feed it commands with :meth:`apply`."""

    def __init__(self, config: Config, seq: Sequencer | None = None) -> None:
        self.config = config
        self.seq = seq or Sequencer()
        self.ts = 0
        self.scale = 10**config.collateral_decimals
        #: the only code that changes cash and positions
        self.ledger = Ledger(config.insurance_initial)
        self.accounts: dict[str, Account] = self.ledger.accounts
        self.fund = self.ledger.fund
        self.fees = self.ledger.fees
        self.pool = self.ledger.pool  # socialised loss awaiting clawback
        self.debt = self.ledger.debt  # what nobody could be made to pay
        self.market = self.ledger.market  # the historical market's liquidity (market)
        #: symbol -> the depth market_level placed in its book (market)
        self.market_depth = {s.symbol: market.Depth() for s in config.instruments}
        self.instruments: dict[str, Instrument] = {
            s.symbol: Instrument(s, self.seq, config.stp, config.basis_samples)
            for s in config.instruments
        }
        #: account -> {order_id: symbol} of its live reduce-only orders (orders)
        self.reduce_only: dict[str, dict[str, str]] = {}
        #: triggered accounts waiting for the waterfall, FIFO: (account id, trigger seq)
        self.queue: deque[tuple[str, int]] = deque()
        #: accounts the waterfall could not close yet -> trigger seq; retried on activity
        self.stuck: dict[str, int] = {}
        self.active: dict[str, None] = {}  # symbols whose book or mark moved this command
        self.liquidating: Account | None = None  # the account the waterfall is working on
        self.period = 1  # clawback period number
        self.period_base: dict[str, int] = {}  # account -> equity - net deposits at period start
        self.next_clawback = 0  # µs, for a clawback period of N seconds
        #: the ADL ranking heaps of the current command (steps.adl)
        self.adl_cache = AdlCache()

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Exchange:
        return cls(Config.from_dict(d))

    @classmethod
    def from_toml(cls, path: str | Path) -> Exchange:
        return cls(Config.from_toml(path))

    @property
    def net_deposits(self) -> int:
        """Deposits minus withdrawals over all accounts, the fund's included."""
        return sum(a.net_deposits for a in self.accounts.values())

    # ------------------------------------------------------------------ the one entry point

    def apply(self, command: object) -> list[Event]:
        """Execute one command; return the events it caused, its ``Input`` first.

        A command that is not a well-formed command in time (bad shape, a ``ts`` before the
        clock or out of range, something the log cannot record) changes nothing at all:
        not the clock, not funding, not clawback periods; its ``Input`` is stamped with the
        current clock, so one typo cannot move time and brick the rest of a replay. A
        well-formed command refused by its handler (no margin, unknown account, ...) is
        still a proof that its ``ts`` arrived: what fell due by then (funding, a clawback
        period, the end of a halt) happens before the handler runs, as it would for any
        other command at that time, so funding never depends on whether an unrelated order
        was accepted.
        """
        if type(command) is dict and command.get("type") == "market_level":
            # The fast lane of the command a historical day is mostly made of: the very
            # events and state of the path below, or None to take it (clearing.market).
            fast = market.apply_fast(self, command)
            if fast is not None:
                return fast
        out: list[Event] = []
        inner = command_of_record(command)  # {"raw": x} is how a log records a non-object
        cmd = parse_command(inner)
        if isinstance(cmd, str):
            recorded = record_form(inner)
            if command_of_record(recorded) is not inner:
                # Recorded as a stand-in: give the verdict a re-execution will give.
                cmd = parse_command(command_of_record(recorded))
                if not isinstance(cmd, str):  # pragma: no cover - a stand-in is a string
                    cmd = reason(R.MALFORMED, "unrecordable command")
            # The type as the log holds it (none for a stand-in), so replay agrees.
            self._reject(out, recorded, self.ts, recorded.get("type"), cmd)
            return out
        raw: dict[str, Any] = inner  # type: ignore[assignment]  # parsed, so a dict
        try:
            orjson.dumps(raw)
        except TypeError:  # JSONEncodeError is one: a lone surrogate, via the Python API
            recorded = record_form(raw)
            verdict = parse_command(command_of_record(recorded))
            why = verdict if isinstance(verdict, str) else reason(R.MALFORMED)
            self._reject(out, recorded, self.ts, recorded.get("type"), why)
            return out
        ts = cmd.ts
        late = self._clock_check(ts)
        if late is not None:
            self._reject(out, dict(raw), self.ts, raw["type"], late)
            return out
        due = ts > self.ts and (schedule.anything_due(self, ts) or marks.halts_due(self, ts))
        if due:
            # What falls due cannot be undone: refuse a bad command before it runs.
            bad = admission.static_reject(self, cmd)
            if bad is not None:
                self._reject(out, dict(raw), self.ts, raw["type"], bad)
                return out
        clock = self.ts
        s = self.seq.last + 1
        self.seq.last = s
        out.append(Input(s, ts, 0, dict(raw)))
        # The clock moves first: whatever falls due now (funding, a clawback period, the
        # end of a halt) and whatever it triggers is stamped with this command's ts.
        self.ts = ts
        saved = schedule.marks_of(self) if due else None
        if due:
            schedule.run_scheduled_funding(self, out, ts, s)
            schedule.run_scheduled_clawback(self, out, ts, s)
            marks.resume_halts(self, out, ts, s)
        quiet = len(out) == 1  # nothing that fell due emitted anything
        rejected = _HANDLERS[type(cmd)](self, out, s, cmd)
        if rejected is not None:
            if quiet:
                # Nothing happened and a refusing handler changes nothing: put the clock
                # (and a schedule that only started or moved on) back and stamp the
                # records with the clock, so the command changed nothing at all.
                if saved is not None:
                    schedule.restore(self, saved)
                self.ts = clock
                out[0] = Input(s, clock, 0, dict(raw))
                ts = clock
            out.append(Rejected(self.seq.next(), ts, s, raw["type"], rejected))
        watch.drain(self, out)
        return out

    def quiet_at(self, ts: int) -> bool:
        """A well-formed command at ``ts`` passes the clock checks and makes nothing fall
        due: :meth:`apply` would only run its handler (``market.apply_fast``'s condition)."""
        if ts > self.ts and (schedule.anything_due(self, ts) or marks.halts_due(self, ts)):
            return False
        return self._clock_check(ts) is None

    def _clock_check(self, ts: int) -> str | None:
        """Why a well-formed command's ``ts`` cannot move the clock, or None."""
        if ts < self.ts:
            return reason(R.TS_BACKWARDS)
        if self.ts and ts - self.ts > MAX_CLOCK_JUMP:
            return reason(R.TS_OUT_OF_RANGE, f"more than {MAX_CLOCK_JUMP} µs after the clock")
        due = schedule.funding_rounds_due(self, ts)
        if due > MAX_FUNDING_ROUNDS:
            return reason(
                R.TS_OUT_OF_RANGE,
                f"{due} funding rounds would fall due (at most {MAX_FUNDING_ROUNDS})",
            )
        return None

    def _reject(
        self, out: list[Event], raw: dict[str, Any], ts: int, ctype: object, why: str
    ) -> None:
        s = self.seq.next()
        out.append(Input(s, ts, 0, raw))
        out.append(Rejected(self.seq.next(), ts, s, ctype if isinstance(ctype, str) else "", why))

    # ------------------------------------------------------------------ used by the waterfall

    def risk(self, acct: Account) -> tuple[int, int, int]:
        """(equity, maintenance margin, initial margin) at current marks."""
        return watch.risk(self, acct)

    def after_balance_change(self, out: list[Event], acct: Account, cause: int) -> None:
        """Re-index the account's liquidation thresholds and trigger it if it is below MM."""
        watch.after_balance_change(self, out, acct, cause)

    def after_book_events(
        self,
        out: list[Event],
        n0: int,
        inst: Instrument,
        ts: int,
        fee_exempt: tuple[str, str] | None = None,
    ) -> None:
        """Settle the fills the book emitted from ``out[n0]`` on, re-mark and re-check."""
        orders.after_book_events(self, out, n0, inst, ts, fee_exempt)

    def liquidation_price(self, acct: Account, symbol: str) -> int | None:
        """The mark of ``symbol`` at which ``acct`` becomes liquidatable, others held fixed."""
        return watch.liquidation_price_of(self, acct, symbol)

    def unflag(self, acct: Account) -> None:
        watch.unflag(self, acct)

    def forget_reduce_only(self, account_id: str) -> None:
        orders.forget_reduce_only(self, account_id)

    def write_off(self, out: list[Event], acct: Account, cause: int, why: str) -> None:
        """Record ``acct``'s negative balance as system debt (never silently dropped)."""
        amount = self.ledger.write_off(acct)
        out.append(SystemDebt(self.seq.next(), self.ts, cause, acct.id, amount, why))

    def user_accounts(self) -> list[Account]:
        return [a for aid, a in self.accounts.items() if aid not in SYSTEM]

    # ------------------------------------------------------------------ views

    def state(self) -> dict[str, Any]:
        """The state shape of DESIGN §10 (`clearsim state --json`): see :func:`view.state`."""
        return view.state(self)


#: A command handler: ``(exchange, out, cause, command) -> rejection reason or None``.
Handler = Callable[[Exchange, list[Event], int, Any], str | None]

_HANDLERS: dict[type, Handler] = {
    C.Deposit: money.deposit,
    C.Withdraw: money.withdraw,
    C.InsuranceDeposit: money.insurance_deposit,
    C.Order: orders.order,
    C.Cancel: orders.cancel,
    C.CancelAll: orders.cancel_all,
    C.Amend: orders.amend,
    C.IndexPrice: marks.index_price,
    C.Funding: schedule.funding,
    C.SettlePeriod: schedule.settle_period,
    C.Set: governance.set_param,
    C.MarketLevel: market.market_level,
}
