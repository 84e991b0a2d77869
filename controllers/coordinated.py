"""Coordinated restoration of the DSO network with microgrids by projection (seed 003).

Strategies (models in :mod:`controllers.coordinated_model`): (a) ``no_sharing``: P_m = Q_m
= 0, the DSO restores from its own sources, each microgrid its own loads; (b) ``central``:
one MILP with every microgrid's full internal model; (c) ``projection``: each microgrid
shares a :class:`VirtualNodeOffer`; the upper level decides topology, DSO loads and
(P_m, Q_m), then each lower level maximises its own load at the fixed (P_m, Q_m).

With theta = 1, (c) equals (b) whenever the binding internal constraints depend on (P, Q)
alone (as in ``networks/data/mg_internal_*.csv``; the tests check it), up to the hull's
``threshold_mw``. The realised plan of (c) is always feasible for (b); where the internal
network binds on the tier mix, :attr:`StrategyResult.mg_promised_weighted_mw` shows what was
promised.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyomo.environ as pyo

from mgcosim.controllers.coordinated_model import (
    DSOEvent,
    DSOGenerator,
    build_central_model,
    build_lower_model,
    build_upper_model,
    build_virtual_node_model,
)
from mgcosim.controllers.dso import default_topology, dso_data, unknown_branches
from mgcosim.controllers.projection import Projection, project_microgrid
from mgcosim.controllers.projection_data import (
    MicrogridConditions,
    VirtualNodeOffer,
    window_conditions,
)
from mgcosim.controllers.solve import MipLimits, persistent_highs, solve_optimal
from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.networks.microgrid_internal import TIERS, MicrogridNetwork, load_microgrid_networks
from mgcosim.networks.params import (
    AT_LEAST_ZERO,
    DATA_DIR,
    NetworkData,
    ParameterError,
    checked_records,
    load_network_data,
)

DSO_DG_FILE = "dso_black_start_generators.csv"
MIP_REL_GAP = 1e-9
MIP_ABS_GAP = 1e-7
NODE_LIMIT = 20_000  # branch-and-bound nodes per MILP (deterministic); beyond it: an error
NO_PREFERENCE = {1: 1.0, 2: 1.0, 3: 1.0}
# Default preference of every microgrid (the seed does not give values): its own tier-1
# and tier-2 loads from its own sources are worth 1.5 x those elsewhere; tier 3 no more.
DEFAULT_PREFERENCE = {1: 1.5, 2: 1.5, 3: 1.0}


# --- data ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CoordinationCase:
    """An event with its microgrids (their internal data stay on the microgrid side)."""

    name: str
    hour: int
    event: DSOEvent
    microgrids: dict[str, MicrogridNetwork]
    conditions: dict[str, MicrogridConditions]


def load_dso_generators(path: Path = DATA_DIR / DSO_DG_FILE) -> tuple[DSOGenerator, ...]:
    """The DSO's dispatchable units of the seed 003 case (checked)."""
    checks = {
        "bus_ieee": (lambda v: 1 <= int(v) <= 33, "use an IEEE bus 1..33"),
        "p_max_mw": AT_LEAST_ZERO,
        "q_max_mvar": AT_LEAST_ZERO,
    }

    def error(row, column, message, fix):
        return ParameterError(
            f"{path.name} row {row.name + 2} ({row['name']}) {column}", message, fix
        )

    return checked_records(pd.read_csv(path), DSOGenerator, checks, error)


