"""Embedded parallel ADMM between the DSO and the microgrids (seed 000, design section 3.3).

Outer loop (DSO <-> microgrids) on the PCC exchanges, with intermediate (consensus)
variables z[m, t] between the DSO's copy ``dso.pm`` and the microgrid's ``mg.pm``:

    DSO:   min cost_D + rho_o/2 |pm_D - z + u_D|^2
    MG m:  min cost_m + rho_o/2 |pm_m - z + u_M|^2 + rho_i/2 sum_n |trade_mn - zeta_mn + y_mn|^2
    z = ((pm_D + u_D) + (pm_M + u_M)) / 2,  u_D += pm_D - z,  u_M += pm_M - z.

Inner loop (among microgrids) on the P2P trades, with consensus zeta_mn = -zeta_nm:
zeta_mn = ((trade_mn + y_mn) - (trade_nm + y_nm)) / 2, y_mn += trade_mn - zeta_mn.
The microgrid subproblems of an inner iteration are independent (solved in parallel
threads when ``parallel`` is set), and so is the DSO's subproblem from the microgrids':
its re-solve runs in the DSO's thread during their inner loop (``dso_beside_microgrids``).

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

Message delay and loss (``ADMMSettings.comms``, a scenario's ``[communication]`` table):
every exchange passes :meth:`ADMMCoordinator._ask`, which draws each message's fate and
applies the fallbacks of :mod:`controllers.comms` (a missing reply: that microgrid's
consensus rows held, or its last value used; a missing plan:
:class:`controllers.errors.CommunicationError`). Without it the messages and results are
those of a perfect network.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
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
from mgcosim.controllers.comms import CommStats, CommunicationModel, CommunicationSettings
from mgcosim.controllers.coupled import HorizonInputs, neighbours, pairs, set_dso_inputs
from mgcosim.controllers.dso import DSOData, add_dso
from mgcosim.controllers.errors import CommunicationError
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
    parallel: bool = False  # the in-process microgrids' solves of an exchange in threads
    # the DSO's re-solve in a thread beside the microgrids' inner loop: both start from the
    # same consensus values, so the iterates are those of one after the other
    dso_beside_microgrids: bool = True
    # Kelley rounds on the DSO agent's loss cone after each of its solves
    # (controllers.loss_cuts); False: the initial tangent cuts only (measured -4.3 % losses)
    refine_losses: bool = True
    # message loss and delay on the DSO <-> microgrid links (None: a perfect network)
    comms: CommunicationSettings | None = None


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
        zeta, y = ({k: _shift(v, periods) for k, v in d.items()} for d in (self.zeta, self.y))
        z, u_dso, u_mg = (_shift(a, periods) for a in (self.z, self.u_dso, self.u_mg))
        return ADMMState(z, u_dso, u_mg, zeta, y, self.rho_outer, self.rho_inner)


def _shift(a: np.ndarray, periods: int = 1) -> np.ndarray:
    """``a`` moved forward by ``periods`` along its last axis, its last values repeated."""
    return np.concatenate([a[..., periods:], np.repeat(a[..., -1:], periods, -1)], -1)


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
    comm: CommStats | None = None  # lost / late messages and fallbacks (with comms only)


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
        self._dso_thread: ThreadPoolExecutor | None = None  # made at the first re-solve
        self.mg_pm: dict[str, np.ndarray] = {}  # the microgrids' last replies
        self.mg_trade: dict[tuple[str, str], np.ndarray] = {}
        self.mg_cost: dict[str, float] = {}
        comms = self.settings.comms
        self.comms = CommunicationModel(comms) if comms is not None else None
        self._new_horizon(0)

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

    def _mg_request(self, g: str, st: ADMMState, first: bool) -> Message:
        i = self.names.index(g)
        trade = {n: (self._zeta(st, g, n) - st.y[(g, n)]).tolist() for n in self.nbrs[g]}
        pm_anchor = (st.z[i] - st.u_mg[i]).tolist()
        return solve_request(first, pm_anchor, st.rho_outer, trade, st.rho_inner)

    # --- subproblems ---------------------------------------------------------------------
    def _start_dso(self, st: ADMMState, first: bool) -> Future | None:
        """Start the DSO's solve at the current consensus; a re-solve runs in the DSO's
        thread (``dso_beside_microgrids``), the horizon's first solve (a Pyomo solve) here."""
        anchors, rho = {"prox_pm": (st.z - st.u_dso).ravel()}, {"prox_pm": st.rho_outer}
        if first or not self.settings.dso_beside_microgrids:
            (self.dso.first_solve if first else self.dso.resolve)(anchors, rho)
            return None
        if self._dso_thread is None:
            self._dso_thread = ThreadPoolExecutor(1, thread_name_prefix="dso")
        return self._dso_thread.submit(self.dso.resolve, anchors, rho)

    def _dso_exchange(self, job: Future | None) -> np.ndarray:
        """The DSO's exchanges once its solve is done (its errors raised here)."""
        if job is not None:
            job.result()
        if self.settings.refine_losses:  # the loss cone tight at this iterate
            self.refine_rounds += tighten_agent(self.dso, self.dd)
        return self.dso.value("pm").reshape(len(self.names), self.T)

    def _take(self, replies: Requests, st: ADMMState) -> None:
        """The microgrids' answers to a solve request (a missing one: its fallback)."""
        raise_if_error(replies)
        self._fresh = True  # every reply arrived: the stopping test may pass
        self._held: list[str] = []  # microgrids whose consensus is held this iteration
        for g in self.names:
            reply = replies.get(g)
            if reply is None or "pm" not in reply:
                self._missing(g, st)
                continue
            self._assumed.discard(g)
            self.mg_pm[g] = np.asarray(reply["pm"], dtype=float)
            for n in self.nbrs[g]:
                self.mg_trade[(g, n)] = np.asarray(reply["trade"][n], dtype=float)
            self.mg_cost[g] = float(reply["cost"])

    def _missing(self, g: str, st: ADMMState) -> None:
        """No reply from ``g`` in time: its last value stays; none yet: the consensus."""
        self.comm_stats.stale += 1
        self._fresh = False
        if self.comms.settings.missing_reply == "hold":
            self._held.append(g)
        if g in self.mg_pm and g not in self._assumed:
            return
        self._assumed.add(g)
        self.mg_pm[g] = st.z[self.names.index(g)].copy()
        for n in self.nbrs[g]:
            self.mg_trade[(g, n)] = self._zeta(st, g, n).copy()
        self.mg_cost[g] = float("nan")  # unknown to the coordinator

    # --- communication -------------------------------------------------------------------
    def _new_horizon(self, time_s: int, warm: ADMMState | None = None) -> None:
        """Reset the per-horizon message state; with comms, carry the last replies over."""
        self._time_s, self._exchange = int(time_s), 0
        self._started: set[str] = set()  # microgrids that received a solve request
        self._pending: Requests = {}  # late replies, taken at the next exchange
        self._assumed: set[str] = set()  # microgrids standing at the consensus values
        self._fresh = True  # the last exchange brought every reply
        self._held = []
        self.comm_stats = CommStats()
        if self.comms is None:
            return
        if warm is None:
            self.mg_pm, self.mg_trade, self.mg_cost = {}, {}, {}
            return
        self.mg_pm = {g: _shift(v) for g, v in self.mg_pm.items()}
        self.mg_trade = {k: _shift(v) for k, v in self.mg_trade.items()}
        self.mg_cost = {g: float("nan") for g in self.mg_cost}  # last horizon's: unknown now

    def _ask(self, requests: Requests, count: MessageCount) -> Exchange:
        """One exchange; returns the replies received in time (all of them without comms)."""
        if self.comms is not None:
            return (yield from self._ask_faulty(requests, count))
        count.add(requests)
        replies = yield requests
        count.add(replies)
        self._started.update(requests)
        return replies

    def _ask_faulty(self, requests: Requests, count: MessageCount) -> Exchange:
        fates = self.comms.draw(self._time_s, self._exchange, list(requests))
        self._exchange += 1
        stats = self.comm_stats
        count.add(requests)  # sent, lost ones included
        delivered = {g: m for g, m in requests.items() if not fates[g].request_lost}
        stats.lost += len(requests) - len(delivered)
        self._started.update(g for g, m in delivered.items() if m["kind"] == "solve")
        replies = (yield delivered) if delivered else {}  # nobody to ask: no exchange
        count.add(replies)
        arrived, self._pending = self._pending, {}
        for g, reply in replies.items():
            if fates[g].reply_lost:
                stats.lost += 1
            elif fates[g].late:
                stats.late += 1
                self._pending[g] = reply
            else:
                arrived[g] = reply
        return arrived

    def _finish(self, count: MessageCount) -> Exchange:
        """Each microgrid's plan (``finish``, repeated with comms); returns them by name."""
        plans: dict[str, dict] = {}
        attempts = self.comms.settings.finish_attempts if self.comms is not None else 1
        for attempt in range(attempts):
            ask = [g for g in self.names if g in self._started and g not in plans]
            if not ask:
                break
            if attempt:
                self.comm_stats.finish_retries += len(ask)
            got = yield from self._ask({g: {"kind": "finish"} for g in ask}, count)
            raise_if_error(got)
            plans |= {g: r["plan"] for g, r in got.items() if "plan" in r}
        for g in self.names:
            if g not in self._started:
                raise CommunicationError(f"communication: no solve request reached {g}")
            if g not in plans:
                raise CommunicationError(
                    f"communication: no plan from {g} after {attempts} finish attempts"
                )
        return plans

    # --- loops ---------------------------------------------------------------------------
    def _inner(self, st: ADMMState, count: MessageCount) -> Exchange:
        """Inner loop among microgrids at fixed outer anchors; returns their exchanges."""
        s = self.settings
        r_in = s_in = 0.0
        for j in range(1, s.max_inner + 1):  # noqa: B007 (j: the count after the loop)
            # a first solve pushes the horizon's data: again while it has not reached g
            requests = {g: self._mg_request(g, st, g not in self._started) for g in self.names}
            self._take((yield from self._ask(requests, count)), st)
            r_in, s_in = self._update_inner(st, self.mg_trade)
            if r_in <= s.eps_primal_mw and s_in <= s.eps_dual_mw and self._fresh:
                break
        pm_mg = np.array([self.mg_pm[g] for g in self.names])
        return pm_mg, j, r_in, s_in

    def _update_inner(self, st: ADMMState, trade: dict) -> tuple[float, float]:
        a_rel, r_in, s_in = self.settings.relax, 0.0, 0.0
        for a, b in self.pairs:
            if a in self._held or b in self._held:
                continue
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
        """The outer update, without the rows of the microgrids whose consensus is held."""
        rows = [i for i, g in enumerate(self.names) if g not in self._held]
        if not rows:
            return 0.0, 0.0
        a_rel, z = self.settings.relax, st.z[rows]
        x_dso = a_rel * pm_dso[rows] + (1 - a_rel) * z  # over-relaxed copies
        x_mg = a_rel * pm_mg[rows] + (1 - a_rel) * z
        z_new = ((x_dso + st.u_dso[rows]) + (x_mg + st.u_mg[rows])) / 2
        st.z[rows] = z_new
        st.u_dso[rows] += x_dso - z_new
        st.u_mg[rows] += x_mg - z_new
        return float(np.abs(pm_dso[rows] - pm_mg[rows]).max()), float(np.abs(z_new - z).max())

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
        time_s: int = 0,
    ) -> Exchange:
        """One horizon, as a generator of message batches (see :func:`admm_messages.drive`).

        ``h`` needs only the DSO's part (loads, PV, the microgrids' reactive imports,
        topology); a cold start (no ``warm``) needs ``pm_guess``, each microgrid's expected
        exchange. ``time_s``: the horizon's start, which seeds its message faults (comms).
        Returns the :class:`ADMMResult`, the microgrids' plans included.
        """
        t0 = time.perf_counter()
        self._new_horizon(time_s, warm)
        set_dso_inputs(self.dso.model, self.dd, h)
        st = warm if warm is not None else self.cold_state(pm_guess)
        cfg, history, inner_total, converged = self.settings, [], 0, False
        count = MessageCount()
        for k in range(1, cfg.max_outer + 1):
            dso_job = self._start_dso(st, first=k == 1)
            try:
                pm_mg, n_inner, r_in, s_in = yield from self._inner(st, count)
            finally:  # a failed exchange leaves no solve running on the DSO's model
                wait([dso_job] if dso_job is not None else [])
            pm_dso = self._dso_exchange(dso_job)
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
            small = max(r_out, r_in) <= cfg.eps_primal_mw and max(s_out, s_in) <= cfg.eps_dual_mw
            if small and self._fresh:  # not on stale values (controllers.comms)
                converged = True
                break
            self._balance(st, r_out, s_out, "outer")
            self._balance(st, r_in, s_in, "inner")
        self.dso.load_solution()
        plans = yield from self._finish(count)
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
            {g: plans[g] for g in self.names},
            self.comm_stats if self.comms is not None else None,
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

    def solve(self, h: HorizonInputs, warm: ADMMState | None = None, time_s: int = 0) -> ADMMResult:
        """Run the embedded ADMM on one horizon (from ``warm`` or a cold start); ``time_s``
        is the horizon's start (it seeds the message faults of ``settings.comms``)."""
        for g, inp in h.mg.items():
            self.mgs[g].set_inputs(inp)
        guess = {g: expected_exchange_mw(h.mg[g]) for g in self.names}
        return drive(self.run(h, warm, guess, time_s), self._respond)
