"""Commands: the typed form of the JSON command shapes (DESIGN §10) and their validation.

This module owns the *shape* of a command: which fields each type has, their JSON types and
the syntax of ids and decimal strings. :func:`parse_command` turns any value into a command
object or a one-line rejection reason, and never raises. Meaning (does the account or symbol
exist, is the price on the tick grid, is there margin) needs the exchange's state and config,
and is checked in ``clearing``; so amounts, prices and quantities stay decimal strings here,
and :func:`to_units` is the exact conversion clearing uses once it knows the decimals.

Class names repeat some event names (``Deposit``, ``Funding``, ...); import the module
(``from events import commands as cmd``) rather than the classes.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable
from typing import Any, ClassVar, Final, TypeAlias

import attrs
import orjson

from clearsim.events.rejects import RejectCode, reason
from clearsim.events.units import INT64_MAX, MAX_TS

__all__ = [
    "COMMAND_TYPES",
    "MARKET_ACCOUNT",
    "MAX_COMMAND_BYTES",
    "Amend",
    "Cancel",
    "CancelAll",
    "Command",
    "Deposit",
    "Funding",
    "IndexPrice",
    "InsuranceDeposit",
    "MarketLevel",
    "Order",
    "Set",
    "SettlePeriod",
    "Withdraw",
    "command_of_record",
    "command_to_dict",
    "load_command_line",
    "parse_command",
    "record_form",
    "to_units",
]

#: The largest command line accepted; far above any real command, far below the log's line
#: bound, so the ``Input`` event recording it always fits in a log line.
MAX_COMMAND_BYTES: Final = 64 * 1024

_ID_RE: Final = re.compile(r"[A-Za-z0-9_.:@-]+")
_UNSIGNED_RE: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_SIGNED_RE: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_MAX_ID: Final = 64
_MAX_DECIMAL: Final = 40  # digits enough for any amount; bounds the integers made from them
_MAX_PATH: Final = 128
_MAX_VALUE: Final = 1024

#: The reserved account of the historical market's liquidity (DESIGN §9; clearing.market):
#: the one ``#`` name a command may use, and only to trade (order, cancel, cancel_all,
#: amend); ``market_level`` commands place its resting depth.
MARKET_ACCOUNT: Final = "#market"

SIDES: Final = ("buy", "sell")
TIFS: Final = ("gtc", "ioc", "fok", "post_only")


# --------------------------------------------------------------------------- command types


@attrs.frozen
class Deposit:
    TYPE: ClassVar[str] = "deposit"
    ts: int
    account: str
    amount: str


@attrs.frozen
class Withdraw:
    TYPE: ClassVar[str] = "withdraw"
    ts: int
    account: str
    amount: str


@attrs.frozen
class Order:
    """A new order; ``price`` None is a market order."""

    TYPE: ClassVar[str] = "order"
    ts: int
    account: str
    id: str
    symbol: str
    side: str  # "buy" | "sell"
    qty: str
    price: str | None = None
    tif: str = "gtc"  # "gtc" | "ioc" | "fok" | "post_only"
    reduce_only: bool = False


@attrs.frozen
class Cancel:
    TYPE: ClassVar[str] = "cancel"
    ts: int
    account: str
    id: str


@attrs.frozen
class CancelAll:
    TYPE: ClassVar[str] = "cancel_all"
    ts: int
    account: str


@attrs.frozen
class Amend:
    """Change a resting order's quantity and/or price (at least one is set)."""

    TYPE: ClassVar[str] = "amend"
    ts: int
    account: str
    id: str
    qty: str | None = None
    price: str | None = None


@attrs.frozen
class MarketLevel:
    """Set ``#market``'s total resting ``qty`` at one ``price`` level of one ``side`` (an
    L2 update of a historical book; ``qty`` "0" removes it). See ``clearing.market``."""

    TYPE: ClassVar[str] = "market_level"
    ts: int
    symbol: str
    side: str  # "buy" | "sell"
    price: str
    qty: str


@attrs.frozen
class IndexPrice:
    TYPE: ClassVar[str] = "index_price"
    ts: int
    symbol: str
    price: str


