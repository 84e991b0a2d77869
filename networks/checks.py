"""Can the network carry a demand at all? One AC power flow with every source at its maximum.

An optimistic bound used before a run (:mod:`scenarios.checks`): the default (radial)
topology, the demand given per load, every microgrid's turbine, storage (discharging) and
wind at full output (its export capped at ``pcc_p_max_mw``, as the controllers cap it, and
at its PCC line's rating), and the PV at its available power. If the power flow does not
converge, or a branch or a bus is far outside its limits, the run's power flows will fail
or be far out of bounds too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandapower as pp

from mgcosim.networks.ieee33 import q_of
from mgcosim.networks.params import MicrogridParams
from mgcosim.networks.powerflow import run_power_flow

LOADING_LIMIT_PERCENT = 150.0  # "far beyond" a branch rating
VM_LIMIT_PU = 0.8  # "far below" the DSO band (0.9 pu): voltage collapse is near


@dataclass(frozen=True)
class FullOutputFlow:
    """Result of :func:`full_output_flow`; branch and bus names as in the net."""

    converged: bool
    loading_max_percent: float = float("nan")
    loading_max_branch: str = ""
    vm_min_pu: float = float("nan")
    vm_min_bus: str = ""

    @property
    def carried(self) -> bool:
        """True when the flow converges with every branch and bus within the limits above."""
        return (
            self.converged
            and self.loading_max_percent <= LOADING_LIMIT_PERCENT
            and self.vm_min_pu >= VM_LIMIT_PU
        )


def full_output_flow(
    net: pp.pandapowerNet,
    microgrids: tuple[MicrogridParams, ...],
    demand_pu: Mapping[str, float],
    pv_pu: Mapping[str, float],
) -> FullOutputFlow:
    """AC power flow of ``net`` (lumped microgrids, changed in place) with each load at
    ``demand_pu`` (load name -> per unit of its nominal power) and microgrids at full output."""
    _set_loads(net, demand_pu)
    for mg in microgrids:
        _set_full_output(net, mg, demand_pu.get(f"{mg.name}_load", 1.0) * mg.load_p_peak_mw)
    sgen = net.sgen
    for name, pu in pv_pu.items():
        sgen.loc[sgen.name == name, "p_mw"] = pu * sgen.loc[sgen.name == name, "max_p_mw"]
    if not run_power_flow(net):
        return FullOutputFlow(converged=False)
    return _result(net)


def _set_loads(net: pp.pandapowerNet, demand_pu: Mapping[str, float]) -> None:
    factor = net.load.name.map(lambda name: demand_pu.get(name, 1.0)).astype(float)
    net.load["p_mw"] = net.load.p_nom_mw * factor
    net.load["q_mvar"] = net.load.q_nom_mvar * factor


def pcc_rating_mva(net: pp.pandapowerNet, mg: MicrogridParams) -> float:
    """Apparent power the microgrid's PCC line carries at nominal voltage."""
    vn_kv = float(net.bus.vn_kv[net.bus.name == mg.name].iloc[0])
    return math.sqrt(3) * vn_kv * mg.pcc_max_i_ka


def full_output_import_mw(mg: MicrogridParams, load_mw: float) -> float:
    """What the microgrid still imports with its turbine, wind and storage at full output."""
    return load_mw - mg.mt_p_max_mw - mg.wind_p_rated_mw - mg.ess_p_dis_max_mw


def _set_full_output(net: pp.pandapowerNet, mg: MicrogridParams, load_mw: float) -> None:
    """Turbine, then wind, then storage discharge, up to the load plus the export cap."""
    export_cap_mw = min(mg.pcc_p_max_mw, pcc_rating_mva(net, mg))
    left_mw = min(load_mw - full_output_import_mw(mg, load_mw), load_mw + export_cap_mw)
    mt_mw = min(mg.mt_p_max_mw, left_mw)
    wind_mw = min(mg.wind_p_rated_mw, left_mw - mt_mw)
    sgen = net.sgen
    sgen.loc[sgen.name == f"{mg.name}_mt", ["p_mw", "q_mvar"]] = (mt_mw, q_of(mt_mw, mg.mt_pf))
    sgen.loc[sgen.name == f"{mg.name}_wind", ["p_mw", "q_mvar"]] = (
        wind_mw,
        q_of(wind_mw, mg.wind_pf),
    )
    ess = net.storage.name == f"{mg.name}_ess"
    net.storage.loc[ess, "p_mw"] = -(left_mw - mt_mw - wind_mw)  # < 0: discharging


def _result(net: pp.pandapowerNet) -> FullOutputFlow:
    loading = net.res_line.loading_percent[net.line.in_service]
    vm = net.res_bus.vm_pu.dropna()
    line, bus = loading.idxmax(), vm.idxmin()
    return FullOutputFlow(
        converged=True,
        loading_max_percent=float(loading.max()),
        loading_max_branch=_line_label(net, line),
        vm_min_pu=float(vm.min()),
        vm_min_bus=_bus_label(net, bus),
    )


def _line_label(net: pp.pandapowerNet, idx: int) -> str:
    ieee = int(net.line.at[idx, "ieee"])
    return f"branch {ieee}" if ieee > 0 else str(net.line.at[idx, "name"])


def _bus_label(net: pp.pandapowerNet, idx: int) -> str:
    ieee = int(net.bus.at[idx, "ieee"])
    return f"bus {ieee}" if ieee > 0 else str(net.bus.at[idx, "name"])
