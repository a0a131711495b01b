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
