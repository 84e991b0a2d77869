"""The DSO model against AC at its own operating point (README: Model accuracy).

Real HiGHS solves and pandapower power flows. The reference is the AC power flow of the
plan's own first-period injections (controllers.plan_check), so forecast error plays no
part: what is left is the model's error. Targets of the issue "losses and voltages that
match AC": loss error <= 0.5 % of the AC losses, max |V_opt - V_ac| <= 0.003 pu.
"""

from __future__ import annotations

import numpy as np
import pytest

from mgcosim.controllers import dso
from mgcosim.controllers.admm import ADMMSettings, BilevelADMM
from mgcosim.controllers.base import Measurements
from mgcosim.controllers.blocks import cone_cut
from mgcosim.controllers.coupled import build_centralised_model, set_centralised_inputs
from mgcosim.controllers.horizon import horizon_inputs
from mgcosim.controllers.loss_cuts import CutSettings, solve_tight
from mgcosim.controllers.plan_check import PlanACCheck, plan_point
from mgcosim.controllers.solve import persistent_highs, solve_optimal
from mgcosim.controllers.topology import set_fixed_inputs
from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.scenarios.loader import default_scenario_path, load_scenario
from mgcosim.sim.accuracy import dso_day_errors
from mgcosim.sim.reconfigure import build_case
from mgcosim.sim.units import forecasts_at, stochastic_units

LOSS_ERROR_PCT = 0.5
V_ERROR_PU = 0.003


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(default_scenario_path())


def test_cone_cut_is_below_the_cone_and_exact_at_its_ratio():
    rng = np.random.default_rng(7)
    flow = rng.uniform(-3, 3, 500)
    v = rng.uniform(0.81, 1.21, 500)
    exact = flow**2 / v
    for ratio in (-2.0, -0.1, 0.0, 0.3, 2.5):
        assert cone_cut(flow, exact + 1e-12, v, ratio).all()  # arrays: elementwise
    # at flow / v = ratio the cut holds with equality (a tangent plane)
    assert not cone_cut(flow, exact - 1e-9, v, flow / v).any()


def test_day_horizons_meet_the_ac_targets_only_when_refined(scenario):
    """Horizons at 00:00 (night, no PV) and 12:00 (PV peak) of the default day, DSO alone:
    refined cuts meet the targets; the initial cuts alone miss the loss target (measured
    -6.5 % and -3.7 %), so the comparison can fail."""
    refined = dso_day_errors(scenario, CutSettings(), hours=range(0, 24, 12))
    for row in refined:
        print(row)
        assert row["ac_converged"]
        assert abs(row["loss_error_pct"]) <= LOSS_ERROR_PCT
        assert row["v_error_max_pu"] <= V_ERROR_PU
        assert 1 <= row["cut_rounds"] <= CutSettings().max_rounds
    initial = dso_day_errors(scenario, None, hours=range(12, 13))
    assert initial[0]["cut_rounds"] == 0
    assert initial[0]["loss_error_pct"] < -1.0
    assert initial[0]["ac_loss_mw"] == pytest.approx(refined[1]["ac_loss_mw"], rel=0.02)


def test_persistent_solver_gets_the_cuts(scenario):
    """A persistent HiGHS that does not scan for new constraints (the planner's, the ADMM's)
    is handed the cuts: the cone then holds, in a few rounds, and the plan matches AC."""
    data = scenario.data
    dd = dso.dso_data(build_ieee33(data), data)
    case = build_case(scenario, 3, microgrids=True)
    m, solver = dso.build_dso_model(dd, 3), persistent_highs()
    dso.set_topology(m, dso.default_topology(dd))
    set_fixed_inputs(m, dd, case.load_scale, case.pm_mw, case.pv_mw, case.mg_q_mvar)
    settings = CutSettings()
    tight = solve_tight(m, dd, lambda: solve_optimal(m, solver, "DSO"), solver, settings)
    assert 1 <= tight.rounds < settings.max_rounds and tight.cuts_added > 0
    assert tight.max_rel_violation <= settings.rel_tol
    check = PlanACCheck(data)(plan_point(m, dd, 0))
    assert abs(check["loss_error_pct"]) <= LOSS_ERROR_PCT
    assert check["v_error_max_pu"] <= V_ERROR_PU


def test_admm_dso_agent_meets_the_ac_targets_with_the_hook(scenario):
    """One small ADMM horizon (4 h from 08:00, 3 wind scenarios) on the day's forecasts:
    the DSO agent's plan at its own point, with the hook (measured -0.006 %) and without
    (measured -4.3 %: the comparison can fail); the ADMM with the hook against the
    centralised model refined by :func:`solve_tight` on its DSO block."""
    data = scenario.data
    dd = dso.dso_data(build_ieee33(data), data)
    units = stochastic_units(scenario)
    fc = forecasts_at(scenario, units, 8 * 3600 // scenario.physical_step_s, 3)
    meas = Measurements(time_s=fc.time_s, soc_mwh={})
    h = horizon_inputs(fc, meas, data, dd, 0.0, 1.0, 4, [dso.default_topology(dd)] * 4)
    errors, results, ac_check = {}, {}, PlanACCheck(data)
    for refine in (False, True):  # the DSO agent refined by controllers.loss_cuts.tighten_agent
        admm = BilevelADMM(dd, data, 4, 3, ADMMSettings(refine_losses=refine))
        res = admm.solve(h)
        assert res.converged
        errors[refine] = ac_check(plan_point(admm.dso.model, dd, 0))
        results[refine] = res
    assert admm.refine_rounds >= 1
    # the centralised reference refined the same way (its DSO block, its persistent solver)
    central, solver = build_centralised_model(dd, data, 4, 3), persistent_highs()
    set_centralised_inputs(central, dd, h)
    tight = solve_tight(
        central.dso, dd, lambda: solve_optimal(central, solver, "centralised"), solver
    )
    assert tight.rounds >= 1 and tight.max_rel_violation <= CutSettings().rel_tol
    reference = tight.record.objective
    gap = abs(results[True].objective - reference) / abs(reference)
    assert gap <= 0.01  # the ADMM issue's acceptance gap
    assert abs(errors[True]["loss_error_pct"]) <= LOSS_ERROR_PCT
    assert errors[True]["v_error_max_pu"] <= V_ERROR_PU
    assert errors[False]["loss_error_pct"] < -1.0
