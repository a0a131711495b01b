"""A sweep cell's parameters written into a scenario's (or a day's) config before the run.

A parameter is named by the config path ``set`` takes (``waterfall.liquidation_fee_ppm``,
``instruments.BTC-USD.tiers``, ``exchange.mark``; :mod:`clearing.params`) and, since a cell
builds its exchange from scratch, also by the paths ``set`` refuses during a run:
``insurance_fund.initial``, ``exchange.preset``, ``exchange.collateral``,
``exchange.collateral_decimals``. A scenario's own tables take ``<table>.<key>`` too
(``population.count``, ``market_makers.deposit``, ``price.jumps``), checked by the scenario
reader as a file's keys are. A value is the TOML value of the sweep file, or a string read as
``set`` reads it (the type the key already has: integer, true/false, a string, JSON for a
list); a float is refused, as everywhere in clearsim.

``exchange.preset`` takes the named exchange's rules: the scenario's own values of every key
the preset decides (its ``[exchange]`` and ``[waterfall]`` keys) are dropped, so the preset's
apply, and the cell's other parameters still win over it. (In a file, the file's keys win
over its preset; a sweep over presets compares the exchanges' rules on the same market.)

Overrides are applied to the file's TOML tables, then the whole file is read as
``clearsim run`` reads it (:func:`replay.scenarios.from_dict`, ``Config.from_dict``), so a
cell can never run a configuration a file could not describe.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any, Final

import orjson

from clearsim.clearing.config import OPTIONAL_WATERFALL, Config, ConfigError
from clearsim.clearing.presets import PRESETS
from clearsim.events.errors import ClearsimError

__all__ = [
    "CONFIG_TABLES",
    "SCENARIO_TABLES",
    "OverrideError",
    "apply",
    "canonical",
    "collateral",
    "current",
    "render",
]

CONFIG_TABLES: Final = ("exchange", "insurance_fund", "waterfall", "instruments")
#: Scenario tables a parameter may name (``[[accounts]]`` and ``[[events]]`` are lists of
#: tables with no key to name; ``scenario.seed`` is the sweep's ``seeds``).
SCENARIO_TABLES: Final = ("scenario", "population", "market_makers", "price")
_INT: Final = re.compile(r"^-?[0-9]{1,18}\Z")


class OverrideError(ClearsimError, ValueError):
    """A parameter that names no key, or a value of the wrong type; ``str()`` is one line
    starting with the path."""


def render(v: object) -> str:
    """The text of a parameter value (as ``set`` records it: true/false, JSON for lists)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
    return str(v)


def _config_tables(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k in CONFIG_TABLES}


def _normalised(doc: dict[str, Any]) -> dict[str, Any]:
    try:
        return Config.from_dict(_config_tables(doc)).to_dict()
    except ConfigError as e:
        raise OverrideError(str(e)) from None


def _current(base: dict[str, Any], path: str, scenario: bool) -> object:
    """The value ``path`` has in the normalised config ``base`` (its type decides how a
    string is read), or ``None`` for a scenario table's key (read as written)."""
    parts = path.split(".")
    head = parts[0]
    if head in SCENARIO_TABLES and len(parts) == 2:
        if not scenario:
            raise OverrideError(f"{path}: a day of commands has no [{head}] table")
        if path == "scenario.seed":
            raise OverrideError(f"{path}: the seeds are the sweep's [sweep] seeds")
        return None
    if path == "exchange.preset":
        return ""
    if head in ("exchange", "waterfall", "insurance_fund") and len(parts) == 2:
        table = base[head]
        if parts[1] in table:
            return table[parts[1]]
        if head == "waterfall" and parts[1] in OPTIONAL_WATERFALL:
            return OPTIONAL_WATERFALL[parts[1]]
    elif head == "instruments" and len(parts) == 3:
        inst = next((i for i in base["instruments"] if i["symbol"] == parts[1]), None)
        if inst is None:
            known = ", ".join(i["symbol"] for i in base["instruments"])
            raise OverrideError(f"{path}: no instrument {parts[1]!r} (the config has {known})")
        if parts[2] in inst:
            return inst[parts[2]]
    raise OverrideError(f"{path}: unknown parameter")


