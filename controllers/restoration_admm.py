"""Two-layer restoration ADMM over the normal and faulted sub-networks (seed 001).

The network left by the fault (:func:`controllers.restoration.subnetworks`) splits into the
normal sub-network N (with the substation) and faulted ones F_k, each an agent with its own
:func:`build_restoration_model` and :class:`BoundaryPort` s on the boundary (tie) branches:
N sees a withdrawal at its boundary bus; F_k owns the branch and sees N's end as a ghost bus,
a source when energised.

Outer loop (space): consensus ``z`` per boundary branch and period on (P, Q, v_i, alpha),
scaled form with the quadratic penalties as LP epigraphs (:mod:`controllers.prox`):
``min f_a(x_a) + sum rho/2 |x_a - z + u_a|^2``, ``z = mean_a(x_a + u_a)``, ``u_a += x_a - z``.
The normal side sets the boundary voltage (z_v = its v_i); only the faulted side is penalised
toward it, across closed branches only (a penalty on N's voltage made its MILP chase the
anchor through load pickups, 15-30x slower). The first iteration is free (no penalty): the
consensus starts at what the faulted sides want. The switch consensus is relaxed to [0, 1]
and smoothed, ``z_a <- (1 - gamma) z_a + gamma clip(mean_a(alpha_a + u_a), 0, 1)``.

Inner loop (time): each agent's SOC dynamics are split off into one small LP per storage,
coupled to the network part by consensus on (storage power, SOC) per period.

Residual balancing (seed: nu = 2, q = 10; :func:`balanced`), r = max |x_a - z|,
s = max |z - z_prev|; stop when both are below 1e-3 in both loops.

Integer repair: after ``fix_switches_after`` iterations the boundary switches are fixed at
the faulted sides' latest choice; at the end each F_k is re-solved with its SOC dynamics, its
ghost voltages at the consensus (freed if infeasible) and free boundary powers, then N
supplies exactly those powers; the voltage mismatch left is reported and the merged plan is
checked for radiality. The agents keep their internal binaries (small MILPs for HiGHS).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers.dso import DSOData, default_topology
from mgcosim.controllers.errors import InfeasibleError, OptimisationError
from mgcosim.controllers.restoration_agents import (
    Link,
    SubNetwork,
    links,
    merge_results,
    restore_objective,
    sub_dso,
    sub_inputs,
)
from mgcosim.controllers.restoration_data import (
    BoundaryPort,
    RestorationInputs,
    RestorationResult,
    radial_problem,
    subnetworks,
)
from mgcosim.controllers.restoration_solve import solve_restoration
from mgcosim.controllers.solve import MipLimits
from mgcosim.networks.params import NetworkData

QUANTITIES = ("p", "q", "v", "a")  # boundary consensus: power, reactive, voltage^2, switch


class RestorationADMMError(RuntimeError):
    """The integer repair found no feasible plan for the consensus (caller falls back)."""


@dataclass
class RestorationADMMSettings:
    rho: dict[str, float] = field(
        default_factory=lambda: {"p": 500.0, "q": 500.0, "v": 5000.0, "a": 500.0}
    )  # CNY per unit^2 per period, for (MW, Mvar, pu^2, switch share)
    rho_storage: float = 500.0  # inner loop, storage power (MW) and SOC (MWh)
    eps_primal: float = 1e-3
    eps_dual: float = 1e-3
    max_outer: int = 60
    max_inner: int = 2
    nu: float = 2.0  # residual balancing factor
    q: float = 10.0  # residual balancing ratio
    rho_range: float = 64.0  # penalties stay within [rho0, rho0 * range]
    ema: float = 0.5  # weight of the new switch consensus in its moving average
    fix_switches_after: int = 8  # outer iterations before the integer repair of the switches
    mip_rel_gap: float = 1e-5  # of each agent's MILP (its binaries settle; the LP part is exact)
    node_limit: int = 1000  # branch-and-bound nodes per agent solve (deterministic)

    @property
    def limits(self) -> MipLimits:
        return MipLimits(rel_gap=self.mip_rel_gap, node_limit=self.node_limit)


@dataclass
class RestorationADMMResult:
    result: RestorationResult  # the merged, repaired plan
    converged: bool
    outer_iterations: int
    inner_iterations: int
    history: list[dict]
    solve_time_s: float
    parts: list[set[int]]
    boundary: list[int]  # boundary branches coordinated
    voltage_mismatch_pu2: float  # |v_N - v_ghost| left by the repair (0 when fixed)
    radial: bool
    radial_problem: str


# --- the algorithm -------------------------------------------------------------------------
@dataclass
class Consensus:
    z: dict[str, np.ndarray]  # boundary quantity -> [link, t]
    u: dict[str, dict[str, np.ndarray]]  # agent -> quantity -> scaled dual
    rho: dict[str, float]
    zs: dict[str, dict[str, np.ndarray]]  # storage: agent -> "s"/"e" -> [g, t]
    us_net: dict[str, dict[str, np.ndarray]]
    us_sto: dict[str, dict[str, np.ndarray]]
    rho_s: float


class RestorationADMM:
    """Builds the sub-network agents of one event; :meth:`solve` runs the two loops."""

    def __init__(
        self,
        dd: DSOData,
        data: NetworkData,
        inp: RestorationInputs,
        settings: RestorationADMMSettings | None = None,
    ) -> None:
        self.dd, self.data, self.inp = dd, data, inp
        self.settings = settings or RestorationADMMSettings()
        # sub-networks of the normal (default) topology: a tie the restoration has already
        # closed stays a boundary between them in later plans
        self.parts = subnetworks(dd, inp.faulted, default_topology(dd), inp.main_grid_available)
        self.links = links(dd, self.parts, inp) if inp.main_grid_available else []
        self.agents = self._build() if self.links else {}
        for ag in self.agents.values():
            ag.rows = self._rows(ag)
        self.switches_fixed = False

    def _build(self) -> dict[str, SubNetwork]:
        dd, inp = self.dd, self.inp
        by_part: dict[int, list[Link]] = {}
        for lk in self.links:
            by_part.setdefault(lk.part, []).append(lk)
        s_max = {b.ieee: b.s_max_pu for b in dd.branches}
        internal = {
            b.ieee: b for b in dd.branches if self._part(b.from_bus) == self._part(b.to_bus)
        }

        def agent(name: str, own: set[int], lks: list[Link], importing: bool) -> SubNetwork:
            """N (the substation's part) or F_k (a faulted part with the boundary branches
            and N's ends as ghost buses)."""
            ports = tuple(
                BoundaryPort(lk.branch, lk.normal_bus, importing, s_max[lk.branch]) for lk in lks
            )
            lines = {ln for ln, b in internal.items() if b.from_bus in own}
            ghosts = {lk.normal_bus for lk in lks} if importing else set()
            lines |= {lk.branch for lk in lks} if importing else set()
            sub = sub_dso(dd, own | ghosts, lines, min(own) if importing else dd.root)
            sub_inp = sub_inputs(inp, sub, own, ports, not importing)
            return SubNetwork(name, sub, self.data, sub_inp, lks, importing)

        agents = {"N": agent("N", self.parts[0], self.links, False)}
        for k, lks in sorted(by_part.items()):
            agents[f"F{k}"] = agent(f"F{k}", self.parts[k], lks, True)
        return agents

    def _part(self, bus: int) -> int:
        return next(k for k, part in enumerate(self.parts) if bus in part)

    # --- consensus bookkeeping -----------------------------------------------------------
    def _rows(self, agent: SubNetwork) -> np.ndarray:
        """Rows of the global [link, t] arrays that this agent holds (fixed once built)."""
        index = {lk.branch: i for i, lk in enumerate(self.links)}
        n_t = self.inp.n_periods
        return np.array([index[lk.branch] * n_t + t for lk in agent.links for t in range(n_t)])

    def _cold(self) -> Consensus:
        n = len(self.links) * self.inp.n_periods
        # voltages start at the base case's (an unreachable anchor, e.g. 1 pu at a feeder end,
        # makes the first MILPs chase it by shedding loads: 30x slower there)
        v_hat = self.dd.v_hat_pu or {}
        v0 = [v_hat.get(lk.normal_bus, self.dd.v_root_pu) ** 2 for lk in self.links]
        v0 = np.repeat(v0, self.inp.n_periods)
        z = {"p": np.zeros(n), "q": np.zeros(n), "v": v0, "a": np.zeros(n)}
        u = {a: {q: np.zeros(len(ag.keys)) for q in QUANTITIES} for a, ag in self.agents.items()}
        zs, us_net, us_sto = {}, {}, {}
        for a, ag in self.agents.items():
            n_s = len(ag.storage_keys)
            soc0 = np.array([ag.inp.microgrids[g].soc_mwh for g, _ in ag.storage_keys])
            zs[a] = {"s": np.zeros(n_s), "e": soc0}
            us_net[a] = {"s": np.zeros(n_s), "e": np.zeros(n_s)}
            us_sto[a] = {"s": np.zeros(n_s), "e": np.zeros(n_s)}
        return Consensus(
            z, u, dict(self.settings.rho), zs, us_net, us_sto, self.settings.rho_storage
        )

    def _net_anchors(self, st: Consensus, a: str) -> dict[str, np.ndarray]:
        rows = self.agents[a].rows
        out = {q: st.z[q][rows] - st.u[a][q] for q in QUANTITIES}
        if self.agents[a].storage_keys:
            out |= {q: st.zs[a][q] - st.us_net[a][q] for q in ("s", "e")}
        return out

    def _sto_anchors(self, st: Consensus, a: str, g: str) -> dict[str, np.ndarray]:
        idx = self.agents[a].storage_index[g]
        return {q: st.zs[a][q][idx] - st.us_sto[a][q][idx] for q in ("s", "e")}

    def _solve_agents(self, st: Consensus, first: bool) -> dict[str, dict[str, np.ndarray]]:
        out = {}
        for a, ag in self.agents.items():
            rho = dict(st.rho) | {"s": st.rho_s, "e": st.rho_s}
            if first:  # free boundary: each side's own optimum (see :meth:`_start`)
                rho |= {q: 0.0 for q in QUANTITIES}
            closed = st.z["a"][ag.rows] > 0.5
            weight = closed & self.switches_fixed & ag.importing
            ag.solve(self._net_anchors(st, a), rho, first, weight.astype(float))
            out[a] = ag.values()
        return out

    def _inner(self, st: Consensus, net: dict, first: bool) -> tuple[float, float]:
        """One round of the storage (time) loop: storage LPs, consensus, duals."""
        r = s = 0.0
        for a, ag in self.agents.items():
            if not ag.storage_keys:
                continue
            sto = {"s": np.zeros(len(ag.storage_keys)), "e": np.zeros(len(ag.storage_keys))}
            for g, lp in ag.storage.items():
                lp.solve(self._sto_anchors(st, a, g), st.rho_s, first)
                for q, v in lp.values().items():
                    sto[q][ag.storage_index[g]] = v
            for q in ("s", "e"):
                old = st.zs[a][q]
                new = 0.5 * (net[a][q] + st.us_net[a][q] + sto[q] + st.us_sto[a][q])
                st.us_net[a][q] += net[a][q] - new
                st.us_sto[a][q] += sto[q] - new
                st.zs[a][q] = new
                r = max(r, float(np.max(np.abs(net[a][q] - new), initial=0.0)))
                r = max(r, float(np.max(np.abs(sto[q] - new), initial=0.0)))
                s = max(s, float(np.max(np.abs(new - old), initial=0.0)))
        self._balance_inner(st, r, s)
        return r, s

    def _balance_inner(self, st: Consensus, r: float, s: float) -> None:
        new = balanced(st.rho_s, self.settings.rho_storage, r, s, self.settings)
        sides = [u[a] for u in (st.us_net, st.us_sto) for a in self.agents]
        rescale([u[q] for u in sides for q in ("s", "e")], st.rho_s, new)
        st.rho_s = new

    def _outer(self, st: Consensus, net: dict) -> tuple[float, float, dict]:
        """Boundary consensus (EMA-smoothed switches), duals, residuals per quantity."""
        cfg, res = self.settings, {}
        closed = np.zeros_like(st.z["a"])
        for a, ag in self.agents.items():
            np.maximum.at(closed, ag.rows, net[a]["a"])
        for q in QUANTITIES:
            total = np.zeros_like(st.z[q])
            count = np.zeros_like(st.z[q])
            for a, ag in self.agents.items():
                if q == "v" and ag.importing:  # the normal side sets the boundary voltage
                    continue
                np.add.at(total, ag.rows, net[a][q] + st.u[a][q])
                np.add.at(count, ag.rows, 1.0)
            mean = total / np.maximum(count, 1.0)
            old = st.z[q].copy()
            if q == "a":  # held once fixed, else smoothed
                smoothed = (1 - cfg.ema) * old + cfg.ema * np.clip(mean, 0.0, 1.0)
                mean = old if self.switches_fixed else smoothed
            st.z[q] = mean
            r = 0.0
            for a, ag in self.agents.items():
                rows = ag.rows
                diff = net[a][q] - st.z[q][rows]
                st.u[a][q] += diff
                if q == "v":  # a voltage consensus matters only where the branch may close
                    diff = diff * (np.maximum(closed[rows], st.z["a"][rows]) > 1e-6)
                r = max(r, float(np.max(np.abs(diff), initial=0.0)))
            change = np.abs(st.z[q] - old)
            if q == "v":
                change = change * (np.maximum(closed, st.z["a"]) > 1e-6)
            s = float(np.max(change, initial=0.0))
            res[q] = (r, s)
            self._set_rho(st, q, balanced(st.rho[q], cfg.rho[q], r, s, cfg))
        if res["a"][0] > cfg.eps_primal:  # binary choices: tighten until they agree
            self._set_rho(st, "a", min(st.rho["a"] * cfg.nu, cfg.rho["a"] * cfg.rho_range))
        r, s = (max(v[i] for v in res.values()) for i in (0, 1))
        return r, s, res

    def _start(self, st: Consensus, net: dict) -> None:
        """Consensus after the free first iteration (see the module docstring): boundary
        powers and switches at the importing sides' own optimum, voltages at the normal side's
        (from zero exchange a tie worth less than the first penalties would never be tried)."""
        for a, ag in self.agents.items():
            for q in ("p", "q", "a") if ag.importing else ("v",):
                st.z[q][ag.rows] = net[a][q]
            for q in QUANTITIES:
                st.u[a][q][:] = 0.0

    def _fix_switches(self, st: Consensus, net: dict) -> None:
        """Integer repair: each boundary switch fixed at the faulted side's latest choice."""
        alpha = np.zeros_like(st.z["a"])
        for a, ag in self.agents.items():
            if ag.importing:
                alpha[ag.rows] = np.round(net[a]["a"])
        for a, ag in self.agents.items():
            values = alpha[ag.rows]
            for key, value in zip(ag.keys, values, strict=True):
                ag.switch[key].fix(float(value))
            fast = ag.agent.fast
            cols = fast.cols([ag.switch[key] for key in ag.keys])
            fast.highs.changeColsBounds(len(cols), cols, values, values)
            st.u[a]["a"][:] = 0.0
        st.z["a"] = alpha
        self.switches_fixed = True

    def _set_rho(self, st: Consensus, q: str, new: float) -> None:
        """Penalty of quantity ``q`` set to ``new``, the scaled duals rescaled."""
        rescale([st.u[a][q] for a in self.agents], st.rho[q], new)
        st.rho[q] = new

    def solve(self) -> RestorationADMMResult:
        """Run both loops, repair, merge; raises :class:`RestorationADMMError`."""
        cfg = self.settings
        start = time.perf_counter()
        if not self.agents:
            raise RestorationADMMError(
                "no boundary between a normal and a faulted sub-network to coordinate"
            )
        for ag in self.agents.values():
            ag.set_mip_limits(cfg.limits)
        st = self._cold()
        history: list[dict] = []
        converged = False
        inner_total = 0
        k = 0
        for k in range(1, cfg.max_outer + 1):
            r_in = s_in = math.inf
            for j in range(cfg.max_inner):
                net = self._solve_agents(st, first=(k == 1 and j == 0))
                if k == 1 and j == 0:
                    self._start(st, net)
                    for ag in self.agents.values():
                        ag.set_mip_limits(cfg.limits)
                r_in, s_in = self._inner(st, net, first=(k == 1 and j == 0))
                inner_total += 1
                if r_in <= cfg.eps_primal and s_in <= cfg.eps_dual:
                    break
            if k == cfg.fix_switches_after:
                self._fix_switches(st, net)
            if k == 1:  # the consensus was set from the free first solves
                r, s, per = math.inf, math.inf, {q: (math.inf, math.inf) for q in QUANTITIES}
            else:
                r, s, per = self._outer(st, net)
            history.append(
                {
                    "iteration": k,
                    "primal_residual": r,
                    "dual_residual": s,
                    "inner_primal_residual": r_in,
                    "inner_dual_residual": s_in,
                    "time_s": time.perf_counter() - start,
                    "inner_iterations": j + 1,
                    **{f"rho_{q}": st.rho[q] for q in QUANTITIES},
                    **{f"primal_{q}": per[q][0] for q in QUANTITIES},
                    "objective_cny": sum(ag.own_cost() for ag in self.agents.values()),
                }
            )
            if max(r, r_in) <= cfg.eps_primal and max(s, s_in) <= cfg.eps_dual:
                converged = True
                break
        result, mismatch = self._repair(st)
        why = next(
            filter(None, (radial_problem(self.dd, p, self.inp.faulted) for p in result.periods)), ""
        )
        elapsed = time.perf_counter() - start
        return RestorationADMMResult(
            result=replace(result, solve_time_s=elapsed),
            converged=converged,
            outer_iterations=k,
            inner_iterations=inner_total,
            history=history,
            solve_time_s=elapsed,
            parts=self.parts,
            boundary=[lk.branch for lk in self.links],
            voltage_mismatch_pu2=mismatch,
            radial=not why,
            radial_problem=why,
        )

    # --- integer repair --------------------------------------------------------------------
    def _repair(self, st: Consensus) -> tuple[RestorationResult, float]:
        """The final repair (see the module docstring): faulted sides first, then the normal
        side supplies their powers. Returns the merged plan and the largest |v_N - v_ghost|
        (pu^2) left at a closed boundary."""
        alpha = np.round(st.z["a"])  # fixed at the faulted sides' choice after fix_switches_after
        results: dict[str, RestorationResult] = {}
        drawn: dict[tuple[int, int], tuple[float, float]] = {}
        ghost_v: dict[tuple[int, int], float] = {}
        for a, ag in self.agents.items():
            if not ag.importing:
                continue
            m = ag.model
            restore_objective(m)
            ghost = {lk.branch: lk.normal_bus for lk in ag.links}
            for (ln, t), on, v in zip(ag.keys, alpha[ag.rows], st.z["v"][ag.rows], strict=True):
                m.alpha[ln, t].fix(int(on > 0.5))
                m.v[ghost[ln], t].fix(float(v))
            try:
                results[a] = solve_restoration(m, self.settings.limits)
            except InfeasibleError:
                for ln, t in ag.keys:
                    m.v[ghost[ln], t].unfix()
                results[a] = self._solve_or_raise(m, a)
            for ln, t in ag.keys:
                drawn[(ln, t)] = (pyo.value(m.port_p[ln, t]), pyo.value(m.port_q[ln, t]))
                ghost_v[(ln, t)] = pyo.value(m.v[ghost[ln], t])
        n = self.agents["N"]
        m = n.model
        restore_objective(m)
        closed_n = dict(zip(n.keys, alpha[n.rows] > 0.5, strict=True))
        for ln, t in n.keys:
            p, q = drawn[(ln, t)]
            closed = abs(p) > 1e-9 or abs(q) > 1e-9 or closed_n[(ln, t)]
            m.port_alpha[ln, t].fix(int(bool(closed)))
            m.port_p[ln, t].fix(p)
            m.port_q[ln, t].fix(q)
        results["N"] = self._solve_or_raise(m, "N")
        mismatch = max(
            (
                abs(pyo.value(m.v[lk.normal_bus, t]) - ghost_v[(lk.branch, t)])
                for lk in self.links
                for t in m.T
                if closed_n[(lk.branch, t)]
            ),
            default=0.0,
        )
        return merge_results(self.inp, results, self.agents), mismatch

    def _solve_or_raise(self, m: pyo.ConcreteModel, name: str) -> RestorationResult:
        try:
            return solve_restoration(m, self.settings.limits)
        except OptimisationError as err:
            raise RestorationADMMError(f"integer repair of {name} failed: {err}") from err


def balanced(rho: float, rho0: float, r: float, s: float, cfg: RestorationADMMSettings) -> float:
    """Residual balancing (seed: rho * nu when r >= q s, rho / nu when q r <= s) in
    [rho0, rho0 * range], with one change for the piecewise-linear penalties.

    With the LP epigraph of :mod:`controllers.prox` an iterate sits on a breakpoint at an
    offset near the scaled dual u = lambda / rho, so it cycles between two breakpoints
    once the primal residual is met: the dual residual stays at about their spacing.
    A larger rho moves u to the finely spaced breakpoints near zero, so in that state
    (r below its threshold, s above) rho is raised, not lowered; and rho never falls
    below its start (below it the iterates jumped between vertices, as in the bilevel ADMM).
    """
    if (r <= cfg.eps_primal and s > cfg.eps_dual) or (r >= cfg.q * s and r > cfg.eps_primal):
        return min(rho * cfg.nu, rho0 * cfg.rho_range)
    if cfg.q * r <= s and s > cfg.eps_dual:
        return max(rho / cfg.nu, rho0)
    return rho


def rescale(duals: list[np.ndarray], rho: float, new: float) -> None:
    """Scaled duals u = lambda / rho kept at the same lambda when rho becomes ``new``."""
    for u in duals:
        u *= rho / new


def solve_restoration_admm(
    dd: DSOData,
    data: NetworkData,
    inp: RestorationInputs,
    settings: RestorationADMMSettings | None = None,
) -> RestorationADMMResult:
    """Build the agents of one event and run the two-layer ADMM."""
    return RestorationADMM(dd, data, inp, settings).solve()
