"""The exchange: a deterministic state machine, ``apply(command) -> events``.

It sequences every command (an ``Input`` event, accepted or not), converts its decimal
strings to integer ticks, lots and atoms at this edge, owns one order book per instrument,
settles fills into the accounts' quote balances, runs mark-price policies and funding, and
watches margin: after every mark change, fill, funding payment, withdrawal and parameter
change, the accounts that fell below maintenance margin are found through the per-
instrument liquidation index (never a scan of all accounts) and handed to
:meth:`Exchange._liquidate`, the seam where the loss waterfall plugs in.

Nothing here raises on bad input: a bad command becomes a ``Rejected`` event with a reason
and changes nothing else.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from clearsim.clearing import clawback, liquidation
from clearsim.clearing import funding as fnd
from clearsim.clearing.accounts import (
    ENTRY_SCALE,
    SYSTEM,
    Account,
)
from clearsim.clearing.config import Config, fmt_atoms
from clearsim.clearing.instrument import Instrument
from clearsim.clearing.ledger import Ledger
from clearsim.clearing.margin import initial, liquidation_price, maintenance, notional, value
from clearsim.clearing.mark import median_mark
from clearsim.clearing.params import ParamError, apply_set
from clearsim.clearing.rounding import ppm_up
from clearsim.events import commands as C
from clearsim.events.commands import parse_command, to_units
from clearsim.events.rejects import RejectCode as R
from clearsim.events.rejects import reason
from clearsim.events.sequencer import Sequencer
from clearsim.events.types import (
    Deposit,
    Event,
    Fill,
    Funding,
    Halt,
    IndexPrice,
    Input,
    InsuranceDeposit,
    LiquidationTriggered,
    MarkPrice,
    ParamSet,
    Rejected,
    Resume,
    Settlement,
    SystemDebt,
    Withdrawal,
)
from clearsim.events.units import MAX_TS, PPM, US_PER_S
from clearsim.orderbook.grid import GridError


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
        self.instruments: dict[str, Instrument] = {
            s.symbol: Instrument(s, self.seq, config.stp, config.basis_samples)
            for s in config.instruments
        }
        #: account -> {order_id: symbol} of its live reduce-only orders
        self._reduce_only: dict[str, dict[str, str]] = {}
        #: triggered accounts waiting for the waterfall, FIFO: (account id, trigger seq)
        self._queue: deque[tuple[str, int]] = deque()
        #: accounts the waterfall could not close yet -> trigger seq; retried on activity
        self.stuck: dict[str, int] = {}
        self._active: dict[str, None] = {}  # symbols whose book or mark moved this command
        self.liquidating: Account | None = None  # the account the waterfall is working on
        self.period = 1  # clawback period number
        self.period_base: dict[str, int] = {}  # account -> equity - net deposits at period start
        self.next_clawback = 0  # µs, for a clawback period of N seconds

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
        """Execute one command; return the events it caused, its ``Input`` first."""
        out: list[Event] = []
        if type(command) is dict and len(command) == 1 and "raw" in command:
            command = command["raw"]  # a non-object input as a log records it (see below)
        cmd = parse_command(command)
        raw: dict[str, Any] = command if isinstance(command, dict) else {"raw": command}
        if isinstance(cmd, str):
            ts = raw.get("ts")
            ts = ts if type(ts) is int and self.ts <= ts <= MAX_TS else self.ts
            self.ts = ts  # the clock is the inputs', rejected or not: the log never goes back
            self._reject(out, _recordable(raw), ts, raw.get("type"), cmd)
            return out
        ts = cmd.ts
        if ts < self.ts or ts > MAX_TS:
            why = reason(R.TS_BACKWARDS if ts < self.ts else R.TS_OUT_OF_RANGE)
            self._reject(out, dict(raw), self.ts, raw["type"], why)
            return out
        s = self.seq.last + 1
        self.seq.last = s
        out.append(Input(s, ts, 0, dict(raw)))
        self._run_scheduled_funding(out, ts, s)
        self._run_scheduled_clawback(out, ts, s)
        self.ts = ts
        self._resume_halts(out, ts, s)
        rejected = _HANDLERS[type(cmd)](self, out, s, cmd)
        if rejected is not None:
            out.append(Rejected(self.seq.next(), ts, s, raw["type"], rejected))
        self._drain(out)
        return out

    def _reject(
        self, out: list[Event], raw: dict[str, Any], ts: int, ctype: object, why: str
    ) -> None:
        s = self.seq.next()
        out.append(Input(s, ts, 0, raw))
        out.append(Rejected(self.seq.next(), ts, s, ctype if isinstance(ctype, str) else "", why))

    # ------------------------------------------------------------------ money commands

    def _deposit(self, out: list[Event], cause: int, c: C.Deposit) -> str | None:
        amount = self._amount(c.amount)
        if isinstance(amount, str):
            return amount
        acct = self.ledger.open(c.account)
        self.ledger.deposit(acct, amount)
        out.append(Deposit(self.seq.next(), c.ts, cause, c.account, amount))
        self.after_balance_change(out, acct, out[-1].seq)
        return None

    def _withdraw(self, out: list[Event], cause: int, c: C.Withdraw) -> str | None:
        acct = self.accounts.get(c.account)
        if acct is None:
            return reason(R.UNKNOWN_ACCOUNT, c.account)
        amount = self._amount(c.amount)
        if isinstance(amount, str):
            return amount
        equity, _, im = self.risk(acct)
        if equity - amount < im:
            return reason(
                R.INSUFFICIENT_MARGIN, "withdrawal would leave equity below initial margin"
            )
        self.ledger.withdraw(acct, amount)
        out.append(Withdrawal(self.seq.next(), c.ts, cause, c.account, amount))
        self.after_balance_change(out, acct, out[-1].seq)
        return None

    def _insurance_deposit(self, out: list[Event], cause: int, c: C.InsuranceDeposit) -> str | None:
        amount = self._amount(c.amount)
        if isinstance(amount, str):
            return amount
        self.ledger.deposit(self.fund, amount)
        out.append(InsuranceDeposit(self.seq.next(), c.ts, cause, amount))
        return None

    def _amount(self, text: str) -> int | str:
        try:
            amount = to_units(text, self.config.collateral_decimals)
        except ValueError as e:
            return reason(R.BAD_AMOUNT, str(e))
        return amount if amount > 0 else reason(R.BAD_AMOUNT, "must be positive")

    # ------------------------------------------------------------------ orders

    def _order(self, out: list[Event], cause: int, c: C.Order) -> str | None:
        acct = self.accounts.get(c.account)
        if acct is None:
            return reason(R.UNKNOWN_ACCOUNT, c.account)
        inst = self.instruments.get(c.symbol)
        if inst is None:
            return reason(R.UNKNOWN_SYMBOL, c.symbol)
        if inst.halted_until > c.ts:
            return reason(R.HALTED, c.symbol)
        try:
            qty = inst.grid.qty(c.qty)
            price = None if c.price is None else inst.grid.price(c.price)
        except GridError as e:
            return reason(R.OFF_GRID, str(e))
        side = c.side
        mark = inst.mark
        band = inst.spec.band_ppm
        if (
            price is not None
            and band
            and mark is not None
            and abs(price - mark) * PPM > band * mark
        ):
            return reason(R.PRICE_OUTSIDE_BAND)
        if c.reduce_only:
            qty_or_reason = self._reduce_only_qty(acct, inst, side, qty)
            if isinstance(qty_or_reason, str):
                return qty_or_reason
            qty = qty_or_reason
        else:
            why = self._pre_trade_check(acct, inst, side, qty, price)
            if why is not None:
                return why
        tif = c.tif
        if price is None and band and mark is not None:
            # A market order never sweeps past the band: it becomes an IOC at the band's edge.
            edge = band * mark // PPM
            price, tif = (mark + edge, "ioc") if side == "buy" else (max(1, mark - edge), "ioc")
        n0 = len(out)
        inst.book.submit(out, c.ts, cause, c.id, c.account, side, qty, price, tif)
        if c.reduce_only and inst.book.get(c.account, c.id) is not None:
            self._reduce_only.setdefault(c.account, {})[c.id] = c.symbol
        self.after_book_events(out, n0, inst, c.ts)
        return None

    def _cancel(self, out: list[Event], cause: int, c: C.Cancel) -> str | None:
        if c.account not in self.accounts:
            return reason(R.UNKNOWN_ACCOUNT, c.account)
        for inst in self.instruments.values():
            if inst.book.get(c.account, c.id) is not None:
                inst.book.cancel(out, c.ts, cause, c.account, c.id)
                self.after_book_events(out, len(out), inst, c.ts)
                return None
        return reason(R.UNKNOWN_ORDER, c.id)

    def _cancel_all(self, out: list[Event], cause: int, c: C.CancelAll) -> str | None:
        if c.account not in self.accounts:
            return reason(R.UNKNOWN_ACCOUNT, c.account)
        for inst in self.instruments.values():
            if inst.book.cancel_all(out, c.ts, cause, c.account):
                self.after_book_events(out, len(out), inst, c.ts)
        return None

    def _amend(self, out: list[Event], cause: int, c: C.Amend) -> str | None:
        acct = self.accounts.get(c.account)
        if acct is None:
            return reason(R.UNKNOWN_ACCOUNT, c.account)
        for inst in self.instruments.values():
            order = inst.book.get(c.account, c.id)
            if order is None:
                continue
            if inst.halted_until > c.ts:
                return reason(R.HALTED, inst.spec.symbol)
            try:
                qty = None if c.qty is None else inst.grid.qty(c.qty)
                price = None if c.price is None else inst.grid.price(c.price)
            except GridError as e:
                return reason(R.OFF_GRID, str(e))
            new_qty = order.qty if qty is None else qty
            new_price = order.price if price is None else price
            mark, band = inst.mark, inst.spec.band_ppm
            if band and mark is not None and abs(new_price - mark) * PPM > band * mark:
                return reason(R.PRICE_OUTSIDE_BAND)
            ro = self._reduce_only.get(c.account, {}).get(c.id) is not None
            if not ro and (new_qty > order.qty or new_price != order.price):
                why = self._pre_trade_check(
                    acct, inst, order.side, new_qty, new_price, replacing=(order.qty, order.price)
                )
                if why is not None:
                    return why
            if ro and new_qty > order.qty:
                return reason(R.REDUCE_ONLY, "order cannot grow")
            inst.book.amend(out, c.ts, cause, c.account, c.id, qty, price)
            self.after_book_events(out, len(out), inst, c.ts)
            return None
        return reason(R.UNKNOWN_ORDER, c.id)

    def _reduce_only_qty(self, acct: Account, inst: Instrument, side: str, qty: int) -> int | str:
        """Clamp a reduce-only order to what is left of the position after the account's
        other reduce-only orders on that side."""
        pos = acct.positions.get(inst.spec.symbol)
        q = pos.qty if pos else 0
        if q == 0 or (q > 0) == (side == "buy"):
            return reason(R.REDUCE_ONLY, "order would not reduce the position")
        room = abs(q) - self._reduce_only_open(acct.id, inst, side)
        if room <= 0:
            return reason(R.REDUCE_ONLY, "orders already cover the position")
        return min(qty, room)

    def _reduce_only_open(self, account: str, inst: Instrument, side: str) -> int:
        total = 0
        for oid, sym in self._reduce_only.get(account, {}).items():
            o = inst.book.get(account, oid) if sym == inst.spec.symbol else None
            if o is not None and o.side == side:
                total += o.qty
        return total

    def _pre_trade_check(
        self,
        acct: Account,
        inst: Instrument,
        side: str,
        qty: int,
        price: int | None,
        replacing: tuple[int, int] | None = None,
    ) -> str | None:
        """Reject when, were this order and the account's other open orders on that side
        filled at their limits, equity would be below initial margin (DESIGN §4).

        ``replacing`` is the (qty, price) of the resting order an amend replaces.
        """
        spec = inst.spec
        m = inst.price_or(price)
        if m is None:
            m = inst.book.best_ask() if side == "buy" else inst.book.best_bid()
            if m is None:
                return None  # nothing to value against and nothing to trade with: it expires
        exec_price = price if price is not None else inst.sweep_price(side, qty, m)
        sign = 1 if side == "buy" else -1
        # Only losses against the mark count (buying above it, selling below): gains don't
        # fund margin until realised.
        loss = min(0, sign * (value(spec, qty, m) - value(spec, qty, exec_price)))
        dq = sign * qty
        skip = replacing
        for o in inst.book.orders_of(acct.id):
            if o.side != side:
                continue
            if skip is not None and (o.qty, o.price) == skip:
                skip = None  # the order being amended is replaced by the new terms
                continue
            dq += sign * o.qty
            loss += min(0, sign * (value(spec, o.qty, m) - value(spec, o.qty, o.price)))
        equity = (
            acct.balance
            + loss
            - ppm_up(notional(spec, qty, exec_price), max(0, spec.taker_fee_ppm))
        )
        im = 0
        sym = spec.symbol
        for s, pos in acct.positions.items():
            other = self.instruments[s]
            pm = other.valuation_price() if s != sym else m
            equity += value(other.spec, pos.qty, pm)
            if s != sym:
                im += initial(other.spec, notional(other.spec, pos.qty, pm))
        cur = acct.positions.get(sym)
        target = (cur.qty if cur else 0) + dq
        n_target = notional(spec, target, m)
        if n_target > spec.tiers[-1].max_notional and abs(target) > abs(cur.qty if cur else 0):
            return reason(R.TIER_EXCEEDED, "position would exceed the largest risk tier")
        im += initial(spec, n_target)
        if equity < im:
            return reason(R.INSUFFICIENT_MARGIN)
        return None

    # ------------------------------------------------------------------ fills and marks

    def after_book_events(
        self,
        out: list[Event],
        n0: int,
        inst: Instrument,
        ts: int,
        fee_exempt: tuple[str, str] | None = None,
    ) -> None:
        """Settle the fills the book just emitted, then re-mark (mid/median) and re-check.

        ``fee_exempt`` is the (account, order id) of a liquidation order: its fills pay no
        trading fee."""
        self._active[inst.spec.symbol] = None
        touched: dict[str, Account] = {}
        for i in range(n0, len(out)):
            e = out[i]
            if type(e) is Fill:
                self._settle(out, inst, e, touched, fee_exempt)
        last_cause = out[-1].seq if out else 0
        for acct in touched.values():
            self._trim_reduce_only(out, acct, inst, ts, last_cause)
            self.after_balance_change(out, acct, last_cause)
        if self.config.mark != "oracle":
            self._remark(out, inst, ts, last_cause)

    def _settle(
        self,
        out: list[Event],
        inst: Instrument,
        f: Fill,
        touched: dict[str, Account],
        fee_exempt: tuple[str, str] | None,
    ) -> None:
        spec = inst.spec
        if f.taker_side == "buy":
            buyer_id, seller_id = f.taker_account, f.maker_account
            buyer_ppm, seller_ppm = spec.taker_fee_ppm, spec.maker_fee_ppm
        else:
            buyer_id, seller_id = f.maker_account, f.taker_account
            buyer_ppm, seller_ppm = spec.maker_fee_ppm, spec.taker_fee_ppm
        if fee_exempt is not None and fee_exempt == (f.taker_account, f.taker_order):
            if f.taker_side == "buy":
                buyer_ppm = 0
            else:
                seller_ppm = 0
        qty, price = f.qty, f.price
        val = value(spec, qty, price)
        n = abs(val)
        buyer_fee = ppm_up(n, buyer_ppm)
        seller_fee = ppm_up(n, seller_ppm)
        buyer, seller = self.accounts[buyer_id], self.accounts[seller_id]
        self.ledger.settle_trade(inst, buyer, seller, qty, price, val, buyer_fee, seller_fee)
        inst.last_trade = price
        touched[buyer_id] = buyer
        touched[seller_id] = seller
        s = self.seq.last + 1
        self.seq.last = s
        out.append(
            Settlement(
                s,
                f.ts,
                f.seq,
                spec.symbol,
                price,
                qty,
                buyer_id,
                seller_id,
                val,
                buyer_fee,
                seller_fee,
            )
        )

    def _trim_reduce_only(
        self, out: list[Event], acct: Account, inst: Instrument, ts: int, cause: int
    ) -> None:
        """Shrink or cancel resting reduce-only orders that now exceed the position."""
        ro = self._reduce_only.get(acct.id)
        if not ro:
            return
        sym = inst.spec.symbol
        pos = acct.positions.get(sym)
        q = pos.qty if pos else 0
        room = abs(q)
        for oid in list(ro):
            if ro[oid] != sym:
                continue
            o = inst.book.get(acct.id, oid)
            if o is None:
                del ro[oid]
                continue
            if q == 0 or (q > 0) == (o.side == "buy") or room == 0:
                inst.book.cancel(out, ts, cause, acct.id, oid, "reduce_only")
                del ro[oid]
            elif o.qty > room:
                inst.book.amend(out, ts, cause, acct.id, oid, room, None)
                room = 0
            else:
                room -= o.qty
        if not ro:
            del self._reduce_only[acct.id]

    def _index_price(self, out: list[Event], cause: int, c: C.IndexPrice) -> str | None:
        inst = self.instruments.get(c.symbol)
        if inst is None:
            return reason(R.UNKNOWN_SYMBOL, c.symbol)
        try:
            price = inst.grid.price(c.price)
        except GridError as e:
            return reason(R.OFF_GRID, str(e))
        inst.index = price
        out.append(IndexPrice(self.seq.next(), c.ts, cause, c.symbol, price))
        inst.sample_premium()
        if self.config.mark == "oracle":
            self._set_mark(out, inst, price, c.ts, out[-1].seq)
        else:
            self._remark(out, inst, c.ts, out[-1].seq)
        return None

    def _remark(self, out: list[Event], inst: Instrument, ts: int, cause: int) -> None:
        """Recompute a derived mark (mid or median) and apply it if it moved."""
        if self.config.mark == "mid":
            mid2 = inst.book.mid2()
            if mid2 is not None:
                self._set_mark(out, inst, mid2 // 2, ts, cause)
            return
        if inst.index is None:
            return
        interval = inst.spec.funding_interval_s * US_PER_S
        left = inst.next_funding - ts if interval and inst.next_funding else interval
        m = median_mark(inst.index, inst.last_rate, left, interval, inst.basis, inst.last_trade)
        self._set_mark(out, inst, m, ts, cause)

    def _set_mark(
        self, out: list[Event], inst: Instrument, price: int, ts: int, cause: int
    ) -> None:
        if price == inst.mark:
            return
        inst.mark = price
        s = self.seq.next()
        out.append(MarkPrice(s, ts, cause, inst.spec.symbol, price))
        self._active[inst.spec.symbol] = None
        spec = inst.spec
        if spec.breaker_ppm and inst.halted_until <= ts:
            ref, move = inst.breaker.observe(ts, price, spec.breaker_window_s * US_PER_S)
            if move > spec.breaker_ppm:
                inst.halted_until = ts + spec.breaker_halt_s * US_PER_S
                inst.breaker.reset()
                out.append(
                    Halt(self.seq.next(), ts, s, spec.symbol, ref, price, move, inst.halted_until)
                )
        for account_id in inst.liq.crossed(price):
            acct = self.accounts[account_id]
            if self._is_liquidatable(acct):
                self._trigger(out, acct, ts, s)

    # ------------------------------------------------------------------ funding

    def _funding(self, out: list[Event], cause: int, c: C.Funding) -> str | None:
        inst = self.instruments.get(c.symbol)
        if inst is None:
            return reason(R.UNKNOWN_SYMBOL, c.symbol)
        if not inst.spec.perpetual:
            return reason(R.NOT_PERPETUAL, c.symbol)
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
        self._pay_funding(out, inst, rate, c.ts, cause)
        return None

    def _run_scheduled_funding(self, out: list[Event], ts: int, cause: int) -> None:
        """Pay funding at every interval boundary the clock passed since the last command."""
        for inst in self.instruments.values():
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
                    self._pay_funding(out, inst, inst.computed_rate(), ts, cause)
                inst.next_funding += interval

    def _pay_funding(
        self, out: list[Event], inst: Instrument, rate: int, ts: int, cause: int
    ) -> None:
        mark = inst.valuation_price()
        holders = {a: acct.positions[inst.spec.symbol].qty for a, acct in inst.holders.items()}
        pays = fnd.payments(inst.spec, holders, mark, rate)
        inst.reset_funding_samples(rate)
        first = self.seq.last + 1
        for i in range(0, max(len(pays), 1), _FUNDING_CHUNK):
            chunk = pays[i : i + _FUNDING_CHUNK]
            out.append(
                Funding(
                    self.seq.next(),
                    ts,
                    cause,
                    inst.spec.symbol,
                    rate,
                    mark,
                    [list(p) for p in chunk],
                )
            )
        self.ledger.pay_funding(pays)
        for account_id, _ in pays:
            self.after_balance_change(out, self.accounts[account_id], first)

    # ------------------------------------------------------------------ governance

    def _set(self, out: list[Event], cause: int, c: C.Set) -> str | None:
        try:
            new_cfg, old, new = apply_set(self.config, c.path, c.value)
        except ParamError as e:
            return reason(R.BAD_PARAM, str(e))
        self.config = new_cfg
        for spec in new_cfg.instruments:
            inst = self.instruments[spec.symbol]
            inst.spec = spec
            inst.book.stp = new_cfg.stp
            inst.resize_basis(new_cfg.basis_samples)
        out.append(ParamSet(self.seq.next(), c.ts, cause, c.path, old, new))
        s = out[-1].seq
        if c.path.startswith("exchange.mark"):
            for inst in self.instruments.values():
                if new_cfg.mark == "oracle":
                    if inst.index is not None:
                        self._set_mark(out, inst, inst.index, c.ts, s)
                else:
                    self._remark(out, inst, c.ts, s)
        # Any parameter may move requirements: re-derive every position holder's threshold.
        for acct in list(self.accounts.values()):
            if acct.positions:
                self.after_balance_change(out, acct, s)
        return None

    def _settle_period(self, out: list[Event], cause: int, c: C.SettlePeriod) -> str | None:
        if self.config.waterfall.clawback_period != "settle_command":
            return reason(
                R.NOT_BY_COMMAND, "clawback periods are not closed by command in this configuration"
            )
        clawback.settle(self, out, c.ts, cause)
        return None

    # ------------------------------------------------------------------ margin watch

    def risk(self, acct: Account) -> tuple[int, int, int]:
        """(equity, maintenance margin, initial margin) at current marks."""
        equity, mm, im = acct.balance, 0, 0
        for sym, pos in acct.positions.items():
            inst = self.instruments[sym]
            m = inst.valuation_price()
            spec = inst.spec
            equity += value(spec, pos.qty, m)
            n = notional(spec, pos.qty, m)
            mm += maintenance(spec, n)
            im += initial(spec, n)
        return equity, mm, im

    def _is_liquidatable(self, acct: Account) -> bool:
        if not acct.positions:
            return False
        equity, mm, _ = self.risk(acct)
        return equity < mm

    def after_balance_change(self, out: list[Event], acct: Account, cause: int) -> None:
        """Re-index the account's liquidation thresholds and trigger it if it is below MM."""
        if acct.id in SYSTEM or acct is self.liquidating:
            return  # system accounts are never liquidated; the waterfall owns its account
        self._reindex(acct)
        if self._is_liquidatable(acct):
            if not acct.flagged:
                self._trigger(out, acct, self.ts, cause)
        elif acct.flagged:
            self.unflag(acct)

    def _reindex(self, acct: Account) -> None:
        positions = acct.positions
        if acct.flagged or acct.id in SYSTEM:
            for sym in positions:
                self.instruments[sym].liq.discard(acct.id)
            return
        if len(positions) == 1:
            ((sym, pos),) = positions.items()
            inst = self.instruments[sym]
            lp = liquidation_price(inst.spec, pos.qty, acct.balance, 0, inst.price_or(None))
            inst.liq.set_single(acct.id, pos.qty > 0, lp)
        else:
            for sym in positions:
                self.instruments[sym].liq.set_multi(acct.id)

    def liquidation_price(self, acct: Account, symbol: str) -> int | None:
        """The mark of ``symbol`` at which ``acct`` becomes liquidatable, others held fixed."""
        pos = acct.positions.get(symbol)
        if pos is None:
            return None
        base_e, base_mm = acct.balance, 0
        for sym, other in acct.positions.items():
            if sym == symbol:
                continue
            inst = self.instruments[sym]
            m = inst.valuation_price()
            base_e += value(inst.spec, other.qty, m)
            base_mm += maintenance(inst.spec, notional(inst.spec, other.qty, m))
        inst = self.instruments[symbol]
        return liquidation_price(inst.spec, pos.qty, base_e, base_mm, inst.price_or(None))

    def _trigger(self, out: list[Event], acct: Account, ts: int, cause: int) -> None:
        equity, mm, _ = self.risk(acct)
        acct.flagged = True
        for sym in acct.positions:
            self.instruments[sym].liq.discard(acct.id)
        s = self.seq.next()
        out.append(LiquidationTriggered(s, ts, cause, acct.id, equity, mm))
        self._queue.append((acct.id, s))

    def _drain(self, out: list[Event]) -> None:
        """Run the waterfall for every queued account, in trigger order, until the cascade
        ends (a liquidation can move the mark and queue more); then retry, once, accounts
        the waterfall could not close whose books or marks moved in this command."""
        retried: dict[str, None] = {}
        while True:
            while self._queue:
                account_id, cause = self._queue.popleft()
                acct = self.accounts[account_id]
                if acct.flagged and account_id not in self.stuck:
                    with self._working_on(acct):
                        liquidation.liquidate(self, out, acct, cause)
            again = [
                (aid, cause)
                for aid, cause in self.stuck.items()
                if aid not in retried
                and any(sym in self._active for sym in self.accounts[aid].positions)
            ]
            if not again:
                break
            for aid, cause in again:
                retried[aid] = None
                del self.stuck[aid]
                self._queue.append((aid, cause))
        self._active.clear()

    @contextmanager
    def _working_on(self, acct: Account) -> Iterator[None]:
        """While the waterfall works on ``acct``, its own balance changes do not re-trigger
        it (the waterfall decides when it is done); reset even if the waterfall raises."""
        self.liquidating = acct
        try:
            yield
        finally:
            self.liquidating = None

    def _resume_halts(self, out: list[Event], ts: int, cause: int) -> None:
        for inst in self.instruments.values():
            if inst.halted_until and inst.halted_until <= ts:
                inst.halted_until = 0
                queued = inst.halt_queue
                inst.halt_queue = {}
                out.append(Resume(self.seq.next(), ts, cause, inst.spec.symbol, len(queued)))
                self._queue.extend(queued.items())

    def _run_scheduled_clawback(self, out: list[Event], ts: int, cause: int) -> None:
        period = self.config.waterfall.clawback_period
        if not period.isdigit():
            return
        every = int(period) * US_PER_S
        if not self.next_clawback:
            self.next_clawback = (ts // every + 1) * every
            return
        if self.next_clawback <= ts:
            clawback.settle(self, out, ts, cause)
            self.next_clawback = (ts // every + 1) * every

    # ------------------------------------------------------------------ waterfall primitives

    def unflag(self, acct: Account) -> None:
        acct.flagged = False
        self.stuck.pop(acct.id, None)
        self._reindex(acct)

    def write_off(self, out: list[Event], acct: Account, cause: int, reason: str) -> None:
        """Record ``acct``'s negative balance as system debt (never silently dropped)."""
        amount = self.ledger.write_off(acct)
        out.append(SystemDebt(self.seq.next(), self.ts, cause, acct.id, amount, reason))

    def forget_reduce_only(self, account_id: str) -> None:
        self._reduce_only.pop(account_id, None)

    def user_accounts(self) -> list[Account]:
        return [a for aid, a in self.accounts.items() if aid not in SYSTEM]

    # ------------------------------------------------------------------ views

    def state(self) -> dict[str, Any]:
        """The state shape of DESIGN §10 (`clearsim state --json`), decimal strings."""
        sc = self.scale
        accounts: dict[str, Any] = {}
        for aid in sorted(self.accounts):
            if aid in SYSTEM:
                continue
            acct = self.accounts[aid]
            equity, mm, im = self.risk(acct)
            positions: dict[str, Any] = {}
            for sym in sorted(acct.positions):
                pos = acct.positions[sym]
                inst = self.instruments[sym]
                lp = self.liquidation_price(acct, sym)
                positions[sym] = {
                    "qty": inst.grid.fmt_qty(pos.qty),
                    "entry_price": _fmt_entry(pos.entry_e6, inst.spec.tick_size),
                    "liquidation_price": None if lp is None else inst.grid.fmt_price(lp),
                }
            accounts[aid] = {
                "balance": fmt_atoms(acct.balance, sc),
                "equity": fmt_atoms(equity, sc),
                "maintenance_margin": fmt_atoms(mm, sc),
                "initial_margin": fmt_atoms(im, sc),
                "liquidatable": equity < mm,
                "positions": positions,
            }
        marks = {
            sym: {
                "mark": None if inst.mark is None else inst.grid.fmt_price(inst.mark),
                "index": None if inst.index is None else inst.grid.fmt_price(inst.index),
                "last_trade": None
                if inst.last_trade is None
                else inst.grid.fmt_price(inst.last_trade),
            }
            for sym, inst in sorted(self.instruments.items())
        }
        return {
            "seq": self.seq.last,
            "ts": self.ts,
            "insurance_fund": fmt_atoms(self.risk(self.fund)[0], sc),
            "system_debt": fmt_atoms(-self.debt.balance, sc),
            "socialized_pending": fmt_atoms(-self.pool.balance, sc),
            "fee_pool": fmt_atoms(self.fees.balance, sc),
            "instruments": marks,
            "accounts": accounts,
        }


_FUNDING_CHUNK = 5000


def _ppm_truncated(text: str) -> int:
    d = Decimal(text) * PPM
    return int(d.to_integral_value(rounding="ROUND_DOWN"))


def _fmt_entry(entry_e6: int, tick_size: str) -> str:
    return format((Decimal(entry_e6) * Decimal(tick_size) / ENTRY_SCALE).normalize(), "f")


def _recordable(raw: dict[str, Any]) -> dict[str, Any]:
    """The command as received if it can be logged, else its repr (a log never breaks)."""
    try:
        orjson.dumps(raw)
    except (TypeError, orjson.JSONEncodeError):
        return {"raw": repr(raw)[:4096]}
    return dict(raw)


_HANDLERS: dict[type, Any] = {
    C.Deposit: Exchange._deposit,
    C.Withdraw: Exchange._withdraw,
    C.InsuranceDeposit: Exchange._insurance_deposit,
    C.Order: Exchange._order,
    C.Cancel: Exchange._cancel,
    C.CancelAll: Exchange._cancel_all,
    C.Amend: Exchange._amend,
    C.IndexPrice: Exchange._index_price,
    C.Funding: Exchange._funding,
    C.SettlePeriod: Exchange._settle_period,
    C.Set: Exchange._set,
}
