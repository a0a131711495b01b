"""The bundled Black Thursday scenario (replay/scenarios/black-thursday.toml): BitMEX XBTUSD
on 2020-03-12, its real 1-minute bars as the market, the ``bitmex`` preset, traders arriving
all day. It is found inside the package (importlib.resources), its bars are the shared
BitMEX file's exactly, and a full run has the shape a risk engineer expects of that day.

The crash windows, read off the bars (UTC): 10:30 (open 7,203.5) to the 10:48 low of 5,600
(-22%) with a second leg to 5,699 at 11:02; and 23:09 (open 5,722.5) to the 23:50 low of
4,266 (-25%). The tests take [10:30, 11:05) and [23:05, 24:00).
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from clearsim.events.log import LogReader
from clearsim.events.types import Deleveraged, LiquidationTriggered
from clearsim.replay import scenarios as scn
from clearsim.replay.cli.render import story_text
from clearsim.replay.cli.verbs import read_story
from clearsim.replay.projections.story import Story

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "bitmex" / "XBTUSD-1m-2020-03-12.json"
DAY = 1_583_971_200_000_000  # 2020-03-12T00:00:00Z
MIN = 60_000_000
WINDOWS = ((DAY + 630 * MIN, DAY + 665 * MIN), (DAY + 1385 * MIN, DAY + 1440 * MIN))
XBT = 10**8


def in_windows(ts: int) -> bool:
    return any(a <= ts < b for a, b in WINDOWS)


def test_found_inside_the_package_with_its_bars_beside_it() -> None:
    pkg = resources.files("clearsim.replay.scenarios")
    assert Path(str(pkg.joinpath("black-thursday.toml"))) == scn.bundled_path("black-thursday")
    sc = scn.bundled("black-thursday")
    assert isinstance(sc.market, scn.MarketImport)
    (bars,) = sc.market.files
    assert bars == Path(str(pkg.joinpath("black-thursday-XBTUSD-1m.csv")))
    assert sc.symbol == "XBTUSD" and sc.config.instruments[0].inverse
    assert sc.config.waterfall.steps == ("takeover", "adl")  # the bitmex preset
    assert sc.start_ts == DAY and sc.end_ts() == DAY + 1439 * MIN + 45_000_000
    assert isinstance(sc.population.arrivals, scn.PoissonArrivals)
    with pytest.raises(scn.ScenarioError, match="no such scenario"):
        scn.bundled("nope")


@pytest.mark.skipif(not SHARED.exists(), reason=f"shared market data not found at {SHARED}")
def test_bundled_bars_are_the_bitmex_buckets_unchanged() -> None:
    raw = json.loads(SHARED.read_text(), parse_float=Decimal)
    rows = scn.bundled_path("black-thursday").with_name("black-thursday-XBTUSD-1m.csv")
    lines = rows.read_text().splitlines()
    assert lines[0] == "timestamp,open,high,low,close" and len(lines) == 1 + 1440
    for bar, line in zip(raw, lines[1:], strict=True):
        ts, *ohlc = line.split(",")
        assert ts == bar["timestamp"].replace(".000Z", "Z")
        assert [Decimal(v) for v in ohlc] == [
            Decimal(bar[k]) for k in ("open", "high", "low", "close")
        ]


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Story]:
    """The README's command, from a directory that is not the checkout: ``clearsim run
    replay/scenarios/black-thursday.toml -o bt.log``; the story folded from that log."""
    log = tmp_path_factory.mktemp("bt") / "bt.log"
    toml = ROOT / "replay" / "scenarios" / "black-thursday.toml"
    r = subprocess.run(
        [sys.executable, "-m", "clearsim", "run", str(toml), "-o", str(log)],
        capture_output=True,
        text=True,
        cwd=log.parent,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no progress in a pipe, no log line beside the summary
    story, torn = read_story(log)
    assert torn is None
    return log, r.stdout, story


def test_the_population_arrives_all_day_and_enters(day: tuple[Path, str, Story]) -> None:
    _, out, story = day
    e = story.entry_orders.totals()
    assert "(0 rejected)" in out and not story.rejected
    assert 4_500 <= e.orders <= 5_000  # 3.4 a minute over the day: ~4,900 of the 5,000
    assert e.did_not_fill < e.orders // 20  # the makers' book takes most of them
    # The run's own count (stdout) and the story's, read off the log, agree.
    assert f"{e.did_not_fill:,} of {e.orders:,} entry orders (IOC/FOK/market)" in out
    r = story.index["XBTUSD"]
    assert (r.first, r.low, r.last) == (15863, 8532, 9068)  # 7,931.5 -> 4,266 -> 4,534
    assert r.low_ts == DAY + 1430 * MIN + 15_000_000  # the 23:50 bar's low, at +15 s


def test_most_liquidations_fall_in_the_two_crash_windows(
    day: tuple[Path, str, Story],
) -> None:
    log, _, story = day
    liq = [e.ts for e in LogReader(log).events() if isinstance(e, LiquidationTriggered)]
    assert len(liq) == story.triggered >= 1_500
    share = sum(map(in_windows, liq)) / len(liq)
    assert share >= 0.75, share
    for a, b in WINDOWS:
        assert sum(a <= t < b for t in liq) >= 500  # both crashes, not one


def test_the_fund_runs_dry_at_the_first_low_and_adl_follows(
    day: tuple[Path, str, Story],
) -> None:
    """The bitmex preset: the fund takes each failing position over at its bankruptcy price
    and offers it there; falling through those prices it loses, and ADL starts exactly when
    its own equity goes below zero (at the 10:48 low), closing it against profitable shorts.
    By the end of the day the fund is back above zero, well below its 20 XBT."""
    log, _, story = day
    f = story.fund
    assert f.start == 20 * XBT
    assert f.min_equity < 0 and WINDOWS[0][0] <= f.min_ts < WINDOWS[0][1]
    assert f.empty_ts == f.min_ts == DAY + 648 * MIN + 30_000_000  # 10:48:30
    assert 0 < f.equity < f.start
    assert story.takeover.count >= 1_500 and story.book.count == 0
    assert story.adl.count > 0 and story.adl.first_ts == f.empty_ts
    adl = [e.ts for e in LogReader(log).events() if isinstance(e, Deleveraged)]
    assert sum(map(in_windows, adl)) / len(adl) >= 0.95
    text = story_text(story)
    assert "ran dry (equity at or below zero) at" in text and "adl" in text
    assert "entry orders (IOC/FOK/market) did not fill" in text


def test_cli_tells_the_story(day: tuple[Path, str, Story]) -> None:
    """``clearsim story bt.log``, as the README shows it."""
    log, _, _ = day
    r = subprocess.run(
        [sys.executable, "-m", "clearsim", "story", str(log)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "XBTUSD index 7931.5 -> low 4266.0" in r.stdout and "Insurance fund" in r.stdout


def test_demo_takes_a_bundled_scenario_by_name() -> None:
    """``clearsim demo --scenario black-thursday`` (its banner; the run is the fixture's),
    and an unknown name is one error line."""
    from clearsim.replay.cli.render import demo_banner

    banner = demo_banner(scn.bundled("black-thursday"), 2020)
    assert banner.startswith("clearsim demo: 'black-thursday' (seed 2020): 5,000 leveraged")
    assert "a historical day from 2020-03-12 00:00:00 UTC on XBTUSD" in banner
    assert "waterfall takeover -> adl" in banner
    r = subprocess.run(
        [sys.executable, "-m", "clearsim", "demo", "--scenario", "../etc/passwd"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("error: bundled scenario '../etc/passwd': not a scenario name")
