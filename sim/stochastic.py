"""Seeded stochastic forecasts, realisations and scenarios of wind, PV and load profiles.

Error model
-----------
Every unit (a wind farm, a PV plant, a load) has a day-ahead forecast ``f_k`` in MW on a
grid of ``N`` steps of ``step_h`` hours. Its forecast error in per unit is an AR(1) process

    e_0 ~ N(0, sigma^2),    e_k = phi e_{k-1} + sigma sqrt(1 - phi^2) eps_k,    eps_k ~ N(0, 1),

with ``phi = phi_per_h ** step_h``. Why AR(1): wind, PV and load forecast errors persist for
hours (an error at 10:00 predicts the error at 10:15); AR(1), the sampled Ornstein-Uhlenbeck
process, is the simplest stationary Gaussian process with that property. It has two parameters
that can be read off historical data (the error std and its 1-hour autocorrelation), and
``phi_per_h ** step_h`` gives the same hourly correlation whatever the step, so a 15-min and a
1-h run of one scenario describe the same physics.

The error maps to MW according to ``ErrorModel.mode``:

* ``"additive"`` (wind): ``p = f + e * cap_mw``; wind errors are quoted in pu of the installed
  capacity and do not vanish when little wind is forecast.
* ``"multiplicative"`` (load, PV): ``p = f * (1 + e)``; the error scales with the forecast, so
  PV is exactly zero at night and a load error is a percentage of the load.

Clipping: the MW value is clipped to the physical range ``[0, cap_mw]`` (``[0, inf)`` without
a capacity), identically for the realisation, the rolling forecasts and the scenarios.
``error_pu`` stays the unclipped latent path, so near a bound the MW error is no longer
Gaussian nor zero-mean (wind at 0 MW can only be under-forecast).

Conditional (rolling) forecast: at step ``k0`` the controller has seen the realisation up to
``k0 - 1``; the minimum mean-square forecast of ``e_{k0+j}`` given ``e_{k0-1}`` is
``phi^(j+1) e_{k0-1}``. The forecast thus corrects the day-ahead forecast for the persistent
part of the current error and decays back to it at long lead; its error variance grows from
``sigma^2 (1 - phi^2)`` at lead one step to ``sigma^2``. Simplification: the forecaster is
given the latent ``e_{k0-1}`` even when the measured value was clipped.

Scenarios: ``n_samples`` Monte Carlo error paths from the same AR(1), started at
``e_{k0-1}`` (stationary at ``k0 == 0``), mapped and clipped like the realisation and reduced
to ``n_scenarios`` by fast forward selection (Heitsch & Roemisch 2003) on the Euclidean
distance between MW paths. Each kept scenario receives its own probability plus that of the
deleted samples closest to it, so the probabilities still sum to one.

Correlation and independence: errors are correlated in time within one unit; different units
are independent (no spatial correlation, a simplification for neighbouring wind farms). Each
unit draws its realisation from the stream ``unit_seed(seed, name)`` and its scenarios at step
``k0`` from ``unit_seed(seed, name, k0)``; these streams are independent of one another, so
the realisation is never one of the samples and the scenarios do not depend on call order.
Stream keys use ``zlib.crc32(name)``, never ``hash()``, which is salted per Python process.

Given actuals: when the scenario's profile file gives a unit's actual series
(``<unit>_actual_pu``), the realisation *is* that series, with no noise added
(``StochasticProfile(..., actual_mw=...)``); ``error_pu`` is then the error implied by the
forecast and the actual (additive: ``(a - f) / cap_mw``; multiplicative: ``a / f - 1``, 0
where ``f = 0``), so the rolling forecasts and the scenarios condition on what happened.
Without a given forecast, :func:`forecast_around` draws the day-ahead forecast from the same
error model around the actuals: ``f = a - e cap_mw`` (additive) or ``f = a (1 - e)``
(multiplicative), clipped like a realisation, from the unit's realisation stream.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

MODES = ("additive", "multiplicative")


def shape_at_steps(
    table: pd.DataFrame, column: str, start_h: float, step_h: float, n: int
) -> np.ndarray:
    """Daily per-unit shape ``table[column]`` at times ``start_h + k step_h``, k = 0..n-1.

    Cyclic linear interpolation in ``table['hour']`` (strictly increasing in [0, 24), first 0):
    each step is sampled at its start time, and times past 24 h wrap to the next day.
    """
    hours = table["hour"].to_numpy(dtype=float)
    values = table[column].to_numpy(dtype=float)
    if hours.size == 0 or hours[0] != 0.0 or hours[-1] >= 24.0 or np.any(np.diff(hours) <= 0):
        raise ValueError("table['hour'] must start at 0, increase strictly and stay below 24")
    if step_h <= 0 or n < 0:
        raise ValueError(f"need step_h > 0 and n >= 0, got step_h={step_h}, n={n}")
    t = np.mod(start_h + step_h * np.arange(n), 24.0)
    return np.interp(t, np.append(hours, 24.0), np.append(values, values[0]))


@dataclass(frozen=True)
class ErrorModel:
    """AR(1) forecast error: stationary std, 1-hour autocorrelation and MW mapping mode."""

    sigma_pu: float
    phi_per_h: float
    mode: str

    def __post_init__(self) -> None:
        if self.sigma_pu < 0:
            raise ValueError(f"sigma_pu must be >= 0, got {self.sigma_pu}")
        if not 0.0 <= self.phi_per_h < 1.0:
            raise ValueError(f"phi_per_h must be in [0, 1), got {self.phi_per_h}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")

    def phi(self, step_h: float) -> float:
        """Per-step autocorrelation ``phi_per_h ** step_h``."""
        return self.phi_per_h**step_h


def unit_seed(seed: int, name: str, *extra: int) -> np.random.SeedSequence:
    """Stable stream per (scenario seed, unit name, extra ints).

    The entropy packs ``seed`` above the 32-bit ``zlib.crc32(name)``; the extras go to the
    spawn key, so ``unit_seed(s, n)`` and ``unit_seed(s, n, 0)`` are distinct streams.
    """
    if seed < 0 or any(x < 0 for x in extra):
        raise ValueError(f"seed and extra ints must be >= 0, got {seed}, {extra}")
    crc = zlib.crc32(name.encode("utf-8"))
    return np.random.SeedSequence((int(seed) << 32) | crc, spawn_key=tuple(int(x) for x in extra))


def ar1_paths(eps: np.ndarray, phi: float, sigma: float, e_prev: float | None = None) -> np.ndarray:
    """AR(1) paths driven by standard normals ``eps`` (time on the last axis).

    ``e_prev`` is the error just before the first step; ``None`` starts from the stationary
    law ``e_0 = sigma eps_0``.
    """
    innov = sigma * np.sqrt(1.0 - phi**2) * eps
    e = np.empty_like(innov)
    e[..., 0] = sigma * eps[..., 0] if e_prev is None else phi * e_prev + innov[..., 0]
    for k in range(1, e.shape[-1]):
        e[..., k] = phi * e[..., k - 1] + innov[..., k]
    return e


def reduce_scenarios(
    samples: np.ndarray, probs: np.ndarray, n_keep: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fast forward selection (Heitsch & Roemisch 2003), Euclidean distance between paths.

    Returns the ascending indices of the kept samples and their new probabilities: each kept
    sample gets its own probability plus that of the deleted samples closest to it (ties go to
    the lowest index). ``n_keep >= len(samples)`` returns all samples unchanged.
    """
    x = np.asarray(samples, dtype=float).reshape(len(samples), -1)
    p = np.asarray(probs, dtype=float)
    if p.shape != (len(x),) or np.any(p < 0) or not np.isclose(p.sum(), 1.0, atol=1e-9):
        raise ValueError("probs must be one non-negative weight per sample, summing to 1")
    if n_keep < 1:
        raise ValueError(f"n_keep must be >= 1, got {n_keep}")
    if n_keep >= len(x):
        return np.arange(len(x)), p.copy()
    dist = _pairwise_distances(x)
    kept = np.sort(_forward_select(dist, p, n_keep))
    return kept, _redistribute(dist, p, kept)


