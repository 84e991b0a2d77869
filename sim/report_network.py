"""The run's network for the report: its pandapower net, the state of one step, and the
network diagram with switch states, faults and islands (pandapower.plotting).

The pandapower net is built as the grid simulator builds it (:mod:`sim.grid_sim`): the run's
scenario file (``manifest.json`` ``scenario_path``) through
:func:`networks.ieee33.build_ieee33`, with the mobile storage the run placed
(``mess_placement.json``). When the scenario file is gone, a pandapower net saved in the run
directory is used, else the built-in network data. The state of one step (switches, faults,
energised buses, islands) comes from the run's tables.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pandapower as pp
import pandapower.plotting as pplot
import pandapower.topology as top
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mgcosim.networks.ieee33 import SUBSTATION, build_ieee33
from mgcosim.networks.params import load_network_data
from mgcosim.sim.report_base import (
    V_MAX_PU,
    V_MIN_PU,
    RunData,
    esc,
    html_figure,
    html_section,
    label_column,
    missing,
    new_figure,
    split_names,
    timestamp,
)

MAIN_GRID = "main grid"
DARK = "de-energised"
ROW_SPACING = 1.6  # between a feeder's row and a lateral's, in bus spacings
ISLAND_COLOURS = ("#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


@dataclass
class RunNet:
    """The run's pandapower net, where it came from, and the DSO's voltage band."""

    net: pp.pandapowerNet
    source: str
    v_min_pu: float = V_MIN_PU
    v_max_pu: float = V_MAX_PU


def run_net(run: RunData) -> RunNet:
    """The pandapower net of the run (built once per report, kept in ``run.cache``)."""
    if "net" not in run.cache:
        run.cache["net"] = _build_net(run)
    return run.cache["net"]


def _build_net(run: RunData) -> RunNet:
    from mgcosim.scenarios.loader import ScenarioError, load_scenario

    path = (run.manifest or {}).get("scenario_path")
    if path and Path(path).is_file():
        try:
            scenario = load_scenario(path)
        except ScenarioError:
            scenario = None
        if scenario is not None:
            buses = _mess_buses(run)
            if buses:
                from mgcosim.sim.mess import with_mess

                scenario = with_mess(scenario, buses)
            net = build_ieee33(scenario.data, scenario.microgrid_networks())
            dso = scenario.data.dso
            return RunNet(net, f"scenario {path}", dso.v_min_pu, dso.v_max_pu)
    saved = _saved_net(run.run_dir)
    if saved is not None:
        return RunNet(pp.from_json(str(saved)), f"net saved with the run ({saved.name})")
    return RunNet(_builtin_net(), "built-in network data (scenario file not found)")


@functools.cache
def _builtin_net() -> pp.pandapowerNet:
    """The net of the built-in network data, built once (never modified: see :func:`net_at`)."""
    return build_ieee33(load_network_data())


def _mess_buses(run: RunData) -> list[int]:
    path = run.run_dir / "mess_placement.json"
    try:
        return [int(b) for b in json.loads(path.read_text(encoding="utf-8")).get("buses", [])]
    except (OSError, ValueError, AttributeError, TypeError):
        return []


def _saved_net(run_dir: Path) -> Path | None:
    """A pandapower JSON net in the run directory (pandapower's own format), if any."""
    for path in sorted(run_dir.glob("*.json")):
        try:
            head = path.read_text(encoding="utf-8")[:2000]
        except (OSError, UnicodeDecodeError):
            continue
        if "pandapowerNet" in head:
            return path
    return None


# ---------------------------------------------------------------------- one step


def bus_label(net: pp.pandapowerNet, idx: int) -> str:
    """IEEE number of a feeder bus, else the bus name (as in the run's tables)."""
    ieee = net.bus.at[idx, "ieee"] if "ieee" in net.bus.columns else 0
    return str(int(ieee)) if pd.notna(ieee) and ieee > 0 else str(net.bus.at[idx, "name"])


def line_label(net: pp.pandapowerNet, idx: int) -> str:
    ieee = net.line.at[idx, "ieee"] if "ieee" in net.line.columns else 0
    return str(int(ieee)) if pd.notna(ieee) and ieee > 0 else str(net.line.at[idx, "name"])


@dataclass
class StepState:
    """The network at one recorded step."""

    time_s: float
    closed: dict[str, bool]  # branch label -> switch closed
    faulted: set[str]  # branch labels out of service by a fault
    main_grid_lost: bool
    energised: set[str]  # bus labels with a power-flow voltage
    islands: list[str]  # grid formers energising an island
    faults: list[str]  # names of the faults in force


def step_state(run: RunData, time_s: float) -> StepState:
    """Switch states, faults, energised buses and islands recorded at ``time_s``."""
    closed: dict[str, bool] = {}
    sw = run.switch_closed
    if sw is not None and time_s in sw.index:
        row = pd.to_numeric(sw.loc[time_s], errors="coerce")
        closed = {str(b): bool(v == 1) for b, v in row.items() if pd.notna(v)}
    names: list[str] = []
    islands: list[str] = []
    if run.steps is not None and time_s in run.steps.index:
        names = split_names(label_column(run.steps, "active_faults").loc[time_s])
        islands = split_names(label_column(run.steps, "islands").loc[time_s])
    by_name = {str(f.get("name")): f for f in _raw_faults(run)}
    faulted, main_lost = set(), False
    for name in names:
        fault = by_name.get(name, {})
        if fault.get("kind", "branch") == "main_grid":
            main_lost = True
        elif fault.get("branch") is not None:
            faulted.add(str(int(fault["branch"])))
    energised: set[str] = set()
    vm = run.bus_vm
    if vm is not None and time_s in vm.index:
        row = pd.to_numeric(vm.loc[time_s], errors="coerce")
        energised = {str(b) for b, v in row.items() if pd.notna(v)}
    return StepState(float(time_s), closed, faulted, main_lost, energised, islands, names)


def _raw_faults(run: RunData) -> list[dict]:
    faults = ((run.manifest or {}).get("scenario") or {}).get("faults") or []
    return [f for f in faults if isinstance(f, dict)]


def net_at(rn: RunNet, state: StepState) -> pp.pandapowerNet:
    """A copy of the run's net with the step's switch states and faults applied."""
    net = copy.deepcopy(rn.net)
    for i, sw in net.switch.iterrows():
        if sw.et == "l":
            label = line_label(net, int(sw.element))
            if label in state.closed:
                net.switch.at[i, "closed"] = state.closed[label]
    for i in net.line.index:
        if line_label(net, i) in state.faulted:
            net.line.at[i, "in_service"] = False
    if state.main_grid_lost:
        net.ext_grid.loc[net.ext_grid.name == SUBSTATION, "in_service"] = False
    return net


def substation_bus(net: pp.pandapowerNet) -> int:
    rows = net.ext_grid.index[net.ext_grid.name == SUBSTATION]
    return int(net.ext_grid.at[rows[0] if len(rows) else net.ext_grid.index[0], "bus"])


def grid_formers(net: pp.pandapowerNet) -> dict[str, int]:
    """Grid-former name (``MG1``, ``MESS_b23``) -> its bus, from the ``{name}_gf`` ext_grids."""
    return {
        str(n).removesuffix("_gf"): int(b)
        for n, b in zip(net.ext_grid.name, net.ext_grid.bus, strict=True)
        if str(n).endswith("_gf")
    }


def bus_groups(net: pp.pandapowerNet, state: StepState) -> dict[int, str]:
    """Each bus's group at the step: main grid, the island of a grid former, or dark."""
    graph = top.create_nxgraph(net, respect_switches=True)
    root = substation_bus(net)
    formers = grid_formers(net)
    groups: dict[int, str] = {}
    for component in nx.connected_components(graph):
        labels = {bus_label(net, b) for b in component}
        if not labels & state.energised:
            group = DARK
        elif root in component and not state.main_grid_lost:
            group = MAIN_GRID
        else:
            inside = [n for n, b in formers.items() if b in component and n in state.islands]
            group = f"island {', '.join(inside)}" if inside else "island"
        groups.update(dict.fromkeys(component, group))
    return groups


# ------------------------------------------------------------------------ layout


def schematic_layout(net: pp.pandapowerNet) -> dict[int, tuple[float, float]]:
    """Bus positions of a one-line diagram: the longest feeder from the substation along
    y = 0, each lateral on a row of its own, single buses behind a line (a microgrid behind
    its PCC) just off their parent. Built on the normal topology (the net as built)."""
    graph = top.create_nxgraph(net, respect_switches=True, include_out_of_service=True)
    root = substation_bus(net)
    tree = nx.bfs_tree(graph, root)
    height: dict[int, int] = {}
    for node in reversed(list(nx.topological_sort(tree))):
        height[node] = 1 + max((height[c] for c in tree.successors(node)), default=-1)
    pos: dict[int, tuple[float, float]] = {}
    rows = iter(r * s for r in range(1, 10_000) for s in (1, -1))

    def place(node: int, x: float, y: float) -> None:
        pos[node] = (x, y)
        children = sorted(tree.successors(node), key=lambda c: -height[c])
        for k, child in enumerate(children):
            if k == 0:
                place(child, x + 1, y)
            elif height[child] == 0:
                pos[child] = (x, y + (0.5 if y > 0 else -0.5))  # away from the feeder
            else:
                place(child, x + 1, ROW_SPACING * next(rows))

    place(root, 0.0, 0.0)
    for node in graph.nodes:  # buses out of the tree (none in the built nets)
        pos.setdefault(node, (0.0, -1.0 - len(pos) * 0.1))
    return pos


def with_geodata(net: pp.pandapowerNet, pos: dict[int, tuple[float, float]]) -> None:
    """Write ``pos`` as pandapower bus geodata (GeoJSON points) for pandapower.plotting."""
    net.bus["geo"] = [
        json.dumps({"type": "Point", "coordinates": list(pos.get(i, (0.0, 0.0)))})
        for i in net.bus.index
    ]
    if "geo" in net.line.columns:
        net.line["geo"] = None


# ----------------------------------------------------------------- network diagram


def diagram_step(run: RunData) -> tuple[float, str] | None:
    """The step the diagram shows: the first with a fault in force, else the worst voltage."""
    steps = run.steps
    if steps is not None and not steps.empty:
        faulted = label_column(steps, "active_faults") != ""
        if faulted.any():
            return float(steps.index[faulted.to_numpy()][0]), "first step with a fault in force"
    worst = worst_step(run)
    if worst is not None:
        return worst, "step with the lowest bus voltage"
    if steps is not None and not steps.empty:
        return float(steps.index[-1]), "last step"
    return None


def network_figure(run: RunData, time_s: float) -> Figure:
    """One-line diagram of the net at ``time_s``: lines closed / open / faulted, buses
    coloured by main grid, island and de-energised, switch states (pandapower.plotting)."""
    rn = run_net(run)
    state = step_state(run, time_s)
    net = net_at(rn, state)
    with_geodata(net, schematic_layout(rn.net))
    groups = bus_groups(net, state)
    fig = new_figure(11, 4.8)
    ax = fig.add_subplot()
    collections = _line_collections(net, state) + _bus_collections(net, groups)
    collections.append(pplot.create_line_switch_collection(net, size=0.12, distance_to_bus=0.25))
    subs = net.ext_grid.index[net.ext_grid.name == SUBSTATION]
    if len(subs):
        collections.append(
            pplot.create_ext_grid_collection(
                net, ext_grids=list(subs), size=0.25, orientation=math.pi * 1.5, zorder=3
            )
        )
    pplot.draw_collections(collections, ax=ax, plot_colorbars=False)
    _label_buses(ax, net)
    _mark_faults(ax, net, state)
    ax.legend(handles=_legend(groups), loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    faults = ", ".join(state.faults) or "none"
    ax.set_title(f"{timestamp(run, time_s)}: faults in force: {faults}", fontsize=10)
    return fig


def _line_collections(net: pp.pandapowerNet, state: StepState) -> list:
    closed_lines = {
        int(sw.element) for _, sw in net.switch.iterrows() if sw.et == "l" and bool(sw.closed)
    }
    switched = {int(sw.element) for _, sw in net.switch.iterrows() if sw.et == "l"}
    faulted = [i for i in net.line.index if line_label(net, i) in state.faulted]
    open_ = [
        i for i in net.line.index if i in switched and i not in closed_lines and i not in faulted
    ]
    normal = [i for i in net.line.index if i not in open_ and i not in faulted]
    out = []
    for lines, style in (
        (normal, {"color": "black", "linewidths": 1.6}),
        (open_, {"color": "grey", "linewidths": 1.0, "linestyles": "dashed"}),
        (faulted, {"color": "#d62728", "linewidths": 2.6}),
    ):
        if lines:
            out.append(pplot.create_line_collection(net, lines, use_bus_geodata=True, **style))
    return out


def _group_colours(groups: dict[int, str]) -> dict[str, str]:
    names = sorted({g for g in groups.values() if g not in (MAIN_GRID, DARK)})
    colours = {MAIN_GRID: "#1f77b4", DARK: "#d9d9d9"}
    colours |= {g: ISLAND_COLOURS[k % len(ISLAND_COLOURS)] for k, g in enumerate(names)}
    return colours


def _bus_collections(net: pp.pandapowerNet, groups: dict[int, str]) -> list:
    colours = _group_colours(groups)
    out = []
    for group, colour in colours.items():
        buses = [b for b, g in groups.items() if g == group]
        if buses:
            out.append(pplot.create_bus_collection(net, buses, size=0.13, color=colour, zorder=4))
    return out


def _label_buses(ax, net: pp.pandapowerNet) -> None:
    """IEEE numbers above the buses; a microgrid's name in bold beside its PCC bus; its
    internal buses (``MG1.b3``) by their short name."""
    for i in net.bus.index:
        x, y = json.loads(net.bus.at[i, "geo"])["coordinates"]
        label = bus_label(net, i)
        bold = not label.isdigit() and "." not in label
        ax.annotate(
            label.rsplit(".", 1)[-1],
            (x, y),
            xytext=(-5, 5) if bold else (0, 6),
            textcoords="offset points",
            ha="right" if bold else "center",
            fontsize=8 if bold else 7,
            fontweight="bold" if bold else "normal",
        )


def _mark_faults(ax, net: pp.pandapowerNet, state: StepState) -> None:
    if state.main_grid_lost:  # the substation's supply is lost
        x, y = json.loads(net.bus.at[substation_bus(net), "geo"])["coordinates"]
        ax.scatter([x - 0.25], [y], marker="X", s=220, color="#d62728", edgecolor="black", zorder=6)
    for i in net.line.index:
        if line_label(net, i) in state.faulted:
            a = json.loads(net.bus.at[int(net.line.at[i, "from_bus"]), "geo"])["coordinates"]
            b = json.loads(net.bus.at[int(net.line.at[i, "to_bus"]), "geo"])["coordinates"]
            ax.scatter(
                [(a[0] + b[0]) / 2],
                [(a[1] + b[1]) / 2],
                marker="X",
                s=140,
                color="#d62728",
                edgecolor="black",
                zorder=5,
            )


def _legend(groups: dict[int, str]) -> list:
    colours = _group_colours(groups)
    present = set(groups.values())
    handles = [
        Line2D([], [], color="black", linewidth=1.6, label="line, switch closed"),
        Line2D([], [], color="grey", linestyle="--", label="line, switch open"),
        Line2D(
            [],
            [],
            color="#d62728",
            linewidth=2.6,
            marker="X",
            markersize=9,
            markeredgecolor="black",
            label="faulted line / main grid lost",
        ),
    ]
    for group, colour in colours.items():
        if group in present:
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    linestyle="",
                    markerfacecolor=colour,
                    markeredgecolor="black",
                    markersize=8,
                    label=f"bus: {group}",
                )
            )
    return handles


