"""Kelley cutting planes: the DSO's loss model made tight where the solution lies.

The DSO model (:mod:`controllers.dso`) writes the DistFlow cone ``ell v >= P^2 + Q^2`` as
``lp >= P^2 / v`` and ``lq >= Q^2 / v`` by tangent cuts, an outer approximation that is
exact only at its tangent points. After a solve, :func:`solve_tight` finds every branch and
period where ``lp`` (or ``lq``) lies below the cone by more than a tolerance, adds the
tangent cut at that very point (``lp >= 2 c P - c^2 v`` with ``c = P / v``: exact there, valid
at any voltage) to the model's ``loss_refine`` list and solves again, up to a fixed number of
rounds (deterministic: no clock). The model stays an LP or MILP for HiGHS.

At the final solution the losses and the DistFlow voltage drop (with its ``(r^2 + x^2) ell``
term) are then those of the AC branch flow equations of a radial network within the
tolerance; what is left of the gap to an AC power flow is what the model omits (see the
README's *Model accuracy*).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers.blocks import cone_cut, cone_violations
from mgcosim.controllers.dso import DSOData
from mgcosim.controllers.errors import InfeasibleError, OptimisationError
from mgcosim.controllers.solve import SolveRecord


@dataclass(frozen=True)
class CutSettings:
    """When the cone counts as holding, and how many refinement rounds at most.

    ``rel_tol``: ``P^2 / v - lp`` at most this share of ``P^2 / v`` (same for Q);
    ``abs_tol``: plus this many pu^2 of squared current, above HiGHS's feasibility tolerance
    (1e-7), else a cut at the point may still leave it "violated" by the solver's slack
    (1e-6 pu^2 is at most 0.1 W of losses on any IEEE 33 branch);
    ``max_rounds``: re-solves at most (the count is recorded; a model still violated then
    is used as it is and its violation reported).
    """

    rel_tol: float = 1e-3
    abs_tol: float = 1e-6
    max_rounds: int = 30


_WORK = ("time_s", "nodes", "lp_iterations")  # summed over the rounds of a tight solve
CUTS = CutSettings()  # dispatch: losses within 0.1 %
# reconfiguration: the cone within 1e-4, so that the MILP's proven gap (1e-4) plus what the
# cuts leave is within 0.1 % (of the objective, which holds the losses)
RECONFIG_CUTS = CutSettings(rel_tol=1e-4)


@dataclass(frozen=True)
class TightSolve:
    """A solve refined by cuts: the last solve's record, rounds and what is left."""

    record: SolveRecord  # the last solve's; its time (and work counts) summed over rounds
    rounds: int  # re-solves after the first
    cuts_added: int
    max_rel_violation: float  # largest (P^2 / v - lp - abs_tol) / (P^2 / v) at the end


def _values(m: pyo.Block, dd: DSOData) -> dict[str, np.ndarray]:
    """[L, T] arrays of the solved flows, loss parts and sending-end squared voltages."""
    lines, periods = [b.ieee for b in dd.branches], list(m.T)
    frm = {b.ieee: b.from_bus for b in dd.branches}

    def grid(get):
        return np.array([[pyo.value(get(ln, t)) for t in periods] for ln in lines], dtype=float)

    return {
        "P": grid(lambda ln, t: m.P[ln, t]),
        "Q": grid(lambda ln, t: m.Q[ln, t]),
        "lp": grid(lambda ln, t: m.lp[ln, t]),
        "lq": grid(lambda ln, t: m.lq[ln, t]),
        "v": grid(lambda ln, t: m.v[frm[ln], t]),
    }


def add_violated_cuts(m: pyo.Block, dd: DSOData, settings: CutSettings = CUTS) -> list:
    """Add the tangent cut at every violated point to ``m.loss_refine``; the new constraints."""
    x = _values(m, dd)
    lines, periods = [b.ieee for b in dd.branches], list(m.T)
    frm = {b.ieee: b.from_bus for b in dd.branches}
    added = []
    for flow, part, fv, pv in (("P", "lp", m.P, m.lp), ("Q", "lq", m.Q, m.lq)):
        mask = cone_violations(x[flow], x[part], x["v"], settings.rel_tol, settings.abs_tol)
        for i, k in zip(*np.nonzero(mask), strict=True):
            ln, t = lines[i], periods[k]
            ratio = float(x[flow][i, k] / max(x["v"][i, k], 1e-6))
            added.append(m.loss_refine.add(cone_cut(fv[ln, t], pv[ln, t], m.v[frm[ln], t], ratio)))
    return added


