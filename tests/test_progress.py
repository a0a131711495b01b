"""Progress on a terminal (replay/cli/progress.py): ``run``, ``verify`` and ``import`` show
it on stderr when stderr is a terminal (a pseudo-terminal here) and ``rich`` is installed;
a pipe, ``--quiet`` or a missing ``rich`` get nothing, and the verb's result is the same."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rich")

ROOT = Path(__file__).resolve().parents[1]
CRASH = ROOT / "replay" / "scenarios" / "crash.toml"
BARS = ROOT / "replay" / "scenarios" / "black-thursday-XBTUSD-1m.csv"


def _on_pty(args: list[str], code: str | None = None) -> tuple[int, str, str]:
    """Run ``clearsim ARGS`` (or ``python -c CODE``) with stderr on a pseudo-terminal:
    (exit status, stdout, what the terminal received)."""
    master, slave = pty.openpty()
    argv = [sys.executable, "-c", code] if code else [sys.executable, "-m", "clearsim", *args]
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160"}
    for k in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(k, None)
    p = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, cwd=ROOT, env=env
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
    assert p.stdout is not None
    out = p.stdout.read().decode()
    p.stdout.close()
    return p.wait(timeout=300), out, b"".join(chunks).decode("utf-8", "replace")


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
