"""The ``clearsim`` verbs: one table, each verb its argparse setup, its help and its run.

A verb's run function calls the domain (which returns results, never prints), hands the
result to :mod:`replay.cli.render` for text and writes that text; it returns the exit
status. A user error is raised (:class:`UsageError` or another ``ClearsimError``) and
becomes one ``error: ...`` line in :func:`replay.cli.main`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import orjson

from clearsim.clearing import Config, Exchange
from clearsim.events.errors import ClearsimError
from clearsim.events.log import LogReader, TornTail
from clearsim.events.units import INT64_MAX
from clearsim.replay import scenarios as scn
from clearsim.replay.cli import progress, render
from clearsim.replay.cli.progress import Meter, meter
from clearsim.replay.cli.progress import runs as runs_progress
from clearsim.replay.cli.times import TIME_HELP, parse_time
from clearsim.replay.diff import diff
from clearsim.replay.projections.cascade import cascades
from clearsim.replay.projections.fund import fold_fund
from clearsim.replay.projections.ledger import fold_ledger, state_view, time_span
from clearsim.replay.projections.story import Story
from clearsim.replay.rebuild import rebuild
from clearsim.replay.runner import CommandFile, Progress, RunSummary, read_commands, run
from clearsim.replay.snapshot import (
    DEFAULT_EVERY,
    check_snapshots,
    seek_detail,
    snap_path,
    write_snapshots_detail,
)
from clearsim.replay.verify import verify


class UsageError(ClearsimError):
    """A bad flag or argument (argparse's complaint, kept to one line)."""


@attrs.frozen
class Verb:
    """One ``clearsim`` subcommand: its one-line help, its flags, what it runs."""

    help: str
    setup: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    usage: str | None = None
    epilog: str | None = None


# --------------------------------------------------------------------------- output


def _out(text: str) -> None:
    sys.stdout.write(text)


def _err(line: str) -> None:
    print(line, file=sys.stderr)


def _json(data: Any) -> None:
    _out(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _warn_torn(torn: object, name: str = "") -> None:
    if torn is not None:
        _err(f"warning: {name}{torn}")


def _check_seed(seed: int | None) -> None:
    # The header stores the seed as a 64-bit JSON integer.
    if seed is not None and not 0 <= seed <= INT64_MAX:
        raise UsageError("--seed: expected an integer in [0, 2^63)")


def _check_seq(seq: int | None) -> None:
    if seq is not None and seq < 0:
        raise UsageError("--at: expected a seq >= 0")


def _check_at_in(at: int | None, last_seq: int) -> None:
    """``--at`` past the log's last (good) record: refused, never clamped."""
    if at is not None and at > last_seq:
        raise UsageError(f"--at {at}: no such seq in the log (0..{last_seq})")


def _check_time_in(log_path: str, t: int, led_seq: int, led_ts: int) -> None:
    """``--time`` before the first or after the last record: refused, never clamped. The
    fold stopped at the first record past ``t``; only when it folded nothing, or reached
    ``t`` or beyond, can ``t`` be outside, and then the span is read to be sure."""
    if led_seq and t < led_ts:
        return
    span = time_span(log_path)
    if span is None:
        raise UsageError(f"--time {t}: the log holds no events")
    if not span[0] <= t <= span[1]:
        raise UsageError(f"--time {t}: outside the log's time range ({span[0]}..{span[1]} µs)")


# --------------------------------------------------------------------------- demo


def _quiet_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-q", "--quiet", action="store_true", help="no progress display on the terminal"
    )


def _demo_setup(d: argparse.ArgumentParser) -> None:
    d.add_argument("-o", "--output", help="keep the log here (default: a temporary file)")
    d.add_argument("--seed", type=int, help="override the scenario's seed")
    d.add_argument("--force", action="store_true", help="overwrite an existing log")
    d.add_argument(
        "--scenario",
        default="crash",
        metavar="NAME",
        help="a bundled scenario: crash (default, 30 minutes) or black-thursday (a day)",
    )
    _quiet_flag(d)


def _demo(a: argparse.Namespace) -> int:
    """The bundled crash scenario, run into a real log; the story is then folded from that
    log alone (re-read, checksums verified, no engine), so what is printed is what the log
    proves (``replay/scenarios/crash.toml``)."""
    _check_seed(a.seed)
    sc = scn.bundled(a.scenario)
    seed = sc.seed if a.seed is None else a.seed
    with tempfile.TemporaryDirectory(prefix="clearsim-demo-") as tmp:
        path = Path(a.output) if a.output else Path(tmp) / f"{sc.name}.log"
        print(render.demo_banner(sc, seed), flush=True)
        t0 = time.perf_counter()
        summary = _run_scenario(sc, seed, path, a.quiet, force=a.force)
        t1 = time.perf_counter()
        story, _ = read_story(path)
        t2 = time.perf_counter()
        where = str(path) if a.output else "a temporary log"
        _out(render.demo_timing(summary, where, t1 - t0, t2 - t1))
        _out(render.story_text(story))
    return 0


# --------------------------------------------------------------------------- story


def read_story(path: str | Path) -> tuple[Story, TornTail | None]:
    """The story folded from the log at ``path`` alone (checksums verified, no engine), and
    its torn tail if any: what ``demo`` and ``story`` print."""
    reader = LogReader(path)
    story = Story(reader.header.config).feed_all(reader.events())
    return story, reader.torn


def _story_setup(st: argparse.ArgumentParser) -> None:
    st.add_argument("log")


def _story(a: argparse.Namespace) -> int:
    story, torn = read_story(a.log)
    _warn_torn(torn)
    _out(render.story_text(story))
    return 0


# --------------------------------------------------------------------------- run


def _run_setup(r: argparse.ArgumentParser) -> None:
    r.add_argument("scenario", nargs="?", help="scenario file (TOML: config + market)")
    r.add_argument("--config", help="exchange config (TOML)")
    r.add_argument("--commands", help="commands, one JSON object per line")
    r.add_argument("-o", "--output", required=True, help="log to write (.gz to compress)")
    r.add_argument(
        "--seed",
        type=int,
        help="scenario: overrides [scenario].seed; commands: recorded in the header (default 0)",
    )
    r.add_argument(
        "--force",
        action="store_true",
        help="overwrite an existing log (and start over from a left-over LOG.partial)",
    )
    r.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed run from LOG.partial (same config, seed and commands): "
        "its events are checked, not written again, and the result is the log an "
        "uninterrupted run writes; without a LOG.partial, a plain run",
    )
    _quiet_flag(r)


