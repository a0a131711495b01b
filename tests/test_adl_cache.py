"""The ADL ranking cache (``steps.adl.AdlCache``) picks exactly what the full ranking does.

With ``adl.CHECK`` on, every pick of the cached ranking is asserted equal to the ranking
recomputed the old way (every candidate scored, heapified); the runs below are
cascade-heavy, so thousands of picks over many steps of one command are checked.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from clearsim.clearing.steps import adl
from clearsim.events.log import LogReader
from clearsim.replay import scenarios as scn
from clearsim.replay.runner import run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adl, "CHECK", True)


def _run(sc: scn.Scenario, log: Path) -> Counter[str]:
    run(sc.config, list(sc.commands(sc.seed)), log, seed=sc.seed)
    return Counter(ev.TYPE for ev in LogReader(log).events())


@pytest.mark.usefixtures("checked")
def test_long_cascade_cached_picks_match_full_ranking(tmp_path: Path) -> None:
    sc = scn.load(ROOT / "fixtures" / "long_cascade" / "scenario.toml")
    kinds = _run(sc, tmp_path / "a.log")
    assert kinds["deleveraged"] > 0


@pytest.mark.usefixtures("checked")
def test_crash_cached_picks_match_full_ranking(tmp_path: Path) -> None:
    sc = scn.bundled("crash").with_population(3000)
    kinds = _run(sc, tmp_path / "a.log")
    assert kinds["deleveraged"] > 10


def test_check_catches_a_wrong_pick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard is live: a cache that forgets to re-score is caught."""
    monkeypatch.setattr(adl, "CHECK", True)
    monkeypatch.setattr(adl._Side, "rescore", lambda *a: None)
    monkeypatch.setattr(adl._Side, "ranking", _no_drop)
    sc = scn.bundled("crash").with_population(3000)
    with pytest.raises(AssertionError, match="ADL cache"):
        _run(sc, tmp_path / "a.log")


def _no_drop(self: adl._Side, exclude: str) -> object:
    # the heap as built, never re-scored: stale after the first deleveraging
    for _, neg, aid, _v, a in sorted(self.heap):
        if aid != exclude and not a.flagged:
            yield a, -neg
