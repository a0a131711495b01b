"""The report's user errors: each ``str()`` is one line, for ``error: ...``."""

from __future__ import annotations

from clearsim.events.errors import ClearsimError

__all__ = ["ReportError"]


class ReportError(ClearsimError):
    """A report that cannot be made: a missing extra, an output that cannot be written."""
