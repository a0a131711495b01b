"""Named exchanges' liquidation choices, as defaults under the user's own keys.

``[exchange] preset = "bitmex"`` starts the ``[exchange]`` and ``[waterfall]`` tables from
the preset; any key the config sets itself wins, key by key. The values are this project's
reading of each venue's public rules, simplified to the knobs DESIGN §6 names. Sources are
the primary-source notes for tracker issue 9 (``fidelity-sources.md``, cited as "§n");
where a source contradicts DESIGN or the issue, the source wins and the paragraph says so.

``binance`` — Binance "Liquidation" FAQ and its TraderWagon mirror (§1): "Smart
Liquidation" sends one IOC order; if the account is margin compliant after the realised
loss and the liquidation fee, liquidation stops and the trader keeps the rest (``partial``,
with a non-final slice's surplus kept by the trader), else the remainder is closed at the
bankruptcy price and the insurance fund takes over, the remaining collateral going to the
fund (``surplus = "insurance_fund"`` on the final close). "ADL is the final step taken only
when the Insurance Fund cannot accept the bankrupt client's positions", the fund's position
notional capped at "100% the size of the insurance fund" (§2): steps book -> takeover ->
adl, ``takeover_max_notional_ppm = 1_000_000`` (all or nothing: the notes' worked example),
``takeover_aggress`` (the fund offloads in the market, losses below the bankruptcy value
its own). ``liquidate_at_equal``: "When your margin ratio reaches 100%" (§10; the FAQ of §1
says "<", the two primary pages conflict). Simplifications: the IOC's size (25%) and limit
price (the bankruptcy price) are not published; the fee is one rate (Binance's is per
symbol, 0.5% from an old doc copy); ADL ranks with BitMEX's formula, not Binance's
"unrealized PnL/collateral multiplied by the margin ratio"; the mark is clearsim's median.
DESIGN said steps book -> adl: corrected to the source.

``bitmex`` — BitMEX liquidation page and liquidationExamples (§8): "the liquidation engine
takes over the position including any remaining maintenance margin, and then attempts to
liquidate the position with a Limit order at the bankruptcy price" (takeover, the resting
order rounded never to trade worse than the bankruptcy value; no fee, all margin to the
fund). ADL "If the liquidation cannot be filled by the time the Mark Price reaches the
Bankruptcy Price, and the Insurance Fund is depleted"; ranking "PNL Percentage * Effective
Leverage" / "PNL Percentage / Effective Leverage". Simplifications: the fund is deleveraged
when its own equity goes below zero, at its own bankruptcy value (BitMEX: when the mark
reaches the original bankruptcy price and the fund cannot aggress, at that price, which
restores the fund); effective leverage is notional/equity (per position at BitMEX); the
oracle is the mark (BitMEX: fair price marking); no partial FillOrKill down a risk tier;
XBTUSD's inverse contract and its MM % are not modelled.

``dydx`` — dYdX v4 code (§3-§6): liquidation orders limited to the fillable price
``GetFillablePrice`` with BA = 1 and SMMR = 1.5 (help centre; the code default is 0.1),
computed exactly and rounded toward the oracle (``ConvertFillablePriceToSubticks``: up for
a sell that closes a long, down for a buy that closes a short — DESIGN said "against the
liquidated account": it protects it); a liquidation fee of at most 1.5% ("Maximum
Liquidation Penalty"), surplus to the trader; ADL only at negative TNC
(``CanDeleverageSubaccount``: ``adl_negative_equity_only``) and without asking the
insurance fund first; a positive-equity account whose order fills nothing stays queued and
is retried on the next mark; transfers at the exact bankruptcy value per offsetting fill
(``GetBankruptcyPriceInQuoteQuantums``); strict E < MM (``IsLiquidatable``: MMR > TNC).
Simplifications: one position at a time, largest MM first (dYdX: the smallest perpetual id
in older code, a pseudo-random one today — DESIGN's "largest MM first (dYdX)" is clearsim's
choice, not dYdX's); the fee is rounded up (dYdX floors, one atom); ADL counterparties in
BitMEX rank order (dYdX: "randomly selected"); no per-block limits, final settlement or
withdrawal gating.

``okx-clawback`` — OKEx "Terms of Contract Billing" and OKCoin's insurance-fund page (§7):
"Margin call losses are covered first by the insurance fund. If the insurance fund can't
cover the loss, the remaining amount is socialized with a clawback", a "full account
clawback" by each user's profit in the week, charged on each ``settle_period`` command
(OKX's Friday 16:00 delivery); the surplus goes to the fund. A charge is capped at the
account's equity and the rest re-spread or recorded as system debt (what OKX did with an
uncollectable remainder is not confirmed); while a loss is pending, profit cannot be
withdrawn (OKX: realised PnL becomes withdrawable at delivery) — rejected ``profit_locked``.
Simplifications: market liquidation orders (OKX placed limit orders leaving ~1% margin,
secondary); the 0.5% fee has no source; the rate formula is DCoin's (secondary).

``hyperliquid`` — Hyperliquid docs (§11): market orders into the book first, "any
remaining collateral remains with the trader", no liquidation fee ("no clearance fee on
liquidations"); "If the account equity drops below 2/3 of the maintenance margin without
successful liquidation through the book", the liquidator vault ("hlp") takes the positions
and the margin: strictly below 2/3, exactly (``backstop_below_mm = "2/3"``; the old
666 667 ppm backstopped at E = 2/3 MM). A backstop account that was never deposited to
makes the backstop step raise a ``ConfigError`` naming ``waterfall.backstop_accounts``
when it is reached. ADL only once account value is negative. Simplifications and gaps:
partial liquidation (20% of positions above 100k, 30 s cooldown) is left out — the only
source is a testnet announcement mirror, not confirmed on mainnet; ADL closes at the
bankruptcy value (Hyperliquid: "at the previous oracle price"); BitMEX's ranking for
Hyperliquid's "unrealized pnl and leverage used"; the oracle is the mark.
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
            "backstop_below_mm": "2/3",
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
