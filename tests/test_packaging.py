"""The distribution installs one import name, ``clearsim`` (DESIGN §2).

``events``, ``orderbook``, ``clearing`` and ``replay`` are names of other PyPI
distributions; a wheel that put them in site-packages would overwrite those packages or be
shadowed by them. These tests build the real wheel from this checkout and read its file
list, and check the public API and the module entry point from a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from wheels import LAYERS, build_wheel, install, python_from

import clearsim

#: one xdist worker takes the whole file (pyproject: --dist loadgroup): the wheel is built once
pytestmark = pytest.mark.xdist_group("wheel")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the checkout (the build writes into its source tree)."""
    return build_wheel(tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel"))


def test_wheel_has_one_top_level_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if ".dist-info/" not in n}
    assert top == {"clearsim"}


def test_wheel_holds_every_layer_and_the_bundled_scenarios(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for layer in LAYERS:
        assert f"clearsim/{layer}/__init__.py" in names
    assert "clearsim/clearing/exchange.py" in names
    assert "clearsim/replay/scenarios/crash.toml" in names
    assert "clearsim/replay/scenarios/black-thursday.toml" in names
    assert "clearsim/replay/scenarios/black-thursday-XBTUSD-1m.csv" in names
    assert "clearsim/replay/sweep/cell.py" in names
    assert "clearsim/__main__.py" in names
    # The real files, not symlinks or their targets' paths.
    assert not any(n.startswith(("events/", "clearing/", "replay/", "orderbook/")) for n in names)


def test_installed_wheel_finds_the_bundled_market_beside_its_scenario(
    wheel: Path, tmp_path: Path
) -> None:
    """Installed from the wheel (no checkout on the path), ``black-thursday`` resolves its
    bars file inside the installed package, and its market streams the whole day."""
    site = tmp_path / "site"
    install(wheel, site)
    code = (
        "import clearsim; from clearsim.replay import scenarios as s\n"
        "p = s.bundled_path('black-thursday'); sc = s.bundled('black-thursday')\n"
        "print(clearsim.__file__); print(p); print(sc.market.files[0])\n"
        "print(sum(1 for c in sc.commands() if c['type'] == 'index_price'))\n"
    )
    run = python_from(site, ["-c", code], tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    where, toml, bars, prices = run.stdout.split()
    for path in (where, toml, bars):
        assert path.startswith(str(site)), path  # the installed copy, not the checkout
    assert Path(bars).name == "black-thursday-XBTUSD-1m.csv"
    assert prices == "5760"  # 1,440 bars x open, high/low, low/high, close


def test_public_api_is_what_all_promises() -> None:
    assert set(clearsim.__all__) == {
        "Config",
        "ConfigError",
        "Exchange",
        "LogReader",
        "LogWriter",
        "RunSummary",
        "__version__",
        "open_log",
        "run",
    }
    for name in clearsim.__all__:
        assert getattr(clearsim, name) is not None
    assert clearsim.__version__[0].isdigit()


def test_fresh_interpreter_imports_and_runs_the_module_entry_point(tmp_path: Path) -> None:
    code = (
        "from clearsim import Exchange; import clearsim.events, clearsim.replay.cli; "
        "ex = Exchange.from_dict({'instruments': [{'symbol': 'X', 'tick_size': '1', "
        "'lot_size': '1', 'tiers': [{'max_notional': '1000', 'imr_ppm': 100000, "
        "'mmr_ppm': 50000}]}]}); "
        "print(type(ex.apply({'type': 'deposit', 'ts': 1, 'account': 'a', "
        "'amount': '5'})[-1]).__name__)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Deposit"
    help_ = subprocess.run(
        [sys.executable, "-m", "clearsim", "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    assert help_.returncode == 0, help_.stderr
    assert "demo" in help_.stdout
