"""Projections: folds of a log's events into views, with no engine (DESIGN §8).

A projection reads only event fields and the header, so it works on any stream in the
format, whoever wrote it. One module per view:

- :mod:`.cash` — the cash each event moves (the log's cash semantics, stated once);
- :mod:`.ledger` — accounts, positions and prices; the ``state --json`` shape;
- :mod:`.fund` — the insurance-fund timeline, the clawback ledger and the ADL ledger;
- :mod:`.cascade` — the tree of events one event caused, with totals;
- :mod:`.story` — the demo's waterfall story of a whole log.

Text for people is made from these in :mod:`replay.cli.render`.
"""
