"""The agents of the restoration ADMM: one sub-network's model and its storage LPs.

:func:`links` and :func:`sub_dso` / :func:`sub_inputs` cut the event along the boundary
between the normal sub-network and the faulted ones; :class:`SubNetwork` is one side's
restoration model with its proximal terms, :class:`StorageLP` one storage's SOC dynamics
(the inner loop); :func:`merge_results` joins the sides' plans into one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import partial

import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers import blocks
from mgcosim.controllers.admm import Agent
from mgcosim.controllers.dso import DSOData
from mgcosim.controllers.prox import add_prox, set_anchor
from mgcosim.controllers.restoration import build_restoration_model
from mgcosim.controllers.restoration_data import (
    BoundaryPort,
    RestorationInputs,
    RestorationPeriod,
    RestorationResult,
)
from mgcosim.controllers.solve import MipLimits
from mgcosim.networks.params import NetworkData
from mgcosim.networks.storage import energy_change_mwh


# --- partition ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Link:
    branch: int
    normal_bus: int
    far_bus: int
    part: int  # index of the faulted sub-network


def links(dd: DSOData, parts: list[set[int]], inp: RestorationInputs) -> list[Link]:
    """Boundary branches between the normal sub-network (parts[0]) and a faulted one."""
    part_of = {b: k for k, part in enumerate(parts) for b in part}
    out = []
    for b in dd.branches:
        if b.ieee in inp.faulted | inp.forced_open:
            continue
        pf, pt = part_of[b.from_bus], part_of[b.to_bus]
        if pf == pt or 0 not in (pf, pt):
            continue
        near, far = (b.from_bus, b.to_bus) if pf == 0 else (b.to_bus, b.from_bus)
        out.append(Link(b.ieee, near, far, pf if pf else pt))
    return out


def sub_dso(dd: DSOData, buses: set[int], branches: set[int], root: int) -> DSOData:
    """The DSO data restricted to ``buses`` (root first) and ``branches``."""
    order = [root] + [b for b in dd.buses if b in buses and b != root]
    return replace(
        dd,
        buses=tuple(order),
        root=root,
        branches=tuple(b for b in dd.branches if b.ieee in branches),
        load_p_nom_mw={b: p for b, p in dd.load_p_nom_mw.items() if b in buses},
        load_q_nom_mvar={b: q for b, q in dd.load_q_nom_mvar.items() if b in buses},
        pv_bus={p: b for p, b in dd.pv_bus.items() if b in buses},
        mg_bus={g: b for g, b in dd.mg_bus.items() if b in buses},
        mg_p_max_mw={g: p for g, p in dd.mg_p_max_mw.items() if dd.mg_bus[g] in buses},
    )


def sub_inputs(
    inp: RestorationInputs,
    dd_sub: DSOData,
    own: set[int],
    ports: tuple[BoundaryPort, ...],
    main_grid: bool,
) -> RestorationInputs:
    """The event's inputs for one sub-network (loads, PV, microgrids on its own buses)."""
    lines = {b.ieee for b in dd_sub.branches}
    return replace(
        inp,
        main_grid_available=main_grid,
        faulted=inp.faulted & lines,
        forced_open=inp.forced_open & lines,
        initial_closed={ln: c for ln, c in inp.initial_closed.items() if ln in lines},
        demand_mw={b: v for b, v in inp.demand_mw.items() if b in own},
        pv_mw={p: v for p, v in inp.pv_mw.items() if dd_sub.pv_bus.get(p) in own},
        microgrids={g: v for g, v in inp.microgrids.items() if dd_sub.mg_bus.get(g) in own},
        switch_budget=None,
        ports=ports,
    )


