"""The exchange's configuration: parsing and validating the TOML/dict shape of DESIGN §10.

Decimal strings from the file become integers here (atoms, ppm); everything the engine
reads afterwards is an integer. :meth:`Config.to_dict` gives the normalised shape with every
default filled in: that is what a log's header records, so a log re-executes with exactly
the configuration it was written under.
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any

import attrs

from clearsim.clearing.presets import PRESETS, with_preset
from clearsim.events.errors import ClearsimError
from clearsim.events.units import PPM


class MarkPolicy(StrEnum):
    """How the mark price is made (DESIGN §5)."""

    ORACLE = "oracle"  # the last index price
    MEDIAN = "median"  # Binance's median of three
    MID = "mid"  # the book's mid


class Stp(StrEnum):
    """Self-trade prevention mode (the order book keeps its own integer code for it)."""

    CANCEL_TAKER = "cancel_taker"
    CANCEL_MAKER = "cancel_maker"
    CANCEL_BOTH = "cancel_both"
    NONE = "none"


class PriceLimit(StrEnum):
    """The worst price a ``book`` liquidation order may fill at (DESIGN §6)."""

    BANKRUPTCY = "bankruptcy"
    FILLABLE = "fillable"
    MARKET = "market"


class Surplus(StrEnum):
    """Who keeps a liquidation fill's surplus over its bankruptcy value."""

    TRADER = "trader"
    INSURANCE_FUND = "insurance_fund"


@attrs.frozen
class Immediate:
    """A socialised loss is clawed back at once."""

    def __str__(self) -> str:
        return "immediate"


@attrs.frozen
class OnCommand:
    """Clawback periods close on each ``settle_period`` command."""

    def __str__(self) -> str:
        return "settle_command"


@attrs.frozen
class Every:
    """Clawback periods close every ``seconds`` of the simulated clock."""

    seconds: int
    #: the value as the config wrote it, so the log header records it verbatim
    text: str = attrs.field(eq=False, repr=False)

    def __str__(self) -> str:
        return self.text


#: ``clawback_period``: immediate | settle_command | "<seconds>"; ``str()`` is the config text
ClawbackPeriod = Immediate | OnCommand | Every

KINDS = ("linear_perpetual", "inverse_perpetual", "linear_future")
MARK_POLICIES = tuple(m.value for m in MarkPolicy)
STP_MODES = tuple(m.value for m in Stp)
WATERFALL_STEPS = ("book", "backstop", "takeover", "adl", "clawback")
PRICE_LIMITS = tuple(m.value for m in PriceLimit)
SURPLUS = tuple(m.value for m in Surplus)
# \Z, not $: "$" also matches before a trailing newline ("12\n" is not a number here).
_SYMBOL = re.compile(r"^[A-Za-z0-9_.:/-]{1,32}\Z")
_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?\Z")


class ConfigError(ClearsimError, ValueError):
    """A configuration that cannot be run; ``str()`` is one line naming the key."""


def dec(text: object, key: str) -> Decimal:
    """A non-negative decimal string (the only way numbers with a unit enter the config)."""
    if not isinstance(text, str) or not _DECIMAL.match(text):
        raise ConfigError(f"{key}: expected a non-negative decimal string, got {text!r}")
    try:
        return Decimal(text)
    except InvalidOperation as e:  # pragma: no cover - the regex already excludes this
        raise ConfigError(f"{key}: {e}") from e


def atoms(text: object, decimals: int, key: str) -> int:
    """A decimal string of collateral units -> integer atoms, refusing sub-atom precision."""
    value = dec(text, key) * (10**decimals)
    if value != value.to_integral_value():
        raise ConfigError(f"{key}: {text} has more than {decimals} decimals")
    return int(value)


def _int(d: dict[str, Any], key: str, default: int, lo: int, hi: int, where: str) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConfigError(f"{where}{key}: expected an integer in [{lo}, {hi}], got {v!r}")
    return v


