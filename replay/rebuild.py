"""Re-executing a log: a fresh exchange from the header's config, fed the log's inputs."""

from __future__ import annotations

import os

import orjson

from clearsim.clearing import Config, Exchange
from clearsim.events.codec import split_record, to_event
from clearsim.events.log import LogReader, TornTail
from clearsim.events.types import Input

_INPUT = b'"type":"input"'


def command_of(ev: Input) -> object:
    """The command to feed back: what the exchange received (a non-object was wrapped)."""
    cmd = ev.command
    return cmd["raw"] if len(cmd) == 1 and "raw" in cmd else cmd


def rebuild(path: str | os.PathLike[str], at: int | None = None) -> tuple[Exchange, LogReader]:
    """The exchange after every command whose input event is at or before seq ``at``.

    A command is atomic: the state includes all the events of the last such command, which
    may run past ``at``; ``Exchange.seq.last`` says where it ends. A log that ends inside
    its last command (re-execution gives events past its end: a write cut at a line end,
    see :mod:`events.log`) is a torn tail: that command is left out, and ``reader.torn``
    and ``reader.last_seq`` say so.
    """
    reader = LogReader(path)
    ex, last = _replay(reader, at)
    seq, offset, h = last
    if seq and (at is None or at >= seq) and reader.torn is None:
        missing = ex.seq.last - reader.last_seq
        if missing > 0:
            ex, _ = _replay(reader, seq - 1)
            reader.torn = TornTail.inside_command(seq, offset, missing)
            reader.last_seq, reader.last_h = seq - 1, h
    return ex, reader


def _replay(reader: LogReader, at: int | None) -> tuple[Exchange, tuple[int, int, str]]:
    """Apply the inputs up to seq ``at``: the exchange, and the seq and byte offset of the
    last input applied with the checksum of the record before it."""
    ex = Exchange(Config.from_dict(reader.header.config))
    offset = len(reader.header_line)
    prev_h = reader.header_h
    last = (0, offset, prev_h)
    for seq, line in reader.lines():
        if _INPUT in line:
            ev = to_event(orjson.loads(line))
            if type(ev) is Input:
                if at is not None and seq > at:
                    break
                ex.apply(command_of(ev))
                last = (seq, offset, prev_h)
        offset += len(line)
        prev_h = split_record(line)[1].decode("ascii")
    return ex, last
