"""What a log report shows, read off one log with the projections: no plotting here.

:func:`read_log_data` makes one pass over the log's events feeding both the
:class:`~replay.projections.story.Story` (the headline numbers) and the report's own
:class:`~.series.SeriesFold` (prices, liquidation steps per minute, system debt over time),
then takes the fund's timeline and ledgers from :func:`~replay.projections.fund.fold_fund`
and the largest cascades from :func:`~replay.projections.cascade.cascades`, so every number
on the page is the one ``clearsim story``, ``fund`` and ``cascade`` print for the same log.
A torn tail is kept in ``torn``: everything before it is read, as the reader verbs do.

Also here, because they are read off the same data: the aggregates the charts plot that no
projection totals (ADL and clawback per account, liquidation steps per cascade, the
cascade's tree by event type) and the display helpers (UTC times, decimal money and prices).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import attrs

from clearsim.clearing.config import fmt_atoms
from clearsim.events.codec import Header
from clearsim.events.log import LogReader, TornTail
from clearsim.orderbook.grid import Grid
from clearsim.replay.projections.cascade import Cascade, Fmt, Index, cascades
from clearsim.replay.projections.fund import FundReport, fold_fund
from clearsim.replay.projections.story import Story
from clearsim.replay.report.series import SeriesFold

__all__ = [
    "TOP_CASCADES",
    "AccountTotal",
    "LogData",
    "Money",
    "adl_per_account",
    "cascade_steps",
    "cascade_tree",
    "clawback_per_account",
    "read_log_data",
    "utc",
    "utc_x",
]

#: How many of the largest cascades the report shows.
TOP_CASCADES = 5

_EPOCH = dt.datetime(1970, 1, 1)


@attrs.define
class LogData:
    """Everything the report shows about one log (see the module docstring)."""

    path: str
    header: Header
    story: Story
    series: SeriesFold
    fund: FundReport
    cascades: list[Cascade]
    index: Index
    fmt: Fmt
    torn: TornTail | None

    @property
    def config(self) -> dict[str, Any]:
        return self.header.config

    @property
    def collateral(self) -> str:
        return str(self.config.get("exchange", {}).get("collateral", ""))

    @property
    def grids(self) -> dict[str, Grid]:
        return self.fmt.grids

    @property
    def money(self) -> Money:
        return Money(self.fund.scale, self.collateral)


def read_log_data(path: str | os.PathLike[str]) -> LogData:
    """Read the log at ``path`` into :class:`LogData` (checksums verified)."""
    reader = LogReader(path)  # checks the header: a bad file fails here, before any work
    story = Story(reader.header.config)
    series = SeriesFold()
    feed_story, feed_series = story.feed, series.feed
    for ev in reader.events():
        feed_story(ev)
        feed_series(ev)
    fund = fold_fund(path)
    top, index, fmt = cascades(path, top=TOP_CASCADES)
    return LogData(
        os.fspath(path), reader.header, story, series, fund, top, index, fmt, reader.torn
    )


# --------------------------------------------------------------------------- aggregates


@attrs.frozen
class AccountTotal:
    """One account's total in a per-account chart: atoms, events and lots per symbol."""

    account: str
    amount: int
    events: int
    lots: tuple[tuple[str, int], ...] = ()


def adl_per_account(fund: FundReport) -> list[AccountTotal]:
    """Per account deleveraged (the ADL ledger's counterparty, whose position was closed
    against a bankrupt one): the notional closed at the bankruptcy price (``|value|`` of its
    ``deleveraged`` events), their count and lots; the largest first (ties by account)."""
    amount: Counter[str] = Counter()
    count: Counter[str] = Counter()
    lots: dict[str, Counter[str]] = {}
    for r in fund.adl:
        amount[r.counterparty] += abs(r.value)
        count[r.counterparty] += 1
        lots.setdefault(r.counterparty, Counter())[r.symbol] += r.qty
    return sorted(
        (AccountTotal(a, amount[a], count[a], tuple(sorted(lots[a].items()))) for a in amount),
        key=lambda t: (-t.amount, t.account),
    )


