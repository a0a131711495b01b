"""The canonical record encoding of the log: events and the header to bytes and back.

This module owns the bytes of one record and nothing about files: what a record's dict looks
like, its one canonical encoding, the chained checksum that seals it into a line, decoding a
line back to a dict and a dict back to a typed event, and the errors a reader reports.
:mod:`events.log` owns files (writing, reading, verifying the chain, torn tails).

Record format (format 1)::

    body = orjson.dumps(record_dict, option=OPT_SORT_KEYS)      # canonical: sorted, no spaces
    h    = blake2b(prev_h.encode("ascii") + body, digest_size=8).hexdigest()   # prev_h "" for
    line = body[:-1] + b',"h":"' + h + b'"}\\n'                                 # the header

so ``"h"`` is always the last key of a line and a line's body is recovered by cutting a fixed
25-byte suffix, without re-encoding. An event's dict is ``seq``, ``ts``, ``type``, ``cause``
and the class's attrs fields; the header's is ``type="header"``, ``format``, ``engine``,
``config``, ``seed``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import operator
import types
import typing
from typing import Any, Final, Union

import attrs
import orjson

from clearsim.events.errors import ClearsimError
from clearsim.events.types import EVENT_TYPES, Event, Input

__all__ = [
    "ENGINE_VERSION",
    "FORMAT_VERSION",
    "BadRecord",
    "CorruptLog",
    "Header",
    "LineTooLong",
    "LogError",
    "LogExists",
    "NotALog",
    "UnknownFormat",
    "chain_hash",
    "decode_record",
    "encode_event",
    "encode_header",
    "event_to_dict",
    "header_from_dict",
    "seal",
    "seal_bytes",
    "split_record",
    "to_event",
    "unseal",
    "unseal_run",
    "validate_event",
]

FORMAT_VERSION: Final = 1


def _engine_version() -> str:
    try:
        return importlib.metadata.version("clearsim")
    except importlib.metadata.PackageNotFoundError:
        # Running from a source tree that was never installed: still write a valid header.
        return "0+unknown"


ENGINE_VERSION: Final[str] = _engine_version()

_SORT: Final = orjson.OPT_SORT_KEYS
#: ``,"h":"`` + 16 hex digits + ``"}`` + newline: the part of a line that is not the body.
_SUFFIX_LEN: Final = 25
_H_OPEN: Final = b',"h":"'
_H_CLOSE: Final = b'"}\n'
#: Where the 16 hex digits of the checksum sit, counted from the end of a sealed line.
_H_FROM: Final = -19
_H_TO: Final = -3
_HEX: Final = frozenset(b"0123456789abcdef")
_RESERVED_KEYS: Final = frozenset({"type", "h"})


# --------------------------------------------------------------------------- errors


class LogError(ClearsimError):
    """Anything wrong with a log file or record; ``str()`` is one line, fit for ``error: ...``."""

    def __init__(self, message: str) -> None:
        # Messages quote user data (paths, field names); keep them on one line whatever it holds.
        super().__init__(" ".join(message.split("\n")).replace("\r", " "))


class NotALog(LogError):
    """The file is empty, binary, or its first line is not a log header."""


class UnknownFormat(LogError):
    """The header names a format version this engine cannot read."""

    def __init__(self, message: str, format: object = None) -> None:
        super().__init__(message)
        self.format = format


class CorruptLog(LogError):
    """A record is changed, dropped, reordered or unreadable; ``seq`` is the seq expected there."""

    def __init__(self, message: str, seq: int, line_no: int) -> None:
        super().__init__(message)
        self.seq = seq
        self.line_no = line_no


class LineTooLong(CorruptLog):
    """A line longer than the reader's bound (never written by :class:`events.log.LogWriter`)."""


