"""``clearsim.open_log`` (replay/tables/frames.py): a log's tables as DataFrames.

On tests/test_export.py's hand-written log (tick 0.5, lot 0.001, 6-decimal USDT) and on
the three-step cascade of tests/test_cascade.py (fund pays 20 + 40 + 60 = 120; a1 is
liquidated by the price, a2 by a1's orders, a3 by a2's).
"""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas", reason="the data extra (pip install 'clearsim[data]')")
pa = pytest.importorskip("pyarrow")

from test_export import CONFIG, events, write  # noqa: E402
from test_verify import write_log  # noqa: E402

import clearsim  # noqa: E402


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return write(tmp_path / "u.log", events())


def test_events_frame_is_exact(log: Path) -> None:
    lf = clearsim.open_log(log)
    df = lf.events()
    assert len(df) == 9 and list(df["seq"]) == list(range(1, 10))
    assert isinstance(df["qty"].dtype, pd.ArrowDtype)
    assert pa.types.is_decimal(df["qty"].dtype.pyarrow_dtype)
    fills = lf.events(types=["fill"])
    assert list(fills["price"]) == [Decimal("100.0"), Decimal("100.5")]
    assert fills["qty"].sum() == Decimal("1.750")
    total = (fills["price"] * fills["qty"]).sum()  # 150 + 25.125, exactly
    assert Decimal(str(total)) == Decimal("175.125")
    assert str(fills["ts"].iloc[0]) == "2023-11-14 22:13:20.000001+00:00"
    raw = clearsim.open_log(log, units="raw").events(types=["fill"])
    assert list(raw["price"]) == [200, 201] and list(raw["qty"]) == [1500, 250]


def test_other_frames_and_arrow(tmp_path: Path) -> None:
    lf = clearsim.open_log(write_log(tmp_path / "w.log"))
    c = lf.cascades(top=3)
    assert len(c) == 1
    row = c.iloc[0]
    assert (row["liquidations"], row["by_price"], row["by_liquidation"]) == (3, 1, 2)
    assert row["fund_paid"] == Decimal("120") and row["fund_equity_after"] == Decimal("880")
    assert (row["X.liquidation_first_price"], row["X.liquidation_last_price"]) == (89, 81)
    fund = lf.fund()
    assert list(fund["amount"]) == [-20, -40, -60]
    acc = lf.accounts().set_index("account")
    assert acc.loc["a1", "X.qty"] == 0
    assert acc.loc["c1", "X.qty"] == 10 and acc.loc["c1", "X.entry_price"] == Decimal("99")
    assert len(lf.clawbacks()) == 0 and len(lf.adl()) == 0
    table = lf.events_arrow(["liquidation_fill"])
    assert isinstance(table, pa.Table) and table.num_rows == 3
    assert lf.events(["fill"], frame="arrow").num_rows == lf.events(["fill"]).shape[0]


def test_polars_frame(log: Path) -> None:
    pl = pytest.importorskip("polars")
    df = clearsim.open_log(log).events(types=["fill"], frame="polars")
    assert isinstance(df, pl.DataFrame)
    assert df["qty"].sum() == Decimal("1.750")


def test_open_log_errors(log: Path, tmp_path: Path) -> None:
    from clearsim.events import LogError

    with pytest.raises(LogError):
        clearsim.open_log(tmp_path / "missing.log")
    from clearsim.replay.tables import TableError

    with pytest.raises(TableError):
        clearsim.open_log(log).events(types=["nope"])


def test_import_clearsim_stays_light() -> None:
    code = (
        "import sys, clearsim; print(sorted(m for m in ('pyarrow', 'pandas') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"


def test_readme_duckdb_query(log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    duckdb = pytest.importorskip("duckdb")
    from test_cli import cli

    monkeypatch.chdir(tmp_path)
    assert cli("export", log, "-o", "events.parquet").returncode == 0
    got = duckdb.sql("select type, count(*) from 'events.parquet' group by 1 order by 1").fetchall()
    assert dict(got) == {"input": 1, "deposit": 1, "mark_price": 1, "order_accepted": 1,
                         "fill": 2, "funding": 1, "clawback": 1, "halt": 1}  # fmt: skip
    [(qty,)] = duckdb.sql("select sum(qty) from 'events.parquet' where type = 'fill'").fetchall()
    assert qty == Decimal("1.750")


def test_config_units_decide_the_scale() -> None:
    from clearsim.replay.tables.units import Units

    u = Units(CONFIG)
    assert (u.price_scale, u.qty_scale, u.money_scale) == (1, 3, 6)
