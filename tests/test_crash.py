"""Crashes: a log cut inside a command, and real ``clearsim run`` processes killed with
SIGKILL and continued with ``--resume`` (tracker issue 10, item 7; the rule is in
``events/log.py``'s docstring).

- A log cut at a line end inside its last command (a write cut exactly there): ``verify``
  calls it a torn tail (exit 0, one warning), not a divergence; ``state`` shows the last
  complete command, never events the log does not hold; ``run --resume`` gives the bytes
  of an uninterrupted run.
- A log torn mid-line inside a command: every reader keeps the commands before it, and
  ``LogWriter.resume`` cuts the log back to the last complete command.
- ``python -m clearsim run`` of a ~210,000-event scenario, SIGKILLed at 20 seeded points
  while it writes (by the size of its ``LOG.partial``), plain and gzip: what is left is a
  prefix of the uninterrupted log ending at a command boundary, and ``--resume`` turns it
  into the uninterrupted log, byte for byte, leaving no partial file.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from test_cli import cli

from clearsim.events.log import LogReader, LogWriter

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "fixtures" / "long_cascade"
LONG = ROOT / "tests" / "data" / "crash_long.toml"
KILLS = 20  # of the plain log; and GZ_KILLS of the .gz log
GZ_KILLS = 2


def _python_clearsim(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "clearsim", *map(str, args)]


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def _inputs(lines: list[bytes]) -> list[int]:
    """Line numbers (0 = header, so also seqs) of the input records."""
    return [i for i, ln in enumerate(lines) if b'"type":"input","h":"' in ln]


def _a_long_command(lines: list[bytes], at_least: int = 5) -> tuple[int, int]:
    """(input seq, seq after its last record) of a command with >= ``at_least`` records."""
    starts = _inputs(lines)
    for a, b in zip(starts, [*starts[1:], len(lines)], strict=True):
        if b - a >= at_least:
            return a, b
    raise AssertionError("no command that long")


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    d = tmp_path_factory.mktemp("small")
    r = cli("run", SMALL / "scenario.toml", "-o", d / "ref.log")
    assert r.returncode == 0, r.stderr
    return (d / "ref.log").read_bytes()


# --------------------------------------------------------------------------- cut at a line end


def test_log_cut_at_a_line_end_inside_a_command(small: bytes, tmp_path: Path) -> None:
    lines = _lines(small)
    start, _ = _a_long_command(lines)
    cut = b"".join(lines[: start + 2])  # the input and one record of its command
    log = tmp_path / "cut.log"
    log.write_bytes(cut)

    r = cli("verify", log)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.startswith("OK ") and f"good prefix {start - 1} events" in r.stdout, r.stdout
    warn = r.stderr.splitlines()
    assert len(warn) == 1 and warn[0].startswith("warning: torn tail"), r.stderr
    assert f"inside the command begun at seq {start}" in warn[0], warn[0]

    r = cli("state", log, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["seq"] == start - 1  # the last complete command
    assert "warning: torn tail" in r.stderr
    # ... the same state as a log that stops at that boundary
    exact = tmp_path / "exact.log"
    exact.write_bytes(b"".join(lines[:start]))
    assert json.loads(cli("state", exact, "--json").stdout) == json.loads(r.stdout)

    # --resume from it as a killed run's partial: the uninterrupted bytes.
    out = tmp_path / "out.log"
    Path(f"{out}.partial").write_bytes(cut)
    r = cli("run", SMALL / "scenario.toml", "-o", out, "--resume")
    assert r.returncode == 0, r.stderr
    assert f"after seq {start - 1}" in r.stdout
    assert out.read_bytes() == small
    assert not Path(f"{out}.partial").exists()


def test_torn_line_inside_a_command_cuts_back_to_the_command(small: bytes, tmp_path: Path) -> None:
    lines = _lines(small)
    start, _ = _a_long_command(lines)
    torn = b"".join(lines[: start + 3]) + lines[start + 3][:20]
    log = tmp_path / "torn.log"
    log.write_bytes(torn)
    reader = LogReader(log)
    assert [s for s, _ in reader.lines()] == list(range(1, start))
    assert reader.torn is not None and reader.torn.last_good_seq == start - 1
    assert reader.torn.offset == len(b"".join(lines[:start]))
    with LogWriter.resume(log) as w:
        assert w.last_seq == start - 1
    assert log.read_bytes() == b"".join(lines[:start])
    for verb in (("fund", "--json"), ("cascade", "--json"), ("seek", "--at", str(start + 1))):
        r = cli(verb[0], log, *verb[1:])
        assert r.returncode == (0 if verb[0] != "seek" else 2), (verb, r.stderr)


def test_resume_refuses_a_partial_log_of_another_run(small: bytes, tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    partial = Path(f"{out}.partial")
    partial.write_bytes(small[: len(small) // 2])
    r = cli("run", SMALL / "scenario.toml", "-o", out, "--resume", "--seed", "7")
    assert r.returncode == 2 and "not a partial log of this run" in r.stderr, r.stderr
    assert partial.read_bytes() == small[: len(small) // 2] and not out.exists()
    # a plain run will not start over it either, but says how to go on
    r = cli("run", SMALL / "scenario.toml", "-o", out)
    assert r.returncode == 2 and "--resume" in r.stderr and "--force" in r.stderr, r.stderr
    r = cli("run", SMALL / "scenario.toml", "-o", out, "--force")
    assert r.returncode == 0 and out.read_bytes() == small and not partial.exists()


# --------------------------------------------------------------------------- SIGKILL


@pytest.fixture(scope="module")
def long_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The uninterrupted logs of the long scenario, plain and gzip, made once."""
    d = tmp_path_factory.mktemp("long")
    out: dict[str, bytes] = {}
    for suffix in (".log", ".log.gz"):
        p = d / f"ref{suffix}"
        r = subprocess.run(_python_clearsim("run", LONG, "-o", p), capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr
        out[suffix] = p.read_bytes()
    lines = out[".log"].count(b"\n") - 1
    assert lines >= 200_000, f"the long scenario gives only {lines} events"
    return out


def _kill_and_resume(d: Path, suffix: str, reference: bytes, frac: float, extra: float) -> str:
    """Run into ``d`` and SIGKILL it once LOG.partial has reached ``frac`` of the reference's
    size: ``extra`` seconds later, or (``extra < 0``) inside a ``write`` call. A write copies
    page by page, so while one is under way the file's size is a multiple of the page size;
    a finished one ends at a newline, almost never there. Polling for that size kills the
    writer mid-write most of the time (a torn last line). Check what is left, resume, check
    the result; a line describing it."""
    d.mkdir()
    out = d / f"run{suffix}"
    partial = d / ("run.log.partial.gz" if suffix.endswith(".gz") else "run.log.partial")
    target = frac * len(reference)
    give_up = target + 0.02 * len(reference)  # no write caught by then: kill anyway
    p = subprocess.Popen(_python_clearsim("run", LONG, "-o", out), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    size = 0
    while p.poll() is None and time.monotonic() < deadline:
        try:
            size = os.stat(partial).st_size
        except FileNotFoundError:
            size = 0
        if size >= target and (extra >= 0 or size % 4096 == 0 or size > give_up):
            break
        if size < target * 0.98:
            time.sleep(0.0005)  # far from the target: no need to spin
    time.sleep(max(extra, 0))
    assert p.poll() is None, f"the run ended before the kill at {frac:.2f} ({size} bytes)"
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=60)
    if out.exists():
        # The signal landed after the run's last write and rename (between the poll above
        # and the kill): the run was complete, so what it renamed must be the whole log.
        assert not partial.exists(), "a finished run left its partial log behind"
        assert out.read_bytes() == reference, "a run renamed an incomplete log into place"
        return f"frac {frac:.2f}: finished before the kill landed (complete log, renamed)"
    reader = LogReader(partial)
    good = [line for _, line in reader.lines()]
    prefix = reader.header_line + b"".join(good)
    plain = prefix if not suffix.endswith(".gz") else None
    if plain is not None:
        assert reference.startswith(plain), "the killed log's good prefix is not the reference's"
    if good:  # it ends at a command boundary: the next reference record is an input
        nxt = orjson.loads(_nth_record(reference, suffix, len(good) + 1))
        assert nxt is None or nxt["type"] == "input", "the good prefix ends inside a command"
    r = subprocess.run(
        _python_clearsim("run", LONG, "-o", out, "--resume"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == reference, f"resumed after the kill at {frac:.2f}: bytes differ"
    assert sorted(x.name for x in d.iterdir()) == [out.name], list(d.iterdir())
    torn = "torn" if reader.torn is not None else "clean"
    return f"{suffix} kill at {frac:.2f}: {len(good)} records kept ({torn})"


_RECORDS: dict[str, list[bytes]] = {}


def _nth_record(reference: bytes, suffix: str, seq: int) -> bytes:
    if suffix not in _RECORDS:
        import gzip

        data = gzip.decompress(reference) if suffix.endswith(".gz") else reference
        _RECORDS[suffix] = _lines(data)
    lines = _RECORDS[suffix]
    return lines[seq] if seq < len(lines) else b"null"


def test_sigkill_at_20_points_and_resume(long_runs: dict[str, bytes], tmp_path: Path) -> None:
    rng = random.Random(20261210)
    # half after a seeded delay (mostly between writes), half inside a write (extra = -1)
    jobs = [
        (".log", rng.uniform(0.02, 0.9), rng.uniform(0, 0.002) if i % 2 else -1.0)
        for i in range(KILLS)
    ]
    jobs += [(".log.gz", rng.uniform(0.05, 0.9), rng.uniform(0, 0.002)) for _ in range(GZ_KILLS)]
    t0 = time.monotonic()
    def one(i: int) -> str:
        suffix, frac, extra = jobs[i]
        return _kill_and_resume(tmp_path / f"k{i}", suffix, long_runs[suffix], frac, extra)

    # Two at a time (or more on a bigger machine): each is a real run, killed, then resumed.
    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as pool:
        done = list(pool.map(one, range(len(jobs))))
    print(f"{len(done)} kills in {time.monotonic() - t0:.1f} s:", *done, sep="\n  ")
    assert len(done) == KILLS + GZ_KILLS
    # A kill may land after a run's rename (checked above as a complete log); the kill
    # points stop at 90% of the run so that stays rare: at least 20 must be real kills.
    assert sum("finished before the kill" not in d for d in done) >= 20, done


# --------------------------------------------------------------------------- every reader


def _truncated(small: bytes, d: Path) -> dict[str, Path]:
    """The small log cut inside its last third, plain (mid-line) and gzip (mid-stream)."""
    import gzip

    lines = _lines(small)
    start, _ = _a_long_command(lines[len(lines) * 2 // 3 :])
    start += len(lines) * 2 // 3
    plain = d / "cut.log"
    plain.write_bytes(b"".join(lines[: start + 2]) + lines[start + 2][:30])
    gz = d / "cut.log.gz"
    whole = gzip.compress(small, mtime=0)
    gz.write_bytes(whole[: len(whole) * 3 // 4])
    return {"plain": plain, "gz": gz}


#: verb -> (extra arguments, exit status documented for a torn log)
READERS: dict[str, tuple[tuple[str, ...], int]] = {
    "verify": ((), 0),
    "state": (("--json",), 0),
    "state-at": (("--at", "LAST"), 0),
    "state-time": (("--time", "LAST_TS"), 0),
    "fund": ((), 0),
    "fund-json": (("--json",), 0),
    "cascade": ((), 0),
    "cascade-json": (("--json",), 0),
    "seek": (("--at", "LAST"), 0),  # stops at LAST: the tail is not read, nor warned of
    "diff": (("REF",), 1),  # a torn log differs from the whole one
    "snapshot": (("--every", "50"), 0),
    "export": (("-o", "OUT"), 0),
    "export-fund": (("-o", "OUT", "--table", "fund"), 0),
}


@pytest.mark.parametrize("kind", ["plain", "gz"])
@pytest.mark.parametrize("name", sorted(READERS))
def test_every_reader_verb_on_a_truncated_log(
    small: bytes, tmp_path: Path, kind: str, name: str
) -> None:
    """One torn-tail path for every verb that reads a log: no traceback, exactly one
    ``warning: ... torn tail ...`` line on stderr (``seek``, which stops at its seq, reads
    no tail and warns of none), the verb's documented exit status."""
    log = _truncated(small, tmp_path)[kind]
    ref = tmp_path / "ref.log"
    ref.write_bytes(small)
    extra, status = READERS[name]
    good = list(LogReader(log).records())
    names = {"REF": str(ref), "LAST": str(good[-1]["seq"]), "LAST_TS": str(good[-1]["ts"]),
             "OUT": str(tmp_path / "out.parquet")}  # fmt: skip
    args = [names.get(a, a) for a in extra]
    if name == "diff":
        args = [str(ref), str(log)]
        r = cli("diff", *args)
    else:
        r = cli(name.split("-")[0], log, *args)
    out = f"exit {r.returncode}\nstdout: {r.stdout[-500:]!r}\nstderr: {r.stderr!r}"
    assert "Traceback" not in r.stderr + r.stdout, out
    assert r.returncode == status, out
    err = [ln for ln in r.stderr.splitlines() if not ln.startswith("note: ")]
    if name == "seek":
        assert err == [], out
    else:
        assert len(err) == 1 and err[0].startswith("warning: ") and "torn tail" in err[0], out
    assert r.stdout.strip(), out
