"""One place that runs HiGHS through Pyomo and accepts only optimal results.

No solve here has a wall-clock limit: a result taken at a time limit is whatever incumbent
the clock allowed, so it changes with machine load. MIPs stop at a relative gap or at a
node limit (:class:`MipLimits`), HiGHS runs on ``SOLVER_THREADS`` threads, and its branch
and bound is then deterministic: the same model gives the same answer on any machine load.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import TerminationCondition

from mgcosim.controllers.errors import InfeasibleError, OptimisationError

INFEASIBLE = {
    TerminationCondition.provenInfeasible,
    TerminationCondition.locallyInfeasible,
    TerminationCondition.infeasibleOrUnbounded,
}


SOLVER_THREADS = 1  # fixed: HiGHS's results are reproducible for a given thread count


@dataclass(frozen=True)
class MipLimits:
    """Deterministic stopping rules of a MIP solve, and which of HiGHS's searches run.

    ``rel_gap``: stop when (incumbent - bound) / |incumbent| <= rel_gap (status optimal);
    ``node_limit``: stop after this many branch-and-bound nodes; the incumbent is then
    accepted with status ``node_limit`` and its gap recorded (never on a wall clock);
    ``sub_mip_heuristics``: HiGHS's RINS and RENS, sub-MIPs that search for an incumbent
    (:func:`solve_mip` switches them off for a solve from a MIP start).
    """

    rel_gap: float = 1e-4
    node_limit: int = 10_000
    abs_gap: float | None = None
    sub_mip_heuristics: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.rel_gap < 1:
            raise ValueError(f"mip rel_gap {self.rel_gap}: need 0 <= rel_gap < 1")
        if self.node_limit < 1:
            raise ValueError(f"mip node_limit {self.node_limit}: need at least 1 node")

    def options(self) -> dict:
        """Keyword options of a Pyomo HiGHS solve."""
        out = {
            "rel_gap": self.rel_gap,
            "threads": SOLVER_THREADS,
            "solver_options": {"mip_max_nodes": int(self.node_limit)},
        }
        if not self.sub_mip_heuristics:
            out["solver_options"] |= {
                "mip_heuristic_run_rins": False,
                "mip_heuristic_run_rens": False,
            }
        if self.abs_gap is not None:
            out["abs_gap"] = self.abs_gap
        return out


@dataclass(frozen=True)
class SolveRecord:
    """What a solve returned: ``status`` is ``optimal`` (an LP's optimum, or a MIP within
    its gap) or ``node_limit`` (the incumbent at the node limit); ``gap`` is relative.
    The work, deterministic for a given model and thread count unlike ``time_s``:
    branch-and-bound ``nodes`` (0 for an LP) and ``lp_iterations`` (simplex)."""

    status: str
    objective: float
    bound: float
    gap: float
    time_s: float
    nodes: int = 0
    lp_iterations: int = 0


def solve_mip(
    model: pyo.Block,
    solver,
    what: str,
    limits: MipLimits,
    start: ComponentMap | None = None,
) -> SolveRecord:
    """Solve a MIP and load its solution; an incumbent stopped by the node limit is used
    (status ``node_limit``, its gap recorded). Errors as :func:`solve_optimal`.

    ``start``: values of some of the model's integer variables (a Pyomo ``ComponentMap``
    variable -> value), a MIP start (``solver`` a
    :func:`persistent_highs`). HiGHS completes it by a MIP over the other variables and
    starts from it when feasible; an infeasible start is dropped (HiGHS logs it). A started
    solve runs without HiGHS's RINS and RENS sub-MIPs: the start is the incumbent they
    would search for (reconfiguration candidates 0.58 of the cold solves' time,
    ``benchmarks/bench_candidates.py``; N-1 restoration of branch 2 at the 1e-3 gap 11.6 s
    -> 8.2 s, ``benchmarks/bench_restore_n2.py``). A start changes which solution within
    the gap is returned, never the limits: the same model and start give the same result
    on any machine.
    """
    t0 = time.perf_counter()
    if start:
        set_mip_start(model, solver, start)
        limits = replace(limits, sub_mip_heuristics=False)
    record = _solve(model, solver, what, limits, accept_node_limit=True)
    return replace(record, time_s=time.perf_counter() - t0)  # the start's loading included


def last_binaries(model: pyo.Block) -> ComponentMap | None:
    """The binaries' values of the model's last solve, rounded, as a MIP start for
    :func:`solve_mip` (None before a solve, or for a model without binaries)."""
    binaries = [v for v in model.component_data_objects(pyo.Var) if v.is_binary()]
    if not binaries or any(v.value is None for v in binaries):
        return None
    return ComponentMap((v, float(round(v.value))) for v in binaries)


def set_mip_start(model: pyo.Block, solver, start: ComponentMap) -> None:
    """Hand ``start`` to the next solve of ``model`` by the persistent HiGHS ``solver``.

    Pyomo pushes its updates (bounds, fixings) into HiGHS before it runs, and HiGHS drops
    a solution given before them, so the start is set just before the run. A ``solver``
    that already holds ``model`` keeps it (the run pushes only the changes)."""
    if solver._model is not model:
        solver.set_instance(model)
    highs = solver._solver_model
    columns = solver._pyomo_var_to_solver_var_map
    index = np.array([columns[id(var)] for var in start], dtype=np.int32)
    value = np.array([float(v) for v in start.values()], dtype=float)
    run = highs.run

    def run_from_start():
        highs.run = run  # one solve only
        highs.setSolution(len(index), index, value)
        return run()

    highs.run = run_from_start


def solve_optimal(
    model: pyo.Block, solver, what: str, limits: MipLimits | None = None
) -> SolveRecord:
    """Solve an LP, or a MIP to the gap of ``limits``, and load the solution; never accept
    less. Raises :class:`InfeasibleError` for an infeasible model and
    :class:`OptimisationError` for any other outcome (a node limit included)."""
    return _solve(model, solver, what, limits or MipLimits(), accept_node_limit=False)


def _solve(
    model: pyo.Block, solver, what: str, limits: MipLimits, accept_node_limit: bool
) -> SolveRecord:
    start = time.perf_counter()
    results = solver.solve(
        model, load_solutions=False, raise_exception_on_nonoptimal_result=False, **limits.options()
    )
    elapsed = time.perf_counter() - start
    cond = results.termination_condition
    stopped = cond == TerminationCondition.iterationLimit
    if cond == TerminationCondition.convergenceCriteriaSatisfied:
        status = "optimal"
    elif stopped and accept_node_limit and results.incumbent_objective is not None:
        status = "node_limit"
    elif cond in INFEASIBLE:
        raise InfeasibleError(what, cond.name)
    else:
        raise OptimisationError(what, f"{cond.name} (no usable solution)")
    results.solution_loader.load_vars()
    objective = float(results.incumbent_objective)
    bound = results.objective_bound
    bound = float(bound) if bound is not None else objective
    gap = abs(objective - bound) / max(abs(objective), 1e-9)
    nodes, iterations = _work(results)
    return SolveRecord(status, objective, bound, gap, elapsed, nodes, iterations)


def _work(results) -> tuple[int, int]:
    """Branch-and-bound nodes and simplex iterations that HiGHS reported (0 when absent)."""
    extra = results.extra_info
    nodes = getattr(extra, "mip_node_count", None)
    iterations = getattr(extra, "simplex_iteration_count", None)
    return max(int(nodes or 0), 0), max(int(iterations or 0), 0)


def highs_solver():
    """A HiGHS interface on ``SOLVER_THREADS`` threads (every model's solver comes from here
    or :func:`persistent_highs`)."""
    solver = SolverFactory("highs")
    solver.config.threads = SOLVER_THREADS
    return solver


def persistent_highs():
    """A persistent HiGHS interface: keep one per model, so re-solves only push updates.

    The models of this library never gain or lose components after they are built, so
    the scans for new or removed constraints, variables, parameters and objectives are
    switched off; parameter values, variable bounds/fixing and the objective are still
    pushed on every solve.
    """
    solver = highs_solver()
    updates = solver.config.auto_updates
    updates.check_for_new_or_removed_constraints = False
    updates.check_for_new_or_removed_vars = False
    updates.check_for_new_or_removed_params = False
    updates.check_for_new_objective = False
    updates.update_constraints = False
    updates.update_named_expressions = False
    return solver


class FastLP:
    """Re-solves of a model already loaded in a persistent HiGHS interface.

    ADMM iterations change only cut right-hand sides and epigraph costs; pushing those
    through Pyomo re-evaluates every mutable expression of the model (about 0.5 s per
    solve here), so they go straight to the HiGHS instance, warm-started from its basis.
    The Pyomo parameters are updated too (by the caller), so a later Pyomo solve agrees.
    """

    def __init__(self, solver, what: str) -> None:
        self.solver = solver
        self.highs = solver._solver_model  # the loaded highspy.Highs instance
        self.highs.setOptionValue("output_flag", False)
        self.what = what

    def cols(self, variables) -> np.ndarray:
        var_map = self.solver._pyomo_var_to_solver_var_map
        return np.array([var_map[id(v)] for v in variables], dtype=np.int32)

    def rows(self, constraints) -> np.ndarray:
        con_map = self.solver._pyomo_con_to_solver_con_map
        return np.array([con_map[c] for c in constraints], dtype=np.int32)

    def set_row_lower(self, rows: np.ndarray, lower: np.ndarray) -> None:
        upper = np.full(len(rows), highspy.kHighsInf)
        self.highs.changeRowsBounds(len(rows), rows, np.asarray(lower, float), upper)

    def set_costs(self, cols: np.ndarray, costs: np.ndarray) -> None:
        self.highs.changeColsCost(len(cols), cols, np.asarray(costs, float))

    def run(self) -> np.ndarray:
        """Solve; return all column values, or raise a named error when not optimal."""
        self.highs.setOptionValue("output_flag", False)
        self.highs.run()
        status = self.highs.getModelStatus()
        if status == highspy.HighsModelStatus.kOptimal:
            return np.asarray(self.highs.getSolution().col_value)
        if status == highspy.HighsModelStatus.kInfeasible:
            raise InfeasibleError(self.what, str(status))
        raise OptimisationError(self.what, str(status))

    def objective(self) -> float:
        return float(self.highs.getInfo().objective_function_value)
