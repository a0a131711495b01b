"""Throughput of the whole exchange, ``Exchange.apply``, on a realistic order flow.

What it measures
    A seeded stream (``random.Random(seed)``) over ``--accounts`` accounts (default 300) on
    one instrument (BTC-USD, tick 0.1, lot 0.001, maker 1 bp / taker 4 bp fees, two risk
    tiers, mark = oracle): every account deposits first, then ~5% ``index_price`` commands
    around a random-walking mid and order flow: ~60% passive ``gtc`` limits near the touch,
    ~20% cancels of live orders, ~15% marketable ``ioc`` limits, with small sizes. The
    stream is built before any timing by running it once through a generator exchange (so
    every cancel names an order that is really live); then only ``ex.apply`` over the
    pre-built command dicts is timed, on fresh exchanges (best of 3, or of ``--repeats``).

    Baseline: the same stream's order and cancel commands, already converted to ticks and
    lots, fed straight into ``orderbook.OrderBook`` (matching only: no parsing, no margin,
    no settlement, no ``Input``/``Settlement`` events). The book also takes the orders the
    exchange rejected, so it does slightly more matching work than the exchange's book.

How to read the output
    ``stream`` shows the command mix; ``rejections`` the share and the reasons the exchange
    gave (a few ``insufficient margin`` are expected: accounts with small deposits and many
    open orders); ``exchange`` the best and all timed runs; ``book only`` the baseline. The
    last line is machine-readable::

        commands_per_s=<int> book_only_per_s=<int> ratio=<book_only_per_s / commands_per_s>

    ``commands_per_s`` counts every command (deposits and index prices too);
    ``book_only_per_s`` counts order and cancel commands; ``ratio`` is the slowdown factor of
    the clearing layer over bare matching (1.00 = no overhead). The target is
    ``commands_per_s >= 250000``.

``--profile`` runs one extra timed pass under cProfile and prints the top functions by
internal and by cumulative time (the timed figures are unaffected).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import random
import time
from collections import Counter
from typing import Any

from clearsim.clearing import Config, Exchange
from clearsim.events.sequencer import Sequencer
from clearsim.events.types import Event, Fill, OrderCancelled, OrderRejected, Rejected
from clearsim.orderbook import OrderBook

SYMBOL = "BTC-USD"
T0 = 1_700_000_000_000_000  # µs

CONFIG: dict[str, Any] = {
    "exchange": {"collateral": "USDT", "collateral_decimals": 6, "mark": "oracle"},
    "insurance_fund": {"initial": "0"},
    "instruments": [
        {
            "symbol": SYMBOL,
            "tick_size": "0.1",
            "lot_size": "0.001",
            "maker_fee_ppm": 100,
            "taker_fee_ppm": 400,
            "tiers": [
                {"max_notional": "50000", "imr_ppm": 100000, "mmr_ppm": 4000},
                {"max_notional": "250000", "imr_ppm": 200000, "mmr_ppm": 5000},
            ],
        }
    ],
}

MID0 = 500_000  # ticks (50000.0)


def fmt_ticks(t: int) -> str:
    """Ticks of 0.1 as a decimal string (exact, no float)."""
    return f"{t // 10}.{t % 10}"


def fmt_lots(n: int) -> str:
    """Lots of 0.001 as a decimal string."""
    return f"{n // 1000}.{n % 1000:03d}"


def new_exchange() -> Exchange:
    return Exchange(Config.from_dict(CONFIG))


class Stream:
    """The pre-built command dicts plus what the generator run saw."""

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []
        self.labels: list[str] = []  # the kind of each command, parallel to commands
        self.kinds: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.rejected_by_kind: Counter[str] = Counter()
        self.events = 0
        self.event_types: Counter[str] = Counter()
        self.fills = 0
        self.live_at_end = 0
        self.max_live = 0
        self.live_trace: list[int] = []  # live orders after each tenth of the stream


def build_stream(n_commands: int, n_accounts: int, seed: int, ioc_lots: int = 120) -> Stream:
    """Generate the stream by running it through a generator exchange (untimed).

    Running it live is what lets cancels name orders that are really resting and lets
    passive orders sit at the real touch.
    """
    rng = random.Random(seed)
    st = Stream()
    gen = new_exchange()
    book = gen.instruments[SYMBOL].book
    accounts = [f"acct{i:04d}" for i in range(n_accounts)]
    live: list[tuple[str, str]] = []  # (account, order id), O(1) random pick
    where: dict[tuple[str, str], int] = {}  # -> index in live
    ts = T0
    next_oid = 0

    def drop(key: tuple[str, str]) -> None:
        i = where.pop(key, None)
        if i is None:
            return
        last = live.pop()
        if i < len(live):
            live[i] = last
            where[last] = i

    def run(kind: str, cmd: dict[str, Any]) -> list[Event]:
        st.commands.append(cmd)
        st.labels.append(kind)
        st.kinds[kind] += 1
        evs = gen.apply(cmd)
        st.events += len(evs)
        for e in evs:
            st.event_types[e.TYPE] += 1
            if isinstance(e, Fill):
                st.fills += 1
                if book.get(e.maker_account, e.maker_order) is None:
                    drop((e.maker_account, e.maker_order))
            elif isinstance(e, OrderCancelled):
                drop((e.account, e.order_id))
            elif isinstance(e, Rejected):
                st.rejections[e.reason] += 1
                st.rejected_by_kind[kind] += 1
            elif isinstance(e, OrderRejected):
                st.rejections[f"book: {e.reason}"] += 1
                st.rejected_by_kind[kind] += 1
        return evs

    for a in accounts:
        ts += rng.randint(1, 50)
        # 2,000 to 60,000 USDT in whole cents: some accounts will run into initial margin.
        amount = rng.randint(200_000, 6_000_000)
        run("deposit", {"type": "deposit", "ts": ts, "account": a,
                        "amount": f"{amount // 100}.{amount % 100:02d}"})  # fmt: skip
    mid = MID0
    ts += 1
    run("index_price", {"type": "index_price", "ts": ts, "symbol": SYMBOL,
                        "price": fmt_ticks(mid)})  # fmt: skip

    tenth = max(1, n_commands // 10)
    while len(st.commands) < n_commands:
        if len(st.commands) % tenth == 0:
            st.live_trace.append(len(live))
        ts += rng.randint(1, 1000)
        r = rng.random()
        if r < 0.05:
            mid = max(1000, mid + rng.randint(-60, 60))
            run("index_price", {"type": "index_price", "ts": ts, "symbol": SYMBOL,
                                "price": fmt_ticks(mid)})  # fmt: skip
            continue
        if 0.65 <= r < 0.85 and live:
            acct, oid = live[rng.randrange(len(live))]
            run("cancel", {"type": "cancel", "ts": ts, "account": acct, "id": oid})
            continue
        acct = accounts[rng.randrange(n_accounts)]
        side = "buy" if rng.random() < 0.5 else "sell"
        bid, ask = book.best_bid(), book.best_ask()
        next_oid += 1
        oid = f"o{next_oid}"
        if r < 0.85:  # passive gtc near the touch (never crossing)
            off = rng.randint(0, 25)
            if side == "buy":
                price = mid - 1 - off if ask is None else min(mid - 1 - off, ask - 1 - off)
            else:
                price = mid + 1 + off if bid is None else max(mid + 1 + off, bid + 1 + off)
            qty, tif, kind = rng.randint(1, 40), "gtc", "passive_gtc"
        else:  # marketable limit ioc, a few ticks through the touch
            through = rng.randint(0, 15)
            if side == "buy":
                price = (mid if ask is None else ask) + through
            else:
                price = (mid if bid is None else bid) - through
            qty, tif, kind = rng.randint(1, ioc_lots), "ioc", "marketable_ioc"
        run(kind, {"type": "order", "ts": ts, "account": acct, "id": oid, "symbol": SYMBOL,
                   "side": side, "qty": fmt_lots(qty), "price": fmt_ticks(max(1, price)),
                   "tif": tif})  # fmt: skip
        if tif == "gtc" and book.get(acct, oid) is not None:
            where[(acct, oid)] = len(live)
            live.append((acct, oid))
            st.max_live = max(st.max_live, len(live))
    st.live_at_end = len(live)
    return st


def time_exchange(commands: list[dict[str, Any]]) -> tuple[float, int]:
    """Seconds to apply every command to a fresh exchange, and the events it produced."""
    ex = new_exchange()
    apply = ex.apply
    gc.collect()
    n_events = 0
    t0 = time.perf_counter()
    for c in commands:
        n_events += len(apply(c))
    return time.perf_counter() - t0, n_events


def time_by_kind(st: Stream) -> dict[str, float]:
    """Mean µs per command of each kind (each command timed on its own: ~0.1 µs more)."""
    ex = new_exchange()
    apply = ex.apply
    perf = time.perf_counter
    total: dict[str, float] = dict.fromkeys(st.kinds, 0.0)
    gc.collect()
    for c, kind in zip(st.commands, st.labels, strict=True):
        t0 = perf()
        apply(c)
        total[kind] += perf() - t0
    return {k: 1e6 * v / st.kinds[k] for k, v in total.items()}


BookOp = tuple[int, tuple[Any, ...]]


def book_ops(commands: list[dict[str, Any]]) -> list[BookOp]:
    """Order and cancel commands as OrderBook calls in ticks and lots (converted untimed)."""
    ops: list[BookOp] = []
    for c in commands:
        t = c["type"]
        if t == "order":
            whole, frac = c["price"].split(".")
            price = int(whole) * 10 + int(frac)
            qw, qf = c["qty"].split(".")
            qty = int(qw) * 1000 + int(qf)
            ops.append((0, (c["ts"], 0, c["id"], c["account"], c["side"], qty, price, c["tif"])))
        elif t == "cancel":
            ops.append((1, (c["ts"], 0, c["account"], c["id"])))
    return ops


def time_book(ops: list[BookOp]) -> float:
    book = OrderBook(SYMBOL, Sequencer())
    submit, cancel = book.submit, book.cancel
    gc.collect()
    t0 = time.perf_counter()
    for kind, args in ops:
        if kind:
            cancel([], *args)
        else:
            submit([], *args)
    return time.perf_counter() - t0


def profile_once(commands: list[dict[str, Any]], top: int = 25) -> str:
    ex = new_exchange()
    apply = ex.apply
    prof = cProfile.Profile()
    prof.enable()
    for c in commands:
        apply(c)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--commands", type=int, default=None, help="stream length (default 200000)")
    p.add_argument("--accounts", type=int, default=300)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="~20k commands")
    p.add_argument("--ioc-lots", type=int, default=120,
                   help="marketable ioc size is 1..N lots (default 120: the book stays bounded;"
                        " 30 lets it grow ~0.25 orders per command)")  # fmt: skip
    p.add_argument("--repeats", type=int, default=3, help="timed runs (best is reported)")
    p.add_argument("--profile", action="store_true", help="also profile one run (cProfile)")
    args = p.parse_args(argv)
    n = args.commands if args.commands is not None else (20_000 if args.quick else 200_000)
    if args.accounts < 1 or n <= args.accounts + 1:
        p.error("need --accounts >= 1 and --commands > accounts + 1")

    t0 = time.perf_counter()
    st = build_stream(n, args.accounts, args.seed, args.ioc_lots)
    gen_s = time.perf_counter() - t0
    cmds = st.commands
    print(f"stream: {len(cmds)} commands, {args.accounts} accounts, seed {args.seed} "
          f"(generated in {gen_s:.1f} s)")  # fmt: skip
    print("  mix: " + ", ".join(f"{k} {v} ({100 * v / len(cmds):.1f}%)"
                                for k, v in st.kinds.most_common()))  # fmt: skip
    print(f"  events {st.events} ({st.events / len(cmds):.2f}/command), fills {st.fills}, "
          f"live orders at end {st.live_at_end} (max {st.max_live}; per tenth of the stream: "
          f"{' '.join(map(str, st.live_trace))})")  # fmt: skip
    print("  events by type: " + ", ".join(f"{k} {v}" for k, v in st.event_types.most_common()))
    n_rej = sum(st.rejections.values())
    print(f"rejections: {n_rej} of {len(cmds)} ({100 * n_rej / len(cmds):.2f}%); by command: "
          + (", ".join(f"{k} {v} ({100 * v / st.kinds[k]:.2f}% of {k})"
                       for k, v in st.rejected_by_kind.most_common()) or "none"))  # fmt: skip
    for reason, k in st.rejections.most_common():
        print(f"  {k:7d}  {reason}")

    runs: list[float] = []
    for _ in range(max(1, args.repeats)):
        secs, n_events = time_exchange(cmds)
        if n_events != st.events:
            raise SystemExit(f"non-deterministic: {n_events} events, generator saw {st.events}")
        runs.append(secs)
    best = min(runs)
    cps = len(cmds) / best
    print(f"exchange: {len(cmds)} commands in {best:.3f} s best of {len(runs)} "
          f"({', '.join(f'{r:.3f}' for r in runs)}): {cps:,.0f} commands/s, "
          f"{1e6 * best / len(cmds):.2f} µs/command")  # fmt: skip

    by_kind = time_by_kind(st)
    spent = {k: us * st.kinds[k] for k, us in by_kind.items()}
    whole = sum(spent.values())
    print("  µs per command by kind (separate pass; share of the time): " + ", ".join(
        f"{k} {us:.1f} ({100 * spent[k] / whole:.0f}%)"
        for k, us in sorted(by_kind.items(), key=lambda kv: -kv[1])))  # fmt: skip

    ops = book_ops(cmds)
    bruns = [time_book(ops) for _ in range(max(1, args.repeats))]
    bbest = min(bruns)
    bps = len(ops) / bbest
    print(f"book only: {len(ops)} order/cancel commands in {bbest:.3f} s best of {len(bruns)}: "
          f"{bps:,.0f} commands/s, {1e6 * bbest / len(ops):.2f} µs/command")  # fmt: skip
    target = "met" if cps >= 250_000 else "NOT met"
    print(f"target >= 250,000 commands/s: {target}; clearing overhead x{bps / cps:.2f} "
          "over bare matching")  # fmt: skip

    if args.profile:
        print(profile_once(cmds))
    print(f"commands_per_s={int(cps)} book_only_per_s={int(bps)} ratio={bps / cps:.2f}")


if __name__ == "__main__":
    main()
