"""Embedded parallel ADMM between the DSO and the microgrids (seed 000, design section 3.3).

Outer loop (DSO <-> microgrids) on the PCC exchanges, with intermediate (consensus)
variables z[m, t] between the DSO's copy ``dso.pm`` and the microgrid's ``mg.pm``:

    DSO:   min cost_D + rho_o/2 |pm_D - z + u_D|^2
    MG m:  min cost_m + rho_o/2 |pm_m - z + u_M|^2 + rho_i/2 sum_n |trade_mn - zeta_mn + y_mn|^2
    z = ((pm_D + u_D) + (pm_M + u_M)) / 2,  u_D += pm_D - z,  u_M += pm_M - z.

Inner loop (among microgrids) on the P2P trades, with consensus zeta_mn = -zeta_nm:
zeta_mn = ((trade_mn + y_mn) - (trade_nm + y_nm)) / 2, y_mn += trade_mn - zeta_mn.
The microgrid subproblems of an inner iteration are independent (solved in parallel
threads when ``parallel`` is set). Each agent keeps its own model and sees only the
boundary quantities and multipliers. Penalties adapt by residual balancing
(rho *= tau when the primal residual exceeds mu times the dual one, and the reverse),
with the scaled duals rescaled. Residuals are in MW (= pu at S_base = 1 MVA):
primal max |pm_D - pm_M| (outer) and max |trade_mn + trade_nm| (inner); dual
max |z - z_prev| and max |zeta - zeta_prev|. The quadratic penalties are LP epigraphs
(:mod:`controllers.prox`).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers import microgrid as mg_mod
from mgcosim.controllers.coupled import HorizonInputs, neighbours, pairs, set_dso_inputs
from mgcosim.controllers.dso import DSOData, add_dso
from mgcosim.controllers.loss_cuts import tighten_agent
from mgcosim.controllers.prox import add_prox, cut_lower_bounds, set_anchor
from mgcosim.controllers.solve import FastLP, persistent_highs, solve_optimal
from mgcosim.networks.params import NetworkData


@dataclass
class ADMMSettings:
    rho_outer: float = 400.0  # CNY / MW^2 per period
    rho_inner: float = 400.0
    eps_primal_mw: float = 1e-3
    eps_dual_mw: float = 1e-3
    max_outer: int = 100
    max_inner: int = 3  # inexact inner loop: a few P2P rounds per outer iteration
    mu: float = 10.0  # residual balancing: ratio that triggers a penalty change
    tau: float = 2.0  # factor of the change
    rho_range: float = 64.0  # penalties stay within [rho0, rho0 * range]: with LP subproblems
    # a penalty below its start makes the iterates jump between vertices (seen: no convergence)
    relax: float = 1.6  # over-relaxation of the consensus updates (1 = plain ADMM)
    parallel: bool = False
    # Kelley rounds on the DSO agent's loss cone after each of its solves
    # (controllers.loss_cuts); False: the initial tangent cuts only (measured -4.3 % losses)
    refine_losses: bool = True


@dataclass
class ADMMState:
    """Consensus values and scaled duals: what one horizon hands to the next (warm start)."""

    z: np.ndarray  # [mg, t]
    u_dso: np.ndarray
    u_mg: np.ndarray
    zeta: dict[tuple[str, str], np.ndarray]  # (a, b) with a < b: what a buys from b
    y: dict[tuple[str, str], np.ndarray]  # directed (m, n): scaled dual of trade_mn
    rho_outer: float
    rho_inner: float

    def shifted(self, periods: int = 1) -> ADMMState:
        """The state moved forward by ``periods`` (last values repeated): a warm start."""

        def shift(a: np.ndarray) -> np.ndarray:
            return np.concatenate([a[..., periods:], np.repeat(a[..., -1:], periods, -1)], -1)

        zeta, y = ({k: shift(v) for k, v in d.items()} for d in (self.zeta, self.y))
        arrays = (shift(self.z), shift(self.u_dso), shift(self.u_mg), zeta, y)
        return ADMMState(*arrays, self.rho_outer, self.rho_inner)


@dataclass
class ADMMResult:
    objective: float  # sum of the agents' costs at the final iterate (CNY)
    costs: dict[str, float]  # per agent
    converged: bool
    outer_iterations: int
    inner_iterations: int
    history: list[dict] = field(default_factory=list)
    state: ADMMState | None = None
    solve_time_s: float = 0.0


class ProxHandle:
    """Where one proximal block lives in the loaded HiGHS model (rows of cuts, cost columns)."""

    def __init__(self, block: pyo.Block, fast: FastLP) -> None:
        self.block = block
        self.keys = list(block.I)
        keyed = [k if isinstance(k, tuple) else (k,) for k in self.keys]
        self.rows = fast.rows([block.cut[(*k, c)] for k in keyed for c in block.C])
        self.e_cols = fast.cols([block.e[k] for k in self.keys])

    def update(self, fast: FastLP, anchors: np.ndarray, rho: float) -> None:
        fast.set_row_lower(self.rows, cut_lower_bounds(anchors))
        fast.set_costs(self.e_cols, np.full(len(self.e_cols), rho))
        set_anchor(self.block, dict(zip(self.keys, anchors, strict=True)), rho)

    def penalty(self, x: np.ndarray, rho: float) -> float:
        return rho * float(x[self.e_cols].sum())


class Agent:
    """One agent's model with its persistent HiGHS instance and fast re-solve handles."""

    def __init__(self, model: pyo.ConcreteModel, what: str, coupling: dict) -> None:
        self.model, self.what = model, what
        self.solver = persistent_highs()
        self.coupling = coupling  # name -> list of Pyomo variables read after each solve
        self.fast: FastLP | None = None
        self.prox: dict[str, ProxHandle] = {}
        self.x: np.ndarray | None = None

    def first_solve(self, anchors: dict[str, np.ndarray], rho: dict[str, float]) -> None:
        """A Pyomo solve that pushes the horizon's data; afterwards iterations go fast."""
        for name, block in self._blocks().items():
            set_anchor(block, dict(zip(list(block.I), anchors[name], strict=True)), rho[name])
        solve_optimal(self.model, self.solver, self.what)
        if self.fast is None:
            self.fast = FastLP(self.solver, self.what)
            self.prox = {n: ProxHandle(b, self.fast) for n, b in self._blocks().items()}
            self.cols = {n: self.fast.cols(v) for n, v in self.coupling.items()}
        self.x = np.asarray(self.fast.highs.getSolution().col_value)
        self.rho = dict(rho)

    def resolve(self, anchors: dict[str, np.ndarray], rho: dict[str, float]) -> None:
        for name, handle in self.prox.items():
            handle.update(self.fast, anchors[name], rho[name])
        self.rho = dict(rho)
        self.x = self.fast.run()

    def value(self, name: str) -> np.ndarray:
        return self.x[self.cols[name]]

    def own_cost(self) -> float:
        """Objective without the proximal penalties (the agent's real cost)."""
        penalty = sum(h.penalty(self.x, self.rho[n]) for n, h in self.prox.items())
        return self.fast.objective() - penalty

    def load_solution(self) -> None:
        """Copy the current iterate into the Pyomo variables."""
        var_map = self.solver._pyomo_var_to_solver_var_map
        for var in self.model.component_data_objects(pyo.Var, active=True):
            if id(var) in var_map and not var.fixed:
                var.set_value(float(self.x[var_map[id(var)]]), skip_validation=True)

    def _blocks(self) -> dict[str, pyo.Block]:
        return {
            b.local_name: b
            for b in self.model.component_objects(pyo.Block)
            if b.local_name.startswith("prox")
        }


