"""Snapshots and seek (DESIGN §7, §8): ``clearsim snapshot`` / ``clearsim seek``.

Pins down: seeking through snapshots gives exactly the projection of every record up to the
seq (the fold from the start), for every seq of a golden log, plain and ``.gz``, and equals
``fold_ledger(at=)`` where a command ends; seq 0 is the header's state and a seq past the end
the last record's; a damaged snapshot is one error naming its seq; a snapshot from another
log is refused; a torn tail still seeks, with the tail reported; the CLI verbs, errors one
line and exit 2.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest

from clearsim.events.log import LogReader
from clearsim.replay.projections.ledger import Ledger, fold_ledger, state_view
from clearsim.replay.snapshot import (
    SnapshotError,
    seek,
    seek_detail,
    snap_path,
    write_snapshots,
)

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "fixtures" / "long_cascade" / "golden.log"
OTHER = ROOT / "fixtures" / "clawback" / "golden.log"


def _records(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    reader = LogReader(path)
    return reader.header.config, list(reader.records())


def _reference(config: dict[str, Any], recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """state_view after each seq 0..len(recs), folding from the start."""
    led = Ledger(config)
    out = [state_view(led)]
    for d in recs:
        led.apply(d)
        out.append(state_view(led))
    return out


@pytest.fixture(scope="module")
def golden() -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    config, recs = _records(GOLDEN)
    return config, recs, _reference(config, recs)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    p = tmp_path / "g.log"
    shutil.copyfile(GOLDEN, p)
    return p


def test_seek_every_seq_equals_fold(log: Path, golden: Any) -> None:
    _, recs, ref = golden
    assert write_snapshots(log, every=50) == len(recs) // 50
    for n in range(len(recs) + 1):
        r = seek_detail(log, n)
        assert state_view(r.ledger) == ref[n], n
        assert r.ledger.seq == n
        assert r.replayed <= 50
        assert r.snapshot_seq == (n // 50 * 50 or None)


def test_seek_equals_fold_ledger_at_command_ends(log: Path, golden: Any) -> None:
    _, recs, _ = golden
    write_snapshots(log, every=37)
    ends = [d["seq"] for d, nxt in pairwise(recs) if nxt["type"] == "input"]
    ends.append(recs[-1]["seq"])
    assert len(ends) > 20
    for n in ends[:: max(1, len(ends) // 60)]:
        assert state_view(seek(log, n)) == state_view(fold_ledger(log, at=n)[0]), n


def test_seek_ends_and_without_snapshots(log: Path, golden: Any) -> None:
    _, recs, ref = golden
    assert state_view(seek(log, 0)) == ref[0]  # no .snap yet: a fold from the start
    assert state_view(seek(log, 700)) == ref[700]
    write_snapshots(log, every=100)
    assert state_view(seek(log, len(recs) + 1000)) == ref[-1]
    with pytest.raises(ValueError):
        seek(log, -1)


def test_ledger_dict_round_trip(golden: Any) -> None:
    config, recs, _ = golden
    led = Ledger(config).fold(recs[:900])
    d = led.to_dict()
    again = Ledger.from_dict(config, orjson.loads(orjson.dumps(d)))
    assert again.to_dict() == d
    assert state_view(again) == state_view(led)
    for r in recs[900:]:
        led.apply(r)
        again.apply(r)
    assert state_view(again) == state_view(led)


def test_gz_log(tmp_path: Path, golden: Any) -> None:
    _, recs, ref = golden
    gz = tmp_path / "g.log.gz"
    gz.write_bytes(gzip.compress(GOLDEN.read_bytes()))
    assert write_snapshots(gz, every=100) == len(recs) // 100
    for n in [*range(0, len(recs) + 2, 41), 100, 101, 199, 200, len(recs)]:
        r = seek_detail(gz, min(n, len(recs)))
        assert state_view(r.ledger) == ref[min(n, len(recs))], n
        assert r.replayed < 100


def _damage(path: str, index: int) -> int:
    lines = Path(path).read_bytes().splitlines(keepends=True)
    d = orjson.loads(lines[index])
    acct = next(a for a in sorted(d["ledger"]["balances"]) if not a.startswith("#"))
    d["ledger"]["balances"][acct] += 1
    # keep "seq" first, as the writer does
    lines[index] = orjson.dumps({"seq": d.pop("seq"), **d}) + b"\n"
    Path(path).write_bytes(b"".join(lines))
    return int(orjson.loads(lines[index])["seq"])


def test_corrupt_snapshot_hash(log: Path, golden: Any) -> None:
    _, _, ref = golden
    write_snapshots(log, every=100)
    bad = _damage(snap_path(log), 4)
    assert bad == 500
    assert state_view(seek(log, 499)) == ref[499]  # an earlier snapshot is still good
    with pytest.raises(SnapshotError, match=r"snapshot at seq 500 .*hash mismatch"):
        seek(log, 550)


def test_snapshot_of_another_log_refused(log: Path, tmp_path: Path) -> None:
    other = tmp_path / "o.log"
    shutil.copyfile(OTHER, other)
    n = len(list(LogReader(other).records()))
    write_snapshots(other, every=5)
    shutil.copyfile(snap_path(other), snap_path(log))
    with pytest.raises(SnapshotError, match=r"snapshot at seq \d+ does not match the log"):
        seek(log, n)


def test_torn_tail(log: Path, golden: Any) -> None:
    _, recs, ref = golden
    write_snapshots(log, every=100)
    with open(log, "ab") as f:
        f.write(b'{"seq":99999,"ty')
    r = seek_detail(log, len(recs) + 5)
    # the garbage line tears the log inside its last command, which goes with it
    cut = max(d["seq"] for d in recs if d["type"] == "input") - 1
    assert state_view(r.ledger) == ref[cut]
    assert r.torn is not None and r.torn.last_good_seq == cut
    assert state_view(seek(log, 1000)) == ref[1000]


# --------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearsim", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def test_cli(log: Path, golden: Any) -> None:
    _, recs, ref = golden
    r = _cli("seek", str(log), "--at", "321", "--json")
    assert r.returncode == 0, r.stderr
    assert orjson.loads(r.stdout) == ref[321]
    assert "no " in r.stderr and "folding the whole log" in r.stderr

    r = _cli("snapshot", str(log), "--every", "200")
    assert r.returncode == 0, r.stderr
    assert f"{len(recs) // 200} snapshots" in r.stdout
    assert os.path.exists(snap_path(log))

    r = _cli("seek", str(log), "--at", "1001", "--json")
    assert r.returncode == 0, r.stderr
    assert orjson.loads(r.stdout) == ref[1001]
    assert r.stderr == ""
    r = _cli("seek", str(log), "--at", "1001")
    assert r.returncode == 0 and r.stdout.startswith("seq 1001")

    _damage(snap_path(log), 2)
    r = _cli("seek", str(log), "--at", "650")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    assert "snapshot at seq 600" in r.stderr

    for args in (
        ("seek", str(log)),
        ("seek", str(log), "--at", "-3"),
        ("seek", str(log.with_name("missing.log")), "--at", "3"),
        ("snapshot", str(log), "--every", "0"),
        ("snapshot", str(log.with_name("missing.log"))),
    ):
        r = _cli(*args)
        assert r.returncode == 2, args
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: "), (args, r.stderr)
