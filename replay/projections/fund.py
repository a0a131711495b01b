"""The insurance-fund projection: the fund timeline, the clawback ledger and the ADL ledger.

:class:`FundFold` folds one row per change of the fund's cash (seq, ts, balance after,
amount, reason, cause), the clawback periods (the socialized losses, loss, profit base,
rate, charge per account) and the deleveragings. :func:`fold_fund` runs it over a log file
on the reader's fast path: only the lines holding :data:`FUND_TOKENS` are parsed (see
:meth:`events.log.LogReader.select`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Final

import attrs
import orjson

from clearsim.clearing.accounts import CLAWBACK_POOL, FEES, INSURANCE
from clearsim.events.codec import event_to_dict
from clearsim.events.log import LogReader, TornTail
from clearsim.events.types import Event
from clearsim.replay.projections.cash import Record, initial_fund, money_scale

__all__ = [
    "FUND_TOKENS",
    "AdlRow",
    "ClawbackPeriod",
    "FundFold",
    "FundReport",
    "FundRow",
    "fold_fund",
]


@attrs.frozen
class FundRow:
    """One change of the insurance fund's cash: ``balance`` is the cash after it."""

    seq: int
    ts: int
    balance: int
    amount: int
    reason: str
    cause: int
    account: str  # the account on the other side ("" for a deposit)


@attrs.define
class ClawbackPeriod:
    """One clawback period: the losses socialized into it and, once closed, its charges."""

    period: int
    losses: list[tuple[int, str, int]] = attrs.Factory(list)  # (seq, account, amount)
    seq: int = 0  # the Clawback event (0: not closed yet)
    ts: int = 0
    loss: int = 0
    profit_base: int = 0
    rate_ppm: int = 0
    collected: int = 0
    charges: list[tuple[str, int]] = attrs.Factory(list)

    @property
    def socialized(self) -> int:
        return sum(a for _, _, a in self.losses)


@attrs.frozen
class AdlRow:
    seq: int
    ts: int
    cause: int
    account: str
    counterparty: str
    symbol: str
    qty: int
    price: int
    value: int
    rank: int
    score: str


@attrs.define
class FundReport:
    """What :func:`fold_fund` returns: the three ledgers and how the log ended."""

    initial: int
    balance: int
    timeline: list[FundRow]
    clawbacks: list[ClawbackPeriod]
    adl: list[AdlRow]
    last_seq: int
    torn: TornTail | None
    scale: int
    fund_positions: dict[str, int]


#: Byte patterns of the records :class:`FundFold` reads (canonical encoding: no spaces).
FUND_TOKENS: Final[tuple[bytes, ...]] = (
    orjson.dumps(INSURANCE),  # any record naming the fund
    b'"type":"insurance_',
    b'"type":"liquidation_fill"',
    b'"type":"takeover"',
    b'"type":"clawback"',
    b'"type":"socialized_loss"',
    b'"type":"deleveraged"',
)


