"""The append-only log: writing and reading back, tamper detection at the right seq, torn
tails (plain and gzip), resuming after a crash, and files that are not logs at all."""

from __future__ import annotations

import atexit
import gzip
import os
import random
import shutil
import tempfile
import typing
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clearsim.events.log as log_mod
from clearsim.events.codec import (
    BadRecord,
    CorruptLog,
    Header,
    LineTooLong,
    LogError,
    LogExists,
    NotALog,
    UnknownFormat,
    encode_event,
    seal,
)
from clearsim.events.log import LogReader, LogWriter, TornTail, read_log
from clearsim.events.types import EVENT_TYPES, Event, Input

HEADER = Header.new({"exchange": {"collateral": "USDT", "collateral_decimals": 6}}, seed=7)


# --------------------------------------------------------------------------- test data


def _value(rng: random.Random, annotation: object, depth: int = 0) -> Any:
    """A deterministic sample value for an event field annotation."""
    if annotation is int:
        return rng.choice([0, 1, -1, 2**63 - 1, -(2**63), rng.randrange(-(10**12), 10**12)])
    if annotation is str:
        return rng.choice(["BTC-USD", "alice", "", 'q"uo\\te', "line\nbreak", "ünï €", "𝄞"])
    if annotation is bool:
        return rng.random() < 0.5
    if annotation is type(None):
        return None
    if annotation is Any:
        return rng.choice([1, "x", None, True, [1, "a"], {"k": [2]}])
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list:
        return [_value(rng, args[0], depth + 1) for _ in range(rng.randrange(3))]
    if origin is dict:
        return {f"k{i}": _value(rng, args[1], depth + 1) for i in range(rng.randrange(3))}
    if args:  # a union
        return _value(rng, rng.choice(args), depth)
    raise AssertionError(f"no sample for {annotation!r}")


def make_events(n: int, seed: int = 1) -> list[Event]:
    """n events with seqs 1..n, cycling through every registered event type."""
    rng = random.Random(seed)
    names = sorted(EVENT_TYPES)
    out: list[Event] = []
    for seq in range(1, n + 1):
        cls = EVENT_TYPES[names[(seq - 1) % len(names)]]
        hints = typing.get_type_hints(cls)
        kw = {a.name: _value(rng, hints[a.name]) for a in attrs.fields(cls)}
        kw.update(seq=seq, ts=1_000 * seq, cause=max(0, seq - 1))
        if cls is Input:
            kw["command"] = {"type": "order", "qty": "0.5", "raw": 0.25, "n": [1, {"b": 2}]}
        out.append(cls(**kw))
    return out


def write_log(path: Path, evs: list[Event], header: Header = HEADER) -> bytes:
    with LogWriter.create(path, header, overwrite=True) as w:
        w.write_many(evs)
    return path.read_bytes()


def raw_log(header: Header, bodies: list[bytes]) -> bytes:
    """Seal arbitrary bodies into a log, bypassing the writer's checks."""
    out = []
    line, h = seal("", _header_body(header))
    out.append(line)
    for body in bodies:
        line, h = seal(h, body)
        out.append(line)
    return b"".join(out)


def _header_body(header: Header) -> bytes:
    from clearsim.events.codec import encode_header

    return encode_header(header)


