"""The log's cash semantics: which account each event's cash moves to and from, and why.

The one place they are written down (DESIGN §2: mirrored from the ledger in ``clearing``):
every fold of balances (:mod:`.ledger`, the demo's :mod:`.story`) goes through
:func:`cash_moves`. Also the header-derived numbers every projection needs (money scale,
the fund's initial balance).
"""

from __future__ import annotations

from typing import Any

from clearsim.clearing.accounts import CLAWBACK_POOL, DEBT, FEES, INSURANCE
from clearsim.clearing.config import atoms

__all__ = ["Move", "Record", "cash_moves", "initial_fund", "money_scale"]

Record = dict[str, Any]


def money_scale(config: dict[str, Any]) -> int:
    ex = config.get("exchange", {})
    return int(10 ** int(ex.get("collateral_decimals", 6)))


def initial_fund(config: dict[str, Any]) -> int:
    ex = config.get("exchange", {})
    decimals = int(ex.get("collateral_decimals", 6))
    return atoms(config.get("insurance_fund", {}).get("initial", "0"), decimals, "initial")


#: (account, signed atoms, reason)
Move = tuple[str, int, str]


def _pair(a: str, b: str, amount: int, why: str) -> list[Move]:
    """``amount`` from ``b`` to ``a`` (negative: the other way)."""
    return [(a, amount, why), (b, -amount, why)]


def cash_moves(d: Record) -> list[Move]:
    """The cash a raw event record moves, per account, with a reason.

    The one place the log's cash semantics are written down: every fold of balances (the
    ledger, the demo's story) goes through it. For every event type the moves sum to zero
    except deposits and withdrawals, where cash enters or leaves the exchange.
    """
    t = d["type"]
    if t == "settlement":
        val, bf, sf = d["value"], d["buyer_fee"], d["seller_fee"]
        moves: list[Move] = [(d["buyer"], -(val + bf), "trade"), (d["seller"], val - sf, "trade")]
        if bf or sf:
            moves.append((FEES, bf + sf, "fee"))
        return moves
    if t == "funding":
        return [(str(a), int(amt), "funding") for a, amt in d["payments"] if amt]
    if t == "liquidation_fill":
        to_fund = d["fee"] + d["surplus_to_fund"] - d["fund_paid"]
        why = "shortfall" if d["fund_paid"] else "liquidation fee"
        return _pair(INSURANCE, d["account"], to_fund, why) if to_fund else []
    if t == "deposit":
        return [(d["account"], d["amount"], "deposit")]
    if t == "withdrawal":
        return [(d["account"], -d["amount"], "withdrawal")]
    if t == "insurance_deposit":
        return [(INSURANCE, d["amount"], "deposit")]
    if t == "insurance_payment":
        return _pair(d["account"], INSURANCE, d["amount"], d["reason"])
    # Transfers outside the book: ``value`` is what the liquidated account paid for the
    # change of its position (negative: what it received), paid to the taker-over.
    if t == "takeover":
        return _pair(INSURANCE, d["account"], d["value"], "takeover")
    if t == "backstop_transfer":
        return _pair(d["backstop"], d["account"], d["value"], "backstop")
    if t == "deleveraged":
        return _pair(d["counterparty"], d["account"], d["value"], "adl")
    if t == "socialized_loss":
        return _pair(d["account"], CLAWBACK_POOL, d["amount"], "socialized")
    if t == "clawback":
        moves = [(str(a), -int(c), "clawback") for a, c in d["charges"]]
        if d["collected"]:
            moves.append((CLAWBACK_POOL, d["collected"], "clawback"))
        return moves
    if t == "system_debt":
        return _pair(d["account"], DEBT, d["amount"], "system debt")
    return []
