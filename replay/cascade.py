"""``clearsim cascade``: the tree of events caused, through ``cause`` links, by one event.

Every event but an input names the event that caused it (``cause``, always an earlier seq);
inputs have cause 0 and are the roots. Two streaming passes over the log:

1. seq -> cause and type, the children index (seq -> child seqs), and each event's root
   (``root[seq] = root[cause]``, one lookup since causes precede) with a count of the
   ``LiquidationTriggered`` events under each root, which ranks cascades;
2. the record dicts of the events in the chosen trees only, for printing and totals.

So memory is a few ints per event plus the chosen trees, and time is two parses of the log.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from typing import Any

import attrs
import orjson

from clearsim.clearing import Config, Exchange
from clearsim.clearing.config import fmt_atoms
from clearsim.events.errors import ClearsimError
from clearsim.events.log import LogReader, TornTail

__all__ = [
    "Cascade",
    "CascadeError",
    "Index",
    "build_index",
    "cascades",
    "render_json",
    "render_text",
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


def _subtree(idx: Index, top: int) -> list[int]:
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


class _Fmt:
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


def _totals(fmt: _Fmt, recs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    liquidated: set[str] = set()
    closed: dict[str, dict[str, int]] = {"book": {}, "backstop": {}, "takeover": {}, "adl": {}}
    fund = clawed = debt = n = triggers = 0
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
        if t == "liquidation_fill":
            fund += d["fund_paid"]
        elif t == "insurance_payment":
            fund += d["amount"]
        elif t == "clawback":
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
        "fund_paid": fmt.money(fund),
        "clawed_back": fmt.money(clawed),
        "system_debt": fmt.money(debt),
    }


def cascades(
    path: str | os.PathLike[str], start: int | None = None, top: int = 5
) -> tuple[list[Cascade], Index, _Fmt]:
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
    trees = {t: _subtree(idx, t) for t in tops}
    wanted: set[int] = set()
    for s in trees.values():
        wanted.update(s)
    recs: dict[int, dict[str, Any]] = {}
    if wanted:
        hi = max(wanted)
        for d in reader.records():
            seq = d["seq"]
            if seq in wanted:
                recs[seq] = d
            if seq >= hi:
                break
    fmt = _Fmt(reader.header.config)
    out = [
        Cascade(t, seqs, recs, _totals(fmt, (recs[s] for s in seqs))) for t, seqs in trees.items()
    ]
    return out, idx, fmt


def _totals_text(tot: dict[str, Any]) -> list[str]:
    closed = []
    for step, per in tot["closed"].items():
        if per:
            closed.append(f"{step} " + ", ".join(f"{q} {sym}" for sym, q in per.items()))
    return [
        f"  events {tot['events']}; liquidations {tot['liquidations']} "
        f"({tot['accounts_liquidated']} accounts)",
        "  closed: " + ("; ".join(closed) if closed else "nothing"),
        f"  fund paid {tot['fund_paid']}; clawed back {tot['clawed_back']}; "
        f"system debt {tot['system_debt']}",
    ]


def _line(fmt: _Fmt, d: dict[str, Any]) -> str:
    f = fmt.fields(d)
    return f"#{d['seq']} {d['type']} " + " ".join(f"{k}={v}" for k, v in f.items())


def render_text(
    cs: list[Cascade], idx: Index, fmt: _Fmt, *, depth: int = 12, width: int = 10
) -> list[str]:
    out: list[str] = []
    if not cs:
        out.append("no cascades: the log has no liquidations")
    for c in cs:
        root = idx.root[c.top]
        head = f"cascade from seq {c.top} ({idx.types[c.top]})"
        if root != c.top:
            head += f", under input seq {root}"
        out.append(head)
        out.extend(_totals_text(c.totals))
        out.extend(_walk(c, idx, fmt, depth, width))
        out.append("")
    if idx.torn is not None:
        out.append(f"note: {idx.torn}")
    return out


def _walk(c: Cascade, idx: Index, fmt: _Fmt, depth: int, width: int) -> list[str]:
    out: list[str] = []
    # Stack items: an event (seq, level), or a ready-made text line (str).
    stack: list[tuple[int, int] | str] = [(c.top, 1)]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        seq, level = item
        pad = "  " * level
        out.append(pad + _line(fmt, c.records[seq]))
        kids = idx.children.get(seq)
        if not kids:
            continue
        if level >= depth:
            below = _subtree(idx, seq)
            liq = sum(1 for s in below if idx.types[s] == "liquidation_triggered")
            out.append(f"{pad}  ... {len(below) - 1} more below ({liq} liquidations)")
            continue
        hidden = kids[width:]
        if hidden:
            below = [s for k in hidden for s in _subtree(idx, k)]
            liq = sum(1 for s in below if idx.types[s] == "liquidation_triggered")
            stack.append(
                f"{pad}  ... {len(hidden)} more children ({len(below)} events, {liq} liquidations)"
            )
        for k in reversed(kids[:width]):
            stack.append((k, level + 1))
    return out


def render_json(cs: list[Cascade], idx: Index) -> dict[str, Any]:
    """A flat JSON shape: each cascade's totals and its events (record fields, in seq order)."""
    return {
        "cascades": [
            {
                "from": c.top,
                "root": idx.root[c.top],
                "totals": c.totals,
                "events": [{k: v for k, v in c.records[s].items() if k != "h"} for s in c.seqs],
            }
            for c in cs
        ],
        "torn": None if idx.torn is None else str(idx.torn),
    }


# --------------------------------------------------------------------------- CLI


def add_parser(sub: Any) -> None:
    """The ``cascade`` subcommand (``sub`` is argparse's subparsers action)."""
    c = sub.add_parser(
        "cascade", help="the tree of events caused by a seq, or the largest cascades, with totals"
    )
    c.add_argument("log")
    c.add_argument("--from", dest="start", type=int, metavar="SEQ", help="the event to start at")
    c.add_argument("--top", type=int, default=5, metavar="N", help="without --from: N largest")
    c.add_argument("--json", action="store_true", help="machine-readable output (every event)")
    c.add_argument("--depth", type=int, default=12, help="text: collapse below this depth")
    c.add_argument("--width", type=int, default=10, help="text: children shown per event")


def cmd(a: argparse.Namespace) -> int:
    for name in ("top", "depth", "width"):
        if getattr(a, name) < 1:
            raise CascadeError(f"--{name}: expected an integer >= 1")
    cs, idx, fmt = cascades(a.log, a.start, a.top)
    if a.json:
        sys.stdout.write(orjson.dumps(render_json(cs, idx), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        if idx.torn is not None:
            print(f"warning: {idx.torn}", file=sys.stderr)
        sys.stdout.write("\n".join(render_text(cs, idx, fmt, depth=a.depth, width=a.width)))
        sys.stdout.write("\n")
    return 0