@attrs.frozen
class Funding:
    """A funding round now; ``rate`` (signed decimal, per interval) given for historical replays."""

    TYPE: ClassVar[str] = "funding"
    ts: int
    symbol: str
    rate: str | None = None


@attrs.frozen
class SettlePeriod:
    TYPE: ClassVar[str] = "settle_period"
    ts: int


@attrs.frozen
class Set:
    """Governance: set config parameter ``path`` to ``value`` (parsed by clearing)."""

    TYPE: ClassVar[str] = "set"
    ts: int
    path: str
    value: str


@attrs.frozen
class InsuranceDeposit:
    TYPE: ClassVar[str] = "insurance_deposit"
    ts: int
    amount: str


Command: TypeAlias = (
    Deposit
    | Withdraw
    | Order
    | Cancel
    | CancelAll
    | Amend
    | IndexPrice
    | Funding
    | SettlePeriod
    | Set
    | InsuranceDeposit
    | MarketLevel
)

COMMAND_TYPES: Final[dict[str, type[Command]]] = {
    c.TYPE: c
    for c in (
        Deposit,
        Withdraw,
        Order,
        Cancel,
        CancelAll,
        Amend,
        IndexPrice,
        Funding,
        SettlePeriod,
        Set,
        InsuranceDeposit,
        MarketLevel,
    )
}


# --------------------------------------------------------------------------- field checks
# Each check takes (field name, value) and returns (value, None) or (None, detail); the
# detail becomes a ``bad_field`` rejection unless the check already gave it its own code.

_CODED: Final = tuple(f"{c.value}:" for c in RejectCode)

_Result: TypeAlias = tuple[Any, str | None]
_Check: TypeAlias = Callable[[str, object], _Result]


def _show(v: object) -> str:
    """A short, one-line rendering of user data for a reason."""
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _ts(name: str, v: object) -> _Result:
    if type(v) is not int:
        return None, f"{name} must be an integer (microseconds), not {_show(v)}"
    if v < 0 or v > MAX_TS:
        return None, reason(RejectCode.TS_OUT_OF_RANGE, f"{name} {v} outside 0..{MAX_TS}")
    return v, None


def _id(name: str, v: object) -> _Result:
    if type(v) is not str:
        return None, f"{name} must be a string, not {_show(v)}"
    if not v:
        return None, f"empty {name}"
    if len(v) > _MAX_ID:
        return None, f"{name} longer than {_MAX_ID} characters"
    if not _ID_RE.fullmatch(v):
        return None, f"{name} {_show(v)} has characters outside [A-Za-z0-9_.:@-]"
    return v, None


def _account(name: str, v: object) -> _Result:
    # "#..." and "@..." name system accounts (insurance fund, fee pool, backstops); a command
    # must never be able to act as one.
    if type(v) is str and v[:1] in ("#", "@"):
        if v == MARKET_ACCOUNT:
            return None, (
                f"reserved account id {_show(v)}: the market account has no deposits "
                "or withdrawals"
            )
        return None, f"reserved account id {_show(v)}"
    return _id(name, v)


def _trader(name: str, v: object) -> _Result:
    """The account of a trading command (order, cancel, cancel_all, amend): any user
    account, or the market's (DESIGN §9: historical trades are its IOC orders)."""
    if type(v) is str and v == MARKET_ACCOUNT:
        return v, None
    return _account(name, v)


def _symbol(name: str, v: object) -> _Result:
    if type(v) is not str:
        return None, f"{name} must be a string, not {_show(v)}"
    if not v:
        return None, f"empty {name}"
    if len(v) > _MAX_ID:
        return None, f"{name} longer than {_MAX_ID} characters"
    return v, None


_NOUN: Final = {"qty": "quantity"}


