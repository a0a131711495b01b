"""Shared builders for the clearing tests: a small exchange and terse command makers."""

from __future__ import annotations

import copy
from typing import Any

from clearsim.clearing import Config, Exchange
from clearsim.events.types import Event, Rejected

T0 = 1_700_000_000_000_000

BASE: dict[str, Any] = {
    "exchange": {"collateral": "USDT", "collateral_decimals": 6, "mark": "oracle"},
    "insurance_fund": {"initial": "0"},
    "instruments": [
        {
            "symbol": "BTC-USD",
            "tick_size": "0.1",
            "lot_size": "0.001",
            "tiers": [
                {"max_notional": "50000", "imr_ppm": 100000, "mmr_ppm": 4000},
                {"max_notional": "250000", "imr_ppm": 200000, "mmr_ppm": 5000},
            ],
        }
    ],
}


def config(**instrument: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    d["instruments"][0].update(instrument)
    return d


def exchange(cfg: dict[str, Any] | None = None, **instrument: Any) -> Exchange:
    return Exchange(Config.from_dict(cfg if cfg is not None else config(**instrument)))


class Driver:
    """Applies commands with an increasing clock and keeps every event."""

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.ts = T0
        self.events: list[Event] = []

    def __call__(self, type_: str, **fields: Any) -> list[Event]:
        self.ts += 1
        evs = self.ex.apply({"type": type_, "ts": self.ts, **fields})
        self.events.extend(evs)
        return evs

    def ok(self, type_: str, **fields: Any) -> list[Event]:
        evs = self(type_, **fields)
        rej = [e for e in evs if isinstance(e, Rejected)]
        assert not rej, rej
        return evs

    def deposit(self, account: str, amount: str) -> None:
        self.ok("deposit", account=account, amount=amount)

    def index(self, price: str, symbol: str = "BTC-USD") -> list[Event]:
        return self.ok("index_price", symbol=symbol, price=price)

    def order(
        self,
        account: str,
        oid: str,
        side: str,
        qty: str,
        price: str | None,
        tif: str = "gtc",
        symbol: str = "BTC-USD",
        **extra: Any,
    ) -> list[Event]:
        fields: dict[str, Any] = {
            "account": account,
            "id": oid,
            "symbol": symbol,
            "side": side,
            "qty": qty,
            "tif": tif,
            **extra,
        }
        if price is not None:
            fields["price"] = price
        return self("order", **fields)


def rejected(evs: list[Event]) -> str | None:
    """The reason if the command was rejected by the exchange, else None."""
    for e in evs:
        if isinstance(e, Rejected):
            return e.reason
    return None
