"""The exchange: sequencer, accounts and ledger, margin, mark price, funding, liquidation.

``Exchange.from_toml(path)`` / ``Exchange.from_dict(d)``, then ``apply(command) -> events``.
"""

from clearsim.clearing.config import Config, ConfigError
from clearsim.clearing.exchange import Exchange

__all__ = ["Config", "ConfigError", "Exchange"]
