"""A microgrid's side of the bilevel ADMM: an agent that holds only its own model and data.

Built from its own :class:`networks.params.MicrogridParams` and the public market rules
(:class:`networks.params.DSOParams`: P2P price, wheeling fee, imbalance factors), it answers
the coordinator's messages (:mod:`controllers.admm_messages`): a ``"solve"`` request gives
the proximal anchors and penalties of its PCC exchange and trades, the reply its exchange,
trades and own cost; ``"finish"`` returns its plan (:func:`mg_plan`). Its horizon data (its
load and wind forecasts, its storage and turbine state, the tariff) are its own: given by
:meth:`MicrogridAgent.set_inputs`, never through the coordinator.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers import microgrid as mg_mod
from mgcosim.controllers.admm_messages import Message, error_reply
from mgcosim.controllers.admm_model import Agent
from mgcosim.controllers.base import Forecasts, Measurements
from mgcosim.controllers.coupled import neighbours
from mgcosim.controllers.errors import OptimisationError
from mgcosim.controllers.horizon import microgrid_inputs, tariff_per_period
from mgcosim.controllers.prox import add_prox
from mgcosim.controllers.rule_based import RuleBasedController
from mgcosim.networks.params import DSOParams, MicrogridParams, NetworkData


class MicrogridAgent:
    """Microgrid ``params.name``'s ADMM subproblem, answering the coordinator's messages."""

    def __init__(
        self,
        params: MicrogridParams,
        market: DSOParams,
        neighbours: list[str],
        n_periods: int,
        n_scenarios: int,
        dt_h: float = 1.0,
    ) -> None:
        self.name, self.params, self.nbrs = params.name, params, list(neighbours)
        self.T, self.dt_h = n_periods, dt_h
        m = mg_mod.add_microgrid(
            pyo.ConcreteModel(name=params.name),
            params,
            market,
            n_periods,
            n_scenarios,
            self.nbrs,
            dt_h,
        )
        prox = add_prox(m, "prox_pm", list(range(n_periods)), m.pm)
        index = [(n, t) for n in self.nbrs for t in range(n_periods)]
        if self.nbrs:
            prox = prox + add_prox(m, "prox_trade", index, m.trade)
        m.obj = pyo.Objective(expr=m.cost + prox)
        coupling = {"pm": [m.pm[t] for t in range(n_periods)], "trade": [m.trade[i] for i in index]}
        self.agent = Agent(m, f"microgrid {params.name} subproblem", coupling)

    @property
    def model(self) -> pyo.ConcreteModel:
        return self.agent.model

    def set_inputs(self, inp: mg_mod.MicrogridInputs) -> None:
        """This horizon's own data (forecasts, state, tariff) into the model."""
        mg_mod.set_inputs(self.model, inp, self.dt_h)

    def handle(self, msg: Message) -> Message:
        """Answer one coordinator message; a failed solve answers an error message."""
        try:
            if msg["kind"] == "solve":
                return self._solve(msg)
            if msg["kind"] == "finish":
                self.agent.load_solution()
                return {"plan": mg_plan(self.model, self.params, self.T)}
        except OptimisationError as err:
            return error_reply(err)
        raise ValueError(f"microgrid agent {self.name}: unknown message kind {msg['kind']!r}")

    def _solve(self, msg: Message) -> Message:
        anchors = {"prox_pm": np.asarray(msg["pm_anchor"], dtype=float)}
        rho = {"prox_pm": msg["rho_pm"]}
        if self.nbrs:
            anchors["prox_trade"] = np.concatenate(
                [np.asarray(msg["trade_anchor"][n], dtype=float) for n in self.nbrs]
            )
            rho["prox_trade"] = msg["rho_trade"]
        agent = self.agent
        (agent.first_solve if msg["first"] else agent.resolve)(anchors, rho)
        trade = agent.value("trade").reshape(len(self.nbrs), self.T)
        return {
            "pm": agent.value("pm").tolist(),
            "trade": {n: trade[j].tolist() for j, n in enumerate(self.nbrs)},
            "cost": float(agent.own_cost()),
        }


def expected_exchange_mw(inp: mg_mod.MicrogridInputs) -> np.ndarray:
    """Expected net demand per period: the ADMM's cold start of the PCC exchange."""
    return inp.load_mw - inp.prob @ inp.wind_mw


