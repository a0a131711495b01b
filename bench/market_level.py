"""Cost of one L2 update: a ``market_level`` command through ``Exchange.apply``.

What it measures
    A seeded L2 feed (``random.Random(seed)``) of ``--deltas`` updates (default 1,000,000)
    on one instrument (BTC-USD, tick 0.1, lot 0.001, mark = oracle), shaped like a real
    incremental book: messages of 1-8 level updates sharing one ``ts``; levels within 40
    ticks of a random-walking mid, a fifth of the updates deletes (qty 0), the rest new
    quantities for the level (up or down); when the mid moves, the message carries the new
    levels on the moving side *before* the deletes of the other side's levels it crosses,
    in the order real feeds often do, so ``market_level`` uncrosses stale depth too. The
    commands are built before any timing; only ``ex.apply`` over them is timed (CPU time,
    ``time.process_time``, best of ``--repeats``), on fresh exchanges.

    Baselines, in the same run:

    - ``book op``: the book changes those updates made (every ``order_accepted``,
      ``order_amended`` and ``order_cancelled`` the exchange emitted), replayed straight
      into a fresh ``orderbook.OrderBook`` in ticks and lots: the matching engine's own
      cost of the same depth changes, no parsing, no ``Input`` event, no bookkeeping;
    - ``order``: the cheapest full ``order`` command, a limit IOC of 0.001 BTC near the
      touch that finds nothing to take, from 1,000 funded accounts (parse, pre-trade
      margin check, book, expiry): the per-command cost ``market_level`` should be well
      under.

``--general`` turns the fast lane off (``clearing.market.FAST``), to see what it saves.

How to read the output
    ``feed`` shows the mix (updates, deletes, uncrossings, refused) and events per update;
    ``market_level`` the best and all timed runs. The last line is machine-readable::

        us_per_delta=<float> book_op_us=<float> order_us=<float> vs_book=<x> vs_order=<x>

    ``vs_book`` = ``us_per_delta / book_op_us`` (the clearing layer's overhead on a depth
    change), ``vs_order`` = ``us_per_delta / order_us`` (< 1: cheaper than an order).
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections import Counter
from typing import Any

# The instrument, clock and config of bench/exchange.py (this folder is on sys.path when
# the script runs), so the figures are comparable.
from exchange import CONFIG, SYMBOL, T0

from clearsim.clearing import Config, Exchange, market
from clearsim.events.sequencer import Sequencer
from clearsim.events.types import Event, OrderAccepted, OrderAmended, OrderCancelled, Rejected
from clearsim.orderbook import OrderBook

MID0 = 500_000  # ticks (50000.0)



def price(ticks: int) -> str:
    return f"{ticks // 10}.{ticks % 10}"


def qty(lots: int) -> str:
    return f"{lots // 1000}.{lots % 1000:03d}"


def level(ts: int, side: str, ticks: int, lots: int) -> dict[str, Any]:
    return {"type": "market_level", "ts": ts, "symbol": SYMBOL, "side": side,
            "price": price(ticks), "qty": qty(lots)}  # fmt: skip


def feed(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` L2 updates (see the module docstring)."""
    r = random.Random(seed)
    mid = MID0
    ts = T0
    out: list[dict[str, Any]] = []
    while len(out) < n:
        ts += r.randint(100, 5_000)
        msg: list[dict[str, Any]] = []
        if r.random() < 0.05:  # the mid moves: new levels first, then the crossed deletes
            move = r.choice([-3, -2, -1, 1, 2, 3])
            new = mid + move
            if move > 0:
                msg += [level(ts, "buy", t, r.randint(1, 3000)) for t in range(mid, new)]
                msg += [level(ts, "sell", t, 0) for t in range(mid + 1, new + 1)]
            else:
                msg += [level(ts, "sell", t, r.randint(1, 3000)) for t in range(new + 1, mid + 1)]
                msg += [level(ts, "buy", t, 0) for t in range(new, mid)]
            mid = new
        for _ in range(r.randint(1, 8)):
            side = r.choice(["buy", "sell"])
            off = r.randint(1, 40)
            ticks = mid - off if side == "buy" else mid + off
            lots = 0 if r.random() < 0.2 else r.randint(1, 5000)
            msg.append(level(ts, side, ticks, lots))
        out += msg
    return out[:n]


