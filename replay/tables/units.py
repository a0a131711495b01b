"""The units of a log's numbers, from its header alone, as Arrow types and conversions.

The log stores integers: prices in ticks, quantities in lots, money in atoms, times in µs
(DESIGN §3). The header's config is the only key to what they are worth, and this module is
the one place that reads it for the tables:

- money: atoms, ``10^collateral_decimals`` a unit; as ``decimal128(38, collateral_decimals)``
  the atoms are the unscaled value, exactly;
- prices and quantities: per instrument, ticks x ``tick_size`` and lots x ``lot_size``. A
  column holds every symbol's values, so its scale is the most decimals any instrument's
  step has (``tick 0.1`` and ``tick 0.05`` make a price column of scale 2), and each value
  is its integer times its symbol's step at that scale: exact, with no float anywhere;
- times: µs since the epoch, as ``timestamp[us, tz=UTC]``.

Precisions are as small as the log's bounds allow, so that a price times a quantity (a
notional: precisions add) still fits decimal128's 38 digits: money and quantities hold
any 64-bit integer times their step, prices any price up to ``MAX_PRICE_TICKS`` times
theirs (a price column beyond it is refused).

``units="raw"`` keeps every integer as it is in the log (``int64``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final, Literal

import pyarrow as pa
import pyarrow.compute as pc

from clearsim.clearing.config import Config
from clearsim.events.units import INT64_MAX, MAX_PRICE_TICKS
from clearsim.orderbook.grid import Grid
from clearsim.replay.projections.fields import Kind

__all__ = ["UNITS", "Kind", "Units", "UnitsName"]

UnitsName = Literal["human", "raw"]
UNITS: Final = ("human", "raw")

#: decimal128's most digits: the intermediate of every conversion.
_PRECISION: Final = 38


def _step(text: str, scale: int) -> int:
    """A tick or lot size as an integer number of 10^-scale (exact: scale >= its decimals)."""
    v = Decimal(text).scaleb(scale)
    if v != v.to_integral_value():  # pragma: no cover - scale is the most decimals of any step
        raise ValueError(f"step {text} has more than {scale} decimals")
    return int(v)


class Units:
    """Arrow types and integer-to-column conversions for one log (see the module docstring)."""

    def __init__(self, config: dict[str, Any], units: UnitsName = "human") -> None:
        if units not in UNITS:
            raise ValueError(f"units: expected human or raw, got {units!r}")
        cfg = Config.from_dict(config)
        self.raw = units == "raw"
        self.collateral = cfg.collateral
        self.money_scale = cfg.collateral_decimals
        self.grids = {s.symbol: Grid(s.tick_size, s.lot_size) for s in cfg.instruments}
        specs = cfg.instruments
        self.price_scale = max((g.price_decimals for g in self.grids.values()), default=0)
        self.qty_scale = max((g.qty_decimals for g in self.grids.values()), default=0)
        #: symbol -> its step at the column's scale (ticks, lots -> unscaled decimals)
        self.steps: dict[Kind, dict[str, int]] = {
            "price": {s.symbol: _step(s.tick_size, self.price_scale) for s in specs},
            "qty": {s.symbol: _step(s.lot_size, self.qty_scale) for s in specs},
        }
        self.symbols = [s.symbol for s in specs]

    # -- types

    def type_of(self, kind: Kind) -> pa.DataType:
        if self.raw or kind == "plain":
            return pa.int64()
        if kind == "time":
            return pa.timestamp("us", tz="UTC")
        return pa.decimal128(self.precision_of(kind), self.scale_of(kind))

    def precision_of(self, kind: Kind) -> int:
        """The digits a column of ``kind`` needs (see the module docstring)."""
        if kind == "money":
            return len(str(INT64_MAX))
        step = max(self.steps[kind].values(), default=1)
        bound = MAX_PRICE_TICKS if kind == "price" else INT64_MAX
        return len(str(bound * step))

    def scale_of(self, kind: Kind) -> int:
        if kind == "money":
            return self.money_scale
        if kind == "price":
            return self.price_scale
        if kind == "qty":
            return self.qty_scale
        return 0

    # -- conversions

    def column(self, kind: Kind, values: pa.Array, symbols: pa.Array | None = None) -> pa.Array:
        """``values`` (int64, the log's integers) in this table's units; ``symbols`` (the
        rows' instruments) for prices and quantities."""
        if self.raw or kind == "plain":
            return values
        if kind == "time":
            return values.view(pa.timestamp("us", tz="UTC"))
        typ = self.type_of(kind)
        if kind == "money":
            return _unscaled(values, typ)
        if kind == "price" and len(values):
            top = pc.max(pc.abs(values)).as_py()
            if top is not None and top > MAX_PRICE_TICKS:
                raise ValueError(f"a price of {top} ticks is beyond {MAX_PRICE_TICKS}")
        steps = self.steps[kind]
        distinct = set(steps.values())
        if len(distinct) == 1 and 1 in distinct:
            return _unscaled(values, typ)  # every step is one unit of the scale: no multiply
        step_type = pa.decimal128(18, 0)  # a step is far below 10^18 units of its scale
        if len(distinct) == 1:
            factor: pa.Array | pa.Scalar = pa.scalar(Decimal(distinct.pop()), step_type)
        else:
            if symbols is None:  # pragma: no cover - every price and qty has its symbol
                raise ValueError(f"a {kind} column needs its symbols")
            at = pc.index_in(symbols, value_set=pa.array(self.symbols, pa.string()))
            unknown = pc.and_(pc.is_null(at), pc.is_valid(values))
            if pc.any(unknown).as_py():
                bad = pc.filter(symbols, unknown)[0].as_py()
                raise ValueError(f"symbol {bad!r} is not an instrument of the log's header")
            table = pa.array([Decimal(steps[s]) for s in self.symbols], step_type)
            factor = pc.take(table, at)
        # int64 x step in 128 bits: decimal128(19, 0) x decimal128(18, 0) cannot overflow.
        wide = pc.multiply(values.cast(pa.decimal128(19, 0)), factor)
        return _unscaled(wide, typ)


def _unscaled(values: pa.Array, typ: pa.Decimal128Type) -> pa.Array:
    """``values`` (integers, int64 or decimal128 of scale 0) as the unscaled integers of a
    decimal of ``typ``: the same 128-bit integers, read with ``typ``'s scale (no rounding,
    no float)."""
    wide = values.cast(pa.decimal128(_PRECISION, 0))
    # A decimal128's buffer is its unscaled integers; re-reading it with another scale
    # divides by 10^scale exactly.
    return pa.Array.from_buffers(typ, len(wide), wide.buffers(), wide.null_count, wide.offset)
