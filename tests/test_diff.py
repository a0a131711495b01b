"""``clearsim diff A B`` (DESIGN §8): first divergent seq and outcome differences.

Two runs of the three-step cascade differ only in a ``set waterfall.price_limit`` command
before the crash order: with ``market`` the book takes a1..a3 at 89, 85, 81 and the fund pays
20 + 40 + 60 = 120 (1000 -> 880); with ``bankruptcy`` nothing fills below the bankruptcy
prices, so the fund keeps 1000. The set's input is the first divergent record.
"""

from __future__ import annotations

from pathlib import Path

from test_verify import assert_user_error, cli, lines_of, write_log

from clearsim.replay.diff import diff


def test_identical_logs(tmp_path: Path) -> None:
    a = write_log(tmp_path / "a.log")
    b = write_log(tmp_path / "b.log")
    r = diff(a, b)
    assert r.identical and r.seq is None
    p = cli("diff", a, b)
    assert p.returncode == 0, p
    assert p.stdout.startswith("identical")


def test_different_set_command(tmp_path: Path) -> None:
    a = write_log(tmp_path / "a.log", price_limit="market")
    b = write_log(tmp_path / "b.log", price_limit="bankruptcy")
    set_seq = 46  # where the seller's order sits without the set (tests/test_cascade.py)
    r = diff(a, b)
    assert not r.identical
    assert r.seq == set_seq
    assert r.body_a is not None and b'"value":"market"' in r.body_a
    assert r.body_b is not None and b'"value":"bankruptcy"' in r.body_b
    assert r.totals["insurance_fund"] == ("880", "1000")
    assert "a1" not in r.accounts or "balance" in r.accounts["a1"]
    assert r.accounts["c2"]["X qty"] == ("10", None)
    p = cli("diff", a, b)
    assert p.returncode == 1
    assert f"first divergence at seq {set_seq}" in p.stdout
    assert "insurance_fund: A 880  B 1000  (B - A = 120)" in p.stdout


def test_prefix_log(tmp_path: Path) -> None:
    a = write_log(tmp_path / "a.log")
    lines = lines_of(a)
    b = tmp_path / "b.log"
    b.write_bytes(b"".join(lines[:-3]))
    r = diff(a, b)
    assert r.seq == len(lines) - 3 and r.body_b is None
    assert r.events_a == r.events_b + 3


def test_cli_errors(tmp_path: Path) -> None:
    a = write_log(tmp_path / "a.log")
    assert_user_error(cli("diff", a, tmp_path / "missing.log"))
    assert_user_error(cli("diff", a))
