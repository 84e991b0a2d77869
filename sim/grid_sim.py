"""mosaik simulator of the physical grid (pandapower AC power flow every physical step).

Model ``Grid`` (one entity, ``eid = "grid"``) with child entities that any mosaik world can
connect to and any standard sink can record (flat scalar attributes):

- ``Unit`` per unit (``eid`` = unit name: ``load_b2``, ``MG1_wind``, ``PV_b18``, ``MG1_mt``,
  ``MG1_ess``, ...). Input ``p_profile_mw``: the load demand or the available wind/PV power
  (renewables and loads only, ``extra_info["takes_profile"]``; turbines and storage follow
  the controller's set-points).
  Outputs: ``p_mw`` (applied), ``p_profile_mw`` (the value in force), ``soc_mwh``.
- ``Bus`` per bus (``eid = "bus_<label>"``, label = IEEE number or microgrid bus name):
  ``vm_pu``.
- ``Branch`` per line (``eid = "branch_<label>"``): ``loading_percent``, ``p_from_mw``,
  ``q_from_mvar``, ``switch_closed``.

The ``Grid`` entity carries the whole step as dicts (what mgcosim's controller and recorder
use): the measurements of :func:`sim.grid_measure.measure` and the load service of
:func:`sim.grid_measure.load_service`; its inputs are the controller's commands and the fault
injector's ``faults`` (a trigger: a fault event makes the grid step at once). Every attribute
with its unit and value shape: :data:`GRID_ATTRS`, :data:`UNIT_ATTRS`, :data:`BUS_ATTRS`,
:data:`BRANCH_ATTRS`.

Profile inputs are checked at the first step (:class:`UnitFeed`): an input that matches no
unit is refused, and so is a unit that nobody feeds unless the grid was started with
``unfed_units="zero"`` (such a unit then takes 0 MW: no demand, no renewable output).
With ``microgrid_model = "internal"`` the microgrids are their internal networks.
Run standalone with ``python -m mgcosim.sim.grid_sim HOST:PORT``.
"""

from __future__ import annotations

import functools
import math

import mosaik_api_v3

from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.networks.params import load_network_data
from mgcosim.scenarios.loader import load_scenario
from mgcosim.sim.attrdoc import AttrDoc, names
from mgcosim.sim.grid import GridInputs, GridModel
from mgcosim.sim.grid_measure import measure
from mgcosim.sim.mess import with_mess

