"""Tests of the seeded forecast / realisation / scenario generator (sim.stochastic)."""

import zlib

import numpy as np
import pandas as pd
import pytest

from mgcosim.sim.stochastic import (
    ErrorModel,
    StochasticProfile,
    reduce_scenarios,
    shape_at_steps,
    unit_seed,
)

WIND = ErrorModel(sigma_pu=0.15, phi_per_h=0.8, mode="additive")
LOAD = ErrorModel(sigma_pu=0.05, phi_per_h=0.9, mode="multiplicative")
TABLE = pd.DataFrame(
    {"hour": [0.0, 6.0, 12.0, 23.0], "wind_pu": [0.2, 0.4, 0.8, 0.6], "pv_pu": [0, 0, 1, 0]}
)


def wind(seed: int = 7, name: str = "MG1_wind", n: int = 96, level: float = 0.5):
    """Wind unit of 1 MW on a 15-min grid with a constant forecast of ``level`` MW."""
    return StochasticProfile(name, np.full(n, level), 0.25, WIND, cap_mw=1.0, seed=seed)


# --- shape_at_steps ---------------------------------------------------------------------


def test_shape_exact_at_table_hours():
    got = shape_at_steps(TABLE, "wind_pu", 0.0, 6.0, 3)  # 0 h, 6 h, 12 h
    # Interpolation at the knots reproduces the table; only float rounding remains.
    np.testing.assert_allclose(got, [0.2, 0.4, 0.8], rtol=0, atol=1e-12)


def test_shape_linear_midpoint_between_hours():
    got = shape_at_steps(TABLE, "wind_pu", 3.0, 6.0, 2)  # 3 h and 9 h
    # Hand calculation: (0.2 + 0.4) / 2 = 0.3 and (0.4 + 0.8) / 2 = 0.6; float rounding only.
    np.testing.assert_allclose(got, [0.3, 0.6], rtol=0, atol=1e-12)


def test_shape_wraps_from_23h_to_0h():
    got = shape_at_steps(TABLE, "wind_pu", 23.0, 0.5, 4)  # 23 h, 23.5 h, 24 h = 0 h, 0.5 h
    # 23.5 h lies halfway between 23 h (0.6) and next midnight (0.2): 0.4; 0.5 h lies
    # 1/12 of the way from 0.2 to 0.4: 0.2 + 0.2 / 12. Float rounding only.
    np.testing.assert_allclose(got, [0.6, 0.4, 0.2, 0.2 + 0.2 / 12], rtol=0, atol=1e-12)


def test_shape_rejects_table_not_starting_at_zero():
    with pytest.raises(ValueError):
        shape_at_steps(TABLE.iloc[1:], "wind_pu", 0.0, 1.0, 3)


# --- seeds and determinism --------------------------------------------------------------


def test_unit_seed_uses_crc32_and_separates_extras():
    seq = unit_seed(3, "MG1_wind")
    assert seq.entropy == (3 << 32) | zlib.crc32(b"MG1_wind")
    states = [unit_seed(3, "MG1_wind", *x).generate_state(4).tolist() for x in [(), (0,), (1,)]]
    # Trailing zeros in plain entropy would collide; the spawn key keeps these three apart.
    assert len({tuple(s) for s in states}) == 3


def test_same_seed_gives_identical_outputs():
    a, b = wind(seed=11), wind(seed=11)
    np.testing.assert_array_equal(a.realised_mw, b.realised_mw)
    np.testing.assert_array_equal(a.forecast_mw(10, 24), b.forecast_mw(10, 24))
    for x, y in zip(a.scenarios_mw(10, 24, 50, 5), b.scenarios_mw(10, 24, 50, 5), strict=True):
        np.testing.assert_array_equal(x, y)


def test_different_seed_gives_different_realisation():
    assert not np.array_equal(wind(seed=1).realised_mw, wind(seed=2).realised_mw)


