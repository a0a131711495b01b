"""Tables of a log for analysis: Arrow columns, Parquet/CSV export, notebook frames.

Everything here needs the ``data`` extra (pyarrow, and pandas for the frames); nothing in
the rest of clearsim imports this package except lazily, so ``import clearsim`` stays light
and a missing extra is one clear error (:func:`require`). Modules:

- :mod:`.units` — the units of a log's numbers, from its header alone (scales, steps);
- :mod:`.events` — the events table: one row per event, typed columns, built in batches;
- :mod:`.views` — the projections as tables (fund, clawback, ADL, accounts, cascades);
- :mod:`.write` — writing a table to Parquet or CSV (streamed, temporary file + rename);
- :mod:`.frames` — :func:`open_log`, the notebook API (pandas DataFrames).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from clearsim.events.errors import ClearsimError

__all__ = ["INSTALL", "DataExtraMissing", "TableError", "require"]

#: What to install for this package.
INSTALL = "pip install 'clearsim[data]'"


class DataExtraMissing(ClearsimError):
    """pyarrow or pandas is not installed; ``str()`` names the extra to install."""


class TableError(ClearsimError):
    """A log that cannot be made into a table (a record of the wrong shape), or a bad
    table request (an unknown event type or table); ``str()`` is one line."""


def require(module: str, what: str = "this") -> ModuleType:
    """Import ``module`` (``"pyarrow"``, ``"pandas"``), or raise :class:`DataExtraMissing`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataExtraMissing(f"{what} needs {module}: {INSTALL}") from None