_BRANCH = "dict branch label -> float (IEEE number as text, or line name)"
_LOAD = "dict load -> float"
GRID_INPUT_ATTRS: AttrDoc = {
    "p_mw": (
        "MW",
        "float per source entity",
        "input: profile value of the unit named by the source entity's id (mgcosim's Profile "
        "entities); other sources feed the Unit entities' p_profile_mw",
    ),
    "setpoints_mw": (
        "MW",
        "dict unit -> float",
        "input: controller set-points: turbine output, storage power (charging > 0), wind/PV caps",
    ),
    "setpoints_mvar": (
        "Mvar",
        "dict PV unit -> float, or None",
        "input: PV reactive power (> 0 injected), held within the unit's power factor at the "
        "power it produces; None or a unit left out: at its fixed power factor",
    ),
    "switch_closed_cmd": ("-", "dict IEEE branch (text) -> 0/1, or None", "input: switch commands"),
    "load_served_cmd": (
        "-",
        "dict load -> share in [0, 1], or None",
        "input: load pickup commands",
    ),
    "grid_former_cmd": ("-", "list of names, or None", "input: preferred island grid formers"),
    "faults": (
        "-",
        "list of dicts (name, kind, branch_ieee, repair_end_s)",
        "input: faults in force from now on (an event: the grid steps at once)",
    ),
}
GRID_OUTPUT_ATTRS: AttrDoc = {
    "converged": ("-", "int 0/1", "the AC power flow converged"),
    "vm_pu": ("pu", "dict bus label -> float", "bus voltage magnitude (NaN: de-energised)"),
    "loading_percent": ("%", _BRANCH, "line loading"),
    "p_from_mw": ("MW", _BRANCH, "active power into the line at its from bus"),
    "q_from_mvar": ("Mvar", _BRANCH, "reactive power into the line at its from bus"),
    "switch_closed": ("-", "dict IEEE branch (text) -> 0/1", "switch states"),
    "soc_mwh": ("MWh", "dict storage -> float", "state of charge at this step"),
    "soc_end_mwh": ("MWh", "dict storage -> float", "state of charge at the next step"),
    "mt_p_mw": ("MW", "dict turbine -> float", "applied turbine output"),
    "unit_p_mw": (
        "MW",
        "dict unit -> float",
        "applied power: generation > 0, storage charging > 0, microgrid load demand > 0",
    ),
    "pv_q_mvar": (
        "Mvar",
        "dict PV unit -> float",
        "applied PV reactive power (> 0 injected; a restoration plan's set-point within pf_min)",
    ),
    "exchange_p_mw": ("MW", "dict microgrid -> float", "PCC import of each microgrid"),
    "p_loss_mw": ("MW", "float", "line losses, whole net"),
    "p_loss_ieee_mw": ("MW", "float", "line losses of the 37 IEEE branches (5 are tie lines)"),
    "p_substation_mw": ("MW", "float", "main-grid import at the substation"),
    "q_substation_mvar": ("Mvar", "float", "main-grid reactive import at the substation"),
    "load_demand_mw": ("MW", "float", "total demand before shedding"),
    "load_served_mw": ("MW", "float", "total load served at energised buses"),
    "load_unserved_mw": ("MW", "float", "demand minus served"),
    "load_not_computed_mw": ("MW", "float", "demand of a step whose power flow failed"),
    "load_demand_p_mw": ("MW", _LOAD, "demand per load"),
    "load_served_p_mw": ("MW", _LOAD, "served per load"),
    "tier_demand_mw": ("MW", "dict tier ('1', '2', '3') -> float", "demand per priority tier"),
    "tier_served_mw": ("MW", "dict tier ('1', '2', '3') -> float", "served per priority tier"),
    "active_faults": ("-", "list of fault names", "faults in force"),
    "islands": ("-", "list of grid-former names", "islands energised by a grid former"),
    "islands_collapsed": ("-", "list of grid-former names", "islands that collapsed"),
    "loads_shed_ufls": (
        "-",
        "list of load names",
        "loads an island the controller formed shed this step (under-frequency relays)",
    ),
}
GRID_ATTRS: AttrDoc = GRID_INPUT_ATTRS | GRID_OUTPUT_ATTRS
UNIT_ATTRS: AttrDoc = {
    "p_profile_mw": (
        "MW",
        "float",
        "input (loads, wind, PV): demand or available power, held until the next value; "
        "output: the value in force (NaN for turbines and storage)",
    ),
    "p_mw": (
        "MW",
        "float",
        "applied: generation > 0 (wind, PV, turbine), storage charging > 0, load served > 0",
    ),
    "soc_mwh": ("MWh", "float", "storage state of charge at this step (NaN for other units)"),
}
BUS_ATTRS: AttrDoc = {"vm_pu": ("pu", "float", "voltage magnitude (NaN: de-energised)")}
BRANCH_ATTRS: AttrDoc = {
    "loading_percent": ("%", "float", "line loading"),
    "p_from_mw": ("MW", "float", "active power into the line at its from bus"),
    "q_from_mvar": ("Mvar", "float", "reactive power into the line at its from bus"),
    "switch_closed": ("-", "int 0/1", "switch state (1 for a line without a switch)"),
}
OUTPUTS = names(GRID_OUTPUT_ATTRS)
INPUTS = names(GRID_INPUT_ATTRS)
UNFED_CHOICES = ("refuse", "zero")


def _child(doc: AttrDoc) -> dict:
    """A child model: measurement inputs only, every output persistent."""
    return {
        "public": False,
        "params": [],
        "attrs": names(doc),
        "trigger": [],
        "persistent": names(doc),
    }


META = {
    "api_version": "3.0",
    "type": "hybrid",
    "models": {
        "Grid": {
            "public": True,
            "params": [],
            "attrs": names(GRID_ATTRS),
            "trigger": ["faults"],
            "persistent": [a for a in GRID_ATTRS if a != "faults"],
            "non-persistent": ["faults"],
        },
        "Unit": _child(UNIT_ATTRS),
        "Bus": _child(BUS_ATTRS),
        "Branch": _child(BRANCH_ATTRS),
    },
}


class WiringError(ValueError):
    """The grid's inputs are connected in a way it cannot use (a wrong or missing feed)."""


def profile_units(model: GridModel) -> list[str]:
    """Units that take a profile (loads, wind, PV), not the internal parts of a microgrid."""
    loads = [n for n in model.elements["load"] if n not in model.parts]
    renewables = [
        n for n in model.elements["sgen"] if n not in model.parts and n not in model.mt_p_mw
    ]
    return loads + renewables


def profile_unit_names(scenario) -> list[str]:
    """The profile units of a scenario's grid (what the controller needs forecasts of), in
    the order of :func:`profile_units`, without building the net again."""
    data = scenario.data
    mg_loads = [f"{mg.name}_load" for mg in data.microgrids]
    renewables = [pv.name for pv in data.pv] + [f"{mg.name}_wind" for mg in data.microgrids]
    return [*_dso_load_names(), *mg_loads, *renewables]


