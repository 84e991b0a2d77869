"""DSO reconfiguration: the switching-schedule DP, the IEEE 33 snapshot and the CLI command.

Real HiGHS solves, no mocks. Literature references for IEEE 33 (Baran & Wu 1989 data, AC
losses): base case (ties 33-37 open) 202.68 kW; optimal reconfiguration open
{7, 9, 14, 32, 37} with 139.55 kW, minimum voltage 0.938 pu (Goswami & Basu 1992). The
literature's 1-based branch numbers are the project's (branch k joins buses k and k + 1 for
k <= 17, ties 33-37 = 8-21, 9-15, 12-22, 18-33, 25-29: networks/data/ieee33_branches.csv).
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json

import numpy as np
import pandapower as pp
import pytest

from mgcosim.controllers import dso, planner
from mgcosim.controllers.errors import InfeasibleError
from mgcosim.controllers.topology import (
    branch_exchanges,
    candidate_topologies,
    evaluate_schedule,
    level_periods,
    open_set,
    period_costs,
    plan_by_candidates,
    schedule_topologies,
    solve_reconfiguration,
    switch_actions,
)
from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.networks.topology import switch_of_branch
from mgcosim.scenarios.loader import default_scenario_path, load_scenario
from mgcosim.sim.cli import main
from mgcosim.sim.reconfigure import _set_ac_inputs, ac_check, build_case

BASE_LOSSES_KW = 202.68  # Baran & Wu base case, AC
OPTIMUM_LOSSES_KW = 139.55  # Goswami & Basu 1992, open {7, 9, 14, 32, 37}, AC
DEFAULT_OPEN = {33, 34, 35, 36, 37}
LITERATURE_OPEN = [7, 9, 14, 32, 37]  # the same 1-based numbering as networks/data
# Loss model vs AC losses at the plan's own point: the tangent cuts are refined until the
# DistFlow cone holds within 1e-4 (controllers.loss_cuts); measured 139.55 kW model vs
# 139.55 kW AC at the reconfigured snapshot (before refinement: 135.07 vs 139.98 kW, -3.5 %).
# 0.5 % is the target of the model's accuracy (README, Model accuracy).
LOSS_MODEL_RTOL = 0.005


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(default_scenario_path())


@pytest.fixture(scope="module")
def dd(scenario):
    return dso.dso_data(build_ieee33(scenario.data), scenario.data)


# --- dynamic programme against brute force -------------------------------------------------
def brute_force(costs, actions, first, budget, switch_cost):
    best = np.inf
    n_t, n_c = costs.shape
    for path in itertools.product(range(n_c), repeat=n_t):
        used = first[path[0]] + sum(actions[a, b] for a, b in itertools.pairwise(path))
        if used <= budget:
            best = min(best, sum(costs[t, c] for t, c in enumerate(path)) + switch_cost * used)
    return best


def random_instance(rng):
    """Integer costs (exact float sums) with some infeasible pairs; actions between random
    switch-state vectors, so that they are symmetric and obey the triangle inequality."""
    costs = rng.integers(0, 50, size=(4, 3)).astype(float)
    costs[rng.random(costs.shape) < 0.15] = np.inf
    states = rng.random((4, 6)) < 0.5  # row 0: current topology, rows 1-3: candidates
    topo = [dict(enumerate(map(bool, row))) for row in states]
    actions = np.array([[switch_actions(a, b) for b in topo[1:]] for a in topo[1:]])
    first = np.array([switch_actions(topo[0], b) for b in topo[1:]])
    return costs, actions, first


@pytest.mark.parametrize("seed", range(12))
def test_schedule_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    costs, actions, first = random_instance(rng)
    for budget, switch_cost in itertools.product((0, 1, 2, 4, 8), (0.0, 3.0)):
        expected = brute_force(costs, actions, first, budget, switch_cost)
        if not np.isfinite(expected):
            with pytest.raises(InfeasibleError, match="topology schedule"):
                schedule_topologies(costs, actions, first, budget, switch_cost)
            continue
        path, total = schedule_topologies(costs, actions, first, budget, switch_cost)
        used = first[path[0]] + sum(actions[a, b] for a, b in itertools.pairwise(path))
        assert total == expected  # integer data: exact
        assert used <= budget
        assert total == sum(costs[t, c] for t, c in enumerate(path)) + switch_cost * used


# --- snapshot against the literature -------------------------------------------------------
@pytest.fixture(scope="module")
def snapshot(scenario, dd):
    """The plain feeder at nominal load: its case and its optimal reconfiguration."""
    case = build_case(scenario, periods=1, microgrids=False)
    free = dataclasses.replace(dd, switch_cost=0.0)
    res = solve_reconfiguration(
        free, case.load_scale, None, None, dso.default_topology(dd), budget=74
    )
    return case, res


def test_snapshot_without_microgrids_matches_literature(scenario, dd, snapshot):
    case, res = snapshot
    assert not any(p.any() for p in case.pv_mw.values())  # 00:00 start: the base case, no PV
    base = ac_check(scenario.data, dso.default_topology(dd), case)
    assert base["ac_losses_kw"] == pytest.approx(BASE_LOSSES_KW, abs=0.05)  # AC set-up check

    ac = ac_check(scenario.data, res.closed[0], case, res.v_pu[0])
    print(
        f"open {res.open_branches[0]}: model {1000 * res.model_losses_mw[0]:.2f} kW, "
        f"AC {ac['ac_losses_kw']:.2f} kW, Vmin {ac['ac_vmin_pu']:.4f} pu, "
        f"{res.cut_rounds} cut rounds, {res.solve_time_s:.2f} s"
    )
    assert res.status == "optimal" and res.gap <= 1e-3  # proven within 0.1 %
    assert res.cone_violation <= 1e-4  # the losses sit on the DistFlow cone
    assert ac["radial"] and ac["all_buses_energised"]
    assert res.open_branches[0] == LITERATURE_OPEN
    assert ac["ac_losses_kw"] == pytest.approx(OPTIMUM_LOSSES_KW, abs=0.1)
    assert ac["ac_vmin_pu"] == pytest.approx(0.9378, abs=5e-4)  # Goswami & Basu: 0.938 pu
    assert 1000 * res.model_losses_mw[0] == pytest.approx(ac["ac_losses_kw"], rel=LOSS_MODEL_RTOL)
    assert ac["v_error_max_pu"] < 1e-4  # DistFlow on the cone: the AC branch flow equations


def test_snapshot_is_optimal_within_two_branch_exchanges(scenario, dd, snapshot):
    """No radial topology two branch exchanges (or fewer) from the MILP's has lower AC
    losses: every one of them (951 on IEEE 33) is run through pandapower."""
    case, res = snapshot
    best = res.closed[0]
    first = branch_exchanges(dd, best)
    around = {tuple(open_set(c)): c for c in first}
    for c in first:
        around |= {tuple(open_set(x)): x for x in branch_exchanges(dd, c)}
    around.pop(tuple(open_set(best)))
    assert len(around) > 900

    net = build_ieee33(scenario.data)
    _set_ac_inputs(net, case, 0)
    switch = {line: switch_of_branch(net, line) for line in best}

    def ac_losses_kw(closed):
        """AC losses, or inf where no AC solution exists (the whole feeder fed through a
        thin lateral, e.g. branch 2 open: beyond the nose of the PV curve)."""
        nonlocal solved
        for line, on in closed.items():
            net.switch.at[switch[line], "closed"] = bool(on)
        try:
            pp.runpp(net, numba=False, max_iteration=30, init="results" if solved else "auto")
        except pp.LoadflowNotConverged:
            solved = False
            return np.inf
        solved = True
        return 1000 * float(net.res_line.pl_mw[net.line.ieee > 0].sum())

    solved = False
    own = ac_losses_kw(best)
    others = {opened: ac_losses_kw(c) for opened, c in around.items()}
    runner_up = min(others, key=others.get)
    unsolvable = sum(1 for v in others.values() if not np.isfinite(v))
    print(
        f"optimum {own:.3f} kW; best of {len(others)} neighbours {runner_up}: "
        f"{others[runner_up]:.3f} kW; {unsolvable} without an AC solution"
    )
    assert own < others[runner_up]
    assert unsolvable < 0.1 * len(others)  # measured 41 of 951: a broken net would fail all


# --- the command line ----------------------------------------------------------------------
REQUIRED = {
    "open_branches",
    "objective",
    "ac_losses_kw",
    "ac_vmin_pu",
    "model_losses_kw",
    "status",
    "solve_time_s",
    "radial",
    "periods",
}


def run_cli(args, tmp_path):
    out = tmp_path / "reconfigure.json"
    assert main(["reconfigure", *args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_cli_snapshot_with_microgrids(tmp_path):
    r = run_cli([], tmp_path)
    assert REQUIRED <= set(r)
    assert r["periods"] == 1 and r["microgrids"] and r["status"] == "optimal"
    assert len(r["open_branches"]) == 5 and set(r["open_branches"]) <= set(range(1, 38))
    assert r["radial"] and r["all_buses_energised"]
    assert 0 < r["ac_losses_kw"] < BASE_LOSSES_KW  # microgrids import 1.5 MW minus wind
    assert r["model_losses_kw"] == pytest.approx(r["ac_losses_kw"], rel=LOSS_MODEL_RTOL)
    assert 0.9 <= r["ac_vmin_pu"] <= 1.0  # voltage band of networks/data/dso.csv
    assert r["v_error_max_pu"] < 0.005  # DistFlow voltages vs AC (measured 1e-4)
    assert r["solve_time_s"] > 0


def test_cli_three_periods_respects_budget(scenario_file, tmp_path):
    # Peak hours with cheap switching and a tight budget, so that the budget binds.
    path = scenario_file(
        tables="[dso]\nswitch_cost_cny_per_action = 1.0\nswitch_budget_per_horizon = 2\n",
        start=datetime.datetime(2026, 6, 1, 16),
    )
    r = run_cli([str(path), "--periods", "3"], tmp_path)
    assert REQUIRED <= set(r) and r["periods"] == 3
    by_period = [set(b) for b in r["open_branches_by_period"]]
    assert len(by_period) == 3 and all(len(b) == 5 for b in by_period)
    assert by_period[0] == set(r["open_branches"])
    steps = [DEFAULT_OPEN, *by_period]
    used = sum(len(a ^ b) for a, b in itertools.pairwise(steps))
    assert used == r["switch_actions"] <= r["switch_budget"] == 2
    assert r["radial"] and r["all_buses_energised"]

    # No better than never switching? The optimum must not cost more than the default.
    sc = load_scenario(path)
    dd = dso.dso_data(build_ieee33(sc.data), sc.data)
    case = build_case(sc, 3, microgrids=True)
    stay = evaluate_schedule(
        dd,
        [dso.default_topology(dd)] * 3,
        case.load_scale,
        case.pm_mw,
        case.pv_mw,
        dso.default_topology(dd),
        case.mg_q_mvar,
    )
    assert r["objective"] <= stay.objective + 1e-6

    # Time decomposition with the MILP's topologies among the candidates: the DP must find
    # the MILP optimum again (exact within candidates; MILP gap 1e-4, LP tolerances 1e-6).
    closed = [{b: b not in opened for b in range(1, 38)} for opened in by_period]
    literature = {b: b not in {7, 9, 14, 32, 37} for b in range(1, 38)}
    candidates = [dso.default_topology(dd), *closed, literature]
    plan = plan_by_candidates(
        dd,
        case.load_scale,
        case.pm_mw,
        case.pv_mw,
        dso.default_topology(dd),
        2,
        candidates,
        case.mg_q_mvar,
    )
    assert plan.switch_actions <= 2
    assert r["best_bound"] - 1e-6 <= plan.objective <= r["objective"] * (1 + 1e-4) + 1e-6


# --- impossible cases ----------------------------------------------------------------------
def test_substation_limit_below_demand_is_infeasible(dd):
    weak = dataclasses.replace(dd, substation_p_max_mw=1.0)  # demand is 3.715 MW
    with pytest.raises(InfeasibleError, match=r"substation limit 1 MW.*Infeasible"):
        solve_reconfiguration(weak, np.array([1.0]), None, None, dso.default_topology(dd), 6)


def test_cli_reports_infeasible_case(scenario_file, tmp_path, capsys):
    path = scenario_file(tables="[dso]\nsubstation_p_max_mw = 1.0\n")
    assert main(["reconfigure", str(path), "--no-microgrids"]) == 1
    assert "substation limit 1 MW" in capsys.readouterr().err


def test_open_set_and_actions():
    a = {1: True, 2: False, 3: True}
    b = {1: False, 2: False, 3: True}
    assert open_set(a) == [2] and switch_actions(a, b) == 1 and switch_actions(a, a) == 0


def test_period_costs_mark_infeasible_periods(dd):
    # 2.5 MW at the substation serves half load (1.86 MW) but not full load (3.715 MW).
    weak = dataclasses.replace(dd, substation_p_max_mw=2.5)
    costs = period_costs(weak, [dso.default_topology(dd)], np.array([0.5, 1.0]))
    assert np.isfinite(costs[0, 0]) and costs[0, 0] > 0 and costs[1, 0] == np.inf
    with pytest.raises(InfeasibleError, match="topology schedule"):
        schedule_topologies(costs, np.zeros((1, 1)), np.zeros(1), 4, 0.0)


def test_candidates_are_radial_and_distinct(dd):
    assert level_periods(np.array([0.6, 0.75, 1.0, 0.9])) == [0, 1, 2]  # valley, flat, peak
    assert level_periods(np.array([1.0, 1.0])) == [0]
    # One level: the default, its unconstrained optimum, the best within 2 actions.
    found = candidate_topologies(dd, np.array([1.0]), reach=(2,))
    opened = [tuple(open_set(c)) for c in found]
    assert opened[0] == tuple(sorted(DEFAULT_OPEN))
    assert len(opened) == len(set(opened)) == 3
    assert all(len(o) == 5 for o in opened)
    assert switch_actions(found[0], found[1]) > 2
    assert switch_actions(found[0], found[2]) == 2


def test_planner_solves_the_candidates_of_one_input_once_per_process(dd, monkeypatch):
    solved = []
    real = planner.candidate_topologies
    monkeypatch.setattr(planner, "candidate_topologies", lambda *a: solved.append(a) or real(*a))
    monkeypatch.setattr(planner, "_KNOWN", {})
    first = planner.known_candidates(dd, np.array([1.0]), None, None, None)
    expected = [dict(c) for c in first]
    first[0][1] = not first[0][1]  # a caller's change stays with that caller
    assert planner.known_candidates(dd, np.array([1.0]), None, None, None) == expected
    assert len(solved) == 1
    other = dataclasses.replace(dd, switch_cost=dd.switch_cost + 1.0)
    assert planner.inputs_digest(dd, np.array([1.0])) == planner.inputs_digest(dd, np.ones(1))
    assert planner.inputs_digest(dd, np.array([1.0])) != planner.inputs_digest(dd, np.array([0.9]))
    assert planner.inputs_digest(dd, np.array([1.0])) != planner.inputs_digest(other, np.ones(1))


# --- the planner's period costs: AC power flow against the fixed-topology LP ----------------
def costing_planner(scenario, dd, hour: int = 12):
    """A planner with two candidates (default, literature optimum) and one horizon's inputs:
    the exchanges are the microgrids' expected net demand, as the planner's first guess."""
    from test_admm import T, small_horizon

    from mgcosim.controllers.mg_agent import expected_exchange_mw
    from mgcosim.sim.units import stochastic_units

    h = small_horizon(scenario, stochastic_units(scenario), dd, hour)
    pm = {g: expected_exchange_mw(inp) for g, inp in h.mg.items()}
    literature = {b.ieee: b.ieee not in LITERATURE_OPEN for b in dd.branches}
    plan = planner.TopologyPlanner(dd, T, scenario.data)
    plan.candidates = [dso.default_topology(dd), literature]
    plan.nets = [planner.PlanACCheck(scenario.data) for _ in plan.candidates]
    for net, closed in zip(plan.nets, plan.candidates, strict=True):
        net.set_topology(closed)
    return plan, h, pm


def test_candidate_costs_by_ac_power_flow_agree_with_their_lp(scenario, dd):
    """With the exchanges fixed the LP curtails nothing (curtailment 1000 > losses 500
    CNY/MWh), so its cost is its losses, whose cone holds within CUTS.rel_tol = 1e-3: the
    AC losses of the same point must agree within that (measured: 5e-4 at most, a 6 h run)."""
    plan, h, pm = costing_planner(scenario, dd)
    for c in range(len(plan.candidates)):
        ac, lp = plan.ac_costs(c, h, pm), plan.lp_costs(c, h, pm)
        assert ac is not None
        assert np.all(lp > 0)
        np.testing.assert_allclose(ac, lp, rtol=1e-3)
    costs = plan.period_costs(h, pm)
    assert np.all(costs[:, 1] < costs[:, 0])  # the literature optimum loses less in each period
    np.testing.assert_allclose(costs[:, 0], plan.ac_costs(0, h, pm), rtol=1e-9)  # AC again


def test_a_candidate_whose_ac_flow_breaks_a_limit_is_costed_by_its_lp(scenario, dd):
    tight = dataclasses.replace(dd, v_min_pu=0.97)  # the default topology sags below 0.97 pu
    plan, h, pm = costing_planner(scenario, tight)
    assert plan.ac_costs(0, h, pm) is None
    np.testing.assert_array_equal(plan.period_costs(h, pm)[:, 0], plan.lp_costs(0, h, pm))
