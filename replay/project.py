"""Projections: folds of a log's events into views, with no engine (DESIGN §8).

A projection reads only event fields and the header, so it works on any stream in the
format, whoever wrote it. Three folds:

- :class:`Ledger` — cash balances (system accounts included), positions with their average
  entry price (the rule of ``clearing.accounts.Position.trade``), marks, index and last
  trade prices, and ``set`` changes; :func:`state_view` renders it in the shape of
  ``clearsim state --json`` (equity, margins and liquidation prices use the header's config
  and ``clearing.margin``).
- :class:`FundFold` — the insurance-fund timeline (one row per change of the fund's cash:
  seq, ts, balance after, amount, reason, cause), the clawback ledger (per period: the
  socialized losses, loss, profit base, rate, charge per account) and the ADL ledger.
- :func:`fold_fund` runs :class:`FundFold` over a log file on a fast path: the raw bytes are
  searched for the few record kinds that touch the fund, the clawback or ADL, and only those
  lines are parsed. With ``verify=True`` every line's checksum chain is still checked
  (hashing, not parsing); any anomaly falls back to :class:`events.log.LogReader`, which
  names a corrupt record or reports a torn tail exactly.

Every fold works on raw record dicts (``apply``) or typed events (``apply_event``).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import IO, Any, Final

import attrs
import orjson

from clearsim.clearing.accounts import (
    CLAWBACK_POOL,
    DEBT,
    ENTRY_SCALE,
    FEES,
    INSURANCE,
    SYSTEM,
    Position,
)
from clearsim.clearing.config import Config, atoms, fmt_atoms
from clearsim.clearing.margin import initial, liquidation_price, maintenance, notional, value
from clearsim.clearing.params import apply_set
from clearsim.events.codec import event_to_dict, unseal
from clearsim.events.log import LogReader, TornTail
from clearsim.events.types import Event
from clearsim.orderbook.grid import Grid

__all__ = [
    "AdlRow",
    "ClawbackPeriod",
    "FundFold",
    "FundReport",
    "FundRow",
    "Ledger",
    "Move",
    "cash_moves",
    "fold_fund",
    "fold_ledger",
    "state_view",
]

Record = dict[str, Any]


def _scale(config: dict[str, Any]) -> int:
    ex = config.get("exchange", {})
    return int(10 ** int(ex.get("collateral_decimals", 6)))


def _initial_fund(config: dict[str, Any]) -> int:
    ex = config.get("exchange", {})
    decimals = int(ex.get("collateral_decimals", 6))
    return atoms(config.get("insurance_fund", {}).get("initial", "0"), decimals, "initial")


# =========================================================================== cash

#: (account, signed atoms, reason)
Move = tuple[str, int, str]


def _pair(a: str, b: str, amount: int, why: str) -> list[Move]:
    """``amount`` from ``b`` to ``a`` (negative: the other way)."""
    return [(a, amount, why), (b, -amount, why)]


def cash_moves(d: Record) -> list[Move]:
    """The cash a raw event record moves, per account, with a reason.

    The one place the log's cash semantics are written down: every fold of balances (the
    ledger, the demo's story) goes through it. For every event type the moves sum to zero
    except deposits and withdrawals, where cash enters or leaves the exchange.
    """
    t = d["type"]
    if t == "settlement":
        val, bf, sf = d["value"], d["buyer_fee"], d["seller_fee"]
        moves: list[Move] = [(d["buyer"], -(val + bf), "trade"), (d["seller"], val - sf, "trade")]
        if bf or sf:
            moves.append((FEES, bf + sf, "fee"))
        return moves
    if t == "funding":
        return [(str(a), int(amt), "funding") for a, amt in d["payments"] if amt]
    if t == "liquidation_fill":
        to_fund = d["fee"] + d["surplus_to_fund"] - d["fund_paid"]
        why = "shortfall" if d["fund_paid"] else "liquidation fee"
        return _pair(INSURANCE, d["account"], to_fund, why) if to_fund else []
    if t == "deposit":
        return [(d["account"], d["amount"], "deposit")]
    if t == "withdrawal":
        return [(d["account"], -d["amount"], "withdrawal")]
    if t == "insurance_deposit":
        return [(INSURANCE, d["amount"], "deposit")]
    if t == "insurance_payment":
        return _pair(d["account"], INSURANCE, d["amount"], d["reason"])
    # Transfers outside the book: ``value`` is what the liquidated account paid for the
    # change of its position (negative: what it received), paid to the taker-over.
    if t == "takeover":
        return _pair(INSURANCE, d["account"], d["value"], "takeover")
    if t == "backstop_transfer":
        return _pair(d["backstop"], d["account"], d["value"], "backstop")
    if t == "deleveraged":
        return _pair(d["counterparty"], d["account"], d["value"], "adl")
    if t == "socialized_loss":
        return _pair(d["account"], CLAWBACK_POOL, d["amount"], "socialized")
    if t == "clawback":
        moves = [(str(a), -int(c), "clawback") for a, c in d["charges"]]
        if d["collected"]:
            moves.append((CLAWBACK_POOL, d["collected"], "clawback"))
        return moves
    if t == "system_debt":
        return _pair(d["account"], DEBT, d["amount"], "system debt")
    return []


# =========================================================================== ledger


class Ledger:
    """Accounts, positions and prices folded from events (see the module docstring).

    ``balances`` holds every account's cash in atoms, ``#insurance``, ``#fees``, ``#clawback``
    and ``#debt`` included; ``positions[account][symbol]`` only non-zero positions (a closed
    position is dropped, as the engine does). ``seq``/``ts`` are the last event folded and
    the highest ts seen.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.seq = 0
        self.ts = 0
        fund = _initial_fund(config)
        self.balances: dict[str, int] = {INSURANCE: fund, FEES: 0, CLAWBACK_POOL: 0, DEBT: 0}
        self.net_deposits: dict[str, int] = {INSURANCE: fund}
        self.positions: dict[str, dict[str, Position]] = {}
        self.marks: dict[str, int] = {}
        self.index: dict[str, int] = {}
        self.last_trade: dict[str, int] = {}
        self.params: list[tuple[str, str]] = []
        self._handlers: dict[str, Callable[[Record], None]] = {
            "deposit": self._deposit,
            "withdrawal": self._withdrawal,
            "insurance_deposit": self._insurance_deposit,
            "settlement": self._settlement,
            "backstop_transfer": self._backstop,
            "takeover": self._takeover,
            "deleveraged": self._deleveraged,
            "mark_price": self._mark,
            "index_price": self._index,
            "param_set": self._param_set,
        }

    # -- folding

    def apply(self, d: Record) -> None:
        """Fold one raw record dict."""
        self.seq = d["seq"]
        ts = d["ts"]
        if ts > self.ts:
            self.ts = ts
        b = self.balances
        for account, amount, _ in cash_moves(d):
            b[account] = b.get(account, 0) + amount
        h = self._handlers.get(d["type"])  # what else than cash the event changes
        if h is not None:
            h(d)

    def apply_event(self, ev: Event) -> None:
        self.apply(event_to_dict(ev))

    def fold(self, records: Iterable[Record]) -> Ledger:
        for d in records:
            self.apply(d)
        return self

    # -- primitives

    def _trade(self, account: str, symbol: str, dq: int, price: int) -> None:
        book = self.positions.setdefault(account, {})
        pos = book.get(symbol)
        if pos is None:
            pos = book[symbol] = Position()
        pos.trade(dq, price)
        if pos.qty == 0:
            del book[symbol]

    def _transfer(self, frm: str, to: str, symbol: str, dq: int, price: int) -> None:
        self._trade(frm, symbol, dq, price)
        self._trade(to, symbol, -dq, price)

    def qty(self, account: str, symbol: str) -> int:
        pos = self.positions.get(account, {}).get(symbol)
        return 0 if pos is None else pos.qty

    # -- handlers

    def _deposit(self, d: Record) -> None:
        nd = self.net_deposits
        nd[d["account"]] = nd.get(d["account"], 0) + d["amount"]

    def _withdrawal(self, d: Record) -> None:
        nd = self.net_deposits
        nd[d["account"]] = nd.get(d["account"], 0) - d["amount"]

    def _insurance_deposit(self, d: Record) -> None:
        self.net_deposits[INSURANCE] = self.net_deposits.get(INSURANCE, 0) + d["amount"]

    def _settlement(self, d: Record) -> None:
        sym, price, qty = d["symbol"], d["price"], d["qty"]
        self._trade(d["buyer"], sym, qty, price)
        self._trade(d["seller"], sym, -qty, price)
        self.last_trade[sym] = price

    def _backstop(self, d: Record) -> None:
        self._transfer(d["account"], d["backstop"], d["symbol"], -d["qty"], d["price"])

    def _takeover(self, d: Record) -> None:
        self._transfer(d["account"], INSURANCE, d["symbol"], -d["qty"], d["price"])

    def _deleveraged(self, d: Record) -> None:
        sign = 1 if self.qty(d["account"], d["symbol"]) > 0 else -1
        self._transfer(d["account"], d["counterparty"], d["symbol"], -sign * d["qty"], d["price"])

    def _mark(self, d: Record) -> None:
        self.marks[d["symbol"]] = d["price"]

    def _index(self, d: Record) -> None:
        self.index[d["symbol"]] = d["price"]

    def _param_set(self, d: Record) -> None:
        self.params.append((d["path"], d["new"]))

    # -- snapshots

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy of the folded state (what a snapshot stores)."""
        return {
            "seq": self.seq,
            "ts": self.ts,
            "balances": dict(self.balances),
            "net_deposits": dict(self.net_deposits),
            "positions": {
                a: {s: [p.qty, p.entry_e6] for s, p in book.items()}
                for a, book in self.positions.items()
                if book
            },
            "marks": dict(self.marks),
            "index": dict(self.index),
            "last_trade": dict(self.last_trade),
            "params": [list(p) for p in self.params],
        }

    @classmethod
    def from_dict(cls, config: dict[str, Any], d: dict[str, Any]) -> Ledger:
        led = cls(config)
        led.seq, led.ts = int(d["seq"]), int(d["ts"])
        led.balances = dict(d["balances"])
        led.net_deposits = dict(d["net_deposits"])
        for a, book in d["positions"].items():
            out = led.positions[a] = {}
            for s, (q, e) in book.items():
                p = out[s] = Position()
                p.qty, p.entry_e6 = int(q), int(e)
        led.marks = dict(d["marks"])
        led.index = dict(d["index"])
        led.last_trade = dict(d["last_trade"])
        led.params = [(str(p), str(v)) for p, v in d["params"]]
        return led

    # -- config in force

    def current_config(self) -> Config:
        """The header's config with every ``set`` folded so far applied."""
        cfg = Config.from_dict(self.config)
        for path, new in self.params:
            cfg = apply_set(cfg, path, new)[0]
        return cfg


