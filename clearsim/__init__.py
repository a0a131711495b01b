"""clearsim: an event-sourced exchange clearing simulator.

The one import name of the project. The repository's four layers are its subpackages
(``clearsim.events`` ← ``clearsim.orderbook`` ← ``clearsim.clearing`` ← ``clearsim.replay``,
imports only downward); this module promises the small public API below. Everything else is
importable but not promised.

    from clearsim import Exchange
    ex = Exchange.from_toml("exchange.toml")
    events = ex.apply({"type": "deposit", "ts": 1, "account": "alice", "amount": "1000"})

    log = clearsim.open_log("crash.log")      # needs the data extra: pip install 'clearsim[data]'
    log.events(types=["fill"])                # a pandas DataFrame, exact decimal units
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearsim.clearing import Config, ConfigError, Exchange
from clearsim.events import ENGINE_VERSION as __version__
from clearsim.events import LogReader, LogWriter
from clearsim.replay.runner import RunSummary, run

if TYPE_CHECKING:
    from clearsim.replay.tables.frames import LogFrames

__all__ = [
    "Config",
    "ConfigError",
    "Exchange",
    "LogReader",
    "LogWriter",
    "RunSummary",
    "__version__",
    "open_log",
    "run",
]


def open_log(path: str, *, units: str = "human") -> LogFrames:
    """A log's tables as pandas DataFrames (``replay.tables.frames``): events, the fund,
    clawbacks, ADL, accounts and cascades. Imports pyarrow and pandas only when called;
    without them, one error naming the extra to install (``pip install 'clearsim[data]'``)."""
    from clearsim.replay.tables import require

    require("pyarrow", "open_log")
    require("pandas", "open_log")
    from clearsim.replay.tables.frames import open_log as _open

    return _open(path, units=units)  # type: ignore[arg-type]
