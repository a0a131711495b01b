"""Golden logs (fixtures/): the engine still writes exactly the logs it wrote when they were
reviewed. Every fixture is re-run through ``clearsim run`` into a temp dir and must be
byte-identical to its ``golden.log``; each golden log's ``input`` events, fed to a fresh
exchange built from its header, must give the same event bodies; and each golden log still
shows what its fixture is for (fixtures/regenerate.py ``EXPECT``).

An intended change: ``python fixtures/regenerate.py``, then review ``git diff fixtures/``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from clearsim.clearing import Config, Exchange
from clearsim.events.codec import encode_event
from clearsim.events.log import LogReader
from clearsim.events.types import Input
from clearsim.replay.rebuild import command_of

ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = ROOT / "fixtures"


def _load_fixtures() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fixtures_regenerate", FIXTURES_DIR / "regenerate.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


fx = _load_fixtures()
NAMES: tuple[str, ...] = fx.FIXTURES


def clearsim_argv() -> list[str]:
    script = Path(sys.executable).with_name("clearsim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "clearsim"]


def _first_difference(a: bytes, b: bytes) -> str:
    la, lb = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(la, lb, strict=False)):
        if x != y:
            return f"line {i + 1} differs:\n golden: {x[:400]!r}\n now:    {y[:400]!r}"
    return f"golden has {len(la)} lines, the new log {len(lb)}"


def test_every_fixture_is_listed_and_has_its_golden_log() -> None:
    dirs = sorted(
        p.name for p in FIXTURES_DIR.iterdir() if p.is_dir() and not p.name.startswith("_")
    )
    assert sorted(NAMES) == dirs
    assert set(fx.EXPECT) == set(NAMES)
    total = 0
    for name in NAMES:
        g = fx.golden(name)
        assert g.exists(), f"{name}: no golden log; run python fixtures/regenerate.py"
        assert g.stat().st_size < 300_000, f"{name}: golden log over 300 KB"
        total += g.stat().st_size
    assert total < 2_000_000


@pytest.mark.parametrize("name", NAMES)
def test_golden_log_shows_what_the_fixture_is_for(name: str) -> None:
    assert fx.check(name, fx.golden(name)) == []


@pytest.mark.parametrize("name", NAMES)
def test_cli_rerun_is_byte_identical(name: str, tmp_path: Path) -> None:
    out = tmp_path / "run.log"
    proc = subprocess.run(
        [*clearsim_argv(), *fx.cli_args(name), "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    new, old = out.read_bytes(), fx.golden(name).read_bytes()
    assert new == old, (
        f"{name}: {_first_difference(old, new)}\n(intended? run python fixtures/regenerate.py)"
    )


@pytest.mark.parametrize("name", NAMES)
def test_refeeding_the_inputs_gives_the_same_event_bodies(name: str) -> None:
    reader = LogReader(fx.golden(name))
    ex = Exchange(Config.from_dict(reader.header.config))
    logged = list(reader.events())
    assert reader.torn is None
    produced = []
    for ev in logged:
        if type(ev) is Input:
            produced.extend(ex.apply(command_of(ev)))
    assert len(produced) == len(logged)
    for a, b in zip(logged, produced, strict=True):
        assert encode_event(a) == encode_event(b), f"{name}: seq {a.seq} differs"


def test_commands_fixtures_round_trip_through_the_runner(tmp_path: Path) -> None:
    # The in-process builder (what regenerate.py uses) agrees with the CLI's golden bytes.
    for name in ("book", "quiet_day"):
        out = tmp_path / f"{name}.log"
        fx.build(name, out)
        assert out.read_bytes() == fx.golden(name).read_bytes()
