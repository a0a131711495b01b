"""Historical importers: real market data -> a command file (DESIGN §9, issue 12).

``import_files(fmt, inputs, out, **options)`` streams each input through its format's
reader (:mod:`.tardis`, :mod:`.bars`, :mod:`.binance`), merges the per-file streams by ts
(ties keep the inputs' order), optionally thins the prices to one per ``every`` window, and
writes one JSON command per line to ``OUT.partial``, renamed to ``OUT`` on success. Decimal
strings are copied from the files; no float is ever made. This slice covers prices and
funding (no order-book liquidity yet).
"""

from __future__ import annotations

import heapq
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import orjson

from clearsim.replay.importers import bars, binance, tardis
from clearsim.replay.importers._common import Command, ImportFailed, Source

__all__ = [
    "FORMATS",
    "ImportFailed",
    "ImportSummary",
    "import_files",
    "open_stream",
    "parse_every",
    "summary_text",
    "thin",
]

Reader = Callable[..., Iterator[Command]]

#: format name -> (reader, the options it takes besides ``symbol``)
FORMATS: dict[str, tuple[Reader, tuple[str, ...]]] = {
    "tardis": (tardis.read, ("price",)),
    "bars": (bars.read, ("path",)),
    "binance": (binance.read, ()),
}


@attrs.frozen
class ImportSummary:
    rows: int
    commands: int
    skipped: int
    first_ts: int | None
    last_ts: int | None
    notes: tuple[str, ...] = ()


_UNITS = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}


def parse_every(text: str) -> int:
    """``60s``, ``5m``, ``1h`` -> µs."""
    m = re.fullmatch(r"(\d+)([smh])", text.strip())
    if not m or int(m.group(1)) == 0:
        raise ImportFailed(f"--every {text!r}: expected a positive duration like 60s, 5m, 1h")
    return int(m.group(1)) * _UNITS[m.group(2)]


def thin(commands: Iterable[Command], every_us: int) -> Iterator[Command]:
    """At most one ``index_price`` per symbol per ``every_us`` window (``ts // every_us``),
    the last of the window; other commands pass, held with the window so the output stays
    in ts order (ties in arrival order)."""
    window: int | None = None
    prices: dict[str, tuple[int, Command]] = {}
    others: list[tuple[int, Command]] = []

    def flush() -> Iterator[Command]:
        held = others + list(prices.values())
        held.sort(key=lambda x: (x[1]["ts"], x[0]))
        for _, c in held:
            yield c

    for n, c in enumerate(commands):
        w = c["ts"] // every_us
        if w != window:
            yield from flush()
            prices.clear()
            others.clear()
            window = w
        if c["type"] == "index_price":
            prices.pop(c["symbol"], None)
            prices[c["symbol"]] = (n, c)
        else:
            others.append((n, c))
    yield from flush()


def open_stream(
    fmt: str,
    inputs: list[str],
    *,
    symbol: str | None = None,
    every: str | None = None,
    skip_bad: bool = False,
    **options: Any,
) -> tuple[Iterator[Command], list[Source]]:
    """The commands of ``inputs`` (format ``fmt``), merged by ts and streamed (nothing is
    read until the first command is asked for), and the sources that count their rows. The
    options and the inputs' existence are checked now (:class:`ImportFailed`)."""
    if fmt not in FORMATS:
        raise ImportFailed(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    reader, takes = FORMATS[fmt]
    extra = {k: v for k, v in options.items() if v is not None}
    for k in extra:
        if k not in takes:
            raise ImportFailed(f"format {fmt}: option {k!r} does not apply")
    if not inputs:
        raise ImportFailed("import: expected at least one input file")
    every_us = parse_every(every) if every is not None else None
    for i in inputs:
        if not os.path.exists(i):
            raise ImportFailed(f"{i}: no such file")
    sources = [Source(i, skip_bad=skip_bad) for i in inputs]
    streams = [reader(s, symbol=symbol, **extra) for s in sources]
    merged: Iterator[Command] = heapq.merge(*streams, key=lambda c: c["ts"])
    if every_us is not None:
        merged = thin(merged, every_us)
    return merged, sources


#: ``progress(rows, commands)``: called every this many commands while importing.
PROGRESS_EVERY = 4096


def import_files(
    fmt: str,
    inputs: list[str],
    out: str | os.PathLike[str],
    *,
    symbol: str | None = None,
    every: str | None = None,
    skip_bad: bool = False,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> ImportSummary:
    """Import ``inputs`` (format ``fmt``) into the command file ``out``; ``progress(rows
    read, commands written)`` is called every :data:`PROGRESS_EVERY` commands."""
    out_p = Path(out)
    for i in inputs:
        if out_p.exists() and os.path.exists(i) and os.path.samefile(i, out_p):
            raise ImportFailed(f"{out}: the output is one of the inputs")
    merged, sources = open_stream(
        fmt, inputs, symbol=symbol, every=every, skip_bad=skip_bad, **options
    )
    if out_p.exists() and not force:
        raise ImportFailed(f"{out}: exists (give --force to overwrite it)")
    partial = out_p.with_name(out_p.name + ".partial")
    n, first, last = 0, None, None
    try:
        with open(partial, "wb") as f:
            for c in merged:
                f.write(orjson.dumps(c) + b"\n")
                n += 1
                if progress is not None and not n % PROGRESS_EVERY:
                    progress(sum(s.rows for s in sources), n)
                if first is None:
                    first = c["ts"]
                last = c["ts"]
        os.replace(partial, out_p)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise ImportFailed(f"{out}: {e.strerror or e}") from e
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    notes = tuple(dict.fromkeys(f"{s.path}: {t}" for s in sources for t in s.notes))
    return ImportSummary(
        rows=sum(s.rows for s in sources),
        commands=n,
        skipped=sum(s.skipped for s in sources),
        first_ts=first,
        last_ts=last,
        notes=notes,
    )


def summary_text(s: ImportSummary, out: str) -> str:
    """What ``clearsim import`` prints."""
    span = "" if s.first_ts is None else f", ts {s.first_ts}..{s.last_ts} µs"
    lines = [
        f"{s.rows:,} rows read ({s.skipped:,} skipped) -> {s.commands:,} commands{span}, "
        f"written to {out}"
    ]
    lines += [f"note: {n}" for n in s.notes]
    return "".join(line + "\n" for line in lines)