def _pairwise_distances(x: np.ndarray, max_elems: int = 2**22) -> np.ndarray:
    """Euclidean distances c_ij = ||x_i - x_j|| (exact zeros for equal rows), in row blocks."""
    block = max(1, max_elems // max(1, x.size))
    return np.vstack(
        [
            np.linalg.norm(x[i : i + block, None, :] - x[None, :, :], axis=-1)
            for i in range(0, len(x), block)
        ]
    )


def _forward_select(dist: np.ndarray, p: np.ndarray, n_keep: int) -> np.ndarray:
    """Greedy selection: add the u minimising z_u = sum_k p_k min(c_ku, d_k).

    ``d_k`` is the distance from sample k to the selected set; it is 0 for selected samples,
    so they drop out of the sum, and c_uu = 0 removes k = u (Heitsch & Roemisch's c^[i]).
    """
    d_set = np.full(len(p), np.inf)
    selected: list[int] = []
    for _ in range(n_keep):
        z = p @ np.minimum(dist, d_set[:, None])
        z[selected] = np.inf
        u = int(np.argmin(z))
        selected.append(u)
        d_set = np.minimum(d_set, dist[:, u])
    return np.array(selected)


def _redistribute(dist: np.ndarray, p: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """q_j = p_j + sum of p_i over deleted i whose closest kept sample is j."""
    nearest = np.argmin(dist[:, kept], axis=1)
    nearest[kept] = np.arange(len(kept))
    return np.bincount(nearest, weights=p, minlength=len(kept))


class StochasticProfile:
    """Day-ahead forecast, the realisation, rolling forecasts and wind scenarios of one unit."""

    def __init__(
        self,
        name: str,
        forecast_mw: np.ndarray,
        step_h: float,
        error: ErrorModel,
        cap_mw: float | None,
        seed: int,
        actual_mw: np.ndarray | None = None,
    ) -> None:
        base = np.asarray(forecast_mw, dtype=float)
        if base.ndim != 1 or base.size == 0 or not np.all(np.isfinite(base)):
            raise ValueError(f"{name}: forecast_mw must be a non-empty finite 1-D array")
        if step_h <= 0:
            raise ValueError(f"{name}: step_h must be > 0, got {step_h}")
        if cap_mw is not None and cap_mw <= 0:
            raise ValueError(f"{name}: cap_mw must be > 0 or None, got {cap_mw}")
        if error.mode == "additive" and cap_mw is None:
            raise ValueError(f"{name}: additive errors are in pu of cap_mw, which is None")
        if np.any(base < 0) or (cap_mw is not None and np.any(base > cap_mw)):
            raise ValueError(f"{name}: forecast_mw must lie in [0, cap_mw]")
        self.name = name
        self.step_h = float(step_h)
        self.error = error
        self.cap_mw = cap_mw
        self.seed = seed
        self.base_forecast_mw = base
        self._phi = error.phi(self.step_h)
        if actual_mw is not None:
            self.realised_mw = _checked_actual(name, actual_mw, base.size, cap_mw)
            self.error_pu = _implied_error(base, self.realised_mw, error.mode, cap_mw)
            return
        eps = np.random.default_rng(unit_seed(seed, name)).standard_normal(base.size)
        self.error_pu = ar1_paths(eps, self._phi, error.sigma_pu)
        self.realised_mw = self._to_mw(base, self.error_pu)

    @property
    def n_steps(self) -> int:
        """Number of steps N of the day-ahead grid."""
        return self.base_forecast_mw.size

    def forecast_mw(self, k0: int, n: int) -> np.ndarray:
        """Forecast issued at step k0 for steps k0..k0+n-1, knowing the error up to k0-1.

        ``base + phi^(j+1) e_{k0-1}`` mapped by the mode and clipped; the base forecast at
        k0 == 0. The base shape wraps past N (index % N); the conditional term keeps decaying.
        """
        base = self._base(k0, n)
        if k0 == 0:
            return base
        e_hat = self._phi ** np.arange(1, n + 1) * self.error_pu[k0 - 1]
        return self._to_mw(base, e_hat)

    def scenarios_mw(
        self, k0: int, n: int, n_samples: int, n_scenarios: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Equiprobable AR(1) samples over k0..k0+n-1 reduced to ``n_scenarios`` paths.

        Returns (values S x n in MW, probabilities summing to 1). Seeded by
        ``unit_seed(seed, name, k0)``: independent of call order, and the first steps of a
        sample do not change when the horizon n grows.
        """
        if n < 1 or n_samples < 1:
            raise ValueError(f"need n >= 1 and n_samples >= 1, got {n}, {n_samples}")
        base = self._base(k0, n)
        rng = np.random.default_rng(unit_seed(self.seed, self.name, k0))
        eps = rng.standard_normal((n, n_samples)).T
        e_prev = None if k0 == 0 else float(self.error_pu[k0 - 1])
        values = self._to_mw(base, ar1_paths(eps, self._phi, self.error.sigma_pu, e_prev))
        kept, probs = reduce_scenarios(values, np.full(n_samples, 1.0 / n_samples), n_scenarios)
        return values[kept], probs

    def _base(self, k0: int, n: int) -> np.ndarray:
        """Day-ahead forecast for steps k0..k0+n-1, wrapping past N."""
        if not 0 <= k0 <= self.n_steps or n < 0:
            raise ValueError(f"{self.name}: need 0 <= k0 <= {self.n_steps}, n >= 0; got {k0}, {n}")
        return self.base_forecast_mw[(k0 + np.arange(n)) % self.n_steps]

    def _to_mw(self, base: np.ndarray, e: np.ndarray) -> np.ndarray:
        """Map pu errors to MW by the mode and clip to [0, cap_mw]."""
        if self.error.mode == "additive":
            p = base + e * self.cap_mw
        else:
            p = base * (1.0 + e)
        return np.clip(p, 0.0, np.inf if self.cap_mw is None else self.cap_mw)


def forecast_around(
    name: str,
    actual_mw: np.ndarray,
    step_h: float,
    error: ErrorModel,
    cap_mw: float | None,
    seed: int,
) -> np.ndarray:
    """A day-ahead forecast drawn around given actuals: the unit's AR(1) error path ``e``
    (its realisation stream) applied with the opposite sign, clipped to ``[0, cap_mw]``."""
    a = _checked_actual(name, actual_mw, np.size(actual_mw), cap_mw)
    eps = np.random.default_rng(unit_seed(seed, name)).standard_normal(a.size)
    e = ar1_paths(eps, error.phi(step_h), error.sigma_pu)
    f = a - e * cap_mw if error.mode == "additive" else a * (1.0 - e)
    return np.clip(f, 0.0, np.inf if cap_mw is None else cap_mw)


def _checked_actual(name: str, actual_mw, n: int, cap_mw: float | None) -> np.ndarray:
    a = np.asarray(actual_mw, dtype=float)
    if a.shape != (n,) or not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: actual_mw must be {n} finite values")
    if np.any(a < 0) or (cap_mw is not None and np.any(a > cap_mw)):
        raise ValueError(f"{name}: actual_mw must lie in [0, cap_mw]")
    return a


def _implied_error(
    forecast: np.ndarray, actual: np.ndarray, mode: str, cap_mw: float | None
) -> np.ndarray:
    """The pu error that maps ``forecast`` to ``actual`` (0 where a forecast of 0 cannot)."""
    if mode == "additive":
        return (actual - forecast) / cap_mw
    safe = np.where(forecast > 0, forecast, 1.0)
    return np.where(forecast > 0, actual / safe - 1.0, 0.0)
