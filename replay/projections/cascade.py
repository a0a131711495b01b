"""``clearsim cascade``: the tree of events caused, through ``cause`` links, by one event.

Every event but an input names the event that caused it (``cause``, always an earlier seq);
inputs have cause 0 and are the roots. Two streaming passes over the log:

1. seq -> cause and type, the children index (seq -> child seqs), and each event's root
   (``root[seq] = root[cause]``, one lookup since causes precede) with a count of the
   ``LiquidationTriggered`` events under each root, which ranks cascades;
2. the record dicts of the events in the chosen trees only, for printing and totals, and
   the insurance fund's equity (:class:`.fund.FundBook`) just before each tree's first
   event and after its last.

So memory is a few ints per event plus the chosen trees, and time is two parses of the log
(the second only up to the chosen trees' last event; ``time=`` adds a fast scan of the
inputs between them). ``progress(records read, bytes read)`` of :func:`cascades` counts
over the two parses, summed (so the bytes go up to twice the log's size), every few
thousand records (:data:`events.log.PROGRESS_EVERY`).
A tree's "fund paid" and "took in" are :func:`.fund.fund_flows`, the definition the story
uses too; its fund equity before and after are the story's figures for the same cascade.

Besides the totals, each tree's :class:`CascadeFigures` has its times, the index and mark
of each symbol just before its first event and after its last (the price move), the first
and last price its liquidation orders filled at (their price impact), and its liquidations
by *generation*: a liquidation whose cause chain reaches no earlier liquidation was caused
by the price (generation 1); one reached from a liquidation of generation g is of
generation g + 1 (its orders moved the mark that liquidated the next account).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable
from typing import Any, Final

import attrs

from clearsim.clearing import Config, Exchange
from clearsim.clearing.config import fmt_atoms
from clearsim.events.errors import ClearsimError
from clearsim.events.log import LogReader, Progress, TornTail
from clearsim.replay.projections.fields import KINDS
from clearsim.replay.projections.fund import FundBook, fund_flows

__all__ = [
    "Cascade",
    "CascadeError",
    "CascadeFigures",
    "FillRange",
    "Fmt",
    "Index",
    "PriceMove",
    "build_index",
    "cascades",
    "generations",
    "subtree",
    "utc_iso",
]

_KEYS = (
    "account",
    "counterparty",
    "backstop",
    "maker_account",
    "taker_account",
    "buyer",
    "seller",
    "symbol",
    "step",
    "side",
    "taker_side",
    "qty",
    "price",
    "bankruptcy_price",
    "amount",
    "value",
    "delta",
    "fee",
    "fund_paid",
    "socialized",
    "equity",
    "maintenance",
    "remaining",
    "loss",
    "collected",
    "rank",
    "reason",
    "path",
    "new",
)
_CMD_KEYS = ("account", "id", "symbol", "side", "qty", "price", "amount", "path", "value")


class CascadeError(ClearsimError):
    """A bad --from seq (not in the log); ``str()`` is one line."""


@attrs.define
class Index:
    """Pass 1 over a log: cause, type, children and root of every event."""

    cause: list[int]  # index seq (0 = header slot)
    types: list[str]
    children: dict[int, list[int]]
    root: list[int]
    triggered: dict[int, int]  # root seq -> LiquidationTriggered events under it
    torn: TornTail | None


def build_index(reader: LogReader, *, progress: Progress | None = None) -> Index:
    """Pass 1 (the module docstring); ``progress(records read, bytes read)`` is called every
    :data:`events.log.PROGRESS_EVERY` records and at the end."""
    cause = [0]
    types = [""]
    root = [0]
    children: dict[int, list[int]] = {}
    triggered: dict[int, int] = {}
    intern: dict[str, str] = {}
    for d in reader.records(progress=progress):
        seq, c, t = d["seq"], d["cause"], d["type"]
        t = intern.setdefault(t, t)
        cause.append(c)
        types.append(t)
        if c and 0 < c < seq:
            r = root[c]
            kids = children.get(c)
            if kids is None:
                children[c] = [seq]
            else:
                kids.append(seq)
        else:
            r = seq
        root.append(r)
        if t == "liquidation_triggered":
            triggered[r] = triggered.get(r, 0) + 1
    return Index(cause, types, children, root, triggered, reader.torn)


def subtree(idx: Index, top: int) -> list[int]:
    """Seqs of ``top`` and all its descendants (increasing)."""
    out = [top]
    stack = [top]
    children = idx.children
    while stack:
        kids = children.get(stack.pop())
        if kids:
            out.extend(kids)
            stack.extend(kids)
    out.sort()
    return out


@attrs.define
class PriceMove:
    """A symbol's index and mark (ticks; None: none yet) before a cascade and after it."""

    index_before: int | None = None
    index_after: int | None = None
    mark_before: int | None = None
    mark_after: int | None = None


