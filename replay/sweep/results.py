"""The results table: one Parquet row per run, read, merged and written atomically.

Columns, in order: ``key`` (the cell's key, :mod:`.spec`), ``day``, ``seed``, one
``param:<path>`` column per parameter (the value's text, as ``set`` records it; null where
a cell does not set it), ``params`` (all of them as canonical JSON), then the outcomes of
:class:`.cell.Outcome` — money as ``decimal128(38, d)`` in collateral units, ``d`` the
largest ``collateral_decimals`` of the table's days (exact; ``15000.000000`` for USDT),
counts as int64 — and last the three clock columns, ``run_s`` (wall), ``cpu_s`` (the cell's
CPU) and ``commands_per_s`` (float64): the only columns that differ between two runs of
the same cell (:data:`.cell.NONDETERMINISTIC`; :func:`deterministic` drops them).

Rows are kept in the sweep's cell order (rows of cells no longer in the sweep after them,
by key), so the file a sweep leaves does not depend on the worker count, on completion
order, or on whether it was interrupted and resumed. The file is written to ``OUT.partial``
beside it and renamed over ``OUT`` (:func:`write`). pyarrow is imported here only, when a
sweep needs it (``pip install 'clearsim[data]'``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from clearsim.events.errors import ClearsimError
from clearsim.replay.sweep.cell import NONDETERMINISTIC, Outcome
from clearsim.replay.sweep.overrides import render

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "MONEY_COLUMNS",
    "PARAM_PREFIX",
    "Appender",
    "MissingExtra",
    "ResultsError",
    "deterministic",
    "keys",
    "merge",
    "outcome_row",
    "read",
    "rows",
    "to_table",
    "write",
]

PARAM_PREFIX: Final = "param:"
_META_KEY: Final = b"clearsim.sweep"
_META_VERSION: Final = b"1"
MONEY_COLUMNS: Final = (
    "fund_start", "fund_min", "fund_end", "fund_paid", "fund_took_in",
    "liq_book_notional", "liq_backstop_notional", "liq_takeover_notional",
    "liq_adl_notional", "adl_notional", "socialized", "clawback_total", "system_debt",
    "largest_cascade_fund_paid",
)  # fmt: skip
_STRINGS: Final = ("params", "engine", "chain_hash", "collateral")
_BOOLS: Final = ("fund_ran_dry",)
_SKIP: Final = ("key", "day", "seed", "params", "params_json", "log", "decimals")
#: Outcome fields in column order (after key, day, seed, the params).
_FIELDS: Final = tuple(
    f.name for f in attrs.fields(Outcome) if f.name not in _SKIP and f.name not in NONDETERMINISTIC
)


class ResultsError(ClearsimError):
    """An output that is not a results table, or cannot be written; one line."""


class MissingExtra(ClearsimError):
    """An optional dependency that is not installed; names the extra to install."""


def _pa() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingExtra("sweep results need pyarrow: pip install 'clearsim[data]'") from None
    return pyarrow


def _type(pa: Any, name: str, scale: int) -> Any:
    if name in MONEY_COLUMNS:
        return pa.decimal128(38, scale)
    if name in _STRINGS:
        return pa.string()
    if name in _BOOLS:
        return pa.bool_()
    if name in NONDETERMINISTIC:
        return pa.float64()
    return pa.int64()


def outcome_row(o: Outcome) -> dict[str, Any]:
    """The row of one outcome: money in collateral units (exact decimals)."""
    row: dict[str, Any] = {"key": o.key, "day": o.day, "seed": o.seed}
    for path, v in o.params:
        row[PARAM_PREFIX + path] = render(v)
    row["params"] = o.params_json
    d = attrs.asdict(o, recurse=False)
    for name in _FIELDS:
        v = d[name]
        row[name] = Decimal(v).scaleb(-o.decimals) if name in MONEY_COLUMNS else v
    for name in NONDETERMINISTIC:
        row[name] = d[name]
    return row


def _columns(names: Iterable[str]) -> list[str]:
    """The fixed columns around the param columns (in their first-seen order)."""
    params = [n for n in dict.fromkeys(names) if n.startswith(PARAM_PREFIX)]
    return ["key", "day", "seed", *params, "params", *_FIELDS, *NONDETERMINISTIC]


def to_table(outcomes: Sequence[Outcome]) -> pa.Table:
    pa = _pa()
    rs = [outcome_row(o) for o in outcomes]
    names = _columns(k for r in rs for k in r)
    scale = max((o.decimals for o in outcomes), default=0)
    fields = [pa.field(n, pa.string() if n in ("key", "day") or n.startswith(PARAM_PREFIX)
                       else _type(pa, n, scale)) for n in names]  # fmt: skip
    schema = pa.schema(fields, metadata={_META_KEY: _META_VERSION})
    return pa.Table.from_pylist(rs, schema=schema)


def read(path: str | os.PathLike[str]) -> pa.Table:
    """A results table written by :func:`write` (else :class:`ResultsError`)."""
    pa = _pa()
    try:
        table = pa.parquet.read_table(path)
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except (OSError, pa.ArrowException) as e:
        raise ResultsError(f"{path}: not a Parquet file ({e})") from None
    meta = table.schema.metadata or {}
    if meta.get(_META_KEY) != _META_VERSION or "key" not in table.column_names:
        raise ResultsError(f"{path}: not a clearsim sweep results table")
    return table


def keys(table: pa.Table) -> set[str]:
    return set(table.column("key").to_pylist())


def rows(table: pa.Table) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = table.to_pylist()
    return result


def merge(old: pa.Table | None, new: pa.Table | None, order: Sequence[str]) -> pa.Table:
    """``old`` and ``new`` rows as one table (a key in both: ``new``'s row), rows in the
    cells' ``order`` of keys, the rest after by key; columns as :func:`_columns` orders."""
    pa = _pa()
    parts = [t for t in (old, new) if t is not None and t.num_rows]
    if not parts:
        empty = new if new is not None else old
        if empty is None:
            raise ValueError("merge: nothing to merge")
        return empty
    if len(parts) > 1:
        # Money at the finest scale of the parts (a day of another collateral_decimals):
        # widening a decimal's scale is exact.
        scale = max(t.schema.field(c).type.scale for t in parts for c in _money(t))
        money = pa.decimal128(38, scale)
        parts = [
            t.cast(
                pa.schema(
                    [pa.field(f.name, money) if f.name in MONEY_COLUMNS else f for f in t.schema],
                    metadata=t.schema.metadata,
                )
            )
            for t in parts
        ]
        table = pa.concat_tables(parts, promote_options="default")
    else:
        table = parts[0]
    ks = table.column("key").to_pylist()
    last = {k: i for i, k in enumerate(ks)}  # a re-run row replaces the old one
    rank = {k: i for i, k in enumerate(order)}
    chosen = sorted(last, key=lambda k: (rank.get(k, len(rank)), k))
    table = table.take(pa.array([last[k] for k in chosen], pa.int64()))
    table = table.select(_columns(table.column_names))
    return table.replace_schema_metadata({_META_KEY: _META_VERSION})


def _money(table: pa.Table) -> list[str]:
    return [c for c in MONEY_COLUMNS if c in table.column_names]


def deterministic(table: pa.Table) -> pa.Table:
    """``table`` without the wall-clock columns: what two runs of a sweep agree on."""
    return table.drop_columns([c for c in NONDETERMINISTIC if c in table.column_names])


def write(path: str | os.PathLike[str], table: pa.Table) -> None:
    """Write ``table`` to ``path`` through ``path.partial`` and a rename."""
    pa = _pa()
    p = Path(path)
    tmp = p.with_name(p.name + ".partial")
    try:
        pa.parquet.write_table(table, tmp)
        os.replace(tmp, p)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ResultsError(f"{p}: cannot write: {e.strerror or e}") from None


class Appender:
    """Rows added as runs complete, written out at most every ``every_s`` seconds (and by
    :meth:`flush`), so a crashed sweep loses only its last few runs: a re-run skips the rest.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        existing: pa.Table | None,
        order: Sequence[str],
        every_s: float = 5.0,
    ) -> None:
        self._clock = time.monotonic  # when to write, never what: no row holds it
        self.path = path
        self.table = existing
        self.order = list(order)
        self.every_s = every_s
        self.pending: list[Outcome] = []
        self._last = self._clock()

    def add(self, outcome: Outcome) -> None:
        self.pending.append(outcome)
        if self._clock() - self._last >= self.every_s:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        self.table = merge(self.table, to_table(self.pending), self.order)
        write(self.path, self.table)
        self.pending = []
        self._last = self._clock()
