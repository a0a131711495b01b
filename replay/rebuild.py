"""Re-executing a log: a fresh exchange from the header's config, fed the log's inputs."""

from __future__ import annotations

import os

from clearsim.clearing import Config, Exchange
from clearsim.events.log import LogReader
from clearsim.events.types import Input


def command_of(ev: Input) -> object:
    """The command to feed back: what the exchange received (a non-object was wrapped)."""
    cmd = ev.command
    return cmd["raw"] if len(cmd) == 1 and "raw" in cmd else cmd


def rebuild(path: str | os.PathLike[str], at: int | None = None) -> tuple[Exchange, LogReader]:
    """The exchange after every command whose input event is at or before seq ``at``.

    A command is atomic: the state includes all the events of the last such command, which
    may run past ``at``; ``Exchange.seq.last`` says where it ends.
    """
    reader = LogReader(path)
    ex = Exchange(Config.from_dict(reader.header.config))
    for ev in reader.events():
        if type(ev) is Input:
            if at is not None and ev.seq > at:
                break
            ex.apply(command_of(ev))
    return ex, reader
