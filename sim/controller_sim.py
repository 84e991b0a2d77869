"""mosaik simulator of the controller entity.

Model ``Controller`` (one entity). At every controller step it turns the latest
measurements (a time-shifted connection from the grid closes the loop) and forecasts
(from the profile entities) into a :class:`controllers.base.Plan`; at every physical
step it sends that plan's current set-points to the grid (:data:`COMMANDS`: ``setpoints_mw``,
PV reactive power ``setpoints_mvar`` when the plan sets it, ``switch_closed_cmd`` when the
plan changes the topology, ...). Its first step refuses forecasts
that miss a load, wind or PV unit, or name none (:func:`check_forecasts`). Every attribute
with its unit and value shape: :data:`CONTROLLER_ATTRS`.
Run standalone with ``python -m mgcosim.sim.controller_sim HOST:PORT``.
"""

from __future__ import annotations

import dataclasses

import mosaik_api_v3
import numpy as np

from mgcosim.controllers.base import Controller, Forecasts, Measurements, Plan
from mgcosim.controllers.rule_based import RuleBasedController
from mgcosim.scenarios.loader import Scenario, load_scenario
from mgcosim.sim.attrdoc import AttrDoc, names, received, sent
from mgcosim.sim.grid_sim import (
    GRID_INPUT_ATTRS,
    GRID_OUTPUT_ATTRS,
    WiringError,
    first,
    profile_unit_names,
    unit_of,
)
from mgcosim.sim.mess import with_mess

_PER_SOURCE = "per source entity (id = unit name)"
# what the controller sends the grid every physical step
COMMANDS = [
    "setpoints_mw",
    "setpoints_mvar",
    "switch_closed_cmd",
    "load_served_cmd",
    "grid_former_cmd",
]
KINDS = ("load", "wind")  # a microgrid's profile units, {MG}_load and {MG}_wind
CONTROLLER_ATTRS: AttrDoc = {
    "forecast_mw": (
        "MW",
        f"list of floats, one per physical step over the horizon, {_PER_SOURCE}",
        "input: point forecast: load demand or available wind/PV power",
    ),
    "scenarios_mw": ("MW", f"S x n nested list, {_PER_SOURCE}", "input: wind scenarios"),
    "scenario_prob": (
        "-",
        f"list of S floats, {_PER_SOURCE}",
        "input: wind scenario probabilities",
    ),
    **received(
        GRID_OUTPUT_ATTRS, ["soc_end_mwh", "mt_p_mw", "switch_closed"], "the grid, time-shifted"
    ),
    **sent(GRID_INPUT_ATTRS, COMMANDS),
    "plan_info": ("-", "dict text -> value", "the current plan's figures (mode, status, ...)"),
    "faults": ("-", "list of dicts", "input: faults in force (an event: re-plans at once)"),
    "admm_request": (
        "-",
        "dict microgrid -> message (controllers.admm_messages), or absent",
        'agent mode (admm.agents = "mosaik"): the DSO\'s messages to the microgrid agents',
    ),
    "admm_reply": (
        "-",
        "message, per MicrogridAgent entity (id = microgrid name)",
        "input: agent mode: a microgrid agent's answer (weak: a same-time loop)",
    ),
}
EVENTS = ["faults", "admm_request", "admm_reply"]
PERSISTENT = [a for a in CONTROLLER_ATTRS if a not in EVENTS]
META = {
    "api_version": "3.0",
    "type": "hybrid",
    "models": {
        "Controller": {
            "public": True,
            "params": [],
            "attrs": names(CONTROLLER_ATTRS),
            "trigger": ["faults", "admm_reply"],
            "persistent": PERSISTENT,
            "non-persistent": EVENTS,
        }
    },
}


class UnsupportedControllerError(ValueError):
    """The scenario names a controller this version cannot run."""


AVAILABLE = ("rule_based", "admm", "centralised")


def check_controller(scenario: Scenario) -> None:
    """Refuse a controller this version cannot run, before anything starts (cheap)."""
    if scenario.controller not in AVAILABLE:
        raise UnsupportedControllerError(
            f"{scenario.path}: field 'controller': {scenario.controller!r} is not available. "
            f"Fix: use one of {', '.join(AVAILABLE)}"
        )


def make_controller(scenario: Scenario) -> Controller:
    """The controller the scenario asks for."""
    check_controller(scenario)
    plan_steps = scenario.controller_step_s // scenario.physical_step_s
    if scenario.controller == "rule_based":
        return RuleBasedController(scenario.data, plan_steps)
    from mgcosim.controllers.optimal import OptimalController
    from mgcosim.networks.ieee33 import build_ieee33

    start = scenario.start
    start_hour = start.hour + start.minute / 60 + start.second / 3600
    n_periods = scenario.horizon_s // scenario.controller_step_s
    period_h = scenario.controller_step_s / 3600
    settings = admm_settings(scenario)
    if agent_mode(scenario):
        from mgcosim.controllers.dso_agent import AgentDSOController

        net = build_ieee33(scenario.data)
        return AgentDSOController(
            scenario.data, net, start_hour, n_periods, period_h, plan_steps, settings
        )
    return OptimalController(
        scenario.data,
        build_ieee33(scenario.data),
        start_hour=start_hour,
        method=scenario.controller,
        n_periods=n_periods,
        period_h=period_h,
        n_scenarios=scenario.profiles.wind_scenarios,
        plan_steps=plan_steps,
        reference=scenario.admm.reference,
        settings=settings,
    )


