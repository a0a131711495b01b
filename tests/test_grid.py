"""The tick/lot grid: exact decimal <-> integer conversion at the edges, strict parsing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearsim.events.units import MAX_PRICE_TICKS
from clearsim.orderbook import Grid, GridError


def test_price_and_qty_parse_to_whole_steps() -> None:
    g = Grid("0.1", "0.001")
    assert g.price("50000.1") == 500001
    assert g.price("50000") == 500000
    assert g.price("0.1") == 1
    assert g.price(".5") == 5
    assert g.price("7.") == 70
    assert g.price("+3.20") == 32
    assert g.qty("0.5") == 500
    assert g.qty("0.001") == 1
    assert g.qty("12") == 12000


def test_steps_that_are_not_powers_of_ten() -> None:
    g = Grid("0.5", "25")
    assert g.price("2.5") == 5
    assert g.qty("75") == 3
    with pytest.raises(GridError, match="price off the tick grid"):
        g.price("2.25")
    with pytest.raises(GridError, match="quantity not a whole number of lots"):
        g.qty("30")
    assert g.fmt_price(5) == "2.5"
    assert g.fmt_qty(3) == "75"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("50000.05", "price off the tick grid"),
        ("0.01", "price off the tick grid"),
        ("0", "not a positive price"),
        ("0.0", "not a positive price"),
        ("-1", "not a positive price"),
        ("-0.05", "not a positive price"),  # the sign is reported before the grid
        ("abc", "price is not a decimal string"),
        ("", "price is not a decimal string"),
        ("1e3", "price is not a decimal string"),
        ("NaN", "price is not a decimal string"),
        ("Infinity", "price is not a decimal string"),
        (" 1", "price is not a decimal string"),
        ("1_000", "price is not a decimal string"),
        ("1.2.3", "price is not a decimal string"),
        ("9" * 65, "price is not a decimal string"),
    ],
)
def test_bad_prices(text: str, reason: str) -> None:
    with pytest.raises(GridError) as e:
        Grid("0.1", "0.001").price(text)
    assert e.value.reason == reason
    assert str(e.value) == reason
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0.0005", "quantity not a whole number of lots"),
        ("0", "quantity must be positive"),
        ("-0.5", "quantity must be positive"),
        ("x", "quantity is not a decimal string"),
    ],
)
def test_bad_quantities(text: str, reason: str) -> None:
    with pytest.raises(GridError, match=reason):
        Grid("0.1", "0.001").qty(text)


@pytest.mark.parametrize("value", [5, 0.5, Decimal("0.5"), None, True, b"1"])
def test_only_strings_are_parsed(value: object) -> None:
    # An int would be ambiguous (units or ticks?) and a float inexact: refused, not guessed.
    with pytest.raises(GridError, match="not a decimal string"):
        Grid("0.1", "0.001").price(value)  # type: ignore[arg-type]


def test_formatting_is_exact_with_the_grids_decimals() -> None:
    g = Grid("0.1", "0.001")
    assert g.fmt_price(500001) == "50000.1"
    assert g.fmt_price(500000) == "50000.0"
    assert g.fmt_price(1) == "0.1"
    assert g.fmt_price(0) == "0.0"
    assert g.fmt_qty(500) == "0.500"
    assert g.fmt_qty(-1500) == "-1.500"  # positions are signed
    assert g.fmt_qty(-1) == "-0.001"
    assert g.fmt_qty(10**30) == "1" + "0" * 27 + ".000"  # no exponent, ever
    assert (g.price_decimals, g.qty_decimals) == (1, 3)


def test_step_sizes_normalise() -> None:
    g = Grid("0.50", "100")
    assert (g.tick_size, g.lot_size) == ("0.5", "100")
    assert (g.price_decimals, g.qty_decimals) == (1, 0)
    assert g.fmt_qty(3) == "300"
    assert repr(g) == "Grid(tick_size='0.5', lot_size='100')"
    assert Grid("1", "1").fmt_price(42) == "42"


@pytest.mark.parametrize(
    ("tick", "lot", "reason"),
    [
        ("0", "1", "tick size must be positive"),
        ("-0.1", "1", "tick size must be positive"),
        ("1", "0", "lot size must be positive"),
        ("x", "1", "tick size is not a decimal string"),
        ("1", "1e-3", "lot size is not a decimal string"),
    ],
)
def test_bad_grids(tick: str, lot: str, reason: str) -> None:
    with pytest.raises(GridError, match=reason):
        Grid(tick, lot)


steps = st.sampled_from(["0.1", "0.5", "0.25", "1", "5", "0.001", "0.0005", "10", "2.5"])


@given(tick=steps, lot=steps, n=st.integers(1, 10**15))
def test_format_then_parse_round_trips(tick: str, lot: str, n: int) -> None:
    g = Grid(tick, lot)
    assert g.price(g.fmt_price(n)) == n
    assert g.qty(g.fmt_qty(n)) == n
    # And the text is the exact value: n steps of the size.
    assert Decimal(g.fmt_price(n)) == n * Decimal(tick)
    assert "e" not in g.fmt_price(n).lower()


@given(
    tick=steps,
    text=st.decimals(
        min_value=Decimal("0.0001"),
        max_value=Decimal(10**9),
        places=4,
        allow_nan=False,
        allow_infinity=False,
    ),
)
def test_parse_accepts_exactly_the_multiples(tick: str, text: Decimal) -> None:
    g = Grid(tick, "1")
    s = format(text, "f")
    on_grid = (text / Decimal(tick)) % 1 == 0
    if on_grid:
        assert g.price(s) * Decimal(tick) == text
    else:
        with pytest.raises(GridError, match="off the tick grid"):
            g.price(s)


@given(
    whole=st.integers(0, 10**12),
    frac=st.text("0123456789", max_size=9),
    tick=st.sampled_from(["0.1", "0.5", "1", "0.01", "25", "0.0001"]),
)
def test_plain_decimals_parse_like_the_exact_decimal_path(whole: int, frac: str, tick: str) -> None:
    """The Decimal-free parse of plain text is an optimisation: the same ticks or the same
    error as the exact ratio of the Decimal path."""
    from clearsim.orderbook import grid as G

    text = f"{whole}.{frac}" if frac else str(whole)
    g = Grid(tick, "1")
    num, den = G._ratio(text, "price")
    top, bottom = num * g._tick[1], den * g._tick[0]
    try:
        got: object = g.price(text)
    except GridError as e:
        got = str(e)
    if num <= 0:
        assert got == "not a positive price"
    elif top % bottom:
        assert got == "price off the tick grid"
    elif top // bottom > MAX_PRICE_TICKS:
        assert isinstance(got, str) and got.startswith("price out of range")
    else:
        assert got == top // bottom
