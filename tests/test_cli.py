"""The ``clearsim`` command line as a user meets it, in subprocesses (DESIGN §7, §10).

Pins down: ``run`` writes a log and prints a summary; ``state --json`` has the contract's
keys and decimal strings, with values hand-computed for a small scenario; ``state --at``
gives an earlier state; the text view works; every user error (missing or invalid files,
unknown config keys, bad flags, a file that is not a log, a corrupt log, an unknown log
format) is exit status 2 with exactly one ``error:`` line on stderr and no traceback, and
leaves what is on disk alone; a malformed command line is a rejection, not an error; a torn
log tail still gives a state, with a warning; ``demo`` runs.

The hand-computed scenario (BASE of tests/support.py: tick 0.1, lot 0.001, tiers 10%/0.4%
to 50,000 then 20%/0.5% to 250,000, no fees): ``mm`` deposits 1,000,000 and ``alice``
5,000; index 50,000; ``mm`` rests a sell of 1 BTC at 50,000 and ``alice`` buys it.

- alice: quote balance Q = 5,000 - 50,000 = -45,000; wallet balance W = Q + entry cost
  1 x 50,000 = 5,000 (no PnL realized yet); equity -45,000 + 50,000 = 5,000. Liquidation
  price: the highest mark m (on the tick grid) with -45,000 + m < 0.4% m, i.e.
  m < 45,000 / 0.996 = 45,180.72..., so 45,180.7.
- mm: Q = 1,050,000; W = 1,050,000 - 50,000 = 1,000,000; equity 1,000,000 (mark 50,000).
  Short 1: liquidated at the lowest m with
  1,050,000 - m >= ... failing, in tier 2 (MM = 0.5% m - 50): m > 1,050,050 / 1.005 =
  1,044,825.87..., so 1,044,825.9.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from clearsim.events.codec import seal
from clearsim.events.log import LogReader

T0 = 1_700_000_000_000_000

CONFIG_TOML = """\
[exchange]
collateral = "USDT"
collateral_decimals = 6
mark = "oracle"

[insurance_fund]
initial = "0"

[[instruments]]
symbol = "BTC-USD"
tick_size = "0.1"
lot_size = "0.001"
tiers = [ { max_notional = "50000", imr_ppm = 100000, mmr_ppm = 4000 },
          { max_notional = "250000", imr_ppm = 200000, mmr_ppm = 5000 } ]
"""

COMMANDS: list[dict[str, Any]] = [
    {"type": "deposit", "ts": T0, "account": "mm", "amount": "1000000"},
    {"type": "deposit", "ts": T0 + 1, "account": "alice", "amount": "5000"},
    {"type": "index_price", "ts": T0 + 2, "symbol": "BTC-USD", "price": "50000"},
    {"type": "order", "ts": T0 + 3, "account": "mm", "id": "m1", "symbol": "BTC-USD",
     "side": "sell", "qty": "1", "price": "50000", "tif": "gtc"},
    {"type": "order", "ts": T0 + 4, "account": "alice", "id": "a1", "symbol": "BTC-USD",
     "side": "buy", "qty": "1", "price": "50000", "tif": "gtc"},
]  # fmt: skip

_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def clearsim_argv() -> list[str]:
    """The installed ``clearsim`` script next to this interpreter, else ``-m replay.cli``."""
    script = Path(sys.executable).with_name("clearsim")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "clearsim"]


def cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*clearsim_argv(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def assert_user_error(r: subprocess.CompletedProcess[str], *mentions: str) -> str:
    """Exit status 2, exactly one stderr line ``error: ...``, no traceback anywhere."""
    out = f"exit {r.returncode}\nstdout: {r.stdout!r}\nstderr: {r.stderr!r}"
    assert "Traceback" not in r.stderr + r.stdout, out
    assert r.returncode == 2, out
    lines = r.stderr.splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith("error:"), out
    for m in mentions:
        assert m in lines[0], out
    return lines[0]


def write_commands(path: Path, commands: list[Any], extra_lines: Sequence[str] = ()) -> Path:
    lines = [json.dumps(c) for c in commands] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def dec(text: object) -> Decimal:
    assert isinstance(text, str) and _DECIMAL.fullmatch(text), f"not a decimal string: {text!r}"
    return Decimal(text)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The hand-computed scenario run once through ``clearsim run``."""
    d = tmp_path_factory.mktemp("cli")
    cfg = d / "config.toml"
    cfg.write_text(CONFIG_TOML)
    cmds = write_commands(d / "commands.jsonl", COMMANDS)
    log = d / "run.jsonl"
    r = cli("run", "--config", cfg, "--commands", cmds, "-o", log)
    return {"dir": d, "config": cfg, "commands": cmds, "log": log, "run": r}