@functools.cache
def _dso_load_names() -> tuple[str, ...]:
    """The IEEE 33-bus case's loads (``load_b2`` ...): the same for every scenario."""
    net = build_ieee33(load_network_data())
    return tuple(str(n) for n in net.load.name if str(n).startswith("load_b"))


def all_units(model: GridModel) -> list[str]:
    """Every unit with a Unit entity: profile units, turbines and storage units."""
    turbines = [n for n in model.mt_p_mw if n not in model.parts]
    storage = [n for n in model.elements["storage"] if n not in model.parts]
    return profile_units(model) + turbines + storage


class UnitFeed:
    """Profile values per unit from the mosaik inputs, held until a new value comes.

    Two ways in: a Unit entity's ``p_profile_mw`` (any source), or the Grid entity's ``p_mw``
    keyed by the source entity's id (mgcosim's Profile entities, whose ids are unit names).
    """

    def __init__(self, units: list[str], unfed: str = "refuse") -> None:
        if unfed not in UNFED_CHOICES:
            raise ValueError(f"unfed_units={unfed!r}: use one of {', '.join(UNFED_CHOICES)}")
        self.units = list(units)
        self.unfed = unfed
        self.p_mw: dict[str, float] = {}
        self.checked = False

    def take(self, time_s: int, inputs: dict, grid_eid: str) -> dict[str, float]:
        """Update from one step's inputs; the values of every fed unit."""
        new = self._collect(time_s, inputs, grid_eid)
        self.p_mw.update(new)
        if not self.checked:
            self._check_unfed()
            self.checked = True
        return dict(self.p_mw)

    def _collect(self, time_s: int, inputs: dict, grid_eid: str) -> dict[str, float]:
        known = set(self.units)
        new: dict[str, float] = {}
        sources: dict[str, str] = {}

        def put(unit: str, src: str, value: object) -> None:
            if value is None:
                return
            if unit in sources:
                raise WiringError(
                    f"grid: unit {unit!r} is fed by {sources[unit]!r} and by {src!r} at "
                    f"t = {time_s} s. Fix: connect one source to each unit"
                )
            sources[unit] = src
            new[unit] = _checked_mw(unit, src, value, time_s)

        for src, value in inputs.get(grid_eid, {}).get("p_mw", {}).items():
            unit = unit_of(src)
            if unit not in known:
                raise WiringError(
                    f"grid: input 'p_mw' from {src!r} matches no unit (the Grid entity's p_mw "
                    f"takes the unit name from the source entity's id). Fix: connect the "
                    f"source to the unit's own entity, e.g. world.connect(src, "
                    f"units['load_b2'], ('p_mw', 'p_profile_mw')); units: {', '.join(self.units)}"
                )
            put(unit, src, value)
        _check_input_attrs(inputs, grid_eid)
        for eid, attrs in inputs.items():
            if eid == grid_eid or "p_profile_mw" not in attrs:
                continue
            if eid not in known:
                raise WiringError(
                    f"grid: unit {eid!r} takes no profile (turbines and storage follow the "
                    f"controller's set-points). Fix: feed only {', '.join(self.units)}"
                )
            for src, value in attrs["p_profile_mw"].items():
                put(eid, src, value)
        return new

    def _check_unfed(self) -> None:
        unfed = [u for u in self.units if u not in self.p_mw]
        if not unfed:
            return
        if self.unfed == "zero":
            self.p_mw.update(dict.fromkeys(unfed, 0.0))
            return
        raise WiringError(
            f"grid: no profile input for {len(unfed)} unit(s): {', '.join(unfed)}. Fix: connect "
            f"a source to each unit entity's 'p_profile_mw', or start the grid with "
            f"unfed_units='zero' (unfed units then take 0 MW)"
        )


def _check_input_attrs(inputs: dict, grid_eid: str) -> None:
    """Refuse inputs into output attributes (mosaik's META does not tell them apart)."""
    for eid, attrs in inputs.items():
        allowed = INPUTS if eid == grid_eid else ["p_profile_mw"]
        wrong = sorted(set(attrs) - set(allowed))
        if wrong:
            raise WiringError(
                f"grid: entity {eid!r} got input {', '.join(wrong)}, which is an output. Fix: "
                f"a Unit entity takes p_profile_mw (MW), the Grid entity {', '.join(INPUTS)}; "
                f"Bus and Branch entities take no input"
            )


def _checked_mw(unit: str, src: str, value: object, time_s: int) -> float:
    try:
        p = float(value)
    except (TypeError, ValueError):
        p = math.nan
    if not math.isfinite(p) or p < 0:
        raise WiringError(
            f"grid: unit {unit!r} got {value!r} from {src!r} at t = {time_s} s. "
            f"Fix: give a finite power >= 0 in MW"
        )
    return p


