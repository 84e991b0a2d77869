"""Restoration plans against AC at their own operating point (controllers.restoration_check)
and the plan's losses made exact (controllers.restoration_losses).

Reference: pandapower's AC power flow of the plan's own first-period injections. Targets of
issue 13 (as for the dispatch): loss error <= 0.5 % of AC losses, max |V_plan - V_ac| <=
0.003 pu, no AC voltage outside the band that the plan did not expect.
"""

from __future__ import annotations

import pytest

from mgcosim.controllers.restoration import build_restoration_model
from mgcosim.controllers.restoration_check import RestorationACCheck
from mgcosim.controllers.restoration_data import nominal_inputs
from mgcosim.controllers.restoration_losses import refine_plan_losses
from mgcosim.controllers.restoration_solve import extract_result, solve_restoration
from mgcosim.controllers.solve import MipLimits

LIMITS = MipLimits(rel_gap=1e-4, node_limit=20_000)
CASES = {
    # N-2 pair of issue 13 (branches 4 and 24), main grid available: a stressed radial plan
    "n2_4_24": ({4, 24}, True),
    # seed 003 event: the main grid and branches 12, 22 lost: islands on grid formers
    "islanded": ({12, 22}, False),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def checked(request, dd, data):
    faulted, main = CASES[request.param]
    inp = nominal_inputs(dd, data, n_periods=2, faulted=faulted, main_grid_available=main)
    model = build_restoration_model(dd, data, inp)
    milp = solve_restoration(model, LIMITS)
    record, rounds = refine_plan_losses(model, dd)
    refined = extract_result(model, record)
    check = RestorationACCheck(data)
    before = check.check(milp.periods[0], inp, dd)
    after = check.check(refined.periods[0], inp, dd)
    return request.param, milp, refined, before, after, rounds


def test_refined_plan_meets_the_ac_targets_at_its_own_point(checked):
    name, _, refined, _, after, rounds = checked
    assert after["ac_converged"]
    assert abs(after["loss_error_pct"]) <= 0.5, (name, after)
    assert after["v_error_max_pu"] <= 0.003, (name, after)
    assert after["ac_v_violations"] == 0
    assert after["dark_in_ac"] == 0  # every bus the plan energises has a source in AC
    # islands are checked with their grid formers as slacks
    assert bool(refined.periods[0].grid_formers) == (name == "islanded")
    assert rounds <= 30


def test_fixed_voltage_estimate_misses_the_ac_losses_by_more(checked):
    """The MILP's V = 0.95 estimate is off by more than the target; refinement keeps
    every decision (switches, energisation, grid formers, pickup)."""
    name, milp, refined, before, after, _ = checked
    assert abs(before["loss_error_pct"]) > 1.0, (name, before)
    assert abs(after["loss_error_pct"]) < abs(before["loss_error_pct"]) / 4
    for a, b in zip(milp.periods, refined.periods, strict=True):
        assert (a.closed_branches, a.energised_buses, a.grid_formers, a.picked_up_buses) == (
            b.closed_branches,
            b.energised_buses,
            b.grid_formers,
            b.picked_up_buses,
        )