# --- agents ------------------------------------------------------------------------------
class SubNetwork:
    """One sub-network's model, its coupling expressions and its storage split."""

    def __init__(
        self,
        name: str,
        dd_sub: DSOData,
        data: NetworkData,
        inp: RestorationInputs,
        link_list: list[Link],
        importing: bool,
    ) -> None:
        self.name, self.dd, self.inp = name, dd_sub, inp
        self.links = link_list
        self.importing = importing
        self.ghosts = {lk.normal_bus for lk in link_list} if importing else set()
        self.model = m = build_restoration_model(dd_sub, data, inp)
        keys = [(lk.branch, t) for lk in link_list for t in m.T]
        bus = {lk.branch: lk.normal_bus for lk in link_list}
        m.cp_v = pyo.Expression(keys, rule=lambda _, ln, t: m.v[bus[ln], t])
        self.switch = m.alpha if importing else m.port_alpha  # the boundary switches' copy
        m.cp_a = pyo.Expression(keys, rule=lambda _, ln, t: self.switch[ln, t])
        coupled = {"p": m.port_p, "q": m.port_q, "v": m.cp_v, "a": m.cp_a}
        terms = {q: add_prox(m, f"prox_{q}", keys, var) for q, var in coupled.items()}
        self.storage_keys = [(g, t) for g in m.M for t in m.T]
        m.ess_net = pyo.Expression(m.M, m.T, rule=lambda _, g, t: m.ch[g, t] - m.dis[g, t])
        if self.storage_keys:
            terms["s"] = add_prox(m, "prox_s", self.storage_keys, m.ess_net)
            terms["e"] = add_prox(m, "prox_e", self.storage_keys, m.soc)
            m.soc_dyn.deactivate()  # the inner loop's storage LPs hold the dynamics
        m.obj.deactivate()
        m.admm_obj = pyo.Objective(expr=m.obj.expr + sum(terms.values()))
        self.keys = keys
        self.agent = Agent(m, f"restoration ADMM {name}", coupling={})
        self.storage = {g: StorageLP(inp.microgrids[g], inp) for g in m.M}
        self.storage_index = {
            g: [i for i, (h, _) in enumerate(self.storage_keys) if h == g] for g in m.M
        }
        self.rows = np.zeros(0, dtype=int)  # set by the coordinator: its [link, t] rows
        self.v_weight = np.zeros(len(keys))

    def set_mip_limits(self, limits: MipLimits) -> None:
        """MIP gap and node limit of the agent's HiGHS (the Pyomo solve and the re-solves)."""
        self.agent.solver.config.rel_gap = limits.rel_gap
        self.agent.solver.config.solver_options["mip_max_nodes"] = limits.node_limit
        if self.agent.fast is not None:
            self.agent.fast.highs.setOptionValue("mip_max_nodes", limits.node_limit)
            self.agent.fast.highs.setOptionValue("mip_rel_gap", limits.rel_gap)

    def values(self) -> dict[str, np.ndarray]:
        """Coupling values of the current iterate, ordered like ``keys``."""
        m, val = self.model, partial(current, self.agent)
        coupled = {"p": m.port_p, "q": m.port_q, "a": self.switch}
        out = {q: [val(var[k]) for k in self.keys] for q, var in coupled.items()}
        out["v"] = [val(m.v[lk.normal_bus, t]) for lk in self.links for t in m.T]
        out["s"] = [val(m.ch[k]) - val(m.dis[k]) for k in self.storage_keys]
        out["e"] = [val(m.soc[k]) for k in self.storage_keys]
        return {q: np.array(v, float) for q, v in out.items()}

    def solve(
        self,
        anchors: dict[str, np.ndarray],
        rho: dict[str, float],
        first: bool,
        v_weight: np.ndarray,
    ) -> None:
        """Solve with the penalties; the voltage penalty only where ``v_weight`` is 1 (the
        faulted side of a closed boundary branch, see the module docstring)."""
        if first:  # the Pyomo solve that loads the model: no voltage penalty yet
            prox_solve(self.agent, anchors, rho | {"v": 0.0}, True)
            return
        ag = self.agent
        for name, handle in ag.prox.items():
            q = name.removeprefix("prox_")
            handle.update(ag.fast, anchors[q], rho[q])
        self.v_weight = np.asarray(v_weight, float)
        ag.fast.set_costs(ag.prox["prox_v"].e_cols, rho["v"] * self.v_weight)
        ag.rho = {f"prox_{q}": r for q, r in rho.items() if f"prox_{q}" in ag.prox}
        ag.x = ag.fast.run()

    def own_cost(self) -> float:
        """The sub-network's objective without the penalties."""
        ag = self.agent
        penalty = sum(h.penalty(ag.x, ag.rho[n]) for n, h in ag.prox.items() if n != "prox_v")
        penalty += ag.rho["prox_v"] * float(self.v_weight @ ag.x[ag.prox["prox_v"].e_cols])
        return ag.fast.objective() - penalty


def current(agent: Agent, var) -> float:
    """``var`` in the agent's latest iterate (its fixed value when it is not a column)."""
    cols = agent.solver._pyomo_var_to_solver_var_map
    return float(agent.x[cols[id(var)]]) if id(var) in cols else float(pyo.value(var))


def prox_solve(agent: Agent, anchors: dict, rho: dict, first: bool) -> None:
    """Solve ``agent`` with the proximal blocks ``prox_<q>`` centred at ``anchors[q]``."""
    solve = agent.first_solve if first else agent.resolve
    solve({f"prox_{q}": x for q, x in anchors.items()}, {f"prox_{q}": rho[q] for q in anchors})


