"""The ``clawback`` step: it closes nothing; it takes the loss nobody covered.

Listed among the steps (``steps = ["book", "clawback"]``), it changes two things: the
``book`` step may make a fill whose shortfall the fund cannot pay (``socialises``), and a
bankrupt account's remaining negative balance becomes a socialised loss, clawed back from
the period's winners (:mod:`clearsim.clearing.clawback`), instead of system debt.
"""

from __future__ import annotations

from clearsim.clearing.steps.base import Case, WaterfallContext


class ClawbackStep:
    """A non-closing step: never applies to a position; marks the waterfall as socialising."""

    name = "clawback"
    socialises = True

    def applies(self, ctx: WaterfallContext, case: Case) -> bool:
        return False

    def close(self, ctx: WaterfallContext, case: Case) -> int:
        return 0