def section_network(run: RunData) -> str | None:
    """Network diagram at one step: switch states, faults and islands."""
    if missing(run.switch_closed):
        return None
    chosen = diagram_step(run)
    if chosen is None:
        return None
    time_s, why = chosen
    fig = network_figure(run, time_s)
    rn = run_net(run)
    body = html_figure(
        fig,
        "network diagram with switch states, faults and islands",
        f"The network at {esc(timestamp(run, time_s))} ({esc(why)}), drawn with "
        "pandapower.plotting on a schematic layout (the longest feeder from the substation "
        "left to right, laterals on rows of their own). Lines: black switch closed, dashed "
        "grey switch open, red faulted; switch symbols at the line ends (filled: closed). "
        "Buses coloured by what energises them at that step (AC power flow). "
        f"Net: {esc(rn.source)}.",
        fig_id="fig-network",
    )
    return html_section("network", "Network diagram", body)


# ------------------------------------------------------------- feeder voltage profile


def worst_step(run: RunData) -> float | None:
    """Time of the step with the lowest IEEE bus voltage."""
    vm = run.bus_vm
    if missing(vm):
        return None
    cols = [c for c in vm.columns if c.isdigit()]
    low = vm[cols].apply(pd.to_numeric, errors="coerce").min(axis=1)
    return float(low.idxmin()) if low.notna().any() else None