def admm_settings(scenario: Scenario):
    """The ADMM's settings: the defaults, with the scenario's message faults if any."""
    from mgcosim.controllers.admm import ADMMSettings

    return ADMMSettings(comms=scenario.communication)


def agent_mode(scenario: Scenario) -> bool:
    """The DSO and the microgrids as separate mosaik entities (``[admm] agents = "mosaik"``)."""
    return scenario.controller == "admm" and scenario.admm.agents == "mosaik"


class ControllerSim(mosaik_api_v3.Simulator):
    """Plans at controller steps, dispatches the plan at physical steps.

    Fault events (a trigger input) switch it into restoration mode at once: it re-plans
    every physical step with the restoration controller until the repairs, then returns to
    normal dispatch, commanding the pre-fault topology and full load pickup again.
    """

    def __init__(self) -> None:
        super().__init__(META)
        self.eid = "controller"
        self.plan: Plan | None = None
        self.out: dict = {}
        self.faults: tuple[dict, ...] = ()
        self.restorer = None
        self.pre_fault_switches: dict[int, bool] | None = None
        self.resume = False

    def init(self, sid, time_resolution=1.0, scenario_path: str = "", mess_buses=None, **_):
        if time_resolution != 1.0:
            raise ValueError("ControllerSim works in seconds: use time_resolution=1")
        self.scenario = load_scenario(scenario_path)
        if mess_buses:  # the placement the world resolved (sim.world.place_mess)
            self.scenario = with_mess(self.scenario, mess_buses)
        self.agents = agent_mode(self.scenario)
        self.needed_forecasts = profile_unit_names(self.scenario)
        if self.agents:  # the microgrids' forecasts go to their own agents
            own = {f"{mg.name}_{kind}" for mg in self.scenario.data.microgrids for kind in KINDS}
            self.needed_forecasts = [u for u in self.needed_forecasts if u not in own]
        self.controller = make_controller(self.scenario)
        if self.agents:  # from here on the DSO's process keeps no microgrid parameters
            from mgcosim.controllers.dso_agent import dso_view

            self.scenario = dataclasses.replace(
                self.scenario, data=dso_view(self.scenario.data), raw={}
            )
        self.exchange = None  # agent mode: the controller step's message exchange under way
        self.request: dict | None = None
        self.checked = False
        if self.scenario.faults:
            from mgcosim.controllers.restoration_controller import RestorationController
            from mgcosim.controllers.solve import MipLimits
            from mgcosim.networks.ieee33 import build_ieee33

            settings = self.scenario.restoration
            self.restorer = RestorationController(
                self.scenario.data,
                build_ieee33(self.scenario.data),
                step_h=(settings.step_min or self.scenario.physical_step_s / 60) / 60,
                margin_h=settings.margin_h,
                max_periods=settings.max_periods,
                limits=MipLimits(settings.mip_rel_gap, settings.mip_node_limit),
                method=settings.method,
                fine_h=settings.fine_h,
                look_ahead_step_h=settings.look_ahead_step_min / 60,
            )
        return self.meta

    def create(self, num, model, **params):
        if model != "Controller" or num != 1:
            raise ValueError(
                f"ControllerSim creates one 'Controller' entity, not {num} x {model!r}"
            )
        return [{"eid": self.eid, "type": model}]

    def step(self, time, inputs, max_advance):
        attrs = inputs.get(self.eid, {})
        if not self.checked:
            check_forecasts(attrs, self.needed_forecasts)
            self.checked = True
        event = self._take_faults(attrs)
        meas = measurements(time, attrs, self.faults)
        if self.faults:
            if self.pre_fault_switches is None:
                self.pre_fault_switches = dict(meas.switch_closed)
            if event or self._restoration_step_due(time):
                self.plan = self.restorer.plan(meas, self._forecasts(time, attrs))
        elif self.exchange is not None:  # agent mode: the microgrids answered (same time)
            replies = {unit_of(src): r for src, r in attrs.get("admm_reply", {}).items()}
            self._advance(replies)
        elif event or time % self.scenario.controller_step_s == 0 or self.plan is None:
            if self.agents:
                self.exchange = self.controller.plan_exchange(meas, self._forecasts(time, attrs))
                self._advance(None)
            else:
                self.plan = self.controller.plan(meas, self._forecasts(time, attrs))
        if self.exchange is None:
            self.out = self._outputs(time)
        step_s = self.scenario.physical_step_s
        return (time // step_s + 1) * step_s

    def _advance(self, replies: dict | None) -> None:
        """Agent mode: the next batch of messages, or the plan when the exchange ends."""
        try:
            self.request = next(self.exchange) if replies is None else self.exchange.send(replies)
        except StopIteration as done:
            self.plan, self.exchange, self.request = done.value, None, None

    def _restoration_step_due(self, time: int) -> bool:
        """A new restoration plan every restoration step (its own time scale)."""
        plan = self.plan
        if plan is None or plan.info.get("mode") != "restoration":
            return True
        return time - plan.time_s >= round(self.restorer.step_h * 3600)

    def _take_faults(self, attrs: dict) -> bool:
        """Update the faults in force; True when they changed (an event at this time)."""
        faults = first(attrs.get("faults", {}))
        if faults is None:
            return False
        was_faulted = bool(self.faults)
        self.faults = tuple(faults)
        if was_faulted and not self.faults:
            self.resume = True  # repaired: back to normal operation
        return True

    def _forecasts(self, time: int, attrs: dict) -> Forecasts:
        return forecasts(time, attrs, self.scenario.physical_step_s / 3600)

    def _outputs(self, time: int) -> dict:
        k = int((time - self.plan.time_s) // round(self.plan.step_h * 3600))
        switches = self.plan.switches_at(k)
        served = self.plan.served_at(k)
        if self.resume:  # first step after the repairs: pre-fault topology, all loads back
            switches = {**(self.pre_fault_switches or {}), **(switches or {})}
            served = {name: 1.0 for name in self._load_names()}
            self.resume, self.pre_fault_switches = False, None
        return {
            "setpoints_mw": self._standby() | self.plan.at(k),
            "setpoints_mvar": self.plan.q_at(k),
            "switch_closed_cmd": {str(b): int(c) for b, c in switches.items()}
            if switches
            else None,
            "load_served_cmd": served,
            "grid_former_cmd": self.plan.grid_formers_at(k),
            "plan_info": {str(key): value for key, value in self.plan.info.items()},
        }

    def _standby(self) -> dict[str, float]:
        """Mobile storage idles unless a (restoration) plan dispatches it."""
        return {u.name: 0.0 for u in self.scenario.data.mess}

    def _load_names(self) -> list[str]:
        from mgcosim.sim.units import stochastic_units

        if not hasattr(self, "_loads"):
            self._loads = [
                u
                for u in stochastic_units(self.scenario)
                if u.startswith("load_b") or u.endswith("_load")
            ]
        return self._loads

    def get_data(self, outputs):
        data = {}
        for eid, attrs in outputs.items():
            data[eid] = {a: self.out.get(a) for a in attrs if a != "admm_request"}
            if "admm_request" in attrs and self.request is not None:  # an event: only when sent
                data[eid]["admm_request"] = self.request
        return data


def check_forecasts(attrs: dict, needed: list[str]) -> None:
    """Refuse, before the first plan, forecasts that name no unit or miss a unit."""
    given = {unit_of(src) for src, v in attrs.get("forecast_mw", {}).items() if v is not None}
    unknown = sorted(given - set(needed))
    if unknown:
        raise WiringError(
            f"controller: forecast_mw from {', '.join(unknown)} matches no unit (the controller "
            f"takes the unit name from the source entity's id). Units: {', '.join(needed)}"
        )
    missing = [u for u in needed if u not in given]
    if missing:
        raise WiringError(
            f"controller: no forecast_mw for {len(missing)} unit(s): {', '.join(missing)}. Every "
            f"controller plans with a forecast of every load, wind and PV unit. Fix: connect "
            f"mgcosim's Profile entities (add_mgcosim(..., forecasts='scenario') does it), or "
            f"one source per unit whose entity id is the unit name"
        )


def measurements(time: int, attrs: dict, faults: tuple[dict, ...] = ()) -> Measurements:
    """Measurements from the grid's (time-shifted) outputs, and the faults in force."""
    switches = first(attrs.get("switch_closed", {})) or {}
    return Measurements(
        time_s=time,
        soc_mwh=dict(first(attrs.get("soc_end_mwh", {})) or {}),
        switch_closed={int(b): bool(c) for b, c in switches.items()},
        mt_p_mw=dict(first(attrs.get("mt_p_mw", {})) or {}),
        active_faults=tuple(faults),
    )


def forecasts(time: int, attrs: dict, step_h: float) -> Forecasts:
    """Forecasts from the profile entities' outputs, keyed by unit name."""

    def by_unit(attr: str) -> dict[str, np.ndarray]:
        return {
            unit_of(src): np.asarray(v, dtype=float)
            for src, v in attrs.get(attr, {}).items()
            if v is not None
        }

    return Forecasts(
        time_s=time,
        step_h=step_h,
        p_mw=by_unit("forecast_mw"),
        scenarios_mw=by_unit("scenarios_mw"),
        scenario_prob=by_unit("scenario_prob"),
    )


if __name__ == "__main__":
    mosaik_api_v3.start_simulation(ControllerSim(), "mgcosim controller simulator")
