"""Projections: folds of a log's events into views, with no engine (DESIGN §8).

A projection reads only event fields and the header, so it works on any stream in the
format, whoever wrote it. One module per view:

- :mod:`.cash` — the cash each event moves (the log's cash semantics, stated once);
- :mod:`.fields` — what each integer field of an event counts (ticks, lots, atoms, µs);
- :mod:`.ledger` — accounts, positions and prices; offered to the one state view
  (``clearing.view.state_of``, the ``state --json`` shape);
- :mod:`.fund` — the fund as an account with equity (``FundBook``), what it paid and took
  in (``fund_flows``), its equity-and-cash timeline, the clawback and ADL ledgers;
- :mod:`.cascade` — the tree of events one event caused, with totals;
- :mod:`.story` — the demo's waterfall story of a whole log.

Text for people is made from these in :mod:`replay.cli.render`; tables (Parquet, CSV,
DataFrames) in :mod:`replay.tables`.
"""
