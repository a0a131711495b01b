"""The state view of DESIGN §10 (``clearsim state --json``): accounts with equity, margins
and positions (entry and liquidation prices), marks, the fund, debt and pools, as decimal
strings. :func:`fmt_entry` is the one formatter of an entry price."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from clearsim.clearing import watch
from clearsim.clearing.accounts import ENTRY_SCALE, SYSTEM
from clearsim.clearing.config import fmt_atoms

if TYPE_CHECKING:
    from clearsim.clearing.exchange import Exchange


def fmt_entry(entry_e6: int, tick_size: str) -> str:
    """An entry price kept in millionths of a tick -> its exact decimal string."""
    return format((Decimal(entry_e6) * Decimal(tick_size) / ENTRY_SCALE).normalize(), "f")


def state(ex: Exchange) -> dict[str, Any]:
    """The state shape of DESIGN §10 (`clearsim state --json`), decimal strings."""
    sc = ex.scale
    accounts: dict[str, Any] = {}
    for aid in sorted(ex.accounts):
        if aid in SYSTEM:
            continue
        acct = ex.accounts[aid]
        equity, mm, im = watch.risk(ex, acct)
        positions: dict[str, Any] = {}
        for sym in sorted(acct.positions):
            pos = acct.positions[sym]
            inst = ex.instruments[sym]
            lp = watch.liquidation_price_of(ex, acct, sym)
            positions[sym] = {
                "qty": inst.grid.fmt_qty(pos.qty),
                "entry_price": fmt_entry(pos.entry_e6, inst.spec.tick_size),
                "liquidation_price": None if lp is None else inst.grid.fmt_price(lp),
            }
        accounts[aid] = {
            "balance": fmt_atoms(acct.balance, sc),
            "equity": fmt_atoms(equity, sc),
            "maintenance_margin": fmt_atoms(mm, sc),
            "initial_margin": fmt_atoms(im, sc),
            "liquidatable": equity < mm,
            "positions": positions,
        }
    marks = {
        sym: {
            "mark": None if inst.mark is None else inst.grid.fmt_price(inst.mark),
            "index": None if inst.index is None else inst.grid.fmt_price(inst.index),
            "last_trade": None if inst.last_trade is None else inst.grid.fmt_price(inst.last_trade),
        }
        for sym, inst in sorted(ex.instruments.items())
    }
    return {
        "seq": ex.seq.last,
        "ts": ex.ts,
        "insurance_fund": fmt_atoms(watch.risk(ex, ex.fund)[0], sc),
        "system_debt": fmt_atoms(-ex.debt.balance, sc),
        "socialized_pending": fmt_atoms(-ex.pool.balance, sc),
        "fee_pool": fmt_atoms(ex.fees.balance, sc),
        "instruments": marks,
        "accounts": accounts,
    }
