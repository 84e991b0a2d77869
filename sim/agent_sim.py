"""mosaik simulator of one microgrid's ADMM agent (``[admm] agents = "mosaik"``).

Model ``MicrogridAgent`` (one entity per simulator, id = the microgrid's name, given as
``microgrid`` to ``init``): a :class:`controllers.mg_agent.MicrogridController` that keeps
only its own microgrid's parameters, its own forecasts (from its ``{MG}_load`` and
``{MG}_wind`` Profile entities) and its own measurements (its storage and turbine, from the
grid, time-shifted). Stepped by events only: a message from the DSO controller
(``admm_request``, a
trigger) makes it step at that time and answer (``admm_reply``); the reply reaches the
controller through a weak connection, so the whole exchange of a controller step is one
mosaik same-time loop (both simulators are in one ``world.group``, see
:func:`sim.world.add_agents`). Run standalone with
``python -m mgcosim.sim.agent_sim HOST:PORT``, as mosaik's ``cmd`` starter does, or on
another host through mosaik's ``connect``.
"""

from __future__ import annotations

import mosaik_api_v3

from mgcosim.controllers.admm_messages import encode
from mgcosim.sim.attrdoc import AttrDoc, names
from mgcosim.sim.controller_sim import CONTROLLER_ATTRS, forecasts, measurements

AGENT_ATTRS: AttrDoc = {
    "forecast_mw": CONTROLLER_ATTRS["forecast_mw"],
    "scenarios_mw": CONTROLLER_ATTRS["scenarios_mw"],
    "scenario_prob": CONTROLLER_ATTRS["scenario_prob"],
    "soc_end_mwh": CONTROLLER_ATTRS["soc_end_mwh"],
    "mt_p_mw": CONTROLLER_ATTRS["mt_p_mw"],
    "admm_request": (
        "-",
        "message (controllers.admm_messages)",
        "input: the DSO controller's message to this microgrid (a trigger)",
    ),
    "admm_reply": ("-", "message", "this microgrid's answer, at the same time"),
}
META = {
    "api_version": "3.0",
    "type": "hybrid",  # its measurements are non-trigger inputs, the messages triggers
    "models": {
        "MicrogridAgent": {
            "public": True,
            "params": [],
            "attrs": names(AGENT_ATTRS),
            "trigger": ["admm_request"],
            "non-persistent": names(AGENT_ATTRS),  # its one output is an event
        }
    },
}


class MicrogridAgentSim(mosaik_api_v3.Simulator):
    """One microgrid's agent; answers every DSO message within the same time step."""

    def __init__(self) -> None:
        super().__init__(META)
        self.reply: dict | None = None
        self.messages = self.bytes = 0

    def init(self, sid, time_resolution=1.0, scenario_path: str = "", microgrid: str = "", **_):
        if time_resolution != 1.0:
            raise ValueError("MicrogridAgentSim works in seconds: use time_resolution=1")
        from mgcosim.controllers.mg_agent import MicrogridController
        from mgcosim.scenarios.loader import load_scenario

        sc = load_scenario(scenario_path)
        names = [mg.name for mg in sc.data.microgrids]
        if microgrid not in names:
            raise ValueError(f"MicrogridAgentSim: no microgrid {microgrid!r} (have {names})")
        start = sc.start
        self.eid, self.step_h = microgrid, sc.physical_step_s / 3600
        self.controller = MicrogridController(
            sc.data,
            microgrid,
            names,
            start_hour=start.hour + start.minute / 60 + start.second / 3600,
            n_periods=sc.horizon_s // sc.controller_step_s,
            period_h=sc.controller_step_s / 3600,
            n_scenarios=sc.profiles.wind_scenarios,
            plan_steps=sc.controller_step_s // sc.physical_step_s,
        )  # keeps its own parameters only; the scenario is dropped here
        return self.meta

    def create(self, num, model, **params):
        if model != "MicrogridAgent" or num != 1:
            raise ValueError(f"MicrogridAgentSim creates one 'MicrogridAgent', not {num} x {model}")
        return [{"eid": self.eid, "type": model}]

    def step(self, time, inputs, max_advance):
        attrs = inputs.get(self.eid, {})
        requests = [m for m in attrs.get("admm_request", {}).values() if m is not None]
        self.reply = None
        if requests:
            meas = measurements(time, attrs)
            fc = forecasts(time, attrs, self.step_h)
            self.reply = self.controller.handle(requests[0], meas, fc)
            self.messages += 1
            self.bytes += len(encode(self.reply))
        return None

    def get_data(self, outputs):
        if self.reply is None:
            return {}
        return {self.eid: {"admm_reply": self.reply}}


if __name__ == "__main__":
    mosaik_api_v3.start_simulation(MicrogridAgentSim(), "mgcosim microgrid agent simulator")
