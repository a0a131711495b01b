"""``clearsim cascade``: the tree of events caused, through ``cause`` links, by one event.

Every event but an input names the event that caused it (``cause``, always an earlier seq);
inputs have cause 0 and are the roots. Two streaming passes over the log:

1. seq -> cause and type, the children index (seq -> child seqs), and each event's root
   (``root[seq] = root[cause]``, one lookup since causes precede) with a count of the
   ``LiquidationTriggered`` events under each root, which ranks cascades;
2. the record dicts of the events in the chosen trees only, for printing and totals, and
   the insurance fund's equity (:class:`.fund.FundBook`) just before each tree's first
   event and after its last.

So memory is a few ints per event plus the chosen trees, and time is two parses of the log.
A tree's "fund paid" and "took in" are :func:`.fund.fund_flows`, the definition the story
uses too; its fund equity before and after are the story's figures for the same cascade.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import attrs

from clearsim.clearing import Config, Exchange
from clearsim.clearing.config import fmt_atoms
from clearsim.events.errors import ClearsimError
from clearsim.events.log import LogReader, TornTail
from clearsim.replay.projections.fund import FundBook, fund_flows

__all__ = [
    "Cascade",
    "CascadeError",
    "Fmt",
    "Index",
    "build_index",
    "cascades",
    "subtree",
]

_PRICE = ("price", "bankruptcy_price", "mark", "reference")
_MONEY = (
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
)
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
    *_MONEY,
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


def build_index(reader: LogReader) -> Index:
    cause = [0]
    types = [""]
    root = [0]
    children: dict[int, list[int]] = {}
    triggered: dict[int, int] = {}
    intern: dict[str, str] = {}
    for d in reader.records():
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
class Cascade:
    top: int
    seqs: list[int]
    records: dict[int, dict[str, Any]]
    totals: dict[str, Any]


class Fmt:
    """Decimal strings for ticks, lots and atoms, from the log's config."""

    def __init__(self, config: dict[str, Any]) -> None:
        ex = Exchange(Config.from_dict(config))
        self.scale = ex.scale
        self.grids = {s: i.grid for s, i in ex.instruments.items()}

    def money(self, v: int) -> str:
        return fmt_atoms(v, self.scale)

    def qty(self, sym: object, v: int) -> str:
        g = self.grids.get(sym) if isinstance(sym, str) else None
        return str(v) if g is None else g.fmt_qty(v)

    def price(self, sym: object, v: int) -> str:
        g = self.grids.get(sym) if isinstance(sym, str) else None
        return str(v) if g is None else g.fmt_price(v)

    def fields(self, d: dict[str, Any]) -> dict[str, Any]:
        """An event's key fields, amounts as decimal strings."""
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
            v = d[k]
            if type(v) is int:
                if k in _MONEY:
                    v = self.money(v)
                elif k in _PRICE:
                    v = self.price(sym, v)
                elif k == "qty":
                    v = self.qty(sym, v)
            out[k] = v
        return out


def _totals(
    fmt: Fmt, recs: Iterable[dict[str, Any]], fund_equity: tuple[int, int]
) -> dict[str, Any]:
    liquidated: set[str] = set()
    closed: dict[str, dict[str, int]] = {"book": {}, "backstop": {}, "takeover": {}, "adl": {}}
    paid = took_in = clawed = debt = n = triggers = 0
    step_of = {
        "liquidation_fill": "book",
        "backstop_transfer": "backstop",
        "takeover": "takeover",
        "deleveraged": "adl",
    }
    for d in recs:
        n += 1
        t = d["type"]
        if t == "liquidation_triggered":
            triggers += 1
            liquidated.add(d["account"])
        step = step_of.get(t)
        if step is not None:
            per = closed[step]
            per[d["symbol"]] = per.get(d["symbol"], 0) + abs(d["qty"])
        p, i = fund_flows(d)
        paid += p
        took_in += i
        if t == "clawback":
            clawed += d["collected"]
        elif t == "system_debt":
            debt += d["amount"]
    return {
        "events": n,
        "liquidations": triggers,
        "accounts_liquidated": len(liquidated),
        "closed": {
            step: {sym: fmt.qty(sym, q) for sym, q in sorted(per.items())}
            for step, per in closed.items()
        },
        "fund_paid": fmt.money(paid),
        "fund_took_in": fmt.money(took_in),
        "fund_equity_before": fmt.money(fund_equity[0]),
        "fund_equity_after": fmt.money(fund_equity[1]),
        "clawed_back": fmt.money(clawed),
        "system_debt": fmt.money(debt),
    }


def cascades(
    path: str | os.PathLike[str], start: int | None = None, top: int = 5
) -> tuple[list[Cascade], Index, Fmt]:
    """The cascade under ``start``, or the ``top`` largest (by liquidations under an input)."""
    reader = LogReader(path)
    idx = build_index(reader)
    last = len(idx.cause) - 1
    if start is not None:
        if not 1 <= start <= last:
            raise CascadeError(f"--from {start}: no such seq in the log (1..{last})")
        tops = [start]
    else:
        ranked = sorted(idx.triggered.items(), key=lambda kv: (-kv[1], kv[0]))
        tops = [r for r, _ in ranked[:top]]
    trees = {t: subtree(idx, t) for t in tops}
    wanted: set[int] = set()
    for s in trees.values():
        wanted.update(s)
    recs: dict[int, dict[str, Any]] = {}
    # The fund's equity before each tree's first event and after its last (the fold runs
    # over every record up to the last one wanted: the fund's equity depends on them all).
    firsts = {seqs[0] for seqs in trees.values()}
    lasts = {seqs[-1] for seqs in trees.values()}
    equity_at: dict[tuple[int, bool], int] = {}
    book = FundBook(reader.header.config)
    if wanted:
        hi = max(wanted)
        for d in reader.records():
            seq = d["seq"]
            if seq in firsts:
                equity_at[seq, False] = book.equity()
            book.feed(d)
            if seq in lasts:
                equity_at[seq, True] = book.equity()
            if seq in wanted:
                recs[seq] = d
            if seq >= hi:
                break
    fmt = Fmt(reader.header.config)
    out = [
        Cascade(
            t,
            seqs,
            recs,
            _totals(
                fmt,
                (recs[s] for s in seqs),
                (equity_at.get((seqs[0], False), 0), equity_at.get((seqs[-1], True), 0)),
            ),
        )
        for t, seqs in trees.items()
    ]
    return out, idx, fmt
