"""``clearsim calibrate``: the smallest value of one parameter that meets a target on every
day and seed of a sweep, by bisection over runs.

A target is a property of one run's outcome (:data:`TARGETS`): ``no_adl`` (no position was
auto-deleveraged), ``no_clawback`` (no loss was socialized, nothing clawed back),
``no_debt`` (no system debt). A value *meets* it when every run of it (each day x seed of
the sweep) does. For each case of the sweep (its ``[grid]`` or ``[[cases]]``, which must not
name the searched parameter), the search

1. brackets the answer: the low end (``--range``, default 0) is tried and, if it fails, the
   high end (``--range``, default the scenario's own value, doubled until it meets, at most
   :data:`MAX_DOUBLINGS` times);
2. narrows the bracket (low fails, high meets) until it is at most the tolerance wide
   (default 1% of the bracket's high end), trying several points per round when there are
   more workers than runs in a round (a k-ary bisection); points are rounded to a power of
   ten below half the tolerance, so the values tried read as round numbers.

The answer is the bracket's high end: the smallest value tried that meets the target, at
most the tolerance above the true threshold *if* the outcome is monotone in the parameter.
That is checked afterwards over every run made: per day and seed, a value that meets the
target while a larger one tried does not is reported as a violation (the answer is then only
the smallest value found, not a threshold).

Parameters searched: integers (``..._ppm``, ``population.count``) and decimal amounts of
collateral (``insurance_fund.initial``), searched in atoms. Runs already in a results table
(``-o``, the sweep's format) are not run again, and the runs made are added to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

import attrs

from clearsim.clearing.config import fmt_atoms
from clearsim.events.errors import ClearsimError
from clearsim.replay.sweep import overrides
from clearsim.replay.sweep.pool import Backend, run_cells
from clearsim.replay.sweep.results import Appender, outcome_row
from clearsim.replay.sweep.spec import Cell, Params, Sweep, make_cell

__all__ = [
    "MAX_DOUBLINGS",
    "TARGETS",
    "CalibrateError",
    "Calibration",
    "CaseResult",
    "Domain",
    "Run",
    "Target",
    "calibrate",
    "domain",
]

MAX_DOUBLINGS: Final = 40
_DECIMAL: Final = re.compile(r"^[0-9]+(\.[0-9]+)?$")


class CalibrateError(ClearsimError):
    """A parameter that cannot be searched, or a bad range or tolerance; one line."""


class Target(StrEnum):
    NO_ADL = "no_adl"
    NO_CLAWBACK = "no_clawback"
    NO_DEBT = "no_debt"


#: Whether one run's row (:func:`.results.outcome_row`) meets the target.
TARGETS: Final[dict[Target, Callable[[Mapping[str, Any]], bool]]] = {
    Target.NO_ADL: lambda r: r["adl_count"] == 0,
    Target.NO_CLAWBACK: lambda r: r["socialized"] == 0 and r["clawback_total"] == 0,
    Target.NO_DEBT: lambda r: r["system_debt"] == 0,
}


@attrs.frozen
class Domain:
    """A parameter's values as integers: atoms of collateral (``scale`` > 0), or itself."""

    path: str
    scale: int = 0  # 0: an integer parameter
    unit: str = ""  # the collateral's name, for a money parameter
    start: int = 0  # the scenario's own value

    def value(self, n: int) -> object:
        """The parameter value (as a cell takes it) of the integer ``n``."""
        return fmt_atoms(n, self.scale) if self.scale else n

    def text(self, n: int) -> str:
        return f"{fmt_atoms(n, self.scale)} {self.unit}" if self.scale else str(n)

    def parse(self, text: str, what: str) -> int:
        if self.scale:
            if not _DECIMAL.match(text):
                raise CalibrateError(f"{what}: expected a decimal amount, got {text!r}")
            atoms = Decimal(text) * self.scale
            if atoms != atoms.to_integral_value():
                raise CalibrateError(f"{what}: {text} is finer than one atom of {self.unit}")
            return int(atoms)
        if not re.fullmatch(r"[0-9]{1,18}", text):
            raise CalibrateError(f"{what}: expected a non-negative integer, got {text!r}")
        return int(text)


