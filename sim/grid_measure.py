"""What the grid reports after a power flow: the measured outputs of one step, the load
service by priority tier, and the element index the grid keeps (pure functions of the
pandapower net; :class:`sim.grid.GridModel` calls them)."""

from __future__ import annotations

import math

import pandapower as pp

from mgcosim.networks.ieee33 import SUBSTATION
from mgcosim.networks.params import MG_LOAD_TIER, NetworkData
from mgcosim.sim.grid_internal import InternalMicrogrids


def element_index(net: pp.pandapowerNet) -> dict[str, dict[str, int]]:
    return {
        table: {str(name): int(i) for i, name in net[table]["name"].items()}
        for table in ("load", "sgen", "storage")
    }


def _label_bus(net: pp.pandapowerNet, idx: int) -> str:
    ieee = int(net.bus.at[idx, "ieee"])
    return str(ieee) if ieee > 0 else str(net.bus.at[idx, "name"])


def _label_line(net: pp.pandapowerNet, idx: int) -> str:
    ieee = int(net.line.at[idx, "ieee"])
    return str(ieee) if ieee > 0 else str(net.line.at[idx, "name"])


def measure(
    net: pp.pandapowerNet,
    data: NetworkData,
    converged: bool,
    soc_mwh: dict[str, float],
    elements: dict[str, dict[str, int]],
) -> dict:
    """Outputs of one step (NaN electrical values when not converged)."""
    nan = math.nan
    vm = net.res_bus.vm_pu if converged else None
    res_line = net.res_line if converged else None
    buses = {
        _label_bus(net, i): (float(vm.at[i]) if vm is not None else nan) for i in net.bus.index
    }
    lines = list(net.line.index)
    out = {
        "converged": int(converged),
        "vm_pu": buses,
        "loading_percent": {
            _label_line(net, i): _res(res_line, i, "loading_percent") for i in lines
        },
        "p_from_mw": {_label_line(net, i): _res(res_line, i, "p_from_mw") for i in lines},
        "q_from_mvar": {_label_line(net, i): _res(res_line, i, "q_from_mvar") for i in lines},
        "switch_closed": {
            _label_line(net, int(sw.element)): int(sw.closed)
            for _, sw in net.switch.iterrows()
            if sw.et == "l" and net.line.at[int(sw.element), "ieee"] > 0
        },
        "soc_mwh": dict(soc_mwh),
        "unit_p_mw": _unit_powers(net, elements),
        "pv_q_mvar": {
            pv.name: float(net.sgen.at[elements["sgen"][pv.name], "q_mvar"]) for pv in data.pv
        },
        "exchange_p_mw": {
            mg.name: _res(res_line, elements_line(net, f"{mg.name}_pcc"), "p_from_mw")
            for mg in data.microgrids
        },
        "p_loss_mw": float(res_line.pl_mw.sum()) if converged else nan,
        "p_loss_ieee_mw": float(res_line.pl_mw[net.line.ieee > 0].sum()) if converged else nan,
        "p_substation_mw": _substation(net, "p_mw") if converged else nan,
        "q_substation_mvar": _substation(net, "q_mvar") if converged else nan,
    }
    return out


def _substation(net: pp.pandapowerNet, column: str) -> float:
    """Main-grid import (the substation's ext_grid, not the microgrids' grid formers)."""
    rows = net.ext_grid.index[net.ext_grid.name == SUBSTATION]
    return float(net.res_ext_grid.loc[rows, column].fillna(0.0).sum())


def elements_line(net: pp.pandapowerNet, name: str) -> int:
    return int(net.line.index[net.line.name == name][0])


def _res(table, idx: int, column: str) -> float:
    if table is None:
        return math.nan
    value = table.at[idx, column]
    return float(value) if value is not None else math.nan


def _unit_powers(net: pp.pandapowerNet, elements: dict[str, dict[str, int]]) -> dict[str, float]:
    powers = {name: float(net.sgen.at[i, "p_mw"]) for name, i in elements["sgen"].items()}
    powers |= {name: float(net.storage.at[i, "p_mw"]) for name, i in elements["storage"].items()}
    powers |= {
        name: float(net.load.at[i, "p_mw"])
        for name, i in elements["load"].items()
        if not name.startswith("load_b")
    }
    return powers


def load_tiers(
    net: pp.pandapowerNet, data: NetworkData, internal: InternalMicrogrids | None
) -> dict[str, int]:
    """Priority tier of every load: ``load_b{k}`` from ``load_tiers.csv``, a lumped
    microgrid load ``MG_LOAD_TIER``, an internal microgrid load its bus's tier."""
    tiers = {}
    for name, bus in zip(net.load.name, net.load.bus, strict=True):
        ieee = int(net.bus.at[int(bus), "ieee"])
        tiers[str(name)] = data.tier_of(ieee) if str(name).startswith("load_b") else MG_LOAD_TIER
    for lumped in internal.loads if internal else []:
        tiers |= {part.name: part.tier for part in lumped.parts}
    return tiers


def load_service(
    net: pp.pandapowerNet,
    converged: bool,
    demand_p_mw: dict[str, float],
    elements: dict[str, dict[str, int]],
    tiers: dict[str, int] | None = None,
) -> dict:
    """Demand (before any shedding) and load served at energised buses, in total, per load
    and per priority tier (``tiers``: load -> tier; every load tier 3 when not given).

    Unserved = demand - served: load shed by command (``served_fraction``) and load on dark
    buses alike. When the power flow did not converge nothing is known about the service:
    served and unserved are NaN and the whole demand is ``load_not_computed_mw`` (0 when
    it converged), so demand = served + unserved + not computed always holds.
    """
    in_service = net.load.in_service
    demand = {
        name: float(p) for name, p in demand_p_mw.items() if in_service.at[elements["load"][name]]
    }
    if converged:
        live = net.res_bus.vm_pu.notna() & (net.res_bus.vm_pu > 0)
        served = {
            name: float(net.load.at[idx, "p_mw"]) if live.at[int(net.load.at[idx, "bus"])] else 0.0
            for name in demand
            for idx in [elements["load"][name]]
        }
    else:
        served = dict.fromkeys(demand, math.nan)
    demand_mw, served_mw = sum(demand.values()), sum(served.values())
    tier = {name: (tiers or {}).get(name, 3) for name in demand}
    return {
        "load_demand_mw": demand_mw,
        "load_served_mw": served_mw,
        "load_unserved_mw": demand_mw - served_mw,
        "load_not_computed_mw": 0.0 if converged else demand_mw,
        "load_demand_p_mw": demand,
        "load_served_p_mw": served,
        "tier_demand_mw": tier_totals(demand, tier),
        "tier_served_mw": tier_totals(served, tier),
    }


def tier_totals(p_mw: dict[str, float], tier: dict[str, int]) -> dict[str, float]:
    """Sum of ``p_mw`` per tier, keyed ``"1"``, ``"2"``, ... (text keys survive mosaik's JSON)."""
    out: dict[str, float] = {}
    for name, p in p_mw.items():
        out[str(tier[name])] = out.get(str(tier[name]), 0.0) + p
    return dict(sorted(out.items()))
