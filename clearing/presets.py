"""Named exchanges' liquidation choices, as defaults under the user's own keys.

``[exchange] preset = "bitmex"`` starts the ``[exchange]`` and ``[waterfall]`` tables from
the preset; any key the config sets itself wins, key by key. The values are this project's
reading of each venue's public rules, simplified to the knobs DESIGN §6 names:

- ``binance``: median mark; liquidation orders at the bankruptcy price into the book, the
  rest auto-deleveraged; what is left of the margin goes to the insurance fund; partial
  liquidation in 25% steps.
- ``bitmex``: the liquidation engine (the fund) takes the position over at the bankruptcy
  price and works it in the book; the remaining margin goes to the fund; ADL when the fund
  cannot absorb the loss.
- ``dydx``: oracle mark; liquidation orders down to dYdX v4's fillable price
  (BA = 1, SMMR = 1.5), a liquidation fee of at most 1.5% to the fund, ADL for the rest.
- ``okx-clawback``: market liquidation into the book, losses the fund cannot cover are
  socialised and clawed back from the period's profitable accounts on each settle command
  (OKX's former weekly clawback).
- ``hyperliquid``: market liquidation into the book; below 2/3 of maintenance margin the
  backstop vault ("hlp") takes the position over; ADL only once equity is negative.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "binance": {
        "exchange": {"mark": "median"},
        "waterfall": {
            "steps": ["book", "takeover", "adl"],
            "price_limit": "bankruptcy",
            "liquidation_fee_ppm": 5000,
            "surplus": "insurance_fund",
            "partial": True,
            "partial_fraction_ppm": 250_000,
            "takeover_max_notional_ppm": 1_000_000,
            "takeover_aggress": True,
            "liquidate_at_equal": True,
        },
    },
    "bitmex": {
        "exchange": {"mark": "oracle"},
        "waterfall": {
            "steps": ["takeover", "adl"],
            "price_limit": "bankruptcy",
            "liquidation_fee_ppm": 0,
            "surplus": "insurance_fund",
        },
    },
    "dydx": {
        "exchange": {"mark": "oracle"},
        "waterfall": {
            "steps": ["book", "adl"],
            "price_limit": "fillable",
            "liquidation_fee_ppm": 15_000,
            "surplus": "trader",
            "fillable_ba_ppm": 1_000_000,
            "fillable_smmr_ppm": 1_500_000,
            "adl_negative_equity_only": True,
        },
    },
    "okx-clawback": {
        "exchange": {"mark": "oracle"},
        "waterfall": {
            "steps": ["book", "clawback"],
            "price_limit": "market",
            "liquidation_fee_ppm": 5000,
            "surplus": "insurance_fund",
            "clawback_period": "settle_command",
        },
    },
    "hyperliquid": {
        "exchange": {"mark": "oracle"},
        "waterfall": {
            "steps": ["book", "backstop", "adl"],
            "price_limit": "market",
            "liquidation_fee_ppm": 0,
            "surplus": "trader",
            "backstop_accounts": ["hlp"],
            "backstop_below_mm_ppm": 666_667,
            "adl_negative_equity_only": True,
        },
    },
}


def with_preset(d: dict[str, Any], name: str) -> dict[str, Any] | None:
    """``d`` with the preset's tables under it (``d``'s keys win), or None if unknown."""
    preset = PRESETS.get(name)
    if preset is None:
        return None
    out = dict(d)
    for table, defaults in preset.items():
        mine = d.get(table, {})
        if isinstance(mine, dict):
            out[table] = {**defaults, **mine}
    return out