def domain(sweep: Sweep, path: str) -> Domain:
    """How ``path`` is searched, from the sweep's days (they must agree)."""
    if path in sweep.names:
        raise CalibrateError(f"--param {path}: the sweep's grid sets it; calibrate searches it")
    found: Domain | None = None
    for day in sweep.days:
        doc = day.document()
        try:
            cur = overrides.current(doc, path, scenario=day.scenario is not None)
        except overrides.OverrideError as e:
            raise CalibrateError(f"--param {e} (in {day.name})") from None
        if isinstance(cur, bool) or not isinstance(cur, (int, str)):
            raise CalibrateError(f"--param {path}: only integers and amounts can be searched")
        if isinstance(cur, int):
            d = Domain(path, start=max(cur, 0))
        elif _DECIMAL.match(cur):
            decimals, unit = overrides.collateral(doc)
            scale = 10**decimals
            d = Domain(path, scale, unit, int(Decimal(cur) * scale))
        else:
            raise CalibrateError(f"--param {path}: {cur!r} is not a number to search")
        if found is not None and (d.scale, d.unit) != (found.scale, found.unit):
            raise CalibrateError(f"--param {path}: the days' collaterals differ")
        found = d if found is None else attrs.evolve(found, start=max(found.start, d.start))
    if found is None:  # pragma: no cover - a sweep has at least one day
        raise CalibrateError("the sweep has no days")
    return found


@attrs.frozen
class Run:
    """One run the search made (or found in the results table)."""

    case: int
    value: int
    day: str
    seed: int
    key: str
    met: bool
    row: dict[str, Any] = attrs.field(eq=False, repr=False)
    cached: bool = False


@attrs.frozen
class CaseResult:
    params: Params  # the case's other parameters
    #: the smallest value found to meet the target (None: not met within the range)
    value: int | None
    lo: int  # the bracket at the end: lo fails (or is the range's low end), hi meets
    hi: int | None
    violations: tuple[str, ...]


@attrs.frozen
class Calibration:
    domain: Domain
    target: Target
    tolerance: int | None  # None: the default, 1% of each case's bracket
    results: tuple[CaseResult, ...]
    runs: tuple[Run, ...]


@attrs.define
class _Search:
    """One case's search. Phases: ``start`` (lo and hi untried), ``grow`` (hi untried: the
    last one failed and was doubled), ``narrow`` (lo fails, hi meets), ``done``."""

    index: int
    params: Params
    lo: int
    hi: int
    fixed_hi: bool
    tol: int | None
    phase: str = "start"
    doublings: int = 0
    value: int | None = None


