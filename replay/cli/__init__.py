"""The ``clearsim`` command line: thin verbs over the runner, the log readers and the views.

The verbs are one table (:data:`replay.cli.verbs.VERBS`); what they print is made by
:mod:`replay.cli.render`; the domain modules they call return results and print nothing.
Every failure the user can cause (a missing file, a bad flag, a corrupt log, an invalid
config) is one line on stderr, ``error: ...``, and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

import structlog

import clearsim
from clearsim.events.errors import ClearsimError
from clearsim.replay.cli.verbs import VERBS, UsageError, help_epilog

__all__ = ["VERBS", "UsageError", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="clearsim",
        description="Event-sourced exchange clearing simulator.",
        epilog="`clearsim VERB --help` explains a verb, with examples.",
    )
    p.add_argument("--version", action="version", version=f"clearsim {clearsim.__version__}")
    sub = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    for name, verb in VERBS.items():
        verb.setup(
            sub.add_parser(
                name,
                help=verb.help,
                description=verb.help,
                usage=verb.usage,
                epilog=help_epilog(name),
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    try:
        parser = _parser()
        if not (sys.argv[1:] if argv is None else list(argv)):
            # No verb: the usage and the verb list (stdout), then the one error line.
            parser.print_help(sys.stdout)
            raise UsageError("no verb given: choose one of the verbs above")
        args = parser.parse_args(argv)
        return int(VERBS[args.verb].run(args))
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
