"""Times on the command line: integer µs since the epoch, or ISO-8601 with a UTC offset.

:func:`parse_time` is exact: the datetime is turned into µs with integer arithmetic only
(its fields and ``microsecond``, through an exact :class:`datetime.timedelta`), never a float.
"""

from __future__ import annotations

import datetime as _dt
import re

__all__ = ["TIME_HELP", "parse_time"]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_INT = re.compile(r"-?[0-9]+")
# The fraction of the seconds, to refuse what is finer than a µs (fromisoformat truncates).
_FRACTION = re.compile(r"T[0-9:]+[.,]([0-9]+)")

#: What a time flag accepts, for help and error text.
TIME_HELP = "µs since the epoch, or ISO-8601 UTC such as 2020-03-12T10:38:00Z"


def parse_time(text: str) -> int:
    """``text`` as µs since the epoch: an integer (µs), or ISO-8601 with ``Z`` or an offset
    (``2020-03-12T10:38:00Z``, ``2020-03-12T10:38:00.5+00:00``). A time without an offset
    (whose zone would be a guess) or finer than a µs is refused: :class:`ValueError`."""
    s = text.strip()
    if _INT.fullmatch(s):
        return int(s)
    try:
        dt = _dt.datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"expected {TIME_HELP}, got {text!r}") from None
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset: add Z (or +00:00)")
    m = _FRACTION.search(s)
    if m is not None and m.group(1)[6:].strip("0"):
        raise ValueError(f"{text!r} is finer than a microsecond")
    d = dt - _EPOCH  # exact: days, seconds, microseconds
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
