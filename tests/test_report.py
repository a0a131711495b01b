"""``clearsim report LOG -o report.html``: one self-contained page per log (DESIGN §8).

Three kinds of test:

- the page's content, made in-process from the golden fixtures (fixtures/README.md), against
  hand-computed numbers: fixtures/fund_gap (fund 1000 USD pays the gap 10 x (90 - 88) = 20:
  minimum equity 980 USD), fixtures/clawback (a loss of 81 charged to the winners: mm 26,
  b1 19, b2 18, b3 18), fixtures/book (no ADL, no clawback, no system debt: three charts say
  so in their place) — and against the projections' own figures (``fold_fund``, ``Story``,
  ``cascades``) for fixtures/long_cascade;
- the verb as a user meets it, in subprocesses: output refused unless --force, never over
  its input, one ``error:`` line for a bad log or a missing plotly, a warning for a torn tail;
- the page in a real headless Chromium (Debian's /usr/bin/chromium, driven by playwright):
  no console error, no request leaves the file, every chart place rendered (plotly's
  ``.main-svg``) or saying there is no data, and a full-page PNG screenshot kept under
  pytest's tmp_path (and copied to ``$CLEARSIM_ARTIFACTS`` when set). The logs: the
  long_cascade fixture (book, backstop, ADL), the clawback fixture, and a BitMEX-preset
  variant of long_cascade run here (takeovers by the fund, then ADL).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli import assert_user_error

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
CHROMIUM = Path("/usr/bin/chromium")
#: Debian chromium as root in a closed network (see .ci/run): no sandbox, no GPU, and no
#: background connections (refused here, and each one a console error).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def golden(name: str) -> Path:
    return FIXTURES / name / "golden.log"


def report_cli(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m clearsim report ...`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "clearsim", "report", *map(str, args)],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip


def make_report(log: Path, out: Path) -> str:
    r = report_cli(log, "-o", out)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.startswith(f"report written to {out} ("), r.stdout
    return out.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- content


@pytest.fixture(scope="module")
def plotly() -> Any:
    return pytest.importorskip("plotly", reason="the report needs plotly (clearsim[report])")


def page_of(log: Path) -> Any:
    from clearsim.replay.report.log_report import log_report_html

    return log_report_html(log)


def in_json(text: str) -> str:
    """``text`` as plotly writes it inside a figure's JSON (``<``, ``>``, ``/`` escaped)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("/", "\\u002f")


def chart_ids(html: str) -> list[str]:
    return re.findall(r'<div class="chart" id="([^"]+)"', html)


def test_fund_gap_page_shows_the_hand_computed_minimum(plotly: Any) -> None:
    """fixtures/fund_gap: alice (bankruptcy 90) sold into the bid at 88, the fund of 1000
    USD pays 10 x 2 = 20 and ends at 980: start 1000, minimum 980, end 980."""
    from clearsim.replay.projections.fund import fold_fund

    page = page_of(golden("fund_gap"))
    f = fold_fund(golden("fund_gap"))
    assert (f.initial, f.low.low, f.equity) == (1000, 980, 980)
    html = page.html
    assert "<td>minimum equity</td><td>980 USD</td>" in html
    assert "<td>start</td><td>1000 USD</td>" in html
    assert "<td>end equity</td><td>980 USD</td>" in html
    assert "<td>paid</td><td>20 USD</td>" in html
    # the chart annotates the same three figures
    for label in ("<b>start</b> 1,000 USD", "<b>min</b> 980 USD", "<b>end</b> 980 USD"):
        assert in_json(label) in html, label


def test_clawback_page_charges_the_winners(plotly: Any) -> None:
    """fixtures/clawback: a loss of 81 (9 lots at 81 against bankruptcy 90, no fund)
    charged to the period's winners mm 26, b1 19, b2 18, b3 18; the bars plot those."""
    from clearsim.replay.projections.fund import fold_fund
    from clearsim.replay.report.log_data import clawback_per_account

    rows = clawback_per_account(fold_fund(golden("clawback")))
    assert [(r.account, r.amount) for r in rows] == [("mm", 26), ("b1", 19), ("b2", 18),
                                                     ("b3", 18)]  # fmt: skip
    html = page_of(golden("clawback")).html
    assert '"x":[26.0,19.0,18.0,18.0]' in html
    assert '"y":["mm","b1","b2","b3"]' in html
    assert "Clawback charged per account: 81 USD in all (4 accounts)" in html


