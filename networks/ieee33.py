"""IEEE 33-bus distribution network with wind-storage microgrids, as a pandapower net.

Built from pandapower's own ``case33bw`` (Baran & Wu 1989) so that the base-case
power flow matches the literature (202.68 kW losses, Vmin 0.9131 pu at bus 18).
Every one of the 37 branches carries a line switch; the five tie branches
(IEEE 33-37) are normally open. Each microgrid is a bus behind a short PCC line
with real pandapower elements: micro gas turbine and wind turbine (``sgen``),
storage (``storage``) and its own load (``load``).

Element names are the unit names used across the project:
``load_b{bus}``, ``PV_b{bus}``, ``{MG}_mt``, ``{MG}_wind``, ``{MG}_ess``, ``{MG}_load``,
``{MG}_pcc`` (the PCC line). Each microgrid bus also carries an out-of-service ``ext_grid``
``{MG}_gf``: its grid-forming source, switched in by the grid simulator only when the
microgrid's island has no other source (islanded operation during faults). Mobile storage
units (``data.mess``) sit at their IEEE bus: a ``storage`` named ``MESS_b{bus}`` and an
out-of-service ``ext_grid`` ``MESS_b{bus}_gf``.
"""

from __future__ import annotations

import math

import pandapower as pp
import pandapower.networks as pn

from networks.params import MessUnit, MicrogridParams, NetworkData, PVParams
from networks.topology import bus_index

SUBSTATION = "substation"  # name of the main grid's ext_grid; microgrids add "{MG}_gf"
N_BUS_IEEE = 33
N_BRANCH_IEEE = 37


def q_of(p_mw: float, pf: float) -> float:
    """Reactive power (Mvar, same sign as ``p_mw``) at power factor ``pf``."""
    return p_mw * math.tan(math.acos(pf)) if pf < 1 else 0.0


def build_ieee33(data: NetworkData) -> pp.pandapowerNet:
    """IEEE 33-bus net with switches, DSO PV units and the microgrids of ``data``."""
    net = _base_case33()
    _rate_branches(net, data)
    _add_line_switches(net, data)
    net.ext_grid.loc[:, "vm_pu"] = data.dso.vm_ext_grid_pu
    net.ext_grid.loc[:, "name"] = SUBSTATION
    for pv in data.pv:
        add_pv(net, pv)
    for mg in data.microgrids:
        add_microgrid(net, mg)
    for unit in data.mess:
        add_mess(net, unit)
    return net


def _base_case33() -> pp.pandapowerNet:
    net = pn.case33bw()
    net.bus["ieee"] = net.bus.index + 1
    net.line["ieee"] = net.line.index + 1
    net.line["in_service"] = True  # open/closed state is carried by the switches
    net.load["name"] = [f"load_b{b + 1}" for b in net.load.bus]
    net.load["p_nom_mw"] = net.load.p_mw
    net.load["q_nom_mvar"] = net.load.q_mvar
    return net


def _rate_branches(net: pp.pandapowerNet, data: NetworkData) -> None:
    table = data.branches.set_index("branch_ieee")
    for idx, ieee in net.line["ieee"].items():
        net.line.at[idx, "max_i_ka"] = float(table.at[ieee, "max_i_ka"])
        assert int(table.at[ieee, "from_bus_ieee"]) == net.line.at[idx, "from_bus"] + 1
        assert int(table.at[ieee, "to_bus_ieee"]) == net.line.at[idx, "to_bus"] + 1


def _add_line_switches(net: pp.pandapowerNet, data: NetworkData) -> None:
    ties = set(data.branches.loc[data.branches.is_tie == 1, "branch_ieee"])
    for idx, ieee in net.line["ieee"].items():
        pp.create_switch(
            net,
            bus=int(net.line.at[idx, "from_bus"]),
            element=idx,
            et="l",
            closed=ieee not in ties,
            name=f"sw_{ieee}",
        )


def add_pv(net: pp.pandapowerNet, pv: PVParams) -> None:
    """A DSO photovoltaic unit at its IEEE bus (unity power factor by default)."""
    pp.create_sgen(
        net,
        bus_index(net, pv.bus_ieee),
        p_mw=0.0,
        q_mvar=0.0,
        name=pv.name,
        type="PV",
        max_p_mw=pv.p_rated_mw,
    )


def add_microgrid(net: pp.pandapowerNet, mg: MicrogridParams) -> None:
    """Microgrid bus behind a PCC line, with turbine, wind, storage and load elements."""
    pcc = bus_index(net, mg.bus_ieee)
    vn_kv = float(net.bus.at[pcc, "vn_kv"])
    bus = pp.create_bus(net, vn_kv=vn_kv, name=mg.name, max_vm_pu=1.1, min_vm_pu=0.9)
    net.bus.at[bus, "ieee"] = 0
    line = pp.create_line_from_parameters(
        net,
        pcc,
        bus,
        length_km=1.0,
        r_ohm_per_km=mg.pcc_r_ohm,
        x_ohm_per_km=mg.pcc_x_ohm,
        c_nf_per_km=0.0,
        max_i_ka=mg.pcc_max_i_ka,
        name=f"{mg.name}_pcc",
    )
    net.line.at[line, "ieee"] = 0
    pp.create_switch(net, bus=pcc, element=line, et="l", closed=True, name=f"{mg.name}_pcc_sw")
    pp.create_ext_grid(net, bus, vm_pu=mg.gf_vm_pu, name=f"{mg.name}_gf", in_service=False)
    pp.create_sgen(net, bus, p_mw=0.0, name=f"{mg.name}_mt", type="MT", max_p_mw=mg.mt_p_max_mw)
    pp.create_sgen(
        net, bus, p_mw=0.0, name=f"{mg.name}_wind", type="WP", max_p_mw=mg.wind_p_rated_mw
    )
    pp.create_storage(
        net,
        bus,
        p_mw=0.0,
        max_e_mwh=mg.ess_e_max_mwh,
        name=f"{mg.name}_ess",
        soc_percent=100.0 * mg.ess_e_init_mwh / mg.ess_e_max_mwh if mg.ess_e_max_mwh > 0 else 0.0,
    )
    load = pp.create_load(
        net,
        bus,
        p_mw=mg.load_p_peak_mw,
        q_mvar=q_of(mg.load_p_peak_mw, mg.load_pf),
        name=f"{mg.name}_load",
    )
    net.load.at[load, "p_nom_mw"] = net.load.at[load, "p_mw"]
    net.load.at[load, "q_nom_mvar"] = net.load.at[load, "q_mvar"]


def add_mess(net: pp.pandapowerNet, unit: MessUnit) -> None:
    """A mobile storage unit at its IEEE bus: a ``storage`` element named after the unit and
    an out-of-service grid-forming ``ext_grid`` ``{name}_gf`` (switched in by the grid
    simulator when the unit forms an island)."""
    bus = bus_index(net, unit.bus_ieee)
    pp.create_storage(
        net,
        bus,
        p_mw=0.0,
        max_e_mwh=unit.ess_e_max_mwh,
        name=unit.name,
        soc_percent=100.0 * unit.ess_e_init_mwh / unit.ess_e_max_mwh,
    )
    pp.create_ext_grid(net, bus, vm_pu=unit.gf_vm_pu, name=f"{unit.name}_gf", in_service=False)