class StorageLP:
    """One microgrid storage's SOC dynamics over the horizon (the inner loop's time agent)."""

    def __init__(self, mg, inp: RestorationInputs) -> None:
        p, dt = mg.params, inp.durations_h
        m = pyo.ConcreteModel(name=f"storage {p.name}")
        m.T = pyo.RangeSet(0, inp.n_periods - 1)
        m.ch = pyo.Var(m.T, bounds=(0.0, p.ess_p_ch_max_mw))
        m.dis = pyo.Var(m.T, bounds=(0.0, p.ess_p_dis_max_mw))
        m.soc = pyo.Var(m.T, bounds=(p.ess_e_min_mwh, p.ess_e_max_mwh))
        blocks.declare_soc_dynamics(
            m,
            "dyn",
            m.soc,
            lambda t: mg.soc_mwh if t == 0 else m.soc[t - 1],
            lambda t: energy_change_mwh(m.ch[t], m.dis[t], p.ess_eta_ch, p.ess_eta_dis, dt[t]),
            m.T,
        )
        m.net = pyo.Expression(m.T, rule=lambda _, t: m.ch[t] - m.dis[t])
        keys = list(m.T)
        pen_s = add_prox(m, "prox_s", keys, m.net)
        pen_e = add_prox(m, "prox_e", keys, m.soc)
        # a tiny throughput cost: no simultaneous charge and discharge
        m.obj = pyo.Objective(expr=pen_s + pen_e + 1e-3 * sum(m.ch[t] + m.dis[t] for t in m.T))
        self.model = m
        self.agent = Agent(m, f"storage {p.name}", coupling={})

    def solve(self, anchors: dict[str, np.ndarray], rho: float, first: bool) -> None:
        prox_solve(self.agent, anchors, {"s": rho, "e": rho}, first)

    def values(self) -> dict[str, np.ndarray]:
        m, val = self.model, partial(current, self.agent)
        ch, dis = (np.array([val(var[t]) for t in m.T]) for var in (m.ch, m.dis))
        return {"s": ch - dis, "e": np.array([val(m.soc[t]) for t in m.T])}


def restore_objective(m: pyo.ConcreteModel) -> None:
    """The agent's own objective with the SOC dynamics back (for the repair solves)."""
    for name in ("prox_p", "prox_q", "prox_v", "prox_a", "prox_s", "prox_e"):
        if (block := getattr(m, name, None)) is not None:
            set_anchor(block, {}, 0.0)
    if hasattr(m, "soc_dyn"):
        m.soc_dyn.activate()
    m.admm_obj.deactivate()
    m.obj.activate()


# --- merging and checks ------------------------------------------------------------------
def merge_results(
    inp: RestorationInputs, results: dict[str, RestorationResult], agents: dict[str, SubNetwork]
) -> RestorationResult:
    """One network-wide plan from the sub-networks' plans (ghost buses dropped)."""
    periods = (
        merge_period({a: r.periods[t] for a, r in results.items()}, agents)
        for t in range(inp.n_periods)
    )
    values = list(results.values())
    summed = ("objective_cny", "best_bound_cny", "solve_time_s", "restored_value_cny")
    summed += ("switch_actions", "mip_nodes")
    return RestorationResult(
        status="optimal" if all(r.status == "optimal" for r in values) else "node_limit",
        mip_gap=max(r.mip_gap for r in values),
        periods=tuple(periods),
        **{f: sum(getattr(r, f) for r in values) for f in summed},
    )


GHOST_FIELDS = ("energised_buses", "source_buses")  # bus sets: ghost buses dropped


def merge_period(parts: dict[str, RestorationPeriod], agents: dict[str, SubNetwork]):
    """One period of the network-wide plan: the parts' sets joined and figures added (without
    their ghost buses); the substation's power is the normal sub-network's."""

    def own(a: str, name: str):
        value, ghosts = getattr(parts[a], name), agents[a].ghosts
        if name == "vm_pu":
            return {b: v for b, v in value.items() if b not in ghosts}
        return value - ghosts if name in GHOST_FIELDS else value

    def merged(name: str):
        values = [own(a, name) for a in parts]
        if isinstance(values[0], frozenset):
            return frozenset().union(*values)
        if isinstance(values[0], dict):
            keys = dict.fromkeys(k for v in values for k in v)  # in order of appearance
            return {k: sum(v.get(k, 0.0) for v in values) for k in keys}
        return sum(values)

    figures = {f.name: merged(f.name) for f in fields(RestorationPeriod)}
    return RestorationPeriod(**figures | {"substation_p_mw": parts["N"].substation_p_mw})