class GridSim(mosaik_api_v3.Simulator):
    """One pandapower grid stepping every physical step (and at fault events)."""

    def __init__(self) -> None:
        super().__init__(META)
        self.model: GridModel | None = None
        self.eid = "grid"
        self.step_s = 0
        self.outputs: dict = {}
        self.feed: UnitFeed | None = None
        self.children: dict[str, tuple[str, str]] = {}  # eid -> (model, element name)

    def init(
        self,
        sid,
        time_resolution=1.0,
        scenario_path: str = "",
        mess_buses=None,
        unfed_units: str = "refuse",
        **_,
    ):
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
        self.feed = UnitFeed(profile_units(self.model), unfed_units)
        return self.meta

    def create(self, num, model, **params):
        if model != "Grid" or num != 1 or self.children:
            raise ValueError(f"GridSim creates exactly one 'Grid' entity, not {num} x {model!r}")
        labels = measure(self.model.net, self.model.data, False, {}, self.model.elements)
        self.children = {u: ("Unit", u) for u in all_units(self.model)}
        self.children |= {f"bus_{b}": ("Bus", b) for b in labels["vm_pu"]}
        self.children |= {f"branch_{b}": ("Branch", b) for b in labels["loading_percent"]}
        takes_profile = set(self.feed.units)
        kids = [
            {"eid": eid, "type": kind, "extra_info": {"takes_profile": eid in takes_profile}}
            for eid, (kind, _) in self.children.items()
        ]
        return [{"eid": self.eid, "type": model, "children": kids}]

    def step(self, time, inputs, max_advance):
        next_regular = (time // self.step_s + 1) * self.step_s
        profile_mw = self.feed.take(time, inputs, self.eid)
        grid_in = grid_inputs(inputs.get(self.eid, {}), self.model, profile_mw)
        self.outputs = self.model.step(time, next_regular - time, grid_in)
        self.outputs["_profile_mw"] = profile_mw
        return next_regular

    def get_data(self, outputs):
        data = {}
        for eid, attrs in outputs.items():
            if eid == self.eid:
                data[eid] = {attr: self.outputs.get(attr) for attr in attrs}
            else:
                kind, name = self.children[eid]
                data[eid] = {attr: self._child_value(kind, name, attr) for attr in attrs}
        return data

    def _child_value(self, kind: str, name: str, attr: str) -> float:
        out = self.outputs
        if kind == "Bus":
            return _num(out["vm_pu"].get(name))
        if kind == "Branch":
            if attr == "switch_closed":
                return int(out["switch_closed"].get(name, 1))
            return _num(out[attr].get(name))
        if attr == "p_profile_mw":
            return _num(out["_profile_mw"].get(name))
        if attr == "soc_mwh":
            return _num(out["soc_mwh"].get(name))
        if name in self.model.elements["load"]:
            return _num(out["load_served_p_mw"].get(name))
        return _num(out["unit_p_mw"].get(name))


def _num(value: object) -> float:
    """A float for a sink (NaN where there is no value)."""
    return math.nan if value is None else float(value)


def unit_of(full_id: str) -> str:
    """Unit name from a mosaik full id ``'Sim-0.MG1_wind'``."""
    return full_id.split(".", 1)[1]


def first(values: dict) -> object:
    """The single value of a ``{src_full_id: value}`` input."""
    return next(iter(values.values())) if values else None


def grid_inputs(attrs: dict, model: GridModel, profile_mw: dict[str, float]) -> GridInputs:
    """Sort mosaik inputs (and the profile values in force) into :class:`GridInputs`."""
    loads = set(model.elements["load"])
    switches = first(attrs.get("switch_closed_cmd", {}))
    faults = first(attrs.get("faults", {}))
    served = first(attrs.get("load_served_cmd", {}))
    formers = first(attrs.get("grid_former_cmd", {}))
    return GridInputs(
        load_p_mw={u: p for u, p in profile_mw.items() if u in loads},
        available_p_mw={u: p for u, p in profile_mw.items() if u not in loads},
        setpoints_mw=dict(first(attrs.get("setpoints_mw", {})) or {}),
        setpoints_mvar=dict(first(attrs.get("setpoints_mvar", {})) or {}),
        switch_closed={int(b): bool(c) for b, c in switches.items()} if switches else None,
        faults=list(faults) if faults is not None else None,
        served_fraction=dict(served) if served is not None else None,
        grid_formers=list(formers) if formers is not None else None,
    )


if __name__ == "__main__":
    mosaik_api_v3.start_simulation(GridSim(), "mgcosim grid simulator")
