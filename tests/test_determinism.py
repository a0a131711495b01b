"""Determinism: the same config and commands give the same log, byte for byte (DESIGN §1.2, §7).

A few hundred mixed commands (trading, index jumps that liquidate, funding, fee and tier
changes, rejections, and malformed lines of every kind) are written to a JSONL file with a
TOML config that runs the whole loss waterfall. Pinned down:

- ``clearsim run`` under ``PYTHONHASHSEED`` 0, 1 and 12345 writes byte-identical logs, plain
  and gzipped (and the ``.gz`` holds exactly the plain log);
- in process, the same commands applied to two fresh exchanges give equal event lists, equal
  to the events the CLI logged;
- re-executing the log's own inputs gives its events back, and rebuilding from the log gives
  the state the run ended in.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_conservation import CommandGen, make_config

from clearsim.clearing import Config, Exchange
from clearsim.events.log import read_log
from clearsim.events.types import Event, Input
from clearsim.replay.rebuild import command_of, rebuild
from clearsim.replay.runner import read_commands

HASH_SEEDS = ("0", "1", "12345")

#: Lines no JSON reader turns into a command, placed among the good ones.
RAW_BAD_LINES = [
    "this is not json",
    "{broken",
    '{"type": "deposit", "ts": 123456789012345678901234567890, "account": "a1", "amount": "1"}',
    '{"type": "deposit", "ts": 1700000000000001, "account": "a1", "amount": 1e3}',
    '{"type": "order", "ts": 1700000000000001, "account": "a1", "id": "x", "symbol": "BTC-USD",'
    ' "side": "buy", "qty": "1", "price": "50000", "reduce_only": "yes"}',
    "\ufeff{}",
    "null",
    '"just a string"',
    "[[[]]]",
]


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {v!r}")


def to_toml(cfg: dict[str, Any]) -> str:
    """The config's TOML text: plain tables, then ``[[instruments]]``."""
    out: list[str] = []
    for table, body in cfg.items():
        if table == "instruments":
            continue
        out.append(f"[{table}]")
        out += [f"{k} = {_toml_value(v)}" for k, v in body.items()]
        out.append("")
    for inst in cfg["instruments"]:
        out.append("[[instruments]]")
        out += [f"{k} = {_toml_value(v)}" for k, v in inst.items()]
        out.append("")
    return "\n".join(out)


def session_lines(seed: int = 12, n: int = 500) -> list[str]:
    """JSONL lines: a seeded mixed session with malformed lines spliced in."""
    rng = random.Random(seed)
    gen = CommandGen(8, ts_step=5)
    lines = [json.dumps(c) for c in gen.session(rng, n)]
    # a crash and a squeeze at the end, so that liquidations (and their waterfall) happen
    for pct in (-60, 200, -60, 100):
        for m in gen.markets.values():
            gen.ts += 1
            m.index = m.index * (100 + pct) // 100
            lines.append(json.dumps({"type": "index_price", "ts": gen.ts, "symbol": m.symbol,
                                     "price": m.price(m.index)}))  # fmt: skip
    for bad in RAW_BAD_LINES:
        lines.insert(rng.randint(len(gen.accounts) + 2, len(lines)), bad)
    lines.insert(len(lines) // 2, "")  # a blank line is skipped, not a command
    return lines


def session_config() -> dict[str, Any]:
    """The whole waterfall (``make_config``'s "backstop") with a backstop, a1, that runs out
    of room so ADL takes what it cannot: since partial liquidation stopped slicing the
    backstop's share into 25% pieces (issue 9), a0 had room for every remainder."""
    config = make_config(waterfall="backstop")
    config["waterfall"]["backstop_accounts"] = ["a1"]
    return config


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("det")
    cfg = d / "config.toml"
    cfg.write_text(to_toml(session_config()))
    cmds = d / "commands.jsonl"
    cmds.write_text("\n".join(session_lines()) + "\n")
    return cfg, cmds


def clearsim_argv() -> list[str]:
    script = Path(sys.executable).with_name("clearsim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "clearsim"]


def run_cli(cfg: Path, cmds: Path, out: Path, hash_seed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    r = subprocess.run(
        [*clearsim_argv(), "run", "--config", str(cfg), "--commands", str(cmds), "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, (hash_seed, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr


def apply_all(cfg: Path, cmds: Path) -> tuple[Exchange, list[Event]]:
    ex = Exchange(Config.from_toml(cfg))
    events: list[Event] = []
    for cmd in read_commands(cmds):
        events += ex.apply(cmd)
    return ex, events


def test_config_round_trips(inputs: tuple[Path, Path]) -> None:
    """The TOML written here is the config meant (so the other tests test what they say)."""
    cfg, _ = inputs
    assert Config.from_toml(cfg) == Config.from_dict(session_config())


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_logs_are_byte_identical_under_any_hash_seed(
    inputs: tuple[Path, Path], tmp_path: Path, suffix: str
) -> None:
    """Three runs under different ``PYTHONHASHSEED`` write the same bytes."""
    cfg, cmds = inputs
    logs = []
    for hs in HASH_SEEDS:
        out = tmp_path / f"log-{hs}{suffix}"
        run_cli(cfg, cmds, out, hs)
        logs.append(out.read_bytes())
    assert logs[0], "empty log"
    for hs, data in zip(HASH_SEEDS[1:], logs[1:], strict=True):
        assert data == logs[0], f"log under PYTHONHASHSEED={hs} differs from seed 0"


def test_gz_log_holds_exactly_the_plain_log(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    """Compression changes the file, never the records."""
    cfg, cmds = inputs
    plain, gz = tmp_path / "log.jsonl", tmp_path / "log.jsonl.gz"
    run_cli(cfg, cmds, plain, "0")
    run_cli(cfg, cmds, gz, "1")
    assert gzip.decompress(gz.read_bytes()) == plain.read_bytes()


def test_same_commands_same_events_in_process(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    """Two fresh exchanges fed the same commands emit equal events, and those are exactly
    the events the CLI logged; the session really liquidated and rejected things."""
    cfg, cmds = inputs
    ex1, ev1 = apply_all(cfg, cmds)
    ex2, ev2 = apply_all(cfg, cmds)
    assert ev1 == ev2
    assert ex1.state() == ex2.state()
    kinds = {e.TYPE for e in ev1}
    for kind in ("fill", "settlement", "funding", "rejected", "liquidation_triggered",
                 "liquidation_fill", "backstop_transfer", "deleveraged"):  # fmt: skip
        assert kind in kinds, sorted(kinds)
    log = tmp_path / "log.jsonl"
    run_cli(cfg, cmds, log, "12345")
    _, logged, torn = read_log(log)
    assert torn is None
    assert logged == ev1


def test_log_re_executes_to_itself(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    """Feeding a log's recorded inputs back to a fresh exchange reproduces every event, and
    rebuilding from the log ends in the state the run ended in."""
    cfg, cmds = inputs
    log = tmp_path / "log.jsonl.gz"
    run_cli(cfg, cmds, log, "1")
    header, logged, _ = read_log(log)
    ex = Exchange(Config.from_dict(header.config))
    replayed: list[Event] = []
    for e in logged:
        if type(e) is Input:
            replayed += ex.apply(command_of(e))
    assert replayed == logged
    final, _ = apply_all(cfg, cmds)
    rebuilt, _ = rebuild(log)
    assert rebuilt.state() == final.state()