def clawback_per_account(fund: FundReport) -> list[AccountTotal]:
    """Per account charged: the clawback charges of every closed period summed, and in how
    many periods; the largest first (ties by account)."""
    amount: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for p in fund.clawbacks:
        for account, charge in p.charges:
            amount[account] += charge
            count[account] += 1
    return sorted(
        (AccountTotal(a, amount[a], count[a]) for a in amount if amount[a]),
        key=lambda t: (-t.amount, t.account),
    )


def cascade_steps(c: Cascade) -> Counter[str]:
    """The liquidation steps run in cascade ``c``, by waterfall step."""
    return Counter(
        c.records[s]["step"] for s in c.seqs if c.records[s]["type"] == "liquidation_step"
    )


def _node_label(d: dict[str, Any]) -> str:
    t = str(d["type"])
    if t == "input":
        cmd = d.get("command") or {}
        return f"input: {cmd.get('type', '?')}"
    if t == "liquidation_step":
        return f"liquidation_step: {d['step']}"
    return t


def cascade_tree(c: Cascade, index: Index) -> list[tuple[str, str, str, int]]:
    """Cascade ``c``'s causal tree with the children of each node grouped by event type:
    ``(id, label, parent id, events)`` per node, parents first. A node's id is the path of
    labels from the root, so 285 ``liquidation_triggered`` under one mark are one node of
    285 events, and the ``liquidation_step: book`` under all of them one node below it."""
    node: dict[int, str] = {}
    count: Counter[str] = Counter()
    label: dict[str, tuple[str, str]] = {}
    for s in c.seqs:  # increasing: a cause is always seen before what it caused
        d = c.records[s]
        parent = node.get(index.cause[s], "") if s != c.top else ""
        lab = _node_label(d)
        nid = f"{parent}/{lab}"
        node[s] = nid
        count[nid] += 1
        label.setdefault(nid, (lab, parent))
    return [(nid, lab, parent, count[nid]) for nid, (lab, parent) in label.items()]


# --------------------------------------------------------------------------- display


def utc(ts: int) -> str:
    """µs since the epoch as ``2023-11-14 22:13:20 UTC`` (whole seconds, for text)."""
    return (_EPOCH + dt.timedelta(microseconds=ts)).strftime("%Y-%m-%d %H:%M:%S UTC")


def utc_x(ts: int) -> str:
    """µs since the epoch as a plotly date-axis value, in UTC (no zone: plotly's date axis
    has none, so the axis is labelled UTC)."""
    return (_EPOCH + dt.timedelta(microseconds=ts)).isoformat(sep=" ")


@attrs.frozen
class Money:
    """Atoms as collateral units: exact (:meth:`exact`), rounded for reading
    (:meth:`text`), or as a plot coordinate (:meth:`unit`)."""

    scale: int
    collateral: str

    @property
    def places(self) -> int:
        """Cents for a stablecoin-like collateral (<= 6 decimals), 4 places for a BTC-like
        one (as ``clearsim story``)."""
        decimals = len(str(self.scale)) - 1
        return min(decimals, 2 if decimals <= 6 else 4)

    def exact(self, atoms: int) -> str:
        return f"{fmt_atoms(atoms, self.scale)} {self.collateral}".rstrip()

    def text(self, atoms: int) -> str:
        d = (Decimal(atoms) / self.scale).quantize(
            Decimal(1).scaleb(-self.places), rounding=ROUND_HALF_UP
        )
        if not d and atoms:  # rounded away: a few atoms are not nothing (system debt of 0.00072)
            return self.exact(atoms)
        return f"{d:,} {self.collateral}".rstrip()

    def unit(self, atoms: int) -> float:
        return atoms / self.scale  # display only: the exact figures are in the tables