class BilevelADMM:
    """Builds every agent's model once; :meth:`solve` runs one horizon."""

    def __init__(
        self,
        dd: DSOData,
        data: NetworkData,
        n_periods: int,
        n_scenarios: int,
        settings: ADMMSettings | None = None,
        dt_h: float = 1.0,
    ) -> None:
        self.dd, self.data, self.settings = dd, data, settings or ADMMSettings()
        self.refine_rounds = 0  # Kelley rounds on the DSO agent so far (all horizons)
        self.names = sorted(mg.name for mg in data.microgrids)
        self.T, self.dt_h = n_periods, dt_h
        self.pairs = pairs(self.names)
        self.nbrs = {g: neighbours(self.names, g) for g in self.names}
        self.dso = self._build_dso()
        params = {mg.name: mg for mg in data.microgrids}
        self.mgs = {g: self._build_mg(params[g], n_scenarios) for g in self.names}

    def _build_dso(self) -> Agent:
        m = add_dso(pyo.ConcreteModel(name="dso"), self.dd, self.T)
        index = [(g, t) for g in self.names for t in range(self.T)]
        prox = add_prox(m, "prox_pm", index, m.pm)
        m.obj = pyo.Objective(expr=m.cost + prox)
        return Agent(m, "DSO subproblem", {"pm": [m.pm[i] for i in index]})

    def _build_mg(self, mg, n_scenarios: int) -> Agent:
        nbrs = self.nbrs[mg.name]
        m = mg_mod.add_microgrid(
            pyo.ConcreteModel(name=mg.name), mg, self.data.dso, self.T, n_scenarios, nbrs, self.dt_h
        )
        prox = add_prox(m, "prox_pm", list(range(self.T)), m.pm)
        index = [(n, t) for n in nbrs for t in range(self.T)]
        if nbrs:
            prox = prox + add_prox(m, "prox_trade", index, m.trade)
        m.obj = pyo.Objective(expr=m.cost + prox)
        coupling = {"pm": [m.pm[t] for t in range(self.T)], "trade": [m.trade[i] for i in index]}
        return Agent(m, f"microgrid {mg.name} subproblem", coupling)

    # --- state ---------------------------------------------------------------------------
    def cold_state(self, h: HorizonInputs) -> ADMMState:
        """Start from each microgrid's expected net demand, zero duals."""
        s = self.settings
        z = np.array([h.mg[g].load_mw - h.mg[g].prob @ h.mg[g].wind_mw for g in self.names])
        zero = np.zeros((len(self.names), self.T))
        directed = [(a, b) for a, b in self.pairs] + [(b, a) for a, b in self.pairs]
        zeta, y = ({p: np.zeros(self.T) for p in keys} for keys in (self.pairs, directed))
        return ADMMState(z, zero.copy(), zero.copy(), zeta, y, s.rho_outer, s.rho_inner)

    def _zeta(self, st: ADMMState, m: str, n: str) -> np.ndarray:
        """Consensus value of trade_mn (what m buys from n)."""
        return st.zeta[(m, n)] if m < n else -st.zeta[(n, m)]

    def _dso_anchors(self, st: ADMMState) -> tuple[dict, dict]:
        return {"prox_pm": (st.z - st.u_dso).ravel()}, {"prox_pm": st.rho_outer}

    def _mg_anchors(self, g: str, st: ADMMState) -> tuple[dict, dict]:
        i = self.names.index(g)
        anchors = {"prox_pm": st.z[i] - st.u_mg[i]}
        rho = {"prox_pm": st.rho_outer}
        if self.nbrs[g]:
            anchors["prox_trade"] = np.concatenate(
                [self._zeta(st, g, n) - st.y[(g, n)] for n in self.nbrs[g]]
            )
            rho["prox_trade"] = st.rho_inner
        return anchors, rho

    # --- subproblems ---------------------------------------------------------------------
    def _solve_dso(self, st: ADMMState, first: bool) -> np.ndarray:
        anchors, rho = self._dso_anchors(st)
        (self.dso.first_solve if first else self.dso.resolve)(anchors, rho)
        if self.settings.refine_losses:  # the loss cone tight at this iterate
            self.refine_rounds += tighten_agent(self.dso, self.dd)
        return self.dso.value("pm").reshape(len(self.names), self.T)

    def _solve_mg(self, g: str, st: ADMMState, first: bool) -> None:
        anchors, rho = self._mg_anchors(g, st)
        agent = self.mgs[g]
        (agent.first_solve if first else agent.resolve)(anchors, rho)

    def _solve_mgs(self, st: ADMMState, first: bool) -> None:
        if self.settings.parallel:
            with ThreadPoolExecutor(len(self.names)) as pool:
                list(pool.map(lambda g: self._solve_mg(g, st, first), self.names))
        else:
            for g in self.names:
                self._solve_mg(g, st, first)

    def _trades(self) -> dict[tuple[str, str], np.ndarray]:
        out = {}
        for g in self.names:
            values = self.mgs[g].value("trade").reshape(len(self.nbrs[g]), self.T)
            out |= {(g, n): values[j] for j, n in enumerate(self.nbrs[g])}
        return out

    # --- loops ---------------------------------------------------------------------------
    def _inner(self, st: ADMMState, first: bool) -> tuple[np.ndarray, int, float, float]:
        """Inner loop among microgrids at fixed outer anchors; returns their exchanges."""
        s = self.settings
        r_in = s_in = 0.0
        for j in range(1, s.max_inner + 1):
            self._solve_mgs(st, first and j == 1)
            r_in, s_in = self._update_inner(st, self._trades())
            if r_in <= s.eps_primal_mw and s_in <= s.eps_dual_mw:
                break
        pm_mg = np.array([self.mgs[g].value("pm") for g in self.names])
        return pm_mg, j, r_in, s_in

    def _update_inner(self, st: ADMMState, trade: dict) -> tuple[float, float]:
        a_rel, r_in, s_in = self.settings.relax, 0.0, 0.0
        for a, b in self.pairs:
            old = st.zeta[(a, b)]
            x_ab = a_rel * trade[(a, b)] + (1 - a_rel) * old  # over-relaxed copies
            x_ba = a_rel * trade[(b, a)] - (1 - a_rel) * old
            new = ((x_ab + st.y[(a, b)]) - (x_ba + st.y[(b, a)])) / 2
            s_in = max(s_in, float(np.abs(new - old).max()))
            st.zeta[(a, b)] = new
            st.y[(a, b)] += x_ab - new
            st.y[(b, a)] += x_ba + new
            r_in = max(r_in, float(np.abs(trade[(a, b)] + trade[(b, a)]).max()))
        return r_in, s_in

    def _update_outer(
        self, st: ADMMState, pm_dso: np.ndarray, pm_mg: np.ndarray
    ) -> tuple[float, float]:
        a_rel = self.settings.relax
        x_dso = a_rel * pm_dso + (1 - a_rel) * st.z  # over-relaxed copies
        x_mg = a_rel * pm_mg + (1 - a_rel) * st.z
        z_new = ((x_dso + st.u_dso) + (x_mg + st.u_mg)) / 2
        s_out = float(np.abs(z_new - st.z).max())
        st.z = z_new
        st.u_dso += x_dso - z_new
        st.u_mg += x_mg - z_new
        return float(np.abs(pm_dso - pm_mg).max()), s_out

    def _balance(self, st: ADMMState, r: float, s: float, which: str) -> None:
        """Residual balancing of one penalty (scaled duals rescaled accordingly)."""
        cfg = self.settings
        rho0 = cfg.rho_outer if which == "outer" else cfg.rho_inner
        rho = st.rho_outer if which == "outer" else st.rho_inner
        s = s * rho / rho0  # the dual residual scales with the penalty (Boyd et al. 3.4.1)
        factor = cfg.tau if r > cfg.mu * s else 1 / cfg.tau if s > cfg.mu * r else 1.0
        factor = float(np.clip(rho * factor, rho0, rho0 * cfg.rho_range)) / rho
        if factor == 1.0:
            return
        if which == "outer":
            st.rho_outer *= factor
            st.u_dso /= factor
            st.u_mg /= factor
        else:
            st.rho_inner *= factor
            for key in st.y:
                st.y[key] = st.y[key] / factor

    def solve(self, h: HorizonInputs, warm: ADMMState | None = None) -> ADMMResult:
        """Run the embedded ADMM on one horizon (from ``warm`` or a cold start)."""
        t0 = time.perf_counter()
        set_dso_inputs(self.dso.model, self.dd, h)
        for g, inp in h.mg.items():
            mg_mod.set_inputs(self.mgs[g].model, inp, h.dt_h)
        st = warm if warm is not None else self.cold_state(h)
        cfg, history, inner_total, converged = self.settings, [], 0, False
        for k in range(1, cfg.max_outer + 1):
            pm_dso = self._solve_dso(st, first=k == 1)
            pm_mg, n_inner, r_in, s_in = self._inner(st, first=k == 1)
            inner_total += n_inner
            r_out, s_out = self._update_outer(st, pm_dso, pm_mg)
            history.append(
                {
                    "outer": k,
                    "inner": n_inner,
                    "r_outer_mw": r_out,
                    "s_outer_mw": s_out,
                    "r_inner_mw": r_in,
                    "s_inner_mw": s_in,
                    "rho_outer": st.rho_outer,
                    "rho_inner": st.rho_inner,
                    "objective": self.objective(),
                }
            )
            if max(r_out, r_in) <= cfg.eps_primal_mw and max(s_out, s_in) <= cfg.eps_dual_mw:
                converged = True
                break
            self._balance(st, r_out, s_out, "outer")
            self._balance(st, r_in, s_in, "inner")
        for agent in [self.dso, *self.mgs.values()]:
            agent.load_solution()
        costs, elapsed = self.costs(), time.perf_counter() - t0
        return ADMMResult(
            sum(costs.values()), costs, converged, k, inner_total, history, st, elapsed
        )

    def costs(self) -> dict[str, float]:
        """Each agent's own cost (CNY) at the current iterate, without penalty terms."""
        return {"DSO": self.dso.own_cost()} | {g: self.mgs[g].own_cost() for g in self.names}

    def objective(self) -> float:
        return float(sum(self.costs().values()))
