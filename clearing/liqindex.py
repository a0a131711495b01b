"""Per-instrument index of accounts by liquidation price, so a mark move is O(log n + k).

A single-position account's liquidation threshold depends only on its own cash and
position, so it is stored once, sorted: longs are liquidated when the mark falls to their
price or below, shorts when it rises to theirs or above, and a mark update visits only the
accounts it crosses. Accounts with positions in several instruments have thresholds that
move with other marks; they are kept in an insertion-ordered registry and re-checked on
every mark change of any instrument they hold.
"""

from __future__ import annotations

from sortedcontainers import SortedList

_LONG, _SHORT, _MULTI = 1, -1, 0


class LiquidationIndex:
    __slots__ = ("_key", "_longs", "_multi", "_shorts")

    def __init__(self) -> None:
        self._longs: SortedList = SortedList()  # (price, account_id)
        self._shorts: SortedList = SortedList()
        self._multi: dict[str, None] = {}
        self._key: dict[str, tuple[int, int]] = {}  # account -> (kind, price)

    def __len__(self) -> int:
        return len(self._key)

    def set_single(self, account: str, long: bool, price: int | None) -> None:
        """Index ``account``'s lone position; ``price`` None = no mark liquidates it."""
        if price is not None and self._key.get(account) == (_LONG if long else _SHORT, price):
            return  # unchanged (most fills and fees move it by less than a tick): no re-sort
        self.discard(account)
        if price is None:
            return
        if long:
            self._longs.add((price, account))
            self._key[account] = (_LONG, price)
        else:
            self._shorts.add((price, account))
            self._key[account] = (_SHORT, price)

    def set_multi(self, account: str) -> None:
        """Register a multi-position account: re-checked on every mark change."""
        if self._key.get(account) == (_MULTI, 0):
            return
        self.discard(account)
        self._multi[account] = None
        self._key[account] = (_MULTI, 0)

    def discard(self, account: str) -> None:
        key = self._key.pop(account, None)
        if key is None:
            return
        kind, price = key
        if kind == _LONG:
            self._longs.remove((price, account))
        elif kind == _SHORT:
            self._shorts.remove((price, account))
        else:
            del self._multi[account]

    def crossed(self, mark: int) -> list[str]:
        """Accounts to check at ``mark``: longs priced at or above it (deepest first), shorts
        at or below it (deepest first), then every multi-position account."""
        out = [a for _, a in self._longs.irange(minimum=(mark, ""), reverse=True)]
        out.extend(
            a for _, a in self._shorts.irange(maximum=(mark + 1, ""), inclusive=(True, False))
        )
        out.extend(self._multi)
        return out
