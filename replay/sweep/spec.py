"""The sweep file: which days, seeds and parameters to run, expanded into cells.

A sweep file is TOML::

    [sweep]
    scenarios = ["crash.toml", { name = "day", config = "day.toml", commands = "day.jsonl" }]
    seeds = [1, 2, 3]            # optional: default each scenario's own [scenario].seed
                                 # (a day of commands: 0, recorded in the header only)
    [grid]                       # every combination of these values ...
    "insurance_fund.initial" = ["0", "10000", "100000"]
    "waterfall.steps" = [["book", "adl"], ["book", "backstop", "adl"]]

    # ... or the combinations listed one by one, instead of [grid]:
    [[cases]]
    "exchange.preset" = "bitmex"
    "insurance_fund.initial" = "50000"

Paths are relative to the sweep file. A parameter is any path of
:mod:`replay.sweep.overrides`. The cells are every day x case x seed, in that order (days and
seeds as listed, cases in the grid's key order, the last key varying fastest). Each cell has
a **key**: a hash of the bytes its run reads (the scenario file and its bars file, or the
config and command files), its parameters (canonical JSON), its seed and the engine version;
the results table skips a cell whose key it already holds. Every cell is checked when the
file is read (each parameter against its day's config, and the whole config as a file would
be), so a bad value is one error line before anything runs.
"""

from __future__ import annotations

import hashlib
import itertools
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import orjson

from clearsim.clearing import Config, ConfigError
from clearsim.events.codec import ENGINE_VERSION
from clearsim.events.errors import ClearsimError
from clearsim.events.units import INT64_MAX
from clearsim.replay import scenarios as scn
from clearsim.replay.sweep import overrides

__all__ = ["Cell", "Day", "Params", "Sweep", "SweepError", "load", "make_cell"]

#: A cell's parameters: (path, canonical value) in the sweep file's order.
Params = tuple[tuple[str, Any], ...]
_CHUNK: Final = 1 << 20


class SweepError(ClearsimError, ValueError):
    """A sweep file that cannot be run; ``str()`` is one line naming the file and key."""


@attrs.frozen
class Day:
    """One market to run: a scenario file, or an exchange config and a command file."""

    name: str  # as the sweep file names it (the scenario's path, or the table's name)
    scenario: Path | None = None  # absolute paths
    config: Path | None = None
    commands: Path | None = None
    bars: Path | None = None  # the scenario's price.bars_file, if any
    #: the scenario's [scenario].seed (0 for a day of commands)
    seed: int = 0
    #: sha256 of the bytes a run of this day reads
    digest: str = ""

    def files(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.scenario, self.bars, self.config, self.commands) if p)

    def current_digest(self) -> str:
        """The digest of the files as they are now (a changed file changes it)."""
        return _digest(self.files())

    def document(self) -> dict[str, Any]:
        """The TOML tables of the scenario (or the config) file."""
        path = self.scenario or self.config
        if path is None:  # pragma: no cover - a Day always has one of them
            raise SweepError(f"day {self.name!r}: no scenario or config file")
        return _read_toml(path)


@attrs.frozen
class Cell:
    """One run: a day, its parameters, a seed, and the key that names the run."""

    day: Day
    params: Params
    seed: int
    key: str

    @property
    def params_json(self) -> str:
        return params_json(self.params)


def params_json(params: Params) -> str:
    return orjson.dumps(dict(params), option=orjson.OPT_SORT_KEYS).decode()


def make_cell(day: Day, params: Params, seed: int) -> Cell:
    """The cell of ``day`` with ``params`` (canonical values) and ``seed``, with its key."""
    h = hashlib.sha256()
    for part in (ENGINE_VERSION, day.digest, params_json(params), str(seed)):
        h.update(part.encode())
        h.update(b"\0")
    return Cell(day, params, seed, h.hexdigest()[:32])


