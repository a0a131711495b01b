"""Historical importers: real market data -> a command file (DESIGN §9, issue 12).

``import_files(fmt, inputs, out, **options)`` streams each input through its format's
reader (:mod:`.tardis`, :mod:`.binance`, :mod:`.hftbacktest`, :mod:`.bars`), merges the
per-file streams by ts (ties keep the inputs' order), optionally thins the prices to one per
``every`` window, and writes one JSON command per line to ``OUT.partial``, renamed to
``OUT`` on success. Decimal strings are copied from the files; no float is ever made.
Memory stays constant: readers hand over blocks of lines, and the only state kept is the
order book (bounded by the market's depth, not by the file's length).

What comes out: ``index_price`` and ``funding`` (the oracle), and with ``book`` the market's
liquidity as ``market_level`` commands of the reserved ``#market`` account, with its
historical trades as ``#market`` IOC orders (see :mod:`._options`). Liquidations are
reference records, not commands: they go to a sidecar file, ``OUT`` with
``.liquidations.jsonl`` for its ``.jsonl`` (or ``liquidations=FILE``), written only when
an input has some.
"""

from __future__ import annotations

import heapq
import operator
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs
import orjson

from clearsim.replay.importers import bars, binance, hftbacktest, tardis
from clearsim.replay.importers._common import (
    BATCH,
    Batch,
    Command,
    ImportFailed,
    LineSpill,
    Source,
    first_line,
)
from clearsim.replay.importers._grid import grid_table
from clearsim.replay.importers._options import Options, TradesAs, parse_book

__all__ = [
    "FORMATS",
    "ImportFailed",
    "ImportSummary",
    "import_files",
    "parse_every",
    "sidecar_path",
    "summary_text",
    "thin",
]

Reader = Callable[[Source, Options], Iterator[Batch]]

_BOOK = ("book", "trades", "tick_size", "lot_size", "config")
#: format name -> (reader, the options it takes besides symbol, every, skip_bad, force)
FORMATS: dict[str, tuple[Reader, tuple[str, ...]]] = {
    "tardis": (tardis.read, ("price", "funding", "liquidations", *_BOOK)),
    "binance": (binance.read, ("funding", *_BOOK)),
    "hftbacktest": (hftbacktest.read, ("price", "funding", "liquidations", *_BOOK)),
    "bars": (bars.read, ("path", "funding")),
}

#: the first letter of each command type, as the writer counts them (line[9])
_TYPES = {"i": "index_price", "f": "funding", "m": "market_level", "o": "order"}


@attrs.frozen
class ImportSummary:
    rows: int
    commands: int
    skipped: int
    first_ts: int | None
    last_ts: int | None
    notes: tuple[str, ...] = ()
    #: command type -> count
    by_type: tuple[tuple[str, int], ...] = ()
    rounded: int = 0
    gaps: int = 0
    liquidations: int = 0
    liquidations_path: str | None = None


_UNITS = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}


def parse_every(text: str) -> int:
    """``60s``, ``5m``, ``1h`` -> µs."""
    m = re.fullmatch(r"(\d+)([smh])", text.strip())
    if not m or int(m.group(1)) == 0:
        raise ImportFailed(f"--every {text!r}: expected a positive duration like 60s, 5m, 1h")
    return int(m.group(1)) * _UNITS[m.group(2)]


T = TypeVar("T")


def _thin(
    items: Iterable[T], every_us: int, ts_of: Callable[[T], int], key_of: Callable[[T], Any]
) -> Iterator[T]:
    """At most one price (``key_of`` not None: its symbol) per symbol per ``every_us``
    window (``ts // every_us``), the last of the window; other items pass, held with the
    window so the output stays in ts order (ties in arrival order)."""
    window: int | None = None
    prices: dict[Any, tuple[int, T]] = {}
    others: list[tuple[int, T]] = []

    def flush() -> Iterator[T]:
        held = others + list(prices.values())
        held.sort(key=lambda x: (ts_of(x[1]), x[0]))
        for _, c in held:
            yield c

    for n, c in enumerate(items):
        w = ts_of(c) // every_us
        if w != window:
            yield from flush()
            prices.clear()
            others.clear()
            window = w
        k = key_of(c)
        if k is not None:
            prices.pop(k, None)
            prices[k] = (n, c)
        else:
            others.append((n, c))
    yield from flush()