def state_json(*args: str | Path) -> dict[str, Any]:
    r = cli("state", *args, "--json")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    state = json.loads(r.stdout)
    assert isinstance(state, dict)
    return state


# --------------------------------------------------------------------------- run and state


def test_run_writes_a_log_and_prints_a_summary(scenario: dict[str, Any]) -> None:
    """``run`` exits 0, says what it did on stdout, and leaves a verifiable log whose
    header records the config and whose events start at seq 1."""
    r = scenario["run"]
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert r.stdout.strip(), "no summary printed"
    assert str(scenario["log"]) in r.stdout
    reader = LogReader(scenario["log"])
    assert reader.header.config["instruments"][0]["symbol"] == "BTC-USD"
    assert reader.verify() is None
    seqs = [seq for seq, _ in reader.lines()]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 2 * len(COMMANDS)


def test_state_json_matches_the_hand_computed_scenario(scenario: dict[str, Any]) -> None:
    """``state --json``: the contract's keys, every amount a decimal string, the values of
    the module docstring's arithmetic, and ``seq`` the log's last seq."""
    state = state_json(scenario["log"])
    for key in ("seq", "insurance_fund", "system_debt", "accounts"):
        assert key in state, state
    reader = LogReader(scenario["log"])
    reader.verify()
    assert type(state["seq"]) is int and state["seq"] == reader.last_seq
    assert dec(state["insurance_fund"]) == 0
    assert dec(state["system_debt"]) == 0
    accounts = state["accounts"]
    assert set(accounts) == {"alice", "mm"}, accounts  # no system accounts in the view
    expect = {
        "alice": ("5000", "-45000", "5000", "1", "50000", "45180.7"),
        "mm": ("1000000", "1050000", "1000000", "-1", "50000", "1044825.9"),
    }
    for aid, (balance, quote, equity, qty, entry, liq) in expect.items():
        a = accounts[aid]
        assert dec(a["balance"]) == Decimal(balance), (aid, a)
        assert dec(a["quote_balance"]) == Decimal(quote), (aid, a)
        assert dec(a["equity"]) == Decimal(equity), (aid, a)
        assert set(a["positions"]) == {"BTC-USD"}, (aid, a)
        p = a["positions"]["BTC-USD"]
        assert dec(p["qty"]) == Decimal(qty), (aid, p)
        assert dec(p["entry_price"]) == Decimal(entry), (aid, p)
        assert p["liquidation_price"] is None or isinstance(p["liquidation_price"], str)
        assert dec(p["liquidation_price"]) == Decimal(liq), (aid, p)


def test_state_at_an_earlier_seq(scenario: dict[str, Any]) -> None:
    """``--at SEQ`` rebuilds the state after the command holding SEQ: before the trade
    alice has her deposit and no position; ``--at 0`` is the empty exchange; ``--at`` the
    last seq is the final state."""
    reader = LogReader(scenario["log"])
    index_seq = next(
        e.seq for e in reader.events() if e.TYPE == "input" and e.command["type"] == "index_price"
    )
    reader.verify()
    early = state_json(scenario["log"], "--at", str(index_seq))
    assert index_seq <= early["seq"] < reader.last_seq
    alice = early["accounts"]["alice"]
    assert dec(alice["balance"]) == 5000 and dec(alice["equity"]) == 5000
    assert dec(alice["quote_balance"]) == 5000 and alice["positions"] == {}
    assert dec(early["accounts"]["mm"]["balance"]) == 1_000_000
    empty = state_json(scenario["log"], "--at", "0")
    assert empty["seq"] == 0 and empty["accounts"] == {}
    final = state_json(scenario["log"])
    assert state_json(scenario["log"], "--at", str(final["seq"])) == final


