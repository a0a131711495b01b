"""Command parsing: every shape of DESIGN §10 parses, every bad shape gets a one-line reason,
and no input at all makes parse_command raise."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsim.events import commands as cmd
from clearsim.events.commands import (
    COMMAND_TYPES,
    command_to_dict,
    load_command_line,
    parse_command,
    to_units,
)
from clearsim.events.rejects import RejectCode, code_of
from clearsim.events.units import MAX_TS

# The examples of DESIGN §10, verbatim.
DESIGN_EXAMPLES = [
    {"type": "deposit", "ts": 1, "account": "alice", "amount": "1000"},
    {"type": "withdraw", "ts": 2, "account": "alice", "amount": "10"},
    {
        "type": "order",
        "ts": 3,
        "account": "alice",
        "id": "a1",
        "symbol": "BTC-USD",
        "side": "buy",
        "qty": "0.5",
        "price": "50000",
        "tif": "gtc",
        "reduce_only": False,
    },
    {"type": "cancel", "ts": 4, "account": "alice", "id": "a1"},
    {"type": "cancel_all", "ts": 4, "account": "alice"},
    {"type": "amend", "ts": 5, "account": "alice", "id": "a1", "qty": "0.4"},
    {"type": "index_price", "ts": 6, "symbol": "BTC-USD", "price": "50100"},
    {"type": "funding", "ts": 7, "symbol": "BTC-USD", "rate": "0.0001"},
    {"type": "settle_period", "ts": 8},
    {"type": "set", "ts": 9, "path": "waterfall.liquidation_fee_ppm", "value": "2000"},
    {"type": "insurance_deposit", "ts": 10, "amount": "5000"},
    # the historical market's depth (clearing.market; the line this branch adds to §10)
    {
        "type": "market_level",
        "ts": 11,
        "symbol": "BTC-USD",
        "side": "buy",
        "price": "49990",
        "qty": "2.5",
    },
]


def test_design_examples_cover_every_type() -> None:
    assert {d["type"] for d in DESIGN_EXAMPLES} == set(COMMAND_TYPES)


@pytest.mark.parametrize("d", DESIGN_EXAMPLES, ids=lambda d: str(d["type"]))
def test_design_examples_parse(d: dict[str, Any]) -> None:
    c = parse_command(d)
    assert not isinstance(c, str), c
    assert type(c) is COMMAND_TYPES[d["type"]]
    assert d["type"] == c.TYPE
    back = command_to_dict(c)
    assert {k: back[k] for k in d} == d
    assert parse_command(back) == c


def test_typed_fields() -> None:
    c = parse_command(DESIGN_EXAMPLES[2])
    assert c == cmd.Order(
        ts=3,
        account="alice",
        id="a1",
        symbol="BTC-USD",
        side="buy",
        qty="0.5",
        price="50000",
        tif="gtc",
        reduce_only=False,
    )


@pytest.mark.parametrize(
    ("d", "expect"),
    [
        (
            {
                "type": "order",
                "ts": 0,
                "account": "a",
                "id": "o",
                "symbol": "S",
                "side": "sell",
                "qty": "1",
            },
            cmd.Order(
                ts=0,
                account="a",
                id="o",
                symbol="S",
                side="sell",
                qty="1",
                price=None,
                tif="gtc",
                reduce_only=False,
            ),
        ),
        (
            {
                "type": "order",
                "ts": 1,
                "account": "a",
                "id": "o",
                "symbol": "S",
                "side": "buy",
                "qty": "1",
                "price": None,
                "tif": "ioc",
                "reduce_only": True,
            },
            cmd.Order(
                ts=1,
                account="a",
                id="o",
                symbol="S",
                side="buy",
                qty="1",
                price=None,
                tif="ioc",
                reduce_only=True,
            ),
        ),
        (
            {
                "type": "order",
                "ts": 1,
                "account": "a.b:c@d-e_f",
                "id": "x",
                "symbol": "S",
                "side": "buy",
                "qty": "0.001",
                "price": "1.5",
                "tif": "post_only",
            },
            cmd.Order(
                ts=1,
                account="a.b:c@d-e_f",
                id="x",
                symbol="S",
                side="buy",
                qty="0.001",
                price="1.5",
                tif="post_only",
                reduce_only=False,
            ),
        ),
        ({"type": "funding", "ts": 7, "symbol": "S"}, cmd.Funding(ts=7, symbol="S", rate=None)),
        ({"type": "funding", "ts": 7, "symbol": "S", "rate": None}, cmd.Funding(7, "S", None)),
        (
            {"type": "funding", "ts": 7, "symbol": "S", "rate": "-0.0003"},
            cmd.Funding(7, "S", "-0.0003"),
        ),
        ({"type": "funding", "ts": 7, "symbol": "S", "rate": "0"}, cmd.Funding(7, "S", "0")),
        (
            {"type": "amend", "ts": 5, "account": "a", "id": "o", "price": "2"},
            cmd.Amend(ts=5, account="a", id="o", qty=None, price="2"),
        ),
        (
            {"type": "amend", "ts": 5, "account": "a", "id": "o", "qty": "1", "price": "2"},
            cmd.Amend(ts=5, account="a", id="o", qty="1", price="2"),
        ),
        ({"type": "set", "ts": 9, "path": "x.y", "value": ""}, cmd.Set(9, "x.y", "")),
        (
            {"type": "market_level", "ts": 3, "symbol": "S", "side": "sell", "price": "1.5"}
            | {"qty": "0"},
            cmd.MarketLevel(3, "S", "sell", "1.5", "0"),  # "0" removes the level
        ),
        (
            {**DESIGN_EXAMPLES[2], "account": "#market"},
            cmd.Order(3, "#market", "a1", "BTC-USD", "buy", "0.5", "50000", "gtc", False),
        ),
        (
            {"type": "cancel", "ts": 4, "account": "#market", "id": "a1"},
            cmd.Cancel(4, "#market", "a1"),
        ),
        ({"type": "cancel_all", "ts": 4, "account": "#market"}, cmd.CancelAll(4, "#market")),
        (
            {"type": "amend", "ts": 5, "account": "#market", "id": "a1", "qty": "1"},
            cmd.Amend(5, "#market", "a1", "1", None),
        ),
        (
            {"type": "deposit", "ts": MAX_TS, "account": "a" * 64, "amount": "0.000001"},
            cmd.Deposit(MAX_TS, "a" * 64, "0.000001"),
        ),
    ],
)
def test_defaults_and_options(d: dict[str, Any], expect: cmd.Command) -> None:
    assert parse_command(d) == expect


ORDER = DESIGN_EXAMPLES[2]


def order(**kw: Any) -> dict[str, Any]:
    d = dict(ORDER)
    for k, v in kw.items():
        if v is _DROP:
            d.pop(k)
        else:
            d[k] = v
    return d


_DROP = object()

BAD: list[tuple[object, str]] = [
    (None, "not NoneType"),
    ([], "not list"),
    ("deposit", "not str"),
    ({}, "missing_field: 'type'"),
    ({"ts": 1}, "missing_field: 'type'"),
    ({"type": "teleport", "ts": 1}, "unknown_type: 'teleport'"),
    ({"type": 5, "ts": 1}, "unknown_type: 5"),
    ({"type": None}, "unknown_type: None"),
    ({"type": "settle_period"}, "missing_field: 'ts'"),
    ({"type": "settle_period", "ts": 1, "extra": 2}, "unknown_field: 'extra'"),
    ({"type": "settle_period", "ts": 1, 5: 2}, "unknown_field: 5"),
    ({"type": "settle_period", "ts": True}, "ts must be an integer"),
    ({"type": "settle_period", "ts": 1.0}, "ts must be an integer"),
    ({"type": "settle_period", "ts": "1"}, "ts must be an integer"),
    ({"type": "settle_period", "ts": -1}, "ts_out_of_range: ts -1"),
    ({"type": "settle_period", "ts": 2**63}, "ts_out_of_range"),
    (order(account=_DROP), "missing_field: 'account'"),
    (order(account=""), "empty account"),
    (order(account="#insurance"), "reserved account id"),
    (order(account="@backstop"), "reserved account id"),
    (order(account="a" * 65), "longer than 64"),
    (order(account="al ice"), "characters outside"),
    (order(account="ali\nce"), "characters outside"),
    (order(account="ålice"), "characters outside"),
    (order(account=7), "account must be a string"),
    (order(id=""), "empty id"),
    (order(id="a/b"), "characters outside"),
    (order(id=None), "id must be a string"),
    (order(symbol=""), "empty symbol"),
    (order(symbol=["BTC"]), "symbol must be a string"),
    (order(side="long"), "side must be one of buy|sell"),
    (order(side=None), "side must be one of"),
    (order(qty="-1"), "negative quantity"),
    (order(qty="0"), "zero quantity"),
    (order(qty="0.000"), "zero quantity"),
    (order(qty=1), "quantity must be a decimal string"),
    (order(qty=0.5), "quantity must be a decimal string"),
    (order(qty="1e3"), "not a decimal number"),
    (order(qty="1."), "not a decimal number"),
    (order(qty=".5"), "not a decimal number"),
    (order(qty="+1"), "not a decimal number"),
    (order(qty=" 1"), "not a decimal number"),
    (order(qty="\u0661"), "not a decimal number"),  # Arabic-Indic digit one
    (order(qty="NaN"), "not a decimal number"),
    (order(qty="1" * 41), "more than 40 characters"),
    (order(qty=None), "quantity must be a decimal string"),
    (order(qty=_DROP), "missing_field: 'qty'"),
    (order(price="-50000"), "negative price"),
    (order(price="0"), "zero price"),
    (order(price=50000), "price must be a decimal string"),
    (order(tif="day"), "tif must be one of gtc|ioc|fok|post_only"),
    (order(tif=None), "tif must be one of"),
    (order(tif="post_only", price=None), "post_only order needs a price"),
    (order(reduce_only=1), "reduce_only must be true or false"),
    (order(reduce_only="false"), "reduce_only must be true or false"),
    (order(reduce_only=None), "reduce_only must be true or false"),
    ({"type": "deposit", "ts": 1, "account": "a", "amount": "-5"}, "negative amount"),
    ({"type": "deposit", "ts": 1, "account": "a", "amount": "0"}, "zero amount"),
    ({"type": "deposit", "ts": 1, "account": "a"}, "missing_field: 'amount'"),
    ({"type": "withdraw", "ts": 1, "account": "#fees", "amount": "5"}, "reserved account id"),
    # the market account trades, and only trades (clearing.market)
    ({"type": "deposit", "ts": 1, "account": "#market", "amount": "5"},
     "bad_field: reserved account id '#market': the market account has no deposits"),
    ({"type": "withdraw", "ts": 1, "account": "#market", "amount": "5"},
     "the market account has no deposits or withdrawals"),
    (order(account="#Market"), "reserved account id"),
    (order(account="#market2"), "reserved account id"),
    (order(account="#insurance"), "reserved account id"),
    ({"type": "market_level", "ts": 1, "symbol": "S", "side": "buy", "price": "1"},
     "missing_field: 'qty'"),
    ({"type": "market_level", "ts": 1, "symbol": "S", "side": "bid", "price": "1", "qty": "1"},
     "side must be one of buy|sell"),
    ({"type": "market_level", "ts": 1, "symbol": "S", "side": "buy", "price": "0", "qty": "1"},
     "zero price"),
    ({"type": "market_level", "ts": 1, "symbol": "S", "side": "buy", "price": "1", "qty": "-1"},
     "negative quantity"),
    ({"type": "market_level", "ts": 1, "symbol": "S", "side": "buy", "price": "1", "qty": 1},
     "quantity must be a decimal string"),
    ({"type": "market_level", "ts": 1, "symbol": "", "side": "buy", "price": "1", "qty": "1"},
     "empty symbol"),
    ({"type": "market_level", "ts": 1, "symbol": "S", "side": "buy", "price": "1", "qty": "1",
      "account": "#market"}, "unknown_field: 'account'"),
    ({"type": "cancel", "ts": 1, "account": "a"}, "missing_field: 'id'"),
    ({"type": "cancel_all", "ts": 1, "account": "a", "id": "x"}, "unknown_field: 'id'"),
    ({"type": "amend", "ts": 1, "account": "a", "id": "o"}, "amend needs qty or price"),
    (
        {"type": "amend", "ts": 1, "account": "a", "id": "o", "qty": None},
        "amend needs qty or price",
    ),
    ({"type": "amend", "ts": 1, "account": "a", "id": "o", "qty": "-1"}, "negative quantity"),
    ({"type": "index_price", "ts": 1, "symbol": "S", "price": "-1"}, "negative price"),
    ({"type": "index_price", "ts": 1, "symbol": "S"}, "missing_field: 'price'"),
    ({"type": "index_price", "ts": 1, "symbol": "S", "price": None}, "price must be a decimal"),
    ({"type": "funding", "ts": 1, "symbol": "S", "rate": 0.0001}, "rate must be a decimal"),
    ({"type": "funding", "ts": 1, "symbol": "S", "rate": "--1"}, "not a decimal number"),
    ({"type": "funding", "ts": 1, "symbol": "S", "rate": "-"}, "not a decimal number"),
    ({"type": "set", "ts": 1, "path": "", "value": "1"}, "empty path"),
    ({"type": "set", "ts": 1, "path": "a", "value": 1}, "value must be a string"),
    ({"type": "set", "ts": 1, "path": "a"}, "missing_field: 'value'"),
    ({"type": "set", "ts": 1, "path": "a", "value": "x" * 2000}, "value longer than"),
    ({"type": "insurance_deposit", "ts": 1, "amount": "1", "account": "a"}, "unknown_field"),
]


@pytest.mark.parametrize(("d", "reason"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_shapes_rejected_with_reason(d: object, reason: str) -> None:
    got = parse_command(d)
    assert isinstance(got, str), got
    assert reason in got
    assert code_of(got) in {c.value for c in RejectCode}, got  # countable by kind
    assert "\n" not in got and len(got) < 200


def test_reasons_quote_user_data_safely() -> None:
    got = parse_command({"type": "x" * 1000 + "\n"})
    assert isinstance(got, str) and "\n" not in got and len(got) < 100


# --------------------------------------------------------------------------- never raises

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

FIELD_NAMES = sorted({k for d in DESIGN_EXAMPLES for k in d} | {"rate", "extra"})


@st.composite
def near_commands(draw: st.DrawFn) -> dict[Any, Any]:
    """A valid command with a few fields replaced, dropped or added: reaches every check."""
    d: dict[Any, Any] = dict(draw(st.sampled_from(DESIGN_EXAMPLES)))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(FIELD_NAMES))
        if draw(st.booleans()):
            d.pop(key, None)
        else:
            d[key] = draw(
                json_like
                | st.sampled_from(["", "0", "-1", "1.5", "#a", "@a", "buy", "ioc", "a" * 65])
                | st.from_regex(r"-?[0-9]{1,3}(\.[0-9]{0,3})?", fullmatch=True)
            )
    return d


@settings(max_examples=400, deadline=None)
@given(d=json_like | near_commands())
def test_parse_command_never_raises(d: object) -> None:
    got = parse_command(d)
    if isinstance(got, str):
        assert got and "\n" not in got
    else:
        assert type(got) in COMMAND_TYPES.values()
        assert parse_command(command_to_dict(got)) == got


@settings(max_examples=200, deadline=None)
@given(d=json_like | near_commands())
def test_load_command_line_never_raises(d: object) -> None:
    try:
        line = orjson.dumps(d)
    except (TypeError, orjson.JSONEncodeError):
        return
    got = load_command_line(line)
    assert isinstance(got, (dict, str))
    if isinstance(got, dict):
        assert got == orjson.loads(line)
        parse_command(got)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "malformed JSON"),
        (b"{", "malformed JSON"),
        (b"[1]", "not list"),
        (b"1e999", "malformed JSON"),
        (b'{"a":' + b"[" * 300 + b"]" * 300 + b"}", "nests too deeply"),
        (b'{"a":' * 254 + b"1" + b"}" * 254, "nests too deeply"),
        (b'{"type":"x","pad":"' + b"y" * 70_000 + b'"}', "longer than"),
    ],
)
def test_load_command_line_rejects(line: bytes, reason: str) -> None:
    got = load_command_line(line)
    assert isinstance(got, str) and reason in got and "\n" not in got


def test_load_command_line_big_ints_arrive_as_floats() -> None:
    # What orjson does with them, so the Input record gives back exactly what was parsed.
    got = load_command_line(b'{"type":"settle_period","ts":99999999999999999999}')
    assert isinstance(got, dict) and isinstance(got["ts"], float)
    assert parse_command(got) == "bad_field: ts must be an integer (microseconds), not 1e+20"


# --------------------------------------------------------------------------- to_units


@pytest.mark.parametrize(
    ("text", "decimals", "units"),
    [
        ("0", 0, 0),
        ("12.5", 6, 12_500_000),
        ("0.000001", 6, 1),
        ("1.500000000", 6, 1_500_000),
        ("1000", 6, 1_000_000_000),
        ("-0.0003", 6, -300),
        ("007", 2, 700),
        ("9223372036854.775807", 6, 2**63 - 1),
    ],
)
def test_to_units(text: str, decimals: int, units: int) -> None:
    assert to_units(text, decimals) == units


@pytest.mark.parametrize(
    ("text", "decimals", "match"),
    [
        ("0.0000001", 6, "more than 6 decimals"),
        ("1.5", 0, "more than 0 decimals"),
        ("1e3", 6, "not a decimal number"),
        ("", 6, "not a decimal number"),
        ("+1", 6, "not a decimal number"),
        (" 1", 6, "not a decimal number"),
        ("1", -1, "decimals"),
    ],
)
def test_to_units_rejects(text: str, decimals: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        to_units(text, decimals)


def test_to_units_refuses_what_the_log_cannot_hold() -> None:
    """Issue 10 item 4: an amount past 64 bits used to pass and then crash the encoder."""
    with pytest.raises(ValueError, match="out of range"):
        to_units("9223372036854.775808", 6)
    with pytest.raises(ValueError, match="out of range"):
        to_units("1" + "0" * 39, 0)


@given(units=st.integers(-(2**63 - 1), 2**63 - 1), decimals=st.integers(0, 18))
def test_to_units_inverts_formatting(units: int, decimals: int) -> None:
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    text = f"{sign}{whole}" + (f".{frac:0{decimals}d}" if decimals else "")
    assert to_units(text, decimals) == units


def test_accepted_command_line_always_fits_an_input_record() -> None:
    from clearsim.events.codec import encode_event
    from clearsim.events.types import Input

    deepest = b'{"a":' * 253 + b"1" + b"}" * 253
    got = load_command_line(deepest)
    assert isinstance(got, dict)
    encode_event(Input(seq=1, ts=0, cause=0, command=got))


def test_field_table_matches_classes() -> None:
    import attrs

    from clearsim.events.commands import _FIELDS

    assert set(_FIELDS) == set(COMMAND_TYPES)
    for t, cls in COMMAND_TYPES.items():
        assert [f[0] for f in _FIELDS[t]] == [a.name for a in attrs.fields(cls)], t


# --------------------------------------------------------------------------- recording


class _Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no")


def _nested(depth: int) -> object:
    v: object = "x"
    for _ in range(depth):
        v = {"a": v}
    return v


@pytest.mark.parametrize(
    "command",
    [
        {"type": "deposit", "ts": 1, "account": "a", "amount": float("nan")},
        {"type": "deposit", "ts": 1, "account": "a", "amount": ("1",)},
        {"type": "deposit", "ts": 1, "account": "a", "amount": "1", "junk": _nested(300)},
        {"type": "deposit", "ts": 10**30, "account": "a", "amount": "1"},
        {"type": "deposit", "ts": 1, 5: "a"},
        {"type": "deposit", "ts": 1, "account": object()},
        {"type": "deposit", "ts": 1, "account": "a", "amount": "1", "x": "y" * 70_000},
        _Hostile(),
        float("inf"),
        (1, 2),
    ],
    ids=["nan", "tuple", "deep", "bigint", "intkey", "object", "huge", "hostile", "inf", "tuple2"],
)
def test_unrecordable_commands_become_a_bounded_description(command: object) -> None:
    """Issue 10 item 5: these crashed the encoder or gave logs that did not re-execute."""
    from clearsim.events.commands import command_of_record, record_form

    rec = record_form(command)
    assert set(rec) == {"raw"} and isinstance(rec["raw"], str)
    assert rec["raw"].startswith("<unrecordable ") and len(rec["raw"]) < 300
    # What the log holds is exactly what a re-execution reads back, and parses the same way.
    back = orjson.loads(orjson.dumps({"command": rec}))["command"]
    assert back == rec
    why = parse_command(command_of_record(back))
    assert isinstance(why, str) and why.startswith("malformed: ")
    assert why == parse_command(command_of_record(rec))


def test_recordable_commands_are_recorded_as_themselves() -> None:
    from clearsim.events.commands import command_of_record, record_form

    good = {
        "type": "order",
        "ts": 3,
        "account": "a",
        "id": "o",
        "symbol": "X",
        "side": "buy",
        "qty": "1",
        "price": None,
        "reduce_only": False,
        "extra": [1, 2.5, {"k": None}],
    }
    assert record_form(good) is good
    assert record_form("not json") == {"raw": "not json"}
    assert command_of_record(record_form("not json")) == "not json"
    assert command_of_record(good) is good


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda kids: (
        st.lists(kids, max_size=3)
        | st.tuples(kids, kids)
        | st.dictionaries(st.text(max_size=3), kids, max_size=3)
    ),
    max_leaves=12,
)


@given(_json)
def test_record_form_always_survives_the_log_exactly(v: object) -> None:
    from clearsim.events.commands import record_form

    rec = record_form(v)
    back = orjson.loads(orjson.dumps({"event": {"command": rec}}))["event"]["command"]
    assert orjson.dumps(back) == orjson.dumps(rec)
    assert repr(back) == repr(rec)  # same types too (a tuple would print differently)


# --------------------------------------------------------------------------- the fast path

_BASE_SHAPES: list[dict[str, Any]] = [
    {
        "type": "order",
        "ts": 5,
        "account": "a1",
        "id": "o1",
        "symbol": "BTC-USD",
        "side": "buy",
        "qty": "0.015",
        "price": "50012.3",
        "tif": "gtc",
        "reduce_only": False,
    },
    {
        "type": "order",
        "ts": 5,
        "account": "a1",
        "id": "o1",
        "symbol": "X",
        "side": "sell",
        "qty": "2",
    },
    {"type": "cancel", "ts": 5, "account": "a1", "id": "o1"},
    {"type": "index_price", "ts": 5, "symbol": "X", "price": "100.5"},
    {"type": "deposit", "ts": 5, "account": "a1", "amount": "1000"},
    {"type": "market_level", "ts": 5, "symbol": "X", "side": "buy", "price": "100.5", "qty": "0"},
    {"type": "order", "ts": 5, "account": "#market", "id": "t1", "symbol": "X", "side": "sell"}
    | {"qty": "2", "price": "99", "tif": "ioc"},
    {"type": "cancel", "ts": 5, "account": "#market", "id": "o1"},
]
_ODD_VALUES = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        1,
        -1,
        MAX_TS,
        MAX_TS + 1,
        1.5,
        "",
        "0",
        "0.0",
        "00.10",
        "-1",
        "1e5",
        "٣",
        "#insurance",
        "#market",
        "#market ",
        "@vault",
        "a" * 64,
        "a" * 65,
        "x y",
        "post_only",
        "ioc",
        "buy",
        "sell",
        "BUY",
        [],
        {},
        "1" * 41,
        "3.",
        ".5",
    ]
)


@settings(max_examples=3000, deadline=None)
@given(
    base=st.sampled_from(_BASE_SHAPES),
    edits=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "type",
                    "ts",
                    "account",
                    "id",
                    "symbol",
                    "side",
                    "qty",
                    "price",
                    "tif",
                    "reduce_only",
                    "amount",
                    "extra",
                ]
            ),
            _ODD_VALUES | st.just("<drop>"),
        ),
        max_size=3,
    ),
)
def test_fast_path_agrees_with_the_general_parser(
    base: dict[str, Any], edits: list[tuple[str, object]]
) -> None:
    """The fast path is an optimisation only: same command or same rejection, always."""
    from clearsim.events.commands import _parse

    d = dict(base)
    for key, value in edits:
        if value == "<drop>":
            d.pop(key, None)
        else:
            d[key] = value
    assert parse_command(d) == _parse(d)