def test_a_chart_without_data_says_so_in_its_place(plotly: Any) -> None:
    """fixtures/book: the book absorbs the liquidation, so no ADL, no clawback, no system
    debt: those three places say so; the other five are figures."""
    page = page_of(golden("book"))
    ids = chart_ids(page.html)
    assert ids == ["chart-price", "chart-liquidations", "chart-fund", "chart-adl",
                   "chart-clawback", "chart-debt", "chart-cascades", "chart-tree"]  # fmt: skip
    assert (page.charts, page.empty) == (8, 3)
    for cid, text in (("chart-adl", "No ADL in this log"),
                      ("chart-clawback", "No clawback in this log"),
                      ("chart-debt", "No system debt in this log")):  # fmt: skip
        assert re.search(f'<div class="chart" id="{cid}"><p class="no-data">{text}', page.html)
    plotted = re.findall(r'<div id="(chart-[a-z-]+)-plot" class="plotly-graph-div"', page.html)
    assert plotted == ["chart-price", "chart-liquidations", "chart-fund", "chart-cascades",
                       "chart-tree"]  # fmt: skip


def test_page_carries_the_projections_figures(plotly: Any, bitmex_log: Path) -> None:
    """Every figure is the projections' own, on the BitMEX-preset run (its fund goes below
    zero): fold_fund's minimum equity (exact, with its seq), the story's headline counts,
    the largest cascade's root; the liquidations chart sums to the story's steps; the page
    is self-contained (plotly.js inlined once, no script or stylesheet fetched)."""
    from clearsim.clearing.config import fmt_atoms
    from clearsim.replay.cli.verbs import read_story
    from clearsim.replay.projections.cascade import cascades
    from clearsim.replay.projections.fund import fold_fund
    from clearsim.replay.report.log_data import read_log_data

    log = bitmex_log
    page = page_of(log)
    html = page.html
    f = fold_fund(log)
    assert f.low.low < 0 < f.low.low_seq
    assert (
        f"<td>minimum equity</td><td>{fmt_atoms(f.low.low, 10**6)} USDT</td>"
        f"<td>at seq {f.low.low_seq:,}, " in html
    )
    story, _ = read_story(log)
    assert f'<div class="value">{len(story.liquidated):,}</div>' in html
    assert f'<div class="value">{story.events:,}</div>' in html
    top, _, _ = cascades(log, top=5)
    assert top and f"#1 seq {top[0].top:,}" in html
    data = read_log_data(log)
    assert sum(data.series.steps_per_minute.values()) == sum(story.steps.values()) > 0
    assert len(chart_ids(html)) == page.charts == 8
    assert not re.search(r"<script[^>]*\ssrc\s*=", html, re.I)
    assert not re.search(r"<link[^>]*\shref\s*=", html, re.I)
    assert not re.search(r"""src\s*=\s*["']?(https?:)?//""", html, re.I)
    assert len(re.findall(r"\* plotly\.js v\d", html)) == 1  # the bundle's banner, once


# --------------------------------------------------------------------------- the verb