def _decimal(positive: bool, signed: bool = False) -> _Check:
    pattern = _SIGNED_RE if signed else _UNSIGNED_RE

    def check(name: str, v: object) -> _Result:
        noun = _NOUN.get(name, name)
        if type(v) is not str:
            return None, f"{noun} must be a decimal string, not {_show(v)}"
        if len(v) > _MAX_DECIMAL:
            return None, f"{noun} has more than {_MAX_DECIMAL} characters"
        if not pattern.fullmatch(v):
            if not signed and v[:1] == "-" and _UNSIGNED_RE.fullmatch(v[1:]):
                return None, f"negative {noun}"
            return None, f"{noun} {_show(v)} is not a decimal number like 12.5"
        if positive and not v.strip("0."):
            return None, f"zero {noun}"
        return v, None

    return check


def _choice(options: tuple[str, ...]) -> _Check:
    def check(name: str, v: object) -> _Result:
        if type(v) is not str or v not in options:
            return None, f"{name} must be one of {'|'.join(options)}, not {_show(v)}"
        return v, None

    return check


def _bool(name: str, v: object) -> _Result:
    if type(v) is not bool:
        return None, f"{name} must be true or false, not {_show(v)}"
    return v, None


def _text(limit: int, nonempty: bool) -> _Check:
    def check(name: str, v: object) -> _Result:
        if type(v) is not str:
            return None, f"{name} must be a string, not {_show(v)}"
        if nonempty and not v:
            return None, f"empty {name}"
        if len(v) > limit:
            return None, f"{name} longer than {limit} characters"
        return v, None

    return check


_POSITIVE = _decimal(positive=True)

# The fields of each type in order: (name, check, required, None allowed). An optional field
# that is absent takes the class default; ``None allowed`` is for fields where JSON null
# means "not given" (an order's price, a funding rate, an amend's qty or price).
_Field: TypeAlias = tuple[str, _Check, bool, bool]
_FIELDS: Final[dict[str, tuple[_Field, ...]]] = {
    "deposit": (
        ("ts", _ts, True, False),
        ("account", _account, True, False),
        ("amount", _POSITIVE, True, False),
    ),
    "withdraw": (
        ("ts", _ts, True, False),
        ("account", _account, True, False),
        ("amount", _POSITIVE, True, False),
    ),
    "order": (
        ("ts", _ts, True, False),
        ("account", _trader, True, False),
        ("id", _id, True, False),
        ("symbol", _symbol, True, False),
        ("side", _choice(SIDES), True, False),
        ("qty", _POSITIVE, True, False),
        ("price", _POSITIVE, False, True),
        ("tif", _choice(TIFS), False, False),
        ("reduce_only", _bool, False, False),
    ),
    "cancel": (
        ("ts", _ts, True, False),
        ("account", _trader, True, False),
        ("id", _id, True, False),
    ),
    "cancel_all": (("ts", _ts, True, False), ("account", _trader, True, False)),
    "amend": (
        ("ts", _ts, True, False),
        ("account", _trader, True, False),
        ("id", _id, True, False),
        ("qty", _POSITIVE, False, True),
        ("price", _POSITIVE, False, True),
    ),
    "index_price": (
        ("ts", _ts, True, False),
        ("symbol", _symbol, True, False),
        ("price", _POSITIVE, True, False),
    ),
    "funding": (
        ("ts", _ts, True, False),
        ("symbol", _symbol, True, False),
        ("rate", _decimal(positive=False, signed=True), False, True),
    ),
    "settle_period": (("ts", _ts, True, False),),
    "set": (
        ("ts", _ts, True, False),
        ("path", _text(_MAX_PATH, True), True, False),
        ("value", _text(_MAX_VALUE, False), True, False),
    ),
    "insurance_deposit": (("ts", _ts, True, False), ("amount", _POSITIVE, True, False)),
    "market_level": (
        ("ts", _ts, True, False),
        ("symbol", _symbol, True, False),
        ("side", _choice(SIDES), True, False),
        ("price", _POSITIVE, True, False),
        ("qty", _decimal(positive=False), True, False),  # "0" removes the level
    ),
}


# --------------------------------------------------------------------------- parsing


def parse_command(d: object) -> Command | str:
    """The command ``d`` describes, or a one-line reason it is not one. Never raises."""
    try:
        if type(d) is dict:
            t = d.get("type")
            fast = _FAST.get(t) if type(t) is str else None
            if fast is not None:
                c = fast(d)
                if c is not None:
                    return c
        return _parse(d)
    except Exception as e:  # pragma: no cover - a bug here must still not crash the engine
        return reason(RejectCode.MALFORMED, f"invalid command ({type(e).__name__})")


