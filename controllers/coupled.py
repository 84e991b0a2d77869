"""The coupled problem of one horizon: its data, and the centralised reference model.

Coupling constraints (section 3.3 of the design):

* outer: the DSO's exchange at microgrid m's PCC equals the microgrid's total exchange,
  ``dso.pm[m, t] == mg[m].pm[t]`` (grid trade plus all its P2P trades, which flow through
  the DSO network);
* inner: P2P trades agree, ``mg[a].trade[b, t] + mg[b].trade[a, t] == 0``.

The centralised model puts every agent's model in one Pyomo model, adds these equalities
and minimises the sum of the agents' costs: the very problem the ADMM decomposes.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers import dso as dso_mod
from mgcosim.controllers import microgrid as mg_mod
from mgcosim.controllers.dso import DSOData
from mgcosim.networks.params import NetworkData


@dataclass(frozen=True)
class HorizonInputs:
    """Everything one horizon's optimisation needs, per period of ``dt_h`` hours."""

    dt_h: float
    dso_load_mw: dict[int, np.ndarray]  # per IEEE bus
    pv_mw: dict[str, np.ndarray]
    mg: dict[str, mg_mod.MicrogridInputs]
    mg_q_mvar: dict[str, np.ndarray]
    topology: list[dict[int, bool]]  # closed branches per period

    @property
    def n_periods(self) -> int:
        return len(self.topology)


def pairs(names: list[str]) -> list[tuple[str, str]]:
    """Trading pairs (every microgrid may trade with every other one)."""
    return list(combinations(sorted(names), 2))


def neighbours(names: list[str], name: str) -> list[str]:
    return [n for n in sorted(names) if n != name]


def set_dso_inputs(m: pyo.Block, dd: DSOData, h: HorizonInputs) -> None:
    m.dt_h = h.dt_h
    dso_mod.set_loads_mw(m, dd, h.dso_load_mw)
    dso_mod.set_pv(m, h.pv_mw)
    dso_mod.set_mg_q(m, h.mg_q_mvar)
    for t, closed in enumerate(h.topology):
        for line, state in closed.items():
            m.alpha_fixed[line, t] = float(state)


def build_centralised_model(
    dd: DSOData,
    data: NetworkData,
    n_periods: int,
    n_scenarios: int,
    dt_h: float = 1.0,
    binary: bool = False,
) -> pyo.ConcreteModel:
    """DSO + all microgrids + coupling equalities, minimising the total cost.

    With ``binary=False`` the topology is fixed per period (``dso.alpha_fixed``); with
    ``binary=True`` the switches are decisions (radiality, switching budget): the
    monolithic MILP that serves as the reference bound of the decomposed method.
    """
    names = [mg.name for mg in data.microgrids]
    m = pyo.ConcreteModel(name="centralised")
    m.dso = pyo.Block()
    dso_mod.add_dso(m.dso, dd, n_periods, binary)
    m.MG = pyo.Set(initialize=names)
    m.mg = pyo.Block(m.MG)
    for mg in data.microgrids:
        mg_mod.add_microgrid(
            m.mg[mg.name], mg, data.dso, n_periods, n_scenarios, neighbours(names, mg.name), dt_h
        )
    m.T = pyo.RangeSet(0, n_periods - 1)
    m.pcc = pyo.Constraint(m.MG, m.T, rule=lambda _, g, t: m.dso.pm[g, t] == m.mg[g].pm[t])
    m.PAIRS = pyo.Set(initialize=pairs(names), dimen=2)
    m.p2p = pyo.Constraint(
        m.PAIRS, m.T, rule=lambda _, a, b, t: m.mg[a].trade[b, t] + m.mg[b].trade[a, t] == 0
    )
    m.obj = pyo.Objective(expr=m.dso.cost + sum(m.mg[g].cost for g in m.MG))
    return m


def set_centralised_inputs(m: pyo.ConcreteModel, dd: DSOData, h: HorizonInputs) -> None:
    set_dso_inputs(m.dso, dd, h)
    for name, inp in h.mg.items():
        mg_mod.set_inputs(m.mg[name], inp, h.dt_h)
