"""Microgrid m (lower level): stochastic scheduling with P2P trading under wind uncertainty.

Wind scenarios s with probabilities pi_s. Decisions:

* here-and-now (one value per period, shared by all scenarios): turbine output ``mt``,
  grid purchase ``buy`` and sale ``sell`` at the time-of-use tariff, P2P trades ``trade[n]``
  (> 0: m buys from n), and so the PCC exchange ``pm = buy - sell + sum_n trade[n]``
  (import > 0) — the coupling quantities must be here-and-now;
* recourse (per scenario): storage charge ``ch`` / discharge ``dis`` and energy ``e``,
  wind used ``wind <= forecast_s``, and imbalance ``imb_buy`` / ``imb_sell`` settled at the
  tariff times the imbalance factors (the documented rule for deviations of the realised
  wind from the committed exchange);
* non-anticipativity: the first period's storage power is the same in every scenario (it
  is applied to the grid before the uncertainty resolves).

Balance per scenario and period: mt + wind - ch + dis + pm + imb_buy - imb_sell = load.
Storage: e_t = e_t-1 + eta_ch ch dt - dis dt / eta_dis, bounds, terminal e_T >= e_terminal.
Turbine: 0 <= mt <= max (the minimum stable level would need a commitment binary and is
not modelled by the optimiser), ramp |mt_t - mt_t-1| <= R dt.
Objective (CNY): turbine fuel + grid purchase - grid sale + P2P payments (price x trade;
they cancel between buyer and seller) + wheeling fee on the P2P volume (each side pays half
of ``fee x |trade|``: P2P energy is carried by the DSO network, while grid purchases and
sales already pay network charges in the tariff) + expected storage degradation and
imbalance cost. The fee is a transfer to the DSO: paid here, received by the DSO, so the
coupled problem counts it once, as the microgrids' cost, and the DSO's income is settled
in the accounts. Without it P2P trades would be free and circular trades (m -> n -> k -> m)
would make the problem degenerate.

Simultaneous charge and discharge is never optimal here (eta < 1 and a positive
degradation price make it cost energy and money, and curtailment is free); the models'
solutions are checked for it in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers import blocks
from mgcosim.networks.params import DSOParams, MicrogridParams
from mgcosim.networks.storage import energy_change_mwh


@dataclass(frozen=True)
class MicrogridInputs:
    """One horizon's data of one microgrid (arrays per period of ``dt_h`` hours)."""

    load_mw: np.ndarray
    wind_mw: np.ndarray  # scenarios x periods
    prob: np.ndarray  # scenarios
    buy_price: np.ndarray  # CNY/MWh per period
    sell_price: np.ndarray
    soc_mwh: float  # measured SOC at the horizon start
    mt_prev_mw: float  # turbine output before the horizon
    e_terminal_mwh: float  # storage energy required at the horizon end


def declare_sets(m: pyo.Block, n_periods: int, n_scenarios: int, neighbours: list[str]) -> None:
    m.T = pyo.RangeSet(0, n_periods - 1)
    m.S = pyo.RangeSet(0, n_scenarios - 1)
    m.N = pyo.Set(initialize=neighbours)


def declare_params(m: pyo.Block, dt_h: float) -> None:
    m.dt_h = pyo.Param(initialize=dt_h)  # fixed: the period length is a model constant
    m.demand = pyo.Param(m.T, mutable=True, initialize=0.0)
    m.wind_fc = pyo.Param(m.S, m.T, mutable=True, initialize=0.0)
    m.prob = pyo.Param(m.S, mutable=True, initialize=1.0)
    m.buy_price = pyo.Param(m.T, mutable=True, initialize=0.0)
    m.sell_price = pyo.Param(m.T, mutable=True, initialize=0.0)
    m.soc0 = pyo.Param(mutable=True, initialize=0.0)
    m.mt0 = pyo.Param(mutable=True, initialize=0.0)
    m.e_terminal = pyo.Param(mutable=True, initialize=0.0)


def declare_vars(m: pyo.Block, mg: MicrogridParams, dso: DSOParams) -> None:
    m.mt = pyo.Var(m.T, bounds=(0.0, mg.mt_p_max_mw))
    m.buy = pyo.Var(m.T, bounds=(0.0, mg.grid_buy_max_mw))
    m.sell = pyo.Var(m.T, bounds=(0.0, mg.grid_sell_max_mw))
    m.trade = pyo.Var(m.N, m.T, bounds=(-dso.p2p_max_mw, dso.p2p_max_mw))
    m.pm = pyo.Var(m.T, bounds=(-mg.pcc_p_max_mw, mg.pcc_p_max_mw))
    m.volume = pyo.Var(m.N, m.T, within=pyo.NonNegativeReals)  # |trade|
    m.ch = pyo.Var(m.S, m.T, bounds=(0.0, mg.ess_p_ch_max_mw))
    m.dis = pyo.Var(m.S, m.T, bounds=(0.0, mg.ess_p_dis_max_mw))
    m.e = pyo.Var(m.S, m.T, bounds=(mg.ess_e_min_mwh, mg.ess_e_max_mwh))
    m.wind = pyo.Var(m.S, m.T, within=pyo.NonNegativeReals)
    m.imb_buy = pyo.Var(m.S, m.T, within=pyo.NonNegativeReals)
    m.imb_sell = pyo.Var(m.S, m.T, within=pyo.NonNegativeReals)


