"""Drives the engine from sources and reads logs back: runners, re-execution, the CLI, and
(with the ``data`` extra) tables of a log for analysis (:mod:`.tables`)."""
