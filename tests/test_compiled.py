"""The opt-in compiled build (``CLEARSIM_MYPYC=1``, ``setup.py``) behaves like the pure one.

The real wheel is built from a copy of the checkout with mypyc, installed into a folder of
its own, and then every golden fixture is re-run through it and must give its
``golden.log`` byte for byte — and the bundled crash scenario must give the same log as the
interpreted build in this checkout. So a change that the compiler would treat differently
(tuple identity, an annotation that is a lie, integer overflow) fails here, not in a user's
sweep. Skipped, with the reason, where mypy or a C compiler is missing; CI has both.
"""

from __future__ import annotations

import runpy
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from test_golden import fx
from wheels import build_wheel, install, python_from

#: one xdist worker takes the whole file (pyproject: --dist loadgroup): the wheel is built once
pytestmark = pytest.mark.xdist_group("compiled_wheel")

ROOT = Path(__file__).resolve().parents[1]


def _compiled_paths() -> list[str]:
    """setup.py's COMPILED (read without building: setup() runs only as ``__main__``)."""
    paths: list[str] = runpy.run_path(str(ROOT / "setup.py"), run_name="setup")["COMPILED"]
    return paths


def _why_not() -> str | None:
    try:
        import mypyc.build  # noqa: F401 - only whether it is there
    except ImportError:
        return "mypy (mypyc) is not installed: pip install 'mypy>=1.8'"
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return f"no C compiler ({cc}) on this machine"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return "the Python headers (Python.h) are not installed"
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled wheel, built from a copy of the checkout and installed into a folder."""
    why = _why_not()
    if why is not None:
        pytest.skip(f"compiled build not tried: {why}")
    whl = build_wheel(
        tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel"), {"CLEARSIM_MYPYC": "1"}
    )
    names = zipfile.ZipFile(whl).namelist()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"clearsim"}
    for path in _compiled_paths():
        stem = path.removesuffix(".py")
        assert any(n.startswith(stem + ".cpython-") and n.endswith(".so") for n in names), path
    dest = tmp_path_factory.mktemp("site")
    install(whl, dest)
    return dest


def test_the_compiled_modules_are_the_ones_imported(site: Path, tmp_path: Path) -> None:
    code = (
        "import clearsim.clearing.exchange as e, clearsim.orderbook.book as b\n"
        "print(e.__file__); print(b.__file__)\n"
    )
    p = python_from(site, ["-c", code], tmp_path)
    assert p.returncode == 0, p.stderr
    exchange, book = p.stdout.split()
    assert exchange.startswith(str(site)) and exchange.endswith(".so"), exchange
    assert book.startswith(str(site)) and book.endswith(".py"), book  # left interpreted


@pytest.mark.parametrize("name", fx.FIXTURES)
def test_golden_fixture_is_byte_identical_through_the_compiled_build(
    site: Path, name: str, tmp_path: Path
) -> None:
    out = tmp_path / "run.log"
    p = python_from(site, ["-m", "clearsim", *fx.cli_args(name), "-o", str(out)], tmp_path)
    assert p.returncode == 0, p.stderr
    assert out.read_bytes() == fx.golden(name).read_bytes(), name


def test_the_crash_scenario_gives_the_interpreted_builds_log(site: Path, tmp_path: Path) -> None:
    """The bundled crash scenario (``clearsim demo``'s: thousands of accounts, a 30% drop,
    liquidations down the waterfall), far more paths than the small fixtures."""
    crash = ROOT / "replay" / "scenarios" / "crash.toml"
    compiled, interpreted = tmp_path / "c.log", tmp_path / "i.log"
    p = python_from(
        site, ["-m", "clearsim", "run", str(crash), "-o", str(compiled), "--quiet"], tmp_path
    )
    assert p.returncode == 0, p.stderr
    q = subprocess.run(
        [sys.executable, "-m", "clearsim", "run", str(crash), "-o", str(interpreted), "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert q.returncode == 0, q.stderr
    assert compiled.read_bytes() == interpreted.read_bytes()
