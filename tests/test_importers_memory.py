"""``clearsim import`` streams: its memory does not grow with the file (issue 12).

A generated tardis ``incremental_book_L2`` file (the stateful path: the book, the price
key cache) of 200k and of 2M rows is imported in a fresh interpreter each, which reports
the growth of its peak RSS across the import (the kernel's peak counter reset first, so
start-up's own peak does not hide it); the two growths must agree within a bound that does
not depend on the file's size. Slow (about a minute on a loaded machine).
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_MEASURE = """
import resource, sys
from clearsim.replay.importers import import_files

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # KB

try:  # reset the peak (VmHWM) so that start-up's own peak does not hide the import's
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base, peak_of = status("VmRSS"), lambda: status("VmHWM")
except OSError:
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_of = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
s = import_files("tardis", [sys.argv[1]], sys.argv[2], book="20", force=True)
print(s.rows, s.commands, peak_of() - base)
"""


def gen_l2(path: Path, n: int, seed: int = 7) -> None:
    """A walking mid; each update sets or removes a level within 50 ticks of it, and the
    levels the mid walks past are removed (the book stays uncrossed)."""
    rnd = random.Random(seed)
    ts, mid = 1_640_995_200_000_000, 500_000
    book: dict[int, bool] = {}  # price in ticks -> is a bid
    with open(path, "w") as f:
        f.write("exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n")
        written = 0
        while written < n:
            ts += rnd.randint(0, 3000)
            step = rnd.randint(-3, 3)
            mid += step
            rows = []
            # only the prices the mid walked over (and the mid itself) can cross it
            for p in range(mid - max(step, 0), mid - min(step, 0) + 1):
                bid = book.get(p)
                if bid is not None and (p >= mid if bid else p <= mid):
                    rows.append((p, book.pop(p), "0"))
            for _ in range(4):
                bid = rnd.random() < 0.5
                p = mid - rnd.randint(1, 50) if bid else mid + rnd.randint(1, 50)
                q = rnd.choice(("0", "0.5", "1.25", "3"))
                if book.get(p, bid) != bid:
                    continue
                if q == "0":
                    book.pop(p, None)
                else:
                    book[p] = bid
                rows.append((p, bid, q))
            f.write(
                "".join(
                    f"x,BTCUSDT,{ts},{ts},false,{'bid' if b else 'ask'},{p // 10}.{p % 10},{q}\n"
                    for p, b, q in rows
                )
            )
            written += len(rows)


def growth(tmp: Path, rows: int) -> tuple[int, int, int]:
    src = tmp / f"l2_{rows}.csv"
    gen_l2(src, rows)
    p = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(src), str(tmp / f"out_{rows}.jsonl")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    src.unlink()
    n, commands, kb = (int(x) for x in p.stdout.split())
    print(f"{rows:,} rows: {commands:,} commands, peak RSS +{kb:,} KB")
    return n, commands, kb


def test_peak_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    small = growth(tmp_path, 200_000)
    big = growth(tmp_path, 2_000_000)
    assert small[0] >= 200_000 and big[0] >= 2_000_000
    assert big[1] > 5 * small[1]  # the big file did produce its commands
    # KB of peak RSS growth across the import: the same for 10x the rows
    assert big[2] - small[2] < 8_000, (small, big)
    assert big[2] < 64_000, (small, big)