_RUN_EPILOG = (
    "The log is written to LOG.partial (X.partial.gz for X.gz) beside LOG and renamed to\n"
    "LOG only when the run has finished; a run that fails removes it. A run that was killed\n"
    "leaves LOG.partial: continue it with --resume, or start over with --force (a plain run\n"
    "refuses to start while it is there). An output that is one of the inputs is refused,\n"
    "even with --force. An output that is not a regular file (a pipe, a device) is written\n"
    "directly."
)


def _run(a: argparse.Namespace) -> int:
    _check_seed(a.seed)
    if a.force and a.resume:
        raise UsageError("run: give --force (start over) or --resume (continue), not both")
    if a.scenario is not None:
        if a.config is not None or a.commands is not None:
            raise UsageError("run: give a scenario file or --config and --commands, not both")
        sc = scn.load(a.scenario)
        seed = sc.seed if a.seed is None else a.seed
        summary = _run_scenario(
            sc,
            seed,
            a.output,
            a.quiet,
            force=a.force,
            resume=a.resume,
            inputs=[a.scenario, *sc.input_files()],
        )
    else:
        if a.config is None or a.commands is None:
            raise UsageError("run: expected a scenario file, or both --config and --commands")
        config = Config.from_toml(a.config)
        commands = read_commands(a.commands)  # opened now: a missing file touches no output
        size = _size(a.commands)
        with meter("run", "events", size, quiet=a.quiet) as m:
            _, summary = run(
                config,
                commands,
                a.output,
                seed=a.seed or 0,
                force=a.force,
                resume=a.resume,
                inputs=[a.config, a.commands],
                progress=_by_bytes(m, commands),
            )
    _out(render.run_summary(summary, a.output))
    return 0


def _run_scenario(
    sc: scn.Scenario, seed: int, output: str | Path, quiet: bool, **options: Any
) -> RunSummary:
    """Run a scenario into ``output`` with its progress shown (the simulated clock)."""
    start = sc.start_ts
    end = sc.end_ts() if progress.enabled(quiet) else None  # may read a small market through
    total = end - start if end is not None and end > start else None

    def commands(ex: Exchange) -> Iterator[dict[str, Any]]:  # reads the exchange it feeds
        return sc.commands(seed, ex)

    with meter("run", "events", total, quiet=quiet) as m:

        def tick(s: RunSummary, ts: int) -> None:
            m.update(s.events, max(0, ts - start), render.sim_clock(ts))

        _, summary = run(sc.config, commands, output, seed=seed, progress=tick, **options)
    return summary


def _by_bytes(m: Meter, commands: CommandFile) -> Progress:
    def tick(s: RunSummary, ts: int) -> None:
        m.update(s.events, commands.position, render.sim_clock(ts))

    return tick


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path) or None
    except OSError:
        return None


def _log_size(path: str) -> int | None:
    """A log's bytes, the total of a meter of bytes read; None for a ``.gz`` (the readers
    count the uncompressed stream, whose size is not known before the end)."""
    return None if str(path).endswith(".gz") else _size(path)