def test_state_text_output(scenario: dict[str, Any]) -> None:
    """Without ``--json`` the state is readable text naming the accounts and their numbers."""
    r = cli("state", scenario["log"])
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    for text in ("alice", "mm", "45180.7", "quote balance", "-45000"):
        assert text in r.stdout, r.stdout


def test_malformed_command_line_is_a_rejection_not_an_error(tmp_path: Path) -> None:
    """Bad lines inside the commands file become ``rejected`` events (with the raw text in
    the input record) and the run carries on and exits 0."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG_TOML)
    bad = ["this is not json", '{"type": "deposit"}', "[1, 2]"]
    cmds = write_commands(tmp_path / "x.jsonl", COMMANDS[:2], bad)
    with cmds.open("a") as f:
        f.write(json.dumps(COMMANDS[2]) + "\n")
    log = tmp_path / "log.jsonl"
    r = cli("run", "--config", cfg, "--commands", cmds, "-o", log)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    events = list(LogReader(log).events())
    inputs = [e for e in events if e.TYPE == "input"]
    assert len(inputs) == 6
    rejected_causes = {e.cause for e in events if e.TYPE == "rejected"}
    assert [e.seq in rejected_causes for e in inputs] == [False, False, True, True, True, False]
    assert inputs[2].command == {"raw": "this is not json"}
    state = state_json(log)
    assert dec(state["accounts"]["alice"]["balance"]) == 5000


def test_torn_tail_still_gives_state_with_a_warning(
    scenario: dict[str, Any], tmp_path: Path
) -> None:
    """A log whose last line was cut mid-write (a crash) is still read up to the command the
    tear is in: ``state`` exits 0, prints the state, and warns on stderr."""
    data = scenario["log"].read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(data[: last + (len(data) - last) // 2])
    r = cli("state", torn, "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(warnings) == 1 and "warning" in warnings[0].lower(), r.stderr
    state = json.loads(r.stdout)
    # everything before the command the tear is in (a half command is left out with it)
    lines = data.splitlines(keepends=True)
    last_input = max(i for i, ln in enumerate(lines[1:], 1) if b'"type":"input","h"' in ln)
    assert state["seq"] == last_input - 1


def test_demo_runs() -> None:
    """``clearsim demo`` runs the bundled scenario end to end and tells its story."""
    r = cli("demo")
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    assert r.stdout.strip()


# --------------------------------------------------------------------------- user errors


def test_missing_config_file(tmp_path: Path, scenario: dict[str, Any]) -> None:
    """A config path that does not exist: one error line, exit 2, no log written."""
    log = tmp_path / "log.jsonl"
    r = cli("run", "--config", tmp_path / "nope.toml", "--commands", scenario["commands"],
            "-o", log)  # fmt: skip
    assert_user_error(r, "nope.toml")
    assert not log.exists() or log.stat().st_size == 0


def test_invalid_toml(tmp_path: Path, scenario: dict[str, Any]) -> None:
    """A config that is not TOML at all."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[exchange\ncollateral = "USDT\n')
    r = cli("run", "--config", cfg, "--commands", scenario["commands"], "-o", tmp_path / "l")
    assert_user_error(r)


def test_config_with_an_unknown_key(tmp_path: Path, scenario: dict[str, Any]) -> None:
    """A typo in a key is refused (naming the key), never silently ignored."""
    cfg = tmp_path / "typo.toml"
    cfg.write_text(CONFIG_TOML.replace('mark = "oracle"', 'mark = "oracle"\ncolour = "blue"'))
    r = cli("run", "--config", cfg, "--commands", scenario["commands"], "-o", tmp_path / "l")
    assert_user_error(r, "colour")


