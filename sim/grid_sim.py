"""mosaik simulator of the physical grid (pandapower AC power flow every physical step).

Model ``Grid`` (one entity). Inputs: ``p_mw`` from the profile entities (load demand or
available wind/PV, keyed by unit name), ``setpoints_mw`` and ``switch_closed`` from the
controller, ``faults`` from the fault injector (a trigger: a fault event makes the grid
step at once). Outputs: the measurements of :func:`sim.grid.measure` and the load
service of :func:`sim.grid.load_service` (totals, per load, per priority tier). With
``microgrid_model = "internal"`` the microgrids are their internal networks.
Run standalone with ``python -m mgcosim.sim.grid_sim HOST:PORT``.
"""

from __future__ import annotations

import mosaik_api_v3

from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.scenarios.loader import load_scenario
from mgcosim.sim.grid import GridInputs, GridModel
from mgcosim.sim.mess import with_mess

OUTPUTS = [
    "converged",
    "vm_pu",
    "loading_percent",
    "p_from_mw",
    "q_from_mvar",
    "switch_closed",
    "soc_mwh",
    "soc_end_mwh",
    "mt_p_mw",
    "unit_p_mw",
    "exchange_p_mw",
    "p_loss_mw",
    "p_loss_ieee_mw",
    "p_substation_mw",
    "q_substation_mvar",
    "load_demand_mw",
    "load_served_mw",
    "load_unserved_mw",
    "load_not_computed_mw",
    "load_demand_p_mw",
    "load_served_p_mw",
    "tier_demand_mw",
    "tier_served_mw",
    "active_faults",
    "islands",
    "islands_collapsed",
]
INPUTS = [
    "p_mw",
    "setpoints_mw",
    "switch_closed_cmd",
    "load_served_cmd",
    "grid_former_cmd",
    "faults",
]

META = {
    "api_version": "3.0",
    "type": "hybrid",
    "models": {
        "Grid": {
            "public": True,
            "params": [],
            "attrs": INPUTS + OUTPUTS,
            "trigger": ["faults"],
            "persistent": [a for a in INPUTS + OUTPUTS if a != "faults"],
            "non-persistent": ["faults"],
        }
    },
}


class GridSim(mosaik_api_v3.Simulator):
    """One pandapower grid stepping every physical step (and at fault events)."""

    def __init__(self) -> None:
        super().__init__(META)
        self.model: GridModel | None = None
        self.eid = "grid"
        self.step_s = 0
        self.outputs: dict = {}

    def init(self, sid, time_resolution=1.0, scenario_path: str = "", mess_buses=None, **_):
        if time_resolution != 1.0:
            raise ValueError("GridSim works in seconds: start the world with time_resolution=1")
        scenario = load_scenario(scenario_path)
        if mess_buses:  # the placement the world resolved (sim.world.place_mess)
            scenario = with_mess(scenario, mess_buses)
        self.step_s = scenario.physical_step_s
        # only the grid runs the internal networks; the controllers plan with the lumped
        # microgrids (seed 003: they see each microgrid through its PCC)
        net = build_ieee33(scenario.data, scenario.microgrid_networks())
        self.model = GridModel(net, scenario.data)
        return self.meta

    def create(self, num, model, **params):
        if model != "Grid" or num != 1:
            raise ValueError(f"GridSim creates exactly one 'Grid' entity, not {num} x {model!r}")
        return [{"eid": self.eid, "type": model}]

    def step(self, time, inputs, max_advance):
        next_regular = (time // self.step_s + 1) * self.step_s
        self.outputs = self.model.step(
            time, next_regular - time, grid_inputs(inputs.get(self.eid, {}), self.model)
        )
        return next_regular

    def get_data(self, outputs):
        return {
            eid: {attr: self.outputs.get(attr) for attr in attrs} for eid, attrs in outputs.items()
        }


def unit_of(full_id: str) -> str:
    """Unit name from a mosaik full id ``'Sim-0.MG1_wind'``."""
    return full_id.split(".", 1)[1]


def first(values: dict) -> object:
    """The single value of a ``{src_full_id: value}`` input."""
    return next(iter(values.values())) if values else None


def grid_inputs(attrs: dict, model: GridModel) -> GridInputs:
    """Sort mosaik inputs into :class:`GridInputs`."""
    loads = set(model.elements["load"])
    powers = {unit_of(src): float(v) for src, v in attrs.get("p_mw", {}).items() if v is not None}
    switches = first(attrs.get("switch_closed_cmd", {}))
    faults = first(attrs.get("faults", {}))
    served = first(attrs.get("load_served_cmd", {}))
    formers = first(attrs.get("grid_former_cmd", {}))
    return GridInputs(
        load_p_mw={u: p for u, p in powers.items() if u in loads},
        available_p_mw={u: p for u, p in powers.items() if u not in loads},
        setpoints_mw=dict(first(attrs.get("setpoints_mw", {})) or {}),
        switch_closed={int(b): bool(c) for b, c in switches.items()} if switches else None,
        faults=list(faults) if faults is not None else None,
        served_fraction=dict(served) if served is not None else None,
        grid_formers=list(formers) if formers is not None else None,
    )


if __name__ == "__main__":
    mosaik_api_v3.start_simulation(GridSim(), "mgcosim grid simulator")
