"""The ``clearsim`` command line: thin verbs over the runner and the log readers.

Every failure the user can cause (a missing file, a bad flag, a corrupt log, an invalid
config) is one line on stderr, ``error: ...``, and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import orjson
import structlog

from clearsim.clearing import Config
from clearsim.events.errors import ClearsimError
from clearsim.replay import cascade, demo, scenario
from clearsim.replay import diff as diff_
from clearsim.replay import verify as verify_
from clearsim.replay.project import (
    fold_fund,
    fold_ledger,
    fund_csv,
    fund_json,
    fund_text,
    state_view,
)
from clearsim.replay.rebuild import rebuild
from clearsim.replay.render import state_text
from clearsim.replay.runner import read_commands, run
from clearsim.replay.snapshot import DEFAULT_EVERY, seek_detail, snap_path, write_snapshots

log = structlog.get_logger("clearsim")


class UsageError(ClearsimError):
    """A bad flag or argument (argparse's complaint, kept to one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="clearsim", description="Event-sourced exchange clearing simulator.")
    sub = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    d = sub.add_parser("demo", help="run the bundled crash scenario end to end, tell its story")
    d.add_argument("-o", "--output", help="keep the log here (default: a temporary file)")
    d.add_argument("--seed", type=int, help="override the scenario's seed")
    d.add_argument("--force", action="store_true", help="overwrite an existing log")

    r = sub.add_parser(
        "run",
        help="run a scenario file, or a config and a command file, into a log",
        usage="clearsim run (SCENARIO.toml | --config C.toml --commands X.jsonl) -o LOG "
        "[--seed N] [--force]",
    )
    r.add_argument("scenario", nargs="?", help="scenario file (TOML: config + market)")
    r.add_argument("--config", help="exchange config (TOML)")
    r.add_argument("--commands", help="commands, one JSON object per line")
    r.add_argument("-o", "--output", required=True, help="log to write (.gz to compress)")
    r.add_argument(
        "--seed",
        type=int,
        help="scenario: overrides [scenario].seed; commands: recorded in the header (default 0)",
    )
    r.add_argument("--force", action="store_true", help="overwrite an existing log")

    s = sub.add_parser("state", help="rebuild and print the state a log leads to")
    s.add_argument("log")
    s.add_argument("--at", type=int, metavar="SEQ", help="state after the command holding SEQ")
    s.add_argument(
        "--time", type=int, metavar="T", help="state at simulated time T (µs), by projection"
    )
    s.add_argument("--json", action="store_true", help="machine-readable output")

    fu = sub.add_parser("fund", help="insurance-fund timeline, clawback and ADL ledgers")
    fu.add_argument("log")
    fmt = fu.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="everything as JSON")
    fmt.add_argument("--csv", action="store_true", help="the fund timeline as CSV")
    fu.add_argument("--no-verify", action="store_true", help="skip checksums (faster)")

    sn = sub.add_parser("snapshot", help="write ledger snapshots beside a log (LOG.snap)")
    sn.add_argument("log")
    sn.add_argument(
        "--every",
        type=int,
        default=DEFAULT_EVERY,
        metavar="K",
        help=f"a snapshot every K records (default {DEFAULT_EVERY})",
    )

    sk = sub.add_parser("seek", help="state at exactly seq N, via the nearest snapshot")
    sk.add_argument("log")
    sk.add_argument("--at", type=int, metavar="SEQ", required=True, help="the seq to stop at")
    sk.add_argument("--json", action="store_true", help="machine-readable output")

    verify_.add_parser(sub)
    diff_.add_parser(sub)
    cascade.add_parser(sub)
    return p


def _check_seed(seed: int | None) -> None:
    # The header stores the seed as a 64-bit JSON integer.
    if seed is not None and not 0 <= seed < 2**63:
        raise UsageError("--seed: expected an integer in [0, 2^63)")


def _cmd_run(a: argparse.Namespace) -> int:
    _check_seed(a.seed)
    if a.scenario is not None:
        if a.config is not None or a.commands is not None:
            raise UsageError("run: give a scenario file or --config and --commands, not both")
        sc = scenario.load(a.scenario)
        seed = sc.seed if a.seed is None else a.seed
        _, summary = run(sc.config, sc.commands(seed), a.output, seed=seed, force=a.force)
    else:
        if a.config is None or a.commands is None:
            raise UsageError("run: expected a scenario file, or both --config and --commands")
        config = Config.from_toml(a.config)
        commands = read_commands(a.commands)
        _, summary = run(config, commands, a.output, seed=a.seed or 0, force=a.force)
    log.info(
        "run finished",
        commands=summary.commands,
        rejected=summary.rejected,
        events=summary.events,
        log=a.output,
    )
    print(
        f"{summary.commands} commands ({summary.rejected} rejected) -> "
        f"{summary.events} events, last seq {summary.last_seq}, written to {a.output}"
    )
    return 0


def _cmd_state(a: argparse.Namespace) -> int:
    if a.at is not None and a.at < 0:
        raise UsageError("--at: expected a seq >= 0")
    if a.time is not None:
        if a.at is not None:
            raise UsageError("state: give --at or --time, not both")
        led, reader = fold_ledger(a.log, time=a.time)
        state = state_view(led)
    else:
        ex, reader = rebuild(a.log, a.at)
        state = ex.state()
    if reader.torn is not None:
        print(f"warning: {reader.torn}", file=sys.stderr)
    if a.json:
        sys.stdout.write(orjson.dumps(state, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(state_text(state))
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    _check_seed(a.seed)
    return demo.main(output=a.output, seed=a.seed, force=a.force)


def _cmd_fund(a: argparse.Namespace) -> int:
    report = fold_fund(a.log, verify=not a.no_verify)
    if report.torn is not None:
        print(f"warning: {report.torn}", file=sys.stderr)
    if a.json:
        sys.stdout.write(orjson.dumps(fund_json(report), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    elif a.csv:
        sys.stdout.write(fund_csv(report))
    else:
        sys.stdout.write(fund_text(report))
    return 0


_VERBS = {"demo": _cmd_demo, "run": _cmd_run, "state": _cmd_state, "fund": _cmd_fund}
_VERBS.update(verify=verify_.cmd, diff=diff_.cmd, cascade=cascade.cmd)


def _cmd_snapshot(a: argparse.Namespace) -> int:
    if a.every < 1:
        raise UsageError("--every: expected a positive number of records")
    n = write_snapshots(a.log, every=a.every)
    print(f"{n} snapshots (every {a.every} records) written to {snap_path(a.log)}")
    return 0


def _cmd_seek(a: argparse.Namespace) -> int:
    if a.at < 0:
        raise UsageError("--at: expected a seq >= 0")
    if os.path.isfile(a.log) and not os.path.exists(snap_path(a.log)):
        print(f"note: no {snap_path(a.log)}, folding the whole log", file=sys.stderr)
    r = seek_detail(a.log, a.at)
    if r.torn is not None:
        print(f"warning: {r.torn}", file=sys.stderr)
    state = state_view(r.ledger)
    if a.json:
        sys.stdout.write(orjson.dumps(state, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(state_text(state))
    return 0


_VERBS.update(snapshot=_cmd_snapshot, seek=_cmd_seek)


def main(argv: Sequence[str] | None = None) -> int:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    try:
        args = _parser().parse_args(argv)
        return int(_VERBS[args.verb](args))
    except ClearsimError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `clearsim state LOG | head`
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