def test_report_refuses_an_existing_output_unless_forced(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    out = tmp_path / "r.html"
    out.write_text("keep me")
    assert_user_error(report_cli(golden("book"), "-o", out), "already exists", "--force")
    assert out.read_text() == "keep me"
    r = report_cli(golden("book"), "-o", out, "--force")
    assert r.returncode == 0, r.stderr
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not (tmp_path / "r.html.partial").exists()


def test_report_never_writes_over_its_input(tmp_path: Path) -> None:
    log = tmp_path / "book.log"
    shutil.copyfile(golden("book"), log)
    assert_user_error(report_cli(log, "-o", log, "--force"), "is the input")
    assert log.read_bytes() == golden("book").read_bytes()


@pytest.mark.parametrize("content", [b"", b"not a log\n", b"\x00\x01binary"])
def test_report_of_a_file_that_is_not_a_log(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.log"
    bad.write_bytes(content)
    out = tmp_path / "r.html"
    assert_user_error(report_cli(bad, "-o", out), "bad.log")
    assert not out.exists() and not (tmp_path / "r.html.partial").exists()


def test_report_into_a_missing_directory_is_refused_before_the_work(tmp_path: Path) -> None:
    out = tmp_path / "no" / "r.html"
    assert_user_error(report_cli(golden("book"), "-o", out), "no such directory")
    assert not (tmp_path / "no").exists()


def test_report_of_a_missing_log(tmp_path: Path) -> None:
    assert_user_error(report_cli(tmp_path / "nope.log", "-o", tmp_path / "r.html"), "nope.log")


def test_report_of_a_torn_log_warns_and_reports_what_is_readable(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    data = golden("long_cascade").read_bytes()
    torn = tmp_path / "torn.log"
    torn.write_bytes(data[: len(data) - 40])
    out = tmp_path / "r.html"
    r = report_cli(torn, "-o", out)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("warning: torn tail"), r.stderr
    html = out.read_text(encoding="utf-8")
    assert "The log's tail is torn: torn tail at line" in html
    assert len(chart_ids(html)) == 8


def test_report_without_plotly_names_the_extra(tmp_path: Path) -> None:
    """plotly hidden from the interpreter: one error line naming the install, no output."""
    out = tmp_path / "r.html"
    code = (
        "import sys; sys.modules['plotly'] = None; sys.modules['plotly.graph_objects'] = None\n"
        "from clearsim.replay.cli import main\n"
        f"sys.exit(main(['report', {str(golden('book'))!r}, '-o', {str(out)!r}]))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, check=False)  # fmt: skip
    assert_user_error(r, "pip install 'clearsim[report]'")
    assert not out.exists()


def test_a_parquet_input_goes_to_the_sweep_report(tmp_path: Path) -> None:
    """A sweep's results (.parquet) are not read as a log: without the sweep module, one
    error line says what is missing."""
    import importlib.util

    if importlib.util.find_spec("clearsim.replay.sweep") is not None:
        pytest.skip("the sweep module is installed: its own tests cover sweep reports")
    results = tmp_path / "results.parquet"
    results.write_bytes(b"PAR1")
    assert_user_error(report_cli(results, "-o", tmp_path / "r.html"), "sweep reports need")


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM}: Debian's chromium is not installed (apt-get install chromium)")
    pw = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    pytest.importorskip("plotly", reason="the report needs plotly (clearsim[report])")
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def bitmex_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fixtures/long_cascade under ``preset = "bitmex"`` (its own [waterfall] dropped, so the
    preset's takeover -> adl applies): the fund takes positions over, then ADL."""
    d = tmp_path_factory.mktemp("bitmex")
    text = (FIXTURES / "long_cascade" / "scenario.toml").read_text()
    head, rest = text.split("\n[waterfall]\n", 1)
    rest = rest[rest.index("\n[[instruments]]\n") :]
    text = head.replace('mark = "oracle"', 'mark = "oracle"\npreset = "bitmex"', 1) + rest
    scenario = d / "bitmex.toml"
    scenario.write_text(text)
    log = d / "bitmex.log"
    r = subprocess.run([sys.executable, "-m", "clearsim", "run", str(scenario), "-o", str(log)],
                       capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    from clearsim.replay.cli.verbs import read_story

    story, _ = read_story(log)
    assert story.config["exchange"]["preset"] == "bitmex"
    assert story.takeover.count > 0 and story.adl.count > 0
    return log


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    w, h = struct.unpack(">II", head[16:24])
    return int(w), int(h)


def _open_in_chromium(browser: Any, page_path: Path, shot: Path) -> dict[str, Any]:
    """Open the page offline, wait for every chart, screenshot it; what the browser saw."""
    problems: list[str] = []
    outside: list[str] = []
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)  # fmt: skip
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def only_the_file(route: Any) -> None:
        url = route.request.url
        if url.startswith("file://"):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", only_the_file)
    try:
        # Generous: plotly draws while the page loads, and a loaded machine is slow at it.
        page.goto(page_path.as_uri(), timeout=300_000)
        page.wait_for_function(
            """() => [...document.querySelectorAll('div.chart')].every(c =>
                   c.querySelector('.no-data') ||
                   c.querySelector('.js-plotly-plot .main-svg'))""",
            timeout=300_000,
        )
        charts = page.eval_on_selector_all(
            "div.chart",
            """cs => cs.map(c => ({id: c.id,
                  plotted: !!c.querySelector('.js-plotly-plot .main-svg'),
                  empty: !!c.querySelector('.no-data'),
                  height: c.getBoundingClientRect().height}))""",
        )
        page.screenshot(path=str(shot), full_page=True)
    finally:
        ctx.close()
    return {"problems": problems, "outside": outside, "charts": charts}


@pytest.mark.parametrize("which", ["long_cascade", "clawback", "bitmex"])
def test_report_renders_in_headless_chromium(
    which: str, browser: Any, bitmex_log: Path, tmp_path: Path
) -> None:
    log = bitmex_log if which == "bitmex" else golden(which)
    out = tmp_path / f"report-{which}.html"
    html = make_report(log, out)
    expected = chart_ids(html)
    assert len(expected) == 8
    empty = set(re.findall(r'<div class="chart" id="([^"]+)"><p class="no-data">', html))
    shot = tmp_path / f"report-{which}.png"
    seen = _open_in_chromium(browser, out, shot)
    assert seen["problems"] == []
    assert seen["outside"] == []
    assert [c["id"] for c in seen["charts"]] == expected
    for c in seen["charts"]:
        assert c["plotted"] != c["empty"], c
        assert c["empty"] == (c["id"] in empty), c
        assert c["height"] > 40, c
    if which == "bitmex":
        # the fund took positions over: its cash and equity part, ADL happened
        assert "chart-adl" not in empty and "(here they never do" not in html
    width, height = _png_size(shot)
    assert width == 1280 and height > 3000
    artifacts = os.environ.get("CLEARSIM_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(artifacts) / shot.name)
