"""Sweeps: one or more days x a grid of parameters x seeds, each cell a deterministic,
independent run, into one Parquet table of outcomes (DESIGN §8 "sweep / calibrate").

One module per concern:

- :mod:`.spec` — the sweep file, read and expanded into cells (each with its key);
- :mod:`.overrides` — a cell's parameters written into a scenario's config;
- :mod:`.cell` — one cell run into a log and folded into an :class:`.cell.Outcome`;
- :mod:`.pool` — many cells on a local process pool or on Ray;
- :mod:`.results` — the Parquet table: rows, merge in cell order, atomic writes, resume;
- :mod:`.calibrate` — the smallest value of one parameter meeting a target, by bisection;
- :mod:`.report` — the results as an HTML page of outcome-vs-parameter charts.

pyarrow (``clearsim[data]``), plotly (``clearsim[report]``) and Ray (``clearsim[ray]``) are
imported only by the functions that need them.
"""