def plain(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


N = 50
EVENTS = make_events(N)
_TMP = Path(tempfile.mkdtemp(prefix="clearsim-test-log-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
GOOD = write_log(_TMP / "good.jsonl", EVENTS)
GOOD_LINES = GOOD.splitlines(keepends=True)  # [header, record 1, ..., record N]


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_round_trip_every_event_type(tmp_path: Path, suffix: str) -> None:
    evs = make_events(3 * len(EVENT_TYPES), seed=2)
    assert {e.TYPE for e in evs} == set(EVENT_TYPES)
    path = tmp_path / f"log{suffix}"
    write_log(path, evs)
    header, back, torn = read_log(path)
    assert header == HEADER
    assert back == evs
    assert torn is None
    r = LogReader(path)
    assert [d["seq"] for d in r.records()] == list(range(1, len(evs) + 1))
    assert [s for s, _ in r.lines()] == list(range(1, len(evs) + 1))
    assert list(r) == evs
    assert r.last_seq == len(evs) and r.torn is None


def test_plain_and_gz_hold_the_same_lines(tmp_path: Path) -> None:
    a = write_log(tmp_path / "a.jsonl", EVENTS)
    write_log(tmp_path / "a.jsonl.gz", EVENTS)
    assert plain(tmp_path / "a.jsonl.gz") == a == GOOD
    r = LogReader(tmp_path / "a.jsonl")
    assert b"".join(line for _, line in r.lines()) == b"".join(GOOD_LINES[1:])


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_same_events_same_bytes(tmp_path: Path, suffix: str) -> None:
    a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    write_log(a, EVENTS)
    w = LogWriter.create(b, HEADER)
    for ev in EVENTS:  # one at a time, flushing now and then: the file is the same
        w.write(ev)
        if ev.seq % 7 == 0 and suffix == ".jsonl":
            w.flush()
    w.close()
    assert a.read_bytes() == b.read_bytes()


def test_header_only_log(tmp_path: Path) -> None:
    p = tmp_path / "h.jsonl"
    LogWriter.create(p, HEADER).close()
    assert read_log(p) == (HEADER, [], None)
    w = LogWriter.resume(p)
    assert w.last_seq == 0 and w.header == HEADER and w.torn is None
    w.close()


def test_records_carry_checksum(tmp_path: Path) -> None:
    r = LogReader(_TMP / "good.jsonl")
    recs = list(r.records())
    assert recs[-1]["h"] == r.last_h
    assert recs[0]["type"] == EVENTS[0].TYPE


# --------------------------------------------------------------------------- writer rules


def test_seq_must_follow(tmp_path: Path) -> None:
    w = LogWriter.create(tmp_path / "s.jsonl", HEADER)
    with pytest.raises(ValueError, match="does not follow 0"):
        w.write(EVENTS[1])
    w.write(EVENTS[0])
    with pytest.raises(ValueError):
        w.write(EVENTS[0])
    with pytest.raises(ValueError):
        w.write(attrs.evolve(EVENTS[1], seq=True))
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write(EVENTS[1])
    assert read_log(tmp_path / "s.jsonl")[1] == EVENTS[:1]


def test_bad_event_writes_nothing(tmp_path: Path) -> None:
    p = tmp_path / "b.jsonl"
    with LogWriter.create(p, HEADER) as w:
        w.write(EVENTS[0])
        bad = attrs.evolve(EVENTS[1], seq=2, ts=1.5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="float"):
            w.write(bad)
        assert w.last_seq == 1
        w.write(EVENTS[1])
    assert read_log(p)[1] == EVENTS[:2]


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_bytes(b"precious")
    with pytest.raises(LogExists) as e:
        LogWriter.create(p, HEADER)
    assert "\n" not in str(e.value)
    assert p.read_bytes() == b"precious"
    LogWriter.create(p, HEADER, overwrite=True).close()
    assert read_log(p) == (HEADER, [], None)
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    LogWriter.create(empty, HEADER).close()  # an empty file is fair game


def test_context_manager_closes_on_error(tmp_path: Path) -> None:
    p = tmp_path / "c.jsonl.gz"
    with pytest.raises(RuntimeError), LogWriter.create(p, HEADER) as w:
        w.write_many(EVENTS[:5])
        raise RuntimeError("boom")
    assert w.closed
    assert read_log(p) == (HEADER, EVENTS[:5], None)


def test_flush_makes_records_visible(tmp_path: Path) -> None:
    for name in ("f.jsonl", "f.jsonl.gz"):
        p = tmp_path / name
        w = LogWriter.create(p, HEADER)
        w.write_many(EVENTS[:10])
        w.flush(fsync=True)
        _, evs, torn = read_log(p)  # still open: a gzip member without its trailer ...
        # ... reads as cut, so the last command (from the input at seq 9) is held back.
        assert evs == EVENTS[: 10 if not name.endswith(".gz") else _boundary(10)]
        assert (torn is None) == (not name.endswith(".gz"))
        w.close()
        assert read_log(p) == (HEADER, EVENTS[:10], None)


def test_writer_refuses_over_long_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_mod, "MAX_LINE", 300)
    w = LogWriter.create(tmp_path / "l.jsonl", HEADER)
    big = Input(seq=1, ts=1, cause=0, command={"x": "y" * 300})
    with pytest.raises(ValueError, match="MAX_LINE"):
        w.write(big)
    assert w.last_seq == 0
    w.close()


# --------------------------------------------------------------------------- tampering


def _write(name: str, data: bytes) -> Path:
    p = _TMP / name
    p.write_bytes(data)
    return p


def _expect_corrupt(path: Path, seq: int) -> None:
    with pytest.raises(CorruptLog) as e:
        list(LogReader(path).events())
    assert e.value.seq == seq
    assert e.value.line_no == seq + 1
    assert f"record seq {seq} " in str(e.value)
    assert "\n" not in str(e.value)


def _boundary(k: int, events: list[Event] = EVENTS) -> int:
    """The good prefix when a tear follows intact record ``k``: the command the tear is in
    (from its ``input`` on) goes with it, so the prefix ends before the last input <= k;
    records before the first input belong to no command."""
    inputs = [e.seq for e in events[:k] if type(e) is Input]
    return inputs[-1] - 1 if inputs else k  # records before the first input: no command


def _expect_torn(path: Path, last_intact: int) -> TornTail:
    last_good = _boundary(last_intact)
    r = LogReader(path)
    assert list(r.events()) == EVENTS[:last_good]
    assert r.torn is not None
    assert r.torn.last_good_seq == last_good
    assert r.torn.line_no == last_good + 2
    assert r.torn.offset == sum(map(len, GOOD_LINES[: last_good + 1]))
    return r.torn


def _last_line_outcome(line: bytes) -> str:
    """What the reader must make of a damaged last line (see events.log's failure model)."""
    import orjson

    if not line.endswith(b"\n"):
        return "torn"
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "torn"
    seq = d.get("seq") if isinstance(d, dict) else None
    return "corrupt" if type(seq) is int and seq != N else "torn"


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(k=st.integers(1, N), data=st.data())
def test_changed_byte_found_at_its_seq(k: int, data: st.DataObject) -> None:
    line = GOOD_LINES[k]
    pos = data.draw(st.integers(0, len(line) - 1), label="pos")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != line[pos]), label="byte")
    bad = line[:pos] + bytes([new]) + line[pos + 1 :]
    path = _write("tampered.jsonl", b"".join(GOOD_LINES[:k]) + bad + b"".join(GOOD_LINES[k + 1 :]))
    if new == 0x0A and pos < len(line) - 1:
        _expect_corrupt(path, k)  # split in two: a bad line with more after it
    elif pos == len(line) - 1:  # the newline itself: merged with the next line
        if k == N:
            _expect_torn(path, N - 1)
        elif k == N - 1:
            _expect_torn(path, N - 2)  # the merged line is last and unparsable
        else:
            _expect_corrupt(path, k)
    elif k < N:
        _expect_corrupt(path, k)
    elif _last_line_outcome(bad) == "torn":
        _expect_torn(path, N - 1)
    else:
        _expect_corrupt(path, N)


