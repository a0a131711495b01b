"""Progress of a long verb on the terminal (``run``, ``demo``, ``import``, ``verify``,
``diff``, ``fund``, ``cascade``).

Shown on stderr with ``rich`` when stderr is a terminal, ``rich`` is installed (the
``progress`` extra: ``pip install 'clearsim[progress]'``) and ``--quiet`` was not given;
otherwise :func:`meter` hands out a meter that does nothing, so a pipe or a file never
receives a progress bar's control codes. The bar is transient: it is gone when the verb
prints its result. The verb's domain function reports through a callback (every few
thousand items, so it costs nothing measurable; the log readers' ``progress``, see
:data:`events.log.Progress`); the meter shows the count, the rate per second of wall time
and, when the total is known, the share done and the time left. The readers' position is
in bytes, so a verb over a ``.gz`` log (whose uncompressed size is not known) has no total.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

__all__ = ["Meter", "meter", "runs"]


class Meter:
    """A progress display; this base class shows nothing."""

    def update(self, count: int, position: int | None = None, note: str = "") -> None:
        """``count`` items done (the rate is of these), ``position`` along the total (default
        ``count``), and a short ``note`` (the simulated clock, say)."""


class _RichMeter(Meter):
    def __init__(self, progress: Any, task: Any) -> None:
        self.progress, self.task = progress, task
        self.t0 = time.perf_counter()

    def update(self, count: int, position: int | None = None, note: str = "") -> None:
        elapsed = time.perf_counter() - self.t0
        rate = f"{count / elapsed:,.0f}/s" if elapsed > 0 else ""
        self.progress.update(
            self.task,
            completed=count if position is None else position,
            count=f"{count:,}",
            rate=rate,
            note=note,
        )


def enabled(quiet: bool = False) -> bool:
    """Whether :func:`meter` would show anything."""
    if quiet or not sys.stderr.isatty():
        return False
    try:
        import rich.progress  # noqa: F401 - only whether it is there
    except ImportError:
        return False
    return True


@contextmanager
def meter(
    what: str, unit: str, total: int | None = None, *, quiet: bool = False
) -> Iterator[Meter]:
    """A meter for ``what`` (counting ``unit``), over ``total`` positions if known."""
    if not enabled(quiet):
        yield Meter()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [TextColumn("[bold]{task.description}")]
    if total:
        columns += [BarColumn(), TaskProgressColumn()]
    columns += [
        TextColumn("{task.fields[count]} " + unit),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[note]}"),
    ]
    if total:
        columns += [TextColumn("ETA"), TimeRemainingColumn()]
    else:
        columns += [TimeElapsedColumn()]
    console = Console(file=sys.stderr)
    with Progress(*columns, console=console, transient=True) as p:
        task = p.add_task(what, total=total or None, count="0", rate="", note="")
        yield _RichMeter(p, task)


# A counter of whole items (a sweep's runs): one call per item done, with its label; a
# plain one-line counter when rich is missing, since a sweep is long even without it.
Advance = Callable[[str], None]


def _nothing(note: str) -> None:
    return None


@contextmanager
def runs(
    total: int | None, what: str, *, quiet: bool = False, stream: IO[str] | None = None
) -> Iterator[Advance]:
    """``with runs(n, "runs") as done: ... done("crash.toml seed 1")``; ``total`` None
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