def thin(commands: Iterable[Command], every_us: int) -> Iterator[Command]:
    """:func:`_thin` over command dicts (an ``index_price`` is a price)."""
    return _thin(
        commands,
        every_us,
        lambda c: int(c["ts"]),
        lambda c: c["symbol"] if c["type"] == "index_price" else None,
    )


_INDEX = '{"type":"index_price"'


def _line_key(rec: tuple[int, str]) -> str | None:
    if rec[1].startswith(_INDEX):
        return str(orjson.loads(rec[1])["symbol"])
    return None


def _pairs(batches: Iterable[Batch]) -> Iterator[tuple[int, str]]:
    for ts, lines in batches:
        yield from zip(ts, lines, strict=True)


def _batches(pairs: Iterable[tuple[int, str]]) -> Iterator[Batch]:
    ts: list[int] = []
    lines: list[str] = []
    for t, line in pairs:
        ts.append(t)
        lines.append(line)
        if len(lines) >= BATCH:
            yield ts, lines
            ts, lines = [], []
    if lines:
        yield ts, lines


def _funding_only(src: Source, opts: Options) -> Iterator[Batch]:
    """``--funding FILE``: the funding commands of a tardis derivative_ticker or a binance
    funding file (found by its header)."""
    head = first_line(src)
    if head is None:
        return
    names = {c.lower() for c in head[0]}
    if "funding_timestamp" in names:
        reader: Reader = tardis.read
    elif "calc_time" in names or "funding rate" in names:
        reader = binance.read
    else:
        raise ImportFailed(
            f"{src.path}:{head[2]}: --funding: not a tardis derivative_ticker or a binance "
            "funding file"
        )
    for ts, lines in reader(src, opts):
        keep = [(t, x) for t, x in zip(ts, lines, strict=True) if x[9] == "f"]
        if keep:
            yield [k[0] for k in keep], [k[1] for k in keep]


def sidecar_path(out: str | os.PathLike[str]) -> Path:
    """The default liquidations file beside ``out``: ``day.jsonl`` -> ``day.liquidations.jsonl``."""
    p = Path(out)
    return p.with_name(p.name.removesuffix(".jsonl") + ".liquidations.jsonl")


def _check_output(target: Path, inputs: list[str], force: bool) -> None:
    for i in inputs:
        if target.exists() and os.path.samefile(i, target):
            raise ImportFailed(f"{target}: the output is one of the inputs")
    if target.exists() and not force:
        raise ImportFailed(f"{target}: exists (give --force to overwrite it)")


def _options(
    fmt: str,
    symbol: str | None,
    given: dict[str, Any],
) -> Options:
    takes = FORMATS[fmt][1]
    for k, v in given.items():
        if v is not None and k not in takes:
            raise ImportFailed(f"format {fmt}: option {k!r} does not apply")
    depth, top = parse_book(given.get("book"))
    trades = given.get("trades")
    if trades is None:
        mode = TradesAs.ORDERS if depth else TradesAs.PRICES
    else:
        try:
            mode = TradesAs(trades)
        except ValueError:
            raise ImportFailed(f"--trades {trades!r}: expected prices, orders or both") from None
    price = given.get("price") or "index"
    if price not in ("index", "mark"):
        raise ImportFailed(f"--price {price!r}: expected index or mark")
    path = given.get("path") or "close"
    if path not in ("close", "ohlc"):
        raise ImportFailed(f"--path {path!r}: expected close or ohlc")
    grids = grid_table(given.get("tick_size"), given.get("lot_size"), given.get("config"))
    return Options(
        symbol=symbol, depth=depth, top=top, trades=mode, price=price, path=path, grids=grids
    )


