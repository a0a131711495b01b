"""A Binance-scale historical day, end to end (issue 12): import, run, verify, through the CLI.

What it measures
    A generated stand-in of one BTCUSDT perpetual day at ``--scale S`` (1.0 = full size:
    3,000,000 aggregated trades, 20,000,000 incremental L2 rows, 100,000 accounts; every
    count scales linearly) goes through the real ``clearsim`` CLI, each phase a subprocess
    of its own whose resources are read with ``os.wait4`` (so CPU and peak RSS are that
    child's alone, not a max over every child so far):

    - ``csv.reader``: a plain baseline, ``csv.reader`` over the same two input files
      (nothing else), so the importers' cost can be read against just reading the CSV;
    - ``import trades``: ``clearsim import binance`` of the ``aggTrades`` CSV (and a
      ``fundingRate`` CSV, ``--funding``) with ``--trades both --every 1s``: every trade
      as a ``#market`` IOC order, the index at most once a second (Binance's own index
      and mark price cadence; without ``--every`` the day would hold 3M price steps);
    - ``import book``: ``clearsim import tardis`` of the ``incremental_book_L2`` CSV with
      ``--book 20`` (the 20 best levels per side as ``#market`` depth: Binance's deepest
      partial-book stream, about 2 USD of BTCUSDT at a 0.1 tick, and more quantity than
      any one entry order of the population needs; every level change beyond the shown 20
      is dropped by the importer, so a deeper book costs the run in proportion);
    - ``merge``: the two command files merged by ts into ``day.jsonl`` (``heapq.merge``;
      ``clearsim import`` takes one format per run, and this day is Binance trades plus a
      tardis book, so the bench merges them: not a clearsim verb);
    - ``run``: ``clearsim run day.toml``, a scenario with ``[market] commands =
      "day.jsonl"`` and a population of ``100,000 x S`` accounts arriving by a seeded
      Poisson stream across the whole day (``rate_per_min = count / 1440``);
    - ``verify``: ``clearsim verify`` of the log (chain, re-execution, conservation).

    Per phase: wall time, CPU (user + system of the child), the child's peak RSS, rows or
    events per second, the output's size. Generation is not part of the figures (it is
    reported on its own line). Below scale 1.0 the figures are extrapolated linearly to
    1.0 (and labelled as such); ``--check-linear`` also runs scale ``S / 4`` and prints
    each phase's cost per unit (per input row, per event) at both scales, so growth
    faster than linear shows as a rising per-unit cost.

The stand-in (deterministic from ``--seed``: ``random.Random``, no wall clock in the data)
    2024-08-08 UTC. The book starts with an ``is_snapshot`` block (about 700 levels a side
    within 100 USD of 60,000), then messages of rows sharing one timestamp: the levels the
    trades since the last message hit, set to what the trades left; the mid moving by a
    Gaussian number of ticks (sd 6; the crossed levels deleted, the opened ticks filled,
    and as many missing ticks filled beyond the other side's new touch: the book moves
    with the mid); and 1-12 level updates, half within 20 ticks of the touch and half
    20-999 ticks out. Trades (``aggTrades``, ms
    timestamps) take one price level each: the best bid or ask of the generated book, a
    log-uniform 0.001-5 BTC capped at that level's size. Timestamps are spread evenly over
    the 24 hours at every scale, so events are sparser in time at a smaller scale, but a
    message looks the same at every scale (the day's range grows with the square root of
    the scale: a calm day at 1.0, a quieter one below), except for one sell-off at every
    scale (``--crash-ppm``, default -2.5% from 14:00 over 20 minutes, a drift added to
    the walk of at most 6 ticks a message, so it takes about 2,500 messages: 20 minutes at
    1.0, longer at a smaller scale), so that liquidations and the waterfall are part of
    the day. Funding at 08:00, 16:00, 24:00.

How to re-run
    .venv/bin/python bench/day.py --scale 0.01                  # fast sanity (~1-2 min)
    .venv/bin/python bench/day.py --scale 0.05 --check-linear   # the README's figures
    .venv/bin/python bench/day.py --scale 0.05 --keep /tmp/day  # keep the files

The last line is the headline::

    headline: scale=S import=..s run=..s verify=..s total=..s | extrapolated 1.0: ...
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FULL_TRADES = 3_000_000
FULL_L2_ROWS = 20_000_000
FULL_ACCOUNTS = 100_000
DAY_S = 86_400
T0_US = 1_723_075_200_000_000  # 2024-08-08 00:00:00 UTC
SYMBOL = "BTCUSDT"
MID0 = 600_000  # ticks of 0.1: 60,000.0
BOOK_DEPTH = 20
SNAPSHOT_TICKS = 1_000  # the snapshot's levels lie within this many ticks of the touch
MOVE_SD = 6.0  # ticks per message
DAY_NAME = "2024-08-08"

BIN = Path(sys.executable).parent
CLEARSIM = str(BIN / "clearsim")

EXCHANGE_TOML = """\
[exchange]
preset = "binance"
collateral = "USDT"
collateral_decimals = 6
mark = "oracle"

