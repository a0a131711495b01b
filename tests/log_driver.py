"""A writer to crash on purpose (used by tests/test_reliability.py).

    python tests/log_driver.py SCENARIO.toml OUT.log [--steps N] [--flush-every K] [--resume]

Runs a scenario file into ``OUT.log`` like ``clearsim run``, but flushes to the OS every
``K`` commands, so a SIGKILL leaves most of what was written on disk. With ``--resume`` it
opens the existing log with :meth:`LogWriter.resume` (cutting a torn tail) and continues:
commands are deterministic, so it re-applies every command to a fresh exchange and writes
only the events past the log's last good seq. The result must be byte-identical to an
uninterrupted run.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

from clearsim.clearing import Config, Exchange
from clearsim.events.codec import Header
from clearsim.events.log import LogWriter
from clearsim.replay import scenarios as scenario

ROOT = Path(__file__).resolve().parents[1]


def load(path: str | Path, steps: int | None = None) -> tuple[Config, list[object], int]:
    """The config, the commands and the seed of a scenario file (``steps`` overridden)."""
    with open(path, "rb") as f:
        d = tomllib.load(f)
    if steps is not None:
        d.setdefault("scenario", {})["steps"] = steps
    sc = scenario.from_dict(d, base_dir=Path(path).parent, default_name=Path(path).stem)
    return sc.config, list(sc.commands(sc.seed)), sc.seed


def write(
    config: Config,
    commands: Iterable[object],
    out: str | Path,
    seed: int,
    *,
    resume: bool = False,
    flush_every: int = 1,
) -> int:
    """Run ``commands`` into ``out`` (fresh, or resumed after its last good record); the
    last seq."""
    ex = Exchange(config)
    w = (
        LogWriter.resume(out)
        if resume
        else LogWriter.create(out, Header.new(config.to_dict(), seed), overwrite=True)
    )
    with w:
        skip = w.last_seq
        for n, cmd in enumerate(commands, 1):
            events = ex.apply(cmd)
            if events[-1].seq <= skip:
                continue
            w.write_many(e for e in events if e.seq > skip)
            if n % flush_every == 0:
                w.flush()
        return w.last_seq


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("scenario")
    p.add_argument("out")
    p.add_argument("--steps", type=int)
    p.add_argument("--flush-every", type=int, default=1)
    p.add_argument("--resume", action="store_true")
    a = p.parse_args(argv)
    config, commands, seed = load(a.scenario, a.steps)
    write(config, commands, a.out, seed, resume=a.resume, flush_every=a.flush_every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
