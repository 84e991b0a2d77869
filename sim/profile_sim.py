"""mosaik simulator of the stochastic profiles (wind, PV, load).

Model ``Profile``, one entity per unit (``eid`` = unit name). Outputs: ``p_mw`` (the
realisation: available wind/PV or load demand at this step); at controller steps also
``forecast_mw`` (the rolling forecast over the horizon, one value per physical step) and,
for wind, ``scenarios_mw`` / ``scenario_prob`` (reduced scenario set). Between controller
steps the forecast attributes are ``None``.
Run standalone with ``python -m mgcosim.sim.profile_sim HOST:PORT``.
"""

from __future__ import annotations

import mosaik_api_v3

from mgcosim.scenarios.loader import load_scenario
from mgcosim.sim.attrdoc import AttrDoc, names
from mgcosim.sim.units import horizon_steps, is_wind, stochastic_units

PROFILE_ATTRS: AttrDoc = {
    "p_mw": ("MW", "float", "realisation: load demand or available wind/PV power"),
    "forecast_mw": (
        "MW",
        "list of floats, one per physical step over the horizon",
        "rolling point forecast from this step on",
    ),
    "scenarios_mw": (
        "MW",
        "S x n nested list, or None",
        "wind only, at controller steps: reduced scenario set",
    ),
    "scenario_prob": (
        "-",
        "list of S floats, or None",
        "wind only, at controller steps: scenario probabilities",
    ),
}
META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Profile": {"public": True, "params": ["unit"], "attrs": names(PROFILE_ATTRS)}},
}


class ProfileSim(mosaik_api_v3.Simulator):
    """Realisations and forecasts of every stochastic unit of a scenario."""

    def __init__(self) -> None:
        super().__init__(META)
        self.units = {}
        self.entities: list[str] = []
        self.k = 0
        self.time = 0

    def init(self, sid, time_resolution=1.0, scenario_path: str = "", **_):
        if time_resolution != 1.0:
            raise ValueError("ProfileSim works in seconds: use time_resolution=1")
        self.scenario = load_scenario(scenario_path)
        self.units = stochastic_units(self.scenario)
        self.n_horizon = horizon_steps(self.scenario)
        return self.meta

    def create(self, num, model, unit: str = ""):
        if model != "Profile":
            raise ValueError(f"ProfileSim has no model {model!r}")
        if unit not in self.units:
            raise ValueError(f"unknown unit {unit!r}; known: {sorted(self.units)}")
        if num != 1:
            raise ValueError("create one Profile entity per unit")
        self.entities.append(unit)
        return [{"eid": unit, "type": model}]

    def step(self, time, inputs, max_advance):
        self.time = time
        self.k = time // self.scenario.physical_step_s
        return time + self.scenario.physical_step_s

    def _is_controller_step(self) -> bool:
        return self.time % self.scenario.controller_step_s == 0

    def get_data(self, outputs):
        return {
            eid: {attr: self._value(eid, attr) for attr in attrs} for eid, attrs in outputs.items()
        }

    def _value(self, eid: str, attr: str):
        unit = self.units[eid]
        if attr == "p_mw":
            return float(unit.realised_mw[self.k])
        if attr == "forecast_mw":  # every step: restoration re-plans between controller steps
            return unit.forecast_mw(self.k, self.n_horizon).tolist()
        if not self._is_controller_step():
            return None
        if not is_wind(eid):
            return None
        values, probs = self._scenarios(eid)
        return values.tolist() if attr == "scenarios_mw" else probs.tolist()

    def _scenarios(self, eid: str):
        key = (eid, self.k)
        if getattr(self, "_cache_key", None) != key:
            prof = self.scenario.profiles
            self._cache = self.units[eid].scenarios_mw(
                self.k, self.n_horizon, prof.wind_samples, prof.wind_scenarios
            )
            self._cache_key = key
        return self._cache


if __name__ == "__main__":
    mosaik_api_v3.start_simulation(ProfileSim(), "mgcosim profile simulator")