def max_rel_violation(m: pyo.Block, dd: DSOData, abs_tol: float = CUTS.abs_tol) -> float:
    """Largest relative shortfall of the loss parts below the cone beyond ``abs_tol`` pu^2
    (0: on or above it, or within ``abs_tol``: tiny flows)."""
    x = _values(m, dd)
    v = np.maximum(x["v"], 1e-6)
    worst = 0.0
    for flow, part in (("P", "lp"), ("Q", "lq")):
        exact = x[flow] ** 2 / v
        short = np.maximum(exact - x[part] - abs_tol, 0.0) / np.maximum(exact, 1e-12)
        worst = max(worst, float(short.max(initial=0.0)))
    return worst


def solve_tight(
    m: pyo.Block,
    dd: DSOData,
    solve: Callable[[], SolveRecord],
    solver=None,
    settings: CutSettings = CUTS,
) -> TightSolve:
    """``solve()`` (which loads its solution into ``m``), then Kelley rounds until no part is
    below the cone by more than the tolerance, or ``settings.max_rounds`` re-solves.

    ``solver``: a persistent interface that does not scan for new constraints
    (:func:`controllers.solve.persistent_highs`); the cuts are then pushed to it explicitly.
    """
    solve = _retrying(solve, solver)
    record, rounds, n_cuts = solve(), 0, 0
    work = {f: getattr(record, f) for f in _WORK if hasattr(record, f)}
    while rounds < settings.max_rounds:
        new = add_violated_cuts(m, dd, settings)
        if not new:
            break
        if solver is not None and not _scans_constraints(solver):
            solver.add_constraints(new)
        n_cuts += len(new)
        rounds += 1
        record = solve()
        work = {f: total + getattr(record, f) for f, total in work.items()}
    record = dataclasses.replace(record, **work)
    return TightSolve(record, rounds, n_cuts, max_rel_violation(m, dd, settings.abs_tol))


def _scans_constraints(solver) -> bool:
    """Whether a persistent interface finds new constraints itself on its next solve."""
    return bool(solver.config.auto_updates.check_for_new_or_removed_constraints)


def _retrying(solve: Callable[[], SolveRecord], solver) -> Callable[[], SolveRecord]:
    """``solve``, and once more from scratch (the persistent HiGHS's basis cleared) when a
    re-solve warm-started from the previous basis fails (HiGHS's dual simplex can give up on
    excessive dual values after the data changed): the same on any machine."""

    def run() -> SolveRecord:
        try:
            return solve()
        except InfeasibleError:
            raise
        except OptimisationError:
            highs = getattr(solver, "_solver_model", None)
            if highs is None:
                raise
            highs.clearSolver()
            return solve()

    return run


def tighten_agent(agent, dd: DSOData, settings: CutSettings = CUTS) -> int:
    """Kelley rounds for the ADMM's DSO agent (:class:`controllers.admm.Agent`) right after
    one of its solves: copy the iterate into the model, add the violated cuts, push them to
    its persistent HiGHS (rows appended: the proximal rows keep their indices) and re-run
    from the basis, until the cone holds or ``settings.max_rounds``. Returns the rounds.

    Meant for ``ADMMCoordinator._dso_exchange`` after ``first_solve`` / ``resolve``; the cuts stay
    for every later iteration and horizon.
    """
    rounds = 0
    while rounds < settings.max_rounds:
        agent.load_solution()
        new = add_violated_cuts(agent.model, dd, settings)
        if not new:
            break
        agent.solver.add_constraints(new)
        agent.x = agent.fast.run()
        rounds += 1
    agent.load_solution()
    return rounds