@pytest.mark.parametrize("k", range(1, N))
def test_dropped_record_found_at_its_seq(k: int) -> None:
    lines = GOOD_LINES[:k] + GOOD_LINES[k + 1 :]
    _expect_corrupt(_write("dropped.jsonl", b"".join(lines)), k)


def test_dropping_the_last_record_is_just_a_shorter_log() -> None:
    # Nothing after it to chain to: only the writer's own count could tell (replay does).
    p = _write("short.jsonl", b"".join(GOOD_LINES[:-1]))
    assert read_log(p) == (HEADER, EVENTS[:-1], None)


@pytest.mark.parametrize("k", range(1, N))
def test_swapped_records_found_at_first_seq(k: int) -> None:
    lines = list(GOOD_LINES)
    lines[k], lines[k + 1] = lines[k + 1], lines[k]
    _expect_corrupt(_write("swapped.jsonl", b"".join(lines)), k)


def test_duplicated_record_found() -> None:
    lines = [*GOOD_LINES[:11], GOOD_LINES[10], *GOOD_LINES[11:]]
    _expect_corrupt(_write("dup.jsonl", b"".join(lines)), 11)


def test_seq_gap_with_good_checksums_is_corrupt() -> None:
    bodies = [encode_event(EVENTS[0]), encode_event(EVENTS[2]), encode_event(EVENTS[3])]
    _expect_corrupt(_write("gap.jsonl", raw_log(HEADER, bodies)), 2)
    _expect_corrupt(_write("gap-last.jsonl", raw_log(HEADER, bodies[:2])), 2)


def test_corrupt_gz_found() -> None:
    lines = list(GOOD_LINES)
    lines[20] = lines[20].replace(b'"seq":20', b'"seq":21')
    _expect_corrupt(_write("c.jsonl.gz", gzip.compress(b"".join(lines))), 20)


def test_tampered_header(tmp_path: Path) -> None:
    p = tmp_path / "h.jsonl"
    p.write_bytes(GOOD.replace(b'"seed":7', b'"seed":8', 1))
    with pytest.raises(CorruptLog) as e:
        LogReader(p)
    assert e.value.seq == 0 and e.value.line_no == 1


