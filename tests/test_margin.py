"""Hand-computed margin rules: tiers and cum, IM/MM rounding, liquidation prices (DESIGN §4).

Instrument: tick 0.1, lot 0.001, 6 collateral decimals, so one tick x lot is worth
0.1 x 0.001 x 10^6 = 100 atoms; a price of 50,000.0 is 500,000 ticks; 1 BTC is 1,000 lots.
"""

from __future__ import annotations

import pytest
from support import config

from clearsim.clearing import Config, ConfigError
from clearsim.clearing.margin import (
    initial,
    liquidatable_at,
    liquidation_price,
    maintenance,
    notional,
    tier_for,
    value,
)
from clearsim.clearing.rounding import ceil_div, ppm_up, split_largest_remainder

USDT = 10**6


def spec(**kw: object):  # type: ignore[no-untyped-def]
    return Config.from_dict(config(**kw)).instruments[0]


def test_contract_value_in_atoms() -> None:
    s = spec()
    assert s.k == 100
    assert value(s, 1000, 500_000) == 50_000 * USDT
    assert value(s, -1000, 500_000) == -50_000 * USDT
    assert notional(s, -1000, 500_000) == 50_000 * USDT


def test_cum_is_derived_binance_style() -> None:
    t1, t2 = spec().tiers
    assert t1.cum == 0
    # cum_2 = floor_2 x (mmr_2 - mmr_1) + cum_1 = 50,000 x 0.1% = 50 USDT
    assert t2.cum == 50 * USDT


def test_maintenance_is_continuous_across_the_tier_boundary() -> None:
    s = spec()
    at = 50_000 * USDT
    assert tier_for(s, at).mmr_ppm == 4000  # max_notional is inclusive
    assert tier_for(s, at + 1).mmr_ppm == 5000
    assert maintenance(s, at) == 200 * USDT
    # 50,000.000001 x 0.5% - 50 = 200.000000005 -> rounded up to the next atom
    assert maintenance(s, at + 1) == 200 * USDT + 1
    assert maintenance(s, 100_000 * USDT) == 450 * USDT
    assert initial(s, 100_000 * USDT) == 20_000 * USDT


def test_beyond_the_last_tier_the_last_tier_applies() -> None:
    s = spec()
    assert tier_for(s, 10**18).mmr_ppm == 5000


def test_requirements_round_up() -> None:
    s = spec()
    assert maintenance(s, 1) == 1  # 1 atom x 0.4% = 0.004 -> 1
    assert initial(s, 1) == 1
    assert ppm_up(12345, 500) == 7
    assert ppm_up(12345, -100) == -1  # a rebate rounds down in size
    assert ceil_div(-7, 2) == -3


def test_long_liquidation_price_one_tick_either_side() -> None:
    # 5,000 deposited, 1 BTC bought at 50,000: Q = -45,000. E(m) = 100,000 m - 4.5e10 atoms,
    # MM = 400 m (tier 1). E < MM  <=>  99,600 m < 4.5e10  <=>  m < 451,807.2 -> 45,180.7.
    s = spec()
    q, cash = 1000, 5_000 * USDT - 50_000 * USDT
    assert liquidation_price(s, q, cash, 0, 500_000) == 451_807
    assert liquidatable_at(s, q, cash, 0, 451_807)
    assert not liquidatable_at(s, q, cash, 0, 451_808)


def test_short_liquidation_price_crosses_into_tier_two() -> None:
    # Short 1 BTC at 50,000 with 5,000: Q = 55,000. Above 50,000 the notional is in tier 2:
    # 5.5e10 - 100,000 m < 500 m - 5e7  <=>  m > 547,761.19 -> 54,776.2.
    s = spec()
    q, cash = -1000, 55_000 * USDT
    assert liquidation_price(s, q, cash, 0, 500_000) == 547_762
    assert liquidatable_at(s, q, cash, 0, 547_762)
    assert not liquidatable_at(s, q, cash, 0, 547_761)


def test_fully_collateralised_long_has_no_liquidation_price() -> None:
    s = spec()
    assert liquidation_price(s, 1000, 0, 0, 500_000) is None


def test_liquidation_price_is_found_from_any_hint() -> None:
    s = spec()
    cash = 5_000 * USDT - 50_000 * USDT
    for hint in (None, 1, 451_807, 10**12):
        assert liquidation_price(s, 1000, cash, 0, hint) == 451_807


def test_inverse_value_rounds_against_the_holder() -> None:
    # XBTUSD-like: lot 1 USD, tick 0.5, 8 decimals: k = 1 x 1e8 / 0.5 = 2e8.
    cfg = config(
        kind="inverse_perpetual",
        tick_size="0.5",
        lot_size="1",
        tiers=[{"max_notional": "100", "imr_ppm": 10000, "mmr_ppm": 5000}],
    )
    cfg["exchange"]["collateral_decimals"] = 8
    s = Config.from_dict(cfg).instruments[0]
    assert s.k == 200_000_000
    # 1,000 contracts at 7,000 USD (14,000 ticks): 1000 x 2e8 / 14000 = 14,285,714.28 sat
    assert value(s, 1000, 14_000) == -14_285_715  # a long is worth the floor of a negative
    assert value(s, -1000, 14_000) == 14_285_714
    assert notional(s, 1000, 14_000) == 14_285_715


def test_split_sums_exactly_and_breaks_ties_by_key() -> None:
    assert split_largest_remainder(1, [1, 1, 1], ["carol", "bob", "dave"]) == [0, 1, 0]
    assert split_largest_remainder(10, [1, 1, 1], ["a", "b", "c"]) == [4, 3, 3]
    parts = split_largest_remainder(1_000_003, [7, 11, 13, 17], ["w", "x", "y", "z"])
    assert sum(parts) == 1_000_003


@pytest.mark.parametrize(
    ("tiers", "msg"),
    [
        ([], "non-empty"),
        ([{"max_notional": "10", "imr_ppm": 1000, "mmr_ppm": 2000}], "must not exceed"),
        (
            [
                {"max_notional": "10", "imr_ppm": 1000, "mmr_ppm": 500},
                {"max_notional": "5", "imr_ppm": 1000, "mmr_ppm": 500},
            ],
            "increase",
        ),
        (
            [
                {"max_notional": "10", "imr_ppm": 1000, "mmr_ppm": 500},
                {"max_notional": "20", "imr_ppm": 1000, "mmr_ppm": 400},
            ],
            "decrease",
        ),
        ([{"max_notional": "-1", "imr_ppm": 1000, "mmr_ppm": 500}], "decimal"),
    ],
)
def test_bad_tiers_are_config_errors(tiers: list[dict[str, object]], msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        Config.from_dict(config(tiers=tiers))


def test_grid_that_is_not_whole_atoms_is_refused() -> None:
    with pytest.raises(ConfigError, match="whole number of collateral atoms"):
        Config.from_dict(config(tick_size="0.01", lot_size="0.00001"))
