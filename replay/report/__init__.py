"""``clearsim report``: one self-contained HTML page per input (DESIGN §8 "report").

- :mod:`.log_report` — the page of an event log (plotly, the ``report`` extra);
- :mod:`.log_data` — what that page shows, read off the log with the projections;
- :mod:`.series` — the time series it plots that no projection keeps;
- :mod:`.charts` — its plotly figures;
- :mod:`.output` — writing a page (``OUT.partial``, then renamed into place).

:func:`report_page` picks the page by the input's name: a sweep's results (``.parquet``)
go to ``clearsim.replay.sweep.report.sweep_report_html``, anything else is read as a log.
Importing this package imports no plotting library.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import cast

from clearsim.replay.report.errors import ReportError
from clearsim.replay.report.log_report import INSTALL, ReportPage, log_report_html
from clearsim.replay.report.output import ReportOutput

__all__ = ["INSTALL", "ReportError", "ReportOutput", "ReportPage", "report_page"]

_SWEEP: str = "clearsim.replay.sweep.report"


def report_page(path: str | os.PathLike[str]) -> ReportPage:
    """The report page of ``path``: a sweep's ``.parquet`` results, or an event log."""
    if os.fspath(path).endswith(".parquet"):
        return ReportPage(_sweep_report()(os.fspath(path)), 0, 0, None)
    return log_report_html(path)


def _sweep_report() -> Callable[[str], str]:
    try:
        mod = importlib.import_module(_SWEEP)
    except ModuleNotFoundError as e:
        if e.name is not None and _SWEEP.startswith(e.name):
            raise ReportError(f"sweep reports need {_SWEEP}, which this clearsim lacks") from None
        raise ReportError(
            f"sweep reports need {e.name}: pip install 'clearsim[report,data]'"
        ) from None
    return cast(Callable[[str], str], mod.sweep_report_html)
