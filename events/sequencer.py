"""The sequencer: the single counter that gives every event its gapless ``seq``."""

from __future__ import annotations


class Sequencer:
    """Hands out seqs 1, 2, 3, ... ``last`` is the seq of the most recent event (0 = none yet).

    Hot paths read and bump ``last`` inline (``s = seqr.last + 1; seqr.last = s``) to avoid a
    method call per event; :meth:`next` is the same thing for everyone else.
    """

    __slots__ = ("last",)

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def next(self) -> int:
        self.last += 1
        return self.last
