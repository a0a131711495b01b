"""Soak: the command fuzzer of ``tests/test_fuzz.py`` for N minutes (tracker issue 10).

    python bench/soak.py --minutes N [--seed S] [--preset P] [--mark M] [--kind K]
                         [--commands C] [--minimise-s T]

Runs seeded sessions (seed S, S+1, ...; each a preset, mark policy and instrument kind drawn
from its seed unless pinned) of C commands through ``fuzzgen.FuzzChecker``, which checks
every command (no exception or hang, conservation, rejected commands change nothing,
no account driven below zero equity unrecorded, every event encodes, no fee creates money).
Prints progress every ~10 s; after the time is up, for the first violation of each kind,
the session's seed and preset, the shortest failing command prefix (bisection) and a
greedily minimised reproduction; the last line is always

    soak commands=<int> checks=<int> minutes=<float> commands_per_s=<int> violations=<int>

and the exit status is 1 if there was any violation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzzgen import (
    KINDS,
    MARKS,
    PRESETS,
    Result,
    Violation,
    minimise,
    run_session,
    setup_for,
    short,
    shortest_prefix,
)


def _line(cmd: object) -> str:
    """A command as a JSON line when it is one, else its (bounded) repr."""
    try:
        text = json.dumps(cmd, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return "# python: " + short(cmd, 400)
    return text if len(text) <= 400 else "# python: " + short(cmd, 400)


def _preset(text: str) -> str | None:
    return None if text == "None" else text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", type=_preset, default=..., choices=[*PRESETS],
                    help="pin the preset (None = no preset)")  # fmt: skip
    ap.add_argument("--mark", choices=MARKS, default=None)
    ap.add_argument("--kind", choices=KINDS, default=None)
    ap.add_argument("--commands", type=int, default=1000, help="commands per session")
    ap.add_argument("--minimise-s", type=float, default=5.0,
                    help="seconds to spend shrinking each kind's reproduction")  # fmt: skip
    args = ap.parse_args(argv)

    start = time.perf_counter()
    end = start + max(0.0, args.minutes) * 60
    next_progress = start + 10
    commands = checks = sessions = 0
    violations: list[tuple[Result, Violation]] = []
    first: dict[str, tuple[Result, Violation]] = {}
    seed = args.seed
    while True:
        setup = setup_for(seed, args.preset, args.mark, args.kind)
        res = run_session(setup, args.commands)
        sessions += 1
        seed += 1
        commands += len(res.commands)
        checks += res.checks
        for v in res.violations:
            violations.append((res, v))
            first.setdefault(v.kind, (res, v))
        now = time.perf_counter()
        if now >= next_progress:
            print(f"soak: {now - start:6.1f}s sessions={sessions} commands={commands} "
                  f"commands_per_s={int(commands / (now - start))} "
                  f"violations={len(violations)} kinds={len(first)}", flush=True)  # fmt: skip
            next_progress = now + 10
        if now >= end:
            break
    elapsed = time.perf_counter() - start

    for kind, (res, v) in first.items():
        prefix = shortest_prefix(res.setup, res.commands[: v.index + 1], kind)
        small = minimise(res.setup, prefix, kind, budget_s=args.minimise_s)
        print(f"\nVIOLATION {kind}: seed={res.setup.seed} preset={res.setup.preset}")
        print(f"  session: {res.setup}")
        print(f"  first: {short(str(v), 700)}")
        print(f"  shortest failing prefix: {len(prefix)} commands (bisection); "
              f"reproduced by these {len(small)}:")  # fmt: skip
        for cmd in small:
            print("    " + _line(cmd))
    per_kind = {}
    for _, v in violations:
        per_kind[v.kind] = per_kind.get(v.kind, 0) + 1
    if per_kind:
        print("\nviolations by kind: " + ", ".join(f"{k}={n}" for k, n in sorted(per_kind.items())))
    print(f"soak commands={commands} checks={checks} minutes={elapsed / 60:.2f} "
          f"commands_per_s={int(commands / elapsed) if elapsed else 0} "
          f"violations={len(violations)}", flush=True)  # fmt: skip
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
