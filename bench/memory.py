"""Memory per account of a live exchange at scale (issue 11: <= 800 bytes at 1M accounts).

What it measures
    An ``Exchange`` with one linear perpetual (the ``bench/exchange.py`` instrument) and
    ``--accounts`` accounts, each of which deposits and then holds one position: accounts
    are paired, one buys and the other sells the same lot at the same price, so every
    account ends with a position, an entry price, a slot in the liquidation index and no
    resting order. Memory is Python's own allocation count (``tracemalloc``'s traced
    total, exact and independent of the allocator's arenas) after a ``gc.collect()``,
    taken before the accounts exist and after; the difference divided by the number of
    accounts is the headline. Process RSS growth is printed beside it (it includes
    allocator slack and freed-but-kept pages, so it is an upper bound).

    Baseline: the bare minimum a ledger of this shape needs in CPython, a dict from the
    same account ids to a 3-tuple of small ints per account (balance, position, entry),
    measured the same way; ``ratio`` = exchange bytes / baseline bytes.

The last line is machine-readable::

    accounts=<n> bytes_per_account=<int> rss_bytes_per_account=<int>
    baseline_bytes_per_account=<int> ratio=<x>      (one line)

``--no-trace`` skips tracemalloc (it slows allocation ~2x) and reports RSS only.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
import tracemalloc

# The instrument, clock and config of bench/exchange.py (this folder is on sys.path when
# the script runs), so the figures are comparable.
from exchange import CONFIG, SYMBOL, T0

from clearsim.clearing import Config, Exchange


def rss_bytes() -> int:
    """Resident set size now (Linux /proc; the peak from getrusage elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def account_id(i: int) -> str:
    return f"acct{i:07d}"


def populate(ex: Exchange, n: int) -> None:
    """n accounts, paired buyer/seller at one price: each holds one position."""
    apply = ex.apply
    apply({"type": "index_price", "ts": T0, "symbol": SYMBOL, "price": "50000"})
    ts = T0 + 1
    for i in range(0, n - n % 2, 2):
        a, b = account_id(i), account_id(i + 1)
        apply({"type": "deposit", "ts": ts, "account": a, "amount": "1000"})
        apply({"type": "deposit", "ts": ts, "account": b, "amount": "1000"})
        apply(
            {"type": "order", "ts": ts, "account": a, "id": "o", "symbol": SYMBOL,
             "side": "buy", "qty": "0.001", "price": "50000", "tif": "gtc"}
        )
        apply(
            {"type": "order", "ts": ts, "account": b, "id": "o", "symbol": SYMBOL,
             "side": "sell", "qty": "0.001", "price": "50000", "tif": "ioc"}
        )
        ts += 1


def measure(n: int, trace: bool) -> tuple[int, int, float]:
    """(traced bytes per account, RSS bytes per account, seconds) for the exchange."""
    gc.collect()
    if trace:
        tracemalloc.start()
    ex = Exchange(Config.from_dict(CONFIG))
    gc.collect()
    traced0 = tracemalloc.get_traced_memory()[0] if trace else 0
    rss0 = rss_bytes()
    t = time.process_time()
    populate(ex, n)
    secs = time.process_time() - t
    gc.collect()
    traced = (tracemalloc.get_traced_memory()[0] - traced0) if trace else 0
    rss = rss_bytes() - rss0
    if trace:
        tracemalloc.stop()
    held = len(ex.accounts)
    if held < n:  # the accounts must really be there, or the figure means nothing
        raise SystemExit(f"error: {held} accounts built, {n} asked for")
    return traced // n, rss // n, secs


def baseline(n: int) -> int:
    gc.collect()
    tracemalloc.start()
    t0 = tracemalloc.get_traced_memory()[0]
    d = {account_id(i): (1_000_000_000 + i, 1, 50_000_000_000) for i in range(n)}
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - t0
    tracemalloc.stop()
    del d
    return used // n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--no-trace", action="store_true")
    a = ap.parse_args()
    n = a.accounts
    per, rss, secs = measure(n, not a.no_trace)
    base = baseline(n)
    print(f"exchange: {n:,} accounts with a position each, built in {secs:.1f} s CPU")
    print(f"  traced {per} B/account, RSS growth {rss} B/account")
    print(f"baseline dict of 3-tuples: {base} B/account")
    ratio = per / base if base else 0.0
    print(
        f"accounts={n} bytes_per_account={per} rss_bytes_per_account={rss} "
        f"baseline_bytes_per_account={base} ratio={ratio:.2f}"
    )


if __name__ == "__main__":
    main()