def test_missing_commands_file(tmp_path: Path, scenario: dict[str, Any]) -> None:
    r = cli("run", "--config", scenario["config"], "--commands", tmp_path / "nope.jsonl",
            "-o", tmp_path / "l.jsonl")  # fmt: skip
    assert_user_error(r, "nope.jsonl")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["run", "--bogus"],
        ["state"],
        ["state", "LOG", "--frobnicate"],
        ["state", "LOG", "--at", "abc"],
        ["state", "LOG", "--at", "-1"],
    ],
    ids=[
        "no-verb",
        "unknown-verb",
        "run-bogus-flag",
        "state-no-log",
        "state-bogus-flag",
        "at-not-a-number",
        "at-negative",
    ],
)
def test_bad_flags(argv: list[str], scenario: dict[str, Any]) -> None:
    """Bad verbs, flags and flag values (``--at -1`` included) are usage errors."""
    args = [str(scenario["log"]) if a == "LOG" else a for a in argv]
    assert_user_error(cli(*args))


def test_run_refuses_to_overwrite_a_log(scenario: dict[str, Any]) -> None:
    """Running onto an existing log is an error and the log is left byte for byte."""
    before = scenario["log"].read_bytes()
    r = cli("run", "--config", scenario["config"], "--commands", scenario["commands"],
            "-o", scenario["log"])  # fmt: skip
    assert_user_error(r)
    assert scenario["log"].read_bytes() == before


def test_run_into_a_missing_directory(tmp_path: Path, scenario: dict[str, Any]) -> None:
    r = cli("run", "--config", scenario["config"], "--commands", scenario["commands"],
            "-o", tmp_path / "no" / "such" / "dir" / "log.jsonl")  # fmt: skip
    assert_user_error(r)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello world\n",
        b"\x00\xff\x13binary\n",
        b'{"type": "input", "seq": 1}\n',
        CONFIG_TOML.encode(),
    ],
)
def test_state_of_a_file_that_is_not_a_log(tmp_path: Path, content: bytes) -> None:
    """Empty, text, binary, JSON-but-not-a-header, a TOML file: one error line each."""
    f = tmp_path / "not-a-log.jsonl"
    f.write_bytes(content)
    assert_user_error(cli("state", f))
    assert_user_error(cli("state", f, "--json"))


def test_state_of_a_missing_log(tmp_path: Path) -> None:
    assert_user_error(cli("state", tmp_path / "nope.jsonl"), "nope.jsonl")


def test_state_of_a_corrupt_log(scenario: dict[str, Any], tmp_path: Path) -> None:
    """One byte changed in a record mid-file breaks the checksum chain: an error naming
    the record, not a silently different state."""
    data = bytearray(scenario["log"].read_bytes())
    lines = data.split(b"\n")
    mid = len(lines) // 2
    offset = sum(len(ln) + 1 for ln in lines[:mid])
    pos = offset + lines[mid].index(b'"seq"') + 3  # inside a key, so the JSON may still parse
    data[pos] = ord("x") if data[pos] != ord("x") else ord("y")
    bad = tmp_path / "corrupt.jsonl"
    bad.write_bytes(bytes(data))
    assert_user_error(cli("state", bad, "--json"))
    # a changed digit of the record's ts keeps the line valid JSON: still caught
    data = bytearray(scenario["log"].read_bytes())
    pos = offset + lines[mid].index(b'"ts":') + len(b'"ts":') + 10
    assert chr(data[pos]).isdigit()
    data[pos] = ord("7") if data[pos] != ord("7") else ord("8")
    bad.write_bytes(bytes(data))
    assert_user_error(cli("state", bad))


def test_state_of_a_log_with_an_unknown_format(scenario: dict[str, Any], tmp_path: Path) -> None:
    """A header with a format version this engine does not know, correctly sealed: refused
    with an error naming the format, not misread."""
    first, rest = scenario["log"].read_bytes().split(b"\n", 1)
    header = orjson.loads(first)
    header.pop("h")
    header["format"] = 99
    line, _ = seal("", orjson.dumps(header, option=orjson.OPT_SORT_KEYS))
    bad = tmp_path / "future.jsonl"
    bad.write_bytes(line + rest)
    assert_user_error(cli("state", bad), "format")


def test_errors_do_not_depend_on_the_environment(scenario: dict[str, Any], tmp_path: Path) -> None:
    """The same one-line error under another locale and hash seed (no colour codes, no
    traceback when stderr is not a terminal)."""
    env = {**os.environ, "PYTHONHASHSEED": "123", "LC_ALL": "C", "TERM": "dumb"}
    r = cli("state", tmp_path / "nope.jsonl", env=env)
    assert_user_error(r, "nope.jsonl")


