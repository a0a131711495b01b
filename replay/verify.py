"""``clearsim verify``: re-execute a log's inputs and compare every event byte for byte.

Three checks in one streaming pass (DESIGN §8):

1. the chain: the reader verifies each record's checksum and the gapless seqs; a broken
   link is reported by the seq expected there (:class:`events.codec.CorruptLog`);
2. reproduction: a fresh exchange built from the header's config is fed each logged
   ``Input``'s command; the events it returns are encoded canonically
   (:func:`events.codec.encode_event`) and compared with the logged records' bodies, in
   order. The first difference, an extra logged event or a missing one, is a divergence;
3. conservation after every command: the sum of all balances (system accounts included)
   equals net deposits, and every symbol's positions sum to zero.

A torn tail (a crash mid-write) is not a failure: the good prefix is verified, and the
last command's events that were lost with the tail are not counted as missing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import deque
from typing import Any, Final

import attrs
import orjson

from clearsim.clearing import Config, Exchange
from clearsim.events.codec import ENGINE_VERSION, BadRecord, CorruptLog, encode_event, to_event
from clearsim.events.log import LogReader, TornTail
from clearsim.events.types import Event, Input
from clearsim.replay.rebuild import command_of
from clearsim.replay.snapshot import check_snapshots, snap_path

__all__ = ["Divergence", "VerifyResult", "body_of", "conservation_error", "verify"]

#: ``,"h":"`` + 16 hex digits + ``"}`` + newline: what a sealed line adds to its body.
_SUFFIX = 25


def body_of(line: bytes) -> bytes:
    """The canonical body of a sealed, newline-terminated log line (the ``"h"`` key cut)."""
    return line[:-_SUFFIX] + b"}"


@attrs.frozen
class Divergence:
    """The first place a log and its re-execution disagree.

    ``logged`` / ``replayed`` are canonical bodies, None where one side has no event.
    """

    seq: int
    logged: bytes | None
    replayed: bytes | None
    reason: str

    def fields(self) -> list[str]:
        """Names of the fields whose values differ (both sides present and JSON)."""
        if self.logged is None or self.replayed is None:
            return []
        a, b = orjson.loads(self.logged), orjson.loads(self.replayed)
        if not isinstance(a, dict) or not isinstance(b, dict):
            return []
        return sorted(k for k in {**a, **b} if a.get(k, ...) != b.get(k, ...))


@attrs.define
class VerifyResult:
    """What :func:`verify` found; ``ok`` when nothing is wrong (a torn tail is not wrong)."""

    path: str
    engine_logged: str
    events: int = 0
    commands: int = 0
    seconds: float = 0.0
    torn: TornTail | None = None
    lost_with_tail: int = 0  # re-executed events of the last command beyond the torn tail
    corrupt: CorruptLog | None = None
    divergence: Divergence | None = None
    conservation: str | None = None  # the first violation, with its seq

    @property
    def ok(self) -> bool:
        return self.corrupt is None and self.divergence is None and self.conservation is None

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


#: Every this many commands (and at the end) conservation is checked over every account;
#: in between only over the accounts a command's events name (see :class:`_Books`).
FULL_SCAN_EVERY = 1024
_NAMED: Final = (
    "account",
    "buyer",
    "seller",
    "counterparty",
    "backstop",
    "maker_account",
    "taker_account",
)
_MANY: Final = ("payments", "charges")  # Funding, Clawback: lists of [account, amount, ...]


def conservation_error(ex: Exchange) -> str | None:
    """Why the exchange's books do not balance, or None if they do (a full scan)."""
    total = nd = 0
    sums: dict[str, int] = {}
    for acct in ex.accounts.values():
        total += acct.balance
        nd += acct.net_deposits
        for sym, pos in acct.positions.items():
            sums[sym] = sums.get(sym, 0) + pos.qty
    if total != nd:
        return f"sum of balances {total} != net deposits {nd} (atoms)"
    for sym, q in sorted(sums.items()):
        if q != 0:
            return f"positions in {sym} sum to {q} lots, not 0"
    return None


class _Books:
    """Conservation sums kept incrementally: after a command only the accounts its events
    name (and the system accounts) are re-read. A change to an account no event names is
    caught by the periodic full scan, so nothing escapes; it is only named later."""

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.seen: dict[str, tuple[int, int, dict[str, int]]] = {}
        self.balance = 0
        self.net = 0
        self.qty: dict[str, int] = {}
        self.system = [a for a in ex.accounts if a.startswith("#")]

    def update(self, events: list[Event]) -> str | None:
        ids: set[str] = set(self.system)
        for ev in events:
            for name in _NAMED:
                v = getattr(ev, name, None)
                if type(v) is str:
                    ids.add(v)
            for name in _MANY:
                rows = getattr(ev, name, None)
                if type(rows) is list:
                    ids.update(r[0] for r in rows if type(r) is list and r and type(r[0]) is str)
        accounts = self.ex.accounts
        for aid in ids:
            acct = accounts.get(aid)
            if acct is None:
                continue
            old = self.seen.get(aid)
            pos = {s: p.qty for s, p in acct.positions.items()}
            if old is not None:
                self.balance -= old[0]
                self.net -= old[1]
                for s, q in old[2].items():
                    self.qty[s] -= q
            self.balance += acct.balance
            self.net += acct.net_deposits
            for s, q in pos.items():
                self.qty[s] = self.qty.get(s, 0) + q
            self.seen[aid] = (acct.balance, acct.net_deposits, pos)
        if self.balance != self.net:
            return f"sum of balances {self.balance} != net deposits {self.net} (atoms)"
        for sym, q in self.qty.items():
            if q != 0:
                return f"positions in {sym} sum to {q} lots, not 0"
        return None


