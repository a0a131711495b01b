"""Cost of one mark update as the number of accounts with positions grows.

What it measures
    Under ``mark = "oracle"`` every ``index_price`` command moves the mark, and the exchange
    must find the accounts the move makes liquidatable. DESIGN §4 asks for that to cost
    O(log n + k) for k accounts that cross, not a scan. This bench builds populations of
    1k, 100k and 1M single-position accounts (``--quick``: 1k, 10k, 100k) none of which a
    small mark move crosses, then times ``Exchange.apply`` on ``index_price`` commands
    alternating between two prices (50000.0 and 50001.0), so every command really changes
    the mark and no one is liquidated.

How the population is built (timed separately, reported as "build")
    One market maker (``mm``, a huge deposit) rests a sell order at 50000.0 for exactly the
    lots the population needs; each account deposits 20.00-30.00 USDT (seeded) and buys
    0.001 BTC with an ``ioc`` at 50000.0. So each account holds one long of 0.001 with
    liquidation price ~20000-30000 (distinct per account), and ``mm`` one large short whose
    liquidation price is far above. Each size is built from scratch in its own exchange
    and all are kept alive; then they are measured in interleaved rounds, so a change in
    the machine's load during the run hits every size alike. The config adds a large last
    risk tier so the maker's short stays within the tiers.

How to read the output
    Per size: build time and rate, process peak RSS; then the mark-update cost in
    µs: ``--batches`` rounds of ``--updates`` commands per size, each command timed on its
    own, the sizes taking turns every ``--chunk`` commands (so load from other processes
    hits every size alike); the headline is the mean without the slowest 1% (on a shared
    2-core machine those are commands preempted for milliseconds), followed by the median
    and the best round's raw mean (wall time / commands, nothing dropped). The
    headline includes what every command pays (parsing, the ``Input``, ``IndexPrice`` and
    ``MarkPrice`` events, the premium sample); only the index lookup depends on n. The
    last line is::

        mark_update_us_1k=<x> mark_update_us_1M=<y> ratio=<y/x>

    with ``--quick`` the largest stage (100k) stands in for 1M (the line before says so).
    Target: ratio <= 2 (the cost does not grow with the population).
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import time
from typing import Any

from clearsim.clearing import Config, Exchange
from clearsim.events.types import LiquidationTriggered, MarkPrice, Rejected

SYMBOL = "BTC-USD"
T0 = 1_700_000_000_000_000  # µs
PRICE = "50000.0"
MARKS = ("50000.0", "50001.0")

CONFIG: dict[str, Any] = {
    "exchange": {"collateral": "USDT", "collateral_decimals": 6, "mark": "oracle"},
    "insurance_fund": {"initial": "0"},
    "instruments": [
        {
            "symbol": SYMBOL,
            "tick_size": "0.1",
            "lot_size": "0.001",
            "tiers": [
                {"max_notional": "50000", "imr_ppm": 100000, "mmr_ppm": 4000},
                {"max_notional": "250000", "imr_ppm": 200000, "mmr_ppm": 5000},
                # room for the market maker's short against 1M accounts (50M USDT notional)
                {"max_notional": "1000000000", "imr_ppm": 500000, "mmr_ppm": 10000},
            ],
        }
    ],
}


def fmt_lots(n: int) -> str:
    """Lots of 0.001 as a decimal string."""
    return f"{n // 1000}.{n % 1000:03d}"


def _check(evs: list[Any], what: str) -> None:
    for e in evs:
        if isinstance(e, Rejected):
            raise SystemExit(f"{what} rejected: {e.reason}")


def fmt_n(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


class Population:
    """An exchange with ``n`` single-position longs and one market maker short."""

    def __init__(self, seed: int) -> None:
        self.ex = Exchange(Config.from_dict(CONFIG))
        self.rng = random.Random(seed)
        self.ts = T0
        self.n = 0
        self.mm_order = 0
        self._apply({"type": "deposit", "account": "mm", "amount": "10000000000"}, "mm deposit")
        self._apply({"type": "index_price", "symbol": SYMBOL, "price": PRICE}, "index")

    def _apply(self, cmd: dict[str, Any], what: str) -> list[Any]:
        self.ts += 1
        cmd["ts"] = self.ts
        evs = self.ex.apply(cmd)
        _check(evs, what)
        return evs

    def grow(self, target: int, progress_every: int = 0) -> None:
        """Add accounts until there are ``target``; each buys 0.001 from ``mm``."""
        add = target - self.n
        t0 = time.perf_counter()
        if add <= 0:
            return
        self.mm_order += 1
        self._apply({"type": "order", "account": "mm", "id": f"mm{self.mm_order}",
                     "symbol": SYMBOL, "side": "sell", "qty": fmt_lots(add), "price": PRICE,
                     "tif": "gtc"}, "mm order")  # fmt: skip
        apply = self.ex.apply
        randint = self.rng.randint
        ts = self.ts
        for i in range(self.n, target):
            acct = f"u{i}"
            cents = randint(2000, 3000)
            ts += 1
            e1 = apply({"type": "deposit", "ts": ts, "account": acct,
                        "amount": f"{cents // 100}.{cents % 100:02d}"})  # fmt: skip
            ts += 1
            e2 = apply({"type": "order", "ts": ts, "account": acct, "id": "b", "symbol": SYMBOL,
                        "side": "buy", "qty": "0.001", "price": PRICE, "tif": "ioc"})  # fmt: skip
            # Cheap sanity check: deposit = Input + Deposit; the buy is never rejected.
            if len(e1) != 2 or type(e2[-1]) is Rejected:
                _check(e1 + e2, f"account {acct}")
            if progress_every and (i + 1) % progress_every == 0:
                dt = time.perf_counter() - t0
                done = i + 1 - self.n
                print(f"    ... {fmt_n(i + 1)} accounts, {dt:.0f} s, {done / dt:,.0f} accounts/s, "
                      f"peak RSS {rss_mib():,.0f} MiB", flush=True)  # fmt: skip
        self.ts = ts
        self.n = target


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_chunk(pop: Population, updates: int) -> tuple[list[float], float]:
    """Time ``updates`` ``index_price`` mark moves, each command on its own.

    Returns the single-command times and the chunk's wall time, in µs.
    """
    apply = pop.ex.apply
    perf = time.perf_counter
    cmds = []
    for j in range(updates):
        pop.ts += 1
        # The mark is MARKS[0] before and after each chunk (updates is even).
        cmds.append({"type": "index_price", "ts": pop.ts, "symbol": SYMBOL,
                     "price": MARKS[(j + 1) % 2]})  # fmt: skip
    times = [0.0] * updates
    t_chunk = perf()
    for j, c in enumerate(cmds):
        t0 = perf()
        apply(c)
        times[j] = perf() - t0
    wall = (perf() - t_chunk) * 1e6
    return [t * 1e6 for t in times], wall


def check_quiet(pop: Population) -> None:
    """Every update moves the mark and crosses no one."""
    for j in range(2):
        pop.ts += 1
        evs = pop.ex.apply({"type": "index_price", "ts": pop.ts, "symbol": SYMBOL,
                            "price": MARKS[(j + 1) % 2]})  # fmt: skip
        kinds = {type(e) for e in evs}
        if MarkPrice not in kinds or LiquidationTriggered in kinds:
            raise SystemExit(f"unexpected events for a mark update: {evs}")


def trimmed_mean(xs: list[float]) -> float:
    """Mean without the slowest 1% (preempted commands on a shared machine)."""
    s = sorted(xs)
    kept = s[: max(1, len(s) * 99 // 100)]
    return sum(kept) / len(kept)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="1k, 10k, 100k instead of 1k, 100k, 1M")
    p.add_argument("--sizes", type=str, default=None, help="comma-separated account counts")
    p.add_argument("--updates", type=int, default=2000, help="index_price commands per batch")
    p.add_argument("--batches", type=int, default=3, help="rounds per size")
    p.add_argument("--chunk", type=int, default=100,
                   help="commands per size before switching to the next size (even)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.chunk < 2 or args.chunk % 2 or args.updates < args.chunk:
        p.error("--chunk must be even, >= 2 and <= --updates (the mark ends where it started)")
    if args.sizes:
        sizes = sorted(int(s) for s in args.sizes.split(","))
    else:
        sizes = [1000, 10_000, 100_000] if args.quick else [1000, 100_000, 1_000_000]

    print("build (each size from scratch, in its own exchange; 2 commands per account):")
    pops: list[Population] = []
    for n in sizes:
        pop = Population(args.seed)
        t0 = time.perf_counter()
        pop.grow(n, progress_every=100_000 if n >= 200_000 else 0)
        build = time.perf_counter() - t0
        indexed = len(pop.ex.instruments[SYMBOL].liq)
        if indexed < n:  # every long must be in the index (the maker's short may be too)
            raise SystemExit(f"only {indexed} of {n} accounts are in the liquidation index")
        check_quiet(pop)
        pops.append(pop)
        rate = n / build if build > 0 else float("inf")
        print(f"  {fmt_n(n):>5} accounts: {build:.1f} s ({rate:,.0f} accounts/s), "
              f"{indexed} in the liquidation index, peak RSS {rss_mib():,.0f} MiB",
              flush=True)  # fmt: skip

    chunks = args.updates // args.chunk
    print(f"mark updates: {args.batches} rounds x {chunks * args.chunk} index_price commands "
          f"per size alternating {MARKS[0]}/{MARKS[1]}; sizes interleaved every "
          f"{args.chunk} commands")  # fmt: skip
    singles: list[list[float]] = [[] for _ in pops]
    best_batch = [float("inf")] * len(pops)
    gc.collect()
    for _ in range(args.batches):
        wall = [0.0] * len(pops)
        for _ in range(chunks):
            for i, pop in enumerate(pops):
                times, w = time_chunk(pop, args.chunk)
                singles[i].extend(times)
                wall[i] += w
        for i in range(len(pops)):
            best_batch[i] = min(best_batch[i], wall[i] / (chunks * args.chunk))
    results: list[tuple[int, float]] = []
    for i, n in enumerate(sizes):
        check_quiet(pops[i])
        mean_us = trimmed_mean(singles[i])
        results.append((n, mean_us))
        print(f"  {fmt_n(n):>5} accounts: mark update {mean_us:.2f} µs (median "
              f"{statistics.median(singles[i]):.2f}, best round raw mean "
              f"{best_batch[i]:.2f})")  # fmt: skip

    small, large = results[0], results[-1]
    ratio = large[1] / small[1]
    print(f"ratio {fmt_n(large[0])}/{fmt_n(small[0])} = {ratio:.2f} (target <= 2): "
          f"{'met' if ratio <= 2 else 'NOT met'}")  # fmt: skip
    if small[0] != 1000 or large[0] != 1_000_000:
        print(f"note: in the last line '1k' is {fmt_n(small[0])} accounts and '1M' is "
              f"{fmt_n(large[0])} accounts (the smallest and largest sizes run)")  # fmt: skip
    print(f"mark_update_us_1k={small[1]:.2f} mark_update_us_1M={large[1]:.2f} "
          f"ratio={ratio:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
