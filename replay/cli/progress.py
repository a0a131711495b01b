"""A progress bar for long verbs, on a terminal only.

:func:`progress` yields a function to call once per item done (with a short note: the last
run's day and seed). The bar is drawn on stderr when it is a terminal, with ``rich`` when it
is installed (a plain one-line counter otherwise); in a pipe, or with ``quiet``, nothing is
drawn at all, so logs and captured output stay clean.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

__all__ = ["progress"]

Advance = Callable[[str], None]


def _nothing(note: str) -> None:
    return None


@contextmanager
def progress(
    total: int | None, what: str, *, quiet: bool = False, stream: IO[str] | None = None
) -> Iterator[Advance]:
    """``with progress(n, "runs") as done: ... done("crash.toml seed 1")``; ``total`` None
    counts items without a bar's end (a search that does not know how many it will make)."""
    out = sys.stderr if stream is None else stream
    if quiet or total == 0 or not out.isatty():
        yield _nothing
        return
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
    except ImportError:
        with _plain(total, what, out) as advance:
            yield advance
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"),
    )
    with Progress(*columns, console=Console(file=out), transient=False) as bar:
        task = bar.add_task(what, total=total, note="")

        def advance(note: str) -> None:
            bar.update(task, advance=1, note=note)

        yield advance


@contextmanager
def _plain(total: int | None, what: str, out: IO[str]) -> Iterator[Advance]:
    done = 0
    t0 = time.monotonic()

    def advance(note: str) -> None:
        nonlocal done
        done += 1
        elapsed = time.monotonic() - t0
        if total is None:
            out.write(f"\r{what} {done}  {elapsed:.0f} s  {note}\033[K")
        else:
            eta = elapsed / done * (total - done)
            out.write(f"\r{what} {done}/{total}  {elapsed:.0f} s, eta {eta:.0f} s  {note}\033[K")
        out.flush()

    try:
        yield advance
    finally:
        if done:
            out.write("\n")
            out.flush()
