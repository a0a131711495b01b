"""Files and flags the CLI writes to or is pointed at (tracker issue 10, items 9-12).

The project rule: a bad file or flag is one ``error:`` line and a non-zero exit; outputs are
written to a temporary file beside the destination (``OUT.partial`` for a log, see the
README) and renamed into place only on success. So:

- ``--force`` never destroys anything before the run has succeeded: a missing commands file
  leaves the old log byte for byte, and an output that is one of the inputs (same inode,
  whatever the spelling) is refused even with ``--force`` (``run``, ``demo -o``,
  ``snapshot``) (item 10);
- a run that fails leaves nothing behind, so the next run is not blocked, and "already
  exists" says how to overwrite (item 11);
- a full disk, an unwritable file, a missing directory, a read-only place: one ``error:``
  line naming the path and the cause, exit 2, and the destination as it was (item 9);
- ``state --at``/``--time`` and ``seek --at`` outside the log refuse, naming the valid
  range, exit 2 (item 12).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import assert_user_error, cli

from clearsim.events.log import LogReader

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "fixtures" / "clawback"
CONFIG = FIX / "config.toml"
COMMANDS = FIX / "commands.jsonl"
SCENARIO = ROOT / "fixtures" / "long_cascade" / "scenario.toml"


def _run(
    out: Path | str, *extra: str | Path, commands: Path | str = COMMANDS
) -> subprocess.CompletedProcess[str]:
    return cli("run", "--config", CONFIG, "--commands", commands, "-o", out, *extra)


def _leftovers(d: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name not in keep)


# --------------------------------------------------------------------------- item 10


def test_force_with_a_missing_commands_file_keeps_the_old_log(tmp_path: Path) -> None:
    keep = tmp_path / "keep.log"
    keep.write_bytes(b"precious bytes\n")
    r = _run(keep, "--force", commands=tmp_path / "nope.jsonl")
    assert_user_error(r, "nope.jsonl")
    assert keep.read_bytes() == b"precious bytes\n"
    assert _leftovers(tmp_path, {"keep.log"}) == []


@pytest.mark.parametrize("spelling", ["same", "dot", "hardlink", "symlink"])
def test_output_that_is_an_input_is_refused_even_with_force(tmp_path: Path, spelling: str) -> None:
    cmds = tmp_path / "same.jsonl"
    cmds.write_bytes(COMMANDS.read_bytes())
    out: Path | str = cmds
    if spelling == "dot":
        out = f"{tmp_path}/./same.jsonl"
    elif spelling == "hardlink":
        out = tmp_path / "link.jsonl"
        os.link(cmds, out)
    elif spelling == "symlink":
        out = tmp_path / "sym.jsonl"
        out.symlink_to(cmds)
    r = _run(out, "--force", commands=cmds)
    assert_user_error(r, "same")
    assert cmds.read_bytes() == COMMANDS.read_bytes()
    # the config too
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(CONFIG.read_bytes())
    r = cli("run", "--config", cfg, "--commands", COMMANDS, "-o", cfg, "--force")
    assert_user_error(r, "c.toml")
    assert cfg.read_bytes() == CONFIG.read_bytes()


def test_scenario_run_refuses_to_write_over_its_scenario(tmp_path: Path) -> None:
    sc = tmp_path / "s.toml"
    sc.write_bytes(SCENARIO.read_bytes())
    assert_user_error(cli("run", sc, "-o", sc, "--force"), "s.toml")
    assert sc.read_bytes() == SCENARIO.read_bytes()


def test_demo_output_goes_through_a_temporary_file(tmp_path: Path) -> None:
    # `demo -o X` where X exists: refused without --force (and X untouched) ...
    out = tmp_path / "demo.log"
    out.write_bytes(b"mine\n")
    assert_user_error(cli("demo", "-o", out), "--force")
    assert out.read_bytes() == b"mine\n"
    # ... and into a place that cannot be written: nothing at the destination.
    r = cli("demo", "-o", tmp_path / "no" / "such" / "demo.log")
    assert_user_error(r, "demo.log")


def test_snapshot_refuses_to_write_over_its_log(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_bytes((FIX / "golden.log").read_bytes())
    Path(f"{log}.snap").symlink_to(log.name)
    before = log.read_bytes()
    assert_user_error(cli("snapshot", log, "--every", "3"), "x.log")
    assert log.read_bytes() == before


# --------------------------------------------------------------------------- item 11


def test_a_failed_run_leaves_nothing_and_does_not_block_the_next(tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    assert_user_error(_run(out, commands=tmp_path / "nope.jsonl"), "nope.jsonl")
    assert _leftovers(tmp_path, set()) == []
    r = _run(out)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == (FIX / "golden.log").read_bytes()
    assert _leftovers(tmp_path, {"out.log"}) == []


def test_already_exists_mentions_force(tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    out.write_bytes(b"x\n")
    assert_user_error(_run(out), "out.log", "already exists", "--force")
    assert out.read_bytes() == b"x\n"


# --------------------------------------------------------------------------- item 9


@pytest.mark.parametrize(
    "target, cause",
    [
        ("/dev/full", "No space left on device"),
        ("/proc/version", ""),
        ("MISSING/dir/out.log", "No such file or directory"),
        ("/proc/clearsim-no-such.log", ""),  # a place nobody can create a file in
    ],
    ids=["dev-full", "proc-file", "missing-dir", "read-only-place"],
)
def test_write_errors_are_one_line(tmp_path: Path, target: str, cause: str) -> None:
    out = target.replace("MISSING", str(tmp_path / "missing"))
    before = Path(out).read_bytes() if out == "/proc/version" else None
    for gz in ("", ".gz") if out.endswith(".log") else ("",):
        line = assert_user_error(_run(out + gz, "--force"), out)
        assert cause in line, line
    if before is not None:
        assert Path(out).read_bytes() == before


def test_read_only_directory(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        assert_user_error(_run(d / "out.log"), "out.log", "Permission denied")
        assert list(d.iterdir()) == []
    finally:
        d.chmod(0o755)


def _limit_file_size(limit: int) -> None:
    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG: a full disk.
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize("suffix", [".log", ".log.gz"])
def test_disk_full_mid_run_keeps_the_destination(tmp_path: Path, suffix: str) -> None:
    """The file system fills up (here: RLIMIT_FSIZE) after part of a real run: one error line
    naming the path and the cause; the old destination is untouched and no partial file is
    left behind."""
    out = tmp_path / f"big{suffix}"
    out.write_bytes(b"old\n")
    r = subprocess.run(
        [sys.executable, "-m", "clearsim", "run", str(SCENARIO), "-o", str(out), "--force"],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: _limit_file_size(10_000 if suffix.endswith(".gz") else 100_000),
    )
    line = assert_user_error(r, str(out))
    assert "File too large" in line, line
    assert out.read_bytes() == b"old\n"
    assert _leftovers(tmp_path, {out.name}) == []


def test_direct_write_to_a_pipe_is_a_torn_tail_log(tmp_path: Path) -> None:
    """An output that is not a regular file (a FIFO here) is written to directly; when the
    reader goes away the error is one line, and what reached it is a log prefix that reads
    as a torn tail."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "clearsim", "run", str(SCENARIO), "-o", str(fifo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with open(fifo, "rb") as f:
        got = f.read(50_000)
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert proc.returncode == 2, (out, err)
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and str(fifo) in err, err
    log = tmp_path / "got.log"
    log.write_bytes(got)
    r = LogReader(log)
    assert r.verify() is not None
    assert _leftovers(tmp_path, {"pipe", "got.log"}) == []


# --------------------------------------------------------------------------- item 12

GOLDEN = FIX / "golden.log"


def _span() -> tuple[int, int, int]:
    recs = list(LogReader(GOLDEN).records())
    return recs[-1]["seq"], recs[0]["ts"], recs[-1]["ts"]


@pytest.mark.parametrize("verb", ["state", "seek"])
def test_at_past_the_end_is_refused_with_the_range(verb: str) -> None:
    last, _, _ = _span()
    for at in (last + 1, 99999):
        line = assert_user_error(cli(verb, GOLDEN, "--at", str(at), "--json"), f"--at {at}")
        assert f"0..{last}" in line, line
    for at in (0, last):  # the ends themselves are fine
        r = cli(verb, GOLDEN, "--at", str(at), "--json")
        assert r.returncode == 0, r.stderr


def test_time_outside_the_log_is_refused_with_the_range() -> None:
    _, first, last = _span()
    for t in (-5, first - 1, last + 1):
        line = assert_user_error(cli("state", GOLDEN, "--time", str(t)), f"--time {t}")
        assert f"{first}..{last}" in line, line
    for t in (first, last):
        r = cli("state", GOLDEN, "--time", str(t), "--json")
        assert r.returncode == 0, r.stderr
