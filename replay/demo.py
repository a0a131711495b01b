"""``clearsim demo``: the bundled crash scenario, run end to end and told as a story.

Thousands of leveraged accounts open positions against market makers; the index then falls
about a third in minutes while the makers pull their depth, so liquidations sweep a thin
book, the insurance fund pays shortfalls until it runs dry, the backstop vault takes over
what it can and auto-deleveraging closes the rest (``replay/scenarios/crash.toml``).

The run writes a real log (to a temporary directory unless ``-o`` names one), and the story
is then folded from that log alone (:mod:`replay.story`): re-read, checksums verified, no
engine involved, so what is printed is what the log proves.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from clearsim.events.log import LogReader
from clearsim.replay import scenario as scn
from clearsim.replay.runner import run
from clearsim.replay.story import Story, render


def main(
    output: str | None = None,
    seed: int | None = None,
    force: bool = False,
    name: str = "crash",
) -> int:
    sc = scn.bundled(name)
    seed = sc.seed if seed is None else seed
    with tempfile.TemporaryDirectory(prefix="clearsim-demo-") as tmp:
        path = Path(output) if output else Path(tmp) / f"{sc.name}.log"
        print(
            f"clearsim demo: {sc.name!r} (seed {seed}): {sc.population.count:,} leveraged "
            f"accounts, {sc.makers.count} market makers, {sc.steps * sc.step_s // 60} minutes on "
            f"{sc.symbol}; waterfall {' -> '.join(sc.config.waterfall.steps)}",
            flush=True,
        )
        t0 = time.perf_counter()
        _, summary = run(sc.config, sc.commands(seed), path, seed=seed, force=force)
        t1 = time.perf_counter()
        reader = LogReader(path)
        story = Story(reader.header.config).feed_all(reader.events())
        t2 = time.perf_counter()
        where = str(path) if output else "a temporary log"
        print(
            f"ran {summary.commands:,} commands into {summary.events:,} events in "
            f"{t1 - t0:.1f} s, written to {where}; story read back from the log in "
            f"{t2 - t1:.1f} s\n"
        )
        print(render(story), end="")
    return 0
