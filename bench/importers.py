"""Importer throughput (issue 12): CPU time of ``import_files`` next to a plain baseline that
only reads the same file (``csv.reader`` for a CSV; ``gzip`` + ``orjson.loads`` per line
for a capture), each in this one process.

- trades: a generated tardis ``trades`` CSV of N rows (default 1M), as prices (the default)
  and as ``#market`` orders;
- L2: a generated tardis ``incremental_book_L2`` CSV of N rows, ``--book 20``;
- capture: the shared Binance capture (``../shared/data/binance-usdm``, 74,655 messages),
  with no book (trades only), ``--book top`` and ``--book 20``.

CPU time (``time.process_time``), best of ``--repeat`` runs, so that other processes on
the machine matter less. The last line is the headline:
``trades_rows_per_s=... (csv.reader alone ...) capture_msgs_per_s=... (gzip+orjson alone ...)``.

    .venv/bin/python bench/importers.py [--rows N] [--repeat K]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from clearsim.replay.importers import import_files

ROOT = Path(__file__).resolve().parents[1]
CAPTURE = ROOT.parent / "shared" / "data" / "binance-usdm" / "ethusdt_20240808.gz"
sys.path.insert(0, str(ROOT / "tests"))
from test_importers_memory import gen_l2  # noqa: E402


def gen_trades(path: Path, n: int) -> None:
    rnd = random.Random(1)
    ts, p = 1_583_020_803_145_000, 850_000
    with open(path, "w") as f:
        f.write("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n")
        rows = []
        for i in range(n):
            ts += rnd.randint(0, 2000)
            p += rnd.randint(-2, 2)
            side = "buy" if rnd.random() < 0.5 else "sell"
            rows.append(
                f"bitmex,XBTUSD,{ts},{ts + 100_000},{i:08x}-212c-e8b0-1706-9b9c4f3d5ecf,"
                f"{side},{p // 10}.{p % 10},{rnd.randint(1, 5000)}\n"
            )
            if len(rows) == 10_000:
                f.write("".join(rows))
                rows.clear()
        f.write("".join(rows))


def cpu(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def csv_baseline(path: Path) -> int:
    with open(path, newline="") as f:
        return sum(1 for _ in csv.reader(f))


def capture_baseline(path: Path) -> int:
    n = 0
    with gzip.open(path) as f:
        for line in f:
            orjson.loads(line[line.find(b" ") + 1 :])
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clearsim_bench_import_"))
    out = tmp / "out.jsonl"
    trades = tmp / "trades.csv"
    l2 = tmp / "l2.csv"
    gen_trades(trades, a.rows)
    gen_l2(l2, a.rows)

    def imp(fmt: str, path: Path, **kw: str) -> Callable[[], object]:
        return lambda: import_files(fmt, [str(path)], out, force=True, **kw)

    n = a.rows
    base = n / cpu(lambda: csv_baseline(trades), a.repeat)
    t_prices = n / cpu(imp("tardis", trades), a.repeat)
    t_orders = n / cpu(imp("tardis", trades, trades="orders"), a.repeat)
    print(f"trades CSV {n:,} rows: csv.reader alone {base:,.0f} rows/s; import as prices "
          f"{t_prices:,.0f} rows/s, as #market orders {t_orders:,.0f} rows/s")  # fmt: skip
    l2_base = n / cpu(lambda: csv_baseline(l2), a.repeat)
    l2_rate = n / cpu(imp("tardis", l2, book="20"), a.repeat)
    print(f"L2 CSV {n:,} rows: csv.reader alone {l2_base:,.0f} rows/s; import --book 20 "
          f"{l2_rate:,.0f} rows/s")  # fmt: skip
    cap_rate = {}
    if CAPTURE.exists():
        m = capture_baseline(CAPTURE)
        cap_base = m / cpu(lambda: capture_baseline(CAPTURE), a.repeat)
        for book in ("none", "top", "20"):
            cap_rate[book] = m / cpu(imp("hftbacktest", CAPTURE, book=book), a.repeat)
        print(f"capture {m:,} messages: gzip+orjson alone {cap_base:,.0f} msgs/s; import "
              + ", ".join(f"--book {b} {r:,.0f} msgs/s" for b, r in cap_rate.items()))  # fmt: skip
    for p in (trades, l2, out):
        p.unlink(missing_ok=True)
    os.rmdir(tmp)
    headline = (
        f"trades_rows_per_s={t_orders:.0f} (as orders; as prices {t_prices:.0f}; "
        f"csv.reader alone {base:.0f}) l2_rows_per_s={l2_rate:.0f} (csv.reader alone "
        f"{l2_base:.0f})"
    )
    if cap_rate:
        headline += (
            f" capture_msgs_per_s={cap_rate['20']:.0f} (--book 20; no book "
            f"{cap_rate['none']:.0f}; gzip+orjson alone {cap_base:.0f})"
        )
    print(headline)


if __name__ == "__main__":
    main()
