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

With ``internal`` (:func:`networks.microgrid_internal.load_microgrid_networks`) each
microgrid is its own small network instead (:func:`add_internal_microgrid`): the PCC line
ends at the internal PCC bus (still named ``{MG}``), feeder buses ``{MG}.b{k}``, lines
``{MG}.{line}`` (both ``ieee = 0``), loads ``{MG}_load.b{k}``, units ``{MG}_mt.{unit}``,
``{MG}_wind.{unit}``, ``{MG}_ess.{unit}``. The lumped elements ``{MG}_mt``, ``{MG}_wind``,
``{MG}_ess``, ``{MG}_load`` stay at the PCC bus, out of service: they carry the aggregate
set-points that :mod:`sim.grid` spreads over the internal ones. ``{MG}_gf`` sits at the bus
of the largest grid-forming turbine, and ``net["mg_internal"]`` holds the networks.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping

import pandapower as pp
import pandapower.networks as pn

from mgcosim.networks.microgrid_internal import (
    InternalBus,
    InternalLine,
    InternalUnit,
    MicrogridNetwork,
)
from mgcosim.networks.params import MessUnit, MicrogridParams, NetworkData, PVParams, q_per_p
from mgcosim.networks.topology import bus_index

SUBSTATION = "substation"  # name of the main grid's ext_grid; microgrids add "{MG}_gf"
N_BUS_IEEE = 33
N_BRANCH_IEEE = 37
INTERNAL_KEY = "mg_internal"  # net[INTERNAL_KEY]: the internal networks the net was built with


def q_of(p_mw: float, pf: float) -> float:
    """Reactive power (Mvar, same sign as ``p_mw``) at power factor ``pf``."""
    return p_mw * q_per_p(pf) if pf < 1 else 0.0


def build_ieee33(
    data: NetworkData, internal: Mapping[str, MicrogridNetwork] | None = None
) -> pp.pandapowerNet:
    """IEEE 33-bus net with switches, DSO PV units and the microgrids of ``data``.

    ``internal`` (microgrid name -> its network): build each microgrid as its internal
    network rather than one lumped bus.
    """
    net = _base_case33()
    _rate_branches(net, data)
    _add_line_switches(net, data)
    net.ext_grid.loc[:, "vm_pu"] = data.dso.vm_ext_grid_pu
    net.ext_grid.loc[:, "name"] = SUBSTATION
    for pv in data.pv:
        add_pv(net, pv)
    for mg in data.microgrids:
        if internal is None:
            add_microgrid(net, mg)
        else:
            add_internal_microgrid(net, mg, internal[mg.name])
    for unit in data.mess:
        add_mess(net, unit)
    if internal is not None:
        net[INTERNAL_KEY] = {mg.name: internal[mg.name] for mg in data.microgrids}
    return net


@functools.cache
def _case33bw() -> pp.pandapowerNet:
    """pandapower's case33bw, read once per process (reading it takes seconds)."""
    return pn.case33bw()


def _base_case33() -> pp.pandapowerNet:
    net = copy.deepcopy(_case33bw())
    net.bus["ieee"] = net.bus.index + 1
    net.line["ieee"] = net.line.index + 1
    net.line["in_service"] = True  # open/closed state is carried by the switches
    net.load["name"] = [f"load_b{b + 1}" for b in net.load.bus]
    net.load["p_nom_mw"] = net.load.p_mw
    net.load["q_nom_mvar"] = net.load.q_mvar
    return net


def load_q_per_p(net: pp.pandapowerNet, load_idx: int) -> float:
    """Q/P of a load at its nominal power factor (``p_nom_mw``, ``q_nom_mvar``), which every
    demand value keeps."""
    p_nom, q_nom = net.load.at[load_idx, "p_nom_mw"], net.load.at[load_idx, "q_nom_mvar"]
    return float(q_nom / p_nom) if p_nom > 0 else 0.0


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