# --------------------------------------------------------------------------- state, seek


def _state_setup(s: argparse.ArgumentParser) -> None:
    s.add_argument("log")
    s.add_argument("--at", type=int, metavar="SEQ", help="state after the command holding SEQ")
    s.add_argument(
        "--time",
        type=_time_arg,
        metavar="T",
        help=f"state at simulated time T ({TIME_HELP}), by projection",
    )
    s.add_argument("--json", action="store_true", help="machine-readable output")


def _state(a: argparse.Namespace) -> int:
    _check_seq(a.at)
    if a.time is not None:
        if a.at is not None:
            raise UsageError("state: give --at or --time, not both")
        led, reader = fold_ledger(a.log, time=a.time)
        _check_time_in(a.log, a.time, led.seq, led.ts)
        state = state_view(led)
    else:
        ex, reader = rebuild(a.log, a.at)
        _check_at_in(a.at, reader.last_seq)
        state = ex.state()
    _warn_torn(reader.torn)
    _print_state(state, a.json)
    return 0


def _print_state(state: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _json(state)
    else:
        _out(render.state_text(state))


def _seek_setup(sk: argparse.ArgumentParser) -> None:
    sk.add_argument("log")
    sk.add_argument("--at", type=int, metavar="SEQ", required=True, help="the seq to stop at")
    sk.add_argument("--json", action="store_true", help="machine-readable output")


def _seek(a: argparse.Namespace) -> int:
    _check_seq(a.at)
    r = seek_detail(a.log, a.at)
    _check_at_in(a.at, r.ledger.seq)
    if r.snapshot_seq is None and not os.path.exists(snap_path(a.log)):
        _err(f"note: no {snap_path(a.log)}, folding the whole log")
    _warn_torn(r.torn)
    _print_state(state_view(r.ledger), a.json)
    return 0


# --------------------------------------------------------------------------- fund, snapshot


def _fund_setup(fu: argparse.ArgumentParser) -> None:
    fu.add_argument("log")
    fmt = fu.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="everything as JSON")
    fmt.add_argument("--csv", action="store_true", help="the fund timeline as CSV")
    fu.add_argument("--no-verify", action="store_true", help="skip checksums (faster)")
    _quiet_flag(fu)


def _fund(a: argparse.Namespace) -> int:
    with meter("fund", "events", _log_size(a.log), quiet=a.quiet) as m:
        report = fold_fund(
            a.log,
            verify=not a.no_verify,
            progress=lambda events, offset: m.update(events, offset),
        )
    _warn_torn(report.torn)
    if a.json:
        _json(render.fund_json(report))
    elif a.csv:
        _out(render.fund_csv(report))
    else:
        _out(render.fund_text(report))
    return 0


def _snapshot_setup(sn: argparse.ArgumentParser) -> None:
    sn.add_argument("log")
    sn.add_argument(
        "--every",
        type=int,
        default=DEFAULT_EVERY,
        metavar="K",
        help=f"a snapshot every K records (default {DEFAULT_EVERY})",
    )


def _snapshot(a: argparse.Namespace) -> int:
    if a.every < 1:
        raise UsageError("--every: expected a positive number of records")
    n, torn = write_snapshots_detail(a.log, every=a.every)
    _warn_torn(torn)
    _out(render.snapshots_written(n, a.every, snap_path(a.log)))
    return 0


# --------------------------------------------------------------------------- verify, diff


def _verify_setup(v: argparse.ArgumentParser) -> None:
    v.add_argument("log")
    v.add_argument(
        "--no-conservation", action="store_true", help="skip the conservation checks (faster)"
    )
    _quiet_flag(v)


def _verify(a: argparse.Namespace) -> int:
    """Exit 0: the log (or its good prefix before a torn tail) verifies; 1: it does not."""
    with meter("verify", "events", _log_size(a.log), quiet=a.quiet) as m:
        res = verify(
            a.log,
            conservation=not a.no_conservation,
            progress=lambda events, offset: m.update(events, offset),
        )
    out, err = render.verify(res)
    ok = res.ok
    if ok and os.path.exists(snap_path(a.log)):
        checked, problem = check_snapshots(a.log)
        out.append(render.snapshots_checked(checked, problem))
        ok = problem is None
    for line in err:
        _err(line)
    _out("".join(line + "\n" for line in out))
    return 0 if ok else 1


def _diff_setup(d: argparse.ArgumentParser) -> None:
    d.add_argument("a", metavar="A")
    d.add_argument("b", metavar="B")
    _quiet_flag(d)


