"""The restoration's data: an event's inputs, the plan it yields, and the sub-networks.

:class:`RestorationInputs` is what :func:`controllers.restoration.build_restoration_model`
takes (checked by :func:`validate_inputs`), :class:`RestorationResult` what it returns;
:func:`subnetworks` and :func:`radial_problem` read the network's graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import networkx as nx
import numpy as np

from mgcosim.controllers.dso import DSOData, unknown_branches
from mgcosim.networks.params import MG_LOAD_TIER, MicrogridParams, NetworkData


class RestorationInputError(ValueError):
    """Restoration inputs that do not fit the network or the horizon."""


@dataclass(frozen=True)
class MicrogridRestorationInputs:
    """One microgrid's data for a restoration horizon (arrays per period, MW)."""

    params: MicrogridParams
    load_mw: np.ndarray
    wind_mw: np.ndarray  # available wind power
    soc_mwh: float  # storage energy at the horizon start
    mt_prev_mw: float | None = None  # turbine output before the horizon (ramp from it)
    load_tier: int = MG_LOAD_TIER
    q_max_mvar: float | None = None  # reactive exchange limit (None: the PCC limit)


@dataclass(frozen=True)
class BoundaryPort:
    """Where a sub-network's model meets a neighbour across a boundary branch.

    Power ``port_p`` flows from the exporting side (the normal sub-network, which holds the
    substation) to the importing side. Exporting model: a withdrawal at its own boundary
    ``bus``, limited by a local copy of the branch's switch state. Importing model: ``bus``
    is the neighbour's end of the branch, a *ghost* bus that is a source whenever energised
    (the neighbour feeds it); the branch itself, with its switch, belongs to this model.
    """

    branch: int  # IEEE branch joining the two sub-networks
    bus: int  # IEEE bus (exporter's end of the branch) where the power crosses
    imports: bool
    s_max_pu: float  # the branch's flow limit


@dataclass(frozen=True)
class RestorationInputs:
    """One restoration event and horizon."""

    n_periods: int
    faulted: frozenset[int]  # IEEE branch numbers, forced open
    main_grid_available: bool
    initial_closed: dict[int, bool]  # IEEE branch -> closed before the event
    demand_mw: dict[int, np.ndarray]  # DSO demand per IEEE bus per period
    pv_mw: dict[str, np.ndarray]  # available PV per unit per period
    microgrids: dict[str, MicrogridRestorationInputs]
    dt_h: float = 0.25
    value_cny_per_weighted_mwh: float = 1000.0
    curtail_penalty_cny_per_mwh: float = 10.0
    switch_budget: int | None = None  # total switching actions over the horizon
    forced_open: frozenset[int] = frozenset()  # further branches held open (references)
    reserve_frac: float = 0.05  # grid-former headroom per MW exported into its island
    v_margin_pu: float = 0.002  # model voltage floor above v_min (measured model error 5e-4)
    ports: tuple[BoundaryPort, ...] = ()  # sub-network models only (restoration ADMM)
    # Period lengths (h), when they differ: e.g. 15-min periods for the first hour, then
    # hourly look-ahead periods (empty: every period lasts dt_h).
    period_h: tuple[float, ...] = ()
    # Periods with integer decisions (switches, energisation, grid formers, pickup, storage
    # mode); later periods are their linear relaxation, a look-ahead for energy (None: all).
    integer_periods: int | None = None

    @property
    def durations_h(self) -> tuple[float, ...]:
        """The length of each period (h)."""
        return tuple(self.period_h) if self.period_h else (self.dt_h,) * self.n_periods


def in_periods(
    inp: RestorationInputs, steps: Sequence[int], integer_periods: int | None
) -> RestorationInputs:
    """``inp`` (one period per restoration step of ``dt_h``) on two time scales: period k
    lasts ``steps[k]`` steps and holds their mean forecasts; the first ``integer_periods``
    periods keep their integer decisions (None or all periods: every one)."""
    if sum(steps) != inp.n_periods or min(steps) < 1:
        raise ValueError(f"steps {list(steps)} do not split {inp.n_periods} periods")
    ends = np.cumsum(steps)

    def mean(values) -> np.ndarray:
        v = np.asarray(values, dtype=float)
        return np.array([v[e - k : e].mean() for k, e in zip(steps, ends, strict=True)])

    mgs = {
        g: replace(mg, load_mw=mean(mg.load_mw), wind_mw=mean(mg.wind_mw))
        for g, mg in inp.microgrids.items()
    }
    n = len(steps)
    relaxed_after = integer_periods is not None and integer_periods < n
    return replace(
        inp,
        n_periods=n,
        demand_mw={b: mean(v) for b, v in inp.demand_mw.items()},
        pv_mw={name: mean(v) for name, v in inp.pv_mw.items()},
        microgrids=mgs,
        period_h=() if set(steps) == {1} else tuple(k * inp.dt_h for k in steps),
        integer_periods=integer_periods if relaxed_after else None,
    )


