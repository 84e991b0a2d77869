"""Microgrids with internal networks in the grid model: lumped values spread over the parts.

The controllers see each microgrid through its PCC only (seed 003): they command the lumped
elements ``{MG}_mt``, ``{MG}_wind``, ``{MG}_ess`` and the served share of ``{MG}_load``,
which :func:`networks.ieee33.build_ieee33` keeps out of service when it builds the internal
networks. Before every power flow :meth:`InternalMicrogrids.spread` hands their values to
the internal elements:

* a unit ``u`` of a lumped turbine, wind farm or storage gets the share
  ``x_u = P_max,u / sum_v P_max,v`` of its P and Q (the power factor is the lumped one);
* the microgrid's demand ``D`` is spread by peak load, ``D_b = D P_peak,b / P_peak``, and
  the served power ``z D`` goes to tier 1 first, then tier 2, then tier 3: tier ``t`` is
  served ``s_t = min(D_t, max(0, z D - sum_{s < t} D_s))``, each of its loads the same
  fraction ``s_t / D_t`` of its demand (the microgrid restores its own loads by priority
  within the exchange it was given, seed 003's lower level).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandapower as pp

from mgcosim.networks.ieee33 import internal_load_name, internal_unit_name, load_q_per_p
from mgcosim.networks.microgrid_internal import MicrogridNetwork

UNIT_TABLES = {"mt": "sgen", "wind": "sgen", "ess": "storage"}


@dataclass(frozen=True)
class Part:
    """An internal element: its row in the element table and its share of the lumped one."""

    name: str
    idx: int
    share: float


@dataclass(frozen=True)
class TierLoad(Part):
    """An internal load; ``share`` is its part of the microgrid's peak load."""

    tier: int = 0


@dataclass(frozen=True)
class Lumped:
    """A lumped element (table, row) and the internal elements it stands for."""

    name: str
    table: str
    idx: int
    parts: tuple[Part, ...]


class InternalMicrogrids:
    """Index of every microgrid's lumped elements and their internal parts in one net."""

    def __init__(self, net: pp.pandapowerNet, networks: Mapping[str, MicrogridNetwork]) -> None:
        self.units = [
            _unit_parts(net, name, network, kind)
            for name, network in networks.items()
            for kind in UNIT_TABLES
        ]
        self.loads = [_load_parts(net, name, network) for name, network in networks.items()]

    @property
    def part_names(self) -> frozenset[str]:
        """Names of the internal elements (the grid model must not command them directly)."""
        return frozenset(p.name for lumped in self.units + self.loads for p in lumped.parts)

    def demands_mw(self, demand_p_mw: Mapping[str, float]) -> dict[str, float]:
        """Demand of each internal load: the microgrid's demand times the load's peak share."""
        return {
            part.name: demand_p_mw[load.name] * part.share
            for load in self.loads
            for part in load.parts
        }

    def spread(self, net: pp.pandapowerNet, demand_p_mw: Mapping[str, float]) -> None:
        """Hand every lumped value to the internal elements (see the module docstring)."""
        for lumped in self.units:
            table = net[lumped.table]
            p_mw, q_mvar = table.at[lumped.idx, "p_mw"], table.at[lumped.idx, "q_mvar"]
            for part in lumped.parts:
                table.at[part.idx, "p_mw"] = part.share * p_mw
                table.at[part.idx, "q_mvar"] = part.share * q_mvar
        for load in self.loads:
            demand = demand_p_mw[load.name]
            served = tier_served_fraction(load.parts, demand, float(net.load.at[load.idx, "p_mw"]))
            for part in load.parts:
                p_mw = served[part.tier] * demand * part.share
                net.load.at[part.idx, "p_mw"] = p_mw
                net.load.at[part.idx, "q_mvar"] = p_mw * load_q_per_p(net, part.idx)


def tier_served_fraction(
    loads: tuple[TierLoad, ...], demand_mw: float, served_mw: float
) -> dict[int, float]:
    """Served fraction of each tier when ``served_mw`` of ``demand_mw`` goes by priority."""
    left_mw = served_mw
    out = {}
    for tier in sorted({load.tier for load in loads}):
        tier_mw = demand_mw * sum(load.share for load in loads if load.tier == tier)
        given_mw = min(tier_mw, max(0.0, left_mw))
        out[tier] = given_mw / tier_mw if tier_mw > 0 else 1.0
        left_mw -= given_mw
    return out


def _unit_parts(
    net: pp.pandapowerNet, mg_name: str, network: MicrogridNetwork, kind: str
) -> Lumped:
    """The lumped ``{MG}_{kind}`` and its units, each with its share of the rating."""
    table = UNIT_TABLES[kind]
    units = network.units_of(kind)
    rating_mw = sum(u.p_max_mw for u in units)
    names = [internal_unit_name(mg_name, u) for u in units]
    parts = tuple(
        Part(name, _row(net, table, name), u.p_max_mw / rating_mw)
        for name, u in zip(names, units, strict=True)
    )
    return Lumped(f"{mg_name}_{kind}", table, _row(net, table, f"{mg_name}_{kind}"), parts)


def _load_parts(net: pp.pandapowerNet, mg_name: str, network: MicrogridNetwork) -> Lumped:
    """The lumped ``{MG}_load`` and its bus loads in tier order, each with its peak share."""
    peak_mw = sum(b.load_p_mw for b in network.load_buses)
    buses = sorted(network.load_buses, key=lambda b: (b.tier, b.bus))
    names = [internal_load_name(mg_name, b) for b in buses]
    parts = tuple(
        TierLoad(name, _row(net, "load", name), b.load_p_mw / peak_mw, b.tier)
        for name, b in zip(names, buses, strict=True)
    )
    return Lumped(f"{mg_name}_load", "load", _row(net, "load", f"{mg_name}_load"), parts)


def _row(net: pp.pandapowerNet, table: str, name: str) -> int:
    rows = net[table].index[net[table].name == name]
    if len(rows) != 1:
        raise KeyError(f"{table} {name!r}: {len(rows)} elements in the net (expected one)")
    return int(rows[0])
