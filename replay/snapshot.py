"""Ledger snapshots beside a log, and seeking to a seq through them (DESIGN §7, §8).

``write_snapshots(log, every=K)`` folds the log once with
:class:`replay.projections.ledger.Ledger` and writes ``<log>.snap``, JSON Lines, one
snapshot every K records::

    {"seq": N, "offset": O, "len": L, "h": "<chain checksum of record N>",
     "hash": "<blake2b of the ledger>", "ledger": {...}}

``ledger`` is the folded state after exactly seq N (``Ledger.to_dict``), ``hash`` the
blake2b (16 bytes, hex) of its canonical encoding (orjson, sorted keys), so a damaged snapshot
is caught when loaded. ``offset`` is the byte offset, in the uncompressed stream, of the
record after seq N and ``len`` the length of record N's line: seeking a plain log reads
record N's line (its checksum must be ``h``: the snapshot belongs to this log) and then only
the records after it. A ``.gz`` log cannot be seeked into: its lines are skipped up to the
snapshot without being parsed, then folded.

``seek(log, seq)`` is the projection after exactly seq ``seq`` (clamped to the last good
record), equal to folding every record with ``seq <= N`` from the start. Any anomaly in the
records read after the snapshot (a checksum, a seq, a torn tail) falls back to a full
verified fold, which names the corrupt record or reports the torn tail exactly.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from contextlib import suppress
from typing import Any, Final

import attrs
import orjson

from clearsim.events.codec import CorruptLog, LogError, split_record
from clearsim.events.log import LogReader, Resume, ResumeMismatch, TornTail
from clearsim.replay.projections.ledger import Ledger

__all__ = [
    "SNAP_SUFFIX",
    "SeekResult",
    "SnapshotError",
    "ledger_hash",
    "seek",
    "seek_detail",
    "snap_path",
    "write_snapshots",
    "write_snapshots_detail",
]

SNAP_SUFFIX: Final = ".snap"
DEFAULT_EVERY: Final = 10_000
_SEQ_PREFIX: Final = re.compile(rb'\{"seq":(\d+),')


class SnapshotError(LogError):
    """A snapshot file that is damaged or does not belong to its log."""


def snap_path(log_path: str | os.PathLike[str]) -> str:
    return os.fspath(log_path) + SNAP_SUFFIX


# --------------------------------------------------------------------------- ledger <-> dict


def _canonical(state: dict[str, Any]) -> bytes:
    return orjson.dumps(state, option=orjson.OPT_SORT_KEYS)


def ledger_hash(state: dict[str, Any]) -> str:
    """The blake2b (16 bytes, hex) of a serialised ledger's canonical encoding."""
    return hashlib.blake2b(_canonical(state), digest_size=16).hexdigest()


# --------------------------------------------------------------------------- writing


def write_snapshots(log_path: str | os.PathLike[str], every: int = DEFAULT_EVERY) -> int:
    """Write ``<log>.snap`` with a snapshot after every ``every`` records; the count written.

    The log is read and verified in full (a corrupt record raises); records past a torn tail
    get no snapshot. The file is replaced atomically.
    """
    return write_snapshots_detail(log_path, every)[0]


def write_snapshots_detail(
    log_path: str | os.PathLike[str], every: int = DEFAULT_EVERY
) -> tuple[int, TornTail | None]:
    """:func:`write_snapshots`, and the log's torn tail (None if it has none)."""
    if every < 1:
        raise ValueError("every: expected a positive number of records")
    path = os.fspath(log_path)
    target = snap_path(path)
    reader = LogReader(path)
    with suppress(OSError):
        if os.path.samefile(target, path):
            raise SnapshotError(f"{target}: is the log {path} itself; refusing to write over it")
    led = Ledger(reader.header.config)
    apply = led.apply
    loads = orjson.loads
    offset = len(reader.header_line)
    out: list[bytes] = []
    for seq, line in reader.lines():
        apply(loads(line))
        offset += len(line)
        if seq % every == 0:
            state = led.to_dict()
            meta = {
                "seq": seq,
                "offset": offset,
                "len": len(line),
                "h": split_record(line)[1].decode("ascii"),
                "hash": ledger_hash(state),
            }
            # "seq" first, so a reader finds a snapshot without parsing the ledgers before it.
            out.append(orjson.dumps(meta)[:-1] + b',"ledger":' + _canonical(state) + b"}\n")
    d = os.path.dirname(os.path.abspath(target))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".snap-", dir=d)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(b"".join(out))
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as e:
        raise LogError(f"{target}: cannot write: {e.strerror or e}") from None
    return len(out), reader.torn


