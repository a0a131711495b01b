"""Plain-text rendering of state for people (the JSON shape is the contract; this is a view)."""

from __future__ import annotations

from typing import Any


def state_text(state: dict[str, Any]) -> str:
    lines = [
        f"seq {state['seq']}  ts {state['ts']}",
        f"insurance fund {state['insurance_fund']}  system debt {state['system_debt']}  "
        f"fee pool {state['fee_pool']}",
    ]
    for sym, p in state["instruments"].items():
        lines.append(f"{sym}: mark {p['mark']}  index {p['index']}  last {p['last_trade']}")
    lines.append(f"{len(state['accounts'])} accounts")
    header = f"  {'account':<16} {'balance':>16} {'equity':>16}  positions"
    lines.append(header)
    for aid, a in state["accounts"].items():
        pos = ", ".join(
            f"{sym} {p['qty']} @ {p['entry_price']} (liq {p['liquidation_price'] or '-'})"
            for sym, p in a["positions"].items()
        )
        flag = "  LIQUIDATABLE" if a["liquidatable"] else ""
        lines.append(f"  {aid:<16} {a['balance']:>16} {a['equity']:>16}  {pos or '-'}{flag}")
    return "\n".join(lines) + "\n"
