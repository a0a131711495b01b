"""The one base of every exception clearsim raises for a user's mistake or a bad file.

The command line catches :class:`ClearsimError` and prints its one-line ``str()`` as
``error: ...``; anything else that escapes is a bug. Each layer derives its own errors from
it (``LogError``, ``GridError``, ``ConfigError``, ``ScenarioError``, ...).
"""

from __future__ import annotations


class ClearsimError(Exception):
    """A failure the user can cause and fix; ``str()`` is one line that says what to fix."""
