"""The append-only event log on disk: the writer, the verifying streaming reader, torn tails.

This module owns files: creating a log (header first), appending sealed records with buffered
writes, resuming after a crash (cutting a torn tail and continuing the chain), gzip when
the name ends in ``.gz``, and reading a log back while verifying the checksum chain and the
gapless seqs. What a record's bytes are is :mod:`events.codec`'s business.

Commands are atomic on disk. A command's records are its ``input`` record and every record
after it up to the next ``input``. The rule that makes a crash lose whole commands only:

- *Writer.* :class:`LogWriter` hands the OS whole commands only: its buffer is written out
  before an ``input`` record (or on :meth:`LogWriter.flush` / :meth:`LogWriter.close`,
  which callers use between commands), so a command's records are in one ``write`` call,
  and every write ends with a newline. A process killed between writes leaves complete
  commands; one killed inside a write (or a machine that goes down) leaves a prefix of the
  last write, possibly followed by garbage (zero-filled blocks).
- *Reader.* The good prefix of a log ends at a command boundary. When the log has a torn
  tail (below), the command the tear is in goes with it: the prefix ends before the last
  ``input`` record preceding the tear (that command's earlier records are intact, but
  nothing shows it was complete: its next record may have been the one torn). A log that
  ends cleanly (a last line that is complete, a gzip stream with its trailer) is taken as
  complete. Records before a log's first ``input`` belong to no command (a stream not
  written by the engine) and are cut at the torn line only.
- *The one gap.* A write cut exactly at a line end leaves a log that ends cleanly inside
  a command: no record shows it. Re-execution does: ``verify``, ``state`` (through
  :func:`replay.rebuild.rebuild`) and ``clearsim run --resume`` report it as a torn tail
  (:meth:`TornTail.inside_command`) and cut it back; :meth:`LogWriter.resume` takes the
  command boundary from them (``keep=``). Engine-free projections cannot tell. A ``.gz``
  log has no gap: a cut stream lacks its trailer and is always torn.

Failure model. A crash mid-write can only leave a *torn tail*: the last line incomplete (no
newline), unparsable (zero-filled blocks after a crash), or failing its checksum; the reader
stops cleanly before the command it is in and reports it in :attr:`LogReader.torn`, and
:meth:`LogWriter.resume` cuts it off. Anything bad with more lines after it cannot come from
a crash and is :class:`~events.codec.CorruptLog`, named by the seq expected at that position
(the intact records before it are still read). So is a complete, well-formed last line
carrying the wrong seq (a dropped record: a crash cannot write that). A gzip stream that
ends early or fails to inflate is a torn tail too: everything decoded before the break, up
to the last command boundary, is kept.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from types import TracebackType
from typing import IO, Any, Final

import attrs
import orjson

from clearsim.events.codec import (
    BadRecord,
    CorruptLog,
    Header,
    LineTooLong,
    LogError,
    LogExists,
    NotALog,
    UnknownFormat,
    encode_event,
    encode_header,
    header_from_dict,
    seal,
    seal_bytes,
    split_record,
    to_event,
    unseal,
    unseal_run,
)
from clearsim.events.types import Event, Input

__all__ = [
    "MAX_LINE",
    "PROGRESS_EVERY",
    "BadRecord",
    "CorruptLog",
    "LineTooLong",
    "LogError",
    "LogExists",
    "LogReader",
    "LogWriter",
    "NotALog",
    "Progress",
    "Resume",
    "ResumeMismatch",
    "TornTail",
    "UnknownFormat",
    "read_log",
]

#: The longest line (newline included) a reader accepts and a writer writes. Read at call
#: time, so tests may lower it.
MAX_LINE = 16 * 1024 * 1024

#: Bytes of sealed lines gathered before one write to the file (or one gzip compress call).
_BUFFER: Final = 1 << 20
#: zlib level for .gz logs. Measured on fill records: 9 (gzip's default) is 2.5x slower for
#: 1% less, 1 is 2x faster for 30% more (33 against 43 bytes a record).
_GZ_LEVEL: Final = 6
_GZ_ERRORS: Final = (EOFError, zlib.error, gzip.BadGzipFile)
#: Bytes read at a time by the fast path of :meth:`LogReader.select`.
_CHUNK: Final = 8 << 20

#: ``progress(records read, bytes read)``: how far a reading has got, for a progress display
#: (bytes of the uncompressed stream for a ``.gz``, the header's included).
Progress = Callable[[int, int], None]
#: The careful scan calls its ``progress`` every this many records (and once at its end);
#: the fast path once per block read (:data:`_CHUNK` bytes). Without one it costs a compare
#: per record.
PROGRESS_EVERY: Final = 2048


def _no_progress(records: int, offset: int) -> None:
    return None


class _Forward:
    """A progress callback that never goes back: the careful scan a hand-over starts
    re-reads the records the fast path has already reported."""

    __slots__ = ("progress", "seq")

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.seq = 0

    def __call__(self, seq: int, offset: int) -> None:
        if seq > self.seq:
            self.seq = seq
            self.progress(seq, offset)


def _is_gz(path: str | os.PathLike[str]) -> bool:
    return os.fspath(path).endswith(".gz")


@attrs.frozen
class TornTail:
    """Where a log's good prefix ends, which is always at a command boundary: the first line
    left out (1-based) and its byte offset in the (uncompressed) stream (where a resumed log
    is cut), the seq of the last record kept (0 = header only), and why (the torn line, and
    the command cut with it)."""

    line_no: int
    offset: int
    last_good_seq: int
    reason: str

    def __str__(self) -> str:
        return (
            f"torn tail at line {self.line_no} (byte {self.offset}): {self.reason}; "
            f"records up to seq {self.last_good_seq} are intact"
        )

    @classmethod
    def inside_command(cls, input_seq: int, offset: int, missing: int) -> TornTail:
        """The tail of a log that ends at a line end inside the command whose input is record
        ``input_seq`` (its line starts at byte ``offset``), ``missing`` of its events absent:
        what a re-executing reader finds when a write was cut exactly at a line end."""
        return cls(
            line_no=input_seq + 1,
            offset=offset,
            last_good_seq=input_seq - 1,
            reason=(
                f"the log ends inside the command begun at seq {input_seq} "
                f"({missing} of its events are missing)"
            ),
        )


@attrs.frozen
class Resume:
    """A place to start reading after record ``seq`` instead of at seq 1 (a snapshot's
    bookmark): that record's line is ``length`` bytes, ends at byte ``offset`` of the
    (uncompressed) stream and has checksum ``h`` (ascii bytes)."""

    seq: int
    offset: int
    length: int
    h: bytes


class ResumeMismatch(LogError):
    """The line a :class:`Resume` points at is not there (the log changed)."""


class _Anomaly(Exception):
    """Something the fast path does not judge itself: the careful scan takes over."""


# --------------------------------------------------------------------------- reader


class LogReader:
    """Reads and verifies a log; every iteration re-opens the file and starts at seq 1.

    ``header`` is read and checked on construction. ``records()`` yields verified record dicts
    (the ``"h"`` checksum key included), ``events()`` (and iteration) typed events, ``lines()``
    ``(seq, raw line)``. After an iteration has run to its end, ``torn`` is the torn tail or
    None, and ``last_seq`` / ``last_h`` describe the last good record.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.gz = _is_gz(self.path)
        self.torn: TornTail | None = None
        self.last_seq = 0
        self.last_h = ""
        with self._open() as fh:
            self.header, self._header_line, self._header_h = self._read_header(fh)
        self.last_h = self._header_h.decode("ascii")

    @property
    def header_line(self) -> bytes:
        """The header's raw line, newline included."""
        return self._header_line

    @property
    def header_h(self) -> str:
        """The header's checksum (what the first record is chained onto)."""
        return self._header_h.decode("ascii")

    # -- internals

    def _open(self) -> IO[bytes]:
        try:
            if self.gz:
                return gzip.open(self.path, "rb")  # type: ignore[return-value]
            return open(self.path, "rb")
        except OSError as e:
            raise LogError(f"{self.path}: cannot open: {e.strerror or e}") from None

    def _err(self, text: str) -> str:
        return f"{self.path}: {text}"

    def _read_header(self, fh: IO[bytes]) -> tuple[Header, bytes, bytes]:
        try:
            line = fh.readline(MAX_LINE + 1)
        except _GZ_ERRORS as e:
            raise NotALog(self._err(f"not a readable gzip log ({e})")) from None
        except OSError as e:
            raise LogError(self._err(f"read failed: {e.strerror or e}")) from None
        if not line:
            raise NotALog(self._err("empty file, not a log"))
        if not line.endswith(b"\n"):
            raise NotALog(self._err("first line is not a complete log header"))
        try:
            d = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise NotALog(self._err("first line is not a clearsim log header")) from None
        try:
            header = header_from_dict(d)
        except UnknownFormat as e:
            raise UnknownFormat(self._err(str(e)), e.format) from None
        except NotALog as e:
            raise NotALog(self._err(str(e))) from None
        h = unseal(b"", line)
        if h is None:
            raise CorruptLog(self._err("line 1: header checksum mismatch"), seq=0, line_no=1)
        return header, line, h

    def _scan(
        self, resume: Resume | None = None, progress: Progress | None = None
    ) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
        """Yield (seq, line, record) for every good record (after ``resume.seq`` if given);
        set ``torn`` at the end. The one careful scanner: every line's checksum, seq and
        shape is checked, and a bad line is classified (:meth:`_bad`). ``progress(seq, bytes
        read)`` is called every :data:`PROGRESS_EVERY` records read and once at the end."""
        self.torn = None
        self.last_seq = 0
        self.last_h = self._header_h.decode("ascii")
        limit = MAX_LINE
        with self._open() as fh:
            readline = fh.readline
            gz_error: str | None = None

            def next_line() -> bytes:
                nonlocal gz_error
                if gz_error is not None:
                    return b""
                try:
                    return readline(limit + 1)
                except _GZ_ERRORS as e:
                    gz_error = f"gzip stream broken ({type(e).__name__}: {e})"
                    return b""
                except OSError as e:
                    raise LogError(self._err(f"read failed: {e.strerror or e}")) from None

            if next_line() != self._header_line:
                raise LogError(self._err("header changed since the log was opened"))
            prev = self._header_h
            expect = 1
            line_no = 1
            offset = len(self._header_line)
            loads = orjson.loads
            if resume is not None:
                prev = self._resume(fh, resume)
                expect = line_no = resume.seq + 1  # one record a line, the header first
                offset = resume.offset
                self.last_seq, self.last_h = resume.seq, prev.decode("ascii")
            # The records of the command being read are held back until the next input (or
            # a clean end) shows the command is complete; a torn tail drops them with it.
            # Records before the first input belong to no command (a stream not written by
            # the engine): each is a boundary of its own.
            held: list[tuple[int, bytes, dict[str, Any]]] = []
            cut = (expect - 1, prev, offset, line_no)  # the last command boundary seen
            commands = resume is not None
            # A seq to report at: -1 (never) without a progress callback, so that costs a
            # compare per record and no call.
            tick = _no_progress if progress is None else progress
            report = -1 if progress is None else (expect // PROGRESS_EVERY + 1) * PROGRESS_EVERY
            while True:
                line = next_line()
                if not line:
                    if expect - 1 != report - PROGRESS_EVERY:  # not reported just now
                        tick(expect - 1, offset)
                    if gz_error is not None:
                        self._torn_at(cut, held, line_no + 1, gz_error)
                    else:
                        yield from held
                    return
                line_no += 1
                if len(line) > limit:
                    yield from held  # intact records before a corrupt one are still read
                    raise LineTooLong(
                        self._err(f"line {line_no}: longer than {limit} bytes (seq {expect})"),
                        seq=expect,
                        line_no=line_no,
                    )
                h = unseal(prev, line) if line[-1:] == b"\n" else None
                seq: object = None
                if h is not None:
                    try:
                        d = loads(line)
                        seq = d.get("seq") if type(d) is dict else None
                    except orjson.JSONDecodeError:
                        seq = None
                    if seq == expect and type(seq) is int:
                        if d.get("type") == "input":
                            if held:
                                yield from held
                                held.clear()
                            cut = (expect - 1, prev, offset, line_no - 1)
                            commands = True
                        if commands:
                            held.append((expect, line, d))
                        else:
                            yield expect, line, d
                            cut = (expect, h, offset + len(line), line_no)
                        prev = h
                        self.last_seq = expect
                        self.last_h = h.decode("ascii")
                        offset += len(line)
                        if expect == report:
                            tick(expect, offset)
                            report += PROGRESS_EVERY
                        expect += 1
                        continue
                try:
                    why = self._bad(line, h, seq, expect, line_no, next_line() != b"")
                except CorruptLog:
                    yield from held  # not a tear: the intact records before it are read
                    raise
                if expect - 1 != report - PROGRESS_EVERY:
                    tick(expect - 1, offset)
                self._torn_at(cut, held, line_no, why)
                return

    def _torn_at(
        self,
        cut: tuple[int, bytes, int, int],
        held: list[tuple[int, bytes, dict[str, Any]]],
        torn_line: int,
        why: str,
    ) -> None:
        """Record a torn tail found at ``torn_line``: the good prefix ends at the last command
        boundary ``cut`` (the held records of the command the tear is in are left out)."""
        seq, h, offset, line_no = cut
        if held:
            why += (
                f" at line {torn_line}, inside the command begun at seq {seq + 1} "
                f"(its {len(held)} intact record(s) are left out with it)"
            )
        self.last_seq, self.last_h = seq, h.decode("ascii")
        self.torn = TornTail(line_no=line_no + 1, offset=offset, last_good_seq=seq, reason=why)

    def _resume(self, fh: IO[bytes], at: Resume) -> bytes:
        """Position ``fh`` after the record ``at`` names, checking it is that record."""
        try:
            fh.seek(at.offset - at.length)  # a .gz stream seeks forward by inflating
            line = fh.readline(MAX_LINE + 1)
            ok = (
                len(line) == at.length
                and line.endswith(b"\n")
                and split_record(line)[1] == at.h
                and orjson.loads(line).get("seq") == at.seq
            )
        except (OSError, AttributeError, orjson.JSONDecodeError, *_GZ_ERRORS):
            ok = False
        if not ok:
            raise ResumeMismatch(self._err(f"no record seq {at.seq} at byte {at.offset}"))
        return at.h

    def check_resume(self, at: Resume) -> None:
        """Raise :class:`ResumeMismatch` unless the record ``at`` names is where it says."""
        with self._open() as fh:
            self._resume(fh, at)

    def _bad(
        self,
        line: bytes,
        h: bytes | None,
        seq: object,
        expect: int,
        line_no: int,
        more: bool,
    ) -> str:
        """Classify a bad line: raise CorruptLog, or return why it is a torn tail."""
        if not line.endswith(b"\n"):
            why, tearable = "incomplete last line (no newline)", True
        elif h is not None:
            # Checksum holds, so the writer wrote it: a seq gap or garbage is never torn.
            tearable = False
            if type(seq) is int:
                why = f"seq {seq} where {expect} was expected"
            else:
                why = "no valid seq in a record whose checksum holds"
        else:
            try:
                d = orjson.loads(line)
                got = d.get("seq") if type(d) is dict else None
            except orjson.JSONDecodeError:
                got = None
            if type(got) is not int:
                why, tearable = "unparsable record", True
            elif got == expect:
                why, tearable = "checksum mismatch", True
            else:
                why, tearable = f"seq {got} where {expect} was expected", False
        if more or not tearable:
            what = "record changed, dropped or reordered" if tearable else "bad record"
            if why.startswith("seq"):
                what = "record dropped or reordered"
            raise CorruptLog(
                self._err(f"line {line_no}: record seq {expect} is corrupt: {why} ({what})"),
                seq=expect,
                line_no=line_no,
            )
        return why

    # -- public

    def select(
        self,
        tokens: tuple[bytes, ...] | None,
        *,
        verify: bool = True,
        progress: Progress | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Record dicts of the lines holding any of ``tokens`` (raw bytes, e.g.
        ``b'"type":"takeover"'``): the fast path for projections that read few record kinds.
        ``tokens=None`` selects every record (:meth:`records` on the fast path, for a reader
        of the whole log such as ``clearsim export``; seqs are then checked to be gapless).

        The file is read in large blocks and only the selected lines are parsed; with
        ``verify`` every line's checksum chain is still checked (hashing, not parsing). Any
        anomaly (a torn or corrupt line, a seq out of order) hands over to the careful scan,
        which goes on after the records already yielded: the result is that of
        :meth:`records` filtered by ``tokens`` (a corrupt record raises, a torn tail is in
        ``torn``). After the end, ``last_seq`` is the log's last record.

        ``progress(last seq read, bytes read)`` is called once per block on the fast path;
        after a hand-over, by the careful scan once it is past the blocks already reported.
        """
        done = 0
        tell = None if progress is None else _Forward(progress)
        try:
            for d in self._fast(tokens, verify, tell):
                done = d["seq"]
                yield d
            return
        except _Anomaly:
            pass
        for seq, line, d in self._scan(progress=tell):
            if seq > done and (tokens is None or any(tok in line for tok in tokens)):
                yield d

    def _fast(
        self, tokens: tuple[bytes, ...] | None, verify: bool, progress: Progress | None = None
    ) -> Iterator[dict[str, Any]]:
        """:meth:`select` without the careful scan; raises :class:`_Anomaly`."""
        self.torn = None
        self.last_seq = 0
        self.last_h = self._header_h.decode("ascii")
        loads = orjson.loads
        with self._open() as fh:
            first = True
            prev = b""
            last_seq = 0
            held: list[dict[str, Any]] = []
            commands = False  # an input seen: records are held back by command from then on
            offset = 0  # bytes read (the header's included)
            for block in _blocks(fh):
                offset += len(block)
                if first:
                    first = False
                    prev, block = _split_header(block)
                lines: list[bytes] = []
                if verify or tokens is None:
                    lines = block.split(b"\n")
                    lines.pop()
                if verify:
                    prev, good = unseal_run(prev, lines)
                    if good != len(lines):
                        raise _Anomaly("checksum")
                # Every line selected: each seq must follow the last (a gap is corruption,
                # which the careful scan reports); selected lines need only increase.
                step = 1 if tokens is None else 0
                for line in lines if tokens is None else _selected(block, tokens):
                    try:
                        d = loads(line)
                    except orjson.JSONDecodeError:
                        raise _Anomaly("json") from None
                    if type(d) is not dict:
                        raise _Anomaly("record")
                    seq = d.get("seq")
                    if type(seq) is not int or seq <= last_seq or (step and seq != last_seq + 1):
                        raise _Anomaly("seq")
                    last_seq = seq
                    held.append(d)
                # As in _scan: a command's records are held back until a later input shows
                # it is complete; only the block's last input needs finding.
                start = _last_input(block)
                if start is None and not commands:
                    start = last_seq + 1  # no input yet: no command to hold back
                commands = commands or start is not None
                if start is not None and held:
                    keep = [d for d in held if d["seq"] >= start]
                    yield from (d for d in held if d["seq"] < start)
                    held = keep
                if block:
                    tail = block[block.rfind(b"\n", 0, len(block) - 1) + 1 :]
                    try:
                        seq = loads(tail).get("seq")
                    except (orjson.JSONDecodeError, AttributeError):
                        raise _Anomaly("json") from None
                    if type(seq) is not int or seq < last_seq:
                        raise _Anomaly("seq")
                    self.last_seq = seq
                    if verify:
                        self.last_h = prev.decode("ascii")
                if progress is not None:
                    progress(self.last_seq, offset)
            yield from held  # a clean end: the last command is complete

    def chunks(self, *, verify: bool = True, size: int = 1024) -> Iterator[bytes]:
        """The log's good prefix as chunks of whole record lines (each newline-terminated),
        in order, unparsed: the fast path for a reader that parses many records at once
        (``clearsim export``). A chunk holds about ``size`` records, or all those of one
        read block on the fast path.

        As :meth:`select`: the file is read in large blocks, every line's checksum chain
        checked with ``verify`` (hashing, not parsing), and each block's seqs are checked
        to run on gaplessly (its first and last line's seq against its count of lines);
        the last command of a block is held back until a later one shows it complete. Any
        anomaly hands over to the careful scan, which goes on after the lines already
        yielded; a torn tail is then in ``torn``. After the end, ``last_seq`` is the last
        record's seq.
        """
        done = 0
        try:
            for chunk in self._fast_chunks(verify):
                done = _seq_of(chunk[chunk.rfind(b"\n", 0, len(chunk) - 1) + 1 :])
                yield chunk
            return
        except _Anomaly:
            pass
        out: list[bytes] = []
        for seq, line, _ in self._scan():
            if seq > done:
                out.append(line)
                if len(out) >= size:
                    yield b"".join(out)
                    out.clear()
        if out:
            yield b"".join(out)

    def _fast_chunks(self, verify: bool) -> Iterator[bytes]:
        """:meth:`chunks` without the careful scan; raises :class:`_Anomaly`."""
        self.torn = None
        self.last_seq = 0
        self.last_h = self._header_h.decode("ascii")
        with self._open() as fh:
            first = True
            prev = b""
            last_seq = 0  # the seq of the last line read
            held = b""  # the lines of the last command, not yet shown complete
            commands = False
            for block in _blocks(fh):
                if first:
                    first = False
                    prev, block = _split_header(block)
                    if not block:
                        continue
                if verify:
                    lines = block.split(b"\n")
                    lines.pop()
                    prev, good = unseal_run(prev, lines)
                    if good != len(lines):
                        raise _Anomaly("checksum")
                head = _seq_of(block[: block.find(b"\n")])
                tail = _seq_of(block[block.rfind(b"\n", 0, len(block) - 1) + 1 :])
                if head != last_seq + 1 or tail - head + 1 != block.count(b"\n"):
                    raise _Anomaly("seq")
                last_seq = tail
                # As in _fast: everything before the block's last input is complete commands
                # (records before a log's first input belong to no command).
                i = block.rfind(_INPUT_MARK)
                if i < 0:
                    if commands:
                        held += block
                    else:
                        yield block
                    continue
                start = block.rfind(b"\n", 0, i) + 1
                commands = True
                done = held + block[:start]
                if done:
                    yield done
                held = block[start:]
                self.last_seq = last_seq
                if verify:
                    self.last_h = prev.decode("ascii")
            if held:
                yield held  # a clean end: the last command is complete
            self.last_seq = last_seq
            if verify:
                self.last_h = prev.decode("ascii")

    def lines(
        self, *, progress: Progress | None = None
    ) -> Generator[tuple[int, bytes], None, None]:
        """(seq, raw line with its newline) for every verified record; ``progress`` as in
        :meth:`records`."""
        for seq, line, _ in self._scan(progress=progress):
            yield seq, line

    def entries(
        self, *, progress: Progress | None = None
    ) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
        """(seq, raw line, record dict) for every verified record: for a reader that needs
        both the bytes and the fields (``verify``), each line parsed once."""
        return self._scan(progress=progress)

    def records(
        self, resume: Resume | None = None, *, progress: Progress | None = None
    ) -> Iterator[dict[str, Any]]:
        """Verified record dicts (``"h"`` included), from seq 1 or after ``resume``
        (:class:`ResumeMismatch` if its record is not where it says). ``progress(seq, bytes
        read)`` is called every :data:`PROGRESS_EVERY` records read and at the end."""
        for _, _, d in self._scan(resume, progress):
            yield d

    def events(self) -> Iterator[Event]:
        """Verified typed events; :class:`BadRecord` names the line of an unknown record."""
        line_no = 1
        for _, _, d in self._scan():
            line_no += 1
            try:
                yield to_event(d)
            except BadRecord as e:
                raise BadRecord(self._err(f"line {line_no}: {e}"), e.seq, line_no) from None

    def __iter__(self) -> Iterator[Event]:
        return self.events()

    def verify(self) -> TornTail | None:
        """Read the whole log, raising on corruption; the torn tail, if any."""
        for _ in self._scan():
            pass
        return self.torn


def _split_header(block: bytes) -> tuple[bytes, bytes]:
    """(the header's checksum, the rest of the file's first block) for the fast readers;
    :class:`_Anomaly` if the header line is not sealed."""
    cut = block.find(b"\n") + 1
    h = unseal(b"", block[:cut])
    if h is None:
        raise _Anomaly("header")
    return h, block[cut:]


def _blocks(fh: IO[bytes]) -> Iterator[bytes]:
    """Blocks of whole lines (each ending with a newline); a last line without one is
    raised as an anomaly (a torn tail is for the careful scan to report)."""
    rest = b""
    while True:
        try:
            chunk = fh.read(_CHUNK)
        except (OSError, *_GZ_ERRORS):
            raise _Anomaly("read") from None
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


#: Only an input record's line holds this: ``type`` is its last key, and a command's own
#: ``"type"`` (inside ``"command"``, or escaped in a raw string) is never followed by ``"h"``.
_INPUT_MARK: Final = b'"type":"input","h":"'


def _last_input(block: bytes) -> int | None:
    """The seq of the last input record in a block of whole lines, or None."""
    i = block.rfind(_INPUT_MARK)
    if i < 0:
        return None
    line = block[block.rfind(b"\n", 0, i) + 1 : block.find(b"\n", i)]
    try:
        seq = orjson.loads(line).get("seq")
    except (orjson.JSONDecodeError, AttributeError):
        raise _Anomaly("json") from None
    if type(seq) is not int:
        raise _Anomaly("seq")
    return seq


def _seq_of(line: bytes) -> int:
    """The seq of one record line, or :class:`_Anomaly`."""
    try:
        seq = orjson.loads(line).get("seq")
    except (orjson.JSONDecodeError, AttributeError):
        raise _Anomaly("json") from None
    if type(seq) is not int:
        raise _Anomaly("seq")
    return seq


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


def read_log(path: str | os.PathLike[str]) -> tuple[Header, list[Event], TornTail | None]:
    """The header, all events and the torn tail (or None) of a log, verified."""
    reader = LogReader(path)
    evs = list(reader.events())
    return reader.header, evs, reader.torn


# --------------------------------------------------------------------------- writer


class _RawOut:
    """An unbuffered file that writes everything it is given (``os.write`` may write less:
    a signal, a pipe whose reader went away, a disk filling up) or raises ``OSError``."""

    def __init__(self, path: str, mode: str) -> None:
        self._f = open(path, mode, buffering=0)  # noqa: SIM115 (owned by the writer)

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        fd = self._f.fileno()
        while view:
            n = os.write(fd, view)
            view = view[n:]
        return len(data)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self._f.fileno()

    def close(self) -> None:
        self._f.close()

    @property
    def closed(self) -> bool:
        return self._f.closed


class LogWriter:
    """Appends sealed records to a log; use :meth:`create` or :meth:`resume`, not the constructor.

    Lines are gathered in memory and handed to the OS in ~1 MiB writes that always end at a
    command boundary (the buffer is only written out before an ``input`` record, on
    :meth:`flush` and on :meth:`close`), so a command's records go out in one ``write`` call
    (see the module docstring). Call :meth:`flush` between commands, never inside one; it
    pushes the records to the OS (and the disk with ``fsync=True``). Seqs must follow on from
    ``last_seq`` with no gap: anything else is a bug in the caller and raises ValueError
    without writing. A failed write is :class:`LogError` (the path and the OS's reason, one
    line); the writer is then broken: every later call raises it again, and :meth:`close`
    only releases the file.
    """

    def __init__(
        self,
        path: str,
        raw: IO[bytes] | _RawOut,
        header: Header,
        last_seq: int,
        last_h: str,
        torn: TornTail | None = None,
    ) -> None:
        self.path = path
        self.header = header
        self.torn = torn  # what resume() cut off, if anything
        self._raw = raw
        self._out: IO[bytes] | _RawOut = raw
        if _is_gz(path):
            # mtime=0 and no file name: the same records always give the same .gz bytes.
            self._out = gzip.GzipFile(  # type: ignore[assignment]
                filename="", mode="ab", fileobj=raw, compresslevel=_GZ_LEVEL, mtime=0
            )
        self._last_seq = last_seq
        self._prev = last_h.encode("ascii")
        self._buf: list[bytes] = []
        self._size = 0
        self._closed = False
        self._failed: LogError | None = None
        #: The OS error that broke the writer, if one did.
        self.failure: OSError | None = None
        self._rename_from = ""  # a resumed .gz: the file written, renamed over path on close

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def last_h(self) -> str:
        return self._prev.decode("ascii")

    @property
    def closed(self) -> bool:
        return self._closed

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], header: Header, *, overwrite: bool = False
    ) -> LogWriter:
        """Start a new log with ``header``; refuses an existing non-empty file unless told.

        The file is written in place (a device or a pipe works too): callers that want the
        destination to appear only when complete write to a temporary name and rename it,
        as :func:`replay.runner.run` does.
        """
        p = os.fspath(path)
        body = encode_header(header)
        line, h = seal("", body)
        try:
            if not overwrite and os.path.isfile(p) and os.path.getsize(p) > 0:
                raise LogExists(f"{p}: already exists and is not empty (not overwriting)")
            raw = _RawOut(p, "wb")
        except OSError as e:
            raise LogError(f"{p}: cannot create: {e.strerror or e}") from None
        w = cls(p, raw, header, 0, "")
        w._buf.append(line)
        w._prev = h.encode("ascii")
        # The header goes out at once: a log whose header never reached the file is unreadable.
        try:
            w.flush()
        except LogError:
            w.close()
            raise
        return w

    @classmethod
    def resume(cls, path: str | os.PathLike[str], *, at: Resume | None = None) -> LogWriter:
        """Open an existing log to append to: verify it, cut a torn tail, continue the chain.

        The log is cut back to its last complete command (the reader's good prefix, see the
        module docstring), or, with ``at``, to just after the record it names (for a caller
        that re-executed the log and knows where its last complete command ends even when no
        tear shows it; the record is checked to be there, :class:`ResumeMismatch` if not;
        ``at.seq == 0`` is the header). Raises the reader's errors (CorruptLog, NotALog,
        ...) and changes nothing if the log is corrupt before its tail.
        """
        p = os.fspath(path)
        reader = LogReader(p)
        torn: TornTail | None = None
        if at is not None:
            if at.seq:
                reader.check_resume(at)
            elif at.offset != len(reader.header_line):
                raise ResumeMismatch(reader._err(f"the header does not end at byte {at.offset}"))
            offset, last_seq, last_h = at.offset, at.seq, at.h.decode("ascii")
            cut = True
        else:
            reader.verify()
            torn = reader.torn
            offset = torn.offset if torn is not None else -1
            last_seq, last_h, cut = reader.last_seq, reader.last_h, torn is not None
        if _is_gz(p):
            return cls._resume_gz(p, reader.header, offset, last_seq, last_h, torn)
        try:
            if cut and os.path.getsize(p) != offset:
                with open(p, "r+b") as f:
                    f.truncate(offset)
                    f.flush()
                    os.fsync(f.fileno())
            raw = _RawOut(p, "ab")
        except OSError as e:
            raise LogError(f"{p}: cannot resume: {e.strerror or e}") from None
        return cls(p, raw, reader.header, last_seq, last_h, torn)

    @classmethod
    def _resume_gz(
        cls,
        p: str,
        header: Header,
        length: int,
        last_seq: int,
        last_h: str,
        torn: TornTail | None,
    ) -> LogWriter:
        """A gzip stream cannot be continued where it was cut: the kept prefix (``length``
        uncompressed bytes; -1: all) is compressed again into ``<log>.resume``, which the
        writer then continues and :meth:`close` renames over the log. Deflate's output
        does not depend on how its input is split, so the result is byte for byte the log
        an uninterrupted writer makes that flushed only after the header (as
        :func:`replay.runner.run` does; another flush is a sync point this cannot know
        about). Until then the log is as it was (a crash leaves it, and a stale
        ``.resume`` file the next resume overwrites)."""
        tmp = p + ".resume"
        try:
            raw = _RawOut(tmp, "wb")
        except OSError as e:
            raise LogError(f"{p}: cannot resume: {e.strerror or e}") from None
        w = cls(p, raw, header, last_seq, last_h, torn)
        w._rename_from = tmp
        try:
            with gzip.open(p, "rb") as src:
                # create() flushes the header alone: so does this, to keep the same bytes.
                head = src.readline(MAX_LINE + 1)
                w._out.write(head)
                w._out.flush()
                left = length - len(head) if length >= 0 else -1  # -1: all of it
                while left:
                    chunk = src.read(min(left, _BUFFER) if left > 0 else _BUFFER)
                    if not chunk:
                        if left < 0:
                            break
                        raise OSError("log shrank while resuming")  # read once already
                    w._out.write(chunk)
                    left -= len(chunk) if left > 0 else 0
        except (OSError, *_GZ_ERRORS) as e:
            w.close_quietly()
            raise LogError(f"{p}: cannot resume: {getattr(e, 'strerror', None) or e}") from None
        return w

    def write(self, event: Event) -> None:
        """Append one event (seq must be ``last_seq + 1``)."""
        if event.seq != self._last_seq + 1 or type(event.seq) is not int:
            raise ValueError(f"event seq {event.seq!r} does not follow {self._last_seq}")
        if self._closed:
            raise ValueError(f"{self.path}: write to a closed log")
        body = encode_event(event)
        line, h = seal_bytes(self._prev, body)
        if len(line) > MAX_LINE:
            raise ValueError(f"event seq {event.seq}: record of {len(line)} bytes > MAX_LINE")
        if self._size >= _BUFFER and type(event) is Input:
            self._drain()  # a command boundary: the buffer holds whole commands only
        self._buf.append(line)
        self._prev = h
        self._last_seq += 1
        self._size += len(line)

    def write_many(self, events: Iterable[Event]) -> None:
        """Append events in order (stops at, and raises for, the first bad one)."""
        write = self.write
        for ev in events:
            write(ev)

    def _fail(self, e: OSError) -> LogError:
        self.failure = e
        self._failed = LogError(f"{self.path}: cannot write: {e.strerror or e}")
        return self._failed

    def _drain(self) -> None:
        if self._failed is not None:
            raise self._failed
        if self._buf:
            data = b"".join(self._buf)
            self._buf.clear()
            self._size = 0
            try:
                self._out.write(data)
            except OSError as e:
                raise self._fail(e) from None

    def flush(self, fsync: bool = False) -> None:
        """Hand buffered records to the OS; with ``fsync`` also wait until they are on disk."""
        if self._closed:
            return
        self._drain()
        try:
            self._out.flush()  # gzip: a sync flush, so a reader sees every record written so far
            if fsync:
                os.fsync(self._raw.fileno())
        except OSError as e:
            raise self._fail(e) from None

    def close(self, fsync: bool = False) -> None:
        """Flush and close (a .gz gets its end-of-member trailer here); with ``fsync`` wait
        until the file is on disk. After a failed write it only releases the file."""
        if self._closed:
            return
        try:
            if self._failed is None:
                self._drain()
                try:
                    if self._out is not self._raw:
                        self._out.close()
                    if fsync or self._rename_from:
                        os.fsync(self._raw.fileno())
                except OSError as e:
                    raise self._fail(e) from None
        finally:
            self._closed = True
            self._raw.close()
            if self._rename_from:
                self._finish_rename()

    def _finish_rename(self) -> None:
        tmp, self._rename_from = self._rename_from, ""
        if self._failed is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return
        try:
            os.replace(tmp, self.path)
        except OSError as e:
            raise self._fail(e) from None

    def close_quietly(self) -> None:
        """Release the file without raising (after an error: what is buffered may be lost)."""
        with contextlib.suppress(LogError):
            self.close()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Close on error too: every record handed to write() is complete and worth keeping.
        # A failed close must not hide the error that is already on its way out.
        if exc_type is None:
            self.close()
        else:
            self.close_quietly()