@dataclass(frozen=True)
class RestorationPeriod:
    """What the restoration plan does in one period."""

    closed_branches: frozenset[int]
    live_branches: frozenset[int]  # closed and energised
    energised_buses: frozenset[int]
    source_buses: frozenset[int]  # substation bus and grid-forming microgrid buses
    grid_formers: frozenset[str]  # microgrids forming an island
    vm_pu: dict[int, float]  # model voltage magnitude of the energised buses
    p_loss_mw: float  # estimated losses on the IEEE branches (sum of r ell)
    picked_up_buses: frozenset[int]
    restored_mw_by_tier: dict[int, float]  # DSO loads
    unserved_mw_by_tier: dict[int, float]
    mg_restored_mw: dict[str, float]
    mg_unserved_mw: dict[str, float]
    substation_p_mw: float
    mg_exchange_mw: dict[str, float]  # > 0: the microgrid imports
    storage_p_mw: dict[str, float]  # > 0: charging (pandapower convention)
    soc_mwh: dict[str, float]  # at the period end
    mt_p_mw: dict[str, float]
    wind_curtailed_mw: dict[str, float]
    pv_curtailed_mw: dict[str, float]
    switched_closed: frozenset[int]  # actions at the start of the period
    switched_open: frozenset[int]
    pv_q_mvar: dict[str, float] = field(default_factory=dict)  # > 0 injected
    mg_exchange_mvar: dict[str, float] = field(default_factory=dict)  # > 0: the microgrid imports


@dataclass(frozen=True)
class RestorationResult:
    status: str  # "optimal" (within the gap) or "node_limit" (the incumbent at the limit)
    objective_cny: float  # cost minimised (negated restored value + switching + curtailment)
    best_bound_cny: float
    mip_gap: float
    solve_time_s: float
    restored_value_cny: float
    switch_actions: int
    periods: tuple[RestorationPeriod, ...] = field(default_factory=tuple)
    mip_nodes: int = 0  # branch-and-bound nodes (the deterministic measure of the work)


def nominal_inputs(
    dd: DSOData,
    data: NetworkData,
    *,
    n_periods: int,
    faulted: set[int] | frozenset[int],
    main_grid_available: bool,
    load_pu: float = 1.0,
    wind_pu: float = 0.5,
    pv_pu: float = 0.0,
    dt_h: float = 0.25,
    initial_closed: dict[int, bool] | None = None,
    microgrids: tuple[MicrogridParams, ...] | None = None,
) -> RestorationInputs:
    """Flat profiles from nominal values: a convenient event for tests and examples."""
    flat = np.ones(n_periods)
    mgs = microgrids if microgrids is not None else data.microgrids
    return RestorationInputs(
        n_periods=n_periods,
        faulted=frozenset(faulted),
        main_grid_available=main_grid_available,
        initial_closed=initial_closed or {b.ieee: not b.is_tie for b in dd.branches},
        demand_mw={bus: p * load_pu * flat for bus, p in dd.load_p_nom_mw.items()},
        pv_mw={pv.name: pv.p_rated_mw * pv_pu * flat for pv in data.pv},
        microgrids={
            mg.name: MicrogridRestorationInputs(
                params=mg,
                load_mw=mg.load_p_peak_mw * load_pu * flat,
                wind_mw=mg.wind_p_rated_mw * wind_pu * flat,
                soc_mwh=mg.ess_e_init_mwh,
            )
            for mg in mgs
        },
        dt_h=dt_h,
    )


