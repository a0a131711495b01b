"""The events table: one row per event, a typed column per field, built in Arrow batches.

Columns: ``seq``, ``ts``, ``type`` (a dictionary of every event type's name), ``cause``,
then every field of the event types in the table, in the order :data:`EVENT_TYPES`
declares them; a row's fields of other types are null. Each field's unit is stated once,
in :mod:`replay.projections.fields`, and converted by :class:`.units.Units`: prices,
quantities and money as exact decimals, times as UTC timestamps, or everything as the
log's integers (``raw``). Three fields are not scalars: an input's ``command`` is kept as
its canonical JSON text (the command as received), and ``funding.payments`` and
``clawback.charges`` (lists of ``[account, atoms]``) as lists of ``{account, amount}``.

Speed: no typed event and no record dict is built. The reader hands over verified chunks
of whole lines (:meth:`events.log.LogReader.chunks`); one regex pass finds each line's type
(canonical lines: sorted keys, no spaces), the lines are grouped by type, and each type's
lines go to Arrow's JSON reader with that type's exact schema in one call, so parsing and
column building happen in C++; the types' tables are then put back in seq order. Only
the two list-holding types (funding, clawback; rare) are parsed line by line with orjson.
"""

from __future__ import annotations

import io
import os
import re
import typing
from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import Any, Final

import attrs
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from clearsim.events.log import LogReader
from clearsim.events.types import EVENT_TYPES
from clearsim.replay.projections.fields import KINDS, PLAIN
from clearsim.replay.tables import TableError
from clearsim.replay.tables.units import Kind, Units

__all__ = [
    "BATCH",
    "ENVELOPE",
    "KINDS",
    "PLAIN",
    "EventColumns",
    "batches",
    "check_types",
    "fields_of",
]

#: Events per record batch.
BATCH: Final = 65_536

ENVELOPE: Final = ("seq", "ts", "type", "cause")

#: Fields that are lists of ``[account, atoms]``.
_PAIRS: Final = frozenset({"payments", "charges"})
_JSON_TEXT: Final = frozenset({"command"})

#: The dictionary of the ``type`` column: every type's name, so every batch shares it.
_TYPE_NAMES: Final = tuple(EVENT_TYPES)
_TYPE_CODE: Final = {t: i for i, t in enumerate(_TYPE_NAMES)}
_TYPE_DICT: Final = pa.dictionary(pa.int16(), pa.string())

#: One event type's columns in a batch (the envelope but ``type``, and its own fields).
Part = dict[str, pa.Array]


def fields_of(type_name: str) -> tuple[str, ...]:
    """An event type's own fields (the envelope's left out), in declaration order."""
    return tuple(a.name for a in attrs.fields(EVENT_TYPES[type_name]))[3:]


def check_types(types: Sequence[str] | None) -> tuple[str, ...]:
    """The event types asked for (all, in declaration order, for None); TableError for a
    name that is not an event type."""
    if types is None:
        return _TYPE_NAMES
    for t in types:
        if t not in EVENT_TYPES:
            raise TableError(f"unknown event type {t!r} (one of: {', '.join(_TYPE_NAMES)})")
    wanted = dict.fromkeys(types)  # membership only; the order is the declaration order
    return tuple(t for t in _TYPE_NAMES if t in wanted)


def _chunked(units: Units, kind: Kind, col: pa.ChunkedArray) -> pa.Array:
    return units.column(kind, col.combine_chunks())


def _scalar_type(type_name: str, field: str) -> pa.DataType:
    """The Arrow type of a non-amount field, from its annotation."""
    hint = typing.get_type_hints(EVENT_TYPES[type_name])[field]
    if hint is str:
        return pa.string()
    if hint is bool:
        return pa.bool_()
    if hint is int or hint == (int | None):
        return pa.int64()
    raise TypeError(f"{type_name}.{field}: no column type for {hint!r}")  # pragma: no cover