def _parse(d: object) -> Command | str:
    if not isinstance(d, dict):
        # The text is shown too: a log records an unrecordable command as such a text (see
        # record_form), and its rejection should say what it was.
        shown = f": {_show(d)}" if isinstance(d, str) else ""
        return reason(
            RejectCode.MALFORMED, f"command must be a JSON object, not {type(d).__name__}{shown}"
        )
    t = d.get("type")
    if "type" not in d:
        return reason(RejectCode.MISSING_FIELD, "'type'")
    if type(t) is not str or t not in _FIELDS:
        return reason(RejectCode.UNKNOWN_TYPE, _show(t))
    fields = _FIELDS[t]
    known = {f[0] for f in fields}
    for k in d:
        if k != "type" and k not in known:
            return reason(RejectCode.UNKNOWN_FIELD, f"{_show(k)} in {t} command")
    kwargs: dict[str, Any] = {}
    for name, check, required, nullable in fields:
        if name not in d:
            if required:
                return reason(RejectCode.MISSING_FIELD, f"{name!r} in {t} command")
            continue
        v = d[name]
        if v is None and nullable:
            continue
        value, why = check(name, v)
        if why is not None:
            return why if why.startswith(_CODED) else reason(RejectCode.BAD_FIELD, why)
        kwargs[name] = value
    if t == "amend" and "qty" not in kwargs and "price" not in kwargs:
        return reason(RejectCode.MISSING_FIELD, "amend needs qty or price")
    if t == "order" and kwargs.get("tif") == "post_only" and "price" not in kwargs:
        return reason(RejectCode.MISSING_FIELD, "post_only order needs a price")
    return COMMAND_TYPES[t](**kwargs)


# --------------------------------------------------------------------------- fast path
# The shapes that make up almost every command of a real day (orders, cancels, index
# prices, deposits), checked in one pass. Each accepts a strict subset of what ``_parse``
# accepts and builds the very same command; anything else (an optional field in an unusual
# form, any error) returns None and goes to ``_parse``, so every rejection reason is the
# general parser's. tests/test_commands.py checks the two agree on mutated commands.

_id_ok = _ID_RE.fullmatch
_dec_ok = _UNSIGNED_RE.fullmatch


def _fast_id(v: object) -> bool:
    return type(v) is str and 0 < len(v) <= _MAX_ID and _id_ok(v) is not None


def _fast_account(v: object) -> bool:
    return _fast_id(v) and v[0] != "@"  # type: ignore[index]  # "#" is outside _ID_RE


def _fast_trader(v: object) -> bool:
    return _fast_account(v) or (type(v) is str and v == MARKET_ACCOUNT)


def _fast_positive(v: object) -> bool:
    return (
        type(v) is str and len(v) <= _MAX_DECIMAL and _dec_ok(v) is not None and bool(v.strip("0."))
    )


def _fast_ts(v: object) -> bool:
    return type(v) is int and 0 <= v <= MAX_TS


def _fast_symbol(v: object) -> bool:
    return type(v) is str and 0 < len(v) <= _MAX_ID


_ORDER_KEYS: Final = frozenset(
    ("type", "ts", "account", "id", "symbol", "side", "qty", "price", "tif", "reduce_only")
)