def test_scenarios_do_not_depend_on_call_order():
    a, b = wind(), wind()
    a_5, a_20 = a.scenarios_mw(5, 16, 40, 4), a.scenarios_mw(20, 16, 40, 4)
    b.forecast_mw(3, 8)
    b_20, b_5 = b.scenarios_mw(20, 16, 40, 4), b.scenarios_mw(5, 16, 40, 4)
    for x, y in zip(a_5 + a_20, b_5 + b_20, strict=True):
        np.testing.assert_array_equal(x, y)


def test_units_draw_independent_streams():
    n = 20000
    a, b = wind(name="MG1_wind", n=n), wind(name="MG2_wind", n=n)
    r = np.corrcoef(a.error_pu, b.error_pu)[0, 1]
    # Two independent AR(1) paths (phi = 0.8**0.25 = 0.946): std of their sample correlation
    # ~ sqrt((1 + phi^2) / (n (1 - phi^2))) = 0.028, so 0.15 is > 5 standard deviations.
    assert abs(r) < 0.15


# --- error statistics -------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_error_std_and_lag1_autocorrelation(seed):
    model = ErrorModel(sigma_pu=0.1, phi_per_h=0.6, mode="additive")
    n, step_h = 20000, 0.5
    prof = StochasticProfile("w", np.full(n, 5.0), step_h, model, cap_mw=10.0, seed=seed)
    e = prof.error_pu
    phi = 0.6**step_h  # = sqrt(0.6): per-step correlation from the hourly one
    # AR(1) with phi^2 = 0.6: relative std of the sample std ~ sqrt((1 + phi^2) /
    # (2 n (1 - phi^2))) = 0.01, so 5 % is 5 standard deviations.
    assert abs(e.std() / model.sigma_pu - 1) < 0.05
    # Lag-1 sample autocorrelation has std ~ sqrt((1 - phi^2) / n) = 0.0045: 0.02 is 4.5 sd.
    r1 = np.corrcoef(e[:-1], e[1:])[0, 1]
    assert abs(r1 - phi) < 0.02
    # Forecast 5 MW on a 10 MW cap: clipping needs |e| > 0.5 = 5 sigma, so the MW error is
    # exactly e * cap (float rounding only).
    np.testing.assert_allclose(prof.realised_mw, 5.0 + 10.0 * e, rtol=0, atol=1e-12)


# --- clipping ---------------------------------------------------------------------------


def test_realisation_clipped_to_zero_and_cap():
    big = ErrorModel(sigma_pu=0.5, phi_per_h=0.5, mode="additive")
    forecast = np.tile([0.05, 0.95], 500)
    prof = StochasticProfile("w", forecast, 1.0, big, cap_mw=1.0, seed=3)
    p = prof.realised_mw
    assert p.min() >= 0.0 and p.max() <= 1.0
    # With sigma = 0.5 pu both bounds are hit many times (P ~ 0.46 per step), so the
    # assertions above actually exercise the clipping.
    assert (p == 0.0).sum() > 100 and (p == 1.0).sum() > 100


def test_multiplicative_pv_is_zero_at_night():
    shape = shape_at_steps(TABLE, "pv_pu", 0.0, 1.0, 24)
    pv = ErrorModel(sigma_pu=0.3, phi_per_h=0.7, mode="multiplicative")
    prof = StochasticProfile("PV_b18", 0.3 * shape, 1.0, pv, cap_mw=0.3, seed=5)
    night = shape == 0.0
    assert night.sum() >= 7 and (~night).sum() >= 7  # both parts of the day are present
    assert np.all(prof.realised_mw[night] == 0.0)
    assert np.all(prof.realised_mw[~night] > 0.0)  # needs e > -1: P(e < -1) ~ 4e-4 per step
    assert np.all(prof.realised_mw <= 0.3)
    assert np.all(prof.forecast_mw(5, 24)[night[(5 + np.arange(24)) % 24]] == 0.0)
    values, _ = prof.scenarios_mw(5, 24, 30, 3)
    assert np.all(values[:, night[(5 + np.arange(24)) % 24]] == 0.0)


