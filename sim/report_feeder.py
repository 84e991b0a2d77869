"""Report section: the voltage profile along the feeder at the worst step (the step with the
lowest IEEE bus voltage), on the path from the substation (or an island's grid former) to
that bus through the lines closed and in service at that step (:mod:`sim.report_network`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandapower.topology as top
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mgcosim.sim.report_base import RunData, esc, html_figure, html_section, new_figure, timestamp
from mgcosim.sim.report_network import (
    bus_label,
    grid_formers,
    net_at,
    run_net,
    step_state,
    substation_bus,
    worst_step,
)


@dataclass
class FeederProfile:
    """Voltages along the path from the source to the lowest-voltage bus at one step."""

    time_s: float
    buses: list[str]  # bus labels from the source to the worst bus
    v_pu: list[float]
    source: str  # "substation" or the island's grid former
    v_min_pu: float
    v_max_pu: float


def feeder_profile(run: RunData) -> FeederProfile | None:
    """The voltage profile along the feeder at the worst step: buses on the path (closed,
    unfaulted lines of that step) from the substation (or the island's grid former) to the
    bus with the lowest voltage."""
    t = worst_step(run)
    if t is None:
        return None
    row = pd.to_numeric(run.bus_vm.loc[t], errors="coerce")
    ieee = row[[c for c in row.index if c.isdigit()]]
    worst = str(ieee.idxmin())
    rn = run_net(run)
    state = step_state(run, t)
    net = net_at(rn, state)
    graph = top.create_nxgraph(net, respect_switches=True)
    by_label = {bus_label(net, i): i for i in net.bus.index}
    if worst not in by_label:
        return None
    target = by_label[worst]
    sources = [("substation", substation_bus(net))] if not state.main_grid_lost else []
    sources += [(n, b) for n, b in grid_formers(net).items() if n in state.islands]
    for name, bus in sources:
        if bus in graph and target in graph and nx.has_path(graph, bus, target):
            path = [bus_label(net, b) for b in nx.shortest_path(graph, bus, target)]
            v = [float(row.get(b, np.nan)) for b in path]
            return FeederProfile(t, path, v, name, rn.v_min_pu, rn.v_max_pu)
    return None


def feeder_figure(run: RunData, profile: FeederProfile) -> Figure:
    fig = new_figure(10, 3.8)
    ax = fig.add_subplot()
    x = np.arange(len(profile.buses))
    ax.axhspan(profile.v_min_pu, profile.v_max_pu, color="#2ca02c", alpha=0.08, linewidth=0)
    for lim in (profile.v_min_pu, profile.v_max_pu):
        ax.axhline(lim, color="#2ca02c", linestyle="--", linewidth=1.0)
    when = timestamp(run, profile.time_s)
    ax.plot(x, profile.v_pu, marker="o", color="#1f77b4")
    ax.set_xticks(x, profile.buses, fontsize=7, rotation=90 if len(x) > 30 else 0)
    ax.set_xlabel(f"bus along the feeder path from the {profile.source} (bus label)")
    ax.set_ylabel("voltage magnitude [pu]")
    low = min(min(v for v in profile.v_pu if math.isfinite(v)), profile.v_min_pu)
    ax.set_ylim(low - 0.01, profile.v_max_pu + 0.01)
    handles = [
        Line2D([], [], marker="o", color="#1f77b4", label=f"AC power flow at {when}"),
        Line2D(
            [],
            [],
            color="#2ca02c",
            linestyle="--",
            label=f"voltage band {profile.v_min_pu:g}–{profile.v_max_pu:g} pu",
        ),
    ]
    ax.legend(handles=handles, loc="lower left", fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def section_feeder_profile(run: RunData) -> str | None:
    """Voltage along the feeder path to the worst bus, at the step of the lowest voltage."""
    profile = feeder_profile(run)
    if profile is None:
        return None
    worst = profile.buses[-1]
    v_low = profile.v_pu[-1]
    body = html_figure(
        feeder_figure(run, profile),
        "feeder voltage profile at the worst step",
        f"Bus voltages along the path from the {esc(profile.source)} to bus {esc(worst)}, "
        f"the lowest voltage of the run ({v_low:.4f} pu at "
        f"{esc(timestamp(run, profile.time_s))}), through the lines in service and closed at "
        "that step. Dashed: the DSO's voltage band.",
        fig_id="fig-feeder-profile",
    )
    return html_section("feeder-profile", "Feeder voltage profile at the worst step", body)
