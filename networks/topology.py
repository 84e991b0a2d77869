"""IEEE 1-based numbering <-> pandapower 0-based indices, and topology helpers.

Scenario files and reports use the IEEE bus numbers (1..33) and branch numbers
(1..37) of the literature. pandapower's indices stay internal; these functions
are the only place that converts.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx
import pandapower as pp
import pandapower.topology as top


class UnknownElementError(ValueError):
    """An IEEE bus or branch number that the network does not have."""


def bus_index(net: pp.pandapowerNet, bus_ieee: int) -> int:
    """pandapower bus index of IEEE bus ``bus_ieee``."""
    idx = net.bus.index[net.bus["ieee"] == bus_ieee]
    if len(idx) != 1:
        raise UnknownElementError(f"IEEE bus {bus_ieee} does not exist (valid: {ieee_buses(net)})")
    return int(idx[0])


def bus_ieee(net: pp.pandapowerNet, index: int) -> int:
    """IEEE number of pandapower bus ``index`` (0 for buses outside the IEEE numbering)."""
    return int(net.bus.at[index, "ieee"])


def line_index(net: pp.pandapowerNet, branch_ieee: int) -> int:
    """pandapower line index of IEEE branch ``branch_ieee``."""
    idx = net.line.index[net.line["ieee"] == branch_ieee]
    if len(idx) != 1:
        raise UnknownElementError(
            f"IEEE branch {branch_ieee} does not exist (valid: {ieee_branches(net)})"
        )
    return int(idx[0])


def branch_of_bus_pair(net: pp.pandapowerNet, a_ieee: int, b_ieee: int) -> int:
    """IEEE branch number joining IEEE buses ``a_ieee`` and ``b_ieee`` (either direction)."""
    a, b = bus_index(net, a_ieee), bus_index(net, b_ieee)
    lines = net.line[net.line["ieee"] > 0]
    hit = lines[
        ((lines.from_bus == a) & (lines.to_bus == b))
        | ((lines.from_bus == b) & (lines.to_bus == a))
    ]
    if hit.empty:
        raise UnknownElementError(f"no branch joins IEEE buses {a_ieee} and {b_ieee}")
    return int(hit["ieee"].iloc[0])


def ieee_buses(net: pp.pandapowerNet) -> str:
    """Valid IEEE bus range as text, for error messages."""
    nums = sorted(int(x) for x in net.bus["ieee"] if x > 0)
    return f"{nums[0]}-{nums[-1]}"


def ieee_branches(net: pp.pandapowerNet) -> str:
    """Valid IEEE branch range as text, for error messages."""
    nums = sorted(int(x) for x in net.line["ieee"] if x > 0)
    return f"{nums[0]}-{nums[-1]}"


def switch_of_branch(net: pp.pandapowerNet, branch_ieee: int) -> int:
    """Index of the switch that opens IEEE branch ``branch_ieee``."""
    line = line_index(net, branch_ieee)
    sw = net.switch.index[(net.switch.et == "l") & (net.switch.element == line)]
    return int(sw[0])


def energised_buses(net: pp.pandapowerNet) -> set[int]:
    """pandapower bus indices connected (through closed switches, in-service lines) to a source."""
    graph = top.create_nxgraph(net, respect_switches=True, include_out_of_service=False)
    sources: Iterable[int] = list(net.ext_grid.bus[net.ext_grid.in_service])
    live: set[int] = set()
    for s in sources:
        live |= nx.node_connected_component(graph, s)
    return live


def is_radial(net: pp.pandapowerNet) -> bool:
    """True when the energised network (closed switches) is a forest: no closed loop."""
    graph = top.create_nxgraph(net, respect_switches=True, include_out_of_service=False)
    return nx.is_forest(nx.Graph(graph))