@attrs.frozen
class Sweep:
    path: Path
    days: tuple[Day, ...]
    seeds: tuple[int, ...] | None  # None: each day's own seed
    cases: tuple[Params, ...]
    #: the parameter paths, in the sweep file's order
    names: tuple[str, ...]

    def seeds_of(self, day: Day) -> tuple[int, ...]:
        return self.seeds if self.seeds is not None else (day.seed,)

    def cells(self) -> list[Cell]:
        return [
            make_cell(day, case, seed)
            for day in self.days
            for case in self.cases
            for seed in self.seeds_of(day)
        ]


# --------------------------------------------------------------------------- reading


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise SweepError(f"{path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise SweepError(f"{path}: not valid TOML: {e}") from None


def _digest(files: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in files:
        try:
            with open(p, "rb") as f:
                size = 0
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
                    size += len(chunk)
        except OSError as e:
            raise SweepError(f"{p}: {e.strerror or e}") from None
        h.update(b"\0%d\0" % size)  # file boundaries: two files never hash as one
    return h.hexdigest()


def load(path: str | Path) -> Sweep:
    """Read and check a sweep file (errors are :class:`SweepError`, naming the file)."""
    p = Path(path)
    doc = _read_toml(p)
    try:
        return _sweep(p, doc)
    except (SweepError, overrides.OverrideError, scn.ScenarioError, ConfigError) as e:
        text = str(e)
        raise SweepError(text if text.startswith(f"{p}") else f"{p}: {text}") from None


def _sweep(p: Path, doc: dict[str, Any]) -> Sweep:
    for k in doc:
        if k not in ("sweep", "grid", "cases"):
            raise SweepError(f"{k}: unknown table (expected [sweep], [grid] or [[cases]])")
    sw = doc.get("sweep")
    if not isinstance(sw, dict):
        raise SweepError("[sweep]: required (with scenarios = [...])")
    for k in sw:
        if k not in ("scenarios", "seeds", "description"):
            raise SweepError(f"sweep.{k}: unknown key")
    entries = sw.get("scenarios")
    if not isinstance(entries, list) or not entries:
        raise SweepError("sweep.scenarios: expected a non-empty list of scenario files")
    base = p.parent
    days = tuple(_day(e, i, base) for i, e in enumerate(entries))
    names = [d.name for d in days]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise SweepError(f"sweep.scenarios[{i}]: {n!r} is listed twice")
    seeds = _seeds(sw.get("seeds"))
    if "grid" in doc and "cases" in doc:
        raise SweepError("give [grid] or [[cases]], not both")
    if "cases" in doc:
        raw_cases, where = _listed(doc["cases"]), "cases"
    else:
        raw_cases, where = _grid(doc.get("grid", {})), "grid"
    keys: list[str] = []
    for case in raw_cases:
        keys.extend(k for k, _ in case if k not in keys)
    docs = {d.name: d.document() for d in days}
    cases: list[Params] = []
    for i, case in enumerate(raw_cases):
        label = f"{where}[{i}]" if where == "cases" else "grid"
        cases.append(tuple((k, _canonical(days, docs, k, v, label)) for k, v in case))
    sweep = Sweep(p, days, seeds, tuple(cases), tuple(keys))
    _check_cells(sweep, docs)
    return sweep


def _day(e: object, i: int, base: Path) -> Day:
    where = f"sweep.scenarios[{i}]"
    if isinstance(e, str):
        path = (base / e).resolve()
        doc = _read_toml(path)
        bars = _bars_file(doc, path)
        sc = doc.get("scenario", {})
        seed = sc.get("seed", 0) if isinstance(sc, dict) else 0
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= INT64_MAX:
            seed = 0  # the scenario reader names the bad key when the cell is checked
        files = (path,) if bars is None else (path, bars)
        return Day(name=e, scenario=path, bars=bars, seed=seed, digest=_digest(files))
    if isinstance(e, dict):
        for k in e:
            if k not in ("name", "config", "commands"):
                raise SweepError(f"{where}.{k}: unknown key (expected config, commands, name)")
        cfg, cmds = e.get("config"), e.get("commands")
        if not isinstance(cfg, str) or not isinstance(cmds, str):
            raise SweepError(f"{where}: a day of commands needs config = and commands = paths")
        name = e.get("name", cmds)
        if not isinstance(name, str) or not name:
            raise SweepError(f"{where}.name: expected a non-empty string")
        cp, mp = (base / cfg).resolve(), (base / cmds).resolve()
        return Day(name=name, config=cp, commands=mp, digest=_digest((cp, mp)))
    raise SweepError(f"{where}: expected a scenario file or {{ config = ..., commands = ... }}")


def _bars_file(doc: dict[str, Any], path: Path) -> Path | None:
    price = doc.get("price")
    f = price.get("bars_file") if isinstance(price, dict) else None
    return (path.parent / f).resolve() if isinstance(f, str) and f else None


def _seeds(v: object) -> tuple[int, ...] | None:
    if v is None:
        return None
    if not isinstance(v, list) or not v:
        raise SweepError("sweep.seeds: expected a non-empty list of integers")
    for s in v:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= INT64_MAX:
            raise SweepError(f"sweep.seeds: expected integers in [0, 2^63), got {s!r}")
    if len(set(v)) != len(v):
        raise SweepError("sweep.seeds: a seed is listed twice")
    return tuple(v)


def _grid(g: object) -> list[list[tuple[str, Any]]]:
    if not isinstance(g, dict):
        raise SweepError("[grid]: expected a table of parameter = [values]")
    axes: list[list[tuple[str, Any]]] = []
    for k, values in g.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f'grid."{k}": expected a non-empty list of values')
        axes.append([(k, v) for v in values])
    return [list(combo) for combo in itertools.product(*axes)]


def _listed(cs: object) -> list[list[tuple[str, Any]]]:
    if not isinstance(cs, list) or not cs or not all(isinstance(c, dict) for c in cs):
        raise SweepError("[[cases]]: expected one or more tables of parameter = value")
    return [list(c.items()) for c in cs]


def _canonical(
    days: Sequence[Day], docs: dict[str, dict[str, Any]], k: str, v: object, label: str
) -> object:
    """``v`` read against every day's config: the days must agree on what it means."""
    out: object = None
    for i, day in enumerate(days):
        try:
            c = overrides.canonical(docs[day.name], k, v, scenario=day.scenario is not None)
        except overrides.OverrideError as e:
            raise SweepError(f"{label}: {e} (in {day.name})") from None
        if i and c != out:
            raise SweepError(f'{label}: "{k}" = {v!r} reads differently in {day.name}')
        out = c
    return out


def _check_cells(sweep: Sweep, docs: dict[str, dict[str, Any]]) -> None:
    """Build every (day, case)'s config as its run will; refuse two cells that are one run."""
    for day in sweep.days:
        for i, case in enumerate(sweep.cases):
            try:
                build(day, case, docs[day.name])
            except (scn.ScenarioError, ConfigError, overrides.OverrideError) as e:
                where = f"cases[{i}]" if case else "the scenario"
                raise SweepError(f"{day.name}: {where} {params_json(case)}: {e}") from None
    seen: dict[str, Cell] = {}
    for cell in sweep.cells():
        other = seen.get(cell.key)
        if other is not None:
            raise SweepError(
                f"two cells are the same run ({cell.day.name}, {cell.params_json}, seed "
                f"{cell.seed}; and {other.day.name}, {other.params_json}, seed {other.seed})"
            )
        seen[cell.key] = cell


def build(day: Day, params: Params, doc: dict[str, Any] | None = None) -> scn.Scenario | Config:
    """The scenario (or, for a day of commands, the config) of ``day`` with ``params``."""
    doc = day.document() if doc is None else doc
    if day.scenario is not None:
        d = overrides.apply(doc, params, scenario=True)
        return scn.from_dict(d, base_dir=day.scenario.parent, default_name=day.scenario.stem)
    return Config.from_dict(overrides.apply(doc, params, scenario=False))