def verify(path: str | os.PathLike[str], *, conservation: bool = True) -> VerifyResult:
    """Verify a log: chain, byte-for-byte reproduction, conservation. Streams the file.

    Raises the reader's errors for a file that is not a readable log at all (missing,
    not a log, unknown format); a corrupt record past the header is reported in the result.
    """
    t0 = time.perf_counter()
    reader = LogReader(path)
    res = VerifyResult(path=reader.path, engine_logged=reader.header.engine)
    ex = Exchange(Config.from_dict(reader.header.config))
    pending: deque[bytes] = deque()
    books = _Books(ex)
    loads = orjson.loads
    last_seq = 0
    try:
        for seq, line in reader.lines():
            last_seq = seq
            body = body_of(line)
            if not pending:
                # A command boundary: the logged record must be an input to feed back.
                try:
                    ev = to_event(loads(line))
                except BadRecord as e:
                    res.divergence = Divergence(seq, body, None, f"undecodable record: {e}")
                    break
                if type(ev) is not Input:
                    res.divergence = Divergence(
                        seq, body, None, "logged event that re-execution did not produce"
                    )
                    break
                out = ex.apply(command_of(ev))
                pending.extend(map(encode_event, out))
                res.commands += 1
                if conservation and res.conservation is None:
                    why = books.update(out)
                    if why is None and res.commands % FULL_SCAN_EVERY == 0:
                        why = conservation_error(ex)
                        if why is not None:
                            why = f"{why} (found by a full scan; the change is in the last "
                            why += f"{FULL_SCAN_EVERY} commands)"
                    if why is not None:
                        res.conservation = f"after the command at seq {seq}: {why}"
            expect = pending.popleft()
            if expect != body:
                res.divergence = Divergence(seq, body, expect, "event differs")
                break
            res.events += 1
    except CorruptLog as e:
        res.corrupt = e
    if conservation and res.conservation is None and res.commands:
        why = conservation_error(ex)
        if why is not None:
            res.conservation = f"at the end (seq {last_seq}): {why}"
    res.torn = reader.torn if res.corrupt is None and res.divergence is None else None
    if res.ok and pending:
        if res.torn is not None:
            res.lost_with_tail = len(pending)
        else:
            res.divergence = Divergence(
                last_seq + 1, None, pending[0], "re-execution produced an event the log lacks"
            )
    res.seconds = time.perf_counter() - t0
    return res


def report(res: VerifyResult) -> tuple[list[str], list[str]]:
    """(stdout lines, stderr lines) describing a result for the CLI."""
    out: list[str] = []
    err: list[str] = []
    if res.torn is not None:
        extra = (
            f"; {res.lost_with_tail} event(s) of the last command were lost with it"
            if res.lost_with_tail
            else ""
        )
        err.append(f"warning: {res.torn}{extra}")
    if res.corrupt is not None:
        out.append(f"FAIL chain broken at seq {res.corrupt.seq}: {res.corrupt}")
        out.append(f"  records before seq {res.corrupt.seq} re-executed identically")
    if res.divergence is not None:
        d = res.divergence
        out.append(f"FAIL divergence at seq {d.seq}: {d.reason}")
        fields = d.fields()
        if fields:
            out.append(f"  fields differ: {', '.join(fields)}")
        out.append("  logged:      " + _show(d.logged))
        out.append("  re-executed: " + _show(d.replayed))
    if res.conservation is not None:
        out.append(f"FAIL conservation: {res.conservation}")
    if res.ok:
        prefix = "good prefix " if res.torn is not None else ""
        out.append(
            f"OK {res.path}: {prefix}{res.events} events ({res.commands} commands) "
            f"re-executed identically, chain and conservation hold; "
            f"{res.seconds:.2f} s, {res.rate:,.0f} events/s"
        )
    else:
        out.append(
            f"verified {res.events} events ({res.commands} commands) before the failure "
            f"in {res.seconds:.2f} s"
        )
    if res.engine_logged != ENGINE_VERSION:
        err.append(
            f"note: log written by engine {res.engine_logged}, verified with {ENGINE_VERSION}"
        )
    return out, err


def _show(body: bytes | None) -> str:
    return "(none)" if body is None else body.decode("utf-8", "replace")


# --------------------------------------------------------------------------- CLI


def add_parser(sub: Any) -> None:
    """The ``verify`` subcommand (``sub`` is argparse's subparsers action)."""
    v = sub.add_parser(
        "verify", help="check a log's chain, re-execute it and compare every event, byte for byte"
    )
    v.add_argument("log")
    v.add_argument(
        "--no-conservation", action="store_true", help="skip the conservation checks (faster)"
    )


def cmd(a: argparse.Namespace) -> int:
    """Exit 0: the log (or its good prefix before a torn tail) verifies; 1: it does not."""
    res = verify(a.log, conservation=not a.no_conservation)
    out, err = report(res)
    ok = res.ok
    if ok and os.path.exists(snap_path(a.log)):
        checked, problem = check_snapshots(a.log)
        if problem is None:
            out.append(f"OK {checked} snapshots match the log")
        else:
            out.append(f"FAIL {problem}")
            ok = False
    for line in err:
        print(line, file=sys.stderr)
    for line in out:
        print(line)
    return 0 if ok else 1