class EventColumns:
    """The schema of an events table and how each type's rows become its columns."""

    def __init__(self, units: Units, types: Sequence[str] | None = None) -> None:
        self.units = units
        self.types = check_types(types)
        self.getters = {t: itemgetter("seq", "ts", "cause", *fields_of(t)) for t in self.types}
        columns: dict[str, pa.DataType] = {
            "seq": pa.int64(),
            "ts": units.type_of("time"),
            "type": _TYPE_DICT,
            "cause": pa.int64(),
        }
        for t in self.types:
            for f in fields_of(t):
                if f not in columns:
                    columns[f] = self._field_type(t, f)
        self._lines = _LineTables(self.types)
        self.schema = pa.schema([pa.field(k, v, nullable=k not in ENVELOPE) for k, v in
                                 columns.items()])  # fmt: skip

    def _field_type(self, type_name: str, field: str) -> pa.DataType:
        if field in _JSON_TEXT:
            return pa.string()
        if field in _PAIRS:
            money = self.units.type_of("money")
            return pa.list_(pa.struct([("account", pa.string()), ("amount", money)]))
        kind = KINDS.get(field)
        if kind is not None:
            return self.units.type_of(kind)
        return _scalar_type(type_name, field)

    # -- building

    def table_of(self, type_name: str, rows: list[tuple[Any, ...]]) -> Part:
        """One type's rows (seq, ts, cause, fields...) as its columns."""
        cols = list(zip(*rows, strict=True))
        names = fields_of(type_name)
        units = self.units
        values: dict[str, pa.Array] = {
            "seq": pa.array(cols[0], pa.int64()),
            "ts": units.column("time", pa.array(cols[1], pa.int64())),
            "cause": pa.array(cols[2], pa.int64()),
        }
        symbols = None
        if "symbol" in names:
            symbols = pa.array(cols[3 + names.index("symbol")], pa.string())
        for name, col in zip(names, cols[3:], strict=True):
            values[name] = self._column(type_name, name, col, symbols)
        return values

    def table_of_lines(self, type_name: str, lines: list[bytes]) -> Part:
        """One type's canonical lines as its columns (see the module docstring: Arrow's
        JSON reader, or orjson for the types holding lists)."""
        if type_name in _BY_LINE:
            get = self.getters[type_name]
            loads = orjson.loads
            try:
                records = [loads(line) for line in lines]
                if any(d.get("type") != type_name for d in records):
                    raise _Misgrouped
                rows = [get(d) for d in records]
            except KeyError as e:
                raise TableError(f"{type_name} record: missing field {e.args[0]!r}") from None
            return self.table_of(type_name, rows)
        raw = self._lines.read(type_name, lines)
        units = self.units
        values: dict[str, pa.Array | pa.ChunkedArray] = {
            "seq": raw["seq"],
            "ts": _chunked(units, "time", raw["ts"]),
            "cause": raw["cause"],
        }
        names = fields_of(type_name)
        symbols = raw["symbol"].combine_chunks() if "symbol" in names else None
        for name in names:
            if name in _JSON_TEXT:
                values[name] = _commands(lines)
                continue
            kind = KINDS.get(name)
            col = raw[name]
            if kind is not None:
                try:
                    values[name] = units.column(kind, col.combine_chunks(), symbols)
                except ValueError as e:
                    raise TableError(f"{type_name}.{name}: {_first_line(e)}") from None
            else:
                values[name] = col
        return {k: v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v
                for k, v in values.items()}  # fmt: skip

    def _column(
        self, type_name: str, name: str, col: tuple[Any, ...], symbols: pa.Array | None
    ) -> pa.Array:
        try:
            if name in _JSON_TEXT:
                dumps, opt = orjson.dumps, orjson.OPT_SORT_KEYS
                return pa.array([dumps(c, option=opt).decode() for c in col], pa.string())
            if name in _PAIRS:
                return self._pairs(col)
            kind = KINDS.get(name)
            if kind is not None:
                return self.units.column(kind, pa.array(col, pa.int64()), symbols)
            return pa.array(col, _scalar_type(type_name, name))
        except (pa.ArrowException, TypeError, ValueError, orjson.JSONEncodeError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise TableError(f"{type_name}.{name}: {msg}") from None

    def _pairs(self, col: tuple[Any, ...]) -> pa.Array:
        """Lists of ``[account, atoms]`` as lists of ``{account, amount}``."""
        offsets = [0]
        accounts: list[Any] = []
        amounts: list[Any] = []
        for pairs in col:
            for account, amount in pairs:
                accounts.append(account)
                amounts.append(amount)
            offsets.append(len(accounts))
        money = self.units.column("money", pa.array(amounts, pa.int64()))
        items = pa.StructArray.from_arrays(
            [pa.array(accounts, pa.string()), money], names=["account", "amount"]
        )
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), items)


# --------------------------------------------------------------------------- reading lines


#: The ``"type"`` of a record, found once per line in a chunk of canonical lines: the key
#: is followed by ``"h"`` (the last key), or by the only keys that sort after it, ``until``
#: and ``value``, with their integers. An input's command may hold ``"type"`` too, but
#: followed by ``}`` or a string ``value``. Should a command ever hold one this matches,
#: the types no longer line up with the lines: the count differs, or a group's parsed
#: ``type`` column does (:class:`_Misgrouped`), and the lines' types are then read one by
#: one.
_TYPE_AT: Final = re.compile(rb'"type":"([a-z_]+)"(?=,"h":|,"until":[0-9]|,"value":-?[0-9])')

