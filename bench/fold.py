"""Projection throughput: the fund fold over a big log (DESIGN §8).

Builds (once, cached in /tmp) a log of about N events by running the crash scenario and
repeating its records with renumbered seqs and causes (a synthetic stream, fine for a
projection: it reads only event fields), then times ``fold_fund`` with and without checksum
verification and the full ledger fold. Prints ``fold_events_per_s=<n>`` last (the unverified
fund fold).

    .venv/bin/python bench/fold.py [N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import orjson

from clearsim.events.codec import Header, seal_bytes
from clearsim.events.log import LogReader, LogWriter
from clearsim.replay.projections.fund import fold_fund
from clearsim.replay.projections.ledger import fold_ledger

BASE = "/tmp/clearsim_bench_crash.log"


def build(n: int) -> str:
    path = f"/tmp/clearsim_bench_{n}.log"
    if os.path.exists(path):
        return path
    if not os.path.exists(BASE):
        subprocess.run(
            [sys.executable, "-m", "clearsim", "run", "replay/scenarios/crash.toml", "-o", BASE],
            check=True,
        )
    reader = LogReader(BASE)
    recs = list(reader.records())
    for d in recs:
        del d["h"]
    w = LogWriter.create(path, Header.new(reader.header.config, reader.header.seed))
    w.close()
    prev = w.last_h.encode("ascii")
    seq = 0
    with open(path, "ab") as out:
        while seq < n:
            base = seq
            buf = []
            for d in recs:
                d2 = dict(d)
                d2["seq"] = base + d["seq"]
                if d["cause"]:
                    d2["cause"] = base + d["cause"]
                line, prev = seal_bytes(prev, orjson.dumps(d2, option=orjson.OPT_SORT_KEYS))
                buf.append(line)
            out.write(b"".join(buf))
            seq = base + len(recs)
    return path


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    path = build(n)
    total = LogReader(path).verify() or None
    assert total is None
    for verify in (True, False):
        t = time.perf_counter()
        r = fold_fund(path, verify=verify)
        dt = time.perf_counter() - t
        print(f"fold_fund verify={verify}: {r.last_seq} events in {dt:.3f}s "
              f"= {r.last_seq / dt:,.0f} events/s; {len(r.timeline)} fund rows")  # fmt: skip
    t = time.perf_counter()
    led, _ = fold_ledger(path)
    dt = time.perf_counter() - t
    print(f"ledger fold (verified, all records): {led.seq / dt:,.0f} events/s")
    t = time.perf_counter()
    r = fold_fund(path, verify=False)
    dt = time.perf_counter() - t
    print(f"fold_events_per_s={r.last_seq / dt:.0f}")


if __name__ == "__main__":
    main()