def add_internal_microgrid(
    net: pp.pandapowerNet, mg: MicrogridParams, network: MicrogridNetwork
) -> None:
    """Microgrid ``mg`` as its internal network behind the PCC line (lumped units kept idle)."""
    add_microgrid(net, mg)
    for table, kind in (("sgen", "mt"), ("sgen", "wind"), ("storage", "ess"), ("load", "load")):
        net[table].loc[net[table].name == f"{mg.name}_{kind}", "in_service"] = False
    pcc = _bus_named(net, mg.name)
    vn_kv = {b.bus: b.vn_kv for b in network.buses}
    if not math.isclose(vn_kv[network.pcc_bus], float(net.bus.at[pcc, "vn_kv"])):
        raise ValueError(
            f"{mg.name}: internal PCC bus at {vn_kv[network.pcc_bus]} kV, IEEE bus "
            f"{mg.bus_ieee} at {net.bus.at[pcc, 'vn_kv']} kV (no transformer is modelled)"
        )
    net.bus.loc[pcc, ["min_vm_pu", "max_vm_pu"]] = network.pcc_v_band_pu
    bus = {network.pcc_bus: pcc} | {
        b.bus: _internal_bus(net, internal_bus_name(mg.name, b), b)
        for b in network.buses
        if not b.is_pcc
    }
    for line in network.lines:
        _internal_line(net, mg.name, line, bus, vn_kv[line.from_bus])
    for b in network.load_buses:
        load = pp.create_load(
            net,
            bus[b.bus],
            p_mw=b.load_p_mw,
            q_mvar=b.load_q_mvar,
            name=internal_load_name(mg.name, b),
        )
        net.load.at[load, "p_nom_mw"] = b.load_p_mw
        net.load.at[load, "q_nom_mvar"] = b.load_q_mvar
    ess_rating_mw = sum(u.p_max_mw for u in network.units_of("ess"))
    for unit in network.units:
        _internal_unit(net, mg, unit, bus[unit.bus], ess_rating_mw)
    gf = net.ext_grid.index[net.ext_grid.name == f"{mg.name}_gf"][0]
    net.ext_grid.at[gf, "bus"] = bus[grid_former_bus(network)]


def grid_former_bus(network: MicrogridNetwork) -> int:
    """Local bus of the island's voltage source: the largest grid-forming turbine (seed 003),
    else the largest grid-forming unit, else the PCC bus."""
    formers = [u for u in network.units if u.grid_forming]
    turbines = [u for u in formers if u.kind == "mt"] or formers
    if not turbines:
        return network.pcc_bus
    return max(turbines, key=lambda u: u.p_max_mw).bus


def internal_unit_name(mg_name: str, unit: InternalUnit) -> str:
    """``{MG}_{kind}.{unit}``, e.g. ``MG1_mt.G1`` (part of the lumped ``MG1_mt``)."""
    return f"{mg_name}_{unit.kind}.{unit.name}"


def internal_load_name(mg_name: str, bus: InternalBus) -> str:
    """``{MG}_load.b{k}``, e.g. ``MG1_load.b3`` (part of the lumped ``MG1_load``)."""
    return f"{mg_name}_load.b{bus.bus}"


def _bus_named(net: pp.pandapowerNet, name: str) -> int:
    return int(net.bus.index[net.bus.name == name][0])


def internal_bus_name(mg_name: str, bus: InternalBus) -> str:
    """Name of an internal bus in the net: ``{MG}`` for the PCC bus, else ``{MG}.b{k}``."""
    return mg_name if bus.is_pcc else f"{mg_name}.b{bus.bus}"


def _internal_bus(net: pp.pandapowerNet, name: str, bus: InternalBus) -> int:
    idx = pp.create_bus(
        net, vn_kv=bus.vn_kv, name=name, min_vm_pu=bus.v_min_pu, max_vm_pu=bus.v_max_pu
    )
    net.bus.at[idx, "ieee"] = 0
    return idx


def _internal_line(
    net: pp.pandapowerNet, mg_name: str, line: InternalLine, bus: dict[int, int], vn_kv: float
) -> None:
    """One internal line in ohms (the CSV's values: ``r_pu`` x ``vn_kv``^2 at 1 MVA)."""
    z_base_ohm = vn_kv**2
    idx = pp.create_line_from_parameters(
        net,
        bus[line.from_bus],
        bus[line.to_bus],
        length_km=1.0,
        r_ohm_per_km=line.r_pu * z_base_ohm,
        x_ohm_per_km=line.x_pu * z_base_ohm,
        c_nf_per_km=0.0,
        max_i_ka=line.s_max_mva / (math.sqrt(3) * vn_kv),
        name=f"{mg_name}.{line.name}",
    )
    net.line.at[idx, "ieee"] = 0


def _internal_unit(
    net: pp.pandapowerNet, mg: MicrogridParams, u: InternalUnit, bus: int, ess_rating_mw: float
) -> None:
    """A turbine or wind ``sgen``, or a storage unit with its rating share of the energy."""
    name = internal_unit_name(mg.name, u)
    if u.kind == "ess":
        share = u.p_max_mw / ess_rating_mw
        soc = 100.0 * mg.ess_e_init_mwh / mg.ess_e_max_mwh if mg.ess_e_max_mwh > 0 else 0.0
        pp.create_storage(
            net, bus, p_mw=0.0, max_e_mwh=share * mg.ess_e_max_mwh, name=name, soc_percent=soc
        )
        return
    kind = "MT" if u.kind == "mt" else "WP"
    pp.create_sgen(net, bus, p_mw=0.0, name=name, type=kind, max_p_mw=u.p_max_mw)
