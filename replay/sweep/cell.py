"""One sweep cell, run: its scenario built with the cell's parameters, run into a log, and
the log folded into one row of outcomes.

The outcomes are read back from the log alone (the chain verified on the way), through the
projections the other views use: the waterfall story (:class:`.projections.story.Story`:
the fund's start, minimum and end in equity terms, what it paid, the liquidations, ADL,
clawback, system debt and the largest cascade) plus, in the same pass, what the story does
not total: the notional each step closed and the highest clawback rate of a period. Step
notional: a book fill at its fill price (``clearing.margin.notional``), a backstop transfer,
takeover or deleveraging at the exact bankruptcy value it moved (the event's ``value``).

:func:`run_cell` is the one function both backends run (a process-pool worker, a Ray
task): it takes a picklable :class:`.spec.Cell` and returns a picklable :class:`Outcome`.
``run_s``, ``cpu_s`` and ``commands_per_s`` are measured by the clock; every other field is a
function of the cell alone (:data:`NONDETERMINISTIC`).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Final

import attrs

from clearsim.clearing import Config
from clearsim.clearing.config import InstrumentSpec
from clearsim.clearing.margin import notional
from clearsim.events.errors import ClearsimError
from clearsim.events.log import LogReader
from clearsim.events.types import (
    BackstopTransfer,
    Clawback,
    Deleveraged,
    Event,
    LiquidationFill,
    Takeover,
)
from clearsim.replay.projections.story import Story
from clearsim.replay.runner import read_commands, run
from clearsim.replay.sweep.spec import Cell, build

__all__ = ["NONDETERMINISTIC", "STEPS", "CellError", "Outcome", "run_cell"]

#: The waterfall steps that close positions, in DESIGN §6's order.
STEPS: Final = ("book", "backstop", "takeover", "adl")
#: Outcome fields measured by the wall clock: left out of every determinism check.
NONDETERMINISTIC: Final = ("run_s", "cpu_s", "commands_per_s")


class CellError(ClearsimError):
    """A cell that cannot run (its files changed since the sweep was read)."""


@attrs.frozen
class Outcome:
    """One run's row. Money fields are atoms of the day's collateral (``decimals``)."""

    key: str
    day: str
    seed: int
    params: tuple[tuple[str, Any], ...]
    params_json: str
    engine: str
    chain_hash: str  # the log's last record's chained checksum
    last_seq: int
    commands: int
    rejected: int
    events: int
    collateral: str
    decimals: int
    fund_start: int
    fund_min: int
    fund_end: int
    fund_ran_dry: bool
    fund_paid: int
    fund_took_in: int
    liquidations: int
    liquidated_accounts: int
    liq_book_count: int
    liq_book_notional: int
    liq_backstop_count: int
    liq_backstop_notional: int
    liq_takeover_count: int
    liq_takeover_notional: int
    liq_adl_count: int
    liq_adl_notional: int
    adl_count: int
    adl_notional: int
    adl_accounts: int
    socialized: int
    clawback_total: int
    clawback_rate_ppm: int
    clawback_periods: int
    system_debt: int
    largest_cascade_seq: int
    largest_cascade_liquidations: int
    largest_cascade_fund_paid: int
    run_s: float  # wall seconds of the run (the engine and the log writer)
    cpu_s: float  # CPU seconds of the whole cell in its process (build, run, fold)
    commands_per_s: float  # commands / run_s
    #: the log itself, when the caller asked for it back (``return_log``)
    log: bytes | None = attrs.field(default=None, repr=False, eq=False)


class _StepTotals:
    """What the story does not total: notional closed per step, highest clawback rate."""

    def __init__(self, specs: dict[str, InstrumentSpec]) -> None:
        self.specs = specs
        self.notional = dict.fromkeys(STEPS, 0)
        self.clawback_rate_ppm = 0

    def feed(self, ev: Event) -> None:
        if isinstance(ev, LiquidationFill):
            self.notional["book"] += notional(self.specs[ev.symbol], ev.qty, ev.price)
        elif isinstance(ev, BackstopTransfer):
            self.notional["backstop"] += abs(ev.value)
        elif isinstance(ev, Takeover):
            self.notional["takeover"] += abs(ev.value)
        elif isinstance(ev, Deleveraged):
            self.notional["adl"] += abs(ev.value)
        elif isinstance(ev, Clawback):
            self.clawback_rate_ppm = max(self.clawback_rate_ppm, ev.rate_ppm)


def run_cell(cell: Cell, log_dir: str | None = None, return_log: bool = False) -> Outcome:
    """Run ``cell`` into ``log_dir/<key>.log`` (a temporary directory, removed after, when
    ``log_dir`` is None) and fold its outcome; with ``return_log`` the log's bytes come back
    in :attr:`Outcome.log` (a Ray worker's logs stay on it otherwise)."""
    cpu0 = time.process_time()
    day = cell.day
    if day.current_digest() != day.digest:
        raise CellError(
            f"{day.name}: its files changed since the sweep was read (on this machine they "
            "are not the bytes the cell's key names)"
        )
    built = build(day, cell.params)
    if isinstance(built, Config):
        config = built
        if day.commands is None:  # pragma: no cover - a config day has its commands
            raise CellError(f"{day.name}: no command file")
        commands: Any = read_commands(day.commands)
    else:
        config = built.config
        commands = built.commands(cell.seed)
    with tempfile.TemporaryDirectory(prefix="clearsim-sweep-") as tmp:
        path = Path(log_dir or tmp) / f"{cell.key}.log"
        t0 = time.perf_counter()
        _, summary = run(config, commands, path, seed=cell.seed, force=True)
        run_s = time.perf_counter() - t0
        outcome = _fold(cell, path, summary.rejected, run_s)
        outcome = attrs.evolve(
            outcome,
            cpu_s=time.process_time() - cpu0,
            log=path.read_bytes() if return_log else None,
        )
    return outcome


def _fold(cell: Cell, path: Path, rejected: int, run_s: float) -> Outcome:
    reader = LogReader(path)
    header = reader.header
    cfg = Config.from_dict(header.config)
    story = Story(header.config)
    extra = _StepTotals({s.symbol: s for s in cfg.instruments})
    feed, more = story.feed, extra.feed
    for ev in reader.events():
        feed(ev)
        more(ev)
    fund = story.fund
    big = story.cascades.largest()
    steps = {s: story.steps[s] for s in STEPS}
    n = extra.notional
    return Outcome(
        key=cell.key,
        day=cell.day.name,
        seed=cell.seed,
        params=cell.params,
        params_json=cell.params_json,
        engine=header.engine,
        chain_hash=reader.last_h,
        last_seq=reader.last_seq,
        commands=story.commands,
        rejected=rejected,
        events=story.events,
        collateral=cfg.collateral,
        decimals=cfg.collateral_decimals,
        fund_start=fund.start,
        fund_min=fund.min_equity,
        fund_end=fund.equity,
        fund_ran_dry=fund.empty_seq > 0,
        fund_paid=fund.paid,
        fund_took_in=fund.took_in,
        liquidations=story.triggered,
        liquidated_accounts=len(story.liquidated),
        liq_book_count=steps["book"],
        liq_book_notional=n["book"],
        liq_backstop_count=steps["backstop"],
        liq_backstop_notional=n["backstop"],
        liq_takeover_count=steps["takeover"],
        liq_takeover_notional=n["takeover"],
        liq_adl_count=steps["adl"],
        liq_adl_notional=n["adl"],
        adl_count=story.adl.count,
        adl_notional=n["adl"],
        adl_accounts=len(story.adl.accounts),
        socialized=story.socialized,
        clawback_total=story.clawback_collected,
        clawback_rate_ppm=extra.clawback_rate_ppm,
        clawback_periods=story.clawback_periods,
        system_debt=story.system_debt,
        largest_cascade_seq=0 if big is None else big.root,
        largest_cascade_liquidations=0 if big is None else big.triggered,
        largest_cascade_fund_paid=0 if big is None else big.fund_paid,
        run_s=run_s,
        cpu_s=0.0,  # set by run_cell, which measures the whole cell
        commands_per_s=story.commands / run_s if run_s > 0 else 0.0,
    )
