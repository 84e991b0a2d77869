"""mosaik simulator that writes every grid step to the run directory as the run goes.

Model ``Recorder`` (one entity, parameter ``out_dir``). It takes the grid's outputs,
the controller's set-points and the profile entities' realisations, and hands them to
:class:`sim.results.RunWriter`. It steps whenever the grid does (fault events included).
Run standalone with ``python -m mgcosim.sim.recorder_sim HOST:PORT``.
"""

from __future__ import annotations

from pathlib import Path

import mosaik_api_v3

from mgcosim.scenarios.loader import load_scenario
from mgcosim.sim.attrdoc import AttrDoc, names
from mgcosim.sim.controller_sim import CONTROLLER_ATTRS
from mgcosim.sim.grid_sim import GRID_OUTPUT_ATTRS, first, unit_of
from mgcosim.sim.grid_sim import OUTPUTS as GRID_OUTPUTS
from mgcosim.sim.results import RunWriter

RECORDER_ATTRS: AttrDoc = GRID_OUTPUT_ATTRS | {
    "setpoints_mw": CONTROLLER_ATTRS["setpoints_mw"],
    "p_mw": ("MW", "float per source entity (id = unit name)", "profile realisation"),
    "plan_info": CONTROLLER_ATTRS["plan_info"],
}
META = {
    "api_version": "3.0",
    "type": "event-based",
    "models": {
        "Recorder": {
            "public": True,
            "params": ["out_dir"],
            "attrs": names(RECORDER_ATTRS),
            "trigger": names(RECORDER_ATTRS),
        }
    },
}


class RecorderSim(mosaik_api_v3.Simulator):
    """Writes result tables row by row; :meth:`finalize` closes them."""

    def __init__(self) -> None:
        super().__init__(META)
        self.writer: RunWriter | None = None
        self.eid = "recorder"

    def init(self, sid, time_resolution=1.0, scenario_path: str = "", **_):
        self.scenario = load_scenario(scenario_path)
        return self.meta

    def create(self, num, model, out_dir: str = ""):
        if model != "Recorder" or num != 1 or not out_dir:
            raise ValueError("RecorderSim creates one 'Recorder' entity with an out_dir")
        self.writer = RunWriter(Path(out_dir), self.scenario)
        return [{"eid": self.eid, "type": model}]

    def step(self, time, inputs, max_advance):
        attrs = inputs.get(self.eid, {})
        grid = {attr: first(attrs.get(attr, {})) for attr in GRID_OUTPUTS}
        setpoints = first(attrs.get("setpoints_mw", {})) or {}
        available = {unit_of(src): v for src, v in attrs.get("p_mw", {}).items()}
        if grid.get("converged") is not None:
            plan_info = first(attrs.get("plan_info", {})) or None
            self.writer.write_step(time, grid, setpoints, available, plan_info)
        return None

    def get_data(self, outputs):
        return {}

    def finalize(self):
        self.close("completed")

    def close(self, status: str) -> dict:
        return self.writer.close(status) if self.writer else {}


if __name__ == "__main__":
    mosaik_api_v3.start_simulation(RecorderSim(), "mgcosim recorder")
