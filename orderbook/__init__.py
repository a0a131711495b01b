"""Order books: one price-time priority book per instrument, and the decimal <-> tick grid.

Imports only ``events``; knows nothing of money, margin or accounts' balances.
"""

from clearsim.orderbook.book import REJECT_REASONS, STP_MODES, OrderBook, RestingOrder
from clearsim.orderbook.grid import Grid, GridError

__all__ = ["REJECT_REASONS", "STP_MODES", "Grid", "GridError", "OrderBook", "RestingOrder"]
