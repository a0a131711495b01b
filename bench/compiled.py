"""The opt-in compiled build (``CLEARSIM_MYPYC=1``, see ``setup.py``) against the pure one.

What it measures
    The same three benches run under both builds, alternately (``--rounds`` times, so a
    load that comes and goes on a shared machine hits both alike), each in a fresh
    interpreter: ``bench/exchange.py --quick`` (``Exchange.apply`` on its seeded order
    flow, commands/s), ``bench/scenario.py --accounts N`` (the crash scenario, engine +
    encoding + writing, events/s) and ``clearsim verify`` of that scenario's log (events/s).
    The pure build is the one this interpreter imports; the compiled one is a folder the
    compiled wheel was installed into (``--site``), or built now from this checkout into a
    temporary folder (a few minutes: mypy, a C compiler and the Python headers needed).

How to read the output
    Per bench, every round's figure for each build, then the median and the best, and the
    speed-up of the medians. Both builds' scenario logs must be the same bytes (their
    sha256 is printed; a difference is an error, exit 1). The last line::

        exchange_per_s=<pure>/<compiled> scenario_events_per_s=<pure>/<compiled>
        verify_events_per_s=<pure>/<compiled> speedup=<exchange>x/<scenario>x/<verify>x

Re-run: ``python bench/compiled.py`` (``--rounds 3 --accounts 20000`` are the defaults;
``--site DIR`` skips the build).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(into: Path) -> Path:
    """Build the compiled wheel from a copy of the checkout (the tests' builder,
    ``tests/wheels.py``); install it into ``into / "site"``."""
    sys.path.insert(0, str(ROOT / "tests"))
    from wheels import BuildFailed, build_wheel, install

    (into / "src").mkdir(parents=True)
    (into / "wheel").mkdir()
    t = time.perf_counter()
    try:
        whl = build_wheel(into / "src", into / "wheel", {"CLEARSIM_MYPYC": "1"})
        install(whl, into / "site")
    except BuildFailed as e:
        raise SystemExit(f"error: the compiled wheel did not build or install:\n{e}") from None
    print(f"built the compiled wheel in {time.perf_counter() - t:.0f} s: {whl.name}")
    return into / "site"


def _check(argv: list[str], **kw: object) -> str:
    p = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if p.returncode != 0:
        raise SystemExit(f"error: {' '.join(argv[:4])}... failed:\n{p.stderr[-3000:]}")
    return str(p.stdout)


def _env(site: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return env


def _last(text: str, key: str) -> float:
    m = re.search(rf"{key}=([0-9.]+)", text.strip().splitlines()[-1])
    if m is None:
        raise SystemExit(f"error: no {key}= on the last line:\n{text[-2000:]}")
    return float(m.group(1))


def one_round(site: Path | None, accounts: int, work: Path) -> tuple[float, float, float, str]:
    """(exchange commands/s, scenario events/s, verify events/s, log sha256) for one build."""
    env, cwd = _env(site), str(work)  # cwd: not the checkout, so PYTHONPATH decides
    ex = _check([sys.executable, str(ROOT / "bench" / "exchange.py"), "--quick"], env=env, cwd=cwd)
    log = work / ("compiled.log" if site else "pure.log")
    sc = _check(
        [sys.executable, str(ROOT / "bench" / "scenario.py"), "--accounts", str(accounts),
         "--keep", str(log)],
        env=env,
        cwd=cwd,
    )  # fmt: skip
    events = _last(sc, "events")
    t = time.perf_counter()
    _check([sys.executable, "-m", "clearsim", "verify", str(log), "--quiet"], env=env, cwd=cwd)
    verify_s = time.perf_counter() - t
    sha = hashlib.sha256(log.read_bytes()).hexdigest()
    return _last(ex, "commands_per_s"), _last(sc, "events_per_s"), events / verify_s, sha


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--site", type=Path, help="a folder the compiled wheel is installed in")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--accounts", type=int, default=20_000, help="bench/scenario.py's size")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="clearsim-compiled-") as tmp:
        work = Path(tmp)
        site = a.site.resolve() if a.site else build(work / "build")
        figures: dict[str, list[list[float]]] = {"pure": [], "compiled": []}
        shas: set[str] = set()
        for r in range(a.rounds):
            for name, where in (("pure", None), ("compiled", site)):
                *fig, sha = one_round(where, a.accounts, work)
                figures[name].append(fig)
                shas.add(sha)
                print(
                    f"round {r + 1} {name:>8}: exchange {fig[0]:>8,.0f} cmd/s  scenario "
                    f"{fig[1]:>8,.0f} ev/s  verify {fig[2]:>8,.0f} ev/s  log {sha[:12]}"
                )
    names = ("exchange", "scenario", "verify")
    med = {b: [statistics.median(r[i] for r in figures[b]) for i in range(3)] for b in figures}
    best = {b: [max(r[i] for r in figures[b]) for i in range(3)] for b in figures}
    for i, n in enumerate(names):
        print(f"{n:>9}: median pure {med['pure'][i]:,.0f}, compiled {med['compiled'][i]:,.0f} "
              f"(x{med['compiled'][i] / med['pure'][i]:.2f}); best {best['pure'][i]:,.0f} vs "
              f"{best['compiled'][i]:,.0f}")  # fmt: skip
    if len(shas) != 1:
        print(f"error: the builds wrote different logs: {sorted(shas)}", file=sys.stderr)
        return 1
    print(f"logs identical: sha256 {shas.pop()}")
    up = [med["compiled"][i] / med["pure"][i] for i in range(3)]
    print(
        " ".join(f"{n}_per_s={med['pure'][i]:.0f}/{med['compiled'][i]:.0f}" for i, n in
                 enumerate(("exchange", "scenario_events", "verify_events")))
        + f" speedup={up[0]:.2f}x/{up[1]:.2f}x/{up[2]:.2f}x"
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
