"""The ``adl`` step: auto-deleveraging against the opposite side, best-ranked first.

Rank (BitMEX's): for a profitable position, PnL% x effective leverage; for a losing one,
PnL% / effective leverage, after every profitable one; ties by account id. PnL% is
unrealised PnL over the entry value, effective leverage notional over equity. Scores are
integers scaled by 10^18. Accounts with no equity left come last (they are being liquidated too).
Each counterparty takes its piece at the liquidated account's exact bankruptcy value,
recomputed from the account's state before each piece (dYdX v4 ``OffsetSubaccountPerpetualPosition``
calls ``GetBankruptcyPriceInQuoteQuantums`` per offsetting fill), so the pieces add up to the
whole and rounding leaves nobody owing; a piece whose value falls between two ticks is
logged as two events (see ``bankruptcy.split_value``), each with its rank and score.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from heapq import heapify, heappop, heappush
from typing import Any

import attrs

from clearsim.clearing.accounts import ENTRY_SCALE, FEES, INSURANCE, MARKET, Account
from clearsim.clearing.bankruptcy import bankruptcy_value
from clearsim.clearing.instrument import Instrument
from clearsim.clearing.ledger import Why
from clearsim.clearing.margin import notional, value
from clearsim.clearing.steps.base import Case, RiskSource, WaterfallContext
from clearsim.events.types import Deleveraged


def entry_value(inst: Instrument, q: int, entry_e6: int) -> int:
    """What the position was worth at its average entry price, in atoms."""
    spec = inst.spec
    if spec.inverse:
        return (-q * spec.k * ENTRY_SCALE) // max(entry_e6, 1)
    return q * entry_e6 * spec.k // ENTRY_SCALE


#: Holders never deleveraged: the fund (it is deleveraged on its own terms), the fee pool,
#: and the historical market (no margin, so no honest rank: clearing.market).
_NEVER = (INSURANCE, FEES, MARKET)

#: Scores are compared as integers scaled by 10^18 (exact to that precision, no Fraction
#: arithmetic in the sort); equal scores fall back to the account id.
SCORE_SCALE = 10**18


def _key(ex: RiskSource, inst: Instrument, mark: int, aid: str, a: Account) -> tuple[int, int]:
    """(group, -score) of one holder: group 0 profitable, 1 losing, 2 no equity left."""
    spec = inst.spec
    pos = a.positions[spec.symbol]
    equity, _, _ = ex.risk(a)
    entry = entry_value(inst, pos.qty, pos.entry_e6)
    ev = abs(entry) or 1
    n = notional(spec, pos.qty, mark)
    pnl = value(spec, pos.qty, mark) - entry
    if equity <= 0 or n == 0:
        return 2, 0
    if pnl > 0:  # PnL% x leverage = (pnl / ev) x (n / equity)
        return 0, -(pnl * n * SCORE_SCALE // (ev * equity))
    # PnL% / leverage = (pnl / ev) / (n / equity)
    return 1, -(pnl * equity * SCORE_SCALE // (ev * n))


def _scored(
    ex: RiskSource, inst: Instrument, long_side: bool, exclude: str
) -> list[tuple[int, int, str, Account]]:
    """(group, -score, id, account) for every candidate: group 0 profitable, 1 losing,
    2 no equity left (being liquidated too)."""
    mark = inst.valuation_price()
    sym = inst.spec.symbol
    keyed: list[tuple[int, int, str, Account]] = []
    for aid, a in inst.holders.items():
        if aid == exclude or a.flagged or aid in _NEVER:
            continue
        if (a.positions[sym].qty > 0) != long_side:
            continue
        g, neg = _key(ex, inst, mark, aid, a)
        keyed.append((g, neg, aid, a))
    return keyed


def _full_ranking(
    ex: RiskSource, inst: Instrument, long_side: bool, exclude: str
) -> Iterator[tuple[Account, int]]:
    """The reference ranking: score every candidate now, heapify, pop."""
    keyed = _scored(ex, inst, long_side, exclude)
    heapify(keyed)
    while keyed:
        _, neg, _, a = heappop(keyed)
        yield a, -neg


#: ``CLEARSIM_ADL_CHECK=1``: every pick of the cached ranking is checked against the full
#: ranking computed the old way (tests set ``CHECK`` directly).
CHECK = os.environ.get("CLEARSIM_ADL_CHECK", "") not in ("", "0")

#: (group, -score, id, version, account): the version makes every entry unique, so two
#: entries never compare their accounts, and tells a stale entry from the current one
_Entry = tuple[int, int, str, int, Account]


class _Side:
    """The ranking heap of one (instrument, side), kept current between ADL steps."""

    __slots__ = ("aside", "cur", "heap", "long_side", "mark", "symbol", "taken")

    def __init__(self, ex: RiskSource, inst: Instrument, long_side: bool, cache: AdlCache) -> None:
        self.symbol = inst.spec.symbol
        self.long_side = long_side
        self.mark = inst.valuation_price()
        self.cur: dict[str, int] = {}  # account -> version of its current entry
        self.aside: list[_Entry] = []  # popped but not a candidate then: pushed back later
        self.taken: list[str] = []  # popped and deleveraged: re-scored at the next step
        heap: list[_Entry] = []
        for aid, a in inst.holders.items():
            e = self._entry(ex, inst, aid, a, cache)
            if e is not None:
                heap.append(e)
        heapify(heap)
        self.heap = heap

    def _entry(
        self, ex: RiskSource, inst: Instrument, aid: str, a: Account, cache: AdlCache
    ) -> _Entry | None:
        if aid in _NEVER:
            return None
        pos = a.positions.get(self.symbol)
        if pos is None or pos.qty == 0 or (pos.qty > 0) != self.long_side:
            return None
        g, neg = _key(ex, inst, self.mark, aid, a)
        cache.version += 1
        self.cur[aid] = cache.version
        return g, neg, aid, cache.version, a

    def rescore(self, ex: RiskSource, inst: Instrument, aid: str, cache: AdlCache) -> None:
        self.cur.pop(aid, None)  # whatever entry it had is stale now
        a = inst.holders.get(aid)
        if a is None:
            return
        e = self._entry(ex, inst, aid, a, cache)
        if e is not None:
            heappush(self.heap, e)

    def ranking(self, exclude: str) -> Iterator[tuple[Account, int]]:
        heap, cur, aside = self.heap, self.cur, self.aside
        for e in aside:
            heappush(heap, e)
        aside.clear()
        while heap:
            e = heappop(heap)
            _, neg, aid, ver, a = e
            if cur.get(aid) != ver:
                continue  # stale
            if aid == exclude or a.flagged:
                aside.append(e)  # still current: a candidate again in a later step
                continue
            del cur[aid]
            self.taken.append(aid)
            yield a, -neg


class AdlCache:
    """The ADL ranking heaps of one command at one set of marks (``Exchange.adl_cache``).

    Built the first time an ADL step of a command needs a side; before each later step the
    accounts named by the events emitted since (cash or positions changed) are re-scored
    and pushed; stale entries are dropped when popped. A new command (a new event list),
    any change of a valuation price, or an event that moves many accounts at once
    (funding, clawback) starts again from scratch.
    """

    __slots__ = ("marks", "out", "seen", "sides", "version")

    def __init__(self) -> None:
        self.out: list[Any] | None = None
        self.marks: tuple[int | None, ...] = ()
        self.seen = 0
        self.sides: dict[tuple[str, bool], _Side] = {}
        self.version = 0

    def ranking(
        self, ctx: WaterfallContext, inst: Instrument, long_side: bool, exclude: str
    ) -> Iterator[tuple[Account, int]]:
        out = ctx.out
        marks = tuple(i.price_or(None) for i in ctx.instruments.values())
        if out is not self.out or marks != self.marks:
            self.out, self.marks, self.seen = out, marks, len(out)
            self.sides.clear()
        elif self.sides:
            named = _named(out, self.seen, ctx.accounts)
            self.seen = len(out)
            if named is None:
                self.sides.clear()
            else:
                for st in self.sides.values():
                    named.update(dict.fromkeys(st.taken))
                    st.taken.clear()
                for st in self.sides.values():
                    i = ctx.instruments[st.symbol]
                    for aid in named:
                        st.rescore(ctx, i, aid, self)
        key = (inst.spec.symbol, long_side)
        side = self.sides.get(key)
        if side is None:
            side = _Side(ctx, inst, long_side, self)
            self.sides[key] = side
        return side.ranking(exclude)


#: event type -> the names of its fields
_FIELDS: dict[type, tuple[str, ...]] = {}


def _named(out: list[Any], start: int, accounts: Any) -> dict[str, None] | None:
    """The accounts the events ``out[start:]`` name, or None if one may move many."""
    named: dict[str, None] = {}
    for ev in out[start:]:
        t = type(ev)
        names = _FIELDS.get(t)
        if names is None:
            names = _FIELDS[t] = tuple(f.name for f in attrs.fields(t))
        for n in names:
            v = getattr(ev, n)
            if isinstance(v, str):
                if v in accounts:
                    named[v] = None
            elif not isinstance(v, int):
                return None  # a list or a dict (funding payments, clawback charges, ...)
    return named


class AdlCacheMismatch(AssertionError):
    """The debug check (``CHECK``) found the cached ranking differing from the full one.

    Raised, not asserted: the check must hold under ``python -O`` too."""


def _checked(
    ctx: WaterfallContext, cached: Iterator[tuple[Account, int]], inst: Instrument,
    long_side: bool, exclude: str,
) -> Iterator[tuple[Account, int]]:  # fmt: skip
    """The cached ranking, each pick checked equal to the full ranking's (CHECK)."""
    ref = list(_full_ranking(ctx, inst, long_side, exclude))
    k = 0
    for a, score in cached:
        if k >= len(ref):
            raise AdlCacheMismatch(f"ADL cache: extra pick {a.id} at rank {k + 1}")
        if (a.id, score) != (ref[k][0].id, ref[k][1]):
            raise AdlCacheMismatch(
                f"ADL cache: rank {k + 1} is {a.id} ({score}), full ranking says "
                f"{ref[k][0].id} ({ref[k][1]})"
            )
        yield a, score
        k += 1
    if k != len(ref):
        raise AdlCacheMismatch(f"ADL cache: {len(ref) - k} picks missing")