def declare_constraints(m: pyo.Block, mg: MicrogridParams) -> None:
    m.exchange = pyo.Constraint(
        m.T, rule=lambda _, t: m.pm[t] == m.buy[t] - m.sell[t] + sum(m.trade[n, t] for n in m.N)
    )
    m.abs_up = pyo.Constraint(m.N, m.T, rule=lambda _, n, t: m.volume[n, t] >= m.trade[n, t])
    m.abs_dn = pyo.Constraint(m.N, m.T, rule=lambda _, n, t: m.volume[n, t] >= -m.trade[n, t])

    def balance(_, s, t):
        supply = m.mt[t] + m.wind[s, t] - m.ch[s, t] + m.dis[s, t] + m.pm[t]
        return supply + m.imb_buy[s, t] - m.imb_sell[s, t] == m.demand[t]

    m.balance = pyo.Constraint(m.S, m.T, rule=balance)
    m.wind_cap = pyo.Constraint(m.S, m.T, rule=lambda _, s, t: m.wind[s, t] <= m.wind_fc[s, t])

    def change(s, t):
        return energy_change_mwh(m.ch[s, t], m.dis[s, t], mg.ess_eta_ch, mg.ess_eta_dis, m.dt_h)

    def before(s, t):
        return m.soc0 if t == 0 else m.e[s, t - 1]

    blocks.declare_soc_dynamics(m, "soc", m.e, before, change, m.S, m.T)
    last = max(m.T)
    m.terminal = pyo.Constraint(m.S, rule=lambda _, s: m.e[s, last] >= m.e_terminal)
    m.na_ch = pyo.Constraint(m.S, rule=lambda _, s: m.ch[s, 0] == m.ch[0, 0])
    m.na_dis = pyo.Constraint(m.S, rule=lambda _, s: m.dis[s, 0] == m.dis[0, 0])

    blocks.declare_ramp_limits(
        m,
        m.mt,
        lambda t: m.mt0 if t == 0 else m.mt[t - 1],
        lambda t: mg.mt_ramp_mw_per_h * m.dt_h,
        m.T,
    )


def declare_costs(m: pyo.Block, mg: MicrogridParams, dso: DSOParams) -> None:
    """Cost terms (CNY) as expressions; ``m.cost`` is their (expected) sum."""
    dt = m.dt_h
    m.fuel_cost = pyo.Expression(expr=mg.mt_cost_cny_per_mwh * dt * pyo.quicksum(m.mt.values()))
    m.grid_cost = pyo.Expression(
        expr=dt * pyo.quicksum(m.buy_price[t] * m.buy[t] - m.sell_price[t] * m.sell[t] for t in m.T)
    )
    m.p2p_cost = pyo.Expression(
        expr=dso.p2p_price_cny_per_mwh * dt * pyo.quicksum(m.trade.values())
    )
    m.wheeling_cost = pyo.Expression(
        expr=0.5 * dso.wheeling_fee_cny_per_mwh * dt * pyo.quicksum(m.volume.values())
    )
    throughput = pyo.quicksum(m.prob[s] * (m.ch[s, t] + m.dis[s, t]) for s in m.S for t in m.T)
    m.degradation_cost = pyo.Expression(expr=mg.ess_deg_cost_cny_per_mwh * dt * throughput)

    def imbalance(s, t):
        buy = dso.imbalance_buy_factor * m.buy_price[t] * m.imb_buy[s, t]
        return m.prob[s] * (buy - dso.imbalance_sell_factor * m.sell_price[t] * m.imb_sell[s, t])

    m.imbalance_cost = pyo.Expression(
        expr=dt * pyo.quicksum(imbalance(s, t) for s in m.S for t in m.T)
    )
    terms = ("fuel", "grid", "p2p", "wheeling", "degradation", "imbalance")
    m.cost = pyo.Expression(expr=sum(m.component(f"{name}_cost") for name in terms))


def add_microgrid(
    m: pyo.Block,
    mg: MicrogridParams,
    dso: DSOParams,
    n_periods: int,
    n_scenarios: int,
    neighbours: list[str],
    dt_h: float = 1.0,
) -> pyo.Block:
    """Populate block ``m`` with microgrid ``mg``'s model (no objective)."""
    declare_sets(m, n_periods, n_scenarios, neighbours)
    declare_params(m, dt_h)
    declare_vars(m, mg, dso)
    declare_constraints(m, mg)
    declare_costs(m, mg, dso)
    return m


def set_inputs(m: pyo.Block, inp: MicrogridInputs, dt_h: float) -> None:
    """Load one horizon's data into the mutable parameters."""
    if abs(pyo.value(m.dt_h) - dt_h) > 1e-12:
        raise ValueError(f"model built for {pyo.value(m.dt_h)} h periods, inputs have {dt_h} h")
    for t in m.T:
        m.demand[t] = float(inp.load_mw[t])
        m.buy_price[t] = float(inp.buy_price[t])
        m.sell_price[t] = float(inp.sell_price[t])
        for s in m.S:
            m.wind_fc[s, t] = float(inp.wind_mw[s, t])
    for s in m.S:
        m.prob[s] = float(inp.prob[s])
    m.soc0 = inp.soc_mwh
    m.mt0 = inp.mt_prev_mw
    m.e_terminal = inp.e_terminal_mwh
