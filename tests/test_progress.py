"""Progress on a terminal (replay/cli/progress.py): ``run``, ``verify``, ``import``, ``diff``,
``fund`` and ``cascade`` show it on stderr when stderr is a terminal (a pseudo-terminal here)
and ``rich`` is installed; a pipe, ``--quiet`` or a missing ``rich`` get nothing, and the
verb's result is the same. The domain functions' ``progress`` callbacks (and the log
reader's, which they use) are tested in-process: counts that increase, the same result."""

from __future__ import annotations

import gzip
import itertools
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from clearsim.events import log as log_module
from clearsim.events.log import PROGRESS_EVERY, LogReader
from clearsim.replay.diff import diff
from clearsim.replay.projections.cascade import cascades
from clearsim.replay.projections.fund import fold_fund

pytest.importorskip("rich")

ROOT = Path(__file__).resolve().parents[1]
CRASH = ROOT / "replay" / "scenarios" / "crash.toml"
BARS = ROOT / "replay" / "scenarios" / "black-thursday-XBTUSD-1m.csv"


def _on_pty(args: list[str], code: str | None = None) -> tuple[int, str, str]:
    """Run ``clearsim ARGS`` (or ``python -c CODE``) with stderr on a pseudo-terminal:
    (exit status, stdout, what the terminal received). Stdout goes to a temporary file, not
    a pipe: a pipe read only after the terminal closes would fill up and hang a verb whose
    output is larger than the pipe's buffer (``fund --json``)."""
    master, slave = pty.openpty()
    argv = [sys.executable, "-c", code] if code else [sys.executable, "-m", "clearsim", *args]
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160"}
    for k in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(k, None)
    with tempfile.TemporaryFile() as stdout:
        p = subprocess.Popen(
            argv, stdout=stdout, stderr=slave, stdin=subprocess.DEVNULL, cwd=ROOT, env=env
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        rc = p.wait(timeout=300)
        stdout.seek(0)
        out = stdout.read().decode()
    return rc, out, b"".join(chunks).decode("utf-8", "replace")


def _pipe(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearsim", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_run_and_verify_show_progress_on_a_terminal(tmp_path: Path) -> None:
    log = tmp_path / "crash.log"
    rc, out, term = _on_pty(["run", str(CRASH), "-o", str(log)])
    assert rc == 0, term
    assert "20844 commands (0 rejected)" in out  # the result, on stdout, as in a pipe
    assert "run" in term and " events" in term and "/s" in term
    assert "ETA" in term and "2023-11-14" in term  # total known (the path), simulated clock
    rc, out, term = _on_pty(["verify", str(log)])
    assert rc == 0 and out.startswith("OK ")
    assert "verify" in term and " events" in term and "ETA" in term


def test_import_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    rc, out, term = _on_pty(
        ["import", "bars", str(BARS), "--path", "ohlc", "-o", str(tmp_path / "day.jsonl")]
    )
    assert rc == 0, term
    assert "1,440 rows read" in out
    assert "import" in term and " rows" in term


def test_a_pipe_and_quiet_get_no_progress(tmp_path: Path) -> None:
    log = tmp_path / "crash.log"
    r = _pipe(["run", str(CRASH), "-o", str(log)])
    assert r.returncode == 0 and r.stderr == ""
    r = _pipe(["verify", str(log)])
    assert r.returncode == 0 and r.stderr == ""
    rc, out, term = _on_pty(["run", str(CRASH), "-o", str(tmp_path / "q.log"), "--quiet"])
    assert rc == 0 and term == "" and "20844 commands" in out
    rc, _, term = _on_pty(["verify", str(log), "-q"])
    assert rc == 0 and term == ""


def test_without_rich_a_terminal_gets_nothing_and_the_run_works(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['rich'] = None\n"  # import rich -> ImportError
        "from clearsim.replay.cli import main\n"
        f"sys.exit(main(['run', {str(CRASH)!r}, '-o', {str(tmp_path / 'n.log')!r}]))\n"
    )
    rc, out, term = _on_pty([], code=code)
    assert rc == 0, term
    assert term == "" and "20844 commands" in out


# --------------------------------------------------------------------------- diff, fund, cascade

#: The bundled crash cut down (300 accounts, 1,100 s, the rebound brought forward): about
#: 25,000 events (5 MB) with a cascade in them, so every verb's callback fires (the careful
#: scan every PROGRESS_EVERY records) while each verb takes a second or two.
_SMALL = {
    "count = 4000": "count = 300",
    "steps = 1800 ": "steps = 1100 ",
    "at_s = 1300, move_ppm = 60000, over_s = 200": "at_s = 1050, move_ppm = 60000, over_s = 40",
}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two logs of the small crash (seeds 42 and 43)."""
    d = tmp_path_factory.mktemp("progress")
    text = CRASH.read_text()
    for old, new in _SMALL.items():
        assert old in text, old  # crash.toml changed: update _SMALL
        text = text.replace(old, new)
    scenario = d / "small.toml"
    scenario.write_text(text)
    out = []
    for seed in (42, 43):
        log = d / f"small-{seed}.log"
        r = _pipe(["run", str(scenario), "-o", str(log), "--seed", str(seed), "-q"])
        assert r.returncode == 0, r.stderr
        out.append(log)
    n = _records(out[0])
    assert n > 4 * PROGRESS_EVERY, n  # several callbacks of the careful scan
    return out[0], out[1]


_VERBS = {
    "fund --json": (["fund", "{a}", "--json"], "fund", 0),
    "fund --csv": (["fund", "{a}", "--csv"], "fund", 0),
    "cascade --json": (["cascade", "{a}", "--json"], "cascade", 0),
    "diff": (["diff", "{a}", "{b}"], "diff", 1),  # different seeds: exit 1
}
_RATE = re.compile(r"[\d,]+ events [\d,]+/s")


@pytest.mark.parametrize("verb", list(_VERBS))
def test_diff_fund_cascade_show_progress_on_a_terminal_only(
    verb: str, logs: tuple[Path, Path]
) -> None:
    template, what, status = _VERBS[verb]
    args = [t.format(a=logs[0], b=logs[1]) for t in template]
    rc, out, term = _on_pty(args)
    assert rc == status, term
    assert what in term and _RATE.search(term), term  # the count in its unit, and a rate
    assert "ETA" in term  # the total is known: the logs' bytes
    rc, quiet_out, quiet_term = _on_pty([*args, "--quiet"])
    assert rc == status and quiet_term == ""
    r = _pipe(args)
    assert r.returncode == status and r.stderr == ""  # a pipe gets nothing
    assert out == quiet_out == r.stdout  # byte-identical results
    assert out.strip()


def test_a_gz_log_shows_progress_without_a_total(logs: tuple[Path, Path], tmp_path: Path) -> None:
    gz = tmp_path / "small.log.gz"
    with open(logs[0], "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    rc, out, term = _on_pty(["fund", str(gz), "--json"])
    assert rc == 0, term
    assert _RATE.search(term) and "ETA" not in term  # uncompressed size unknown: no ETA
    assert out == _pipe(["fund", str(logs[0]), "--json"]).stdout


class _Calls:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, events: int, offset: int) -> None:
        self.calls.append((events, offset))

    def check(self, events: int | None, size: int | None) -> None:
        """Called, with counts increasing and offsets never going back; the last call at
        ``events`` records and ``size`` bytes when given."""
        calls = self.calls
        assert calls
        assert all(a[0] < b[0] and a[1] <= b[1] for a, b in itertools.pairwise(calls)), calls
        if events is not None:
            assert calls[-1][0] == events
        if size is not None:
            assert calls[-1][1] == size


def _records(log: Path) -> int:
    with open(log, "rb") as f:
        return sum(1 for _ in f) - 1  # the header is a line


def test_the_reader_reports_every_few_thousand_records_and_at_the_end(
    logs: tuple[Path, Path],
) -> None:
    log = logs[0]
    c = _Calls()
    n = sum(1 for _ in LogReader(log).records(progress=c))
    c.check(n, log.stat().st_size)
    assert [e for e, _ in c.calls[:-1]] == [
        PROGRESS_EVERY * (i + 1) for i in range(len(c.calls) - 1)
    ]
    c = _Calls()
    assert sum(1 for _ in LogReader(log).select((b'"type":"input"',), progress=c))
    c.check(n, log.stat().st_size)  # the fast path: once per block, this log is one


def test_the_fast_path_hands_over_without_going_back(
    logs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A torn tail makes select hand over to the careful scan, which starts again at seq 1:
    the reports still only go forward."""
    monkeypatch.setattr(log_module, "_CHUNK", 1 << 18)  # many blocks before the tear
    torn = tmp_path / "torn.log"
    torn.write_bytes(logs[0].read_bytes() + b'{"cause":1,"seq"')
    c = _Calls()
    got = [d["seq"] for d in LogReader(torn).select((b'"type":"input"',), progress=c)]
    c.check(None, None)
    assert len(c.calls) > 10
    plain = [d["seq"] for d in LogReader(torn).select((b'"type":"input"',))]
    assert got == plain


def _same(x: Any, y: Any) -> None:
    assert repr(x) == repr(y)


def test_fold_fund_progress_is_called_and_changes_nothing(
    logs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = logs[0]
    plain = fold_fund(log)
    monkeypatch.setattr(log_module, "_CHUNK", 1 << 18)  # several blocks: several calls
    c = _Calls()
    _same(fold_fund(log, progress=c), plain)
    c.check(_records(log), log.stat().st_size)
    assert len(c.calls) > 5


def test_cascades_progress_is_called_and_changes_nothing(logs: tuple[Path, Path]) -> None:
    log = logs[0]
    cs, idx, _ = cascades(log)
    c = _Calls()
    cs2, idx2, _ = cascades(log, progress=c)
    _same((cs, idx), (cs2, idx2))
    c.check(None, None)
    n, size = _records(log), log.stat().st_size
    assert (n, size) in c.calls  # the index pass's end; then the trees' pass, on top
    assert n < c.calls[-1][0] <= 2 * n and c.calls[-1][1] <= 2 * size
    c = _Calls()
    t = cs[0].figures.first_ts
    _same(cascades(log, time=t, progress=c)[:2], cascades(log, time=t)[:2])
    c.check(None, None)
    assert c.calls[-1][1] <= 2 * size  # --time's scan of the inputs is not counted


def test_diff_progress_is_called_and_changes_nothing(logs: tuple[Path, Path]) -> None:
    a, b = logs
    c = _Calls()
    _same(diff(a, b, progress=c), diff(a, b))
    c.check(_records(a) + _records(b), a.stat().st_size + b.stat().st_size)