def fold_ledger(
    path: str | os.PathLike[str], *, at: int | None = None, time: int | None = None
) -> tuple[Ledger, LogReader]:
    """The ledger after the whole log, or after the command holding seq ``at`` (a command is
    atomic, as for ``state --at``), or after every event with ``ts <= time``."""
    reader = LogReader(path)
    led = Ledger(reader.header.config)
    apply = led.apply
    for d in reader.records():
        if at is not None and d["type"] == "input" and d["seq"] > at:
            break
        if time is not None and d["ts"] > time:
            break
        apply(d)
    return led, reader


def _price_or(led: Ledger, sym: str) -> int | None:
    m = led.marks.get(sym)
    return m if m is not None else led.last_trade.get(sym)


def _fmt_entry(entry_e6: int, tick_size: str) -> str:
    return format((Decimal(entry_e6) * Decimal(tick_size) / ENTRY_SCALE).normalize(), "f")


def state_view(led: Ledger) -> dict[str, Any]:
    """The ``clearsim state --json`` shape (DESIGN §10) of a folded ledger, decimal strings.

    Equity, margins and liquidation prices use the config in force (header plus ``set``s)
    and ``clearing.margin``, positions valued at the mark (else the last trade), as the
    engine's ``Exchange.state`` does.
    """
    cfg = led.current_config()
    specs = {s.symbol: s for s in cfg.instruments}
    grids = {s.symbol: Grid(s.tick_size, s.lot_size) for s in cfg.instruments}
    sc = 10**cfg.collateral_decimals

    def risk(account: str) -> tuple[int, int, int]:
        e, mm, im = led.balances.get(account, 0), 0, 0
        for sym, pos in led.positions.get(account, {}).items():
            spec, m = specs[sym], _price_or(led, sym)
            if m is None:
                continue
            e += value(spec, pos.qty, m)
            n = notional(spec, pos.qty, m)
            mm += maintenance(spec, n)
            im += initial(spec, n)
        return e, mm, im

    accounts: dict[str, Any] = {}
    for aid in sorted(led.balances):
        if aid in SYSTEM:
            continue
        equity, mm, im = risk(aid)
        book = led.positions.get(aid, {})
        positions: dict[str, Any] = {}
        for sym in sorted(book):
            spec, pos, grid = specs[sym], book[sym], grids[sym]
            base_e, base_mm = led.balances.get(aid, 0), 0
            for osym, other in book.items():
                om = _price_or(led, osym)
                if osym == sym or om is None:
                    continue
                ospec = specs[osym]
                base_e += value(ospec, other.qty, om)
                base_mm += maintenance(ospec, notional(ospec, other.qty, om))
            lp = liquidation_price(spec, pos.qty, base_e, base_mm, _price_or(led, sym))
            positions[sym] = {
                "qty": grid.fmt_qty(pos.qty),
                "entry_price": _fmt_entry(pos.entry_e6, spec.tick_size),
                "liquidation_price": None if lp is None else grid.fmt_price(lp),
            }
        accounts[aid] = {
            "balance": fmt_atoms(led.balances.get(aid, 0), sc),
            "equity": fmt_atoms(equity, sc),
            "maintenance_margin": fmt_atoms(mm, sc),
            "initial_margin": fmt_atoms(im, sc),
            "liquidatable": equity < mm,
            "positions": positions,
        }

    def opt(v: int | None, grid: Grid) -> str | None:
        return None if v is None else grid.fmt_price(v)

    instruments = {
        sym: {
            "mark": opt(led.marks.get(sym), grid),
            "index": opt(led.index.get(sym), grid),
            "last_trade": opt(led.last_trade.get(sym), grid),
        }
        for sym, grid in sorted(grids.items())
    }
    return {
        "seq": led.seq,
        "ts": led.ts,
        "insurance_fund": fmt_atoms(risk(INSURANCE)[0], sc),
        "system_debt": fmt_atoms(-led.balances.get(DEBT, 0), sc),
        "socialized_pending": fmt_atoms(-led.balances.get(CLAWBACK_POOL, 0), sc),
        "fee_pool": fmt_atoms(led.balances.get(FEES, 0), sc),
        "instruments": instruments,
        "accounts": accounts,
    }