[insurance_fund]
initial = "1000000"

[[instruments]]
symbol = "BTCUSDT"
kind = "linear_perpetual"
tick_size = "0.1"
lot_size = "0.001"
maker_fee_ppm = 200
taker_fee_ppm = 500
band_ppm = 50000
funding_interval_s = 0               # the imported fundingRate file carries the rates
tiers = [                            # Binance BTCUSDT's first brackets (125x .. 20x)
  { max_notional = "50000", imr_ppm = 8000, mmr_ppm = 4000 },
  { max_notional = "600000", imr_ppm = 10000, mmr_ppm = 5000 },
  { max_notional = "3000000", imr_ppm = 20000, mmr_ppm = 10000 },
  { max_notional = "12000000", imr_ppm = 40000, mmr_ppm = 20000 },
  { max_notional = "70000000", imr_ppm = 50000, mmr_ppm = 25000 },
]
"""

SCENARIO_TOML = """\
# Generated by bench/day.py: a stand-in Binance day as the market, {count:,} accounts on top.
[scenario]
name = "binance-day-{scale}"
seed = {seed}
symbol = "BTCUSDT"

{exchange}
[market]
commands = "day.jsonl"

[population]
count = {count}
leverage_min = 2
leverage_max = 100
leverage_dist = "skewed"
size_min = "100"                     # position notional, USDT
size_max = "200000"
size_dist = "log_uniform"
long_ppm = 550000
entry_slippage_ppm = 2000
arrivals = {{ kind = "poisson", rate_per_min = "{rate}" }}
"""


# --------------------------------------------------------------------------- generation


def price(ticks: int) -> str:
    return f"{ticks // 10}.{ticks % 10}"


def qty(lots: int) -> str:
    return f"{lots // 1000}.{lots % 1000:03d}" if lots else "0"  # a removal, as tardis writes it


def _level_lots(r: random.Random) -> int:
    """A level's size: log-uniform 0.001-20 BTC."""
    return max(1, int(10 ** r.uniform(0, 4.3)))


@dataclass
class Counts:
    trades: int = 0
    l2_rows: int = 0
    snapshot_rows: int = 0
    messages: int = 0
    funding: int = 0
    low: int = MID0
    high: int = MID0
    close: int = MID0


CRASH_AT_S = 14 * 3_600  # the sell-off starts at 14:00 UTC ...
CRASH_OVER_S = 20 * 60  # ... and lasts 20 minutes