@attrs.define
class FillRange:
    """The prices (ticks) a cascade's liquidation orders filled at: first, last, how many."""

    first: int
    last: int
    count: int = 1


@attrs.define
class CascadeFigures:
    """A cascade's totals in the log's integers (atoms, lots, ticks, µs); the text and
    JSON views format them (:meth:`Fmt.totals`)."""

    events: int = 0
    liquidations: int = 0
    accounts_liquidated: int = 0
    #: liquidations per generation (1: caused by the price; g + 1: by one of generation g)
    by_generation: dict[int, int] = attrs.Factory(dict)
    #: lots closed per waterfall step, per symbol
    closed: dict[str, dict[str, int]] = attrs.Factory(
        lambda: {"book": {}, "backstop": {}, "takeover": {}, "adl": {}}
    )
    fund_paid: int = 0
    fund_took_in: int = 0
    fund_equity_before: int = 0
    fund_equity_after: int = 0
    clawed_back: int = 0
    system_debt: int = 0
    first_ts: int = 0
    last_ts: int = 0
    prices: dict[str, PriceMove] = attrs.Factory(dict)
    liquidation_fills: dict[str, FillRange] = attrs.Factory(dict)

    @property
    def by_price(self) -> int:
        return self.by_generation.get(1, 0)

    @property
    def by_liquidation(self) -> int:
        return self.liquidations - self.by_price

    @property
    def generations(self) -> int:
        return max(self.by_generation, default=0)


@attrs.define
class Cascade:
    top: int
    seqs: list[int]
    records: dict[int, dict[str, Any]]
    totals: dict[str, Any]  # the JSON shape: decimal strings (Fmt.totals of figures)
    figures: CascadeFigures = attrs.Factory(CascadeFigures)


class Fmt:
    """Decimal strings for ticks, lots and atoms, from the log's config; with units
    (:meth:`money_u`, :meth:`qty_u`) for text."""

    def __init__(self, config: dict[str, Any]) -> None:
        ex = Exchange(Config.from_dict(config))
        self.scale = ex.scale
        self.collateral = ex.config.collateral
        self.grids = {s: i.grid for s, i in ex.instruments.items()}

    def money(self, v: int) -> str:
        return fmt_atoms(v, self.scale)

    def money_u(self, v: int) -> str:
        return f"{self.money(v)} {self.collateral}"

    def qty(self, sym: object, v: int) -> str:
        g = self.grids.get(sym) if isinstance(sym, str) else None
        return str(v) if g is None else g.fmt_qty(v)

    def qty_u(self, sym: object, v: int) -> str:
        return f"{self.qty(sym, v)} {sym}" if isinstance(sym, str) else self.qty(sym, v)

    def price(self, sym: object, v: int) -> str:
        g = self.grids.get(sym) if isinstance(sym, str) else None
        return str(v) if g is None else g.fmt_price(v)

    def fields(self, d: dict[str, Any], units: bool = False) -> dict[str, Any]:
        """An event's key fields, amounts as decimal strings (with their units: money in
        the collateral, quantities in the symbol's contracts, when ``units``)."""
        if d["type"] == "input":
            cmd = d["command"]
            out: dict[str, Any] = {"command": cmd.get("type", "?") if cmd else "?"}
            out.update((k, cmd[k]) for k in _CMD_KEYS if k in cmd)
            return out
        sym = d.get("symbol")
        out = {}
        for k in _KEYS:
            if k not in d:
                continue
            out[k] = self.value(k, d[k], sym, units)
        return out

    def value(self, key: str, v: object, sym: object, units: bool = False) -> object:
        """One field's value as a decimal string if it is an amount (:data:`KINDS`)."""
        if type(v) is not int:
            return v
        kind = KINDS.get(key)
        if kind == "money":
            return self.money_u(v) if units else self.money(v)
        if kind == "price":
            return self.price(sym, v)
        if kind == "qty":
            return self.qty_u(sym, v) if units else self.qty(sym, v)
        return v

    def record(self, d: dict[str, Any]) -> dict[str, Any]:
        """A whole record (its ``h`` left out), amounts as decimal strings: the JSON view."""
        sym = d.get("symbol")
        out: dict[str, Any] = {}
        for k, v in d.items():
            if k == "h":
                continue
            if k in ("payments", "charges") and isinstance(v, list):
                v = [[a, self.money(x)] if type(x) is int else [a, x] for a, x in v]
            elif k != "ts" and KINDS.get(k) != "time":
                v = self.value(k, v, sym)
            out[k] = v
        return out

    def totals(self, f: CascadeFigures) -> dict[str, Any]:
        """The JSON shape of a cascade's figures: amounts as decimal strings (money in
        ``collateral``, quantities in contracts of their symbol), times ISO-8601 UTC."""
        return {
            "events": f.events,
            "liquidations": f.liquidations,
            "accounts_liquidated": f.accounts_liquidated,
            "by_price": f.by_price,
            "by_liquidation": f.by_liquidation,
            "by_generation": {str(g): n for g, n in sorted(f.by_generation.items())},
            "closed": {
                step: {sym: self.qty(sym, q) for sym, q in sorted(per.items())}
                for step, per in f.closed.items()
            },
            "fund_paid": self.money(f.fund_paid),
            "fund_took_in": self.money(f.fund_took_in),
            "fund_equity_before": self.money(f.fund_equity_before),
            "fund_equity_after": self.money(f.fund_equity_after),
            "clawed_back": self.money(f.clawed_back),
            "system_debt": self.money(f.system_debt),
            "collateral": self.collateral,
            "time": utc_iso(f.first_ts),
            "end_time": utc_iso(f.last_ts),
            "prices": {
                sym: {
                    k: None if v is None else self.price(sym, v)
                    for k, v in attrs.asdict(m).items()
                }
                for sym, m in sorted(f.prices.items())
            },
            "liquidation_fills": {
                sym: {
                    "first": self.price(sym, r.first),
                    "last": self.price(sym, r.last),
                    "count": r.count,
                }
                for sym, r in sorted(f.liquidation_fills.items())
            },
        }