def _diff(a: argparse.Namespace) -> int:
    """Exit 0 only when the two logs are identical, 1 otherwise."""
    sa, sb = _log_size(a.a), _log_size(a.b)
    total = None if sa is None or sb is None else sa + sb  # both logs' bytes are read
    with meter("diff", "events", total, quiet=a.quiet) as m:
        r = diff(a.a, a.b, progress=lambda events, offset: m.update(events, offset))
    _warn_torn(r.torn_a, "A: ")
    _warn_torn(r.torn_b, "B: ")
    _out("".join(line + "\n" for line in render.diff(r)))
    return 0 if r.identical else 1


# --------------------------------------------------------------------------- cascade


def _cascade_setup(c: argparse.ArgumentParser) -> None:
    c.add_argument("log")
    start = c.add_mutually_exclusive_group()
    start.add_argument(
        "--from", dest="start", type=int, metavar="SEQ", help="the event to start at"
    )
    start.add_argument(
        "--time",
        type=_time_arg,
        metavar="T",
        help=f"the first cascade at or after time T ({TIME_HELP})",
    )
    c.add_argument("--top", type=int, default=5, metavar="N", help="otherwise: the N largest")
    out = c.add_mutually_exclusive_group()
    out.add_argument(
        "--format",
        choices=("text", "json", "table"),
        default="text",
        help="text: totals and the tree (default); json: every event; table: a line each",
    )
    out.add_argument("--json", action="store_true", help="the same as --format json")
    c.add_argument("--depth", type=int, default=12, help="text: collapse below this depth")
    c.add_argument("--width", type=int, default=10, help="text: children shown per event")
    _quiet_flag(c)


def _cascade(a: argparse.Namespace) -> int:
    for name in ("top", "depth", "width"):
        if getattr(a, name) < 1:
            raise UsageError(f"--{name}: expected an integer >= 1")
    size = _log_size(a.log)
    # Two reads of the log: the index, then the chosen trees (up to the last one's end).
    with meter("cascade", "events", size and 2 * size, quiet=a.quiet) as m:
        cs, idx, fmt = cascades(
            a.log,
            a.start,
            a.top,
            time=a.time,
            progress=lambda events, offset: m.update(events, offset),
        )
    _warn_torn(idx.torn)  # on stderr: --json output stays JSON
    form = "json" if a.json else a.format
    if form == "json":
        _json(render.cascade_json(cs, idx, fmt))
    elif form == "table":
        _out("\n".join(render.cascade_table(cs, idx, fmt)) + "\n")
    else:
        text = render.cascade_text(cs, idx, fmt, depth=a.depth, width=a.width)
        _out("\n".join(text) + "\n")
    return 0


# --------------------------------------------------------------------------- export

#: ``--table`` choices (literal here: the tables module needs pyarrow, imported on use).
_EXPORT_TABLES = ("events", "fund", "clawback", "adl", "accounts", "cascades")


def _export_setup(ex: argparse.ArgumentParser) -> None:
    ex.add_argument("log")
    ex.add_argument("-o", "--output", required=True, help="OUT.parquet (or .pq) or OUT.csv")
    ex.add_argument(
        "--table",
        choices=_EXPORT_TABLES,
        default="events",
        help="events (one row per event, default) or a projection",
    )
    ex.add_argument("--types", metavar="T,...", help="events: only these event types")
    ex.add_argument(
        "--units",
        choices=("human", "raw"),
        default="human",
        help="human: exact decimals and UTC times (default); raw: the log's integers",
    )
    ex.add_argument("--at", type=int, metavar="SEQ", help="accounts: after the command at SEQ")
    ex.add_argument(
        "--time", type=_time_arg, metavar="T", help=f"accounts: at time T ({TIME_HELP})"
    )
    ex.add_argument("--top", type=int, default=10, metavar="N", help="cascades: the N largest")
    ex.add_argument("--no-verify", action="store_true", help="skip checksums (faster)")
    ex.add_argument("--force", action="store_true", help="overwrite an existing output")


_EXPORT_EPILOG = (
    "Amounts are exact decimals (Arrow decimal128) scaled by the log's header: prices by the\n"
    "instruments' tick sizes, quantities by their lot sizes, money by collateral_decimals;\n"
    "times are UTC timestamps. --units raw keeps the log's integers (ticks, lots, atoms, µs).\n"
    "The output is written to OUT.partial and renamed when complete; Parquet files carry\n"
    "the table, the units and the log's header in their schema metadata."
)


