"""Reliability of the log (DESIGN §7): determinism, corruption found where it is, crashes.

- The same scenario gives the same bytes under different ``PYTHONHASHSEED``s (subprocesses).
- Every single-byte change in a golden log is found at its seq: a change inside record k is
  :class:`CorruptLog` with ``.seq == k``, or, only when it is in the last line (or merges
  the last two lines), a torn tail ending before the command record k is in. A change in
  the header fails opening.
- A writer killed with SIGKILL at random points loses no complete event: the killed log's
  good prefix is the uninterrupted log's prefix byte for byte, and resuming it gives the
  uninterrupted log's bytes. The same for logs cut at random byte offsets (torn mid-line).
- Hostile files (a > 16 MiB line with no newline, binary garbage, an unknown format
  version, an empty file, a JSON array) give one-line errors from the reader, and
  ``clearsim state`` exits 2 with one ``error:`` line and no traceback.
"""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import orjson
import pytest

from clearsim.clearing import Config
from clearsim.events.codec import CorruptLog, LineTooLong, LogError, NotALog, UnknownFormat, seal
from clearsim.events.log import MAX_LINE, LogReader
from clearsim.replay.runner import read_commands

ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).resolve().with_name("log_driver.py")


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


fx = _load("fixtures_regenerate", ROOT / "fixtures" / "regenerate.py")
driver = _load("log_driver", DRIVER)

SCENARIO = "long_cascade"  # a scenario fixture: population, makers, a crash, every step


