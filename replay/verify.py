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

A torn tail (a crash mid-write) is not a failure: the good prefix is verified (the reader
leaves out the command a torn line is in). A log that ends at a line end inside a command
(a write cut exactly there, which only re-execution can tell) is a torn tail too: the
events of that last command re-execution produces beyond the log's end are counted in
``lost_with_tail``, not reported as a divergence.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from typing import Final

import attrs
import orjson

from clearsim.clearing import Config, Exchange
from clearsim.events.codec import BadRecord, CorruptLog, encode_event, split_record, to_event
from clearsim.events.log import LogReader, TornTail
from clearsim.events.types import Event, Input
from clearsim.replay.rebuild import command_of

__all__ = ["Divergence", "VerifyResult", "conservation_error", "verify"]


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


#: Every this many commands at least (and at the end) conservation is checked over every
#: account; in between only over the accounts a command's events name (see :class:`_Books`).
#: With more accounts than this the period is the number of accounts, so the scans cost
#: O(1) per command amortised (at 100k accounts a scan every 1,024 commands was a quarter
#: of verify's time).
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
        ids: dict[str, None] = dict.fromkeys(self.system)
        for ev in events:
            one, many = _names_of(type(ev))
            for name in one:
                v = getattr(ev, name)
                if type(v) is str:
                    ids[v] = None
            for name in many:
                rows = getattr(ev, name)
                if type(rows) is list:
                    for r in rows:
                        if type(r) is list and r and type(r[0]) is str:
                            ids[r[0]] = None
        accounts = self.ex.accounts
        seen = self.seen
        qty = self.qty
        for aid in ids:
            acct = accounts.get(aid)
            if acct is None:
                continue
            old = seen.get(aid)
            positions = acct.positions
            if old is not None:
                ob, on, op = old
                if ob == acct.balance and on == acct.net_deposits and len(op) == len(positions):
                    # Unchanged: the common case for the system accounts, #market included
                    # (it holds a position on a historical day and is named by every level).
                    for s, p in positions.items():
                        if op.get(s) != p.qty:
                            break
                    else:
                        continue
                self.balance -= ob
                self.net -= on
                for s, q in op.items():
                    qty[s] -= q
            pos = {s: p.qty for s, p in positions.items()}
            self.balance += acct.balance
            self.net += acct.net_deposits
            for s, q in pos.items():
                qty[s] = qty.get(s, 0) + q
            seen[aid] = (acct.balance, acct.net_deposits, pos)
        if self.balance != self.net:
            return f"sum of balances {self.balance} != net deposits {self.net} (atoms)"
        for sym, q in qty.items():
            if q != 0:
                return f"positions in {sym} sum to {q} lots, not 0"
        return None


_NAMES: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _names_of(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(fields naming one account, fields listing ``[account, ...]`` rows) of an event
    class: looked up once per class, so a command's events cost a dict hit each."""
    got = _NAMES.get(cls)
    if got is None:
        fields = {f.name for f in attrs.fields(cls)}
        got = (
            tuple(n for n in _NAMED if n in fields),
            tuple(n for n in _MANY if n in fields),
        )
        _NAMES[cls] = got
    return got


#: ``progress(events, offset)`` is called every this many commands.
PROGRESS_EVERY: Final = 2048


def verify(
    path: str | os.PathLike[str],
    *,
    conservation: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyResult:
    """Verify a log: chain, byte-for-byte reproduction, conservation. Streams the file.

    Raises the reader's errors for a file that is not a readable log at all (missing,
    not a log, unknown format); a corrupt record past the header is reported in the result.
    ``progress(events verified, bytes read)`` (uncompressed bytes for a ``.gz``) is called
    every :data:`PROGRESS_EVERY` commands.
    """
    t0 = time.perf_counter()
    reader = LogReader(path)
    res = VerifyResult(path=reader.path, engine_logged=reader.header.engine)
    ex = Exchange(Config.from_dict(reader.header.config))
    pending: deque[bytes] = deque()
    books = _Books(ex)
    last_seq = 0
    last_scan, next_scan = 0, FULL_SCAN_EVERY
    offset = len(reader.header_line)
    command_at = (0, offset)  # the input seq and byte offset of the command being compared
    try:
        for seq, line, record in reader.entries():
            last_seq = seq
            body = split_record(line)[0]
            if not pending:
                command_at = (seq, offset)
                # A command boundary: the logged record must be an input to feed back.
                try:
                    ev = to_event(record)
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
                if progress is not None and not res.commands % PROGRESS_EVERY:
                    progress(res.events, offset)
                if conservation and res.conservation is None:
                    why = books.update(out)
                    if why is None and res.commands >= next_scan:
                        why = conservation_error(ex)
                        if why is not None:
                            why = f"{why} (found by a full scan; the change is in the last "
                            why += f"{res.commands - last_scan} commands)"
                        last_scan = res.commands
                        next_scan = last_scan + max(FULL_SCAN_EVERY, len(ex.accounts))
                    if why is not None:
                        res.conservation = f"after the command at seq {seq}: {why}"
            offset += len(line)
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
        # The log ends at a line end inside its last command: a write cut exactly there (the
        # one tear the records cannot show, see events.log). A torn tail, not a divergence.
        res.lost_with_tail = len(pending)
        if res.torn is None:
            res.torn = TornTail.inside_command(*command_at, len(pending))
            # the good prefix ends before that command: its events are not counted in it
            res.events -= last_seq - command_at[0] + 1
            res.commands -= 1
    res.seconds = time.perf_counter() - t0
    return res
