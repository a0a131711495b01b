"""``clearsim verify`` (DESIGN §8): chain, byte-for-byte re-execution, conservation.

A small waterfall session (a three-step cascade paid by the insurance fund) is written with
the runner; verify passes on it; a record changed and the chain re-sealed (valid checksums,
different content) is named by its seq with both records shown; a changed record left
unsealed breaks the chain at its seq; a torn tail verifies the good prefix with exit 0; a
dropped trailing event is "missing"; user errors are one ``error:`` line, exit 2.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from clearsim.clearing import Config
from clearsim.events.codec import seal
from clearsim.replay.runner import run
from clearsim.replay.verify import verify

T0 = 1_700_000_000_000_000


def waterfall_config() -> dict[str, Any]:
    ex = {"collateral": "USD", "collateral_decimals": 0, "mark": "mid"}
    inst = {
        "symbol": "X",
        "tick_size": "1",
        "lot_size": "1",
        "tiers": [{"max_notional": "1000000000", "imr_ppm": 90_000, "mmr_ppm": 50_000}],
    }
    return {
        "exchange": ex,
        "insurance_fund": {"initial": "1000"},
        "waterfall": {"steps": ["book", "adl"], "price_limit": "market"},
        "instruments": [inst],
    }


def waterfall_commands(price_limit: str | None = None) -> list[dict[str, Any]]:
    """tests/test_waterfall.py's three-step cascade: a1, a2, a3 liquidated in turn."""
    cmds: list[dict[str, Any]] = []

    def c(t: str, **f: Any) -> None:
        cmds.append({"type": t, "ts": T0 + len(cmds) + 1, **f})

    for who in ("mm", "seller", "c1", "c2", "c3", "c4", "c5"):
        c("deposit", account=who, amount="1000000")
    for a, cash in (("a1", "100"), ("a2", "120"), ("a3", "140")):
        c("deposit", account=a, amount=cash)
    c("order", account="mm", id="ask", symbol="X", side="sell", qty="1000", price="101")
    for cc, px in (("c1", "99"), ("c2", "89"), ("c3", "85"), ("c4", "81"), ("c5", "50")):
        c("order", account=cc, id="b" + px, symbol="X", side="buy", qty="10", price=px)
    for a in ("a1", "a2", "a3"):
        c("order", account=a, id="b", symbol="X", side="buy", qty="10", price="101", tif="ioc")
    if price_limit is not None:
        c("set", path="waterfall.price_limit", value=price_limit)
    c("order", account="seller", id="s", symbol="X", side="sell", qty="10", price="99", tif="ioc")
    return cmds


def write_log(path: Path, price_limit: str | None = None) -> Path:
    run(Config.from_dict(waterfall_config()), waterfall_commands(price_limit), path)
    return path


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def reseal(lines: list[bytes]) -> list[bytes]:
    """Re-seal every record onto its predecessor (the header keeps its own seal)."""
    out = [lines[0]]
    prev = orjson.loads(lines[0])["h"]
    for line in lines[1:]:
        new, prev = seal(prev, line[:-25] + b"}")
        out.append(new)
    return out


def change(line: bytes, **fields: Any) -> bytes:
    d = orjson.loads(line)
    h = d.pop("h")
    d.update(fields)
    body = orjson.dumps(d, option=orjson.OPT_SORT_KEYS)
    return body[:-1] + b',"h":"' + h.encode() + b'"}\n'