def _merged(
    reader: Reader,
    opts: Options,
    sources: list[Source],
    funding_file: str | None,
    skip_bad: bool,
    every_us: int | None,
) -> Iterable[Batch]:
    """The sources' batches merged by ts (ties keep the inputs' order), with the funding
    file's funding merged in and the prices thinned to one per ``every_us`` window."""
    streams = [reader(s, opts) for s in sources]
    if funding_file:
        fsrc = Source(funding_file, skip_bad=skip_bad)
        sources.append(fsrc)
        streams.append(_funding_only(fsrc, opts))
    if len(streams) == 1 and every_us is None:
        return streams[0]
    pairs: Iterable[tuple[int, str]] = heapq.merge(
        *(_pairs(s) for s in streams), key=operator.itemgetter(0)
    )
    if every_us is not None:
        pairs = _thin(pairs, every_us, operator.itemgetter(0), _line_key)
    return _batches(pairs)


def open_stream(
    fmt: str,
    inputs: list[str],
    *,
    symbol: str | None = None,
    every: str | None = None,
    skip_bad: bool = False,
    **options: Any,
) -> tuple[Iterator[Command], list[Source]]:
    """The commands of ``inputs`` (format ``fmt``) as dicts, merged by ts and streamed
    (nothing is read until the first command is asked for), and the sources that count
    their rows: an importer run in-process, for a scenario's ``[market] import``. The
    options and the inputs' existence are checked now (:class:`ImportFailed`).
    Liquidations are reference records, not commands: here they are dropped."""
    if fmt not in FORMATS:
        raise ImportFailed(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if options.get("liquidations") is not None:
        raise ImportFailed("option 'liquidations' does not apply to an in-process import")
    opts = _options(fmt, symbol, options)
    if not inputs:
        raise ImportFailed("import: expected at least one input file")
    every_us = parse_every(every) if every is not None else None
    funding_file = options.get("funding")
    for i in [*inputs, *([funding_file] if funding_file else [])]:
        if not os.path.exists(i):
            raise ImportFailed(f"{i}: no such file")
    sources = [Source(i, skip_bad=skip_bad) for i in inputs]
    batches = _merged(FORMATS[fmt][0], opts, sources, funding_file, skip_bad, every_us)

    def commands() -> Iterator[Command]:
        loads = orjson.loads
        for _, lines in batches:
            for s in sources:
                s.liquidations.clear()  # no sidecar here; keep memory constant
            for line in lines:
                yield loads(line)

    return commands(), sources


#: ``progress(rows, commands)``: called about every this many commands while importing.
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
    read, commands written)`` is called about every :data:`PROGRESS_EVERY` commands.

    ``options``: ``book`` (``none``/``top``/L), ``trades`` (``prices``/``orders``/
    ``both``), ``price`` (``index``/``mark``), ``path`` (bars: ``close``/``ohlc``),
    ``tick_size`` / ``lot_size`` or ``config`` (the grid to round to), ``funding`` (a
    funding file merged in), ``liquidations`` (the sidecar file).
    """
    if fmt not in FORMATS:
        raise ImportFailed(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    reader = FORMATS[fmt][0]
    opts = _options(fmt, symbol, options)
    if not inputs:
        raise ImportFailed("import: expected at least one input file")
    every_us = parse_every(every) if every is not None else None
    funding_file = options.get("funding")
    paths = [*inputs, *([funding_file] if funding_file else [])]
    for i in paths:
        if not os.path.exists(i):
            raise ImportFailed(f"{i}: no such file")
    out_p = Path(out)
    _check_output(out_p, paths, force)
    side_p = Path(options.get("liquidations") or sidecar_path(out_p))
    if side_p == out_p:
        raise ImportFailed(f"{side_p}: the liquidations file is the output")
    for i in paths:
        if side_p.exists() and os.path.samefile(i, side_p):
            raise ImportFailed(f"{side_p}: the liquidations file is one of the inputs")
    sources = [Source(i, skip_bad=skip_bad) for i in inputs]
    for k, s in enumerate(sources):
        s.liquidation_spill = LineSpill(side_p.with_name(f"{side_p.name}.partial.{k}"))
    batches = _merged(reader, opts, sources, funding_file, skip_bad, every_us)
    partial = out_p.with_name(out_p.name + ".partial")
    side_partial = side_p.with_name(side_p.name + ".partial")
    n, first, last = 0, None, None
    counts: Counter[str] = Counter()
    kind = operator.itemgetter(9)
    n_liq = 0
    next_progress = PROGRESS_EVERY
    try:
        with open(partial, "w", encoding="utf-8", newline="\n") as f:
            for ts, lines in batches:
                f.write("".join(lines))
                n += len(lines)
                counts.update(map(kind, lines))
                if progress is not None and n >= next_progress:
                    progress(sum(s.rows for s in sources), n)
                    next_progress = n + PROGRESS_EVERY
                if first is None:
                    first = ts[0]
                last = ts[-1]
        n_liq = _write_sidecar(sources, side_p, side_partial, force)
        os.replace(partial, out_p)
        if n_liq:
            os.replace(side_partial, side_p)
    except OSError as e:
        raise ImportFailed(f"{out}: {e.strerror or e}") from e
    finally:
        partial.unlink(missing_ok=True)
        side_partial.unlink(missing_ok=True)
        for s in sources:
            if s.liquidation_spill is not None:
                s.liquidation_spill.remove()
    notes = [f"{s.path}: {t}" for s in sources for t in s.notes]
    if counts["o"] and not counts["i"]:
        notes.append(
            "trades became #market orders and nothing gave an index_price: add an index "
            "source, or --trades both"
        )
    return ImportSummary(
        rows=sum(s.rows for s in sources),
        commands=n,
        skipped=sum(s.skipped for s in sources),
        first_ts=first,
        last_ts=last,
        notes=tuple(dict.fromkeys(notes)),
        by_type=tuple((_TYPES.get(k, k), v) for k, v in sorted(counts.items())),
        rounded=sum(s.rounded for s in sources),
        gaps=sum(s.gaps for s in sources),
        liquidations=n_liq,
        liquidations_path=str(side_p) if n_liq else None,
    )


def _write_sidecar(sources: list[Source], target: Path, partial: Path, force: bool) -> int:
    """Merge the sources' liquidation records by ts into ``partial``; their count."""

    def records(s: Source) -> Iterator[tuple[int, str]]:
        if s.liquidation_spill is not None:
            yield from s.liquidation_spill.read()
        yield from s.liquidations

    if not any(s.liquidations or (s.liquidation_spill and s.liquidation_spill.count)
               for s in sources):  # fmt: skip
        return 0
    if target.exists() and not force:
        raise ImportFailed(f"{target}: exists (give --force to overwrite it)")
    n = 0
    with open(partial, "w", encoding="utf-8", newline="\n") as f:
        for _, line in heapq.merge(*(records(s) for s in sources), key=operator.itemgetter(0)):
            f.write(line)
            n += 1
    return n


def summary_text(s: ImportSummary, out: str) -> str:
    """What ``clearsim import`` prints."""
    span = "" if s.first_ts is None else f", ts {s.first_ts}..{s.last_ts} µs"
    lines = [
        f"{s.rows:,} rows read ({s.skipped:,} skipped) -> {s.commands:,} commands{span}, "
        f"written to {out}"
    ]
    if len(s.by_type) > 1 or any(t in ("market_level", "order") for t, _ in s.by_type):
        lines.append("  " + ", ".join(f"{v:,} {t}" for t, v in s.by_type))
    if s.rounded:
        lines.append(f"  {s.rounded:,} prices or quantities rounded onto the instrument's grid")
    if s.gaps:
        lines.append(f"  {s.gaps:,} depth gaps (see the notes)")
    if s.liquidations:
        lines.append(f"  {s.liquidations:,} liquidations written to {s.liquidations_path}")
    lines += [f"note: {n}" for n in s.notes]
    return "".join(line + "\n" for line in lines)