def _fast_order(d: dict[str, Any]) -> Order | None:
    # The checks of _fast_ts/_fast_account/_fast_id/_fast_symbol/_fast_positive, inlined:
    # this is the one command a real day is mostly made of.
    if not d.keys() <= _ORDER_KEYS:
        return None
    ts, account, oid, symbol = d.get("ts"), d.get("account"), d.get("id"), d.get("symbol")
    side, qty = d.get("side"), d.get("qty")
    price, tif, ro = d.get("price"), d.get("tif", "gtc"), d.get("reduce_only", False)
    if not (
        type(ts) is int
        and 0 <= ts <= MAX_TS
        and type(account) is str
        and 0 < len(account) <= _MAX_ID
        and account[0] != "@"
        and (_id_ok(account) is not None or account == MARKET_ACCOUNT)
        and type(oid) is str
        and 0 < len(oid) <= _MAX_ID
        and _id_ok(oid) is not None
        and type(symbol) is str
        and 0 < len(symbol) <= _MAX_ID
        and (side == "buy" or side == "sell")
        and type(side) is str
        and type(qty) is str
        and len(qty) <= _MAX_DECIMAL
        and _dec_ok(qty) is not None
        and qty.strip("0.")
        and (
            price is None
            or (
                type(price) is str
                and len(price) <= _MAX_DECIMAL
                and _dec_ok(price) is not None
                and price.strip("0.")
            )
        )
        and type(tif) is str
        and tif in TIFS
        and (price is not None or tif != "post_only")
        and type(ro) is bool
    ):
        return None
    return Order(ts, account, oid, symbol, side, qty, price, tif, ro)


def _fast_three(
    cls: type[Cancel] | type[IndexPrice] | type[Deposit],
    second: str,
    third: str,
    checks: tuple[Callable[[object], bool], Callable[[object], bool]],
) -> Callable[[dict[str, Any]], Command | None]:
    """The fast path of a command of exactly ``type``, ``ts`` and two more fields."""
    keys = frozenset(("type", "ts", second, third))
    check2, check3 = checks

    def fast(d: dict[str, Any]) -> Command | None:
        if d.keys() != keys:
            return None
        ts, v2, v3 = d["ts"], d[second], d[third]
        if not (_fast_ts(ts) and check2(v2) and check3(v3)):
            return None
        return cls(ts, v2, v3)

    return fast


_LEVEL_KEYS: Final = frozenset(("type", "ts", "symbol", "side", "price", "qty"))


def _fast_market_level(d: dict[str, Any]) -> MarketLevel | None:
    # A historical day is mostly these (one per L2 update): inlined like _fast_order.
    if d.keys() != _LEVEL_KEYS:
        return None
    ts, symbol, side, price, qty = d["ts"], d["symbol"], d["side"], d["price"], d["qty"]
    if not (
        type(ts) is int
        and 0 <= ts <= MAX_TS
        and type(symbol) is str
        and 0 < len(symbol) <= _MAX_ID
        and (side == "buy" or side == "sell")
        and type(side) is str
        and type(price) is str
        and len(price) <= _MAX_DECIMAL
        and _dec_ok(price) is not None
        and price.strip("0.")
        and type(qty) is str
        and len(qty) <= _MAX_DECIMAL
        and _dec_ok(qty) is not None
    ):
        return None
    return MarketLevel(ts, symbol, side, price, qty)


_FAST: Final[dict[str, Callable[[dict[str, Any]], Command | None]]] = {
    "order": _fast_order,
    "market_level": _fast_market_level,
    "cancel": _fast_three(Cancel, "account", "id", (_fast_trader, _fast_id)),
    "index_price": _fast_three(IndexPrice, "symbol", "price", (_fast_symbol, _fast_positive)),
    "deposit": _fast_three(Deposit, "account", "amount", (_fast_account, _fast_positive)),
}


def command_to_dict(c: Command) -> dict[str, Any]:
    """The JSON shape of a command (defaults written out); ``parse_command`` gives it back."""
    d: dict[str, Any] = {"type": c.TYPE}
    d.update(attrs.asdict(c))
    return d


def load_command_line(line: bytes | str) -> dict[str, Any] | str:
    """One JSON command line to a dict, or a one-line reason; never raises.

    Parsing with orjson and checking the result re-encodes guarantees that what the engine
    sees is exactly what the log's ``Input`` record will give back on replay (orjson reads
    integers beyond 64 bits as floats, and nests deeper on reading than on writing).
    """
    if len(line) > MAX_COMMAND_BYTES:
        return reason(RejectCode.MALFORMED, f"command line longer than {MAX_COMMAND_BYTES} bytes")
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        return reason(RejectCode.MALFORMED, f"malformed JSON: {' '.join(str(e).split())}")
    if not isinstance(d, dict):
        return reason(
            RejectCode.MALFORMED, f"command must be a JSON object, not {type(d).__name__}"
        )
    try:
        orjson.dumps({"command": d})
    except orjson.JSONEncodeError:
        return reason(RejectCode.MALFORMED, "command nests too deeply")
    return d