def main_grid_loss_case(
    data: NetworkData | None = None,
    *,
    hour: int = 18,
    window_h: float = 2.0,
    faulted: tuple[int, ...] = (12, 22),
    data_dir: Path = DATA_DIR,
) -> CoordinationCase:
    """The seed 003 case: IEEE 33 with MG1/MG2/MG3 at buses 2/11/27, the main grid lost,
    branches 12 (12-13) and 22 (3-23, the reading of the seed's "22-23") damaged; one window
    of ``window_h`` hours at ``hour`` of the built-in profiles (18 h: the DSO's peak load);
    storage at its initial SOC; the DSO's black-start generators; tier weights 100/10/0.2.
    """
    data = data or load_network_data(data_dir)
    dd = dso_data(build_ieee33(data), data)
    profile = pd.read_csv(data_dir / "profiles_default.csv").set_index("hour")
    if hour not in profile.index:
        raise ValueError(f"hour {hour}: use an hour of the profile, 0..23")
    load_pu, wind_pu, pv_pu = (float(profile.at[hour, c]) for c in ("load_pu", "wind_pu", "pv_pu"))
    if unknown := unknown_branches(dd, faulted):
        raise ValueError(f"faulted: unknown IEEE branches {unknown}")
    event = DSOEvent(
        dso=dd,
        faulted=frozenset(faulted),
        main_grid_available=False,
        initial_closed=default_topology(dd),
        demand_mw={b: p * load_pu for b, p in dd.load_p_nom_mw.items()},
        demand_mvar={b: q * load_pu for b, q in dd.load_q_nom_mvar.items()},
        pv_mw={pv.name: pv.p_rated_mw * pv_pu for pv in data.pv},
        pv_pf_min={pv.name: pv.pf_min for pv in data.pv},
        generators=load_dso_generators(data_dir / DSO_DG_FILE),
        tier={b: data.tier_of(b) for b in dd.buses},
        tier_weight={t: data.tier_weight(t) for t in TIERS},
        window_h=window_h,
    )
    nets = load_microgrid_networks(data, data_dir)
    conditions = {
        g: window_conditions(net, window_h=window_h, load_pu=load_pu, wind_pu=wind_pu)
        for g, net in nets.items()
    }
    return CoordinationCase("ieee33_main_grid_loss", hour, event, nets, conditions)


def virtual_node_value(
    offer: VirtualNodeOffer, tier_weight: Mapping[int, float], p_mw: float, q_mvar: float
) -> float:
    """The virtual node's best value at (P, Q) (weighted MW, with the preferences)."""
    m = build_virtual_node_model(offer, tier_weight, p_mw, q_mvar)
    solve_optimal(m, persistent_highs(), f"{offer.name} virtual node")
    return pyo.value(m.mg_value)


# --- results --------------------------------------------------------------------------------
@dataclass(frozen=True)
class StrategyResult:
    """One strategy's restoration of the event (MW over the window; MWh = MW x window_h)."""

    strategy: str
    window_h: float
    dso_restored_mw: dict[int, float]  # per tier
    dso_demand_mw: dict[int, float]
    mg_restored_mw: dict[str, dict[int, float]]  # per microgrid, per tier
    mg_demand_mw: dict[str, dict[int, float]]
    tie_p_mw: dict[str, float]  # > 0: the microgrid imports
    tie_q_mvar: dict[str, float]
    tier1_buses: tuple[int, ...]  # DSO tier-1 buses
    tier1_served: tuple[int, ...]
    weighted_mw: float  # true tier weights, DSO + microgrids
    objective: float  # the model's own (preferences, switching penalty)
    closed_ties: tuple[int, ...]
    energised_buses: tuple[int, ...]
    live_branches: tuple[int, ...]  # closed and energised
    switch_actions: int
    island_sources: tuple[str, ...]  # grid-forming sources in use
    dg_p_mw: dict[str, float]
    solve_time_s: dict[str, float]
    mg_promised_weighted_mw: dict[str, float] = field(default_factory=dict)  # (c) only

    def restored_mw_by_tier(self) -> dict[int, float]:
        """DSO plus microgrid loads, per tier."""
        return {
            t: self.dso_restored_mw[t] + sum(r[t] for r in self.mg_restored_mw.values())
            for t in TIERS
        }

    def mg_weighted_mw(self, weights: Mapping[int, float]) -> dict[str, float]:
        return {g: sum(weights[t] * r[t] for t in TIERS) for g, r in self.mg_restored_mw.items()}


def _tier_sum(ev: DSOEvent, buses) -> dict[int, float]:
    out = dict.fromkeys(TIERS, 0.0)
    for b in buses:
        out[ev.tier[b]] += ev.demand_mw[b]
    return out


def _timed(fn, *args) -> tuple[object, float]:
    """``fn(*args)`` and its wall time (s)."""
    start = time.perf_counter()
    return fn(*args), time.perf_counter() - start


def solve_milp(model: pyo.ConcreteModel, what: str, node_limit: int = NODE_LIMIT) -> float:
    """Solve to a proven optimum (tight gaps) and return the wall time; a solve that stops
    at ``node_limit`` raises :class:`OptimisationError` (no unproven plan is used)."""
    limits = MipLimits(MIP_REL_GAP, node_limit, MIP_ABS_GAP)
    return _timed(solve_optimal, model, persistent_highs(), what, limits)[1]


def solve_lower(
    net: MicrogridNetwork, cond: MicrogridConditions, p_mw: float, q_mvar: float
) -> tuple[dict[int, float], float]:
    """The lower level: restored MW per tier at the command, and the solve time."""
    m = build_lower_model(net, cond, p_mw, q_mvar)
    seconds = _timed(solve_optimal, m, persistent_highs(), f"{net.name} lower level")[1]
    return {t: pyo.value(m.served_mw[t]) for t in TIERS}, seconds