class BadRecord(LogError):
    """A record is intact (its checksum holds) but does not describe a known event."""

    def __init__(self, message: str, seq: object = None, line_no: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq
        self.line_no = line_no


class LogExists(LogError):
    """Refused to create a log over an existing non-empty file."""


# --------------------------------------------------------------------------- header


@attrs.frozen
class Header:
    """The first record: what wrote the log and everything needed to re-execute it."""

    format: int
    engine: str
    config: dict[str, Any]
    seed: int

    @classmethod
    def new(cls, config: dict[str, Any], seed: int) -> Header:
        """A header for a log written now, by this engine, in the current format."""
        return cls(format=FORMAT_VERSION, engine=ENGINE_VERSION, config=config, seed=seed)


def encode_header(header: Header) -> bytes:
    """The header's canonical body (unsealed)."""
    if type(header.seed) is not int or type(header.format) is not int:
        raise ValueError("header seed and format must be integers")
    if not isinstance(header.config, dict) or not isinstance(header.engine, str):
        raise ValueError("header config must be a dict and engine a str")
    d = {
        "type": "header",
        "format": header.format,
        "engine": header.engine,
        "config": header.config,
        "seed": header.seed,
    }
    try:
        return orjson.dumps(d, option=_SORT)
    except orjson.JSONEncodeError as e:
        raise ValueError(f"cannot encode header: {e}") from None


def header_from_dict(d: object) -> Header:
    """The :class:`Header` of a decoded first record.

    Raises :class:`NotALog` if it is not a header and :class:`UnknownFormat` if its format is
    not :data:`FORMAT_VERSION` (checked first: a later format may change everything else).
    """
    if not isinstance(d, dict) or d.get("type") != "header":
        raise NotALog("first record is not a clearsim log header")
    fmt = d.get("format")
    if fmt != FORMAT_VERSION or type(fmt) is not int:
        raise UnknownFormat(
            f"log format {fmt!r} is not supported (this engine reads format {FORMAT_VERSION})",
            format=fmt,
        )
    engine, config, seed = d.get("engine"), d.get("config"), d.get("seed")
    if not isinstance(engine, str) or not isinstance(config, dict) or type(seed) is not int:
        raise NotALog("malformed log header (engine, config or seed missing or mistyped)")
    extra = set(d) - {"type", "format", "engine", "config", "seed", "h"}
    if extra:
        raise NotALog(f"malformed log header (unknown field {sorted(extra)[0]!r})")
    return Header(format=fmt, engine=engine, config=config, seed=seed)


# --------------------------------------------------------------------------- per-class specs

# Types a JSON round trip gives back unchanged. float is left out on purpose (no floats in
# events), tuple because it comes back as a list.
_JSON_SCALARS: Final[frozenset[type]] = frozenset({int, str, bool, type(None)})
_ANY: Final[frozenset[type]] = _JSON_SCALARS | {list, dict}


def _allowed(annotation: object, where: str) -> tuple[frozenset[type], bool]:
    """(exact top-level types allowed, whether nested values need checking) for an annotation."""
    if annotation is Any:
        return _ANY, True
    if annotation is int or annotation is str or annotation is bool:
        return frozenset({annotation}), False
    if annotation is None or annotation is type(None):
        return frozenset({type(None)}), False
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        allowed: set[type] = set()
        deep = False
        for arg in typing.get_args(annotation):
            a, d = _allowed(arg, where)
            allowed |= a
            deep = deep or d
        return frozenset(allowed), deep
    if annotation is list or origin is list:
        return frozenset({list}), True
    if annotation is dict or origin is dict:
        return frozenset({dict}), True
    raise TypeError(
        f"{where}: annotation {annotation!r} cannot round-trip through the JSON log "
        "(use int, str, bool, None, list, dict or Any)"
    )


class _Spec:
    """What encoding and decoding one event class needs, computed once per class."""

    __slots__ = ("cls", "deep", "get", "good", "item", "names", "nfields", "type_name", "types")

    def __init__(self, cls: type[Event]) -> None:
        type_name = cls.TYPE
        if EVENT_TYPES.get(type_name) is not cls:
            raise TypeError(f"{cls.__name__} is not a registered event type")
        names = tuple(a.name for a in attrs.fields(cls))
        clash = _RESERVED_KEYS.intersection(names)
        if clash:
            raise TypeError(f"{cls.__name__}: field name {sorted(clash)[0]!r} is reserved")
        hints = typing.get_type_hints(cls)
        allowed: list[frozenset[type]] = []
        deep: list[int] = []
        for i, name in enumerate(names):
            a, d = _allowed(hints[name], f"{cls.__name__}.{name}")
            allowed.append(a)
            # Input.command is the raw command as received (floats and all); everything else
            # nested must be float-free too.
            if d and not (cls is Input and name == "command"):
                deep.append(i)
        self.cls = cls
        self.type_name = type_name
        self.names = names
        self.nfields = len(names)
        # C-level getters: about 3x faster than a comprehension over getattr. names always has
        # the envelope's three fields, so both return tuples.
        self.get = operator.attrgetter(*names)
        self.item = operator.itemgetter(*names)
        self.types = tuple(allowed)
        self.deep = tuple(deep)
        # Tuples of top-level value types already seen to be valid. A class has only a few
        # (one per combination of its optional fields), so checking every event costs one
        # tuple(map(type, ...)) and one set lookup.
        self.good: set[tuple[type, ...]] = set()

    def check(self, values: tuple[Any, ...]) -> str | None:
        """Why ``values`` (in field order) do not fit the class, or None if they do."""
        sig = tuple(map(type, values))
        if sig not in self.good:
            for name, v, ok in zip(self.names, values, self.types, strict=True):
                if type(v) not in ok:
                    return f"field {name!r} is {type(v).__name__}, not {_names(ok)}"
            self.good.add(sig)
        for i in self.deep:
            bad = _non_json(values[i])
            if bad is not None:
                return f"field {self.names[i]!r} holds a {bad}"
        return None


def _names(ok: frozenset[type]) -> str:
    return " or ".join(sorted("null" if t is type(None) else t.__name__ for t in ok))


def _non_json(v: object) -> str | None:
    """The name of the first value nested in ``v`` that a JSON round trip would not return."""
    t = type(v)
    if t in _JSON_SCALARS:
        return None
    if t is list:
        for x in v:  # type: ignore[attr-defined]
            bad = _non_json(x)
            if bad is not None:
                return bad
        return None
    if t is dict:
        for k, x in v.items():  # type: ignore[attr-defined]
            if type(k) is not str:
                return f"non-str key {type(k).__name__}"
            bad = _non_json(x)
            if bad is not None:
                return bad
        return None
    return t.__name__


_SPECS: dict[type, _Spec] = {}
_BY_NAME: dict[str, _Spec] = {}


def _spec(cls: type) -> _Spec:
    # Built lazily: other packages may register event types after this module is imported.
    spec = _SPECS.get(cls)
    if spec is None:
        if not (isinstance(cls, type) and issubclass(cls, Event)):
            raise TypeError(f"not an event: {cls!r}")
        spec = _SPECS[cls] = _Spec(cls)
    return spec


def _spec_by_name(type_name: object) -> _Spec | None:
    if not isinstance(type_name, str):
        return None
    spec = _BY_NAME.get(type_name)
    if spec is None:
        cls = EVENT_TYPES.get(type_name)
        if cls is None:
            return None
        spec = _BY_NAME[type_name] = _spec(cls)
    return spec


# --------------------------------------------------------------------------- events


def event_to_dict(ev: Event) -> dict[str, Any]:
    """The record dict of an event (unchecked; see :func:`validate_event`)."""
    spec = _SPECS.get(ev.__class__) or _spec(ev.__class__)
    d = dict(zip(spec.names, spec.get(ev), strict=False))
    d["type"] = spec.type_name
    return d


def validate_event(ev: Event) -> None:
    """Raise ValueError unless every field of ``ev`` has its annotated type (no floats)."""
    spec = _SPECS.get(ev.__class__) or _spec(ev.__class__)
    why = spec.check(spec.get(ev))
    if why is not None:
        raise ValueError(f"event seq {ev.seq!r} ({spec.type_name}): {why}")


def encode_event(ev: Event) -> bytes:
    """The canonical body of an event; ValueError if a field has the wrong type or a float.

    The check is exact (``type(v) in allowed``, so neither a float nor a bool passes for an
    int) yet costs about 0.4 us: the tuple of top-level value types is compared against the
    few already-validated ones of the class, and only container fields are walked (Funding's
    payments; not Input.command, which records raw input as received). Catching a float here,
    at the one place every event passes through, beats finding a non-reproducible log later.
    """
    spec = _SPECS.get(ev.__class__) or _spec(ev.__class__)
    values = spec.get(ev)
    if spec.deep or tuple(map(type, values)) not in spec.good:
        why = spec.check(values)
        if why is not None:
            raise ValueError(f"cannot encode event seq {ev.seq!r} ({spec.type_name}): {why}")
    d = dict(zip(spec.names, values, strict=False))  # same length by construction
    d["type"] = spec.type_name
    try:
        return orjson.dumps(d, option=_SORT)
    except orjson.JSONEncodeError as e:
        # Integers beyond 64 bits, nesting deeper than orjson's limit, non-str keys in a raw
        # command: a programming error upstream, reported as such.
        raise ValueError(f"cannot encode event seq {ev.seq!r} ({spec.type_name}): {e}") from None


# --------------------------------------------------------------------------- sealing


def chain_hash(prev_h: str, body: bytes) -> str:
    """The checksum of a record chained to the previous record's (``""`` for the header)."""
    return hashlib.blake2b(prev_h.encode("ascii") + body, digest_size=8).hexdigest()


def seal(prev_h: str, body: bytes) -> tuple[bytes, str]:
    """(line to write, its checksum) for a body following a record whose checksum is ``prev_h``."""
    line, h = seal_bytes(prev_h.encode("ascii"), body)
    return line, h.decode("ascii")


def seal_bytes(prev_h: bytes, body: bytes) -> tuple[bytes, bytes]:
    """:func:`seal` with checksums as ascii bytes: the writer's hot path, no str round trips."""
    h = hashlib.blake2b(prev_h + body, digest_size=8).hexdigest().encode("ascii")
    return body[:-1] + _H_OPEN + h + _H_CLOSE, h


def split_record(line: bytes) -> tuple[bytes, bytes]:
    """(canonical body, checksum) of a sealed, newline-terminated line: the body is the
    record without its ``"h"`` key (what was hashed), the checksum its 16 ascii hex digits.

    Only the layout is used (no check): call it on lines a reader has verified, or see
    :func:`unseal`.
    """
    return line[:-_SUFFIX_LEN] + b"}", line[_H_FROM:_H_TO]


def unseal(prev_h: bytes, line: bytes) -> bytes | None:
    """The checksum (ascii bytes) of a newline-terminated line if it is sealed onto ``prev_h``.

    None if the line has no well-formed ``"h"`` suffix or the checksum does not match.
    """
    if (
        line[-_SUFFIX_LEN:_H_FROM] != _H_OPEN
        or line[_H_TO:] != _H_CLOSE
        or len(line) <= _SUFFIX_LEN
    ):
        return None
    # split_record(line), inline: this runs once per line of every verified read.
    h = line[_H_FROM:_H_TO]
    expect = hashlib.blake2b(prev_h + line[:-_SUFFIX_LEN] + b"}", digest_size=8).hexdigest()
    if expect.encode("ascii") != h:
        return None
    return h


def unseal_run(prev_h: bytes, lines: list[bytes]) -> tuple[bytes, int]:
    """:func:`unseal` for a run of lines *without* their newlines, each sealed onto the one
    before (the first onto ``prev_h``): (the checksum of the last good line, or ``prev_h``;
    how many lines are good before the first that is not). The loop is :func:`unseal`
    inlined, about a third cheaper a line: a fast reader's hot path."""
    blake2b = hashlib.blake2b
    h_open, close = _H_OPEN, _H_CLOSE[:-1]
    cut = _SUFFIX_LEN - 1  # the suffix without its newline
    h_from, h_to = _H_FROM + 1, _H_TO + 1
    prev = prev_h
    for i, line in enumerate(lines):
        h = line[h_from:h_to]
        if (
            len(line) <= cut
            or line[-cut:h_from] != h_open
            or line[h_to:] != close
            or blake2b(prev + line[:-cut] + b"}", digest_size=8).hexdigest().encode("ascii") != h
        ):
            return prev, i
        prev = h
    return prev, len(lines)


# --------------------------------------------------------------------------- decoding


def decode_record(line: bytes) -> dict[str, Any]:
    """Parse one line to its record dict (``"h"`` included); verifies nothing else.

    Raises :class:`BadRecord` if the line is not a JSON object.
    """
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise BadRecord(f"record is not valid JSON: {e}") from None
    if not isinstance(d, dict):
        raise BadRecord("record is not a JSON object")
    return d


def to_event(d: dict[str, Any]) -> Event:
    """The typed event of a record dict; :class:`BadRecord` for an unknown type or wrong fields.

    Field types are checked against the class's annotations: a log is input from outside
    (whoever wrote it), and a mistyped field must be one clear error here, not a traceback
    deep in the engine. The check costs the same tuple-of-types lookup as encoding.
    """
    t = d.get("type")
    spec = _spec_by_name(t)
    seq = d.get("seq")
    if spec is None:
        raise BadRecord(f"record seq {seq!r}: unknown event type {t!r}", seq=seq)
    try:
        values = spec.item(d)
    except KeyError as e:
        raise BadRecord(f"record seq {seq!r} ({t}): missing field {e.args[0]!r}", seq=seq) from None
    if len(d) != spec.nfields + 1 + ("h" in d):
        extra = sorted(set(d) - set(spec.names) - _RESERVED_KEYS)
        raise BadRecord(f"record seq {seq!r} ({t}): unknown field {extra[0]!r}", seq=seq)
    if spec.deep or tuple(map(type, values)) not in spec.good:
        why = spec.check(values)
        if why is not None:
            raise BadRecord(f"record seq {seq!r} ({t}): {why}", seq=seq)
    return spec.cls(*values)
