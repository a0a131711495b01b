"""``clearsim export`` and the tables behind it (replay/tables): units, round trips, errors.

A hand-written log with units that are not 1 (collateral USDT with 6 decimals; instrument
X with tick 0.5 and lot 0.001), so every conversion shows:

seq  event                                        human units
 1   input: deposit a "1.5"                        command kept as its JSON text
 2   deposit a 1_500_000 atoms                     amount 1.500000 USDT
 3   mark X 201 ticks                              price 100.5
 4   order_accepted market buy 1500 lots           qty 1.500, price null (market)
 5   fill X 200 ticks x 1500 lots                  price 100.0, qty 1.500
 6   fill X 201 ticks x 250 lots                   price 100.5, qty 0.250
 7   funding X: a +12_345, b -12_345 atoms         payments [a 0.012345, b -0.012345]
 8   clawback period 3: loss 20, c charged 7       charges [c 0.000007]
 9   halt X until ts 2_000_000 (2 s after epoch)   until 1970-01-01T00:00:02Z

Fill quantities sum to 1.750 (1750 lots). The projection tables use tests/test_project.py's
hand-computed stream (units 1), whose figures are worked out in that file's docstring.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

pa = pytest.importorskip("pyarrow", reason="the data extra (pip install 'clearsim[data]')")
pq = pytest.importorskip("pyarrow.parquet")

from test_cli import assert_user_error, cli  # noqa: E402
from test_project import CONFIG as HAND_CONFIG  # noqa: E402
from test_project import stream as hand_stream  # noqa: E402
from test_verify import reseal, write_log  # noqa: E402

from clearsim.events.codec import Header  # noqa: E402
from clearsim.events.log import LogReader, LogWriter  # noqa: E402
from clearsim.events.types import (  # noqa: E402
    EVENT_TYPES,
    Clawback,
    Deposit,
    Fill,
    Funding,
    Halt,
    Input,
    MarkPrice,
    OrderAccepted,
)
from clearsim.replay.projections.fields import KINDS, PLAIN  # noqa: E402
from clearsim.replay.tables.events import EventColumns, batches  # noqa: E402
from clearsim.replay.tables.units import Units  # noqa: E402

T = 1_700_000_000_000_000
TIERS = [{"max_notional": "1000000000", "imr_ppm": 100_000, "mmr_ppm": 50_000}]
CONFIG: dict[str, Any] = {
    "exchange": {"collateral": "USDT", "collateral_decimals": 6, "mark": "oracle"},
    "instruments": [{"symbol": "X", "tick_size": "0.5", "lot_size": "0.001", "tiers": TIERS}],
}
COMMAND = {"type": "deposit", "ts": T, "account": "a", "amount": "1.5"}


def events() -> list[Any]:
    return [
        Input(1, T, 0, COMMAND),
        Deposit(2, T, 1, "a", 1_500_000),
        MarkPrice(3, T, 0, "X", 201),
        OrderAccepted(4, T + 1, 0, "X", "o1", "t", "buy", 1500, None, "ioc"),
        Fill(5, T + 1, 4, "X", 200, 1500, "m1", "mk", "o1", "t", "buy"),
        Fill(6, T + 1, 4, "X", 201, 250, "m2", "mk", "o1", "t", "buy"),
        Funding(7, T + 2, 0, "X", 100, 201, [["a", 12_345], ["b", -12_345]]),
        Clawback(8, T + 3, 0, 3, 20, 1000, 7000, 7, [["c", 7]]),
        Halt(9, T + 4, 3, "X", 201, 150, 250_000, 2_000_000),
    ]


def write(path: Path, evs: list[Any], config: dict[str, Any] = CONFIG) -> Path:
    w = LogWriter.create(path, Header.new(config, 0))
    w.write_many(evs)
    w.close()
    return path


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return write(tmp_path / "u.log", events())


def rows(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()


# --------------------------------------------------------------------------- units


def test_every_integer_field_has_a_decided_unit() -> None:
    import typing

    import attrs

    for name, cls in EVENT_TYPES.items():
        hints = typing.get_type_hints(cls)
        for f in attrs.fields(cls)[3:]:
            if hints[f.name] in (int, int | None):
                assert (f.name in KINDS) != (f.name in PLAIN), f"{name}.{f.name}"


def test_human_units_hand_checked(log: Path, tmp_path: Path) -> None:
    r = cli("export", log, "-o", tmp_path / "e.parquet")
    assert r.returncode == 0, r
    assert "9 events (human units)" in r.stdout
    t = pq.read_table(tmp_path / "e.parquet")
    s = t.schema
    # precisions: 10^15 ticks x step 5 (16 digits); 2^63 lots x 1, 2^63 atoms (19 each)
    assert s.field("price").type == pa.decimal128(16, 1)
    assert s.field("qty").type == pa.decimal128(19, 3)
    assert s.field("amount").type == pa.decimal128(19, 6)
    assert s.field("ts").type == pa.timestamp("us", tz="UTC")
    assert pa.types.is_dictionary(s.field("type").type)
    assert orjson.loads(s.metadata[b"clearsim.header"])["config"] == CONFIG
    got = {d["seq"]: d for d in t.to_pylist()}
    assert [d["seq"] for d in t.to_pylist()] == list(range(1, 10))
    assert orjson.loads(got[1]["command"]) == COMMAND
    assert got[2]["amount"] == Decimal("1.500000")
    assert got[3]["price"] == Decimal("100.5")
    assert (got[4]["qty"], got[4]["price"]) == (Decimal("1.500"), None)
    assert [(got[s]["price"], got[s]["qty"]) for s in (5, 6)] == [
        (Decimal("100.0"), Decimal("1.500")),
        (Decimal("100.5"), Decimal("0.250")),
    ]
    fills = [d for d in t.to_pylist() if d["type"] == "fill"]
    assert sum(d["qty"] for d in fills) == Decimal("1.750")
    assert got[7]["payments"] == [
        {"account": "a", "amount": Decimal("0.012345")},
        {"account": "b", "amount": Decimal("-0.012345")},
    ]
    assert (got[7]["rate_ppm"], got[7]["mark"]) == (100, Decimal("100.5"))
    assert got[8]["charges"] == [{"account": "c", "amount": Decimal("0.000007")}]
    assert (got[8]["loss"], got[8]["period"]) == (Decimal("0.000020"), 3)
    assert got[9]["until"].isoformat() == "1970-01-01T00:00:02+00:00"
    assert (got[9]["reference"], got[9]["price"]) == (Decimal("100.5"), Decimal("75.0"))
    assert got[5]["ts"].isoformat() == "2023-11-14T22:13:20.000001+00:00"


def test_raw_units_equal_the_logs_integers(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "raw.parquet"
    assert cli("export", log, "-o", out, "--units", "raw").returncode == 0
    table = {d["seq"]: d for d in rows(out)}
    for rec in LogReader(log).records():
        row = table[rec["seq"]]
        for k, v in rec.items():
            if k == "h":
                continue
            if k == "command":
                assert orjson.loads(row[k]) == v
            elif k in ("payments", "charges"):
                assert [[p["account"], p["amount"]] for p in row[k]] == v
            else:
                assert row[k] == v and type(row[k]) is type(v), (rec["seq"], k)


def test_csv_human_and_raw(log: Path, tmp_path: Path) -> None:
    for units, qty in (("human", Decimal("1.750")), ("raw", Decimal(1750))):
        out = tmp_path / f"{units}.csv"
        assert cli("export", log, "-o", out, "--units", units).returncode == 0
        with out.open() as f:
            got = list(csv.DictReader(f))
        assert len(got) == 9
        assert sum(Decimal(d["qty"]) for d in got if d["type"] == "fill") == qty
        funding = next(d for d in got if d["type"] == "funding")
        pays = orjson.loads(funding["payments"])
        assert pays[0] == {"account": "a", "amount": "0.012345" if units == "human" else 12345}
    with (tmp_path / "raw.csv").open() as f:
        raw = list(csv.DictReader(f))
    assert raw[4]["ts"] == str(T + 1) and raw[4]["price"] == "200"


def test_types_filter_and_batches(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.parquet"
    assert cli("export", log, "-o", out, "--types", "fill,deposit").returncode == 0
    t = pq.read_table(out)
    assert t.column("seq").to_pylist() == [2, 5, 6]
    assert "payments" not in t.schema.names and "command" not in t.schema.names
    # Tiny batches give the same rows, in seq order, as one batch.
    cols = EventColumns(Units(CONFIG))
    whole = pa.concat_tables(batches(log, cols))
    small = list(batches(log, cols, batch=2))
    assert len(small) > 3
    assert pa.concat_tables(small).to_pylist() == whole.to_pylist()


# --------------------------------------------------------------------------- a real log


def test_round_trip_of_an_engine_log(tmp_path: Path) -> None:
    log = write_log(tmp_path / "w.log")
    records = list(LogReader(log).records())
    fill_qty = sum(d["qty"] for d in records if d["type"] == "fill")
    for units in ("human", "raw"):
        out = tmp_path / f"{units}.parquet"
        assert cli("export", log, "-o", out, "--units", units).returncode == 0
        t = pq.read_table(out)
        assert t.num_rows == len(records)
        got = [d for d in t.to_pylist() if d["type"] == "fill"]
        assert sum(d["qty"] for d in got) == fill_qty  # tick 1 and lot 1: the same number
    raw = {d["seq"]: d for d in rows(tmp_path / "raw.parquet")}
    for rec in records:
        for k, v in rec.items():
            if k not in ("h", "command", "payments", "charges"):
                assert raw[rec["seq"]][k] == v


# --------------------------------------------------------------------------- projections


@pytest.fixture
def hand(tmp_path: Path) -> Path:
    return write(tmp_path / "hand.log", hand_stream(), HAND_CONFIG)


def test_projection_tables_hand_computed(hand: Path, tmp_path: Path) -> None:
    fund = tmp_path / "fund.parquet"
    assert cli("export", hand, "-o", fund, "--table", "fund").returncode == 0
    f = rows(fund)
    # tests/test_project.py's TIMELINE: (seq, amount, cash, equity, reason)
    assert [(d["seq"], d["amount"], d["cash"], d["equity"], d["reason"]) for d in f][:4] == [
        (9, -6, 94, 94, "shortfall paid"),
        (10, 2, 96, 96, "liquidation fee"),
        (10, 1, 97, 97, "surplus"),
        (11, -160, -63, 97, "takeover"),
    ]
    assert (f[3]["BTC-USD.qty"], f[3]["BTC-USD.price"]) == (2, 80)  # the fund holds 2 @ 80
    assert (f[4]["BTC-USD.qty"], f[4]["BTC-USD.price"]) == (0, None)
    claw = tmp_path / "claw.parquet"
    assert cli("export", hand, "-o", claw, "--table", "clawback").returncode == 0
    (c,) = rows(claw)
    assert (c["period"], c["seq"], c["socialized"], c["loss"], c["collected"]) == (
        1, 17, 20, 20, 15)  # fmt: skip
    assert (c["profit_base"], c["rate_ppm"], c["charges"]) == (
        100, 150_000, [{"account": "c", "amount": 15}])  # fmt: skip
    adl = tmp_path / "adl.parquet"
    assert cli("export", hand, "-o", adl, "--table", "adl").returncode == 0
    (a,) = rows(adl)
    assert (a["account"], a["counterparty"], a["qty"], a["price"], a["value"]) == (
        "b", "c", 1, 90, 90)  # fmt: skip


def test_accounts_table_is_the_state_view(hand: Path, tmp_path: Path) -> None:
    out = tmp_path / "acc.parquet"
    assert cli("export", hand, "-o", out, "--table", "accounts").returncode == 0
    acc = {d["account"]: d for d in rows(out)}
    assert set(acc) == {"a", "b", "c"}  # system accounts left out, as in `state`
    b = acc["b"]
    assert (b["balance"], b["quote_balance"], b["equity"]) == (1120, 1429, 1159)
    assert (b["BTC-USD.qty"], b["BTC-USD.entry_price"]) == (-3, Decimal("102.857142"))
    assert b["BTC-USD.liquidation_price"] == 454 and acc["c"]["BTC-USD.liquidation_price"] is None
    assert (acc["a"]["balance"], acc["a"]["BTC-USD.entry_price"]) == (800, None)
    # at time 20: a is long 5 @ 100, W = E = 999
    assert cli("export", hand, "-o", out, "--table", "accounts", "--time", "20",
               "--force").returncode == 0  # fmt: skip
    a = {d["account"]: d for d in rows(out)}["a"]
    assert (a["balance"], a["equity"], a["BTC-USD.qty"]) == (999, 999, 5)
    raw = tmp_path / "acc.csv"
    assert cli("export", hand, "-o", raw, "--table", "accounts", "--units", "raw").returncode == 0
    with raw.open() as fh:
        b_raw = next(d for d in csv.DictReader(fh) if d["account"] == "b")
    assert b_raw["BTC-USD.entry_e6"] == "102857142"


# --------------------------------------------------------------------------- errors


def test_user_errors_are_one_line(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.parquet"
    assert_user_error(cli("export", tmp_path / "missing.log", "-o", out))
    assert_user_error(cli("export", log, "-o", tmp_path / "o.txt"), ".parquet")
    assert_user_error(cli("export", log, "-o", out, "--types", "nope"), "nope")
    assert_user_error(cli("export", log, "-o", out, "--at", "3"), "accounts")
    assert_user_error(cli("export", log, "-o", out, "--table", "fund", "--types", "fill"))
    assert_user_error(cli("export", log, "-o", out, "--table", "accounts", "--at", "99"))
    assert_user_error(cli("export", log, "-o", log.with_suffix(".parquet"), "--table", "x"))
    assert cli("export", log, "-o", out).returncode == 0
    assert_user_error(cli("export", log, "-o", out), "--force")
    assert not (tmp_path / "o.parquet.partial").exists()


def test_a_mistyped_record_is_one_error_and_leaves_no_output(tmp_path: Path) -> None:
    log = write(tmp_path / "bad.log", events())
    lines = log.read_bytes().splitlines(keepends=True)
    lines[5] = lines[5].replace(b'"qty":1500', b'"qty":"1500"')  # the fill at seq 5
    log.write_bytes(b"".join(reseal(lines)))
    out = tmp_path / "o.parquet"
    assert_user_error(cli("export", log, "-o", out), "fill")
    assert not out.exists() and not (tmp_path / "o.parquet.partial").exists()


def test_a_torn_tail_is_left_out_with_a_warning(hand: Path, tmp_path: Path) -> None:
    data = hand.read_bytes()
    hand.write_bytes(data[:-10])  # the last line (seq 21) cut short; no inputs: only it goes
    r = cli("export", hand, "-o", tmp_path / "o.parquet")
    assert r.returncode == 0 and r.stderr.startswith("warning: torn tail"), r
    assert pq.read_table(tmp_path / "o.parquet").column("seq").to_pylist() == list(range(1, 21))


def test_missing_pyarrow_names_the_extra(log: Path, tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['pyarrow'] = None; "
        "from clearsim.replay.cli import main; "
        f"sys.exit(main(['export', {str(log)!r}, '-o', {str(tmp_path / 'o.parquet')!r}]))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert_user_error(r, "pip install 'clearsim[data]'")


def test_design_document_lists_every_event_type_and_verb() -> None:
    from clearsim.replay.cli.verbs import VERBS

    text = (Path(__file__).parents[1] / "docs" / "DESIGN.md").read_text()
    for t in EVENT_TYPES:
        assert f"| `{t}` |" in text, t
    for v in VERBS:
        assert f"clearsim {v} " in text or f"clearsim {v}\n" in text, v
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "(docs/DESIGN.md)" in readme and "DESIGN document" not in readme


def test_a_command_that_looks_like_a_record_type_is_grouped_right(tmp_path: Path) -> None:
    """The fast grouping finds each line's type with one regex over a chunk; a raw command
    holding ``"type":"x","until":5`` matches it too. The lines are then typed one by one
    (count mismatch), or regrouped when a group's parsed types disagree."""
    from clearsim.replay.tables.events import _regrouped

    odd = {"type": "x", "until": 5, "ts": T}
    log = write(tmp_path / "odd.log", [Input(1, T, 0, odd), *events()[1:]])
    t = pa.concat_tables(batches(log, EventColumns(Units(CONFIG))))
    assert t.column("type").to_pylist()[:3] == ["input", "deposit", "mark_price"]
    assert orjson.loads(t.column("command")[0].as_py()) == odd
    reader = LogReader(log)
    cols = EventColumns(Units(CONFIG))
    lines = [ln.rstrip(b"\n") for ln in log.read_bytes().splitlines(keepends=True)[1:]]
    # a deposit and a mark_price, both typed deposit: one group
    got = _regrouped(reader, cols, set(cols.types), lines[1:3], [b"deposit", b"deposit"])
    assert got.column("type").to_pylist() == ["deposit", "mark_price"]