def _result(
    case: CoordinationCase,
    strategy: str,
    m: pyo.ConcreteModel,
    mg_restored: dict[str, dict[int, float]],
    tie: dict[str, tuple[float, float]],
    times: dict[str, float],
) -> StrategyResult:
    """Read the DSO part of a solved model and assemble the result."""
    ev = case.event
    w = ev.tier_weight
    ties = {b.ieee for b in ev.dso.branches if b.is_tie}
    picked = [b for b in m.D if pyo.value(m.x[b]) > 0.5]
    dso_restored = _tier_sum(ev, picked)
    promised = {g: pyo.value(m.mg_promised[g]) for g in m.M} if hasattr(m, "mg_promised") else {}
    return StrategyResult(
        strategy=strategy,
        window_h=ev.window_h,
        dso_restored_mw=dso_restored,
        dso_demand_mw=_tier_sum(ev, list(m.D)),
        mg_restored_mw=mg_restored,
        mg_demand_mw={
            g: {t: mw * case.conditions[g].load_pu for t, mw in n.load_mw_by_tier().items()}
            for g, n in case.microgrids.items()
        },
        tie_p_mw={g: tie[g][0] for g in case.microgrids},
        tie_q_mvar={g: tie[g][1] for g in case.microgrids},
        tier1_buses=ev.tier1_buses,
        tier1_served=tuple(b for b in ev.tier1_buses if b in picked),
        weighted_mw=sum(w[t] * dso_restored[t] for t in TIERS)
        + sum(w[t] * r[t] for r in mg_restored.values() for t in TIERS),
        objective=-pyo.value(m.obj),
        closed_ties=tuple(sorted(ln for ln in ties if pyo.value(m.alpha[ln]) > 0.5)),
        energised_buses=tuple(b for b in m.B if pyo.value(m.energised[b]) > 0.5),
        live_branches=tuple(ln for ln in m.L if pyo.value(m.live[ln]) > 0.5),
        switch_actions=round(pyo.value(m.switch_actions)),
        island_sources=tuple(s for s in m.S if pyo.value(m.sigma[s]) > 0.5),
        dg_p_mw={g: pyo.value(m.dg_p[g]) for g in m.G},
        solve_time_s={**times, "total": sum(times.values())},
        mg_promised_weighted_mw=promised,
    )


def _tie_points(m: pyo.Block) -> dict[str, tuple[float, float]]:
    return {g: (pyo.value(m.tie_p[g]), pyo.value(m.tie_q[g])) for g in m.M}


def _upper_then_lower(case, strategy, what, offers, node_limit, times) -> StrategyResult:
    """Solve the upper level on ``offers`` (none: the microgrids stay at (0, 0)), then each
    lower level at its tie-line point; ``times`` gains build, upper and lower."""
    m, times["build"] = _timed(build_upper_model, case.event, offers)
    times["upper"] = solve_milp(m, what, node_limit)
    tie = _tie_points(m) if offers else dict.fromkeys(case.microgrids, (0.0, 0.0))
    solved = {g: solve_lower(n, case.conditions[g], *tie[g]) for g, n in case.microgrids.items()}
    times["lower"] = sum(s for _, s in solved.values())
    return _result(case, strategy, m, {g: r for g, (r, _) in solved.items()}, tie, times)


# --- the three strategies ------------------------------------------------------------------
def solve_no_sharing(case: CoordinationCase, node_limit: int = NODE_LIMIT) -> StrategyResult:
    """(a) Microgrids islanded at (0, 0); the DSO restores from its own sources."""
    return _upper_then_lower(case, "no_sharing", "no-sharing DSO restoration", {}, node_limit, {})


def solve_central(case: CoordinationCase, node_limit: int = NODE_LIMIT) -> StrategyResult:
    """(b) One MILP over the DSO network and the microgrids' internal networks."""
    m, build_s = _timed(build_central_model, case.event, case.microgrids, case.conditions)
    upper_s = solve_milp(m, "central restoration", node_limit)
    restored = {g: {t: pyo.value(m.mg[g].served_mw[t]) for t in TIERS} for g in m.M}
    times = {"build": build_s, "upper": upper_s}
    return _result(case, "central", m, restored, _tie_points(m), times)


