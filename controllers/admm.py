"""Embedded parallel ADMM between the DSO and the microgrids (seed 000, design section 3.3).

Outer loop (DSO <-> microgrids) on the PCC exchanges, with intermediate (consensus)
variables z[m, t] between the DSO's copy ``dso.pm`` and the microgrid's ``mg.pm``:

    DSO:   min cost_D + rho_o/2 |pm_D - z + u_D|^2
    MG m:  min cost_m + rho_o/2 |pm_m - z + u_M|^2 + rho_i/2 sum_n |trade_mn - zeta_mn + y_mn|^2
    z = ((pm_D + u_D) + (pm_M + u_M)) / 2,  u_D += pm_D - z,  u_M += pm_M - z.

Inner loop (among microgrids) on the P2P trades, with consensus zeta_mn = -zeta_nm:
zeta_mn = ((trade_mn + y_mn) - (trade_nm + y_nm)) / 2, y_mn += trade_mn - zeta_mn.
The microgrid subproblems of an inner iteration are independent (solved in parallel
threads when ``parallel`` is set).

Roles: :class:`ADMMCoordinator` is the DSO's side (its model, the consensus values, the
duals, the penalties and their balancing); each microgrid is a
:class:`controllers.mg_agent.MicrogridAgent` holding only its own model. They exchange
only the messages of :mod:`controllers.admm_messages` (anchors and penalties out; PCC
exchange, trades and own cost back): :meth:`ADMMCoordinator.run` is a generator that
yields each batch of requests and is sent the replies, so the same code runs in one
process (:class:`BilevelADMM`) or across mosaik entities (:mod:`sim.agent_sim`).

Penalties adapt by residual balancing
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

from mgcosim.controllers.admm_messages import (
    Exchange,
    Message,
    MessageCount,
    Requests,
    drive,
    local_exchange,
    raise_if_error,
    solve_request,
)
from mgcosim.controllers.admm_model import Agent, ProxHandle
from mgcosim.controllers.coupled import HorizonInputs, neighbours, pairs, set_dso_inputs
from mgcosim.controllers.dso import DSOData, add_dso
from mgcosim.controllers.loss_cuts import tighten_agent
from mgcosim.controllers.mg_agent import MicrogridAgent, expected_exchange_mw
from mgcosim.controllers.prox import add_prox
from mgcosim.networks.params import NetworkData

__all__ = [
    "ADMMCoordinator",
    "ADMMResult",
    "ADMMSettings",
    "ADMMState",
    "Agent",  # re-exported: the solver wrapper lives in controllers.admm_model
    "BilevelADMM",
    "ProxHandle",
]


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
    messages: int = 0  # coordinator <-> microgrid messages, both directions
    bytes: int = 0  # their compact JSON encodings
    mg_plans: dict[str, dict] = field(default_factory=dict)  # each microgrid's own plan


class ADMMCoordinator:
    """The DSO's side of the ADMM: its own model and the method's state, no microgrid model.

    It knows the microgrids by name only (and, through :class:`DSOData`, their PCC buses and
    limits, which are the DSO's network data).
    """

    def __init__(
        self,
        dd: DSOData,
        names: list[str],
        n_periods: int,
        settings: ADMMSettings | None = None,
        dt_h: float = 1.0,
    ) -> None:
        self.dd, self.settings = dd, settings or ADMMSettings()
        self.refine_rounds = 0  # Kelley rounds on the DSO agent so far (all horizons)
        self.names = sorted(names)
        self.T, self.dt_h = n_periods, dt_h
        self.pairs = pairs(self.names)
        self.nbrs = {g: neighbours(self.names, g) for g in self.names}
        self.dso = self._build_dso()
        self.mg_pm: dict[str, np.ndarray] = {}  # the microgrids' last replies
        self.mg_trade: dict[tuple[str, str], np.ndarray] = {}
        self.mg_cost: dict[str, float] = {}

    def _build_dso(self) -> Agent:
        m = add_dso(pyo.ConcreteModel(name="dso"), self.dd, self.T)
        index = [(g, t) for g in self.names for t in range(self.T)]
        prox = add_prox(m, "prox_pm", index, m.pm)
        m.obj = pyo.Objective(expr=m.cost + prox)
        return Agent(m, "DSO subproblem", {"pm": [m.pm[i] for i in index]})

    # --- state ---------------------------------------------------------------------------
    def cold_state(self, pm_guess: dict[str, np.ndarray]) -> ADMMState:
        """Start from the microgrids' expected exchanges (their expected net demand), zero duals."""
        s = self.settings
        z = np.array([np.asarray(pm_guess[g], dtype=float) for g in self.names])
        zero = np.zeros((len(self.names), self.T))
        directed = [(a, b) for a, b in self.pairs] + [(b, a) for a, b in self.pairs]
        zeta, y = ({p: np.zeros(self.T) for p in keys} for keys in (self.pairs, directed))
        return ADMMState(z, zero.copy(), zero.copy(), zeta, y, s.rho_outer, s.rho_inner)

    def _zeta(self, st: ADMMState, m: str, n: str) -> np.ndarray:
        """Consensus value of trade_mn (what m buys from n)."""
        return st.zeta[(m, n)] if m < n else -st.zeta[(n, m)]

    def _dso_anchors(self, st: ADMMState) -> tuple[dict, dict]:
        return {"prox_pm": (st.z - st.u_dso).ravel()}, {"prox_pm": st.rho_outer}

    def _mg_request(self, g: str, st: ADMMState, first: bool) -> Message:
        i = self.names.index(g)
        trade = {n: (self._zeta(st, g, n) - st.y[(g, n)]).tolist() for n in self.nbrs[g]}
        pm_anchor = (st.z[i] - st.u_mg[i]).tolist()
        return solve_request(first, pm_anchor, st.rho_outer, trade, st.rho_inner)

    # --- subproblems ---------------------------------------------------------------------
    def _solve_dso(self, st: ADMMState, first: bool) -> np.ndarray:
        anchors, rho = self._dso_anchors(st)
        (self.dso.first_solve if first else self.dso.resolve)(anchors, rho)
        if self.settings.refine_losses:  # the loss cone tight at this iterate
            self.refine_rounds += tighten_agent(self.dso, self.dd)
        return self.dso.value("pm").reshape(len(self.names), self.T)

    def _take(self, replies: Requests) -> None:
        """The microgrids' answers to a solve request."""
        raise_if_error(replies)
        for g in self.names:
            reply = replies[g]
            self.mg_pm[g] = np.asarray(reply["pm"], dtype=float)
            for n in self.nbrs[g]:
                self.mg_trade[(g, n)] = np.asarray(reply["trade"][n], dtype=float)
            self.mg_cost[g] = float(reply["cost"])

    def _ask(self, requests: Requests, count: MessageCount) -> Exchange:
        count.add(requests)
        replies = yield requests
        count.add(replies)
        return replies

    # --- loops ---------------------------------------------------------------------------
    def _inner(self, st: ADMMState, first: bool, count: MessageCount) -> Exchange:
        """Inner loop among microgrids at fixed outer anchors; returns their exchanges."""
        s = self.settings
        r_in = s_in = 0.0
        for j in range(1, s.max_inner + 1):
            requests = {g: self._mg_request(g, st, first and j == 1) for g in self.names}
            self._take((yield from self._ask(requests, count)))
            r_in, s_in = self._update_inner(st, self.mg_trade)
            if r_in <= s.eps_primal_mw and s_in <= s.eps_dual_mw:
                break
        pm_mg = np.array([self.mg_pm[g] for g in self.names])
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

    def run(
        self,
        h: HorizonInputs,
        warm: ADMMState | None = None,
        pm_guess: dict[str, np.ndarray] | None = None,
    ) -> Exchange:
        """One horizon, as a generator of message batches (see :func:`admm_messages.drive`).

        ``h`` needs only the DSO's part (loads, PV, the microgrids' reactive imports,
        topology); a cold start (no ``warm``) needs ``pm_guess``, each microgrid's expected
        exchange. Returns the :class:`ADMMResult`, the microgrids' plans included.
        """
        t0 = time.perf_counter()
        set_dso_inputs(self.dso.model, self.dd, h)
        st = warm if warm is not None else self.cold_state(pm_guess)
        cfg, history, inner_total, converged = self.settings, [], 0, False
        count = MessageCount()
        for k in range(1, cfg.max_outer + 1):
            pm_dso = self._solve_dso(st, first=k == 1)
            pm_mg, n_inner, r_in, s_in = yield from self._inner(st, k == 1, count)
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
        self.dso.load_solution()
        finished = yield from self._ask({g: {"kind": "finish"} for g in self.names}, count)
        raise_if_error(finished)
        costs, elapsed = self.costs(), time.perf_counter() - t0
        return ADMMResult(
            sum(costs.values()),
            costs,
            converged,
            k,
            inner_total,
            history,
            st,
            elapsed,
            count.messages,
            count.bytes,
            {g: finished[g]["plan"] for g in self.names},
        )

    def costs(self) -> dict[str, float]:
        """Each agent's own cost (CNY) at the current iterate, without penalty terms."""
        return {"DSO": self.dso.own_cost()} | {g: self.mg_cost[g] for g in self.names}

    def objective(self) -> float:
        return float(sum(self.costs().values()))


class BilevelADMM(ADMMCoordinator):
    """The coordinator with its microgrid agents in this process; :meth:`solve` runs one
    horizon, every exchange going through the agents' messages (JSON round trips)."""

    def __init__(
        self,
        dd: DSOData,
        data: NetworkData,
        n_periods: int,
        n_scenarios: int,
        settings: ADMMSettings | None = None,
        dt_h: float = 1.0,
    ) -> None:
        super().__init__(dd, [mg.name for mg in data.microgrids], n_periods, settings, dt_h)
        params = {mg.name: mg for mg in data.microgrids}
        self.mgs = {
            g: MicrogridAgent(params[g], data.dso, self.nbrs[g], n_periods, n_scenarios, dt_h)
            for g in self.names
        }
        local = local_exchange({g: a.handle for g, a in self.mgs.items()})
        self._respond = self._parallel(local) if self.settings.parallel else local

    def _parallel(self, local):
        def respond(requests: Requests) -> Requests:
            with ThreadPoolExecutor(len(requests)) as pool:
                answers = pool.map(lambda g: local({g: requests[g]})[g], list(requests))
                return dict(zip(requests, answers, strict=True))

        return respond

    def solve(self, h: HorizonInputs, warm: ADMMState | None = None) -> ADMMResult:
        """Run the embedded ADMM on one horizon (from ``warm`` or a cold start)."""
        for g, inp in h.mg.items():
            self.mgs[g].set_inputs(inp)
        guess = {g: expected_exchange_mw(h.mg[g]) for g in self.names}
        return drive(self.run(h, warm, guess), self._respond)