def calibrate(
    sweep: Sweep,
    dom: Domain,
    target: Target,
    backend: Backend,
    *,
    tolerance: int | None = None,
    lo: int = 0,
    hi: int | None = None,
    cached: Mapping[str, Mapping[str, Any]] | None = None,
    store: Appender | None = None,
    on_run: Callable[[Run], None] | None = None,
) -> Calibration:
    """Search each case of ``sweep`` for the smallest value of ``dom.path`` meeting ``target``
    on every day and seed. ``cached``: rows by key (not run again); ``store``: where the runs
    made are added; ``on_run``: told of each run as it completes (a progress bar)."""
    if lo < 0 or (hi is not None and hi <= lo):
        raise CalibrateError("--range: expected 0 <= LO < HI")
    if tolerance is not None and tolerance < 1:
        raise CalibrateError("--tolerance: must be at least one unit (one atom of an amount)")
    first = hi if hi is not None else max(dom.start, lo + 1, dom.scale)
    searches = [
        _Search(i, case, lo, first, hi is not None, tolerance) for i, case in enumerate(sweep.cases)
    ]
    runs: list[Run] = []
    met_at: list[dict[int, bool]] = [{} for _ in searches]
    check = TARGETS[target]
    per_probe = sum(len(sweep.seeds_of(d)) for d in sweep.days)
    while active := [s for s in searches if s.phase != "done"]:
        width = max(1, min(8, backend.workers // max(1, len(active) * per_probe)))
        probes = {s.index: _points(s, width) for s in active}
        cells: list[tuple[int, int, Cell]] = []
        for s in active:
            for v in probes[s.index]:
                params = (*s.params, (dom.path, dom.value(v)))
                for day in sweep.days:
                    for seed in sweep.seeds_of(day):
                        cells.append((s.index, v, make_cell(day, params, seed)))
        made = _run(cells, backend, cached or {}, store, check, on_run)
        runs.extend(made)
        for s in active:
            for v in probes[s.index]:
                met_at[s.index][v] = all(r.met for r in made if r.case == s.index and r.value == v)
            _advance(s, met_at[s.index])
    results = tuple(
        CaseResult(
            s.params,
            s.value,
            s.lo,
            s.hi,
            _violations([r for r in runs if r.case == s.index], dom),
        )
        for s in searches
    )
    runs.sort(key=lambda r: (r.case, r.value, r.day, r.seed))
    return Calibration(dom, target, tolerance, results, tuple(runs))


def _points(s: _Search, width: int) -> list[int]:
    """The values to try this round."""
    if s.phase == "start":
        return [s.lo, s.hi]
    if s.phase == "grow":
        return [s.hi]
    tol = s.tol or 1
    q = 1  # round to the largest power of ten not above half the tolerance
    while q * 10 <= tol // 2:
        q *= 10
    raw = (s.lo + (s.hi - s.lo) * i // (width + 1) for i in range(1, width + 1))
    pts = sorted({(v + q // 2) // q * q for v in raw})
    return [p for p in pts if s.lo < p < s.hi] or [(s.lo + s.hi) // 2]


def _advance(s: _Search, met: dict[int, bool]) -> None:
    """Move ``s`` on from the values tried (``met``: value -> every run met the target)."""
    if s.phase == "start" and met[s.lo]:
        s.value, s.hi, s.phase = s.lo, s.lo, "done"
        return
    if s.phase in ("start", "grow"):
        if not met[s.hi]:
            if s.fixed_hi or s.doublings >= MAX_DOUBLINGS:
                s.lo, s.phase = s.hi, "done"  # not met within the range: value stays None
                return
            s.lo, s.hi = s.hi, s.hi * 2
            s.doublings += 1
            s.phase = "grow"
            return
        s.phase = "narrow"
        if s.tol is None:
            s.tol = max(1, s.hi // 100)
    else:
        # the smallest value tried in (lo, hi] that meets is the new hi; the largest failing
        # value below it the new lo
        tried = sorted(v for v in met if s.lo <= v <= s.hi)
        s.hi = min(v for v in tried if met[v])
        s.lo = max([s.lo, *(v for v in tried if v < s.hi and not met[v])])
    if s.hi - s.lo <= (s.tol or 1):
        s.value, s.phase = s.hi, "done"


def _run(
    cells: Sequence[tuple[int, int, Cell]],
    backend: Backend,
    cached: Mapping[str, Mapping[str, Any]],
    store: Appender | None,
    check: Callable[[Mapping[str, Any]], bool],
    on_run: Callable[[Run], None] | None,
) -> list[Run]:
    """Every cell's run: from ``cached`` when there, else run (and added to ``store``)."""
    where = {c.key: (case, v) for case, v, c in cells}
    out: list[Run] = []

    def note(key: str, cell: Cell, row: Mapping[str, Any], was_cached: bool) -> None:
        case, v = where[key]
        r = Run(case, v, cell.day.name, cell.seed, key, check(row), dict(row), was_cached)
        out.append(r)
        if on_run is not None:
            on_run(r)

    todo: list[Cell] = []
    by_key = {c.key: c for _, _, c in cells}
    for key, cell in by_key.items():
        row = cached.get(key)
        if row is None:
            todo.append(cell)
        else:
            note(key, cell, row, True)
    for o in run_cells(todo, backend):
        if store is not None:
            store.add(o)
        note(o.key, by_key[o.key], outcome_row(o), False)
    return out


def _violations(runs: Sequence[Run], dom: Domain) -> tuple[str, ...]:
    """Per day and seed: a value that meets the target while a larger one does not."""
    out: list[str] = []
    groups: dict[tuple[str, int], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.day, r.seed), []).append(r)
    for (day, seed), rs in groups.items():
        rs.sort(key=lambda r: r.value)
        met = [r for r in rs if r.met]
        if not met:
            continue
        lowest = met[0]
        worse = [r for r in rs if r.value > lowest.value and not r.met]
        if worse:
            out.append(
                f"{day} seed {seed}: met at {dom.text(lowest.value)} but not at "
                f"{dom.text(worse[0].value)}"
            )
    return tuple(out)