def utc_iso(ts: int) -> str:
    """µs since the epoch as ISO-8601 UTC (``2023-11-14T22:13:20.000046Z``): exact, µs kept."""
    dt = _EPOCH + _dt.timedelta(microseconds=ts)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)

_STEP_OF: Final = {
    "liquidation_fill": "book",
    "backstop_transfer": "backstop",
    "takeover": "takeover",
    "deleveraged": "adl",
}


def generations(idx: Index, seqs: Iterable[int]) -> dict[int, int]:
    """The generation of every ``liquidation_triggered`` among ``seqs`` (see the module
    docstring), by seq. A trigger's parent is the nearest trigger on its cause chain (none:
    the price caused it); chains are walked without recursion and each trigger once."""
    cause, types = idx.cause, idx.types
    memo: dict[int, int] = {}

    def parent(seq: int) -> int:
        s = cause[seq]
        while 0 < s < seq:
            if types[s] == "liquidation_triggered":
                return s
            seq, s = s, cause[s]
        return 0

    out: dict[int, int] = {}
    for seq in seqs:
        if types[seq] != "liquidation_triggered":
            continue
        chain = []
        s, g = seq, 0
        while s and s not in memo:
            chain.append(s)
            s = parent(s)
        if s:
            g = memo[s]
        for x in reversed(chain):
            g += 1
            memo[x] = g
        out[seq] = memo[seq]
    return out


def _figures(
    idx: Index, recs: list[dict[str, Any]], fund_equity: tuple[int, int],
    prices: dict[str, PriceMove],
) -> CascadeFigures:  # fmt: skip
    f = CascadeFigures(fund_equity_before=fund_equity[0], fund_equity_after=fund_equity[1])
    f.prices = prices
    liquidated: set[str] = set()
    for d in recs:
        f.events += 1
        t = d["type"]
        if t == "liquidation_triggered":
            f.liquidations += 1
            liquidated.add(d["account"])
        step = _STEP_OF.get(t)
        if step is not None:
            per = f.closed[step]
            per[d["symbol"]] = per.get(d["symbol"], 0) + abs(d["qty"])
        if t == "liquidation_fill":
            r = f.liquidation_fills.get(d["symbol"])
            if r is None:
                f.liquidation_fills[d["symbol"]] = FillRange(d["price"], d["price"])
            else:
                r.last = d["price"]
                r.count += 1
        paid, took_in = fund_flows(d)  # the one definition of "fund paid" (the story's too)
        f.fund_paid += paid
        f.fund_took_in += took_in
        if t == "clawback":
            f.clawed_back += d["collected"]
        elif t == "system_debt":
            f.system_debt += d["amount"]
    f.accounts_liquidated = len(liquidated)
    if recs:
        f.first_ts, f.last_ts = recs[0]["ts"], recs[-1]["ts"]
    for g in generations(idx, (d["seq"] for d in recs)).values():
        f.by_generation[g] = f.by_generation.get(g, 0) + 1
    return f