class FundFold:
    """Folds records into the fund timeline, the clawback ledger and the ADL ledger.

    Only records matching :data:`FUND_TOKENS` matter, so it can be fed a prefiltered stream.
    The fund's cash moves with deposits, liquidation fees and surpluses, shortfalls it pays,
    bankruptcy payments, takeovers (the position's value at the bankruptcy price), and any
    settlement, funding payment or clawback charge naming ``#insurance`` (a taken-over
    position worked in the book).
    """

    def __init__(self, initial: int) -> None:
        self.initial = initial
        self.balance = initial
        self.timeline: list[FundRow] = []
        self.periods: dict[int, ClawbackPeriod] = {}
        self.adl: list[AdlRow] = []
        self.positions: dict[str, int] = {}
        self.last_seq = 0

    def _row(self, d: Record, amount: int, reason: str, account: str) -> None:
        if amount == 0:
            return
        self.balance += amount
        self.timeline.append(
            FundRow(d["seq"], d["ts"], self.balance, amount, reason, d["cause"], account)
        )

    def _period(self, n: int) -> ClawbackPeriod:
        p = self.periods.get(n)
        if p is None:
            p = self.periods[n] = ClawbackPeriod(n)
        return p

    def apply_event(self, ev: Event) -> None:
        self.apply(event_to_dict(ev))

    def fold(self, records: Iterable[Record]) -> FundFold:
        for d in records:
            self.apply(d)
        return self

    def apply(self, d: Record) -> None:
        t = d["type"]
        self.last_seq = d["seq"]
        if t == "liquidation_fill":
            a = d["account"]
            self._row(d, d["fee"], "liquidation fee", a)
            self._row(d, d["surplus_to_fund"], "surplus", a)
            self._row(d, -d["fund_paid"], "shortfall paid", a)
        elif t == "insurance_payment":
            self._row(d, -d["amount"], f"{d['reason']} payment", d["account"])
        elif t == "insurance_deposit":
            self._row(d, d["amount"], "deposit", "")
        elif t == "takeover":
            self._row(d, d["value"], "takeover", d["account"])
            sym = d["symbol"]
            self.positions[sym] = self.positions.get(sym, 0) + d["qty"]
        elif t == "settlement":
            sym, qty = d["symbol"], d["qty"]
            if d["buyer"] == INSURANCE:
                self._row(d, -d["value"], "takeover trade (buy)", d["seller"])
                self._row(d, -d["buyer_fee"], "trading fee", FEES)
                self.positions[sym] = self.positions.get(sym, 0) + qty
            if d["seller"] == INSURANCE:
                self._row(d, d["value"], "takeover trade (sell)", d["buyer"])
                self._row(d, -d["seller_fee"], "trading fee", FEES)
                self.positions[sym] = self.positions.get(sym, 0) - qty
        elif t == "funding":
            for account, amount in d["payments"]:
                if account == INSURANCE:
                    self._row(d, amount, "funding", "")
        elif t == "clawback":
            p = self._period(d["period"])
            p.seq, p.ts = d["seq"], d["ts"]
            p.loss, p.profit_base, p.rate_ppm = d["loss"], d["profit_base"], d["rate_ppm"]
            p.collected = d["collected"]
            p.charges = [(str(a), int(c)) for a, c in d["charges"]]
            for account, charge in d["charges"]:
                if account == INSURANCE:
                    self._row(d, -charge, "clawback charge", CLAWBACK_POOL)
        elif t == "socialized_loss":
            self._period(d["period"]).losses.append((d["seq"], d["account"], d["amount"]))
        elif t == "deleveraged":
            self.adl.append(
                AdlRow(
                    d["seq"],
                    d["ts"],
                    d["cause"],
                    d["account"],
                    d["counterparty"],
                    d["symbol"],
                    d["qty"],
                    d["price"],
                    d["value"],
                    d["rank"],
                    d["score"],
                )
            )
            if INSURANCE in (d["account"], d["counterparty"]):
                sym = d["symbol"]
                q = self.positions.get(sym, 0)
                self.positions[sym] = q - (1 if q > 0 else -1) * d["qty"]
                # the fund's own taken-over position deleveraged (or used as counterparty)
                fund_pays = d["value"] if d["account"] == INSURANCE else -d["value"]
                self._row(d, -fund_pays, "deleveraged", d["counterparty"])

    def report(self, scale: int, torn: TornTail | None) -> FundReport:
        return FundReport(
            initial=self.initial,
            balance=self.balance,
            timeline=self.timeline,
            clawbacks=[self.periods[k] for k in sorted(self.periods)],
            adl=self.adl,
            last_seq=self.last_seq,
            torn=torn,
            scale=scale,
            fund_positions={s: q for s, q in self.positions.items() if q},
        )


def fold_fund(path: str | os.PathLike[str], *, verify: bool = True) -> FundReport:
    """The fund timeline, clawback ledger and ADL ledger of a log (the fast path).

    ``verify`` checks every record's checksum chain on the way (hashing each line, parsing
    only the relevant ones). A torn tail or a corrupt record makes it re-read the log with
    :class:`LogReader`, which keeps everything before a torn tail (reported in ``torn``) and
    raises :class:`events.codec.CorruptLog` for anything else.
    """
    reader = LogReader(path)  # checks the header
    config = reader.header.config
    fold = FundFold(initial_fund(config)).fold(reader.select(FUND_TOKENS, verify=verify))
    fold.last_seq = reader.last_seq
    return fold.report(money_scale(config), reader.torn)
