"""A scenario's ``[market]``: an imported day's commands, streamed in ts order.

:func:`stream` reads a command file line by line (several: merged by ts, each read a line
at a time; at one ts the file listed first goes first), or runs an importer
(:func:`replay.importers.open_stream`) in-process, never holding the day in memory. Every
command passes through as it was written (``index_price``, ``funding``, and any other type:
the engine is the judge of what it accepts); only its ``ts`` is read here, and it must be
an integer that never goes back in time, or the generator could not merge the stream with
the synthetic market (:class:`.ScenarioError`, naming the file and line).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

import orjson

from clearsim.replay.importers import open_stream
from clearsim.replay.importers._common import ImportFailed
from clearsim.replay.scenarios.model import Market, MarketCommands, MarketImport, ScenarioError

__all__ = ["first_ts", "last_ts", "stream"]

#: A command line longer than this is refused (the runner's own limit on a command file).
MAX_LINE: Final = 1 << 20
#: How much of a command file's end :func:`last_ts` reads to find its last command.
_TAIL: Final = 1 << 16
#: Importer inputs up to this size are read through once to learn the market's end.
SMALL_IMPORT: Final = 16 << 20


def stream(m: Market) -> Iterator[dict[str, Any]]:
    """The market's commands, in ts order (non-decreasing), as dicts."""
    if isinstance(m, MarketCommands):
        files = [_checked(_file_commands(p), str(p)) for p in m.paths]
        if len(files) == 1:
            return files[0]
        # Each file is checked in order on its own; heapq.merge is stable, so at one ts the
        # file listed first goes first, and the merge reads each file one line at a time.
        return heapq.merge(*files, key=_ts)
    return _checked(_imported(m), ", ".join(map(str, m.files)))


def _ts(c: dict[str, Any]) -> int:
    ts: int = c["ts"]
    return ts


def first_ts(m: Market) -> int:
    """The ts of the market's first command (reads just that far)."""
    it = stream(m)
    try:
        first = next(it, None)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
    if first is None:
        raise ScenarioError(f"market: {_name(m)}: holds no commands")
    ts: int = first["ts"]
    return ts


def last_ts(m: Market) -> int | None:
    """The ts of the market's last command, for a progress display: a command file's is
    read from its end; an importer's inputs are read through once when they are small (at
    most :data:`SMALL_IMPORT` bytes, a day of bars), else its end is not known (None)."""
    if isinstance(m, MarketCommands):
        ends = [_file_last_ts(p) for p in m.paths]
        return None if None in ends else max(e for e in ends if e is not None)
    try:
        if sum(os.path.getsize(p) for p in m.files) > SMALL_IMPORT:
            return None
        last = None
        for c in stream(m):
            last = c["ts"]
        return last
    except (OSError, ScenarioError):
        return None


def _file_last_ts(path: Path) -> int | None:
    """The ts of a command file's last command, read from its end (None: not found)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL))
            tail = f.read()
    except OSError:
        return None
    for line in reversed(tail.splitlines()[1 if size > _TAIL else 0 :]):
        try:
            c = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        ts = c.get("ts") if isinstance(c, dict) else None
        if type(ts) is int:
            return ts
    return None


def _name(m: Market) -> str:
    return ", ".join(map(str, m.paths if isinstance(m, MarketCommands) else m.files))


def _file_commands(path: Path) -> Iterator[tuple[int, object]]:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by _lines when it ends
    except OSError as e:
        raise ScenarioError(f"market.commands: {path}: {e.strerror or e}") from None
    return _lines(f, str(path))


def _lines(f: IO[bytes], name: str) -> Iterator[tuple[int, object]]:
    with f:
        for n, line in enumerate(iter(lambda: f.readline(MAX_LINE + 1), b""), 1):
            if len(line) > MAX_LINE:
                raise ScenarioError(f"market: {name}:{n}: a line longer than 1 MiB")
            if not line.strip():
                continue
            try:
                yield n, orjson.loads(line)
            except orjson.JSONDecodeError:
                raise ScenarioError(f"market: {name}:{n}: not a JSON command") from None


def _imported(m: MarketImport) -> Iterator[tuple[int, object]]:
    try:
        options: dict[str, Any] = dict(m.options)
        cmds, _ = open_stream(
            m.format, [str(p) for p in m.files], symbol=m.symbol, every=m.every, **options
        )
        yield from enumerate(cmds, 1)
    except ImportFailed as e:
        raise ScenarioError(f"market.import: {e}") from None


def _checked(rows: Iterator[tuple[int, object]], name: str) -> Iterator[dict[str, Any]]:
    """Each command, after checking its ts is an integer that does not go back in time."""
    last = -1
    for n, c in rows:
        ts = c.get("ts") if isinstance(c, dict) else None
        if type(ts) is not int or ts < 0:
            raise ScenarioError(f"market: {name}: command {n}: no integer ts (µs)")
        if ts < last:
            raise ScenarioError(
                f"market: {name}: command {n}: ts {ts} goes back in time (after {last})"
            )
        last = ts
        yield c  # type: ignore[misc]  # a dict: checked above