def seq_of(lines: list[bytes], type_: str) -> int:
    return next(i for i, ln in enumerate(lines) if orjson.loads(ln).get("type") == type_)


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("clearsim")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "clearsim"]
    return subprocess.run(
        [*argv, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def assert_user_error(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stderr + r.stdout
    assert r.returncode == 2, r
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("error:"), r.stderr


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return write_log(tmp_path / "w.log")


def test_fresh_log_verifies(log: Path) -> None:
    res = verify(log)
    assert res.ok and res.torn is None
    assert res.events == len(lines_of(log)) - 1 and res.commands == len(waterfall_commands())
    r = cli("verify", log)
    assert r.returncode == 0, r
    assert r.stdout.startswith("OK ") and "events/s" in r.stdout and r.stderr == ""


def test_tampered_but_resealed_record_is_named(log: Path) -> None:
    lines = lines_of(log)
    i = seq_of(lines, "liquidation_fill")  # line i holds seq i
    lines[i] = change(lines[i], fund_paid=19)
    log.write_bytes(b"".join(reseal(lines)))
    res = verify(log)  # the chain holds: only re-execution can tell
    assert res.corrupt is None and res.divergence is not None
    assert res.divergence.seq == i and res.divergence.fields() == ["fund_paid"]
    r = cli("verify", log)
    assert r.returncode == 1
    assert f"divergence at seq {i}" in r.stdout and "fields differ: fund_paid" in r.stdout
    logged = next(ln for ln in r.stdout.splitlines() if "logged:" in ln)
    again = next(ln for ln in r.stdout.splitlines() if "re-executed:" in ln)
    assert '"fund_paid":19' in logged and '"fund_paid":20' in again


def test_tampered_input_changes_what_follows(log: Path) -> None:
    lines = lines_of(log)
    d = orjson.loads(lines[3])
    assert d["type"] == "input" and d["command"]["type"] == "deposit"
    lines[3] = change(lines[3], command={**d["command"], "amount": "999"})
    log.write_bytes(b"".join(reseal(lines)))
    res = verify(log)
    assert res.divergence is not None and res.divergence.seq == 4  # its deposit event
    assert res.divergence.fields() == ["amount"]


def test_broken_chain_is_reported_at_its_seq(log: Path) -> None:
    lines = lines_of(log)
    lines[10] = change(lines[10], ts=orjson.loads(lines[10])["ts"] + 1)  # not re-sealed
    log.write_bytes(b"".join(lines))
    res = verify(log)
    assert not res.ok and res.corrupt is not None and res.corrupt.seq == 10
    assert res.events == 9
    r = cli("verify", log)
    assert r.returncode == 1 and "chain broken at seq 10" in r.stdout
    assert "Traceback" not in r.stderr


def _last_input(lines: list[bytes]) -> int:
    return max(i for i, ln in enumerate(lines) if orjson.loads(ln)["type"] == "input")


def test_torn_tail_verifies_the_good_prefix(log: Path) -> None:
    data = log.read_bytes()
    log.write_bytes(data[:-30])  # the last record loses its end ...
    res = verify(log)
    # ... and the reader leaves out the whole command it is in (events.log's rule)
    s = _last_input(lines_of(log)[:-1])
    assert res.ok and res.torn is not None and res.torn.last_good_seq == s - 1
    assert res.lost_with_tail == 0 and res.events == s - 1
    r = cli("verify", log)
    assert r.returncode == 0, r
    assert "good prefix" in r.stdout and "torn tail" in r.stderr


def test_missing_events_at_the_end_are_a_torn_tail(log: Path) -> None:
    """Records dropped at a line end inside the last command (a write cut exactly there):
    no line shows it, re-execution does, and it is a torn tail, not a divergence."""
    lines = lines_of(log)
    s = _last_input(lines)
    assert len(lines) - s > 2, "the last command must have more than two records"
    log.write_bytes(b"".join(lines[:-2]))
    res = verify(log)
    assert res.ok and res.divergence is None and res.lost_with_tail == 2
    assert res.torn is not None and res.torn.last_good_seq == s - 1
    assert res.torn.offset == sum(map(len, lines[:s]))
    assert f"inside the command begun at seq {s}" in str(res.torn)
    r = cli("verify", log)
    assert r.returncode == 0, r
    assert "good prefix" in r.stdout and "torn tail" in r.stderr and "2 of its events" in r.stderr


def test_extra_event_in_the_log(log: Path) -> None:
    lines = lines_of(log)
    last = orjson.loads(lines[-1])
    extra = {k: v for k, v in last.items() if k != "h"}
    extra["seq"] += 1
    body = orjson.dumps(extra, option=orjson.OPT_SORT_KEYS)
    lines.append(body[:-1] + b',"h":"0000000000000000"}\n')
    log.write_bytes(b"".join(reseal(lines)))
    res = verify(log)
    assert res.divergence is not None and res.divergence.seq == extra["seq"]
    assert res.divergence.replayed is None


def test_conservation_break_is_found(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clearsim.clearing.exchange import Exchange

    real = Exchange.apply

    def leaky(self: Exchange, command: object) -> list[Any]:
        out = real(self, command)
        if self.seq.last > 40:
            self.accounts["c5"].balance += 1  # money from nowhere, on an account no event names
        return out

    monkeypatch.setattr(Exchange, "apply", leaky)
    res = verify(log)
    assert res.divergence is None and res.conservation is not None
    assert "net deposits" in res.conservation


def test_periodic_full_scan_scales_with_the_accounts(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change no event names is found by the periodic full scan, whose period is at least
    the number of accounts (so the scans cost O(1) per command amortised).

    With ``FULL_SCAN_EVERY = 1``: the first scan follows command 1 (the exchange then holds
    its system accounts and ``mm``: n + 1 accounts), so the next one follows command
    n + 2. Money leaked into ``mm`` after command 2 (``seller``'s deposit, which does not
    name ``mm``) is found there, in the last n + 1 commands; a fixed period of 1 would find
    it at once.
    """
    from clearsim.clearing.exchange import Exchange
    from clearsim.replay import verify as v

    real = Exchange.apply
    calls = [0]

    def leaky(self: Exchange, command: object) -> list[Any]:
        out = real(self, command)
        calls[0] += 1
        if calls[0] == 2:
            self.accounts["mm"].balance += 1
        return out

    n_system = len(Exchange(Config.from_dict(waterfall_config())).accounts)
    assert n_system >= 4  # #insurance, #fees, #clawback, #debt (and #market)
    monkeypatch.setattr(Exchange, "apply", leaky)
    monkeypatch.setattr(v, "FULL_SCAN_EVERY", 1)
    res = verify(log)
    assert res.conservation is not None
    assert res.conservation.startswith("after the command at seq ")
    period = n_system + 1
    assert f"found by a full scan; the change is in the last {period} commands" in res.conservation


def test_cli_errors(tmp_path: Path) -> None:
    assert_user_error(cli("verify", tmp_path / "missing.log"))
    (tmp_path / "junk.log").write_text("hello\n")
    assert_user_error(cli("verify", tmp_path / "junk.log"))
    assert_user_error(cli("verify"))


def test_snapshots_beside_the_log_are_checked(log: Path) -> None:
    from clearsim.replay.snapshot import ledger_hash, snap_path, write_snapshots

    assert write_snapshots(log, every=5) > 2
    r = cli("verify", log)
    assert r.returncode == 0 and "snapshots match the log" in r.stdout, r.stdout + r.stderr
    # Rewrite the second snapshot with a wrong balance but a self-consistent hash: only a
    # comparison with the log's own state can catch it.
    path = Path(snap_path(log))
    snaps = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    bad = snaps[1]
    acct = sorted(bad["ledger"]["balances"])[0]
    bad["ledger"]["balances"][acct] += 1
    bad["hash"] = ledger_hash(bad["ledger"])
    path.write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in snaps))
    r = cli("verify", log)
    assert r.returncode == 1
    assert f"snapshot at seq {bad['seq']}: differs from the log's state" in r.stdout
