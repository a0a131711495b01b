"""The canonical record codec: round trips for every event type, canonical bytes, the chained
checksum, and decoding that turns every malformed record into one clear error."""

from __future__ import annotations

import hashlib
import json
import types
import typing
from typing import Any, Union

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsim.events.codec import (
    ENGINE_VERSION,
    FORMAT_VERSION,
    BadRecord,
    Header,
    LogError,
    NotALog,
    UnknownFormat,
    _allowed,
    chain_hash,
    decode_record,
    encode_event,
    encode_header,
    event_to_dict,
    header_from_dict,
    seal,
    seal_bytes,
    to_event,
    unseal,
    validate_event,
)
from clearsim.events.types import EVENT_TYPES, Event, Fill, Funding, Input

# --------------------------------------------------------------------------- strategies

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Quotes, backslashes, control characters, non-ASCII and astral code points: everything the
# JSON encoder has to escape or pass through.
texts = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]) | st.sampled_from('"\\\n\t\x00/'),
    max_size=12,
)
json_scalars = st.none() | st.booleans() | ints | texts
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
# Raw commands are recorded as received, floats included.
raw_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


def strategy_for(annotation: object, where: str) -> st.SearchStrategy[Any]:
    """Values of an event field's annotation (the shapes the codec promises to round-trip)."""
    if annotation is int:
        return ints
    if annotation is str:
        return texts
    if annotation is bool:
        return st.booleans()
    if annotation is type(None):
        return st.none()
    if annotation is Any:
        return json_values
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        return st.one_of([strategy_for(a, where) for a in args])
    if origin is list:
        return st.lists(strategy_for(args[0], where), max_size=3)
    if origin is dict:
        return st.dictionaries(texts, strategy_for(args[1], where), max_size=3)
    pytest.fail(f"{where}: no test strategy for {annotation!r}; extend strategy_for")


def event_strategy(cls: type[Event]) -> st.SearchStrategy[Event]:
    hints = typing.get_type_hints(cls)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for a in attrs.fields(cls):
        where = f"{cls.__name__}.{a.name}"
        if cls is Input and a.name == "command":
            fields[a.name] = st.dictionaries(texts, raw_values, max_size=4)
        else:
            fields[a.name] = strategy_for(hints[a.name], where)
    return st.builds(cls, **fields)


all_events = st.sampled_from(sorted(EVENT_TYPES)).flatmap(
    lambda name: event_strategy(EVENT_TYPES[name])
)


def fill(**kw: Any) -> Fill:
    base: dict[str, Any] = dict(
        seq=7,
        ts=1_000,
        cause=3,
        symbol="BTC-USD",
        price=500_001,
        qty=25,
        maker_order="m1",
        maker_account="alice",
        taker_order="t1",
        taker_account="bob",
        taker_side="buy",
    )
    base.update(kw)
    return Fill(**base)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_event_type_round_trips(name: str, data: st.DataObject) -> None:
    ev = data.draw(event_strategy(EVENT_TYPES[name]))
    body = encode_event(ev)
    d = decode_record(body)
    assert d["type"] == name
    assert list(d) == sorted(d), "keys sorted"
    back = to_event(d)
    assert type(back) is type(ev)
    assert back == ev
    assert encode_event(back) == body, "decode then encode gives the same bytes"


@settings(max_examples=200, deadline=None)
@given(ev=all_events)
def test_canonical_bytes(ev: Event) -> None:
    body = encode_event(ev)
    assert encode_event(ev) == body
    assert b"\n" not in body, "one record, one line: newlines in strings are escaped"

    def sorted_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        assert keys == sorted(keys), "keys sorted at every depth"
        return dict(pairs)

    json.loads(body, object_pairs_hook=sorted_pairs)
    assert body == orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)


def test_insertion_order_does_not_matter() -> None:
    a = Input(seq=1, ts=2, cause=0, command={"b": 1, "a": {"y": 2, "x": 3}})
    b = Input(seq=1, ts=2, cause=0, command={"a": {"x": 3, "y": 2}, "b": 1})
    assert encode_event(a) == encode_event(b)
    assert encode_event(a) == (
        b'{"cause":0,"command":{"a":{"x":3,"y":2},"b":1},"seq":1,"ts":2,"type":"input"}'
    )


def test_event_to_dict_has_envelope_and_fields() -> None:
    d = event_to_dict(fill())
    assert d["type"] == "fill" and d["seq"] == 7 and d["cause"] == 3 and d["price"] == 500_001
    assert set(d) == {a.name for a in attrs.fields(Fill)} | {"type"}


