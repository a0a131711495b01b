"""Throughput of a whole scenario run: the bundled crash, scaled to many accounts.

What it measures
    The demo's scenario (``replay/scenarios/crash.toml``) with its population scaled to
    ``--accounts`` (default 100,000; ``--quick``: 10,000); or ``--scenario black-thursday``,
    a whole historical day as the market (default: its own 5,000 accounts, arriving all
    day; the bars are read through the importer as the commands are generated, and
    ``generate`` is then the importer's time too). The market scales with it
    (``Scenario.with_population``): the makers' depth and deposits, the backstop's deposit
    and the insurance fund grow in proportion, so the crash plays out with the same shape.
    The command stream is generated first (timed separately: ``generate``), then
    ``replay.runner.run`` applies it to a fresh exchange and writes every event to a log in
    a temporary directory (``run``: engine + encoding + writing; this is the headline).

How to read the output
    ``commands`` and ``events`` by type (the liquidation waterfall's share of the work shows
    in the event mix), the two timings, and the story's headline numbers, so a faster run
    that tells a different story is noticed. The last line is machine-readable::

        accounts=<n> events=<n> seconds=<run seconds> events_per_s=<n>

``--keep LOG`` copies the log out of the temporary directory; its sha256 is printed either
way, so an optimisation can be checked to leave the log's bytes unchanged.

``--profile`` runs under cProfile and prints the top functions by internal time (the timing
figures then include the profiler's overhead).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import pstats
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from clearsim.events.log import LogReader
from clearsim.replay import scenarios as scn
from clearsim.replay.projections.story import Story
from clearsim.replay.runner import run


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, help="population size (default 100000)")
    p.add_argument("--quick", action="store_true", help="10,000 accounts")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.add_argument("--profile", action="store_true", help="print the top functions")
    p.add_argument("--story", action="store_true", help="also fold the log into the story")
    p.add_argument("--keep", metavar="LOG", help="keep the log here (to verify or compare it)")
    p.add_argument("--scenario", default="crash", help="a bundled scenario (default crash)")
    a = p.parse_args()
    base = scn.bundled(a.scenario)
    default = 100_000 if a.scenario == "crash" else base.population.count
    n = a.accounts if a.accounts is not None else (10_000 if a.quick else default)
    sc = base.with_population(n) if n != base.population.count else base
    seed = sc.seed if a.seed is None else a.seed
    market = "an imported day" if sc.market is not None else f"{sc.steps:,} steps of {sc.step_s} s"
    print(
        f"scenario {sc.name!r} scaled from {base.population.count:,} to {n:,} accounts "
        f"(seed {seed}): {market}, {sc.makers.count} makers"
    )

    t = time.perf_counter()
    commands = list(sc.commands(seed))
    gen_s = time.perf_counter() - t
    kinds = Counter(c["type"] for c in commands)
    print(f"generate: {len(commands):,} commands in {gen_s:.2f} s  " + _mix(kinds))

    with tempfile.TemporaryDirectory(prefix="clearsim-bench-") as tmp:
        log = Path(tmp) / "bench.log"
        gc.collect()
        prof = cProfile.Profile() if a.profile else None
        t = time.perf_counter()
        if prof is not None:
            prof.enable()
        _, summary = run(sc.config, commands, log, seed=seed)
        if prof is not None:
            prof.disable()
        run_s = time.perf_counter() - t
        size = log.stat().st_size
        digest = hashlib.sha256(log.read_bytes()).hexdigest()
        if a.keep:
            shutil.copyfile(log, a.keep)
        rate = summary.events / run_s if run_s else 0.0
        print(
            f"run:      {summary.commands:,} commands ({summary.rejected:,} rejected) -> "
            f"{summary.events:,} events in {run_s:.2f} s = {rate:,.0f} events/s, "
            f"{summary.commands / run_s:,.0f} commands/s; log {size / 1e6:.1f} MB, "
            f"sha256 {digest}"
        )
        reader = LogReader(log)
        t = time.perf_counter()
        story = Story(reader.header.config)
        events: Counter[str] = Counter()
        for ev in reader.events():
            events[ev.TYPE] += 1
            story.feed(ev)
        fold_s = time.perf_counter() - t
    print(f"events:   {_mix(events)}")
    if story.rejected:
        print(f"rejected: {_mix(story.rejected)}")
    print(
        f"story:    folded from the log in {fold_s:.2f} s: {len(story.liquidated):,} liquidated, "
        f"book {story.book.count:,} / backstop {story.backstop.count:,} / "
        f"adl {story.adl.count:,}; fund min {story.fund.min_equity / story.scale:,.0f} "
        f"end {story.fund.equity / story.scale:,.0f}; system debt "
        f"{story.system_debt / story.scale:,.2f}"
    )
    if prof is not None:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(15)
        print(s.getvalue())
    print(f"accounts={n} events={summary.events} seconds={run_s:.2f} events_per_s={rate:.0f}")
    return 0


def _mix(c: Counter[str]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in c.most_common(8))


if __name__ == "__main__":
    raise SystemExit(main())
