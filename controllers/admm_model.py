"""One ADMM agent's optimisation model in a persistent HiGHS instance (fast re-solves).

Shared by both roles of :mod:`controllers.admm`: the DSO coordinator and every
:class:`controllers.mg_agent.MicrogridAgent` hold one :class:`Agent` each, for their own
model only. An iteration moves the proximal anchors and penalties (cut right-hand sides and
epigraph costs, :mod:`controllers.prox`) and re-solves from the last basis.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers.prox import cut_lower_bounds, set_anchor
from mgcosim.controllers.solve import FastLP, persistent_highs, solve_optimal


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
