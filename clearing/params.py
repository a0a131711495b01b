"""Governance: the ``set`` command changes one configuration value at a point in the log.

A path names a key of the normalised config (``waterfall.liquidation_fee_ppm``,
``instruments.BTC-USD.tiers``, ``exchange.mark``); the value is a string, read as the type
the key already has (integer, true/false, string, or JSON for lists). The changed config is
validated whole, exactly as a config file would be, so a ``set`` can never produce a
configuration that a file could not. Keys that fix the units of what is already in the log
(collateral, decimals, grids, kinds, symbols, the fund's initial balance) cannot change.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import orjson

from clearsim.clearing.config import OPTIONAL_WATERFALL, Config, ConfigError
from clearsim.events.errors import ClearsimError

_IMMUTABLE = {
    "exchange.collateral", "exchange.collateral_decimals", "exchange.preset",
    "insurance_fund.initial",
}  # fmt: skip
_IMMUTABLE_INSTRUMENT = {"symbol", "kind", "tick_size", "lot_size"}
_INT = re.compile(r"^-?[0-9]{1,18}\Z")  # \Z: "$" would accept a trailing newline


class ParamError(ClearsimError, ValueError):
    """A ``set`` that cannot be applied; ``str()`` is the rejection reason."""


def render(v: object) -> str:
    """The canonical text of a config value (what ``param_set`` events record)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
    return str(v)


def _coerce(old: object, text: str, path: str) -> object:
    if isinstance(old, bool):
        if text not in ("true", "false"):
            raise ParamError(f"{path}: expected true or false")
        return text == "true"
    if isinstance(old, int):
        if not _INT.match(text):
            raise ParamError(f"{path}: expected an integer")
        return int(text)
    if isinstance(old, (list, dict)):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise ParamError(f"{path}: expected JSON: {e}") from e
    return text


def apply_set(config: Config, path: str, text: str) -> tuple[Config, str, str]:
    """Return (new config, old value text, new value text) or raise :class:`ParamError`."""
    if path in _IMMUTABLE:
        raise ParamError(f"{path} cannot change during a run")
    raw: dict[str, Any] = copy.deepcopy(config.to_dict())
    parts = path.split(".")
    if parts[0] == "instruments" and len(parts) == 3:
        target = next((i for i in raw["instruments"] if i["symbol"] == parts[1]), None)
        if target is None:
            raise ParamError(f"unknown symbol {parts[1]}")
        key = parts[2]
        if key in _IMMUTABLE_INSTRUMENT:
            raise ParamError(f"{path} cannot change during a run")
    elif parts[0] in ("exchange", "waterfall") and len(parts) == 2:
        target, key = raw[parts[0]], parts[1]
    else:
        raise ParamError(f"unknown parameter {path}")
    if key not in target and parts[0] == "waterfall" and key in OPTIONAL_WATERFALL:
        target[key] = OPTIONAL_WATERFALL[key]  # at its default: the header leaves it out
    if key not in target:
        raise ParamError(f"unknown parameter {path}")
    old = target[key]
    target[key] = _coerce(old, text, path)
    try:
        new_cfg = Config.from_dict(raw)
    except ConfigError as e:
        raise ParamError(str(e)) from e
    return new_cfg, render(old), render(target[key])
