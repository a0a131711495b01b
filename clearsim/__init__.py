"""clearsim: an event-sourced exchange clearing simulator.

The one import name of the project. The repository's four layers are its subpackages
(``clearsim.events`` ← ``clearsim.orderbook`` ← ``clearsim.clearing`` ← ``clearsim.replay``,
imports only downward); this module promises the small public API below. Everything else is
importable but not promised.

    from clearsim import Exchange
    ex = Exchange.from_toml("exchange.toml")
    events = ex.apply({"type": "deposit", "ts": 1, "account": "alice", "amount": "1000"})
"""

from __future__ import annotations

from clearsim.clearing import Config, ConfigError, Exchange
from clearsim.events import ENGINE_VERSION as __version__
from clearsim.events import LogReader, LogWriter
from clearsim.replay.runner import RunSummary, run

__all__ = [
    "Config",
    "ConfigError",
    "Exchange",
    "LogReader",
    "LogWriter",
    "RunSummary",
    "__version__",
    "run",
]
