"""Building and installing the real wheel from a copy of the checkout, and running Python on
the installed copy alone: what a user's ``pip install`` gets (test_packaging, test_compiled,
and bench/compiled.py). A failed build or install raises :class:`BuildFailed` with pip's
stderr."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("events", "orderbook", "clearing", "replay")


class BuildFailed(RuntimeError):
    """pip could not build or install the wheel (its stderr is the message)."""


def build_wheel(src: Path, out: Path, env: dict[str, str] | None = None) -> Path:
    """Copy the checkout's build inputs into ``src`` (the build writes into its source
    tree), build the wheel into ``out`` without network or isolation, return its path."""
    for name in ("pyproject.toml", "README.md", "setup.py", "clearsim", *LAYERS):
        from_ = ROOT / name
        if from_.is_dir():
            # symlinks=True: clearsim/<layer> stay links, as in the checkout; the wheel must
            # take the layers from the package-dir mapping, not through the links.
            shutil.copytree(
                from_, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(from_, src / name)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=1500,
    )  # fmt: skip
    if proc.returncode != 0:
        raise BuildFailed(proc.stderr[-4000:])
    (whl,) = out.glob("clearsim-*.whl")
    return whl


def install(whl: Path, dest: Path) -> None:
    """Install ``whl`` alone into the folder ``dest`` (no dependencies, no index)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", str(dest), str(whl)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise BuildFailed(proc.stderr[-4000:])


def python_from(
    site: Path, args: list[str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` with only the install in ``site`` importable as clearsim (``cwd``
    must not be the checkout, whose ``clearsim/`` would come first on the path)."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(site)},
        timeout=timeout,
    )