def _choice(d: dict[str, Any], key: str, default: str, options: tuple[str, ...], where: str) -> str:
    v = d.get(key, default)
    if v not in options:
        raise ConfigError(f"{where}{key}: expected one of {', '.join(options)}, got {v!r}")
    return str(v)


def _bool(d: dict[str, Any], key: str, where: str) -> bool:
    v = d.get(key, False)
    if not isinstance(v, bool):
        raise ConfigError(f"{where}{key}: expected true or false")
    return v


def _no_unknown(d: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for k in d:
        if k not in known:
            raise ConfigError(f"{where}{k}: unknown key")


@attrs.frozen
class Tier:
    """One risk tier: applies to positions with notional up to ``max_notional`` atoms."""

    max_notional: int
    imr_ppm: int
    mmr_ppm: int
    cum: int  # maintenance amount in atoms, derived (DESIGN §4), rounded down (MM rounds up)


def derive_tiers(raw: object, decimals: int, where: str) -> tuple[Tier, ...]:
    """Validate tiers and derive ``cum_n = floor_n x (mmr_n - mmr_{n-1}) + cum_{n-1}``."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}tiers: expected a non-empty list of tables")
    tiers: list[Tier] = []
    prev_max, prev_mmr, cum = 0, 0, 0
    for i, t in enumerate(raw):
        w = f"{where}tiers[{i}]."
        if not isinstance(t, dict):
            raise ConfigError(f"{w[:-1]}: expected a table")
        _no_unknown(t, ("max_notional", "imr_ppm", "mmr_ppm"), w)
        mx = atoms(t.get("max_notional"), decimals, w + "max_notional")
        imr = _int(t, "imr_ppm", -1, 1, PPM, w)
        mmr = _int(t, "mmr_ppm", -1, 1, PPM - 1, w)
        if mmr > imr:
            raise ConfigError(f"{w}mmr_ppm: must not exceed imr_ppm")
        if mx <= prev_max:
            raise ConfigError(f"{w}max_notional: tiers must increase")
        if mmr < prev_mmr:
            raise ConfigError(f"{w}mmr_ppm: must not decrease from tier to tier")
        cum += prev_max * (mmr - prev_mmr) // PPM
        tiers.append(Tier(mx, imr, mmr, cum))
        prev_max, prev_mmr = mx, mmr
    return tuple(tiers)


_INSTRUMENT_KEYS = (
    "symbol", "kind", "tick_size", "lot_size", "maker_fee_ppm", "taker_fee_ppm", "band_ppm",
    "funding_interval_s", "funding_cap_ppm", "interest_ppm", "impact_notional", "tiers",
    "breaker_ppm", "breaker_window_s", "breaker_halt_s",
)  # fmt: skip


@attrs.frozen
class InstrumentSpec:
    """One instrument's static description and its tunable parameters."""

    symbol: str
    kind: str
    tick_size: str
    lot_size: str
    maker_fee_ppm: int
    taker_fee_ppm: int
    band_ppm: int
    funding_interval_s: int
    funding_cap_ppm: int
    interest_ppm: int
    impact_notional: int  # atoms; 0 = impact prices are the best bid and ask
    breaker_ppm: int  # 0 = no circuit breaker
    breaker_window_s: int
    breaker_halt_s: int
    tiers: tuple[Tier, ...]
    #: linear: atoms per (tick x lot); inverse: the numerator k in value = q x k / price_ticks
    k: int
    raw_tiers: tuple[dict[str, Any], ...]
    #: plain fields (not properties) because the margin hot path reads them per call
    inverse: bool
    tier_maxes: tuple[int, ...]

    @property
    def perpetual(self) -> bool:
        return self.kind != "linear_future"


def _instrument(d: object, decimals: int, i: int) -> InstrumentSpec:
    where = f"instruments[{i}]."
    if not isinstance(d, dict):
        raise ConfigError(f"instruments[{i}]: expected a table")
    _no_unknown(d, _INSTRUMENT_KEYS, where)
    symbol = d.get("symbol")
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
        raise ConfigError(f"{where}symbol: expected a symbol like BTC-USD, got {symbol!r}")
    kind = _choice(d, "kind", "linear_perpetual", KINDS, where)
    tick_s, lot_s = d.get("tick_size", "1"), d.get("lot_size", "1")
    tick, lot = dec(tick_s, where + "tick_size"), dec(lot_s, where + "lot_size")
    if tick <= 0 or lot <= 0:
        raise ConfigError(f"{where}tick_size and lot_size must be positive")
    scale = Decimal(10) ** decimals
    # The contract value must be a whole number of atoms so that no trade value rounds.
    k_exact = tick * lot * scale if kind != "inverse_perpetual" else lot * scale / tick
    if k_exact != k_exact.to_integral_value():
        raise ConfigError(
            f"{where}tick_size x lot_size is not a whole number of collateral atoms at "
            f"collateral_decimals={decimals}; raise the decimals or coarsen the grid"
        )
    fee_range = (-PPM // 10, PPM // 10)
    tiers_raw = d.get(
        "tiers", [{"max_notional": "1000000000000", "imr_ppm": 100_000, "mmr_ppm": 50_000}]
    )
    tiers = derive_tiers(tiers_raw, decimals, where)
    maker_fee = _int(d, "maker_fee_ppm", 0, *fee_range, where)
    taker_fee = _int(d, "taker_fee_ppm", 0, *fee_range, where)
    if maker_fee + taker_fee < 0:
        # Every fill would pay out more in rebates than it takes in fees: two accounts
        # could wash-trade the fee pool below zero and withdraw the difference.
        raise ConfigError(
            f"{where}maker_fee_ppm: a rebate of {-maker_fee} ppm exceeds the taker fee of "
            f"{taker_fee} ppm (the fee pool would pay out more than it takes)"
        )
    return InstrumentSpec(
        symbol=symbol,
        kind=kind,
        tick_size=str(tick_s),
        lot_size=str(lot_s),
        maker_fee_ppm=maker_fee,
        taker_fee_ppm=taker_fee,
        band_ppm=_int(d, "band_ppm", 0, 0, PPM, where),
        funding_interval_s=_int(d, "funding_interval_s", 0, 0, 10**9, where),
        funding_cap_ppm=_int(d, "funding_cap_ppm", 3000, 0, PPM, where),
        interest_ppm=_int(d, "interest_ppm", 100, -PPM, PPM, where),
        impact_notional=atoms(d.get("impact_notional", "0"), decimals, where + "impact_notional"),
        breaker_ppm=_int(d, "breaker_ppm", 0, 0, PPM, where),
        breaker_window_s=_int(d, "breaker_window_s", 60, 1, 10**7, where),
        breaker_halt_s=_int(d, "breaker_halt_s", 300, 1, 10**7, where),
        tiers=tiers,
        k=int(k_exact),
        raw_tiers=tuple(dict(t) for t in tiers_raw),
        inverse=kind == "inverse_perpetual",
        tier_maxes=tuple(t.max_notional for t in tiers),
    )


#: Waterfall keys added after logs were first written: the normalised config (a log's header)
#: lists them only when they differ from these defaults, so older logs replay unchanged and
#: their headers stay byte-identical. ``set`` knows them by these defaults (params.py).
OPTIONAL_WATERFALL: dict[str, bool | int | str] = {
    "liquidate_at_equal": False,
    "takeover_max_notional_ppm": 0,
    "takeover_aggress": False,
    "backstop_below_mm": "",
}
_RATIO = re.compile(r"^([0-9]{1,9})/([1-9][0-9]{0,8})$")

_WATERFALL_KEYS = (
    "steps", "price_limit", "liquidation_fee_ppm", "surplus", "backstop_accounts",
    "clawback_period", "partial", "partial_fraction_ppm", "fillable_ba_ppm",
    "fillable_smmr_ppm", "backstop_below_mm_ppm", "adl_negative_equity_only",
    *OPTIONAL_WATERFALL,
)  # fmt: skip


@attrs.frozen
class WaterfallConfig:
    """The loss waterfall's steps and knobs (DESIGN §6)."""

    steps: tuple[str, ...] = ("book", "backstop", "adl")
    price_limit: PriceLimit = PriceLimit.BANKRUPTCY
    liquidation_fee_ppm: int = 5000
    surplus: Surplus = Surplus.TRADER
    backstop_accounts: tuple[str, ...] = ()
    clawback_period: ClawbackPeriod = Immediate()
    partial: bool = False
    partial_fraction_ppm: int = 250_000
    #: dYdX's fillable price: bankruptcy adjustment (BA) and spread-to-MMR (SMMR)
    fillable_ba_ppm: int = 1_000_000
    fillable_smmr_ppm: int = 1_500_000
    #: the backstop step runs only while equity < this share of MM (Hyperliquid: 2/3)
    backstop_below_mm_ppm: int = 1_000_000
    #: the ADL step runs only once the account's equity is negative (dYdX, Hyperliquid)
    adl_negative_equity_only: bool = False
    #: liquidatable at E <= MM (Binance: "margin ratio reaches 100%") instead of E < MM
    liquidate_at_equal: bool = False
    #: the takeover step runs only while the fund's position notional in the market stays
    #: within this share of the fund's equity (Binance: 100%); 0 = no cap
    takeover_max_notional_ppm: int = 0
    #: after a takeover the fund first sells into the book as far as its own equity pays for
    #: the loss against the bankruptcy value (Binance), then rests the rest at the
    #: bankruptcy price (BitMEX: only the resting order)
    takeover_aggress: bool = False
    #: an exact "a/b" for the backstop threshold (Hyperliquid "2/3": 3E < 2MM); overrides
    #: ``backstop_below_mm_ppm``, which cannot say 2/3 (666 667 ppm backstops at E = 2/3 MM)
    backstop_below_mm: tuple[int, int] | None = None

    def backstop_applies(self, equity: int, mm: int) -> bool:
        """Equity below the backstop threshold (the share of MM the backstop step runs under)."""
        if self.backstop_below_mm is not None:
            num, den = self.backstop_below_mm
            return equity * den < num * mm
        return equity * PPM < self.backstop_below_mm_ppm * mm

    def liquidatable(self, equity: int, mm: int) -> bool:
        """Below maintenance: ``E < MM``, or ``E <= MM`` with ``liquidate_at_equal``."""
        return equity < mm or (self.liquidate_at_equal and equity == mm and mm > 0)


def _waterfall(d: object) -> WaterfallConfig:
    where = "waterfall."
    if not isinstance(d, dict):
        raise ConfigError("waterfall: expected a table")
    _no_unknown(d, _WATERFALL_KEYS, where)
    steps = d.get("steps", ["book", "backstop", "adl"])
    if not isinstance(steps, list) or not all(s in WATERFALL_STEPS for s in steps):
        raise ConfigError(f"{where}steps: expected a list drawn from {', '.join(WATERFALL_STEPS)}")
    if len(set(steps)) != len(steps):
        raise ConfigError(f"{where}steps: a step is listed twice")
    backstop = d.get("backstop_accounts", [])
    if not isinstance(backstop, list) or not all(isinstance(a, str) and a for a in backstop):
        raise ConfigError(f"{where}backstop_accounts: expected a list of account ids")
    period = d.get("clawback_period", "immediate")
    if not isinstance(period, str) or not (
        # isascii: str.isdigit() is true for "²" (int() then fails) and "٣" (int() gives 3).
        period in ("immediate", "settle_command")
        or (period.isascii() and period.isdigit() and int(period) > 0)
    ):
        raise ConfigError(
            f"{where}clawback_period: expected immediate, settle_command or a number of seconds"
        )
    partial = _bool(d, "partial", where)
    adl_neg = _bool(d, "adl_negative_equity_only", where)
    return WaterfallConfig(
        steps=tuple(steps),
        price_limit=PriceLimit(_choice(d, "price_limit", "bankruptcy", PRICE_LIMITS, where)),
        liquidation_fee_ppm=_int(d, "liquidation_fee_ppm", 5000, 0, PPM, where),
        surplus=Surplus(_choice(d, "surplus", "trader", SURPLUS, where)),
        backstop_accounts=tuple(backstop),
        clawback_period=_clawback_period(period),
        partial=partial,
        partial_fraction_ppm=_int(d, "partial_fraction_ppm", 250_000, 1, PPM, where),
        fillable_ba_ppm=_int(d, "fillable_ba_ppm", 1_000_000, 0, 100 * PPM, where),
        fillable_smmr_ppm=_int(d, "fillable_smmr_ppm", 1_500_000, 0, 100 * PPM, where),
        backstop_below_mm_ppm=_int(d, "backstop_below_mm_ppm", PPM, 0, PPM, where),
        adl_negative_equity_only=adl_neg,
        liquidate_at_equal=_bool(d, "liquidate_at_equal", where),
        takeover_max_notional_ppm=_int(d, "takeover_max_notional_ppm", 0, 0, 100 * PPM, where),
        takeover_aggress=_bool(d, "takeover_aggress", where),
        backstop_below_mm=_ratio(d.get("backstop_below_mm", ""), where + "backstop_below_mm"),
    )


def _ratio(v: object, key: str) -> tuple[int, int] | None:
    """An exact ratio "a/b" with a <= b, or "" for none."""
    if v == "":
        return None
    m = _RATIO.match(v) if isinstance(v, str) else None
    if m is None or int(m[1]) > int(m[2]):
        raise ConfigError(f'{key}: expected a ratio like "2/3" (at most 1), got {v!r}')
    return int(m[1]), int(m[2])


def _clawback_period(text: str) -> ClawbackPeriod:
    """Parse an already validated ``clawback_period``."""
    if text == "immediate":
        return Immediate()
    if text == "settle_command":
        return OnCommand()
    return Every(int(text), text)


@attrs.frozen
class Config:
    """The whole, validated configuration of one exchange."""

    collateral: str
    collateral_decimals: int
    mark: MarkPolicy
    stp: Stp
    preset: str | None
    basis_samples: int
    insurance_initial: int
    waterfall: WaterfallConfig
    instruments: tuple[InstrumentSpec, ...]
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)

    @classmethod
    def from_dict(cls, d: object) -> Config:
        if not isinstance(d, dict):
            raise ConfigError("config: expected a table")
        _no_unknown(d, ("exchange", "insurance_fund", "waterfall", "instruments"), "")
        ex = d.get("exchange", {})
        if not isinstance(ex, dict):
            raise ConfigError("exchange: expected a table")
        _no_unknown(
            ex,
            ("collateral", "collateral_decimals", "mark", "preset", "stp", "basis_samples"),
            "exchange.",
        )
        decimals = _int(ex, "collateral_decimals", 6, 0, 18, "exchange.")
        collateral = ex.get("collateral", "USDT")
        if not isinstance(collateral, str) or not collateral:
            raise ConfigError("exchange.collateral: expected a currency name")
        preset = ex.get("preset")
        if preset is not None:
            merged = with_preset(d, preset) if isinstance(preset, str) else None
            if merged is None:
                raise ConfigError(
                    f"exchange.preset: unknown preset {preset!r} (known: {', '.join(PRESETS)})"
                )
            d, ex = merged, merged["exchange"]
        fund = d.get("insurance_fund", {})
        if not isinstance(fund, dict):
            raise ConfigError("insurance_fund: expected a table")
        _no_unknown(fund, ("initial",), "insurance_fund.")
        insts = d.get("instruments", [])
        if not isinstance(insts, list) or not insts:
            raise ConfigError("instruments: expected at least one [[instruments]] table")
        specs = tuple(_instrument(x, decimals, i) for i, x in enumerate(insts))
        symbols = [s.symbol for s in specs]
        if len(set(symbols)) != len(symbols):
            raise ConfigError("instruments: a symbol is listed twice")
        cfg = cls(
            collateral=collateral,
            collateral_decimals=decimals,
            mark=MarkPolicy(_choice(ex, "mark", "oracle", MARK_POLICIES, "exchange.")),
            stp=Stp(_choice(ex, "stp", "cancel_taker", STP_MODES, "exchange.")),
            preset=preset,
            basis_samples=_int(ex, "basis_samples", 30, 1, 100_000, "exchange."),
            insurance_initial=atoms(fund.get("initial", "0"), decimals, "insurance_fund.initial"),
            waterfall=_waterfall(d.get("waterfall", {})),
            instruments=specs,
            raw={},
        )
        return attrs.evolve(cfg, raw=cfg._normalised())

    @classmethod
    def from_toml(cls, path: str | Path) -> Config:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except OSError as e:
            raise ConfigError(f"{path}: {e.strerror or e}") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from e
        return cls.from_dict(data)

    def instrument(self, symbol: str) -> InstrumentSpec | None:
        for s in self.instruments:
            if s.symbol == symbol:
                return s
        return None

    def to_dict(self) -> dict[str, Any]:
        """The normalised config (all defaults explicit), as recorded in a log header."""
        return self.raw

    def _optional_waterfall(self) -> dict[str, bool | int | str]:
        w = self.waterfall
        ratio = w.backstop_below_mm
        return {
            "liquidate_at_equal": w.liquidate_at_equal,
            "takeover_max_notional_ppm": w.takeover_max_notional_ppm,
            "takeover_aggress": w.takeover_aggress,
            "backstop_below_mm": "" if ratio is None else f"{ratio[0]}/{ratio[1]}",
        }

    def _normalised(self) -> dict[str, Any]:
        w = self.waterfall
        scale = 10**self.collateral_decimals
        return {
            "exchange": {
                "collateral": self.collateral,
                "collateral_decimals": self.collateral_decimals,
                "mark": self.mark.value,
                "stp": self.stp.value,
                "basis_samples": self.basis_samples,
                **({"preset": self.preset} if self.preset is not None else {}),
            },
            "insurance_fund": {"initial": fmt_atoms(self.insurance_initial, scale)},
            "waterfall": {
                "steps": list(w.steps),
                "price_limit": w.price_limit.value,
                "liquidation_fee_ppm": w.liquidation_fee_ppm,
                "surplus": w.surplus.value,
                "backstop_accounts": list(w.backstop_accounts),
                "clawback_period": str(w.clawback_period),
                "partial": w.partial,
                "partial_fraction_ppm": w.partial_fraction_ppm,
                "fillable_ba_ppm": w.fillable_ba_ppm,
                "fillable_smmr_ppm": w.fillable_smmr_ppm,
                "backstop_below_mm_ppm": w.backstop_below_mm_ppm,
                "adl_negative_equity_only": w.adl_negative_equity_only,
                **{
                    k: v
                    for k, v in self._optional_waterfall().items()
                    if v != OPTIONAL_WATERFALL[k]
                },
            },
            "instruments": [
                {
                    "symbol": s.symbol,
                    "kind": s.kind,
                    "tick_size": s.tick_size,
                    "lot_size": s.lot_size,
                    "maker_fee_ppm": s.maker_fee_ppm,
                    "taker_fee_ppm": s.taker_fee_ppm,
                    "band_ppm": s.band_ppm,
                    "funding_interval_s": s.funding_interval_s,
                    "funding_cap_ppm": s.funding_cap_ppm,
                    "interest_ppm": s.interest_ppm,
                    "impact_notional": fmt_atoms(s.impact_notional, scale),
                    "breaker_ppm": s.breaker_ppm,
                    "breaker_window_s": s.breaker_window_s,
                    "breaker_halt_s": s.breaker_halt_s,
                    "tiers": [dict(t) for t in s.raw_tiers],
                }
                for s in self.instruments
            ],
        }


def fmt_atoms(value: int, scale: int) -> str:
    """Integer atoms -> exact decimal string (``-1.5``, ``0``, ``12.000001``)."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), scale)
    if not frac:
        return f"{sign}{whole}"
    width = len(str(scale)) - 1
    return f"{sign}{whole}.{str(frac).rjust(width, '0').rstrip('0')}"