def _export(a: argparse.Namespace) -> int:
    from clearsim.replay.tables import require

    require("pyarrow", "export")
    from clearsim.replay.tables.export import export

    _check_seq(a.at)
    if a.at is not None and a.time is not None:
        raise UsageError("export: give --at or --time, not both")
    if a.top < 1:
        raise UsageError("--top: expected an integer >= 1")
    types = None
    if a.types is not None:
        types = [t.strip() for t in a.types.split(",") if t.strip()]
        if not types:
            raise UsageError("--types: expected event type names, comma-separated")
    if a.table == "accounts":  # refused, never clamped, as for `state`
        if a.time is not None:
            span = time_span(a.log)
            if span is None or not span[0] <= a.time <= span[1]:
                where = "the log holds no events" if span is None else (
                    f"outside the log's time range ({span[0]}..{span[1]} µs)"
                )  # fmt: skip
                raise UsageError(f"--time {a.time}: {where}")
        if a.at is not None:
            _check_at_in(a.at, _last_seq(a.log))
    s = export(
        a.log,
        a.output,
        table=a.table,
        types=types,
        units=a.units,
        at=a.at,
        time=a.time,
        verify=not a.no_verify,
        force=a.force,
        top=a.top,
    )
    _warn_torn(s.torn)
    _out(render.export_summary(s.table, s.rows, s.output, s.format, s.units))
    return 0


def _last_seq(path: str) -> int:
    reader = LogReader(path)
    reader.verify()
    return reader.last_seq


# --------------------------------------------------------------------------- import


def _import_setup(im: argparse.ArgumentParser) -> None:
    from clearsim.replay.importers import FORMATS

    im.add_argument(
        "format",
        choices=sorted(FORMATS),
        metavar="FORMAT",
        help="tardis | binance | hftbacktest (a raw Binance websocket capture) | bars",
    )
    im.add_argument("inputs", nargs="+", metavar="INPUT", help="input files (.gz read as gzip)")
    im.add_argument("-o", "--output", required=True, help="command file to write (JSON Lines)")
    im.add_argument("--symbol", help="instrument symbol in the commands (default: the source's)")
    im.add_argument(
        "--every",
        metavar="DURATION",
        help="at most one index_price per window (60s, 5m, 1h): the window's last",
    )
    im.add_argument(
        "--skip-bad",
        action="store_true",
        help="count and skip bad rows (and go on after a capture's depth gap, withdrawing "
        "the book until the next snapshot)",
    )
    im.add_argument("--force", action="store_true", help="overwrite an existing output")
    im.add_argument(
        "--book",
        metavar="none|top|L",
        help="the market's liquidity as #market levels: none (default), top (best bid and "
        "ask), or L (the L best levels per side)",
    )
    im.add_argument(
        "--trades",
        choices=("prices", "orders", "both"),
        help="trades as index prices, as #market IOC orders, or both (default: prices "
        "without --book, orders with it)",
    )
    im.add_argument(
        "--tick-size",
        metavar="X",
        help="round prices off this tick onto it (buy levels down, sell levels up)",
    )
    im.add_argument("--lot-size", metavar="X", help="round quantities down to this lot")
    im.add_argument(
        "--config", metavar="C.toml", help="take each instrument's tick and lot from a config"
    )
    im.add_argument(
        "--funding", metavar="FILE", help="a funding file (tardis ticker, binance) to merge in"
    )
    im.add_argument(
        "--liquidations",
        metavar="FILE",
        help="where liquidation records go (default: OUT with .liquidations.jsonl)",
    )
    im.add_argument(
        "--price",
        choices=("index", "mark"),
        help="tardis derivative_ticker, capture markPriceUpdate: the price column (default index)",
    )
    im.add_argument(
        "--path",
        choices=("close", "ohlc"),
        help="bars: the close at the bar's ts (default), or open/high/low/close "
        "at +0/+15/+30/+45 s (high first when the bar closes down)",
    )
    _quiet_flag(im)


def _import(a: argparse.Namespace) -> int:
    from clearsim.replay.importers import import_files, summary_text

    with meter("import", "rows", quiet=a.quiet) as m:
        s = import_files(
            a.format,
            a.inputs,
            a.output,
            symbol=a.symbol,
            every=a.every,
            skip_bad=a.skip_bad,
            force=a.force,
            price=a.price,
            path=a.path,
            book=a.book,
            trades=a.trades,
            tick_size=a.tick_size,
            lot_size=a.lot_size,
            config=a.config,
            funding=a.funding,
            liquidations=a.liquidations,
            progress=lambda rows, n: m.update(rows, note=f"{n:,} commands"),
        )
    _out(summary_text(s, a.output))
    return 0


# --------------------------------------------------------------------------- report


def _report_setup(rp: argparse.ArgumentParser) -> None:
    rp.add_argument("log", metavar="LOG", help="an event log (a sweep's results: .parquet)")
    rp.add_argument("-o", "--output", required=True, help="the HTML page to write")
    rp.add_argument("--force", action="store_true", help="overwrite an existing output")


_REPORT_EPILOG = (
    "The page opens offline: plotly.js and every style are inlined, nothing is fetched.\n"
    "It is written to OUT.partial beside OUT and renamed into place when complete. A torn\n"
    "log tail is a warning: the page shows what is before it. Needs plotly (the report\n"
    "extra: pip install 'clearsim[report]')."
)