def generate(
    d: Path, scale: float, seed: int, crash_ppm: int = 25_000
) -> tuple[Path, Path, Path, Counts]:
    """Write the day's aggTrades, incremental_book_L2 and fundingRate CSVs into ``d``.

    ``crash_ppm``: the mid falls by this much of MID0 (on top of its walk) linearly over
    ``CRASH_OVER_S`` from ``CRASH_AT_S``; a drift with no random draw, so 0 gives the same
    day without it."""
    crash_ticks = MID0 * crash_ppm // 1_000_000
    crashed = 0
    r = random.Random(seed)
    n_trades = max(1, round(FULL_TRADES * scale))
    n_rows = max(2 * SNAPSHOT_TICKS, round(FULL_L2_ROWS * scale))
    day_us = DAY_S * 1_000_000
    trades_p = d / f"{SYMBOL}-aggTrades-{DAY_NAME}.csv"
    l2_p = d / f"binance-futures_incremental_book_L2_{DAY_NAME}_{SYMBOL}.csv"
    fund_p = d / f"{SYMBOL}-fundingRate-2024-08.csv"
    c = Counts()
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    best = MID0  # the best bid; the best ask is one tick above
    pending: list[tuple[bool, int]] = []  # (is_bid, tick) levels trades changed

    with open(l2_p, "w") as fl, open(trades_p, "w") as ft:
        fl.write("exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n")
        ft.write("agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,"
                 "is_buyer_maker\n")  # fmt: skip
        head = f"binance-futures,{SYMBOL},"
        out: list[str] = []

        def row(ts: int, snap: str, is_bid: bool, tick: int, lots: int) -> None:
            side = "bid" if is_bid else "ask"
            out.append(f"{head}{ts},{ts + 3_000},{snap},{side},{price(tick)},{qty(lots)}\n")

        # the snapshot at the day's start
        for i in range(SNAPSHOT_TICKS):
            for is_bid, book, tick in ((True, bids, best - i), (False, asks, best + 1 + i)):
                if i == 0 or r.random() < 0.7:
                    book[tick] = _level_lots(r)
                    row(T0_US, "true", is_bid, tick, book[tick])
        c.snapshot_rows = snap = rows = len(out)

        tout: list[str] = []
        agg_id, first_id = 2_400_000_000, 5_100_000_000
        trade_gap = day_us / n_trades
        next_trade = 0
        last_ts = T0_US

        def trade_at(j: int) -> int:  # ms, spread evenly over the day with jitter
            us = T0_US + int((j + 0.2 + 0.6 * r.random()) * trade_gap)
            return us // 1000

        t_ms = trade_at(0)
        while rows < n_rows:
            ts = max(last_ts + 1, T0_US + 1 + (rows - snap) * day_us // (n_rows - snap))
            # the trades before this message, against the book as it stands
            while next_trade < n_trades and t_ms * 1000 < ts:
                buy = r.random() < 0.5
                book = asks if buy else bids
                tick, step = (best + 1, 1) if buy else (best, -1)
                end = tick + SNAPSHOT_TICKS * step
                while tick not in book and tick != end:  # trades may have emptied the touch
                    tick += step
                if tick == end:  # nothing near the touch: a level appears there first
                    tick = end - SNAPSHOT_TICKS * step
                    book[tick] = _level_lots(r)
                lots = min(book[tick], max(1, int(10 ** r.uniform(0, 3.7))))
                book[tick] -= lots
                if book[tick] == 0:
                    del book[tick]
                pending.append((not buy, tick))
                n_fills = 1 + int(r.random() * 4)
                maker = "false" if buy else "true"
                tout.append(f"{agg_id},{price(tick)},{qty(lots)},{first_id},"
                            f"{first_id + n_fills - 1},{t_ms},{maker}\n")  # fmt: skip
                agg_id += 1
                first_id += n_fills
                next_trade += 1
                t_ms = max(t_ms, trade_at(next_trade)) if next_trade < n_trades else t_ms
                if len(tout) >= 10_000:
                    ft.write("".join(tout))
                    tout.clear()
            start = len(out)
            # first what the trades left at the levels they hit
            for is_bid, t in dict.fromkeys(pending):
                row(ts, "false", is_bid, t, (bids if is_bid else asks).get(t, 0))
            pending.clear()
            # the mid moves: crossed levels deleted, then the opened ticks filled
            k = round(r.gauss(0, MOVE_SD))
            into = (ts - T0_US) / 1e6 - CRASH_AT_S
            if crash_ticks and into > 0:
                due = round(crash_ticks * min(1.0, into / CRASH_OVER_S))
                # at most MOVE_SD more ticks a message: a message's rows set the clock, so
                # a bigger step would stretch the gaps that trades eat the book in
                step = min(due - crashed, int(MOVE_SD))
                k -= step
                crashed += step
            new = best + k
            # the whole book follows: the opened ticks on the side that moved, and as many
            # missing ticks beyond the other side's new touch (liquidity moving with it)
            if k > 0:
                for t in range(best + 1, new + 1):
                    if asks.pop(t, None) is not None:
                        row(ts, "false", False, t, 0)
                for t in range(best + 1, new + 1):
                    if t == new or r.random() < 0.9:
                        bids[t] = _level_lots(r)
                        row(ts, "false", True, t, bids[t])
                for t in range(new + 1, new + 1 + k):
                    if t not in asks and r.random() < 0.9:
                        asks[t] = _level_lots(r)
                        row(ts, "false", False, t, asks[t])
            elif k < 0:
                for t in range(new + 1, best + 1):
                    if bids.pop(t, None) is not None:
                        row(ts, "false", True, t, 0)
                for t in range(new + 1, best + 1):
                    if t == new + 1 or r.random() < 0.9:
                        asks[t] = _level_lots(r)
                        row(ts, "false", False, t, asks[t])
                for t in range(new, new + k, -1):
                    if t not in bids and r.random() < 0.9:
                        bids[t] = _level_lots(r)
                        row(ts, "false", True, t, bids[t])
            best = new
            for is_bid, book, t in ((True, bids, best), (False, asks, best + 1)):
                if t not in book:  # a refill at the touch
                    book[t] = _level_lots(r)
                    row(ts, "false", is_bid, t, book[t])
            # other level updates, near the touch and deep
            for _ in range(r.randint(1, 12)):
                is_bid = r.random() < 0.5
                off = r.randrange(20) if r.random() < 0.5 else r.randrange(20, 1000)
                t = best - off if is_bid else best + 1 + off
                book = bids if is_bid else asks
                if t in book and off > 0 and r.random() < 0.35:
                    del book[t]
                    row(ts, "false", is_bid, t, 0)
                else:
                    book[t] = _level_lots(r)
                    row(ts, "false", is_bid, t, book[t])
            rows += len(out) - start
            c.messages += 1
            last_ts = ts
            c.low, c.high = min(c.low, best), max(c.high, best)
            if len(out) >= 20_000:
                fl.write("".join(out))
                out.clear()
        if rows > n_rows:  # the last message may overshoot: cut it
            del out[len(out) - (rows - n_rows) :]
            rows = n_rows
        fl.write("".join(out))
        ft.write("".join(tout))
    c.trades, c.l2_rows, c.close = next_trade, rows, best
    with open(fund_p, "w") as f:
        f.write("calc_time,funding_interval_hours,last_funding_rate\n")
        for h in (8, 16, 24):
            rate = r.choice(("0.00010000", "0.00005000", "0.00008321", "-0.00002500"))
            f.write(f"{T0_US // 1000 + h * 3_600_000},8,{rate}\n")
            c.funding += 1
    return trades_p, l2_p, fund_p, c


# --------------------------------------------------------------------------- phases


@dataclass
class Phase:
    name: str
    wall: float
    cpu: float
    sys_cpu: float
    maxrss_kb: int
    units: int  # rows in, or events
    unit: str
    out_bytes: int = 0
    note: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def clearsim(self) -> bool:
        """A phase of the clearsim CLI (the others are plain ``python -c`` scripts, whose
        start-up is a few ms, not the CLI's)."""
        return self.name not in ("csv.reader", "merge")

    @property
    def rate(self) -> float:
        return self.units / self.wall if self.wall else 0.0


class PhaseFailed(Exception):
    pass


def run_child(name: str, argv: list[str], d: Path) -> tuple[float, resource.struct_rusage, str]:
    """Run ``argv`` with stdout and stderr to files; (wall, the child's rusage, stdout)."""
    out_p, err_p = d / f".{name}.stdout", d / f".{name}.stderr"
    with open(out_p, "wb") as fo, open(err_p, "wb") as fe:
        t = time.perf_counter()
        p = subprocess.Popen(argv, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    stdout = out_p.read_text(errors="replace")
    if p.returncode != 0:
        tail = err_p.read_text(errors="replace").splitlines()[-30:]
        raise PhaseFailed(
            f"phase {name!r} failed (exit {p.returncode}): {' '.join(argv)}\n"
            + "\n".join(f"  | {line}" for line in tail)
            + ("\n  stdout: " + stdout[-2000:] if stdout.strip() else "")
        )
    return wall, ru, stdout


def phase(name: str, argv: list[str], d: Path, units: int, unit: str, out: Path | None) -> Phase:
    wall, ru, stdout = run_child(name, argv, d)
    ph = Phase(
        name=name,
        wall=wall,
        cpu=ru.ru_utime + ru.ru_stime,
        sys_cpu=ru.ru_stime,
        maxrss_kb=ru.ru_maxrss,
        units=units,
        unit=unit,
        out_bytes=out.stat().st_size if out is not None and out.exists() else 0,
    )
    ph.note = stdout.strip()
    return ph


BASELINE = """
import csv, sys
n = 0
for p in sys.argv[1:]:
    with open(p, newline="") as f:
        for _ in csv.reader(f):
            n += 1
print(n)
"""

MERGE = """
import heapq, sys
def keyed(path):
    with open(path, "rb") as f:
        for line in f:
            i = line.index(b'"ts":') + 5
            yield int(line[i:line.index(b",", i)]), line
out, *ins = sys.argv[1:]
n = 0
with open(out, "wb") as f:
    w = f.write
    for _, line in heapq.merge(*(keyed(p) for p in ins), key=lambda x: x[0]):
        w(line)
        n += 1
print(n)
"""


def count_lines(p: Path) -> int:
    n = 0
    with open(p, "rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
    return n


@dataclass
class DayRun:
    scale: float
    accounts: int
    gen_s: float
    counts: Counts
    phases: list[Phase]
    events: int
    commands: int
    run_note: str

    def get(self, name: str) -> Phase:
        return next(p for p in self.phases if p.name == name)

    @property
    def import_s(self) -> float:
        return sum(self.get(n).wall for n in ("import trades", "import book", "merge"))

    @property
    def total_s(self) -> float:
        return self.import_s + self.get("run").wall + self.get("verify").wall


def one_day(scale: float, seed: int, d: Path, crash_ppm: int, log: bool = True) -> DayRun:
    d.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    trades, l2, funding, c = generate(d, scale, seed, crash_ppm)
    gen_s = time.perf_counter() - t
    if log:
        print(f"[scale {scale:g}] generated {c.trades:,} trades, {c.l2_rows:,} L2 rows "
              f"({c.snapshot_rows:,} in the snapshot, {c.messages:,} messages), "
              f"{c.funding} funding rows in {gen_s:.1f} s; mid {price(c.low)}..{price(c.high)}, "
              f"close {price(c.close)}", flush=True)  # fmt: skip
    accounts = max(1, round(FULL_ACCOUNTS * scale))
    exch = d / "exchange.toml"
    exch.write_text(EXCHANGE_TOML)
    rate = f"{accounts / (DAY_S / 60):.6f}"
    scen = d / "day.toml"
    scen.write_text(
        SCENARIO_TOML.format(
            count=accounts, scale=f"{scale:g}", seed=seed, exchange=EXCHANGE_TOML, rate=rate
        )
    )
    tj, bj, day, logp = d / "trades.jsonl", d / "book.jsonl", d / "day.jsonl", d / "day.log"
    for p in (tj, bj, day, logp):
        p.unlink(missing_ok=True)
    py = sys.executable
    phases: list[Phase] = []
    n_in = c.trades + c.l2_rows

    def go(name: str, argv: list[str], units: int, unit: str, out: Path | None) -> Phase:
        if log:
            print(f"[scale {scale:g}] {name} ...", flush=True)
        ph = phase(name, argv, d, units, unit, out)
        phases.append(ph)
        return ph

    start = go("startup", [CLEARSIM, "--version"], 1, "runs", None)
    go("csv.reader", [py, "-c", BASELINE, str(trades), str(l2)], n_in, "rows", None)
    go("import trades", [CLEARSIM, "import", "binance", str(trades), "--funding", str(funding),
                         "--trades", "both", "--every", "1s", "--config", str(exch), "-q",
                         "-o", str(tj)], c.trades, "rows", tj)  # fmt: skip
    go("import book", [CLEARSIM, "import", "tardis", str(l2), "--book", str(BOOK_DEPTH),
                       "--config", str(exch), "-q", "-o", str(bj)],
       c.l2_rows, "rows", bj)  # fmt: skip
    commands = count_lines(tj) + count_lines(bj)
    go("merge", [py, "-c", MERGE, str(day), str(tj), str(bj)], commands, "commands", day)
    run = go("run", [CLEARSIM, "run", str(scen), "-q", "-o", str(logp)], 0, "events", logp)
    events = count_lines(logp) - 1  # the header line
    run.units = events
    go("verify", [CLEARSIM, "verify", "-q", str(logp)], events, "events", None)
    del start
    return DayRun(scale, accounts, gen_s, c, phases, events, commands, run.note)


# --------------------------------------------------------------------------- output


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f}"


def table(dr: DayRun) -> str:
    lines = [
        f"scale {dr.scale:g}: {dr.counts.trades:,} trades + {dr.counts.l2_rows:,} L2 rows "
        f"-> {dr.commands:,} commands -> {dr.events:,} events; {dr.accounts:,} accounts",
        f"{'phase':<14} {'wall s':>8} {'CPU s':>8} {'sys s':>6} {'peak RSS MB':>12} {'in':>12} "
        f"{'per wall-s':>12} {'out MB':>8}",
    ]
    for p in dr.phases:
        lines.append(
            f"{p.name:<14} {p.wall:>8.2f} {p.cpu:>8.2f} {p.sys_cpu:>6.2f} "
            f"{p.maxrss_kb / 1024:>12.1f} "
            f"{p.units:>12,} {p.rate:>10,.0f}/s {mb(p.out_bytes) if p.out_bytes else '-':>8}"
            f"  ({p.unit})"
        )
    lines.append(
        f"{'total':<14} {dr.total_s:>8.2f}   (import trades + import book + merge + run + "
        "verify; startup is `clearsim --version`, csv.reader the baseline)"
    )
    return "\n".join(lines)


def extrapolate(dr: DayRun) -> dict[str, float]:
    """Each phase's wall time at scale 1.0: the CLI's start-up (the ``startup`` phase, paid
    once whatever the size) plus the rest times ``1 / scale``."""
    st = dr.get("startup")
    f = 1.0 / dr.scale

    def x(name: str) -> float:
        p = dr.get(name)
        fixed = st.wall if p.clearsim else 0.0
        return fixed + max(0.0, p.wall - fixed) * f

    got = {n: x(n) for n in ("import trades", "import book", "merge", "run", "verify")}
    imp = got["import trades"] + got["import book"] + got["merge"]
    return {"import": imp, "run": got["run"], "verify": got["verify"],
            "total": imp + got["run"] + got["verify"]}  # fmt: skip


def per_unit(dr: DayRun) -> dict[str, tuple[float, float, str]]:
    """Phase -> (wall µs, CPU µs) per unit of its natural input, the start-up taken off."""
    st = dr.get("startup")
    out: dict[str, tuple[float, float, str]] = {}
    for p in dr.phases:
        if p is st:
            continue
        sw, sc = (st.wall, st.cpu) if p.clearsim else (0.0, 0.0)
        w, c = max(0.0, p.wall - sw), max(0.0, p.cpu - sc)
        out[p.name] = (w / p.units * 1e6, c / p.units * 1e6, p.unit[:-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--scale", type=float, default=0.01, help="1.0 = a full day (default 0.01)")
    ap.add_argument("--seed", type=int, default=20240808)
    ap.add_argument("--keep", metavar="DIR", help="write (and keep) the files in DIR")
    ap.add_argument("--check-linear", action="store_true", help="also run scale S/4")
    ap.add_argument("--crash-ppm", type=int, default=25_000,
                    help="the 14:00 sell-off in ppm (default 25000: -2.5%%; 0: none)")  # fmt: skip
    a = ap.parse_args()
    if not 0 < a.scale <= 1:
        ap.error("--scale: expected 0 < S <= 1")
    if not Path(CLEARSIM).exists():
        ap.error(f"{CLEARSIM}: no clearsim CLI beside this Python (pip install -e .)")
    base = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="clearsim_day_"))
    scales = [a.scale] + ([a.scale / 4] if a.check_linear else [])
    runs: list[DayRun] = []
    try:
        for s in scales:
            sub = base / f"scale-{s:g}" if len(scales) > 1 else base
            runs.append(one_day(s, a.seed, sub, a.crash_ppm))
            if not a.keep:
                shutil.rmtree(sub, ignore_errors=True)
    except PhaseFailed as e:
        print(e, file=sys.stderr)
        sys.exit(1)
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    print()
    for dr in runs:
        print(table(dr))
        print(f"  generation (not timed above): {dr.gen_s:.1f} s; run: {dr.run_note}")
        print()
    main_run = runs[0]
    ex = extrapolate(main_run)
    label = "extrapolated" if main_run.scale < 1 else "measured"
    print(f"{label} to scale 1.0 (start-up once + the rest x{1 / main_run.scale:g}): "
          f"import {ex['import'] / 60:.1f} min, run {ex['run'] / 60:.1f} min, "
          f"verify {ex['verify'] / 60:.1f} min, total {ex['total'] / 60:.1f} min")  # fmt: skip
    if len(runs) > 1:
        print()
        print("per-unit cost (wall µs / CPU µs per unit), scale S vs S/4 (ratio > 1: costlier "
              "per unit at the larger scale)")  # fmt: skip
        hi, lo = per_unit(runs[0]), per_unit(runs[1])
        for name, (w, cpu, unit) in hi.items():
            w2, cpu2, _ = lo[name]
            print(f"  {name:<14} per {unit:<8} S={runs[0].scale:g}: {w:8.2f} / {cpu:8.2f}   "
                  f"S/4={runs[1].scale:g}: {w2:8.2f} / {cpu2:8.2f}   CPU ratio "
                  f"{cpu / cpu2 if cpu2 else math.nan:.2f}")  # fmt: skip
    b = main_run.get("csv.reader")
    cpu = sum(p.cpu for p in main_run.phases if p.name not in ("startup", "csv.reader"))
    print(
        f"headline: scale={main_run.scale:g} import={main_run.import_s:.1f}s "
        f"run={main_run.get('run').wall:.1f}s verify={main_run.get('verify').wall:.1f}s "
        f"total={main_run.total_s:.1f}s (CPU {cpu:.1f}s) | {label} 1.0: "
        f"total={ex['total'] / 60:.1f}min "
        f"(import {ex['import'] / 60:.1f}, run {ex['run'] / 60:.1f}, verify "
        f"{ex['verify'] / 60:.1f}) | baseline csv.reader {b.rate / 1000:,.0f}k rows/s"
    )


if __name__ == "__main__":
    main()