# =========================================================================== fund, clawback, ADL


@attrs.frozen
class FundRow:
    """One change of the insurance fund's cash: ``balance`` is the cash after it."""

    seq: int
    ts: int
    balance: int
    amount: int
    reason: str
    cause: int
    account: str  # the account on the other side ("" for a deposit)


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
    """What :func:`fold_fund` returns: the three ledgers and how the log ended."""

    initial: int
    balance: int
    timeline: list[FundRow]
    clawbacks: list[ClawbackPeriod]
    adl: list[AdlRow]
    last_seq: int
    torn: TornTail | None
    scale: int
    fund_positions: dict[str, int]


#: Byte patterns of the records :class:`FundFold` reads (canonical encoding: no spaces).
FUND_TOKENS: Final[tuple[bytes, ...]] = (
    b'"#insurance"',
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
    position worked in the book).
    """

    def __init__(self, initial: int) -> None:
        self.initial = initial
        self.balance = initial
        self.timeline: list[FundRow] = []
        self.periods: dict[int, ClawbackPeriod] = {}
        self.adl: list[AdlRow] = []
        self.positions: dict[str, int] = {}
        self.last_seq = 0

    def _row(self, d: Record, amount: int, reason: str, account: str) -> None:
        if amount == 0:
            return
        self.balance += amount
        self.timeline.append(
            FundRow(d["seq"], d["ts"], self.balance, amount, reason, d["cause"], account)
        )

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
            sym = d["symbol"]
            self.positions[sym] = self.positions.get(sym, 0) + d["qty"]
        elif t == "settlement":
            sym, qty = d["symbol"], d["qty"]
            if d["buyer"] == INSURANCE:
                self._row(d, -d["value"], "takeover trade (buy)", d["seller"])
                self._row(d, -d["buyer_fee"], "trading fee", FEES)
                self.positions[sym] = self.positions.get(sym, 0) + qty
            if d["seller"] == INSURANCE:
                self._row(d, d["value"], "takeover trade (sell)", d["buyer"])
                self._row(d, -d["seller_fee"], "trading fee", FEES)
                self.positions[sym] = self.positions.get(sym, 0) - qty
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
                sym = d["symbol"]
                q = self.positions.get(sym, 0)
                self.positions[sym] = q - (1 if q > 0 else -1) * d["qty"]
                # the fund's own taken-over position deleveraged (or used as counterparty)
                fund_pays = d["value"] if d["account"] == INSURANCE else -d["value"]
                self._row(d, -fund_pays, "deleveraged", d["counterparty"])

    def report(self, scale: int, torn: TornTail | None) -> FundReport:
        return FundReport(
            initial=self.initial,
            balance=self.balance,
            timeline=self.timeline,
            clawbacks=[self.periods[k] for k in sorted(self.periods)],
            adl=self.adl,
            last_seq=self.last_seq,
            torn=torn,
            scale=scale,
            fund_positions={s: q for s, q in self.positions.items() if q},
        )


# -- the fast path over a file


class _Anomaly(Exception):
    """Something the fast path does not judge itself: let LogReader read the log."""


_CHUNK: Final = 8 << 20


def _open(path: str) -> IO[bytes]:
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _blocks(fh: IO[bytes]) -> Iterator[bytes]:
    """Blocks of whole lines (each ending with a newline); a last line without one is
    raised as an anomaly (a torn tail is for LogReader to report)."""
    rest = b""
    while True:
        chunk = fh.read(_CHUNK)
        if not chunk:
            if rest:
                raise _Anomaly("incomplete last line")
            return
        buf = rest + chunk if rest else chunk
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            rest = buf
            continue
        rest = buf[cut:]
        yield buf[:cut] if rest else buf


def _selected(block: bytes, tokens: tuple[bytes, ...]) -> list[bytes]:
    """The lines of ``block`` holding any of ``tokens``, in order, without newlines."""
    starts: set[int] = set()
    find, rfind = block.find, block.rfind
    for tok in tokens:
        i = find(tok)
        while i >= 0:
            s = rfind(b"\n", 0, i) + 1
            starts.add(s)
            e = find(b"\n", i)
            i = find(tok, e)
    out = []
    for s in sorted(starts):
        out.append(block[s : find(b"\n", s)])
    return out


def _fast_records(
    path: str, tokens: tuple[bytes, ...], verify: bool, end: list[int]
) -> Iterator[Record]:
    """Parsed records of the lines holding ``tokens``, after the header; raises _Anomaly.
    ``end[0]`` is set to the seq of the log's last record."""
    loads = orjson.loads
    with _open(path) as fh:
        first = True
        prev = b""
        last_seq = 0
        for block in _blocks(fh):
            if first:
                first = False
                cut = block.find(b"\n") + 1
                header_line = block[:cut]
                h = unseal(b"", header_line)
                if h is None:
                    raise _Anomaly("header")
                prev = h
                block = block[cut:]
            if verify:
                lines = block.split(b"\n")
                lines.pop()
                for line in lines:
                    h = unseal(prev, line + b"\n")
                    if h is None:
                        raise _Anomaly("checksum")
                    prev = h
            for line in _selected(block, tokens):
                try:
                    d = loads(line)
                except orjson.JSONDecodeError:
                    raise _Anomaly("json") from None
                if type(d) is not dict:
                    raise _Anomaly("record")
                seq = d.get("seq")
                if type(seq) is not int or seq <= last_seq:
                    raise _Anomaly("seq")
                last_seq = seq
                yield d
            if block:
                tail = block[block.rfind(b"\n", 0, len(block) - 1) + 1 :]
                try:
                    seq = loads(tail).get("seq")
                except (orjson.JSONDecodeError, AttributeError):
                    raise _Anomaly("json") from None
                if type(seq) is not int or seq < last_seq:
                    raise _Anomaly("seq")
                end[0] = seq


def fold_fund(path: str | os.PathLike[str], *, verify: bool = True) -> FundReport:
    """The fund timeline, clawback ledger and ADL ledger of a log (the fast path).

    ``verify`` checks every record's checksum chain on the way (hashing each line, parsing
    only the relevant ones). A torn tail or a corrupt record makes it re-read the log with
    :class:`LogReader`, which keeps everything before a torn tail (reported in ``torn``) and
    raises :class:`events.codec.CorruptLog` for anything else.
    """
    p = os.fspath(path)
    reader = LogReader(p)  # checks the header
    config = reader.header.config
    fold = FundFold(_initial_fund(config))
    end = [0]
    try:
        apply = fold.apply
        for d in _fast_records(p, FUND_TOKENS, verify, end):
            apply(d)
        fold.last_seq = end[0]
        return fold.report(_scale(config), None)
    except _Anomaly:
        pass
    fold = FundFold(_initial_fund(config))
    fold.fold(reader.records())  # every record: the fold ignores the irrelevant ones
    fold.last_seq = reader.last_seq
    return fold.report(_scale(config), reader.torn)