def _coerce(old: object, v: object, path: str) -> object:
    """``v`` as the type of ``old`` (a string read as ``set`` reads it)."""
    if isinstance(v, float):
        raise OverrideError(f"{path}: a float is not accepted; write {v!r} as a string")
    if isinstance(old, bool):
        if isinstance(v, bool):
            return v
        if v in ("true", "false"):
            return v == "true"
        raise OverrideError(f"{path}: expected true or false, got {v!r}")
    if isinstance(old, int):
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if isinstance(v, str) and _INT.match(v):
            return int(v)
        raise OverrideError(f"{path}: expected an integer, got {v!r}")
    if isinstance(old, (list, dict)):
        if isinstance(v, type(old)):
            return v
        if isinstance(v, str):
            try:
                parsed = orjson.loads(v)
            except orjson.JSONDecodeError:
                parsed = None
            if isinstance(parsed, type(old)):
                return parsed
        what = "a list" if isinstance(old, list) else "a table"
        raise OverrideError(f"{path}: expected {what} (or its JSON), got {v!r}")
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)  # a whole amount written as a TOML integer
    raise OverrideError(f"{path}: expected a string, got {v!r}")


def canonical(doc: dict[str, Any], path: str, v: object, *, scenario: bool) -> object:
    """``v`` checked against the file's tables ``doc`` and read to the type its key has
    (a scenario table's value as written). Raises :class:`OverrideError`."""
    old = _current(_normalised(doc), path, scenario)
    if old is None:
        if isinstance(v, float):
            raise OverrideError(f"{path}: a float is not accepted; write {v!r} as a string")
        return v
    if path == "exchange.preset" and v not in PRESETS:
        raise OverrideError(f"{path}: unknown preset {v!r} (known: {', '.join(PRESETS)})")
    return _coerce(old, v, path)


def current(doc: dict[str, Any], path: str, *, scenario: bool) -> object:
    """The value ``path`` has for the file's tables ``doc``: the normalised config's (all
    defaults explicit), or a scenario table's key as written (None when absent)."""
    old = _current(_normalised(doc), path, scenario)
    if old is None:
        table, key = path.split(".")
        t = doc.get(table)
        return t.get(key) if isinstance(t, dict) else None
    return old


def collateral(doc: dict[str, Any]) -> tuple[int, str]:
    """(collateral_decimals, collateral name) of the file's config."""
    ex = _normalised(doc)["exchange"]
    return int(ex["collateral_decimals"]), str(ex["collateral"])


def apply(
    doc: dict[str, Any], params: Iterable[tuple[str, object]], *, scenario: bool
) -> dict[str, Any]:
    """A copy of the file's tables ``doc`` with ``params`` written in (values as
    :func:`canonical` gives them); the caller reads the result as a file."""
    params = list(params)
    base = _normalised(doc)
    out = copy.deepcopy(doc)
    for path, v in params:  # the preset first: the cell's other parameters win over it
        if path == "exchange.preset":
            _take_preset(out, _coerce("", v, path), path)
    for path, v in params:
        old = _current(base, path, scenario)
        value = v if old is None else _coerce(old, v, path)
        parts = path.split(".")
        if parts[0] == "instruments":
            insts = out.get("instruments")
            target = next(
                i for i in (insts if isinstance(insts, list) else []) if i.get("symbol") == parts[1]
            )
            target[parts[2]] = value
        else:
            table = out.setdefault(parts[0], {})
            if not isinstance(table, dict):
                raise OverrideError(f"{path}: [{parts[0]}] is not a table in the file")
            table[parts[1]] = value
    return out


def _take_preset(out: dict[str, Any], name: object, path: str) -> None:
    preset = PRESETS.get(name) if isinstance(name, str) else None
    if preset is None:
        raise OverrideError(f"{path}: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    for table, decided in preset.items():
        mine = out.get(table)
        if isinstance(mine, dict):
            out[table] = {k: v for k, v in mine.items() if k not in decided}
    out.setdefault("exchange", {})["preset"] = name