# --------------------------------------------------------------------------- no floats


@pytest.mark.parametrize("field", ["price", "qty", "ts", "cause", "seq"])
def test_float_in_int_field_rejected(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        encode_event(fill(**{field: 1.0}))


@pytest.mark.parametrize(
    ("field", "value"),
    [("price", True), ("qty", "25"), ("symbol", 5), ("taker_side", None), ("price", 10**20)],
)
def test_wrong_type_rejected(field: str, value: object) -> None:
    with pytest.raises(ValueError):
        encode_event(fill(**{field: value}))


def test_float_nested_in_container_field_rejected() -> None:
    ok = Funding(seq=1, ts=1, cause=0, symbol="X", rate_ppm=100, mark=5, payments=[["a", -3]])
    encode_event(ok)
    bad = Funding(seq=1, ts=1, cause=0, symbol="X", rate_ppm=100, mark=5, payments=[["a", -3.0]])
    with pytest.raises(ValueError, match="float"):
        encode_event(bad)
    with pytest.raises(ValueError, match="float"):
        validate_event(bad)
    tup = Funding(seq=1, ts=1, cause=0, symbol="X", rate_ppm=100, mark=5, payments=[("a", 1)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="tuple"):
        encode_event(tup)


def test_raw_command_keeps_its_floats() -> None:
    ev = Input(seq=1, ts=1, cause=0, command={"type": "order", "qty": 0.5, "x": [1e-7, -0.0]})
    back = to_event(decode_record(encode_event(ev)))
    assert back == ev
    assert isinstance(back, Input) and back.command["qty"] == 0.5


def test_unencodable_raw_command_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="64-bit"):
        encode_event(Input(seq=1, ts=1, cause=0, command={"ts": 2**70}))
    with pytest.raises(ValueError, match="float"):
        encode_event(Input(seq=1.0, ts=1, cause=0, command={}))  # type: ignore[arg-type]


def test_validate_event_accepts_good_events() -> None:
    validate_event(fill())
    with pytest.raises(ValueError, match="'qty' is bool"):
        validate_event(fill(qty=True))


def test_annotation_mapping() -> None:
    assert _allowed(int, "x") == (frozenset({int}), False)
    assert _allowed(int | None, "x") == (frozenset({int, type(None)}), False)
    assert _allowed(list[list[Any]], "x") == (frozenset({list}), True)
    with pytest.raises(TypeError, match="cannot round-trip"):
        _allowed(tuple[int, int], "X.pair")
    with pytest.raises(TypeError, match="cannot round-trip"):
        _allowed(float, "X.f")


# --------------------------------------------------------------------------- sealing


def test_seal_format() -> None:
    body = encode_event(fill())
    line, h = seal("0123456789abcdef", body)
    assert h == hashlib.blake2b(b"0123456789abcdef" + body, digest_size=8).hexdigest()
    assert h == chain_hash("0123456789abcdef", body)
    assert line == body[:-1] + b',"h":"' + h.encode() + b'"}\n'
    assert list(orjson.loads(line))[-1] == "h"
    assert seal_bytes(b"0123456789abcdef", body) == (line, h.encode())
    assert unseal(b"0123456789abcdef", line) == h.encode()
    assert unseal(b"fedcba9876543210", line) is None
    assert unseal(b"0123456789abcdef", line[:-1]) is None
    assert unseal(b"0123456789abcdef", line.replace(b'"buy"', b'"bux"')) is None
    assert unseal(b"", b"\n") is None


def test_header_golden_bytes() -> None:
    # Format 1's header on disk, byte for byte: a change here breaks every existing log.
    h = Header(format=1, engine="0.1.0", config={"exchange": {"collateral": "USDT"}}, seed=42)
    line, hh = seal("", encode_header(h))
    assert line == (
        b'{"config":{"exchange":{"collateral":"USDT"}},"engine":"0.1.0","format":1,'
        b'"seed":42,"type":"header","h":"' + hh.encode() + b'"}\n'
    )
    assert hh == hashlib.blake2b(line[:-25] + b"}", digest_size=8).hexdigest()
    assert header_from_dict(decode_record(line)) == h


def test_header_new() -> None:
    h = Header.new({"a": 1}, seed=7)
    assert h.format == FORMAT_VERSION == 1
    assert h.engine == ENGINE_VERSION and ENGINE_VERSION
    assert h.seed == 7 and h.config == {"a": 1}


@pytest.mark.parametrize(
    ("d", "err"),
    [
        ({"type": "fill"}, NotALog),
        ([], NotALog),
        ({"type": "header", "format": 2, "engine": "x", "config": {}, "seed": 1}, UnknownFormat),
        ({"type": "header", "format": "1", "engine": "x", "config": {}, "seed": 1}, UnknownFormat),
        ({"type": "header", "format": True, "engine": "x", "config": {}, "seed": 1}, UnknownFormat),
        ({"type": "header", "format": 1, "engine": "x", "config": [], "seed": 1}, NotALog),
        ({"type": "header", "format": 1, "engine": "x", "config": {}}, NotALog),
        ({"type": "header", "format": 1, "engine": "x", "config": {}, "seed": 1, "z": 0}, NotALog),
    ],
)
def test_bad_headers(d: object, err: type[LogError]) -> None:
    with pytest.raises(err) as e:
        header_from_dict(d)
    assert "\n" not in str(e.value)


def test_bad_header_values_refused_on_encode() -> None:
    with pytest.raises(ValueError):
        encode_header(Header(format=1, engine="x", config={}, seed=1.5))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        encode_header(Header(format=1, engine="x", config={"a": 2**64}, seed=1))


# --------------------------------------------------------------------------- decoding errors


def _record(**kw: Any) -> dict[str, Any]:
    d = event_to_dict(fill())
    d.update(kw)
    return d


@pytest.mark.parametrize(
    ("d", "match"),
    [
        (_record(type="no_such_event"), "unknown event type 'no_such_event'"),
        (_record(type=5), "unknown event type 5"),
        ({k: v for k, v in _record().items() if k != "type"}, "unknown event type None"),
        ({k: v for k, v in _record().items() if k != "qty"}, "missing field 'qty'"),
        ({k: v for k, v in _record().items() if k != "seq"}, "missing field 'seq'"),
        (_record(extra=1), "unknown field 'extra'"),
        (_record(qty="25"), "'qty' is str, not int"),
        (_record(qty=True), "'qty' is bool, not int"),
        (_record(price=1.5), "'price' is float"),
        (_record(seq=1.8446744073709552e19), "'seq' is float"),
        (_record(symbol=None), "'symbol' is NoneType, not str"),
    ],
)
def test_to_event_rejects(d: dict[str, Any], match: str) -> None:
    with pytest.raises(BadRecord, match=match) as e:
        to_event(d)
    assert isinstance(e.value, LogError)
    assert "\n" not in str(e.value)


def test_to_event_ignores_checksum_key() -> None:
    line, _ = seal("", encode_event(fill()))
    assert to_event(decode_record(line)) == fill()


def test_nested_float_rejected_on_decode() -> None:
    d = event_to_dict(
        Funding(seq=1, ts=1, cause=0, symbol="X", rate_ppm=1, mark=5, payments=[["a", 1]])
    )
    d["payments"] = [["a", 1.5]]
    with pytest.raises(BadRecord, match="float"):
        to_event(d)


@pytest.mark.parametrize("line", [b"", b"{", b"[1]\n", b"\xff\xfe", b'"x"', b"null"])
def test_decode_record_rejects_non_objects(line: bytes) -> None:
    with pytest.raises(BadRecord):
        decode_record(line)


def test_log_error_messages_are_one_line() -> None:
    assert str(LogError("a\nb\r\nc")) == "a b  c"


def test_unseal_run_is_unseal_line_by_line() -> None:
    """``unseal_run`` (the fast readers' loop) agrees with ``unseal`` on every line: the
    last checksum of a good run, and the index of the first bad line (changed body,
    broken suffix, a line too short to hold one)."""
    from clearsim.events.codec import seal, unseal, unseal_run

    prev = ""
    lines = []
    for i in range(5):
        line, prev = seal(prev, b'{"seq":%d,"type":"x"}' % (i + 1))
        lines.append(line[:-1])
    first_prev = b""
    last, good = unseal_run(first_prev, lines)
    assert (last, good) == (prev.encode(), 5)
    want = first_prev
    for line in lines:
        want = unseal(want, line + b"\n")  # type: ignore[assignment]
    assert want == last
    for i, bad in ((2, lines[2].replace(b"x", b"y")), (3, lines[3][:-2] + b"'}"), (1, b"{}")):
        broken = [*lines[:i], bad, *lines[i + 1 :]]
        assert unseal_run(first_prev, broken)[1] == i
