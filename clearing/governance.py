"""Governance: the ``set`` command (DESIGN §6). :func:`clearing.params.apply_set` makes the
new configuration; this applies it to the live instruments and books, re-marks when the
mark policy changed, and re-checks every position holder (any parameter may move
requirements)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearsim.clearing import marks, watch
from clearsim.clearing.config import MarkPolicy
from clearsim.clearing.params import ParamError, apply_set
from clearsim.events import commands as C
from clearsim.events.rejects import RejectCode as R
from clearsim.events.rejects import reason
from clearsim.events.types import Event, ParamSet

if TYPE_CHECKING:
    from clearsim.clearing.exchange import Exchange


def set_param(ex: Exchange, out: list[Event], cause: int, c: C.Set) -> str | None:
    try:
        new_cfg, old, new = apply_set(ex.config, c.path, c.value)
    except ParamError as e:
        return reason(R.BAD_PARAM, str(e))
    ex.config = new_cfg
    for spec in new_cfg.instruments:
        inst = ex.instruments[spec.symbol]
        inst.spec = spec
        inst.book.stp = new_cfg.stp
        inst.resize_basis(new_cfg.basis_samples)
    out.append(ParamSet(ex.seq.next(), c.ts, cause, c.path, old, new))
    s = out[-1].seq
    if c.path.startswith("exchange.mark"):
        for inst in ex.instruments.values():
            if new_cfg.mark is MarkPolicy.ORACLE:
                if inst.index is not None:
                    marks.set_mark(ex, out, inst, inst.index, c.ts, s)
            else:
                marks.remark(ex, out, inst, c.ts, s)
    # Any parameter may move requirements: re-derive every position holder's threshold.
    for acct in list(ex.accounts.values()):
        if acct.positions:
            watch.after_balance_change(ex, out, acct, s)
    return None