def clearsim_argv() -> list[str]:
    script = Path(sys.executable).with_name("clearsim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "clearsim"]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


# --------------------------------------------------------------------------- determinism


def test_same_bytes_under_three_hash_seeds(tmp_path: Path) -> None:
    golden = fx.golden(SCENARIO).read_bytes()
    for hs in ("0", "1", "2718281828"):
        out = tmp_path / f"h{hs}.log"
        proc = subprocess.run(
            [*clearsim_argv(), *fx.cli_args(SCENARIO), "-o", str(out)],
            capture_output=True,
            text=True,
            env=_env(PYTHONHASHSEED=hs),
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert out.read_bytes() == golden, f"PYTHONHASHSEED={hs} gives different bytes"


# --------------------------------------------------------------------------- corruption


def _outcome(path: Path) -> tuple[str, int]:
    """("corrupt", seq) / ("torn", last good seq) / ("open", 0) / ("clean", last seq)."""
    try:
        reader = LogReader(path)
    except CorruptLog as e:
        return "open", e.seq
    except LogError:
        return "open", 0
    try:
        torn = reader.verify()
    except CorruptLog as e:
        return "corrupt", e.seq
    if torn is not None:
        return "torn", torn.last_good_seq
    return "clean", reader.last_seq


def test_every_single_byte_change_is_found_at_its_seq(tmp_path: Path) -> None:
    data = fx.golden(SCENARIO).read_bytes()
    lines = data.splitlines(keepends=True)
    last = len(lines) - 1  # seq of the last record (line 0 is the header)
    starts = [0]
    for ln in lines:
        starts.append(starts[-1] + len(ln))

    def line_of(pos: int) -> int:
        lo, hi = 0, len(lines) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if starts[mid] <= pos:
                lo = mid
            else:
                hi = mid - 1
        return lo

    inputs = [i for i, ln in enumerate(lines) if b'"type":"input","h"' in ln]

    def boundary_before(k: int) -> int:
        """The good prefix when line k is torn: up to the last input before it, exclusive."""
        return max(i for i in inputs if i < k) - 1

    rng = random.Random(20261122)
    positions = rng.sample(range(len(data)), 200)
    # ... and the edges: the header's first and last byte, each byte kind of the last two
    # records (their seq digits, their checksums, their newlines).
    positions += [0, starts[1] - 1, starts[last] - 1, starts[last], len(data) - 1]
    positions += [starts[last] + lines[last].index(b'"seq"') + 6, len(data) - 5]
    positions += [starts[last - 1] + lines[last - 1].index(b'"seq"') + 6]
    mutated = tmp_path / "mutated.log"
    for pos in positions:
        k = line_of(pos)
        delta = rng.randrange(1, 256)
        buf = bytearray(data)
        buf[pos] ^= delta
        mutated.write_bytes(bytes(buf))
        kind, seq = _outcome(mutated)
        where = f"byte {pos} (line {k + 1}, seq {k}) ^= {delta:#x}: got {kind} {seq}"
        if k == 0:
            assert kind == "open", where
            continue
        # The newline of the second-to-last record merges it with the last line: to a
        # reader that is a torn (unparsable) last line after seq k - 1.
        merges_last = k == last - 1 and pos == starts[last] - 1
        if kind == "corrupt":
            assert seq == k, where
        else:
            assert kind == "torn" and (k == last or merges_last), where
            # the command the torn line is in goes with it (events.log's failure model)
            assert seq == boundary_before(k), where


# --------------------------------------------------------------------------- crashes

KILL_STEPS = 6000  # the long_cascade scenario run for 6,000 s: ~3.5 MB, ~20k events
KILLS = 8


def _drive(out: Path, *, resume: bool = False) -> subprocess.Popen[bytes]:
    argv = [sys.executable, str(DRIVER), str(fx.fixture_dir(SCENARIO) / "scenario.toml")]
    argv += [str(out), "--steps", str(KILL_STEPS), "--flush-every", "1"]
    if resume:
        argv.append("--resume")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _good_prefix(path: Path) -> bytes:
    reader = LogReader(path)
    torn = reader.verify()  # raises CorruptLog if a crash left anything but a torn tail
    data = path.read_bytes()
    return data if torn is None else data[: torn.offset]


def test_sigkill_loses_no_complete_event_and_resume_is_seamless(tmp_path: Path) -> None:
    ref = tmp_path / "ref.log"
    p = _drive(ref)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    reference = ref.read_bytes()

    # Random points: wait until the log has grown past a seeded fraction of its full size,
    # plus a seeded sub-millisecond delay, then SIGKILL (independent of the machine's speed).
    rng = random.Random(7)
    landed = 0
    cut_at: list[int] = []
    for i in range(KILLS):
        out = tmp_path / f"killed{i}.log"
        target = rng.uniform(0.0, 0.95) * len(reference)
        extra = rng.uniform(0.0, 0.001)
        p = _drive(out)
        deadline = time.monotonic() + 60
        while p.poll() is None and time.monotonic() < deadline:
            if out.exists() and out.stat().st_size >= target:
                break
            time.sleep(0.0002)
        time.sleep(extra)
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=60)
        if not out.exists() or out.stat().st_size == 0:
            continue  # killed before the header was written: nothing to keep
        prefix = _good_prefix(out)
        assert reference.startswith(prefix), f"kill {i}: the good prefix is not the reference's"
        cut_at.append(len(prefix))
        if len(prefix) < len(reference):
            landed += 1
        r = _drive(out, resume=True)
        _, err = r.communicate(timeout=120)
        assert r.returncode == 0, err
        assert out.read_bytes() == reference, f"kill {i}: resumed log differs"
    print(f"killed at {cut_at} of {len(reference)} bytes")
    assert landed >= KILLS // 2, f"only {landed} of {KILLS} kills landed mid-run: {cut_at}"


def test_resume_after_a_tail_torn_at_any_byte(tmp_path: Path) -> None:
    # In process and on a small fixture: cut the log at random byte offsets (mid-line,
    # mid-command, right after a newline), resume, and get the uninterrupted bytes back.
    name = "clawback"
    reference = fx.golden(name).read_bytes()
    header_len = reference.index(b"\n") + 1
    config, commands = _fixture_inputs(name)
    rng = random.Random(99)
    cuts = [*rng.sample(range(header_len, len(reference)), 40), header_len, len(reference)]
    out = tmp_path / "cut.log"
    for cut in cuts:
        out.write_bytes(reference[:cut])
        assert reference.startswith(_good_prefix(out))
        driver.write(config, commands, out, 0, resume=True)
        assert out.read_bytes() == reference, f"cut at byte {cut}"


def _fixture_inputs(name: str) -> tuple[Config, list[object]]:
    d = fx.fixture_dir(name)
    return Config.from_toml(d / "config.toml"), list(read_commands(d / "commands.jsonl"))


# --------------------------------------------------------------------------- hostile files


def _header_line(**changes: object) -> bytes:
    header = orjson.loads(fx.golden("book").read_bytes().split(b"\n", 1)[0])
    header.pop("h")
    header.update(changes)
    line, _ = seal("", orjson.dumps(header, option=orjson.OPT_SORT_KEYS))
    return line


def _hostile(tmp_path: Path) -> dict[str, tuple[Path, type[LogError]]]:
    files: dict[str, tuple[bytes, type[LogError]]] = {
        "huge_first_line": (b"x" * (MAX_LINE + 1024), NotALog),
        "binary": (bytes(random.Random(5).randrange(256) for _ in range(4096)), NotALog),
        "unknown_format": (_header_line(format=999), UnknownFormat),
        "empty": (b"", NotALog),
        "json_array": (b"[1, 2, 3]\n", NotALog),
    }
    out: dict[str, tuple[Path, type[LogError]]] = {}
    for name, (data, exc) in files.items():
        p = tmp_path / f"{name}.log"
        p.write_bytes(data)
        out[name] = (p, exc)
    # a valid header, then a record line longer than the bound with no newline
    p = tmp_path / "huge_record.log"
    with open(p, "wb") as f:
        f.write(_header_line())
        f.write(b"{" + b"a" * (MAX_LINE + 1024))
    out["huge_record"] = (p, LineTooLong)
    return out


def test_hostile_files_give_one_line_errors(tmp_path: Path) -> None:
    for name, (path, exc) in _hostile(tmp_path).items():
        with pytest.raises(LogError) as info:
            LogReader(path).verify()
        assert isinstance(info.value, exc), (name, type(info.value), str(info.value))
        text = str(info.value)
        assert "\n" not in text and str(path) in text and len(text) < 500, (name, text)


def test_clearsim_state_on_hostile_files_exits_2_with_one_error_line(tmp_path: Path) -> None:
    for name, (path, _) in _hostile(tmp_path).items():
        proc = subprocess.run(
            [*clearsim_argv(), "state", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, (name, proc.stderr)
        err = proc.stderr.splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), (name, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stdout == "", name