# --------------------------------------------------------------------------- recording


def record_form(command: object) -> dict[str, Any]:
    """What the log's ``Input`` records for ``command``: exactly the command, or a stand-in.

    A command is recorded as itself only if the log gives it back exactly — same JSON
    types, same values — inside an event, within :data:`MAX_COMMAND_BYTES`. Anything else
    (NaN, which JSON writes as null; a tuple, which comes back a list; integers past 64 bits;
    non-string keys; nesting the encoder refuses; objects through the Python API; a value
    too large to record) is recorded as ``{"raw": "<unrecordable ...>"}``, a bounded
    description. A non-object input that is recordable is ``{"raw": input}``.

    The exchange parses what this returns (:func:`command_of_record`), never the original,
    so a re-execution of the log sees the very same input and gives the same verdict.
    """
    wrapped: dict[str, Any] = command if isinstance(command, dict) else {"raw": command}
    try:
        encoded = orjson.dumps({"event": {"command": wrapped}})
    except (TypeError, orjson.JSONEncodeError):
        return {"raw": _describe(command)}
    if len(encoded) > MAX_COMMAND_BYTES or not _exact(
        wrapped, orjson.loads(encoded)["event"]["command"]
    ):
        return {"raw": _describe(command)}
    return wrapped


def command_of_record(recorded: object) -> object:
    """The input an ``Input`` record stands for: ``{"raw": x}`` is ``x``, else the dict."""
    if type(recorded) is dict and len(recorded) == 1 and "raw" in recorded:
        return recorded["raw"]
    return recorded


def _exact(a: object, b: object) -> bool:
    """``a`` and ``b`` are the same JSON value with the same Python types all the way down."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, dict) and isinstance(y, dict):
            if list(x) != list(y):
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif x != y:  # NaN != NaN, but orjson writes NaN as null, caught by the type check
            return False
    return True


class _Describe(reprlib.Repr):
    """reprlib with objects shown by type name only: an object's own repr may hold a
    memory address, and the log of the same inputs must be the same bytes every run."""

    def repr_instance(self, x: object, level: int) -> str:
        if type(x) in (float, bool, type(None)):
            return repr(x)
        return f"<{type(x).__name__}>"


_REPR = _Describe()
_REPR.maxlevel = 4
_REPR.maxstring = 60
_REPR.maxother = 60


def _describe(v: object) -> str:
    """A bounded, encodable one-line description of a value the log cannot record."""
    try:
        text = _REPR.repr(v)
    except Exception:  # a hostile __repr__: the description must never fail
        text = "..."
    text = " ".join(text.split())[:200]
    return f"<unrecordable {type(v).__name__}: {text}>"


# --------------------------------------------------------------------------- units


def to_units(text: str, decimals: int) -> int:
    """An exact decimal string (optionally signed) as an integer count of 10^-decimals units.

    ``to_units("12.5", 6) == 12_500_000``. Trailing zeros are fine; a value that needs more
    than ``decimals`` places raises ValueError("more than N decimals"): never rounded. A
    result beyond 64 bits raises ValueError("out of range").
    """
    if decimals < 0:
        raise ValueError("decimals must be >= 0")
    if type(text) is not str or not _SIGNED_RE.fullmatch(text):
        raise ValueError(f"not a decimal number: {_show(text)}")
    neg = text.startswith("-")
    whole, _, frac = text.lstrip("-").partition(".")
    frac = frac.rstrip("0")
    if len(frac) > decimals:
        raise ValueError(f"more than {decimals} decimals")
    units: int = int(whole) * 10**decimals + int(frac.ljust(decimals, "0") or "0")
    if units > INT64_MAX:
        # The log stores 64-bit integers: a larger amount could never be recorded.
        raise ValueError("out of range")
    return -units if neg else units