def check_snapshots(log_path: str | os.PathLike[str]) -> tuple[int, str | None]:
    """Check every snapshot beside ``log_path`` against a fresh fold of the log.

    Returns (snapshots checked, the first problem or None). A snapshot is wrong if its
    stored hash does not match its own ledger, or the ledger differs from the log's state
    at its seq.
    """
    path = snap_path(log_path)
    reader = LogReader(log_path)
    led = Ledger(reader.header.config)
    loads = orjson.loads
    try:
        with open(path, "rb") as f:
            snaps = [loads(line) for line in f]
    except OSError as e:
        raise LogError(f"{path}: cannot read: {e.strerror or e}") from None
    except orjson.JSONDecodeError:
        return 0, f"{path}: not a snapshot file"
    want = iter(snaps)
    nxt = next(want, None)
    checked = 0
    for seq, line in reader.lines():
        led.apply(loads(line))
        while nxt is not None and nxt.get("seq") == seq:
            state = led.to_dict()
            if ledger_hash(nxt.get("ledger", {})) != nxt.get("hash"):
                return checked, f"snapshot at seq {seq}: its hash does not match its ledger"
            if ledger_hash(state) != nxt["hash"]:
                return checked, f"snapshot at seq {seq}: differs from the log's state there"
            checked += 1
            nxt = next(want, None)
    if nxt is not None:
        return checked, f"snapshot at seq {nxt.get('seq')} is past the end of the log"
    return checked, None


# --------------------------------------------------------------------------- seeking


@attrs.frozen
class _Snap:
    seq: int
    offset: int
    length: int
    h: bytes
    ledger: dict[str, Any]


def _load_snapshot(path: str, seq: int) -> _Snap | None:
    """The last snapshot in ``path`` at or before ``seq``, hash-checked; None if none is."""
    best: bytes | None = None
    try:
        with open(path, "rb") as f:
            for line in f:
                m = _SEQ_PREFIX.match(line)
                if m is None:
                    raise SnapshotError(f"{path}: not a snapshot file (a line without a seq)")
                if int(m.group(1)) > seq:
                    break
                best = line
    except OSError as e:
        raise LogError(f"{path}: cannot read: {e.strerror or e}") from None
    if best is None:
        return None
    m = _SEQ_PREFIX.match(best)
    if m is None:  # pragma: no cover - best was chosen by this very pattern
        return None
    at = int(m.group(1))
    try:
        d = orjson.loads(best)
        state = d["ledger"]
        snap = _Snap(at, int(d["offset"]), int(d["len"]), d["h"].encode("ascii"), state)
        ok = ledger_hash(state) == d["hash"] and state["seq"] == at
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        ok = False
    if not ok:
        raise SnapshotError(
            f"{path}: snapshot at seq {at} is corrupt (hash mismatch); "
            "rebuild it with `clearsim snapshot`"
        )
    return snap


@attrs.frozen
class SeekResult:
    """The ledger at the seq asked for, and how it was reached."""

    ledger: Ledger
    snapshot_seq: int | None  # the snapshot started from (None: no .snap file / none before)
    replayed: int  # records folded after it
    torn: TornTail | None  # set only when a full fold found a torn tail


def seek(log_path: str | os.PathLike[str], seq: int) -> Ledger:
    """The ledger after exactly seq ``seq`` (or the last good record), via the snapshots."""
    return seek_detail(log_path, seq).ledger


def seek_detail(log_path: str | os.PathLike[str], seq: int) -> SeekResult:
    """:func:`seek`, saying which snapshot it started from and how many records it folded.

    The records after the snapshot are read by the log's own scanner, resumed after the
    snapshot's record (:class:`events.log.Resume`). Any anomaly in them (a checksum, a seq,
    a torn tail) falls back to a full verified fold, which names the corrupt record or
    reports the torn tail exactly.
    """
    if seq < 0:
        raise ValueError("seq: expected a seq >= 0")
    path = os.fspath(log_path)
    reader = LogReader(path)
    config = reader.header.config
    sp = snap_path(path)
    snap = _load_snapshot(sp, seq) if os.path.exists(sp) else None
    if snap is None:
        led, resume, snap_seq = Ledger(config), None, None
    else:
        led = Ledger.from_dict(config, snap.ledger)
        resume = Resume(snap.seq, snap.offset, snap.length, snap.h)
        snap_seq = snap.seq
    replayed = 0
    apply = led.apply
    try:
        if led.seq >= seq:
            if resume is not None:
                reader.check_resume(resume)  # the snapshot must still belong to this log
        else:
            for d in reader.records(resume):
                apply(d)
                replayed += 1
                if d["seq"] >= seq:
                    break
    except ResumeMismatch:
        raise SnapshotError(
            f"{sp}: snapshot at seq {snap_seq} does not match the log "
            "(the log changed?); rebuild it with `clearsim snapshot`"
        ) from None
    except CorruptLog:
        return _full_fold(reader, seq)
    if reader.torn is not None:
        return _full_fold(reader, seq)
    return SeekResult(led, snap_seq, replayed, None)


def _full_fold(reader: LogReader, seq: int) -> SeekResult:
    """A verified fold from the start (names a corrupt record, reports a torn tail)."""
    led = Ledger(reader.header.config)
    apply = led.apply
    n = 0
    for d in reader.records():
        if d["seq"] > seq:
            break
        apply(d)
        n += 1
    return SeekResult(led, None, n, reader.torn)
