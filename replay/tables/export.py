"""``clearsim export``: one table of a log written to a Parquet or CSV file.

:func:`export` picks the table (the events, or a projection of :mod:`.views`), streams it
to :func:`.write.write_tables` batch by batch (the events table never sits in memory
whole), and records in the Parquet schema's metadata what the numbers are: the table, the
units and the log's header (its config is the key to every unit).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import attrs
import orjson
import pyarrow as pa

from clearsim.events.log import LogReader, TornTail
from clearsim.replay.tables import TableError
from clearsim.replay.tables.events import EventColumns, batches_of
from clearsim.replay.tables.units import UNITS, Units, UnitsName
from clearsim.replay.tables.views import TABLES, build_table
from clearsim.replay.tables.write import format_of, write_tables

__all__ = ["ALL_TABLES", "ExportSummary", "export"]

#: Every table ``clearsim export --table`` writes.
ALL_TABLES = ("events", *TABLES)


@attrs.frozen
class ExportSummary:
    table: str
    rows: int
    output: str
    format: str
    units: str
    torn: TornTail | None


def export(
    log: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    table: str = "events",
    types: Sequence[str] | None = None,
    units: UnitsName = "human",
    at: int | None = None,
    time: int | None = None,
    verify: bool = True,
    force: bool = False,
    top: int = 10,
) -> ExportSummary:
    """Write ``table`` of the log at ``log`` to ``out`` (``.parquet``/``.pq``/``.csv``)."""
    if table not in ALL_TABLES:
        raise TableError(f"unknown table {table!r} (one of: {', '.join(ALL_TABLES)})")
    if units not in UNITS:
        raise TableError(f"units: expected human or raw, got {units!r}")
    if types is not None and table != "events":
        raise TableError("--types applies to the events table only")
    if (at is not None or time is not None) and table != "accounts":
        raise TableError("--at and --time apply to the accounts table only")
    fmt = format_of(out)
    reader = LogReader(log)
    meta = {
        "clearsim.table": table,
        "clearsim.units": units,
        "clearsim.header": orjson.dumps(
            {"engine": reader.header.engine, "config": reader.header.config,
             "seed": reader.header.seed}, option=orjson.OPT_SORT_KEYS
        ).decode(),
    }  # fmt: skip
    torn: TornTail | None = None
    if table == "events":
        columns = EventColumns(Units(reader.header.config, units), types)
        tables: Iterator[pa.Table] = batches_of(reader, columns, verify=verify)
        schema = columns.schema
    else:
        t, torn = build_table(table, log, units, verify=verify, at=at, time=time, top=top)
        tables, schema = iter([t]), t.schema
    rows = write_tables(tables, schema, out, inputs=[log], force=force, metadata=meta)
    if table == "events":
        torn = reader.torn  # known once every batch is read
    return ExportSummary(table, rows, os.fspath(out), fmt, units, torn)