#: Types whose records are parsed with orjson, one line at a time: they hold lists of
#: ``[account, atoms]``, which a JSON-to-Arrow reader cannot type.
_BY_LINE: Final = frozenset(t for t in _TYPE_NAMES if any(f in _PAIRS for f in fields_of(t)))


class _Misgrouped(Exception):
    """A group of lines holds a record of another type (see :data:`_TYPE_AT`)."""


class _LineTables:
    """Arrow's JSON reader per event type: canonical lines of one type in, raw columns out."""

    def __init__(self, types: Sequence[str]) -> None:
        self.schemas: dict[str, pa.Schema] = {}
        self.required: dict[str, tuple[str, ...]] = {}
        for t in types:
            fields = [
                (f, _scalar_type(t, f))
                for f in fields_of(t)
                if f not in _JSON_TEXT and f not in _PAIRS
            ]
            envelope = [("seq", pa.int64()), ("ts", pa.int64()), ("cause", pa.int64())]
            self.schemas[t] = pa.schema([*envelope, *fields, ("type", pa.string()),
                                         ("h", pa.string())])  # fmt: skip
            hints = typing.get_type_hints(EVENT_TYPES[t])
            self.required[t] = ("seq", "ts", "cause", *(
                f for f, _ in fields if type(None) not in typing.get_args(hints[f])
            ))  # fmt: skip

    def read(self, type_name: str, lines: list[bytes]) -> pa.Table:
        """The raw columns of ``lines`` (all of ``type_name``); TableError for a record
        that does not fit (a mistyped, missing or unknown field)."""
        schema = self.schemas[type_name]
        try:
            table = pj.read_json(
                io.BytesIO(b"\n".join(lines)),
                # 1 MiB blocks: a batch's group spans several, parsed on all cores
                read_options=pj.ReadOptions(use_threads=True, block_size=1 << 20),
                parse_options=pj.ParseOptions(
                    explicit_schema=schema,
                    # an input's command is taken from the line itself (see _commands)
                    unexpected_field_behavior="ignore" if type_name == "input" else "error",
                ),
            )
        except pa.ArrowInvalid as e:
            raise TableError(f"{type_name} record: {_first_line(e)}") from None
        if table["type"].null_count or not pc.all(pc.equal(table["type"], type_name)).as_py():
            raise _Misgrouped
        for name in self.required[type_name]:
            if table[name].null_count:
                row = pc.index(pc.is_null(table[name]), True).as_py()
                seq = table["seq"][row].as_py()
                raise TableError(f"record seq {seq} ({type_name}): missing field {name!r}")
        return table


def _first_line(e: BaseException) -> str:
    text = str(e)
    return text.splitlines()[0] if text else type(e).__name__


_COMMAND_KEY: Final = b'"command":'
_SEQ_KEY: Final = b',"seq":'


def _commands(lines: list[bytes]) -> pa.Array:
    """Each input line's command, as its canonical JSON text: the bytes between the
    ``"command":`` key (the second: ``cause`` < ``command`` < ``seq``) and the envelope's
    ``,"seq":`` (the last one in the line: only integers and the type follow it). Built
    as binary and cast to string (UTF-8 checked in one pass): handing Arrow the bytes as
    strings one by one measured 20x slower."""
    key, seq, n = _COMMAND_KEY, _SEQ_KEY, len(_COMMAND_KEY)
    found = [line[line.index(key) + n : line.rindex(seq)] for line in lines]
    return pa.array(found, pa.binary()).cast(pa.string())


def batches(
    path: str | os.PathLike[str],
    columns: EventColumns,
    *,
    verify: bool = True,
    batch: int = BATCH,
) -> Iterator[pa.Table]:
    """The events of the log at ``path`` as tables of about ``batch`` rows, in seq order.

    The log is read with :meth:`events.log.LogReader.chunks` (checksums verified unless
    ``verify`` is False; a torn tail is left out, as by every reader). A record that does
    not fit its type (a missing, mistyped or unknown field, an unknown type) is
    :class:`TableError`.
    """
    yield from batches_of(LogReader(path), columns, verify=verify, batch=batch)


def batches_of(
    reader: LogReader, columns: EventColumns, *, verify: bool = True, batch: int = BATCH
) -> Iterator[pa.Table]:
    """:func:`batches` from an open reader (whose ``torn`` tells of a torn tail after)."""
    wanted = set(columns.types)
    lines: list[bytes] = []
    types: list[bytes] = []
    for chunk in reader.chunks(verify=verify, size=batch):
        more = chunk.split(b"\n")
        more.pop()
        found = _TYPE_AT.findall(chunk)
        if len(found) != len(more):
            found = [_type_of_line(reader, line) for line in more]
        lines += more
        types += found
        while len(lines) >= batch:
            yield _regrouped(reader, columns, wanted, lines[:batch], types[:batch])
            del lines[:batch], types[:batch]
    if lines:
        yield _regrouped(reader, columns, wanted, lines, types)


