"""``clearsim cascade`` (DESIGN §8): the tree of caused events, with totals.

The three-step cascade of tests/test_waterfall.py (steps book + adl, market price limit, mid
mark, fund 1000): the seller's sell of 10 at 99 moves the mark to 95 and triggers a1 (equity
40 < 48), whose book fill at 89 (bankruptcy 91) moves the mark to 93 and triggers a2, whose
fill at 85 (bankruptcy 89) triggers a3, filled at 81 (bankruptcy 87). Hand-checked totals:
3 accounts liquidated, 30 lots closed in the book, none by backstop/takeover/ADL, the fund
pays (91-89) x 10 + (89-85) x 10 + (87-81) x 10 = 20 + 40 + 60 = 120, nothing clawed back,
no system debt; the tree runs from the input at seq 46 to seq 74: 29 events.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_verify import assert_user_error, cli, write_log

from clearsim.replay.cli.render import cascade_json as render_json
from clearsim.replay.cli.render import cascade_text as render_text
from clearsim.replay.projections.cascade import cascades

ROOT = 46  # the seller's order, the last input (seq read off the log once, by hand)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return write_log(tmp_path / "w.log")


def test_largest_cascade_totals(log: Path) -> None:
    cs, _, _ = cascades(log)
    assert [c.top for c in cs] == [ROOT]  # the only input with liquidations under it
    t = cs[0].totals
    assert t["events"] == 29 and t["liquidations"] == 3 and t["accounts_liquidated"] == 3
    assert t["closed"] == {"book": {"X": "30"}, "backstop": {}, "takeover": {}, "adl": {}}
    assert (t["fund_paid"], t["clawed_back"], t["system_debt"]) == ("120", "0", "0")
    assert cs[0].seqs == list(range(ROOT, ROOT + 29))


def test_from_a_trigger_inside_the_cascade(log: Path) -> None:
    cs, idx, fmt = cascades(log)
    a2 = next(
        s
        for s in cs[0].seqs
        if cs[0].records[s]["type"] == "liquidation_triggered"
        and cs[0].records[s]["account"] == "a2"
    )
    (c,), idx, fmt = cascades(log, start=a2)
    assert c.totals["accounts_liquidated"] == 2  # a2 and a3 (a1 is its cause, not its child)
    assert c.totals["fund_paid"] == "100"  # 40 + 60
    text = "\n".join(render_text([c], idx, fmt))
    assert f"cascade from seq {a2} (liquidation_triggered), under input seq {ROOT}" in text
    assert "liquidation_triggered account=a3" in text and "account=a1 " not in text


def test_text_collapses_deep_and_wide_trees(log: Path) -> None:
    cs, idx, fmt = cascades(log)
    text = render_text(cs, idx, fmt, depth=3, width=1)
    assert any("more below" in ln for ln in text)
    assert len(text) < 15


def test_cli_text_and_json(log: Path) -> None:
    r = cli("cascade", log)
    assert r.returncode == 0, r
    assert "fund paid 120" in r.stdout and "liquidations 3 (3 accounts)" in r.stdout
    r = cli("cascade", log, "--from", str(ROOT), "--json")
    assert r.returncode == 0, r
    j = json.loads(r.stdout)
    (c,) = j["cascades"]
    assert c["from"] == ROOT and c["totals"]["fund_paid"] == "120"
    assert [e["seq"] for e in c["events"]] == list(range(ROOT, ROOT + 29))
    cs, idx, fmt = cascades(log, start=ROOT)
    assert render_json(cs, idx, fmt) == j


def test_no_liquidations(tmp_path: Path) -> None:
    from test_verify import T0, waterfall_config

    from clearsim.clearing import Config
    from clearsim.replay.runner import run

    p = tmp_path / "calm.log"
    run(
        Config.from_dict(waterfall_config()),
        [{"type": "deposit", "ts": T0, "account": "x", "amount": "1"}],
        p,
    )
    cs, idx, fmt = cascades(p)
    assert cs == [] and "no cascades" in render_text(cs, idx, fmt)[0]


def test_cli_errors(log: Path, tmp_path: Path) -> None:
    assert_user_error(cli("cascade", tmp_path / "missing.log"))
    assert_user_error(cli("cascade", log, "--from", "9999"))
    assert_user_error(cli("cascade", log, "--from", "x"))
    assert_user_error(cli("cascade", log, "--top", "0"))


# --------------------------------------------------------------------------- issue 13


def test_generations_price_move_and_impact(log: Path) -> None:
    """a1 is liquidated by the seller's order (the price), a2 by a1's liquidation order
    (it moved the mark), a3 by a2's: generations 1, 2, 3. The liquidation orders filled
    at 89, 85, 81: from 89 to 81. The mark (mid) went from 100 (99/101) to 75."""
    (c,), idx, fmt = cascades(log)
    f = c.figures
    assert f.by_generation == {1: 1, 2: 1, 3: 1}
    assert (f.by_price, f.by_liquidation, f.generations) == (1, 2, 3)
    r = f.liquidation_fills["X"]
    assert (r.first, r.last, r.count) == (89, 81, 3)
    m = f.prices["X"]
    assert (m.mark_before, m.mark_after, m.index_before, m.index_after) == (100, 75, None, None)
    text = "\n".join(render_text([c], idx, fmt))
    assert f"cascade from seq {ROOT} (input), at 2023-11-14 22:13:20.0000" in text
    assert "X: index -; mark 100 -> 75 (-25.00%)" in text
    assert "1 by the price, 2 by other liquidations (by generation 1: 1, 2: 1, 3: 1)" in text
    assert "closed: book 30 X" in text
    assert "liquidation orders on X filled from 89 to 81 (-8.99%, 3 fills)" in text
    assert "fund paid 120 USD, took in 0 USD (equity 1000 USD -> 880 USD)" in text
    assert "qty=10 X" in text and "fund_paid=20 USD" in text


def test_time_format_table_and_json_units(log: Path) -> None:
    r = cli("cascade", log, "--time", "2023-11-14T22:13:20Z", "--format", "json")
    assert r.returncode == 0, r
    j = json.loads(r.stdout)
    (c,) = j["cascades"]
    assert c["from"] == ROOT and j["collateral"] == "USD"
    assert c["totals"]["by_generation"] == {"1": 1, "2": 1, "3": 1}
    assert c["totals"]["liquidation_fills"] == {"X": {"first": "89", "last": "81", "count": 3}}
    fills = [e for e in c["events"] if e["type"] == "liquidation_fill"]
    assert [e["fund_paid"] for e in fills] == ["20", "40", "60"]  # decimals, as in the text
    assert cli("cascade", log, "--json").stdout == cli("cascade", log, "--format", "json").stdout
    t = cli("cascade", log, "--format", "table")
    assert t.returncode == 0 and len(t.stdout.splitlines()) == 2
    assert f"{ROOT}" in t.stdout.splitlines()[1] and "120" in t.stdout.splitlines()[1]
    assert_user_error(cli("cascade", log, "--time", "2030-01-01T00:00:00Z"))
    assert_user_error(cli("cascade", log, "--time", "2023-11-14T22:13:20"))  # no offset
    assert_user_error(cli("cascade", log, "--from", "1", "--time", "1"))


def test_fund_paid_is_the_storys_for_every_root(tmp_path: Path) -> None:
    """One definition of "fund paid" (fund_flows): the cascade of each root pays what the
    story's cascade of that root paid, on a scenario with many cascades."""
    from clearsim.events.log import LogReader
    from clearsim.replay import scenarios as scn
    from clearsim.replay.projections.story import Story
    from clearsim.replay.runner import run

    sc = scn.load(Path(__file__).parents[1] / "fixtures" / "long_cascade" / "scenario.toml")
    p = tmp_path / "long.log"
    run(sc.config, sc.commands(sc.seed), p, seed=sc.seed)
    reader = LogReader(p)
    story = Story(reader.header.config).feed_all(reader.events())
    roots = story.cascades.cascades
    assert len(roots) > 3 and any(c.fund_paid for c in roots.values())
    found, _, fmt = cascades(p, top=len(roots))
    assert {c.top for c in found} == set(roots)
    for c in found:
        s = roots[c.top]
        assert (c.figures.fund_paid, c.figures.fund_took_in) == (s.fund_paid, s.fund_took_in)
        assert (c.figures.fund_equity_before, c.figures.fund_equity_after) == (
            s.fund_equity_before, s.fund_equity_after)  # fmt: skip
        assert c.totals["fund_paid"] == fmt.money(s.fund_paid)
