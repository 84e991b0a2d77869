"""The stochastic units of a scenario: wind, PV and load profiles with their error models."""

from __future__ import annotations

from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.scenarios.loader import Scenario
from mgcosim.sim.stochastic import ErrorModel, StochasticProfile, forecast_around


def horizon_steps(scenario: Scenario) -> int:
    """Physical steps in one controller horizon."""
    return scenario.horizon_s // scenario.physical_step_s


def start_hour(scenario: Scenario) -> float:
    """Clock hour of the scenario start: hours after midnight of the start day."""
    return scenario.start.hour + scenario.start.minute / 60 + scenario.start.second / 3600


def stochastic_units(scenario: Scenario) -> dict[str, StochasticProfile]:
    """One :class:`StochasticProfile` per wind turbine, PV unit and load, by unit name.

    Profiles cover the run plus one horizon, so that the last forecast is complete. A unit
    with a given actual series is realised exactly as given (:mod:`sim.stochastic`).
    """
    prof, data = scenario.profiles, scenario.data
    n = scenario.n_steps + horizon_steps(scenario)
    step_h = scenario.physical_step_s / 3600
    wind = ErrorModel(prof.wind_sigma_pu, prof.wind_phi_per_h, "additive")
    pv_err = ErrorModel(prof.pv_sigma_pu, prof.pv_phi_per_h, "multiplicative")
    load = ErrorModel(prof.load_sigma_pu, prof.load_phi_per_h, "multiplicative")

    start_h, seed = start_hour(scenario), scenario.seed

    def unit(name: str, generic: str, scale_mw: float, error: ErrorModel, cap: float | None):
        base = prof.shape_pu(name, generic, start_h, step_h, n) * scale_mw
        actual = prof.actual_pu(name, generic, start_h, step_h, n)
        if actual is None:
            return StochasticProfile(name, base, step_h, error, cap, seed)
        actual_mw = actual * scale_mw
        if not prof.has_forecast(name, generic):
            base = forecast_around(name, actual_mw, step_h, error, cap, seed)
        return StochasticProfile(name, base, step_h, error, cap, seed, actual_mw=actual_mw)

    units = {}
    for mg in data.microgrids:
        units[f"{mg.name}_wind"] = unit(
            f"{mg.name}_wind", "wind_pu", mg.wind_p_rated_mw, wind, mg.wind_p_rated_mw
        )
        units[f"{mg.name}_load"] = unit(f"{mg.name}_load", "load_pu", mg.load_p_peak_mw, load, None)
    for pv in data.pv:
        units[pv.name] = unit(pv.name, "pv_pu", pv.p_rated_mw, pv_err, pv.p_rated_mw)
    net = build_ieee33(data)
    for _, row in net.load[net.load.name.str.startswith("load_b")].iterrows():
        units[row["name"]] = unit(row["name"], "load_pu", float(row.p_nom_mw), load, None)
    return units


def is_wind(unit: str) -> bool:
    return unit.endswith("_wind")


def forecasts_at(scenario: Scenario, units: dict, k0: int, n_scenarios: int | None = None):
    """What a controller receives at physical step ``k0`` without the co-simulation:
    point forecasts of every unit and the reduced wind scenarios over one horizon."""
    from mgcosim.controllers.base import Forecasts

    n, prof = horizon_steps(scenario), scenario.profiles
    kept = prof.wind_scenarios if n_scenarios is None else n_scenarios
    scen = {
        u: p.scenarios_mw(k0, n, prof.wind_samples, kept) for u, p in units.items() if is_wind(u)
    }
    return Forecasts(
        time_s=k0 * scenario.physical_step_s,
        step_h=scenario.physical_step_s / 3600,
        p_mw={u: p.forecast_mw(k0, n) for u, p in units.items()},
        scenarios_mw={u: v[0] for u, v in scen.items()},
        scenario_prob={u: v[1] for u, v in scen.items()},
    )
