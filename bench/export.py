"""Throughput of ``clearsim export`` to Parquet and of ``open_log(path).events()``.

What it measures
    On one log (``--log``; by default the bundled crash scaled to ``--accounts`` 100,000,
    about 1.1M events, generated once into ``/tmp/clearsim-bench-export-<n>.log``):

    - ``baseline``: the file's lines parsed with ``orjson.loads`` one by one, nothing else
      (what any per-line reader costs at least);
    - ``export``: ``replay.tables.export.export`` to a Parquet file, checksums verified
      (the default) and with ``verify=False``;
    - ``open_log``: ``clearsim.open_log(path).events()``, a pandas DataFrame of every event.

    Each is timed in wall-clock and CPU seconds (``time.process_time``, which includes
    Arrow's worker threads): on a shared machine the CPU figure is the steadier one.

How to read the output
    One line per measurement, then the headline (machine-readable; rates in events per
    CPU second)::

        events=<n> baseline_per_s=<n> export_per_s=<n> export_noverify_per_s=<n> open_log_s=<cpu s>
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

import clearsim
from clearsim.replay import scenarios as scn
from clearsim.replay.runner import run
from clearsim.replay.tables.export import export


def _timed(name: str, n: int, fn: Callable[[], Any]) -> float:
    c, w = time.process_time(), time.perf_counter()
    fn()
    cpu, wall = time.process_time() - c, time.perf_counter() - w
    print(f"{name:<18} {wall:7.2f} s wall {cpu:7.2f} s cpu  {n / cpu:>12,.0f} events/cpu-s")
    return cpu


def _baseline(path: Path) -> None:
    loads = orjson.loads
    with path.open("rb") as f:
        f.readline()
        for line in f:
            loads(line)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--log", type=Path, help="the log to read (default: generate one)")
    p.add_argument("--accounts", type=int, default=100_000, help="population when generating")
    p.add_argument("--quick", action="store_true", help="10,000 accounts (about 110k events)")
    a = p.parse_args()
    if a.quick:
        a.accounts = 10_000
    log = a.log or Path(tempfile.gettempdir()) / f"clearsim-bench-export-{a.accounts}.log"
    if not log.exists():
        sc = scn.bundled("crash").with_population(a.accounts)
        print(f"generating {log} ({a.accounts:,} accounts) ...", flush=True)
        run(sc.config, sc.commands(sc.seed), log, seed=sc.seed)
    reader = clearsim.LogReader(log)
    reader.verify()
    events = reader.last_seq
    print(f"log {log}: {events:,} events, {log.stat().st_size / 1e6:,.0f} MB")
    with tempfile.TemporaryDirectory(prefix="clearsim-bench-") as tmp:
        out = Path(tmp) / "events.parquet"
        base = _timed("baseline (orjson)", events, lambda: _baseline(log))
        exp = _timed("export", events, lambda: export(log, out, force=True))
        size = os.path.getsize(out)
        fast = _timed(
            "export --no-verify", events, lambda: export(log, out, force=True, verify=False)
        )
        frame = _timed("open_log.events()", events, lambda: clearsim.open_log(log).events())
    print(f"parquet: {size / 1e6:,.1f} MB")
    print(
        f"events={events} baseline_per_s={events / base:.0f} export_per_s={events / exp:.0f} "
        f"export_noverify_per_s={events / fast:.0f} open_log_s={frame:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