def project_all(
    case: CoordinationCase, preference: Mapping[str, dict[int, float]], threshold_mw: float
) -> dict[str, Projection]:
    """Each microgrid's projection and offer (runs on the microgrid side)."""
    return {
        g: project_microgrid(net, case.conditions[g], dict(preference[g]), threshold_mw)
        for g, net in case.microgrids.items()
    }


def uniform_preference(
    case: CoordinationCase, preference: dict[int, float]
) -> dict[str, dict[int, float]]:
    """The same preference coefficients for every microgrid."""
    return {g: dict(preference) for g in case.microgrids}


def solve_projection(
    case: CoordinationCase,
    preference: Mapping[str, dict[int, float]] | None = None,
    threshold_mw: float = 1e-3,
    node_limit: int = NODE_LIMIT,
    projections: Mapping[str, Projection] | None = None,
) -> StrategyResult:
    """(c) Projection, upper level on the offers, lower levels at the tie-line commands.

    ``preference`` per microgrid (default :data:`DEFAULT_PREFERENCE` for all);
    ``projections`` may be reused (the polygons do not depend on the preferences); the
    time reported for the projections is the sum of their own times.
    """
    preference = preference or uniform_preference(case, DEFAULT_PREFERENCE)
    if projections is None:
        projections = project_all(case, preference, threshold_mw)
    offers = {g: p.offer.with_preference(dict(preference[g])) for g, p in projections.items()}
    times = {"projection": sum(p.time_s for p in projections.values())}
    return _upper_then_lower(
        case, "projection", "projection upper level", offers, node_limit, times
    )


def compare_strategies(
    case: CoordinationCase,
    preference: Mapping[str, dict[int, float]] | None = None,
    threshold_mw: float = 1e-3,
    node_limit: int = NODE_LIMIT,
) -> tuple[dict[str, StrategyResult], dict[str, Projection]]:
    """The three strategies on one event (the projections are returned for checks)."""
    preference = preference or uniform_preference(case, DEFAULT_PREFERENCE)
    projections = project_all(case, preference, threshold_mw)
    return {
        "no_sharing": solve_no_sharing(case, node_limit),
        "central": solve_central(case, node_limit),
        "projection": solve_projection(case, preference, threshold_mw, node_limit, projections),
    }, projections


# --- report -------------------------------------------------------------------------------
def format_table(results: Mapping[str, StrategyResult]) -> str:
    """The strategies side by side: restored load per tier, tie lines, tier-1 buses, times."""
    first = next(iter(results.values()))
    mgs = list(first.tie_p_mw)

    def kw(values) -> str:
        return " ".join(f"{1000 * v:7.1f}" for v in values)

    def mg_sum(per_mg: dict[str, dict[int, float]]) -> list[float]:
        return [sum(x[t] for x in per_mg.values()) for t in TIERS]

    lines = [
        f"Restored load (kW over the {first.window_h:g} h window; weighted = sum of tier "
        "weight x MW; P > 0: the microgrid imports, kW)",
        f"  {'strategy':<16s} {'DSO T1':>7s} {'T2':>7s} {'T3':>7s} {'MG T1':>7s} {'T2':>7s} "
        f"{'T3':>7s} {'total':>7s} {'weighted':>9s} "
        + " ".join(f"{'P ' + g:>7s}" for g in mgs)
        + f" {'solve s':>8s}",
    ]
    for name, r in results.items():
        tiers = [r.dso_restored_mw[t] for t in TIERS] + mg_sum(r.mg_restored_mw)
        lines.append(
            f"  {name:<16s} {kw(tiers)} {kw([sum(tiers)])} {r.weighted_mw:9.3f} "
            f"{kw(r.tie_p_mw[g] for g in mgs)} {r.solve_time_s['total']:8.2f}"
        )
    demand = [first.dso_demand_mw[t] for t in TIERS] + mg_sum(first.mg_demand_mw)
    lines.append(f"  {'demand':<16s} {kw(demand)}")
    lines.append("  DSO tier-1 buses served / microgrid tier-1 served / ties closed / sources:")
    for name, r in results.items():
        mg1 = ", ".join(
            f"{g} {1000 * r.mg_restored_mw[g][1]:.0f}/{1000 * r.mg_demand_mw[g][1]:.0f}"
            for g in mgs
        )
        missing = sorted(set(r.tier1_buses) - set(r.tier1_served))
        lines.append(
            f"  {name:<16s} {list(r.tier1_served)} (not: {missing or 'none'}); {mg1} kW; "
            f"ties {list(r.closed_ties) or 'none'}; {', '.join(r.island_sources) or 'none'}"
        )
    return "\n".join(lines)