class _Passes:
    """Progress over several reads of one log: records and bytes read so far, in all."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.base = (0, 0)  # what the finished passes read
        self.seq = self.offset = 0  # how far the current one has got

    def __call__(self, seq: int, offset: int) -> None:
        self.seq, self.offset = seq, offset
        self.progress(self.base[0] + seq, self.base[1] + offset)

    def next(self) -> None:
        self.base = (self.base[0] + self.seq, self.base[1] + self.offset)
        self.seq = self.offset = 0


def cascades(
    path: str | os.PathLike[str],
    start: int | None = None,
    top: int = 5,
    *,
    time: int | None = None,
    progress: Progress | None = None,
) -> tuple[list[Cascade], Index, Fmt]:
    """The cascade under ``start``; or the first cascade (an input that liquidated anyone)
    at or after ``time`` (µs); or the ``top`` largest (by liquidations under an input).
    ``progress(records read, bytes read)``, over both parses (module docstring)."""
    reader = LogReader(path)
    passes = None if progress is None else _Passes(progress)
    idx = build_index(reader, progress=passes)
    if passes is not None:
        passes.next()
    last = len(idx.cause) - 1
    if start is not None:
        if not 1 <= start <= last:
            raise CascadeError(f"--from {start}: no such seq in the log (1..{last})")
        tops = [start]
    elif time is not None:
        tops = [_first_at(reader, idx, time)]  # fast, and not counted: at most 2x the bytes
    else:
        ranked = sorted(idx.triggered.items(), key=lambda kv: (-kv[1], kv[0]))
        tops = [r for r, _ in ranked[:top]]
    trees = {t: subtree(idx, t) for t in tops}
    wanted: set[int] = set()
    for s in trees.values():
        wanted.update(s)
    recs: dict[int, dict[str, Any]] = {}
    # The fund's equity, and the index and mark of every symbol, before each tree's first
    # event and after its last (the fold runs over every record up to the last one wanted:
    # the fund's equity depends on them all).
    firsts = {seqs[0] for seqs in trees.values()}
    lasts = {seqs[-1] for seqs in trees.values()}
    equity_at: dict[tuple[int, bool], int] = {}
    prices_at: dict[tuple[int, bool], dict[str, tuple[int | None, int | None]]] = {}
    index: dict[str, int] = {}
    mark: dict[str, int] = {}
    book = FundBook(reader.header.config)

    def snapshot() -> dict[str, tuple[int | None, int | None]]:
        return {s: (index.get(s), mark.get(s)) for s in {*index, *mark}}

    if wanted:
        hi = max(wanted)
        for d in reader.records(progress=passes):
            seq = d["seq"]
            if seq in firsts:
                equity_at[seq, False] = book.equity()
                prices_at[seq, False] = snapshot()
            book.feed(d)
            t = d["type"]
            if t == "index_price":
                index[d["symbol"]] = d["price"]
            elif t == "mark_price":
                mark[d["symbol"]] = d["price"]
            if seq in lasts:
                equity_at[seq, True] = book.equity()
                prices_at[seq, True] = snapshot()
            if seq in wanted:
                recs[seq] = d
            if seq >= hi:
                break
    fmt = Fmt(reader.header.config)
    out = []
    for t, seqs in trees.items():
        before = prices_at.get((seqs[0], False), {})
        after = prices_at.get((seqs[-1], True), {})
        moves = {}
        for sym, (index_after, mark_after) in sorted(after.items()):
            index_before, mark_before = before.get(sym, (None, None))
            moves[sym] = PriceMove(index_before, index_after, mark_before, mark_after)
        f = _figures(
            idx,
            [recs[s] for s in seqs],
            (equity_at.get((seqs[0], False), 0), equity_at.get((seqs[-1], True), 0)),
            moves,
        )
        out.append(Cascade(t, seqs, recs, fmt.totals(f), f))
    return out, idx, fmt


def _first_at(reader: LogReader, idx: Index, time: int) -> int:
    """The first root that liquidated anyone, at or after ``time``: its seq."""
    roots = sorted(idx.triggered)
    if roots:
        # A root's ts is its input's: read the roots' records only (one pass, few parsed).
        wanted = set(roots)
        for d in reader.select((b'"type":"input"',)):
            if d["seq"] in wanted and d["ts"] >= time:
                return int(d["seq"])
    raise CascadeError(f"--time {time}: no cascade at or after it")
