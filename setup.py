"""The opt-in compiled build: ``CLEARSIM_MYPYC=1`` compiles the clearing layer with mypyc.

Everything else about the build is in ``pyproject.toml``; without the variable this file
adds nothing and the wheel is pure Python. With it (mypy in the build environment, a C
compiler and the Python headers on the machine)::

    pip install 'mypy>=1.8' setuptools
    CLEARSIM_MYPYC=1 pip install --no-build-isolation .

the modules in :data:`COMPILED` become C extensions (the rest stays interpreted) and behave
the same: ``tests/test_compiled.py`` builds this wheel and re-executes every golden fixture
through it byte for byte. Measured in ``bench/README.md`` ("A compiled build"). Left out,
and why:

- ``orderbook/book.py``: its hot paths build objects with ``object.__new__`` plus slot
  stores and its price level subclasses ``deque``, both tuned for the interpreter; mypyc
  crashes on the first and refuses the second, and compiled after rewriting both the book
  ran slower (its loop works on ``sortedcontainers`` objects, which mypyc sees as ``Any``).
- ``clearing/steps/adl.py``: ``AdlCacheMismatch`` subclasses ``AssertionError``, which a
  mypyc native class cannot.
- the packages' ``__init__.py``: they only re-export, and a compiled ``steps/__init__``
  (built as one group inside the package) could not import the interpreted ``adl``.
- ``events/``: parsing takes untrusted input, and mypyc turns annotations into runtime
  type checks, so a bad command could raise where it is now a rejection.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup  # type: ignore[import-untyped]

HERE = Path(__file__).resolve().parent
#: Paths mypyc compiles, through the ``clearsim/`` links, so module names are ``clearsim.*``.
_CLEARING = sorted(
    str(p.relative_to(HERE))
    for pattern in ("clearsim/clearing/*.py", "clearsim/clearing/steps/*.py")
    for p in HERE.glob(pattern)
    if p.name not in ("adl.py", "__init__.py")
)
COMPILED = [*_CLEARING, "clearsim/orderbook/grid.py"]


def _ext_modules() -> list[object]:
    if os.environ.get("CLEARSIM_MYPYC", "") in ("", "0"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        raise SystemExit(
            "CLEARSIM_MYPYC=1 needs mypy in the build environment: "
            "pip install 'mypy>=1.8' setuptools && "
            "CLEARSIM_MYPYC=1 pip install --no-build-isolation ."
        ) from None
    os.chdir(HERE)  # mypyc reads [tool.mypy] from pyproject.toml and the paths from here
    # One group, named inside the package: its shared library is clearsim/clearing__mypyc,
    # so the wheel still holds one top-level name.
    return list(mypycify(COMPILED, opt_level="3", group_name="clearsim.clearing"))


if __name__ == "__main__":  # as setuptools runs it; tests/test_compiled.py reads COMPILED
    setup(ext_modules=_ext_modules())
