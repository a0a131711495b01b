"""The loss waterfall's steps (DESIGN §6), one module each, registered by name.

``[waterfall] steps`` lists names of :data:`STEPS`; the runner
(:mod:`clearsim.clearing.liquidation`) asks each listed step, in order, whether it
``applies`` to the position and lets it ``close`` what it can. A new step is a new module
here with a class satisfying :class:`~clearsim.clearing.steps.base.Step`, one line in
:data:`STEPS`, and its name in ``config.WATERFALL_STEPS`` (the config's vocabulary; the
check below keeps the two equal).
"""

from __future__ import annotations

from clearsim.clearing.config import WATERFALL_STEPS
from clearsim.clearing.steps.adl import Adl
from clearsim.clearing.steps.backstop import Backstop
from clearsim.clearing.steps.base import Case, Step, WaterfallContext
from clearsim.clearing.steps.book import BookStep
from clearsim.clearing.steps.clawback import ClawbackStep
from clearsim.clearing.steps.takeover import TakeoverStep

__all__ = ["STEPS", "Case", "Step", "WaterfallContext"]

#: every step by the name the config lists it by
STEPS: dict[str, Step] = {
    s.name: s for s in (BookStep(), Backstop(), TakeoverStep(), Adl(), ClawbackStep())
}

if tuple(STEPS) != WATERFALL_STEPS:  # a step registered here but not in the config, or back
    raise ImportError(f"steps.STEPS {tuple(STEPS)} != config.WATERFALL_STEPS {WATERFALL_STEPS}")
