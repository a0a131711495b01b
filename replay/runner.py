"""Running an exchange over a stream of commands into a log file."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs
import orjson

from clearsim.clearing import Config, Exchange
from clearsim.events.codec import Header
from clearsim.events.errors import ClearsimError
from clearsim.events.log import LogWriter
from clearsim.events.types import Rejected

#: A command line longer than this is refused as one malformed command, not read whole.
MAX_COMMAND_LINE = 1 << 20


class InputError(ClearsimError):
    """A file that cannot be read as input; ``str()`` is one line."""


@attrs.define
class RunSummary:
    commands: int = 0
    rejected: int = 0
    events: int = 0
    last_seq: int = 0


def read_commands(path: str | os.PathLike[str]) -> Iterator[object]:
    """Yield each non-blank line of a JSON Lines command file, parsed.

    A line that is not valid JSON is yielded as its text, so the exchange records it and
    rejects it ("malformed command") instead of the run stopping.
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the with below, after the checks
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from e
    with f:
        while True:
            line = f.readline(MAX_COMMAND_LINE + 1)
            if not line:
                return
            if len(line) > MAX_COMMAND_LINE:
                while line and not line.endswith(b"\n"):  # skip the rest of the long line
                    line = f.readline(MAX_COMMAND_LINE)
                yield "<command line longer than 1 MiB>"
                continue
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                yield line.decode("utf-8", "replace").rstrip("\r\n")


def run(
    config: Config,
    commands: Iterable[object],
    log_path: str | Path,
    *,
    seed: int = 0,
    force: bool = False,
) -> tuple[Exchange, RunSummary]:
    """Apply ``commands`` to a fresh exchange, writing every event to ``log_path``."""
    ex = Exchange(config)
    summary = RunSummary()
    with LogWriter.create(log_path, Header.new(config.to_dict(), seed), overwrite=force) as w:
        for cmd in commands:
            events = ex.apply(cmd)
            w.write_many(events)
            summary.commands += 1
            summary.events += len(events)
            if type(events[-1]) is Rejected and events[-1].cause == events[0].seq:
                summary.rejected += 1
    summary.last_seq = ex.seq.last
    return ex, summary