def orders(n: int, seed: int) -> list[dict[str, Any]]:
    """Deposits and an index for 1,000 accounts, then ``n`` limit IOCs that take nothing."""
    r = random.Random(seed)
    cmds: list[dict[str, Any]] = [
        {"type": "deposit", "ts": T0, "account": f"a{i}", "amount": "100000"} for i in range(1000)
    ]
    cmds.append({"type": "index_price", "ts": T0, "symbol": SYMBOL, "price": price(MID0)})
    for i in range(n):
        side = r.choice(["buy", "sell"])
        off = r.randint(1, 40)
        cmds.append({"type": "order", "ts": T0 + i, "account": f"a{i % 1000}", "id": f"o{i}",
                     "symbol": SYMBOL, "side": side, "qty": "0.001",
                     "price": price(MID0 - off if side == "buy" else MID0 + off),
                     "tif": "ioc"})  # fmt: skip
    return cmds


def timed(cmds: list[dict[str, Any]], keep: bool = False) -> tuple[float, list[Event]]:
    """CPU seconds of ``ex.apply`` over ``cmds`` on a fresh exchange (and the events)."""
    ex = Exchange(Config.from_dict(CONFIG))
    apply = ex.apply
    kept: list[Event] = []
    gc.collect()
    t = time.process_time()
    if keep:
        for c in cmds:
            kept += apply(c)
    else:
        for c in cmds:
            apply(c)
    return time.process_time() - t, kept


def book_ops(events: list[Event]) -> list[tuple[Any, ...]]:
    """The book changes among ``events``, as bare ``OrderBook`` calls."""
    ops: list[tuple[Any, ...]] = []
    for e in events:
        if type(e) is OrderAccepted:
            ops.append(("submit", e.order_id, e.account, e.side, e.qty, e.price, e.tif))
        elif type(e) is OrderAmended:
            ops.append(("amend", e.account, e.order_id, e.qty))
        elif type(e) is OrderCancelled:
            ops.append(("cancel", e.account, e.order_id))
    return ops


def time_book(ops: list[tuple[Any, ...]]) -> float:
    book = OrderBook(SYMBOL, Sequencer())
    out: list[Event] = []
    gc.collect()
    t = time.process_time()
    for op in ops:
        if op[0] == "submit":
            book.submit(out, 0, 0, op[1], op[2], op[3], op[4], op[5], op[6])
        elif op[0] == "amend":
            book.amend(out, 0, 0, op[1], op[2], op[3], None)
        else:
            book.cancel(out, 0, 0, op[1], op[2])
        if len(out) > 4096:
            out.clear()
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deltas", type=int, default=1_000_000)
    ap.add_argument("--orders", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--quick", action="store_true", help="100k updates, 50k orders, 2 runs")
    ap.add_argument("--general", action="store_true",
                    help="the general path: no fast lane (clearing.market.FAST)")  # fmt: skip
    a = ap.parse_args()
    if a.general:
        market.FAST = False
    if a.quick:
        a.deltas, a.orders, a.repeats = 100_000, 50_000, 2
    cmds = feed(a.deltas, a.seed)
    _, events = timed(cmds, keep=True)
    kinds = Counter(type(e).__name__ for e in events)
    refused = sum(1 for e in events if type(e) is Rejected)
    uncross = sum(1 for e in events if type(e) is OrderCancelled and e.reason == "market_uncross")
    deletes = sum(1 for c in cmds if c["qty"] == "0.000")
    print(f"feed: {len(cmds):,} updates ({deletes:,} deletes), {len(events):,} events "
          f"({len(events) / len(cmds):.2f} per update: {dict(sorted(kinds.items()))}); "
          f"{uncross:,} stale levels uncrossed, {refused:,} refused")  # fmt: skip
    runs = [timed(cmds)[0] for _ in range(a.repeats)]
    us = min(runs) / len(cmds) * 1e6
    print(f"market_level: {us:.2f} µs per update, best of {a.repeats} "
          f"({', '.join(f'{x:.2f}' for x in runs)} s CPU)")  # fmt: skip
    ops = book_ops(events)
    book_runs = [time_book(ops) for _ in range(a.repeats)]
    book_us = min(book_runs) / len(cmds) * 1e6
    print(f"book op: {len(ops):,} book calls, {book_us:.2f} µs per update")
    ocmds = orders(a.orders, a.seed)
    head = 1001  # deposits and the index, not timed per order
    base = timed(ocmds[:head])[0]
    order_runs = [timed(ocmds)[0] - base for _ in range(a.repeats)]
    order_us = min(order_runs) / a.orders * 1e6
    print(f"order (limit IOC taking nothing): {order_us:.2f} µs per command")
    print(f"us_per_delta={us:.2f} book_op_us={book_us:.2f} order_us={order_us:.2f} "
          f"vs_book={us / book_us:.2f} vs_order={us / order_us:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
