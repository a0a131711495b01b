"""``clearsim.open_log``: a log's tables as pandas DataFrames, for notebooks.

    import clearsim
    log = clearsim.open_log("crash.log")
    fills = log.events(types=["fill"])          # one row per fill, decimal prices and qty
    fills.groupby("taker_side")["qty"].sum()    # exact: Decimal, never float
    log.fund().tail()                           # the insurance fund's timeline
    log.accounts(at=44208)                      # every account after the command at 44208
    log.cascades(top=5)                         # the five largest cascades

Every frame is in the log's human units (:mod:`.units`): prices, quantities and money as
exact decimals (pandas ``ArrowDtype`` over Arrow ``decimal128``; sums and comparisons stay
exact), times as UTC timestamps. ``frame="arrow"`` returns the pyarrow Table instead
(``polars.from_arrow(table)`` makes a polars DataFrame of it, decimals kept) and
``frame="polars"`` does that for you where polars is installed. ``units="raw"`` gives
the log's integers (ticks, lots, atoms, µs).
"""

from __future__ import annotations

import os
from typing import Any, Literal

import pyarrow as pa

from clearsim.events.log import LogReader, TornTail
from clearsim.replay.tables import TableError, require
from clearsim.replay.tables.events import EventColumns, batches_of
from clearsim.replay.tables.units import Units, UnitsName
from clearsim.replay.tables.views import build_table

__all__ = ["Frame", "LogFrames", "open_log"]

Frame = Literal["pandas", "arrow", "polars"]


def open_log(path: str | os.PathLike[str], *, units: UnitsName = "human") -> LogFrames:
    """The tables of the log at ``path`` (its header is read and checked now)."""
    return LogFrames(path, units=units)


class LogFrames:
    """One log's tables; each method reads the log again (nothing is cached)."""

    def __init__(self, path: str | os.PathLike[str], *, units: UnitsName = "human") -> None:
        self.path = os.fspath(path)
        self.header = LogReader(self.path).header
        self.units = Units(self.header.config, units)
        self.unit_name: UnitsName = units
        #: the torn tail the last read found (None: the log ended cleanly)
        self.torn: TornTail | None = None

    def __repr__(self) -> str:
        return f"open_log({self.path!r}, units={self.unit_name!r})"

    # -- tables

    def events(
        self, types: list[str] | None = None, *, frame: Frame = "pandas", verify: bool = True
    ) -> Any:
        """One row per event (of ``types``, default all), in seq order."""
        return _as(self.events_arrow(types, verify=verify), frame)

    def events_arrow(self, types: list[str] | None = None, *, verify: bool = True) -> pa.Table:
        """:meth:`events` as a pyarrow Table."""
        columns = EventColumns(self.units, types)
        reader = LogReader(self.path)
        tables = list(batches_of(reader, columns, verify=verify))
        self.torn = reader.torn
        if not tables:
            return columns.schema.empty_table()
        return pa.concat_tables(tables).combine_chunks()

    def fund(self, *, frame: Frame = "pandas") -> Any:
        """One row per change of the insurance fund's equity or cash."""
        return self._view("fund", frame)

    def clawbacks(self, *, frame: Frame = "pandas") -> Any:
        """One row per clawback period."""
        return self._view("clawback", frame)

    def adl(self, *, frame: Frame = "pandas") -> Any:
        """One row per deleveraging."""
        return self._view("adl", frame)

    def accounts(
        self, at: int | None = None, *, time: int | None = None, frame: Frame = "pandas"
    ) -> Any:
        """One row per account: at the end, after the command holding seq ``at``, or after
        every event with ``ts <= time`` (µs)."""
        if at is not None and time is not None:
            raise TableError("accounts: give at or time, not both")
        return self._view("accounts", frame, at=at, time=time)

    def cascades(self, top: int = 10, *, frame: Frame = "pandas") -> Any:
        """One row per cascade, the ``top`` largest (by liquidations), largest first."""
        if top < 1:
            raise TableError("cascades: top must be at least 1")
        return self._view("cascades", frame, top=top)

    def _view(self, name: str, frame: Frame, **kw: Any) -> Any:
        table, self.torn = build_table(name, self.path, self.unit_name, **kw)
        return _as(table, frame)


def _as(table: pa.Table, frame: Frame) -> Any:
    if frame == "arrow":
        return table
    if frame == "polars":
        pl = require("polars", 'frame="polars"')
        return pl.from_arrow(table)
    if frame == "pandas":
        pd = require("pandas", "open_log")
        # ArrowDtype keeps every column exact (decimal128 stays decimal, not float) and
        # nullable ints stay ints.
        return table.to_pandas(types_mapper=pd.ArrowDtype)
    raise TableError(f"frame: expected pandas, arrow or polars, got {frame!r}")
