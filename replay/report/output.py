"""Writing a report page: checked before the work, written beside the target, renamed.

:class:`ReportOutput` refuses, before the log is read, an output that exists (unless
``force``), is a directory or in a missing one, or is one of the inputs (even with
``force``); :meth:`write` puts the page in ``OUT.partial`` beside ``OUT`` and
``os.replace``s it into place, so a failed or interrupted write never leaves a half page
under the name asked for (the pattern of :mod:`replay.runner` and :mod:`replay.importers`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

from clearsim.replay.report.errors import ReportError

__all__ = ["ReportOutput"]


def _same_file(a: str, b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class ReportOutput:
    """Where a report goes: the destination, the partial file beside it, the checks."""

    def __init__(
        self, out: str | os.PathLike[str], *, force: bool, inputs: Iterable[str | os.PathLike[str]]
    ) -> None:
        self.dest = os.fspath(out)
        # Write through a symlink, as opening the path would: the rename goes to its target.
        self.target = os.path.realpath(self.dest) if os.path.islink(self.dest) else self.dest
        self.partial = self.target + ".partial"
        if os.path.isdir(self.target):
            raise ReportError(f"{self.dest}: is a directory")
        parent = os.path.dirname(self.target) or "."
        if not os.path.isdir(parent):
            raise ReportError(f"{self.dest}: no such directory {parent}")
        for src in inputs:
            if _same_file(self.target, src) or _same_file(self.partial, src):
                raise ReportError(
                    f"{self.dest}: is the input {os.fspath(src)}; refusing to write over an "
                    "input (even with --force)"
                )
        if os.path.lexists(self.target) and not force:
            raise ReportError(f"{self.dest}: already exists (use --force to overwrite it)")

    def write(self, text: str) -> int:
        """Write ``text`` (UTF-8) into place; return its size in bytes."""
        data = text.encode("utf-8")
        try:
            with open(self.partial, "wb") as f:
                f.write(data)
            os.replace(self.partial, self.target)
        except OSError as e:
            self._remove_partial()
            raise ReportError(f"{self.dest}: cannot write: {e.strerror or e}") from None
        except BaseException:
            self._remove_partial()
            raise
        return len(data)

    def _remove_partial(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.partial)