def _grouped(lines: list[bytes], types: list[bytes]) -> dict[bytes, list[bytes]]:
    """The lines by type, each group in the lines' order (a plain loop: measured faster
    than a stable numpy sort of the names)."""
    out: dict[bytes, list[bytes]] = {}
    get = out.get
    for t, line in zip(types, lines, strict=True):
        g = get(t)
        if g is None:
            g = out[t] = []
        g.append(line)
    return out


def _regrouped(
    reader: LogReader,
    columns: EventColumns,
    wanted: set[str],
    lines: list[bytes],
    types: list[bytes],
) -> pa.Table:
    """:func:`_batch` of the lines grouped by ``types``, grouped again by their parsed
    types if the fast typing put a line in the wrong group (which shows as a group's
    parsed types, or as a field the group's type does not have: a bad record is then
    reported by the second try)."""
    try:
        return _batch(reader, columns, wanted, _grouped(lines, types))
    except (_Misgrouped, TableError):
        parsed = [_type_of_line(reader, line) for line in lines]
        try:
            return _batch(reader, columns, wanted, _grouped(lines, parsed))
        except _Misgrouped:  # pragma: no cover - the groups are by parsed type now
            raise TableError(f"{reader.path}: records of mixed types in a group") from None


def _type_of_line(reader: LogReader, line: bytes) -> bytes:
    try:
        t = orjson.loads(line).get("type")
    except (orjson.JSONDecodeError, AttributeError):
        raise TableError(f"{reader.path}: a record is not a JSON object") from None
    return t.encode() if isinstance(t, str) else b"?"


def _batch(
    reader: LogReader,
    columns: EventColumns,
    wanted: set[str],
    groups: dict[bytes, list[bytes]],
) -> pa.Table:
    """One batch's lines, grouped by type, as a table in seq order (the reader checked
    that the seqs run on gaplessly)."""
    parts: list[tuple[str, Part]] = []
    try:
        for tb, lines in groups.items():
            t = tb.decode()
            if t not in EVENT_TYPES:
                seq = _seq_or_none(lines[0])
                raise TableError(f"record seq {seq}: unknown event type {t!r}")
            if t in wanted:
                parts.append((t, columns.table_of_lines(t, lines)))
    except TableError as e:
        raise TableError(f"{reader.path}: {e}") from None
    return assemble(columns.schema, parts)


def assemble(schema: pa.Schema, parts: list[tuple[str, Part]]) -> pa.Table:
    """The types' columns as one table of ``schema``, in seq order.

    No column is built full of nulls per type and then sorted: each output column is one
    ``take`` from the compact concatenation of the types that have it (plus one null,
    which every other row's index points at), in the order that sorts the seqs.
    """
    if not parts:
        return schema.empty_table()
    sizes = [len(p["seq"]) for _, p in parts]
    total = sum(sizes)
    starts = np.cumsum([0, *sizes])
    order = pc.sort_indices(pa.concat_arrays([p["seq"] for _, p in parts])).to_numpy()
    codes = np.repeat(np.array([_TYPE_CODE[t] for t, _ in parts], np.int16), sizes)
    cols = []
    for field in schema:
        name = field.name
        if name == "type":
            cols.append(pa.DictionaryArray.from_arrays(pa.array(codes[order]), _TYPE_NAMES))
            continue
        have = [(i, p[name]) for i, (_, p) in enumerate(parts) if name in p]
        if not have:
            cols.append(pa.nulls(total, field.type))  # no type in the batch has it
            continue
        if len(parts) == 1:
            cols.append(have[0][1])  # one type: already in seq order
            continue
        pieces = [a for _, a in have]
        src = np.full(total, sum(len(a) for a in pieces), np.int64)  # -> the trailing null
        at = 0
        for i, a in have:
            src[starts[i] : starts[i + 1]] = np.arange(at, at + len(a))
            at += len(a)
        compact = pa.concat_arrays([*pieces, pa.nulls(1, field.type)])
        cols.append(compact.take(pa.array(src[order])))
    return pa.Table.from_arrays(cols, schema=schema)


def _seq_or_none(line: bytes) -> object:
    try:
        return orjson.loads(line).get("seq")
    except (orjson.JSONDecodeError, AttributeError):
        return None
