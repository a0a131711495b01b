"""``clearsim diff A B``: where two logs first differ, and how their outcomes differ.

Records are compared by their canonical bodies, the chain checksum ``"h"`` cut off: ``h``
folds in every earlier record (the header too), so after the first difference every later
``h`` differs as well, and two logs of identical events under headers that differ only in the
engine version would differ on every line. The body is what the record says; comparing it
names the first record whose content differs. Headers are compared separately.

The outcome of each log is its re-execution's final state (insurance fund, system debt,
balances, positions), plus the clawback totals folded from its events.

``progress(events, bytes)`` of :func:`diff` is told the two logs' records and bytes read,
summed, every :data:`events.log.PROGRESS_EVERY` records of either (from their readers).
"""

from __future__ import annotations

import os
from itertools import zip_longest
from typing import Any

import attrs
import orjson

from clearsim.clearing import Config, Exchange
from clearsim.clearing.config import fmt_atoms
from clearsim.events.codec import split_record, to_event
from clearsim.events.log import LogReader, Progress, TornTail
from clearsim.events.types import Clawback, Input, SocializedLoss
from clearsim.replay.rebuild import command_of

__all__ = ["DiffResult", "diff"]


_WANTED = (b'"type":"input"', b'"type":"clawback"', b'"type":"socialized_loss"')


@attrs.define
class _Side:
    reader: LogReader
    ex: Exchange
    events: int = 0
    clawed_back: int = 0
    socialized: int = 0

    def feed(self, line: bytes) -> None:
        self.events += 1
        # Only inputs and the two clawback-ledger types need decoding (a substring test is
        # a filter: a false positive is decoded and then ignored).
        if not any(m in line for m in _WANTED):
            return
        ev = to_event(orjson.loads(line))
        if type(ev) is Input:
            self.ex.apply(command_of(ev))
        elif type(ev) is Clawback:
            self.clawed_back += ev.collected
        elif type(ev) is SocializedLoss:
            self.socialized += ev.amount


@attrs.define
class DiffResult:
    a: str
    b: str
    header: list[str]  # differences in the headers (config keys, seed, engine)
    seq: int | None  # the first seq whose records differ, None if every record agrees
    body_a: bytes | None
    body_b: bytes | None
    events_a: int
    events_b: int
    totals: dict[str, tuple[str, str]]  # name -> (A, B) for the fund, debt, clawback totals
    accounts: dict[str, dict[str, tuple[str | None, str | None]]]  # id -> field -> (A, B)
    torn_a: TornTail | None
    torn_b: TornTail | None

    @property
    def identical(self) -> bool:
        return (
            not [h for h in self.header if not h.startswith("engine")]
            and self.seq is None
            and not self.totals
            and not self.accounts
        )


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def _account_view(state: dict[str, Any]) -> dict[str, dict[str, str]]:
    view: dict[str, dict[str, str]] = {}
    for aid, a in state["accounts"].items():
        row = {"balance": a["balance"]}
        for sym, p in a["positions"].items():
            row[f"{sym} qty"] = p["qty"]
            row[f"{sym} entry"] = p["entry_price"]
        view[aid] = row
    return view


class _Both:
    """The progress of two readers as one: records and bytes read, summed."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.seqs = [0, 0]
        self.offsets = [0, 0]

    def side(self, i: int) -> Progress:
        def tick(seq: int, offset: int) -> None:
            self.seqs[i], self.offsets[i] = seq, offset
            self.progress(self.seqs[0] + self.seqs[1], self.offsets[0] + self.offsets[1])

        return tick


def diff(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
) -> DiffResult:
    """Compare two logs (streaming both in step); raises the reader's errors.
    ``progress(records read, bytes read)``, both logs' summed, is called every few
    thousand records (see the module docstring)."""
    ra, rb = LogReader(a), LogReader(b)
    header: list[str] = []
    ha, hb = ra.header, rb.header
    if ha.engine != hb.engine:
        header.append(f"engine: {ha.engine} / {hb.engine}")
    if ha.seed != hb.seed:
        header.append(f"seed: {ha.seed} / {hb.seed}")
    fa, fb = _flat(ha.config), _flat(hb.config)
    for k in sorted(set(fa) | set(fb)):
        if fa.get(k) != fb.get(k):
            header.append(f"config {k}: {fa.get(k)!r} / {fb.get(k)!r}")
    sa = _Side(ra, Exchange(Config.from_dict(ha.config)))
    sb = _Side(rb, Exchange(Config.from_dict(hb.config)))
    first: int | None = None
    body_a = body_b = None
    pa = pb = None
    if progress is not None:
        both = _Both(progress)
        pa, pb = both.side(0), both.side(1)
    for la, lb in zip_longest(ra.lines(progress=pa), rb.lines(progress=pb)):
        if la is not None:
            sa.feed(la[1])
        if lb is not None:
            sb.feed(lb[1])
        if first is None:
            xa = None if la is None else split_record(la[1])[0]
            xb = None if lb is None else split_record(lb[1])[0]
            if xa != xb:
                src = la if la is not None else lb
                if src is None:  # pragma: no cover - zip_longest gives one side at least
                    continue
                first = src[0]
                body_a, body_b = xa, xb
    st_a, st_b = sa.ex.state(), sb.ex.state()
    totals: dict[str, tuple[str, str]] = {}
    for key in ("insurance_fund", "system_debt", "socialized_pending", "fee_pool"):
        if st_a[key] != st_b[key]:
            totals[key] = (st_a[key], st_b[key])
    for key, x, y in (
        ("clawed_back", sa.clawed_back, sb.clawed_back),
        ("socialized_loss", sa.socialized, sb.socialized),
    ):
        if x != y:
            totals[key] = (
                fmt_atoms(x, sa.ex.scale),
                fmt_atoms(y, sb.ex.scale),
            )
    va, vb = _account_view(st_a), _account_view(st_b)
    accounts: dict[str, dict[str, tuple[str | None, str | None]]] = {}
    for aid in sorted(set(va) | set(vb)):
        ra_, rb_ = va.get(aid, {}), vb.get(aid, {})
        d = {
            k: (ra_.get(k), rb_.get(k))
            for k in sorted(set(ra_) | set(rb_))
            if ra_.get(k) != rb_.get(k)
        }
        if d:
            accounts[aid] = d
    return DiffResult(
        a=ra.path,
        b=rb.path,
        header=header,
        seq=first,
        body_a=body_a,
        body_b=body_b,
        events_a=sa.events,
        events_b=sb.events,
        totals=totals,
        accounts=accounts,
        torn_a=ra.torn,
        torn_b=rb.torn,
    )