def _report(a: argparse.Namespace) -> int:
    from clearsim.replay.report import ReportOutput, report_page

    out = ReportOutput(a.output, force=a.force, inputs=[a.log])  # refused before the work
    page = report_page(a.log)
    _warn_torn(page.torn)
    size = out.write(page.html)
    _out(render.report_written(a.output, size, page.charts, page.empty))
    return 0


# --------------------------------------------------------------------------- sweep, calibrate


def _backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="runs at once (default: the CPUs here; 1 runs them in this process)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run each cell as a Ray task: on the cluster at ADDRESS, or a local Ray "
        "without one (pip install 'clearsim[ray]')",
    )
    p.add_argument(
        "--keep-logs",
        metavar="DIR",
        help="keep every run's log as DIR/<key>.log (default: removed after the run)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _backend(a: argparse.Namespace) -> Any:
    from clearsim.replay.sweep.pool import Backend, default_workers

    if a.workers is not None and a.workers < 1:
        raise UsageError("--workers: expected an integer >= 1")
    keep = Path(a.keep_logs) if a.keep_logs else None
    if keep is not None and keep.exists() and not keep.is_dir():
        raise UsageError(f"--keep-logs {keep}: is not a directory")
    return Backend(
        workers=a.workers or default_workers(),
        ray=a.ray is not None,
        ray_address=a.ray or None,
        keep_logs=keep,
    )


def _results_output(out: Path, sweep: Any, force: bool) -> Any:
    """The table already in ``out`` (None: none, or ``force``), after refusing an output
    that is one of the inputs or has no directory to go to."""
    from clearsim.replay.sweep import results

    inputs = [sweep.path, *(f for d in sweep.days for f in d.files())]
    for src in inputs:
        if out.exists() and os.path.samefile(out, src):
            raise UsageError(f"{out}: is the input {src}; refusing to write over an input")
    if not out.parent.is_dir():
        raise UsageError(f"{out}: no such directory {out.parent}")
    if force or not out.exists():
        return None
    try:
        return results.read(out)
    except results.ResultsError as e:
        raise results.ResultsError(f"{e} (--force replaces it)") from None


def _sweep_setup(s: argparse.ArgumentParser) -> None:
    s.add_argument("sweep", metavar="SWEEP.toml", help="the sweep file")
    s.add_argument("-o", "--output", required=True, help="results table to write (Parquet)")
    _backend_args(s)
    s.add_argument(
        "--force", action="store_true", help="start over: replace the output, run every cell"
    )


_SWEEP_EPILOG = (
    "One row per run: the parameters, seed, day, the outcomes (fund start/min/end in equity,\n"
    "fund paid, liquidations and notional by step, ADL, clawback, system debt, the largest\n"
    "cascade) and the log's final chain hash; run_s, cpu_s and commands_per_s are measured by\n"
    "the clock, the only columns that differ between two runs of a cell. A cell whose key\n"
    "(scenario bytes, parameters, seed, engine) is already in the output is skipped, so a\n"
    "re-run resumes an interrupted sweep; rows are kept in the sweep's order whatever the\n"
    "worker count."
)


def _sweep(a: argparse.Namespace) -> int:
    from clearsim.replay.sweep import results, spec
    from clearsim.replay.sweep.pool import run_cells

    sweep = spec.load(a.sweep)
    out = Path(a.output)
    backend = _backend(a)
    existing = _results_output(out, sweep, a.force)
    cells = sweep.cells()
    done = results.keys(existing) if existing is not None else set()
    todo = [c for c in cells if c.key not in done]
    order = [c.key for c in cells]
    store = results.Appender(out, existing, order)
    t0 = time.perf_counter()
    with runs_progress(len(todo), "runs", quiet=a.quiet) as advance:
        try:
            for o in run_cells(todo, backend):
                store.add(o)
                advance(f"{o.day} seed {o.seed}")
        finally:
            store.flush()  # an interrupted sweep keeps what it ran: a re-run resumes
    seconds = time.perf_counter() - t0
    wanted = set(order)
    rows = (
        [] if store.table is None else [r for r in results.rows(store.table) if r["key"] in wanted]
    )
    _out(
        render.sweep_summary(
            a.sweep, len(cells), len(todo), a.output, rows, _where(backend), seconds
        )
    )
    return 0


def _where(backend: Any) -> str:
    if backend.ray:
        return f"Ray ({backend.ray_address or f'local, {backend.workers} CPUs'})"
    return "1 process" if backend.workers == 1 else f"{backend.workers} worker processes"


def _calibrate_setup(c: argparse.ArgumentParser) -> None:
    from clearsim.replay.sweep.calibrate import Target

    c.add_argument("sweep", metavar="SWEEP.toml", help="the days, seeds and cases to meet it on")
    c.add_argument("--param", required=True, help="the parameter to search, a config path")
    c.add_argument(
        "--target",
        required=True,
        choices=[t.value for t in Target],
        help="what every run must meet",
    )
    c.add_argument(
        "--tolerance",
        metavar="X",
        help="stop when the answer is bracketed this tightly, in the parameter's units "
        "(default: 1%% of the bracket's high end)",
    )
    c.add_argument(
        "--range",
        nargs=2,
        metavar=("LO", "HI"),
        help="search in [LO, HI] (default: from 0, and up from the scenario's own value, "
        "doubling until the target is met)",
    )
    c.add_argument(
        "-o", "--output", help="results table (Parquet): runs in it are reused, new runs added"
    )
    _backend_args(c)
    c.add_argument("--json", action="store_true", help="machine-readable output")


def _calibrate(a: argparse.Namespace) -> int:
    from clearsim.replay.sweep import calibrate as cal
    from clearsim.replay.sweep import results, spec

    sweep = spec.load(a.sweep)
    backend = _backend(a)
    dom = cal.domain(sweep, a.param)
    tol = None if a.tolerance is None else dom.parse(a.tolerance, "--tolerance")
    lo, hi = (0, None) if a.range is None else (
        dom.parse(a.range[0], "--range LO"), dom.parse(a.range[1], "--range HI")
    )  # fmt: skip
    store = None
    cached: dict[str, dict[str, Any]] = {}
    if a.output:
        out = Path(a.output)
        existing = _results_output(out, sweep, False)
        if existing is not None:
            cached = {r["key"]: r for r in results.rows(existing)}
        store = results.Appender(out, existing, [])
    # A bisection does not know how many runs it will make: the bar counts them.
    with runs_progress(None, "runs", quiet=a.quiet or a.json) as advance:
        try:
            result = cal.calibrate(
                sweep,
                dom,
                cal.Target(a.target),
                backend,
                tolerance=tol,
                lo=lo,
                hi=hi,
                cached=cached,
                store=store,
                on_run=lambda r: advance(f"{r.day} seed {r.seed} at {dom.text(r.value)}"),
            )
        finally:
            if store is not None:
                store.flush()
    if a.json:
        _json(render.calibrate_json(result))
    else:
        _out(render.calibrate_text(result, a.output))
    return 0


# --------------------------------------------------------------------------- the table

#: Every verb, in the order ``clearsim --help`` lists them.
VERBS: dict[str, Verb] = {
    "demo": Verb("run the bundled crash scenario end to end, tell its story", _demo_setup, _demo),
    "story": Verb("the waterfall story of any log, as the demo tells it", _story_setup, _story),
    "run": Verb(
        "run a scenario file, or a config and a command file, into a log",
        _run_setup,
        _run,
        usage="clearsim run (SCENARIO.toml | --config C.toml --commands X.jsonl) -o LOG "
        "[--seed N] [--force | --resume] [--quiet]",
        epilog=_RUN_EPILOG,
    ),
    "state": Verb("rebuild and print the state a log leads to", _state_setup, _state),
    "fund": Verb("insurance-fund timeline, clawback and ADL ledgers", _fund_setup, _fund),
    "snapshot": Verb("write ledger snapshots beside a log (LOG.snap)", _snapshot_setup, _snapshot),
    "seek": Verb("state at exactly seq N, via the nearest snapshot", _seek_setup, _seek),
    "verify": Verb(
        "check a log's chain, re-execute it and compare every event, byte for byte",
        _verify_setup,
        _verify,
    ),
    "diff": Verb(
        "first divergent seq of two logs and their outcome differences", _diff_setup, _diff
    ),
    "cascade": Verb(
        "the tree of events caused by a seq, or the largest cascades, with totals",
        _cascade_setup,
        _cascade,
    ),
    "report": Verb(
        "one self-contained HTML page of a log's charts (opens offline)",
        _report_setup,
        _report,
        usage="clearsim report LOG -o report.html [--force]",
        epilog=_REPORT_EPILOG,
    ),
    "export": Verb(
        "write a log's events (or a projection) to Parquet or CSV, in exact decimal units",
        _export_setup,
        _export,
        usage="clearsim export LOG -o OUT.parquet|OUT.csv [--table T] [--types T,...] "
        "[--units human|raw] [--at SEQ | --time T] [--no-verify] [--force]",
        epilog=_EXPORT_EPILOG,
    ),
    "import": Verb(
        "turn historical market data (prices, funding, book, trades) into a command file",
        _import_setup,
        _import,
        usage="clearsim import FORMAT INPUT... -o OUT.jsonl [--symbol S] [--every 60s] "
        "[--book none|top|L] [--trades prices|orders|both] [--tick-size X | --config C.toml] "
        "[--skip-bad] [--force] [--quiet]",
    ),
    "sweep": Verb(
        "run a scenario over a grid of parameters and seeds into one Parquet table",
        _sweep_setup,
        _sweep,
        usage="clearsim sweep SWEEP.toml -o results.parquet [--workers N] [--ray [ADDRESS]] "
        "[--keep-logs DIR] [--quiet] [--force]",
        epilog=_SWEEP_EPILOG,
    ),
    "calibrate": Verb(
        "the smallest parameter value meeting a target on every day and seed, by bisection",
        _calibrate_setup,
        _calibrate,
        usage="clearsim calibrate SWEEP.toml --param PATH --target no_adl|no_clawback|no_debt "
        "[--tolerance X] [--range LO HI] [-o runs.parquet] [--workers N] [--ray [ADDRESS]]",
    ),
}


# --------------------------------------------------------------------------- times, help


def _time_arg(text: str) -> int:
    """argparse ``type=`` for a time flag: the error names the flag (argparse adds it)."""
    try:
        return parse_time(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


#: Each verb's examples, shown in its ``--help`` epilog (every verb has at least one).
EXAMPLES: dict[str, tuple[str, ...]] = {
    "demo": (
        "clearsim demo",
        "clearsim demo -o crash.log --seed 7",
        "clearsim demo --scenario black-thursday",
    ),
    "story": ("clearsim story crash.log",),
    "run": (
        "clearsim run replay/scenarios/crash.toml -o crash.log",
        "clearsim run replay/scenarios/black-thursday.toml -o bt.log && clearsim story bt.log",
        "clearsim run --config exchange.toml --commands day.jsonl -o day.log.gz",
        "clearsim run replay/scenarios/crash.toml -o crash.log --resume",
    ),
    "state": (
        "clearsim state crash.log --json",
        "clearsim state crash.log --at 1200",
        "clearsim state crash.log --time 2020-03-12T10:38:00Z",
    ),
    "fund": ("clearsim fund crash.log", "clearsim fund crash.log --csv > fund.csv"),
    "snapshot": ("clearsim snapshot crash.log --every 50000",),
    "seek": ("clearsim seek crash.log --at 44208 --json",),
    "verify": ("clearsim verify crash.log", "clearsim verify crash.log --no-conservation"),
    "diff": ("clearsim diff a.log b.log",),
    "cascade": (
        "clearsim cascade crash.log",
        "clearsim cascade crash.log --from 44208",
        "clearsim cascade crash.log --time 2023-11-14T22:30:00Z --format json",
        "clearsim cascade crash.log --top 20 --format table",
    ),
    "export": (
        "clearsim export crash.log -o events.parquet",
        "clearsim export crash.log -o fills.csv --types fill,liquidation_fill",
        "clearsim export crash.log -o accounts.parquet --table accounts --at 44208",
        "clearsim export crash.log -o fund.parquet --table fund --units raw",
    ),
    "report": (
        "clearsim report crash.log -o report.html",
        "clearsim report crash.log -o report.html --force",
    ),
    "import": (
        "clearsim import bars ../shared/data/bitmex/XBTUSD-1m-2020-03-12.json "
        "--symbol XBTUSD -o day.jsonl",
        "clearsim import tardis derivative_ticker.csv trades.csv.gz --every 60s -o day.jsonl",
        "clearsim import binance BTCUSDT-funding-history.csv --symbol BTCUSDT -o funding.jsonl",
        "clearsim import tardis incremental_book_L2.csv.gz trades.csv.gz --book 10 "
        "--config exchange.toml --symbol BTC-USD -o day.jsonl",
        "clearsim import hftbacktest ../shared/data/binance-usdm/ethusdt_20240808.gz "
        "--book 20 --trades both -o eth.jsonl",
    ),
    "sweep": (
        "clearsim sweep examples/sweeps/crash-fund.sweep.toml -o crash-fund.parquet --workers 2",
        "clearsim sweep examples/sweeps/crash-fund.sweep.toml -o crash-fund.parquet --ray "
        "--keep-logs logs/",
        "clearsim sweep days.sweep.toml -o days.parquet --ray ray://head:10001",
    ),
    "calibrate": (
        "clearsim calibrate examples/sweeps/crash-presets.sweep.toml "
        "--param insurance_fund.initial --target no_adl",
        "clearsim calibrate days.sweep.toml --param insurance_fund.initial --target no_clawback "
        "--tolerance 1000 -o runs.parquet",
    ),
}


def help_epilog(name: str) -> str | None:
    """A verb's epilog: its own text, then its examples."""
    verb = VERBS[name]
    examples = EXAMPLES.get(name, ())
    parts = [verb.epilog] if verb.epilog else []
    if examples:
        parts.append("examples:\n" + "\n".join(f"  {x}" for x in examples))
    return "\n\n".join(parts) or None