# --------------------------------------------------------------------------- self-explaining


def test_version() -> None:
    import clearsim

    r = cli("--version")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.strip() == f"clearsim {clearsim.__version__}"


def test_bare_clearsim_prints_the_usage_and_the_verbs() -> None:
    """No verb: the usage and every verb with its one-line description, exit 2."""
    from clearsim.replay.cli import VERBS

    r = cli()
    assert r.returncode == 2
    shown = " ".join((r.stdout + r.stderr).split())
    assert "usage: clearsim" in shown
    for name, verb in VERBS.items():
        assert name in shown
        assert " ".join(verb.help.split()) in shown, name


def test_every_verb_explains_itself() -> None:
    """Every verb's ``--help``: its one-line description and at least one example."""
    from clearsim.replay.cli import VERBS

    for name, verb in VERBS.items():
        r = cli(name, "--help")
        assert r.returncode == 0, (name, r.stderr)
        text = " ".join(r.stdout.split())
        assert " ".join(verb.help.split()) in text, name
        assert "example" in text.lower(), name
        assert f"clearsim {name}" in text.split("example", 1)[1], name


def test_parse_time() -> None:
    from clearsim.replay.cli.times import parse_time

    t = 1_584_009_480_000_000  # 2020-03-12T10:38:00Z
    assert parse_time("2020-03-12T10:38:00Z") == t
    assert parse_time("2020-03-12T10:38:00.5+00:00") == t + 500_000
    assert parse_time("2020-03-12T10:38:00.000001Z") == t + 1
    assert parse_time("2020-03-12T12:38:00.999999+02:00") == t + 999_999
    assert parse_time("2020-03-12T10:38:00.1234560Z") == t + 123_456
    assert parse_time(str(t)) == t
    assert parse_time("0") == 0
    # far from the epoch, where a float would lose the µs
    assert parse_time("9999-12-31T23:59:59.999999Z") == 253_402_300_799_999_999
    for bad in ("nope", "", "2020-03-12T10:38:00", "2020-03-12", "2020-03-12T10:38:00.1234567Z",
                "1.5"):  # fmt: skip
        with pytest.raises(ValueError):
            parse_time(bad)


def test_state_time_accepts_iso_8601(scenario: dict[str, Any]) -> None:
    """``--time`` as ISO-8601 UTC gives the state its µs gives."""
    import datetime as dt

    ts = T0 + 3
    iso = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ts)).isoformat()
    assert state_json(scenario["log"], "--time", iso) == state_json(
        scenario["log"], "--time", str(ts)
    )


@pytest.mark.parametrize("value", ["nope", "2020-03-12T10:38:00", "1.5"])
def test_state_bad_time_names_the_flag(scenario: dict[str, Any], value: str) -> None:
    assert_user_error(cli("state", scenario["log"], "--time", value), "--time")


@pytest.fixture(scope="module")
def long_cascade_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = tmp_path_factory.mktemp("story") / "long_cascade.log"
    scenario = Path(__file__).parent.parent / "fixtures" / "long_cascade" / "scenario.toml"
    r = cli("run", scenario, "-o", log)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return log


def test_story_of_a_log_tells_the_demo_story(long_cascade_log: Path) -> None:
    r = cli("story", long_cascade_log)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stderr.strip() == ""
    lines = r.stdout.splitlines()
    for section in ("Market", "Liquidations", "Waterfall", "Insurance fund", "System debt",
                    "Largest cascade"):  # fmt: skip
        assert section in lines, section
    assert "no liquidations" not in r.stdout


def test_story_of_a_torn_log_warns(long_cascade_log: Path, tmp_path: Path) -> None:
    data = long_cascade_log.read_bytes()
    torn = tmp_path / "torn.log"
    torn.write_bytes(data[: len(data) - 40])
    r = cli("story", torn)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("warning:"), r.stderr
    assert "Largest cascade" in r.stdout.splitlines()


def test_story_of_a_missing_log(tmp_path: Path) -> None:
    assert_user_error(cli("story", tmp_path / "nope.log"), "nope.log")