def mg_plan(m: pyo.Block, mg: MicrogridParams, n_periods: int) -> dict:
    """A solved microgrid model's plan (lists of floats): unit set-points per period and
    what it expects in the first period (see :mod:`controllers.optimal` for the rules)."""
    S, T = list(m.S), range(n_periods)
    prob = np.array([pyo.value(m.prob[s]) for s in S])
    ch = np.array([[pyo.value(m.ch[s, t]) for t in T] for s in S])
    dis = np.array([[pyo.value(m.dis[s, t]) for t in T] for s in S])
    wind = np.array([[pyo.value(m.wind[s, t]) for t in T] for s in S])
    fc = np.array([[pyo.value(m.wind_fc[s, t]) for t in T] for s in S])
    mt = [pyo.value(m.mt[t]) for t in T]
    curtailed = (fc - wind > 1e-6).all(axis=0)
    return {
        "setpoints_mw": {
            f"{mg.name}_mt": mt,
            f"{mg.name}_ess": (prob @ (ch - dis)).tolist(),  # period 0: the same in every scenario
            f"{mg.name}_wind": np.where(curtailed, wind.max(axis=0), mg.wind_p_rated_mw).tolist(),
        },
        "mt_plan_mw": mt,
        "exchange_mw": float(pyo.value(m.pm[0])),
        "grid_mw": float(pyo.value(m.buy[0] - m.sell[0])),
        "soc_end_mwh": sum(pyo.value(m.prob[s] * m.e[s, 0]) for s in m.S),
        "trades_mw": {n: pyo.value(m.trade[n, 0]) for n in m.N},
    }


class MicrogridController:
    """A microgrid's controller in agent mode: its own forecasts, state and plan history
    in, the horizon's boundary figures and ADMM answers out (:mod:`sim.agent_sim`).

    Extra messages of the controller step (not counted as ADMM messages):

    * ``"horizon"``: this step's inputs are set from its own forecasts; the reply gives
      ``pm_guess`` (expected exchange per period, the ADMM's cold start and the switch
      planner's guess) and ``q_mvar`` (its reactive import per period, the DSO's input);
    * ``"fallback"``: its rule-based set-points (``setpoints_mw``) for the coming physical
      steps, when the DSO's side failed (the baseline of :mod:`controllers.rule_based`).
    """

    def __init__(
        self,
        data: NetworkData,
        name: str,
        names: list[str],
        start_hour: float,
        n_periods: int,
        period_h: float,
        n_scenarios: int,
        plan_steps: int,
    ) -> None:
        params = data.microgrid(name)
        # its own view: its parameters, the public tariff and market rules, no PV, no others
        self.data = dataclasses.replace(data, microgrids=(params,), pv=())
        self.params, self.start_hour = params, start_hour
        self.T, self.period_h = n_periods, period_h
        nbrs = neighbours(names, name)
        self.agent = MicrogridAgent(params, data.dso, nbrs, n_periods, n_scenarios, period_h)
        self.baseline = RuleBasedController(self.data, plan_steps)
        self.mt_plan: np.ndarray | None = None  # its last plan's turbine output

    def handle(self, msg: Message, meas: Measurements, fc: Forecasts) -> Message:
        if msg["kind"] == "horizon":
            return self._horizon(meas, fc)
        if msg["kind"] == "fallback":
            plan = self.baseline.plan(meas, fc)
            return {"setpoints_mw": {u: v.tolist() for u, v in plan.setpoints_mw.items()}}
        reply = self.agent.handle(msg)
        if msg["kind"] == "finish" and "plan" in reply:
            self.mt_plan = np.array(reply["plan"]["mt_plan_mw"])
        return reply

    def _horizon(self, meas: Measurements, fc: Forecasts) -> Message:
        per = int(round(self.period_h / fc.step_h))
        first_hour = self.start_hour + fc.time_s / 3600
        buy, sell = (
            tariff_per_period(self.data, first_hour, self.period_h, self.T, f"{kind}_cny_per_mwh")
            for kind in ("buy_price", "sell_price")
        )
        mt = np.zeros(self.T)  # the last plan moved forward one period (last value held)
        if self.mt_plan is not None:
            mt = np.r_[self.mt_plan[1:], self.mt_plan[-1:]]
        inp, q = microgrid_inputs(fc, meas, self.params, buy, sell, per, self.T, mt)
        self.agent.set_inputs(inp)
        return {"pm_guess": expected_exchange_mw(inp).tolist(), "q_mvar": q.tolist()}
