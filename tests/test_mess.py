"""Mobile storage (MESS) in the co-simulation: scenario placement, the grid's islands formed
by a MESS, the restoration model's use of it, and a co-simulated event with and without.

Real pandapower power flows, real HiGHS solves, real mosaik worlds. The event of the fast
co-simulation: branches 22 (3-23) and 37 (tie 25-29) fail, so buses 23-25 have no path to
any source but a MESS placed at bus 23 (0.3 MW, 1.2 MWh, ``networks/data/mess.csv``); bus
23's load (0.09 MW nominal) fits the unit, buses 24 and 25 (0.42 MW each) do not.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pandas as pd
import pytest

from mgcosim.controllers.restoration import build_restoration_model
from mgcosim.controllers.restoration_controller import mess_inputs, with_mess_buses
from mgcosim.controllers.restoration_data import nominal_inputs
from mgcosim.controllers.restoration_solve import solve_restoration
from mgcosim.controllers.robust_ccg import DEFAULT_GAP, solve_robust
from mgcosim.controllers.robust_data import DEFAULT_EVENT, Event
from mgcosim.controllers.solve import MipLimits
from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.networks.params import load_mess_params
from mgcosim.scenarios.loader import MessSettings, ScenarioError, load_scenario
from mgcosim.sim.grid import GridInputs, GridModel
from mgcosim.sim.mess import placement, scenario_case, scenario_event

MESS = load_mess_params()
PROVEN = MipLimits(rel_gap=1e-4, node_limit=20_000)  # the uniqueness check below used 1e-4
CUT_OFF = [{"kind": "branch", "branch_ieee": 22}, {"kind": "branch", "branch_ieee": 37}]
EVENING = "start = 2026-06-01T17:00:00\n"
ISLAND_EVENT = (
    '[[faults]]\nname = "f22"\nbranch = 22\nstart_h = 1.0\nrepair_h = 1.0\n'
    '[[faults]]\nname = "f37"\nbranch = 37\nstart_h = 1.0\nrepair_h = 1.0\n'
)
RESTORATION = "[restoration]\nstep_min = 30\nmargin_h = 0.0\n"
# bus 23 (tier 3) is worth 4.5 CNY a period of about 29,000: only a plan proven within 1e-4
# tells restoring it from leaving it dark (the default 1e-3 gap accepts either)
PROVEN_RESTORATION = RESTORATION + "mip_rel_gap = 1e-4\nmip_node_limit = 100000\n"


# --- scenario -------------------------------------------------------------------------------
def test_given_placement_puts_one_unit_per_bus(scenario_file):
    scenario = load_scenario(scenario_file("[mess]\nbuses = [23, 30]\n"))
    assert scenario.mess.placement == "given"
    assert [(u.name, u.bus_ieee) for u in scenario.data.mess] == [
        ("MESS_b23", 23),
        ("MESS_b30", 30),
    ]
    unit = scenario.data.mess[0]
    assert unit.ess_p_dis_max_mw == MESS.p_max_mw and unit.ess_e_init_mwh == MESS.e_init_mwh


@pytest.mark.parametrize(
    ("table", "field", "fix"),
    [
        ("buses = [1]", "mess.buses[0]", "candidate bus"),  # the substation
        ("buses = [40]", "mess.buses[0]", "candidate bus"),
        ("buses = [23, 23]", "mess.buses", "at most one unit per bus"),
        ("buses = [2, 3, 4, 5, 6]", "mess.buses", "at most 4 units"),
        ("buses = []", "mess.buses", "non-empty list"),
        ('placement = "robust"\nbuses = [23]', "mess.buses", "drop mess.buses"),
        ('placement = "anywhere"', "mess.placement", "one of"),
        ("fleet = 2", "mess.fleet", "placement"),
    ],
)
def test_bad_mess_table_is_refused_with_field_and_fix(scenario_file, table, field, fix):
    path = scenario_file(f"[mess]\n{table}\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert err.value.field == field
    assert fix in str(err.value) and str(path) in str(err.value)


# The seed 003 event as a scenario from 17:00: main grid lost at 18:00, branches 12 and 22
# damaged, 2 h repair. The optimum is not unique: the lateral 23-25, cut off by branch 22, is
# one island whichever of its buses hosts the unit, and the three placements cost the same.
SEED003_EVENT = "".join(
    f'[[faults]]\nname = "{n}"\n{k}\nstart_h = 1.0\nrepair_h = 2.0\n'
    for n, k in (("g", 'kind = "main_grid"'), ("f12", "branch = 12"), ("f22", "branch = 22"))
)
LATERAL = (23, 24, 25)
# The optimum of that event, CNY: 600 (one unit) + 80 (one switch action) + 1256.0 (worst-case
# shedding, 1.192 MWh tier 2 and 3.119 MWh tier 3, and 0.6 MWh of MESS throughput). Printed by
# ``mgcosim preposition scenarios/blackout.toml`` and reached again by C&CG with the
# placement restricted to each of 23, 24, 25 (below). Without a unit on the lateral the best
# is 1965.05 (placement restricted to the other 29 buses, or to none: checked once, too slow
# to repeat here), 1.5 % above, outside the C&CG gap: so every plan within the gap puts a unit
# on the lateral. Two units (23 and 25) reach 1937.2, within the gap: the count is not asserted.
SEED003_OPTIMUM_CNY = 1936.0
FEAS_TOL_CNY = 0.01  # HiGHS: worst case to rel. gap 1e-7 (~2e-4 CNY), LP tolerances 1e-7


def test_robust_placement_is_computed_for_the_scenario_event(scenario_file):
    """The robust first stage of the seed 003 event: its bounds enclose the optimum within
    the C&CG gap, and its units include one on the lateral 23-25, where every bus reaches
    that optimum (a tie: which of them the solver returns is arbitrary)."""
    scenario = load_scenario(
        scenario_file(EVENING + '[mess]\nplacement = "robust"\n' + SEED003_EVENT)
    )
    assert scenario.data.mess == ()  # computed before the run, not on loading
    record = placement(scenario)
    assert record["event"] == {
        "damaged_branches": [12, 22],
        "main_grid_available": False,
        "start_h": 18.0,
        "periods_h": 2,
    }
    assert record["gap"] <= DEFAULT_GAP
    lower, upper = record["lower_bound_cny"], record["upper_bound_cny"]
    assert lower <= SEED003_OPTIMUM_CNY + FEAS_TOL_CNY
    assert (
        SEED003_OPTIMUM_CNY - FEAS_TOL_CNY
        <= upper
        <= SEED003_OPTIMUM_CNY / (1 - DEFAULT_GAP) + FEAS_TOL_CNY
    )
    assert set(record["buses"]) & set(LATERAL)
    # the tie: the unit restricted to any one lateral bus reaches the same optimum
    damaged, main_grid, start_h, periods = scenario_event(scenario, DEFAULT_EVENT)
    for bus in LATERAL:
        one_bus = dataclasses.replace(MESS, candidate_buses_ieee=(bus,), fleet_size_units=1)
        case = scenario_case(scenario, one_bus, Event(damaged, main_grid), start_h, periods)
        there = solve_robust(case)
        assert there.first_stage.mess_buses == {bus}
        assert there.upper_bound_cny == pytest.approx(SEED003_OPTIMUM_CNY, abs=FEAS_TOL_CNY)
    # on the forecast PV alone the same three placements tie (1877.92 CNY each, first stage
    # included), and each costs the same 1936.0 CNY on its worst case
    forecast_only = placement(dataclasses.replace(scenario, mess=MessSettings("deterministic")))
    assert set(forecast_only["buses"]) & set(LATERAL)
    assert forecast_only["worst_case_total_cny"] == pytest.approx(SEED003_OPTIMUM_CNY, abs=0.5)


# --- grid -----------------------------------------------------------------------------------
def grid_with_mess(data, buses=(23,)) -> GridModel:
    data = with_mess_data(data, buses)
    return GridModel(build_ieee33(data), data)


def with_mess_data(data, buses):
    return dataclasses.replace(data, mess=MESS.units(buses))


def test_mess_forms_the_island_it_can_carry(data):
    """Buses 23-25 cut off (still joined by closed branches 23, 24), loads 24 and 25 shed:
    the MESS is the island's slack and covers bus 23's load and the island's losses; its
    SOC falls by P dt / eta_dis (hand calculation)."""
    grid = grid_with_mess(data)
    shed = {"load_b24": 0.0, "load_b25": 0.0}
    out = grid.step(0, 900, GridInputs(faults=CUT_OFF, served_fraction=shed))
    assert out["converged"] == 1 and out["islands"] == ["MESS_b23"]
    p_mess = out["unit_p_mw"]["MESS_b23"]  # charging > 0
    load_23 = float(grid.net.load.p_mw[grid.net.load.name == "load_b23"].iloc[0])
    losses = float(grid.net.res_line.pl_mw[grid.net.line.ieee.isin([23, 24])].sum())
    assert -p_mess == pytest.approx(load_23 + losses, abs=1e-6)
    assert all(0.9 < out["vm_pu"][b] <= 1.0 + 1e-9 for b in ("23", "24", "25"))  # live, shed
    soc_end = out["soc_end_mwh"]["MESS_b23"]
    assert soc_end == pytest.approx(MESS.e_init_mwh + p_mess * 0.25 / MESS.eta_dis, abs=1e-9)


def test_mess_island_beyond_its_rating_collapses(data):
    """All of 23-25 (0.93 MW nominal) on a 0.3 MW unit: the island collapses, its load is
    unserved, the unit does not move."""
    grid = grid_with_mess(data)
    out = grid.step(0, 900, GridInputs(faults=CUT_OFF))
    assert out["islands"] == [] and out["islands_collapsed"] == ["MESS_b23"]
    assert all(math.isnan(out["vm_pu"][b]) for b in ("23", "24", "25"))
    dark_mw = grid.net.load.p_mw[grid.net.load.name.isin(["load_b23", "load_b24", "load_b25"])]
    assert out["load_unserved_mw"] == pytest.approx(float(dark_mw.sum()), abs=1e-9)
    assert out["soc_end_mwh"]["MESS_b23"] == pytest.approx(MESS.e_init_mwh)


def test_mess_idles_in_normal_operation(data):
    grid = grid_with_mess(data)
    out = grid.step(0, 900, GridInputs())
    assert out["islands"] == [] and out["unit_p_mw"]["MESS_b23"] == 0.0
    assert out["soc_end_mwh"]["MESS_b23"] == MESS.e_init_mwh


# --- restoration model ------------------------------------------------------------------------
def test_restoration_model_energises_an_island_with_the_mess(dd, data):
    """With the MESS at bus 23 the plan forms an island on it and picks up bus 23 (and no
    more: 24 and 25 exceed the unit); without it buses 23-25 stay dark."""
    with_unit = with_mess_data(data, (23,))
    dd_mess = with_mess_buses(dd, with_unit.mess)
    inp = nominal_inputs(dd_mess, data, n_periods=2, faulted={22, 37}, main_grid_available=True)
    unit = with_unit.mess[0]
    inp.microgrids[unit.name] = mess_inputs(unit, unit.ess_e_init_mwh, 2)
    result = solve_restoration(build_restoration_model(dd_mess, data, inp), PROVEN)
    assert result.status == "optimal"
    # a unique optimum, checked by re-solving with the plan forbidden: bus 24 or 25 picked up
    # is infeasible; bus 23 dropped in a period costs 4.5 CNY more (of 28984), above the
    # 1e-4 MIP gap (2.9 CNY); the unit is the island's only possible grid former
    for period in result.periods:
        assert "MESS_b23" in period.grid_formers and 23 in period.picked_up_buses
        assert not {24, 25} & period.picked_up_buses
        assert period.storage_p_mw["MESS_b23"] < 0  # discharging
        assert abs(period.mg_exchange_mw["MESS_b23"]) <= MESS.p_max_mw + 1e-9
    base = nominal_inputs(dd, data, n_periods=2, faulted={22, 37}, main_grid_available=True)
    without = solve_restoration(build_restoration_model(dd, data, base), PROVEN)
    assert all(not {23, 24, 25} & p.energised_buses for p in without.periods)


# --- co-simulation --------------------------------------------------------------------------
def unserved_mwh(out, start_s: int, end_s: int) -> float:
    steps = pd.read_csv(out / "steps.csv")
    during = steps[(steps.time_s >= start_s) & (steps.time_s < end_s)]
    return float(during.load_unserved_mw.sum() * 0.25)


def test_mess_island_in_the_cosimulation_sheds_less(scenario_file, run):
    """The same event with and without a MESS at bus 23 (given placement): with it, bus 23
    is restored on the unit's island for the whole fault, checked by the AC power flow of
    every step; the unserved energy falls by bus 23's load (its realised demand)."""
    tables = EVENING + PROVEN_RESTORATION + ISLAND_EVENT
    without = run(scenario_file(tables, duration_h=2))
    placed = run(scenario_file(tables + "[mess]\nbuses = [23]\n", duration_h=2))
    assert json.loads((placed / "mess_placement.json").read_text())["buses"] == [23]
    steps = pd.read_csv(placed / "steps.csv", dtype={"islands": str})
    during = steps[(steps.time_s >= 3600) & (steps.time_s < 7200)]
    assert during.converged.eq(1).all() and (during.islands == "MESS_b23").all()
    vm = pd.read_csv(placed / "bus_vm_pu.csv").set_index("time_s")
    # bus 23 live; 24 and 25 (their loads shed either way) may be energised or left dark:
    # tied plans, unless PV_b25 has power to give
    island = vm.loc[during.time_s, ["23", "24", "25"]]
    assert island["23"].notna().all()
    live = island.stack()  # the energised buses' voltages (dark buses are NaN)
    assert ((live > 0.9) & (live < 1.1)).all()
    gain = unserved_mwh(without, 3600, 7200) - unserved_mwh(placed, 3600, 7200)
    demand_23 = pd.read_csv(placed / "available_p_mw.csv").set_index("time_s")
    expected = float(demand_23.loc[during.time_s, "load_b23"].sum() * 0.25)
    assert gain == pytest.approx(expected, rel=1e-6)
    # the island's AC balance: MESS discharge + PV_b25 = bus 23's load + losses (>= 0, and
    # < 0.1 kW for 0.09 MW over two short lines)
    units = pd.read_csv(placed / "unit_p_mw.csv").set_index("time_s").loc[during.time_s]
    demand = pd.read_csv(placed / "available_p_mw.csv").set_index("time_s").loc[during.time_s]
    losses_mw = -units["MESS_b23"] + units["PV_b25"] - demand["load_b23"]
    assert ((losses_mw >= 0) & (losses_mw < 1e-4)).all()
    # SOC (recorded at each step's start) integrates the applied power: drop = P dt / eta_dis
    soc = pd.read_csv(placed / "soc_mwh.csv").set_index("time_s")["MESS_b23"]
    assert soc.loc[:3600].eq(MESS.e_init_mwh).all()  # idle and full until the event
    discharged_mwh = -units["MESS_b23"].loc[3600:5400].sum() * 0.25 / MESS.eta_dis
    assert discharged_mwh > 0
    assert soc.loc[3600] - soc.loc[6300] == pytest.approx(discharged_mwh, abs=1e-9)
    validation = pd.read_csv(placed / "validation.csv").set_index("time_s")
    checked = validation.loc[during.time_s]
    assert (checked.max_dv_pu < 0.02).all() and (checked.unanticipated_violation == 0).all()


@pytest.mark.slow
def test_robust_placement_sheds_less_than_no_mess_in_the_cosimulation(scenario_file, run):
    """Seed 003's event at 18:00 for 2 h (main grid lost, branches 12 and 22), 17:00-21:00:
    the robust placement (a unit on the lateral 23-25: which bus is a tie, see above) sheds
    less than the same scenario without MESS, every step AC-validated."""
    tables = EVENING + RESTORATION + SEED003_EVENT
    without = run(scenario_file(tables, duration_h=4))
    robust = run(scenario_file(tables + '[mess]\nplacement = "robust"\n', duration_h=4))
    assert set(json.loads((robust / "mess_placement.json").read_text())["buses"]) & set(LATERAL)
    assert unserved_mwh(robust, 3600, 10800) < unserved_mwh(without, 3600, 10800) - 0.1
    for out in (without, robust):
        steps = pd.read_csv(out / "steps.csv")
        assert steps.converged.eq(1).all()
        validation = pd.read_csv(out / "validation.csv")
        assert (validation.unanticipated_violation == 0).all()