def test_unknown_record_type_is_bad_record(tmp_path: Path) -> None:
    body = encode_event(EVENTS[0]).replace(f'"type":"{EVENTS[0].TYPE}"'.encode(), b'"type":"x"')
    p = tmp_path / "u.jsonl"
    p.write_bytes(raw_log(HEADER, [body]))
    r = LogReader(p)
    assert [d["type"] for d in r.records()] == ["x"]  # intact: projections may skip it
    with pytest.raises(BadRecord) as e:
        list(r.events())
    assert e.value.line_no == 2 and "line 2" in str(e.value) and "'x'" in str(e.value)


# --------------------------------------------------------------------------- torn tails


def test_torn_last_line_every_offset() -> None:
    start = len(GOOD) - len(GOOD_LINES[-1])
    for cut in range(start, len(GOOD) + 1):
        p = _write("torn.jsonl", GOOD[:cut])
        r = LogReader(p)
        evs = list(r.events())
        if cut == start:
            assert evs == EVENTS[:-1] and r.torn is None
        elif cut == len(GOOD):
            assert evs == EVENTS and r.torn is None
        else:
            torn = _expect_torn(p, N - 1)
            assert "incomplete" in torn.reason
        # ... and appending resumes after the last good record, giving the uninterrupted log.
        with LogWriter.resume(p) as w:
            assert w.last_seq == len(evs)
            assert (w.torn is not None) == (start < cut < len(GOOD))
            w.write_many(EVENTS[w.last_seq :])
        assert p.read_bytes() == GOOD


@pytest.mark.parametrize(
    "tail",
    [
        b"\x00" * 300,  # zero-filled blocks after a crash
        b"\x00" * 300 + b"\n",
        b'{"seq":51,"ts"\n',
        b"garbage\n",
    ],
)
def test_garbage_tail_is_torn(tail: bytes) -> None:
    p = _write("garbage-tail.jsonl", GOOD + tail)
    torn = _expect_torn(p, N)
    with LogWriter.resume(p) as w:
        assert w.last_seq == _boundary(N)
    assert p.read_bytes() == GOOD[: torn.offset]


def test_bad_line_followed_by_more_is_corrupt() -> None:
    _expect_corrupt(_write("g.jsonl", GOOD + b"garbage\n\n"), N + 1)
    _expect_corrupt(_write("g2.jsonl", GOOD + b"\n" + GOOD_LINES[1]), N + 1)


def test_resume_refuses_corrupt_log() -> None:
    lines = list(GOOD_LINES)
    lines[5], lines[6] = lines[6], lines[5]
    data = b"".join(lines) + b"torn"
    p = _write("rc.jsonl", data)
    with pytest.raises(CorruptLog):
        LogWriter.resume(p)
    assert p.read_bytes() == data


def _gz_log(path: Path) -> tuple[bytes, int]:
    """A gzip log written in steps (header flushed alone), and the size after the header."""
    w = LogWriter.create(path, HEADER)
    after_header = path.stat().st_size
    for ev in EVENTS:
        w.write(ev)
        if ev.seq % 10 == 0:
            w.flush()
    w.close()
    return path.read_bytes(), after_header


def test_gz_truncated_anywhere_keeps_good_prefix(tmp_path: Path) -> None:
    full, after_header = _gz_log(tmp_path / "full.jsonl.gz")
    p = tmp_path / "cut.jsonl.gz"
    cuts = sorted(set(range(after_header, len(full), 5)) | set(range(len(full) - 40, len(full))))
    seen = -1
    for cut in cuts:
        p.write_bytes(full[:cut])
        header, evs, torn = read_log(p)
        assert header == HEADER
        assert evs == EVENTS[: len(evs)]
        assert len(evs) >= seen  # more bytes never give fewer events
        seen = len(evs)
        assert torn is not None and torn.last_good_seq == len(evs)
        assert torn.offset == sum(map(len, GOOD_LINES[: len(evs) + 1]))
    # A stream cut inside its trailer decodes every record, but it is cut: the last
    # command may be incomplete as far as the records can tell, and goes with the tail.
    assert seen == _boundary(N)


@pytest.mark.parametrize("step", [1, 3, 7])
def test_gz_resume_equals_uninterrupted(tmp_path: Path, step: int) -> None:
    full, after_header = _gz_log(tmp_path / "full.jsonl.gz")
    p = tmp_path / "r.jsonl.gz"
    for cut in range(after_header + step, len(full), 37 * step):
        p.write_bytes(full[:cut])
        with LogWriter.resume(p) as w:
            assert w.torn is not None
            n = w.last_seq
            w.write_many(EVENTS[n : n + 5])  # resume twice: three gzip members
        with LogWriter.resume(p) as w:
            assert w.torn is None and w.last_seq == min(N, n + 5)
            w.write_many(EVENTS[w.last_seq :])
        assert plain(p) == GOOD
        assert read_log(p) == (HEADER, EVENTS, None)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".resume-")]