def validate_inputs(dd: DSOData, inp: RestorationInputs) -> None:
    """Raise :class:`RestorationInputError` on the first input that does not fit."""
    if not 0 <= inp.v_margin_pu < 0.1:
        raise RestorationInputError(f"v_margin_pu {inp.v_margin_pu}: need 0 <= margin < 0.1")
    if not inp.reserve_frac >= 0:
        raise RestorationInputError(f"reserve_frac {inp.reserve_frac}: need a value >= 0")
    if inp.n_periods < 1 or inp.dt_h <= 0:
        raise RestorationInputError(
            f"n_periods {inp.n_periods} and dt_h {inp.dt_h}: need n_periods >= 1, dt_h > 0"
        )
    if inp.period_h and (
        len(inp.period_h) != inp.n_periods or not all(h > 0 for h in inp.period_h)
    ):
        raise RestorationInputError(
            f"period_h {inp.period_h}: need {inp.n_periods} period lengths, each > 0"
        )
    if inp.integer_periods is not None and inp.integer_periods < 1:
        raise RestorationInputError(
            f"integer_periods {inp.integer_periods}: need at least 1 (None: every period)"
        )
    for name, numbers in (
        ("faulted", inp.faulted),
        ("forced_open", inp.forced_open),
        ("initial_closed", inp.initial_closed),
    ):
        if unknown := unknown_branches(dd, numbers):
            raise RestorationInputError(f"{name}: unknown IEEE branches {unknown}")
    if unknown_mg := sorted(set(inp.microgrids) - set(dd.mg_bus)):
        raise RestorationInputError(f"microgrids: unknown {unknown_mg} (known {sorted(dd.mg_bus)})")
    series = [(f"demand_mw[{b}]", v) for b, v in inp.demand_mw.items()]
    series += [(f"pv_mw[{p}]", v) for p, v in inp.pv_mw.items()]
    for name, mg in inp.microgrids.items():
        series += [(f"{name}.load_mw", mg.load_mw), (f"{name}.wind_mw", mg.wind_mw)]
    for name, values in series:
        if len(values) < inp.n_periods:
            raise RestorationInputError(f"{name}: {len(values)} values for {inp.n_periods} periods")
        if np.any(np.asarray(values, float) < 0):
            raise RestorationInputError(f"{name}: negative values")


# --- the network's graph ------------------------------------------------------------------
def subnetworks(
    dd: DSOData,
    faulted: set[int] | frozenset[int],
    initial_closed: dict[int, bool],
    main_grid_available: bool,
) -> list[set[int]]:
    """Connected components of the initial topology without the faulted branches.

    The normal sub-network (holding the substation bus) comes first when the main grid is
    available; the others (cut off by the fault) follow, largest first.
    """
    graph = nx.Graph()
    graph.add_nodes_from(dd.buses)
    graph.add_edges_from(
        (b.from_bus, b.to_bus)
        for b in dd.branches
        if initial_closed.get(b.ieee, False) and b.ieee not in faulted
    )
    parts = sorted(
        (set(c) for c in nx.connected_components(graph)), key=lambda c: (-len(c), min(c))
    )
    if main_grid_available:
        parts.sort(key=lambda c: dd.root not in c)
    return parts


def boundary_branches(dd: DSOData, parts: list[set[int]]) -> frozenset[int]:
    """Branches (tie or sectional) joining two different sub-networks."""
    part_of = {bus: k for k, part in enumerate(parts) for bus in part}
    return frozenset(b.ieee for b in dd.branches if part_of[b.from_bus] != part_of[b.to_bus])


def radial_problem(dd: DSOData, period: RestorationPeriod, faulted: frozenset[int]) -> str:
    """Why a period's configuration is not radial, or "" when it is: every energised
    component (closed branches between energised buses) a tree holding exactly one source,
    no closed branch joining an energised and a dead bus, no faulted branch closed."""
    energised, closed = period.energised_buses, period.closed_branches
    if closed & faulted:
        return f"faulted branches {sorted(closed & faulted)} closed"
    graph = nx.MultiGraph()
    graph.add_nodes_from(energised)
    for b in dd.branches:
        if b.ieee not in closed:
            continue
        ends = (b.from_bus in energised) + (b.to_bus in energised)
        if ends == 1:
            return f"closed branch {b.ieee} joins an energised and a dead bus"
        if ends == 2:
            graph.add_edge(b.from_bus, b.to_bus)
    for comp in nx.connected_components(graph):
        if not nx.is_tree(graph.subgraph(comp)):
            return f"loop among buses {sorted(comp)}"
        n_src = len(comp & period.source_buses)
        if n_src != 1:
            return f"{n_src} sources for buses {sorted(comp)}"
    return ""
