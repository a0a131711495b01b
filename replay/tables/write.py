"""Writing a stream of Arrow tables to a Parquet or CSV file, whole or not at all.

The format is the output's extension (``.parquet``/``.pq``, ``.csv``). Tables are written
as they come (a Parquet row group, or CSV rows, per table), to ``OUT.partial`` beside the
output, which is renamed over ``OUT`` only when every table is written; a failure removes
it. An existing output is refused without ``force``, an output that is the input always.

CSV has no nested or dictionary types: dictionary columns are written as their strings, and
list or struct columns as JSON text (decimal amounts as strings, so nothing is rounded).
Decimals are written as exact decimal text, timestamps as ISO-8601 UTC.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from clearsim.replay.tables import TableError

__all__ = ["FORMATS", "csv_ready", "format_of", "write_tables"]

FORMATS: Final = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def format_of(out: str | os.PathLike[str]) -> str:
    """``parquet`` or ``csv``, from the output's extension; TableError for another."""
    ext = Path(out).suffix.lower()
    fmt = FORMATS.get(ext)
    if fmt is None:
        raise TableError(f"{out}: the output must end in .parquet, .pq or .csv")
    return fmt


def _check_output(out: Path, inputs: Iterable[str | os.PathLike[str]], force: bool) -> None:
    for i in inputs:
        if out.exists() and os.path.exists(i) and os.path.samefile(i, out):
            raise TableError(f"{out}: the output is the input log")
    if out.exists() and not force:
        raise TableError(f"{out}: exists (give --force to overwrite it)")


def write_tables(
    tables: Iterable[pa.Table],
    schema: pa.Schema,
    out: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
    force: bool = False,
    metadata: dict[str, str] | None = None,
) -> int:
    """Write ``tables`` (each of ``schema``) to ``out``; the number of rows written.

    ``metadata`` goes in the Parquet schema's key-value metadata (the units, the source).
    """
    out_p = Path(out)
    fmt = format_of(out_p)
    _check_output(out_p, inputs, force)
    partial = out_p.with_name(out_p.name + ".partial")
    if metadata:
        schema = schema.with_metadata({**(schema.metadata or {}), **metadata})
    rows = 0
    try:
        if fmt == "parquet":
            with pq.ParquetWriter(partial, schema, compression="zstd") as pw:
                rows = _pipelined(tables, lambda t: pw.write_table(
                    t.replace_schema_metadata(schema.metadata)))  # fmt: skip
        else:
            csv_schema = csv_ready(schema.empty_table()).schema
            with pacsv.CSVWriter(partial, csv_schema) as cw:
                rows = _pipelined(tables, lambda t: cw.write_table(csv_ready(t)))
        os.replace(partial, out_p)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise TableError(f"{out}: {e.strerror or e}") from None
    except pa.ArrowException as e:
        partial.unlink(missing_ok=True)
        raise TableError(f"{out}: {str(e).splitlines()[0]}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return rows


def _pipelined(tables: Iterable[pa.Table], write: Callable[[pa.Table], None]) -> int:
    """Write each table on one worker thread while the next is being made (Arrow releases
    the GIL while it encodes and compresses), in order; the rows written."""
    rows = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="clearsim-write") as pool:
        pending: Future[None] | None = None
        for t in tables:
            if pending is not None:
                pending.result()
            pending = pool.submit(write, t)
            rows += t.num_rows
        if pending is not None:
            pending.result()
    return rows


# --------------------------------------------------------------------------- CSV


def _json_default(v: Any) -> str:
    if isinstance(v, Decimal):
        return format(v, "f")
    raise TypeError(type(v).__name__)  # pragma: no cover - only decimals are not JSON


def _as_json_text(col: pa.ChunkedArray) -> pa.Array:
    dumps = orjson.dumps
    return pa.array(
        [None if v is None else dumps(v, default=_json_default).decode() for v in
         col.to_pylist()],
        pa.string(),
    )  # fmt: skip


def csv_ready(table: pa.Table) -> pa.Table:
    """``table`` with the columns CSV cannot hold made text (see the module docstring)."""
    cols = []
    for field, col in zip(table.schema, table.columns, strict=True):
        t = field.type
        if pa.types.is_dictionary(t):
            cols.append(col.cast(t.value_type))
        elif pa.types.is_nested(t):
            cols.append(_as_json_text(col))
        else:
            cols.append(col)
    names = table.schema.names
    return pa.Table.from_arrays(cols, names=names)