def test_plain_resume_clean_log_appends(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    write_log(p, EVENTS[:20])
    with LogWriter.resume(p) as w:
        assert w.last_seq == 20 and w.torn is None
        r = LogReader(p)
        assert r.verify() is None and w.last_h == r.last_h
        w.write_many(EVENTS[20:])
    assert p.read_bytes() == GOOD


# --------------------------------------------------------------------------- not logs


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes(range(256)) * 4,
        random.Random(3).randbytes(5000),
        b"\n",
        b"hello world\n",
        b'{"type":"fill","seq":1}\n',
        b"[1,2,3]\n",
        GOOD_LINES[0][:-1],  # the header without its newline: never a finished header
        gzip.compress(GOOD),  # a gzip log without the .gz name
    ],
)
def test_not_a_log(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "x.jsonl"
    p.write_bytes(data)
    with pytest.raises(NotALog) as e:
        LogReader(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)
    with pytest.raises(NotALog):
        LogWriter.resume(p)
    assert p.read_bytes() == data


@pytest.mark.parametrize(
    "data", [b"", b"not gzip at all\n", GOOD, gzip.compress(b"\xff\x00" * 99, mtime=0)]
)
def test_gz_not_a_log(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "x.jsonl.gz"
    p.write_bytes(data)
    with pytest.raises(NotALog):
        LogReader(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="cannot open"):
        LogReader(tmp_path / "nope.jsonl")
    with pytest.raises(LogError):
        LogWriter.resume(tmp_path / "nope.jsonl.gz")


@pytest.mark.parametrize("fmt", [2, 0, "1", None])
def test_unknown_format(tmp_path: Path, fmt: object) -> None:
    p = tmp_path / "f.jsonl"
    body = _header_body(HEADER).replace(b'"format":1', b'"format":' + _json(fmt))
    line, _ = seal("", body)
    p.write_bytes(line + GOOD_LINES[1])
    with pytest.raises(UnknownFormat) as e:
        LogReader(p)
    assert "\n" not in str(e.value) and "format" in str(e.value)
    assert e.value.format == fmt


def _json(v: object) -> bytes:
    import orjson

    return orjson.dumps(v)


def test_huge_line(tmp_path: Path) -> None:
    p = tmp_path / "huge.jsonl"
    with p.open("wb") as f:
        f.write(GOOD_LINES[0])
        f.write(b"x" * (log_mod.MAX_LINE + 10) + b"\n")
        f.write(GOOD_LINES[2])
    with pytest.raises(LineTooLong) as e:
        list(LogReader(p).records())
    assert isinstance(e.value, CorruptLog)
    assert e.value.seq == 1 and e.value.line_no == 2
    assert "\n" not in str(e.value)


def test_huge_line_bound_is_read_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_mod, "MAX_LINE", 400)
    p = tmp_path / "h.jsonl"
    p.write_bytes(GOOD_LINES[0] + b"{" + b" " * 500 + b"}\n")
    with pytest.raises(LineTooLong):
        list(LogReader(p).lines())
    monkeypatch.setattr(log_mod, "MAX_LINE", 100)
    with pytest.raises(NotALog):
        LogReader(p)  # a header beyond the bound: not a log


def test_torn_tail_str_is_one_line() -> None:
    p = _write("t.jsonl", GOOD[:-5])
    r = LogReader(p)
    r.verify()
    b = _boundary(N - 1)
    assert str(r.torn) == (
        f"torn tail at line {b + 2} (byte {sum(map(len, GOOD_LINES[: b + 1]))}): incomplete "
        f"last line (no newline) at line {N + 1}, inside the command begun at seq {b + 1} "
        f"(its {N - 1 - b} intact record(s) are left out with it); records up to seq {b} "
        "are intact"
    )


def test_garbage_with_good_checksum_is_corrupt_not_torn(tmp_path: Path) -> None:
    p = tmp_path / "g.jsonl"
    p.write_bytes(raw_log(HEADER, [encode_event(EVENTS[0]), b'{"seq":"two"}']))
    with pytest.raises(CorruptLog, match="no valid seq") as e:
        list(LogReader(p).records())
    assert e.value.seq == 2
