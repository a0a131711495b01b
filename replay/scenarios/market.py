"""A scenario's ``[market]``: an imported day's commands, streamed in ts order.

:func:`stream` reads a command file line by line, or runs an importer
(:func:`replay.importers.open_stream`) in-process, never holding the day in memory. Every
command passes through as it was written (``index_price``, ``funding``, and any other type:
the engine is the judge of what it accepts); only its ``ts`` is read here, and it must be
an integer that never goes back in time, or the generator could not merge the stream with
the synthetic market (:class:`.ScenarioError`, naming the file and line).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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
        return _checked(_file_commands(m), str(m.path))
    return _checked(_imported(m), ", ".join(map(str, m.files)))


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
    if not isinstance(m, MarketCommands):
        try:
            if sum(os.path.getsize(p) for p in m.files) > SMALL_IMPORT:
                return None
            last = None
            for c in stream(m):
                last = c["ts"]
            return last
        except (OSError, ScenarioError):
            return None
    try:
        with open(m.path, "rb") as f:
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
    return str(m.path) if isinstance(m, MarketCommands) else ", ".join(map(str, m.files))


def _file_commands(m: MarketCommands) -> Iterator[tuple[int, object]]:
    try:
        f = open(m.path, "rb")  # noqa: SIM115 - closed by _lines when it ends
    except OSError as e:
        raise ScenarioError(f"market.commands: {m.path}: {e.strerror or e}") from None
    return _lines(f, str(m.path))


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