def test_load_without_cap_is_only_clipped_below():
    prof = StochasticProfile("load", np.full(50, 2.0), 1.0, LOAD, cap_mw=None, seed=0)
    assert prof.realised_mw.min() > 0.0 and prof.realised_mw.max() > 2.0


def test_additive_without_cap_is_rejected():
    with pytest.raises(ValueError):
        StochasticProfile("w", np.full(4, 0.5), 1.0, WIND, cap_mw=None, seed=0)


# --- rolling forecast -------------------------------------------------------------------


def test_rolling_forecast_is_conditional_expectation():
    prof = wind()
    phi = 0.8**0.25
    got = prof.forecast_mw(40, 6)
    want = 0.5 + phi ** np.arange(1, 7) * prof.error_pu[39] * 1.0
    # No clipping here (0.5 +- 0.15 pu): the formula holds up to float rounding.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(prof.forecast_mw(0, 10), prof.base_forecast_mw[:10])


def test_rolling_forecast_beats_day_ahead_at_lead_one():
    prof = wind(n=4000)
    k0 = np.arange(1, prof.n_steps)
    rolled = np.array([prof.forecast_mw(k, 1)[0] for k in k0])
    err_rolled = np.abs(rolled - prof.realised_mw[k0]).mean()
    err_base = np.abs(prof.base_forecast_mw[k0] - prof.realised_mw[k0]).mean()
    # Expected ratio sqrt(1 - phi^2) = 0.33 at phi = 0.946; 0.5 leaves room for sampling.
    assert err_rolled < 0.5 * err_base


def test_rolling_forecast_converges_to_base_and_wraps():
    shape = shape_at_steps(TABLE, "wind_pu", 0.0, 0.25, 96)
    prof = StochasticProfile("w", shape, 0.25, WIND, cap_mw=1.0, seed=9)
    fc = prof.forecast_mw(90, 300)
    base = shape[(90 + np.arange(300)) % 96]  # wraps past the end of the day
    # After j steps the correction is phi^j |e| <= 0.946^200 * 1 pu ~ 1.5e-5 MW.
    np.testing.assert_allclose(fc[200:], base[200:], rtol=0, atol=1e-4)
    assert np.abs(fc[0] - base[0]) > 1e-3  # while the first step is corrected (|e| ~ 0.15)


# --- scenario reduction -----------------------------------------------------------------


def test_reduce_hand_example_two_clusters():
    # Paths (x, x) with x = 0, 1 | 10, 12: distances are sqrt(2) |dx|, and the common factor
    # sqrt(2) does not change any argmin. Probabilities p = 0.1, 0.2, 0.3, 0.4.
    x = np.array([0.0, 1.0, 10.0, 12.0])
    paths = np.column_stack([x, x])
    p = np.array([0.1, 0.2, 0.3, 0.4])
    # Step 1, z_u = sum_k p_k |x_k - x_u|: z = 8.0, 7.2, 3.6, 4.0 -> keep u = 2 (x = 10).
    # Step 2, z_u = sum_k p_k min(|x_k - x_u|, |x_k - 10|):
    #   z_0 = 0.2*1 + 0.4*2 = 1.0, z_1 = 0.1*1 + 0.4*2 = 0.9, z_3 = 0.1*10 + 0.2*9 = 2.8
    #   -> keep u = 1. Redistribution: 0 -> 1 and 3 -> 2: q = 0.1 + 0.2, 0.3 + 0.4.
    kept, q = reduce_scenarios(paths, p, 2)
    np.testing.assert_array_equal(kept, [1, 2])
    np.testing.assert_allclose(q, [0.3, 0.7], rtol=0, atol=1e-12)  # float rounding only
    kept1, q1 = reduce_scenarios(paths, p, 1)  # step 1 alone: x = 10 with all mass
    np.testing.assert_array_equal(kept1, [2])
    np.testing.assert_allclose(q1, [1.0], rtol=0, atol=1e-12)


