"""mosaik simulator that emits the scenario's fault events at their times.

Model ``FaultInjector`` (one entity, event-based). Output ``faults``: the list of faults
active from this time on (each a dict with ``name``, ``kind``, ``branch_ieee``), emitted
only when a fault starts or is repaired.
Run standalone with ``python -m mgcosim.sim.fault_sim HOST:PORT``.
"""

from __future__ import annotations

import mosaik_api_v3

from mgcosim.scenarios.loader import FaultEvent, load_scenario
from mgcosim.sim.attrdoc import AttrDoc, names

FAULT_ATTRS: AttrDoc = {
    "faults": (
        "-",
        "list of dicts (name, kind 'branch' or 'main_grid', branch_ieee, repair_end_s in s)",
        "faults active from this time on (output at each fault start and repair)",
    ),
}
META = {
    "api_version": "3.0",
    "type": "event-based",
    "models": {"FaultInjector": {"public": True, "params": [], "attrs": names(FAULT_ATTRS)}},
}


def event_times(faults: tuple[FaultEvent, ...]) -> list[int]:
    """Times (s) at which the set of active faults changes."""
    return sorted({f.start_s for f in faults} | {f.start_s + f.repair_s for f in faults})


def active_at(faults: tuple[FaultEvent, ...], time_s: int) -> list[dict]:
    """Faults active at ``time_s`` (started, not yet repaired)."""
    return [
        {
            "name": f.name,
            "kind": f.kind,
            "branch_ieee": f.branch_ieee,
            "repair_end_s": f.start_s + f.repair_s,
        }
        for f in faults
        if f.start_s <= time_s < f.start_s + f.repair_s
    ]


class FaultSim(mosaik_api_v3.Simulator):
    """Emits the active-fault list at every fault start and repair."""

    def __init__(self) -> None:
        super().__init__(META)
        self.eid = "faults"
        self.out = None

    def init(self, sid, time_resolution=1.0, scenario_path: str = "", **_):
        self.faults = load_scenario(scenario_path).faults
        self.times = event_times(self.faults)
        return self.meta

    def create(self, num, model, **params):
        if model != "FaultInjector" or num != 1:
            raise ValueError(f"FaultSim creates one 'FaultInjector' entity, not {num} x {model!r}")
        return [{"eid": self.eid, "type": model}]

    def step(self, time, inputs, max_advance):
        self.out = active_at(self.faults, time)
        later = [t for t in self.times if t > time]
        return later[0] if later else None

    def get_data(self, outputs):
        return {eid: {"faults": self.out} for eid in outputs}


if __name__ == "__main__":
    mosaik_api_v3.start_simulation(FaultSim(), "mgcosim fault injector")