def ranking(
    ex: RiskSource, inst: Instrument, long_side: bool, exclude: str
) -> Iterator[tuple[Account, int]]:
    """Holders of ``inst`` on the given side in ADL order, with their scores (x 10^18).

    A heap, not a sort: an ADL step usually needs only the first few accounts. Given a
    waterfall context of an exchange with an ``adl_cache``, the heap is kept between the
    steps of a command (see :class:`AdlCache`); otherwise it is one scoring pass.
    """
    cache = ex.adl_cache if isinstance(ex, WaterfallContext) else None
    if not isinstance(cache, AdlCache) or not isinstance(ex, WaterfallContext):
        return _full_ranking(ex, inst, long_side, exclude)
    cached = cache.ranking(ex, inst, long_side, exclude)
    if CHECK:
        return _checked(ex, cached, inst, long_side, exclude)
    return cached


class Adl:
    """Close the remainder against the best-ranked opposite positions."""

    name = "adl"
    socialises = False

    def applies(self, ctx: WaterfallContext, case: Case) -> bool:
        # adl_negative_equity_only (dYdX, Hyperliquid): never deleverage while equity >= 0.
        return not (ctx.waterfall.adl_negative_equity_only and case.equity >= 0)

    def close(self, ctx: WaterfallContext, case: Case) -> int:
        acct, inst, r, mark = case.account, case.inst, case.remaining, case.mark
        spec = inst.spec
        sym = spec.symbol
        sign = case.sign
        done = 0
        for rank, (c, score) in enumerate(ranking(ctx, inst, sign < 0, acct.id), 1):
            x = min(r - done, abs(c.positions[sym].qty))
            equity, mm, _ = ctx.risk(acct)
            q = acct.positions[sym].qty
            target = bankruptcy_value(spec, q, -sign * x, mark, equity, mm)
            text = format(Decimal(score) / SCORE_SCALE, ".6f")
            s = 0
            for d, p, val in ctx.ledger.transfer_value(acct, c, inst, -sign * x, target, Why.ADL):
                s = ctx.next_seq()
                ev = Deleveraged(
                    s, ctx.ts, case.cause, acct.id, c.id, sym, abs(d), p, val, rank, text
                )
                ctx.emit(ev)
            ctx.touched(c, s)
            done += x
            if done == r:
                break
        return done