def test_reduce_keep_all_returns_everything():
    rng = np.random.default_rng(0)
    samples, p = rng.normal(size=(6, 3)), np.full(6, 1 / 6)
    kept, q = reduce_scenarios(samples, p, 6)
    np.testing.assert_array_equal(kept, np.arange(6))
    np.testing.assert_array_equal(q, p)


def test_reduce_probabilities_valid_with_duplicates():
    rng = np.random.default_rng(1)
    samples = np.vstack([np.zeros((5, 4)), rng.normal(size=(45, 4))])  # 5 identical paths
    p = rng.dirichlet(np.ones(50))
    kept, q = reduce_scenarios(samples, p, 8)
    assert len(np.unique(kept)) == 8 and np.all(q >= 0)
    # A sum of 50 probabilities in floating point: 1e-12 is far above the rounding error.
    assert abs(q.sum() - 1.0) < 1e-12


def test_reduce_identical_paths_keeps_distinct_indices_and_own_mass():
    # PV at night: every sample is the same all-zero path, so all distances and all z_u are 0.
    samples, p = np.zeros((4, 3)), np.full(4, 0.25)
    kept, q = reduce_scenarios(samples, p, 2)
    np.testing.assert_array_equal(kept, [0, 1])  # ties go to the lowest unselected index
    # Kept sample 1 keeps its own 0.25; deleted 2 and 3 tie and go to the lowest kept (0).
    np.testing.assert_allclose(q, [0.75, 0.25], rtol=0, atol=1e-12)


def test_scenario_samples_follow_the_ar1_law():
    model = ErrorModel(sigma_pu=0.1, phi_per_h=0.8, mode="additive")
    prof = StochasticProfile("w", np.full(96, 0.5), 0.25, model, cap_mw=1.0, seed=4)
    phi, m = 0.8**0.25, 4000
    # n_scenarios = n_samples keeps the raw samples. Clipping needs |e| > 0.5 = 5 sigma.
    start, q = prof.scenarios_mw(0, 2, m, m)
    np.testing.assert_allclose(q, np.full(m, 1 / m), rtol=0, atol=1e-15)
    # Stationary start at k0 = 0: std sigma; the relative std of a sample std over m draws is
    # 1 / sqrt(2 m) = 0.011, so 5 % is 4.5 standard deviations.
    assert abs(start[:, 0].std() / 0.1 - 1) < 0.05
    k0 = int(np.argmax(np.abs(prof.error_pu))) + 1  # start after the largest error
    e_prev = prof.error_pu[k0 - 1]
    assert abs(e_prev) > 0.1  # so that phi e_prev and e_prev differ by > 5e-3 MW
    cond, _ = prof.scenarios_mw(k0, 2, m, m)
    # Conditional start: mean 0.5 + phi e_prev, std sigma sqrt(1 - phi^2) = 0.033; the
    # mean's standard error is 0.033 / sqrt(m) = 5e-4 MW, so 3e-3 MW is 6 of them.
    assert abs(cond[:, 0].mean() - (0.5 + phi * e_prev)) < 3e-3
    assert abs(cond[:, 0].std() / (0.1 * np.sqrt(1 - phi**2)) - 1) < 0.05


def test_scenarios_shape_probabilities_and_start():
    prof = wind()
    values, q = prof.scenarios_mw(30, 12, 200, 10)
    assert values.shape == (10, 12) and q.shape == (10,)
    assert np.all(q >= 0) and abs(q.sum() - 1.0) < 1e-12  # float rounding of 200 terms
    assert values.min() >= 0.0 and values.max() <= 1.0
    # Samples start from e_29: the probability-weighted mean of the first step should sit
    # near the conditional forecast; its std is ~ sigma sqrt(1 - phi^2) / sqrt(200) = 0.0035
    # MW (plus the reduction's discretisation), so 0.02 MW is a loose but failing bound.
    assert abs(q @ values[:, 0] - prof.forecast_mw(30, 1)[0]) < 0.02
