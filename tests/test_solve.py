"""The solve layer's MIP start: real HiGHS solves of a small knapsack.

Items of value 10, 9, 8, 7, 6 and weight 5, 5, 4, 4, 3 in a knapsack of 12: the optimum
takes items 0, 2 and 4 (value 24, weight 12; :func:`best_by_hand` enumerates every set).
"""

from __future__ import annotations

import itertools

import pyomo.environ as pyo
import pytest
from pyomo.common.collections import ComponentMap

from mgcosim.controllers.solve import MipLimits, last_binaries, persistent_highs, solve_mip

VALUE = [10, 9, 8, 7, 6]
WEIGHT = [5, 5, 4, 4, 3]
CAPACITY = 12


def knapsack() -> pyo.ConcreteModel:
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, len(VALUE) - 1)
    m.take = pyo.Var(m.I, within=pyo.Binary)
    m.cap = pyo.Constraint(expr=sum(WEIGHT[i] * m.take[i] for i in m.I) <= CAPACITY)
    m.obj = pyo.Objective(expr=sum(VALUE[i] * m.take[i] for i in m.I), sense=pyo.maximize)
    return m


def best_by_hand() -> int:
    sets = itertools.chain.from_iterable(itertools.combinations(range(5), k) for k in range(6))
    return max(sum(VALUE[i] for i in s) for s in sets if sum(WEIGHT[i] for i in s) <= CAPACITY)


def test_the_start_reaches_highs_and_is_checked(capfd):
    """HiGHS reports that it assessed the start (its log, on the terminal with ``tee``)."""
    for items, verdict in (((0, 2, 4), "feasible"), ((0, 1, 2), "infeasible")):
        m = knapsack()
        solver = persistent_highs()
        solver.config.tee = True
        start = ComponentMap((m.take[i], float(i in items)) for i in m.I)
        rec = solve_mip(m, solver, "knapsack", MipLimits(rel_gap=0.0), start)
        assert rec.objective == pytest.approx(24.0)
        captured = capfd.readouterr()
        log = captured.out + captured.err
        assessed = log.split("Assessing feasibility of MIP solution")[1]
        if verdict == "feasible":
            assert assessed.split("\n")[0].endswith(": feasible")
        else:  # HiGHS names the row the start breaks: the capacity, 14 > 12
            assert "infeasibility of           2" in assessed and "14;" in assessed


def test_a_partial_start_is_completed_and_an_infeasible_one_dropped():
    assert best_by_hand() == 24
    m = knapsack()
    partial = ComponentMap([(m.take[0], 1.0)])  # HiGHS completes it over the other items
    rec = solve_mip(m, persistent_highs(), "knapsack", MipLimits(rel_gap=0.0), partial)
    assert rec.objective == pytest.approx(24.0)
    m = knapsack()
    every_item = ComponentMap((m.take[i], 1.0) for i in m.I)  # weight 21 > 12: infeasible
    rec = solve_mip(m, persistent_highs(), "knapsack", MipLimits(rel_gap=0.0), every_item)
    assert rec.status == "optimal" and rec.objective == pytest.approx(24.0)


def test_without_sub_mip_heuristics_a_started_solve_finds_the_optimum():
    """``sub_mip_heuristics=False`` reaches HiGHS and the started solve still proves the
    hand-enumerated optimum."""
    m = knapsack()
    solver = persistent_highs()
    start = ComponentMap((m.take[i], float(i in (0, 1))) for i in m.I)  # value 19
    quick = MipLimits(rel_gap=0.0, sub_mip_heuristics=False)
    assert quick.options()["solver_options"]["mip_heuristic_run_rins"] is False
    rec = solve_mip(m, solver, "knapsack", quick, start)
    assert rec.status == "optimal" and rec.objective == pytest.approx(best_by_hand())
    highs = solver._solver_model
    for option in ("mip_heuristic_run_rins", "mip_heuristic_run_rens"):
        assert highs.getOptionValue(option)[1] is False, option


def test_the_last_binaries_are_the_solved_items_and_none_before_a_solve():
    m = knapsack()
    assert last_binaries(m) is None  # nothing solved yet
    solve_mip(m, persistent_highs(), "knapsack", MipLimits(rel_gap=0.0))
    start = last_binaries(m)
    assert [start[m.take[i]] for i in m.I] == [1.0, 0.0, 1.0, 0.0, 1.0]  # items 0, 2, 4
    lp = pyo.ConcreteModel()
    lp.x = pyo.Var(bounds=(0, 1))
    assert last_binaries(lp) is None  # no binaries: no start
