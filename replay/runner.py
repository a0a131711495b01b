"""Running an exchange over a stream of commands into a log file."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Final

import attrs
import orjson

from clearsim.clearing import Config, Exchange
from clearsim.events.codec import (
    Header,
    LogError,
    LogExists,
    encode_event,
    encode_header,
    seal,
    split_record,
)
from clearsim.events.errors import ClearsimError
from clearsim.events.log import LogReader, LogWriter, Resume
from clearsim.events.types import Event, Input, Rejected
from clearsim.replay.projections.orders import EntryOrders, is_entry_order

#: A command line longer than this is refused as one malformed command, not read whole.
MAX_COMMAND_LINE = 1 << 20
#: A run writes ``LOG.partial`` (``X.partial.gz`` for ``X.gz``) and renames it to ``LOG`` when
#: it has finished; see :func:`partial_path`.
PARTIAL_SUFFIX: Final = ".partial"
#: ``progress(summary, ts)`` is called after every this many commands.
PROGRESS_EVERY: Final = 2048

Commands = Iterable[object] | Callable[[Exchange], Iterable[object]]
Progress = Callable[["RunSummary", int], None]


class InputError(ClearsimError):
    """A file that cannot be read as input; ``str()`` is one line."""


@attrs.define
class RunSummary:
    commands: int = 0
    #: commands the exchange refused (an entry whose IOC remainder expired is not one)
    rejected: int = 0
    events: int = 0
    last_seq: int = 0
    #: With ``resume``: the seq the partial log was continued after (None: not resumed).
    resumed_after: int | None = None
    #: how the traders' entry orders (IOC, FOK, market) ended: filled, partly, not at all
    entries: EntryOrders = attrs.field(factory=EntryOrders)


class CommandFile(Iterator[object]):
    """The commands of a command file, one at a time; :attr:`position` is the bytes read."""

    def __init__(self, f: IO[bytes]) -> None:
        self._read = [0]  # shared with the generator (no cycle: it closes the file on drop)
        self._lines = _command_lines(f, self._read)

    @property
    def position(self) -> int:
        return self._read[0]

    def __next__(self) -> object:
        return next(self._lines)


def read_commands(path: str | os.PathLike[str]) -> CommandFile:
    """Each non-blank line of a JSON Lines command file, parsed.

    The file is opened here, before the first command is asked for (a missing file is an
    :class:`InputError` at once, before any output is touched). A line that is not valid
    JSON is yielded as its text, so the exchange records it and rejects it ("malformed
    command") instead of the run stopping.
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by _command_lines when it ends
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from e
    return CommandFile(f)


def _command_lines(f: IO[bytes], read: list[int]) -> Iterator[object]:
    with f:
        while True:
            line = f.readline(MAX_COMMAND_LINE + 1)
            read[0] += len(line)
            if not line:
                return
            if len(line) > MAX_COMMAND_LINE:
                while line and not line.endswith(b"\n"):  # skip the rest of the long line
                    line = f.readline(MAX_COMMAND_LINE)
                    read[0] += len(line)
                yield "<command line longer than 1 MiB>"
                continue
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                yield line.decode("utf-8", "replace").rstrip("\r\n")


def partial_path(log_path: str | os.PathLike[str]) -> str:
    """Where a run into ``log_path`` writes until it has finished: ``LOG.partial``, or
    ``LOG.partial.gz`` for ``LOG.gz`` (so it is compressed, and read, as ``LOG`` is)."""
    p = os.fspath(log_path)
    if p.endswith(".gz"):
        return p[:-3] + PARTIAL_SUFFIX + ".gz"
    return p + PARTIAL_SUFFIX


def run(
    config: Config,
    commands: Commands,
    log_path: str | Path,
    *,
    seed: int = 0,
    force: bool = False,
    resume: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
    progress: Progress | None = None,
) -> tuple[Exchange, RunSummary]:
    """Apply ``commands`` to a fresh exchange, writing every event to ``log_path``.

    ``commands`` may also be a function of the exchange returning them: a generator that
    reads the exchange as its commands are applied (one at a time, each before the next is
    asked for), such as a scenario's ``open_interest`` arrivals. ``progress(summary, ts)``
    is called every :data:`PROGRESS_EVERY` commands with the clock of the last one.

    The log is written to ``LOG.partial`` beside it and renamed to ``log_path`` only when
    the run has finished (an output that is not a regular file, such as a pipe, is written
    directly). A run that fails removes its partial file: nothing is left behind and the
    destination is as it was. Refused, before anything is written: an existing non-empty
    ``log_path`` without ``force``, a ``LOG.partial`` left by an interrupted run without
    ``force``, and an output that is the same file as one of ``inputs`` (the files the
    commands and config come from), even with ``force``.

    With ``resume``, a ``LOG.partial`` left by a killed run of the same config, seed and
    commands is continued: the commands are re-applied to a fresh exchange, the events the
    partial log already holds are checked against them (byte for byte, chain verified) and
    not written again, the log is cut back to its last complete command, and the rest is
    appended; the result is the log an uninterrupted run writes, byte for byte (a ``.gz``
    too). Without a partial file it is a plain run. A partial log of another run is
    refused (start over with ``force``).
    """
    out = _Output(log_path, inputs)
    ex = Exchange(config)
    summary = RunSummary()
    header = Header.new(config.to_dict(), seed)
    stream = iter(commands(ex) if callable(commands) else commands)
    tick = _Ticker(summary, ex, progress)
    if resume and not force and os.path.lexists(out.partial):
        w, pending = _continue(out, header, ex, stream, summary, tick)
        with out.finishing(w):
            w.write_many(pending)
            _apply(ex, stream, w, summary, tick)
    else:
        out.refuse_existing(force)
        w = out.create(header)
        with out.finishing(w):
            _apply(ex, stream, w, summary, tick)
    summary.last_seq = ex.seq.last
    tick.done()
    return ex, summary


class _Ticker:
    """Calls ``progress`` every :data:`PROGRESS_EVERY` commands (and once at the end)."""

    def __init__(self, summary: RunSummary, ex: Exchange, progress: Progress | None) -> None:
        self.summary, self.ex, self.progress = summary, ex, progress
        self.next = PROGRESS_EVERY if progress is not None else -1

    def __call__(self) -> None:
        """Called after each command: cheap unless a report is due."""
        if self.summary.commands == self.next and self.progress is not None:
            self.next += PROGRESS_EVERY
            self.progress(self.summary, self.ex.ts)

    def done(self) -> None:
        if self.progress is not None:
            self.progress(self.summary, self.ex.ts)


def _continue(
    out: _Output,
    header: Header,
    ex: Exchange,
    commands: Iterator[object],
    summary: RunSummary,
    tick: Callable[[], None],
) -> tuple[LogWriter, list[Event]]:
    """Re-apply ``commands`` while the partial log holds their events (each must be the
    logged record, byte for byte; the reader checks the chain), up to its last complete
    command; then open it for appending there. The writer, and the events of the first
    command the log does not hold in full (to write first)."""
    path = out.partial
    reader = LogReader(path)
    if reader.header_line != seal("", encode_header(header))[0]:
        raise LogError(
            f"{path}: not a partial log of this run (its header differs: config, seed or "
            "engine); start over with --force"
        )
    lines = reader.lines()
    pending: list[Event] = []
    # The last complete command's last record: seq, the byte after it, its length and h.
    offset = len(reader.header_line)
    kept = Resume(0, offset, offset, reader.header_h.encode("ascii"))
    try:
        for cmd in commands:
            events = ex.apply(cmd)
            _count(summary, events)
            tick()
            line = b""
            for ev in events:
                nxt = next(lines, None)
                if nxt is None:
                    pending = events  # the log ends before or inside this command
                    break
                line = nxt[1]
                if split_record(line)[0] != encode_event(ev):
                    raise LogError(
                        f"{path}: record seq {nxt[0]} is not what this run produces (other "
                        "commands or another engine?); start over with --force"
                    )
                offset += len(line)
            if pending:
                break
            kept = Resume(events[-1].seq, offset, len(line), split_record(line)[1])
        else:
            if next(lines, None) is not None:
                raise LogError(
                    f"{path}: holds more records than this run produces; start over with --force"
                )
    finally:
        lines.close()
    summary.resumed_after = kept.seq
    return LogWriter.resume(path, at=kept), pending


def _count(summary: RunSummary, events: list[Event]) -> None:
    summary.commands += 1
    summary.events += len(events)
    if type(events[-1]) is Rejected and events[-1].cause == events[0].seq:
        summary.rejected += 1
    first = events[0]
    if type(first) is Input and is_entry_order(first.command):  # type: ignore[attr-defined]
        summary.entries.command(events)


def _apply(
    ex: Exchange,
    commands: Iterable[object],
    w: LogWriter,
    summary: RunSummary,
    tick: Callable[[], None],
) -> None:
    """Apply each command, writing its events as one command."""
    for cmd in commands:
        events = ex.apply(cmd)
        w.write_many(events)
        _count(summary, events)
        tick()


class _Output:
    """Where a run writes: the destination, the partial file beside it, the checks."""

    def __init__(self, log_path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]]):
        self.dest = os.fspath(log_path)
        # Write through a symlink, as opening the path would: the rename goes to its target.
        self.target = os.path.realpath(self.dest) if os.path.islink(self.dest) else self.dest
        try:
            st: os.stat_result | None = os.stat(self.target)
        except FileNotFoundError:
            st = None
        except OSError as e:
            raise LogError(f"{self.dest}: cannot write: {e.strerror or e}") from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise LogError(f"{self.dest}: is a directory")
        #: Not a regular file (a device, a pipe): written directly, never renamed over.
        self.direct = st is not None and not stat.S_ISREG(st.st_mode)
        self.partial = partial_path(self.target)
        self.writing = self.target if self.direct else self.partial
        for src in inputs:
            for mine in (self.target, self.partial):
                if _same_file(mine, src):
                    raise LogError(
                        f"{self.dest}: is the input {os.fspath(src)}; refusing to write over "
                        "an input (even with --force)"
                    )

    def refuse_existing(self, force: bool) -> None:
        if self.direct or force:
            return
        if os.path.isfile(self.target) and os.path.getsize(self.target) > 0:
            raise LogExists(f"{self.dest}: already exists (use --force to overwrite it)")
        if os.path.lexists(self.partial):
            raise LogExists(
                f"{self.partial}: left by an interrupted run into {self.dest}; continue it "
                "with --resume, or start over with --force"
            )

    def create(self, header: Header) -> LogWriter:
        try:
            return LogWriter.create(self.writing, header, overwrite=True)
        except LogError as e:
            self._remove_partial()
            msg, mine = str(e), f"{self.partial}: "
            if self.direct or not msg.startswith(mine):
                raise
            raise LogError(f"{self.dest}: {msg[len(mine):]} (writing {self.partial})") from None

    @contextmanager
    def finishing(self, w: LogWriter) -> Iterator[None]:
        """Close ``w`` and rename the partial file into place if the body succeeds; on an
        error remove it (an interrupt keeps it, for ``--resume``)."""
        try:
            yield
            w.close(fsync=not self.direct)
            if not self.direct:
                try:
                    os.replace(self.partial, self.target)
                except OSError as e:
                    raise LogError(
                        f"{self.dest}: cannot rename into place: {e.strerror or e}"
                    ) from None
        except Exception:
            self._discard(w)
            if w.failure is not None and not self.direct:
                why = w.failure.strerror or w.failure
                raise LogError(f"{self.dest}: cannot write: {why}") from None
            raise
        except BaseException:
            w.close_quietly()
            raise

    def _discard(self, w: LogWriter) -> None:
        w.close_quietly()
        self._remove_partial()

    def _remove_partial(self) -> None:
        if not self.direct:
            with suppress(FileNotFoundError):
                os.unlink(self.partial)


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
