"""Wall time of a 16-cell sweep of the demo scenario on 1 and 2 workers, and on Ray.

What it measures
    The bundled crash (``replay/scenarios/crash.toml``, 4,000 accounts, 30 minutes) swept
    over ``insurance_fund.initial`` (0, 15,000, 150,000, 1,500,000 USDT) x seeds 1-4: 16
    independent cells, each run into a log and folded into a row (``replay/sweep``). Three
    passes over the same cells:

    1. ``--workers 1``: one after another in this process (the plain baseline);
    2. ``--workers 2``: the process pool (spawn), 2 worker processes;
    3. Ray with 2 CPUs (a local Ray, started first and timed apart: ``ray_init_s``).

    ``--accounts N`` adds ``population.count = N`` to every cell (a smaller market);
    ``--quick``: 4 cells (2 fund sizes x 2 seeds) at 300 accounts; ``--no-ray`` skips
    pass 3; ``--twice`` runs the passes again in reverse order and keeps each one's best
    wall time (a machine whose load drifts biases the later passes less).

How to read the output
    Per pass: wall seconds; CPU seconds (this process, or the workers' when they are child
    processes: ``getrusage(RUSAGE_CHILDREN)``; Ray's workers are not children, so "-"); the
    CPU the cells themselves took ("in cells": the sum of the rows' ``cpu_s``, measured in
    each worker, so comparable across the three); the load average before and after (other
    work on the machine inflates wall time, not CPU); and whether the pass's rows equal the
    baseline's, clock columns aside (they must). ``speedup`` = serial wall / pool wall
    (2 workers: at most 2x); ``cpu_speedup_bound`` = serial CPU / (pool CPU / 2), the
    speedup two otherwise idle cores would give (the pool's own costs included: spawning,
    imports, pickling), which other load on the machine does not inflate. The Ray overhead
    per run is (Ray wall - pool wall) x 2 workers / 16 runs: the extra worker-seconds Ray
    spends per cell against the process pool, its start-up (``ray_init_s``) excluded; on a
    loaded machine it is noise, and ``ray_cells_cpu_s`` against the pool's in-cell CPU says
    whether the cells themselves cost the same there. The last line is::

        cells=16 serial_s=<s> pool2_s=<s> speedup=<x> serial_cpu_s=<s> pool2_cpu_s=<s>
        cpu_speedup_bound=<x> ray2_s=<s> ray_init_s=<s> ray_cells_cpu_s=<s>
        ray_overhead_per_run_s=<s>
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from clearsim.replay.sweep import results, spec
from clearsim.replay.sweep.pool import Backend, run_cells

CRASH = Path(__file__).resolve().parents[1] / "replay" / "scenarios" / "crash.toml"


def _sweep_file(d: Path, accounts: int | None, quick: bool) -> Path:
    extra = f'"population.count" = [{accounts}]\n' if accounts else ""
    seeds = "[1, 2]" if quick else "[1, 2, 3, 4]"
    funds = '["0", "150000"]' if quick else '["0", "15000", "150000", "1500000"]'
    p = d / "bench.sweep.toml"
    p.write_text(
        f'[sweep]\nscenarios = ["{CRASH}"]\nseeds = {seeds}\n'
        f'[grid]\n"insurance_fund.initial" = {funds}\n{extra}'
    )
    return p


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _pass(
    name: str, cells: list[spec.Cell], backend: Backend, order: list[str]
) -> tuple[float, float, Any]:
    load0 = os.getloadavg()[0]
    cpu0, kids0 = time.process_time(), _children_cpu()
    t0 = time.perf_counter()
    outcomes = list(run_cells(cells, backend))
    wall = time.perf_counter() - t0
    cpu, kids = time.process_time() - cpu0, _children_cpu() - kids0
    load1 = os.getloadavg()[0]
    in_cells = sum(o.cpu_s for o in outcomes)
    if backend.ray:
        cpu_text = "-"
    elif backend.workers > 1:
        cpu_text = f"{kids:.1f} (workers)"
    else:
        cpu_text = f"{cpu:.1f}"
    print(
        f"{name:<10} wall {wall:7.1f} s  cpu {cpu_text:>16}  in cells {in_cells:6.1f} s  "
        f"load {load0:.1f} -> {load1:.1f}"
    )
    total = in_cells if backend.ray else cpu + kids  # Ray's workers are not our children
    return wall, total, results.merge(None, results.to_table(outcomes), order)


def _ray_pass(cells: list[spec.Cell], order: list[str]) -> tuple[float, tuple[float, float, Any]]:
    """(ray.init seconds, the pass) on a local Ray of 2 CPUs started for it."""
    import logging

    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)  # fmt: skip
    init = time.perf_counter() - t0
    try:
        return init, _pass("ray x2", cells, Backend(workers=2, ray=True), order)
    finally:
        ray.shutdown()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, help="population.count of every cell")
    p.add_argument("--no-ray", action="store_true", help="skip the Ray pass")
    p.add_argument("--quick", action="store_true", help="4 cells at 300 accounts")
    p.add_argument(
        "--twice",
        action="store_true",
        help="run the passes, then again in reverse order; keep each pass's best wall time",
    )
    a = p.parse_args()
    accounts = 300 if a.quick and a.accounts is None else a.accounts
    with tempfile.TemporaryDirectory() as tmp:
        sweep = spec.load(_sweep_file(Path(tmp), accounts, a.quick))
        cells = sweep.cells()
        order = [c.key for c in cells]
        print(
            f"{len(cells)} cells of {CRASH.name}"
            + (f" at {accounts:,} accounts" if accounts else "")
            + f"; {os.cpu_count()} CPUs"
        )
        names = ["serial", "pool x2"] + ([] if a.no_ray else ["ray x2"])
        sequence = names + (names[::-1] if a.twice else [])
        best: dict[str, tuple[float, float, Any]] = {}
        ray_init = float("nan")
        for name in sequence:
            if name == "ray x2":
                init, got = _ray_pass(cells, order)
                ray_init = min(init, ray_init) if ray_init == ray_init else init
            else:
                got = _pass(name, cells, Backend(workers=1 if name == "serial" else 2), order)
            if name not in best or got[0] < best[name][0]:
                best[name] = got
        serial, serial_cpu, base = best["serial"]
        pool, pool_cpu, _ = best["pool x2"]
        ray_cpu = best["ray x2"][1] if "ray x2" in best else float("nan")
        for name, (_, _, table) in best.items():
            same = results.deterministic(table).equals(results.deterministic(base))
            print(f"{name:<10} rows equal the serial rows: {same}")
        ray_s = overhead = float("nan")
        if "ray x2" in best:
            ray_s = best["ray x2"][0]
            overhead = (ray_s - pool) * 2 / len(cells)
    # What 2 workers would give with a core each: the serial CPU over half the pool's CPU
    # (its workers' and this process's); a loaded machine inflates wall time, not this.
    bound = serial_cpu / (pool_cpu / 2)
    print(
        f"cells={len(cells)} serial_s={serial:.1f} pool2_s={pool:.1f} "
        f"speedup={serial / pool:.2f}x serial_cpu_s={serial_cpu:.1f} pool2_cpu_s={pool_cpu:.1f} "
        f"cpu_speedup_bound={bound:.2f}x ray2_s={ray_s:.1f} ray_init_s={ray_init:.1f} "
        f"ray_cells_cpu_s={ray_cpu:.1f} ray_overhead_per_run_s={overhead:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
