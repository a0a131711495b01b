"""Announced funding -> one ``funding`` command per funding time, once the data reaches it.

Tickers (tardis ``derivative_ticker``, a capture's ``markPriceUpdate``) repeat the next
funding time and the rate predicted for it on every row. The command is emitted once per
distinct funding time and symbol, at that funding time, with the rate of the last row that
announced it, as soon as any row's time has reached it (so the output stays in ts order); a
funding time the data never reaches is not emitted.
"""

from __future__ import annotations

from clearsim.replay.importers._common import funding_line

__all__ = ["FundingClock"]


class FundingClock:
    def __init__(self) -> None:
        #: per symbol (JSON text): the funding announced and not yet reached; the last done
        self._pending: dict[str, tuple[int, str] | None] = {}
        self._done: dict[str, int] = {}

    def row(
        self,
        ts: int,
        symj: str,
        announced: tuple[int, str] | None,
        out_ts: list[int],
        out: list[str],
    ) -> None:
        """A ticker row at ``ts`` for ``symj``, announcing ``(funding ts, rate)`` or nothing."""
        pending, done = self._pending, self._done
        p = pending.get(symj)
        if p is not None and (announced is None or announced[0] != p[0]) and ts >= p[0]:
            self._emit(p[0], symj, p[1], out_ts, out)
        if announced is not None and announced[0] != done.get(symj):
            pending[symj] = announced
        # every symbol's announced funding that this row's time has reached, oldest first
        due = sorted((p[0], k, p[1]) for k, p in pending.items() if p and p[0] <= ts)
        for fts, k, rate in due:
            self._emit(fts, k, rate, out_ts, out)

    def _emit(self, fts: int, symj: str, rate: str, out_ts: list[int], out: list[str]) -> None:
        out.append(funding_line(fts, symj, rate))
        out_ts.append(fts)
        self._done[symj] = fts
        self._pending[symj] = None
