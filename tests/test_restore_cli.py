"""``mgcosim restore``: independent vs ADMM vs centralised restoration of a fault, AC-checked.

Real HiGHS solves and pandapower power flows. Tier-1 loads: buses 6, 9, 16, 18, 28.

The default fault scenario (``scenarios/fault_midday.toml``) takes branch 6 (6-7) out at
12:00: buses 7-18 are cut off with microgrid MG2 (bus 11), which cannot carry all of them
alone; the normal sub-network can help through tie 33 (8-21), 34 (9-15), 35 (12-22) or 36
(18-33). Its 2 h repair and 1 h margin make 12 periods (a minute per solve), too long for
the test suite, and over a short horizon a tie is not worth its switching cost for the
tier-3 loads MG2 cannot carry. The tests use a fault on branch 12 (12-13) at 12:00 with a
30-min repair and no margin (2 periods): it cuts off 13-18, which hold no microgrid and two
tier-1 loads (16, 18), so only power from the normal sub-network through tie 34 (9-15) or
36 (18-33) restores them: the independent solve cannot, the ADMM and the centralised can.
"""

from __future__ import annotations

import json

import pytest

from mgcosim.sim.cli import main

KEYS = {
    "shed_kwh_by_tier",
    "shed_kwh_total",
    "renewable_kwh",
    "curtailed_kwh",
    "switch_actions",
    "solve_time_s",
    "status",
    "ac_losses_kw",
    "ac_vmin_pu",
    "tier1_fully_restored",
    "energised_buses_period1",
    "closed_tie_branches",
}
TOL_KWH = 1e-3


def restore(args: list[str], tmp_path, capsys) -> tuple[dict, str]:
    out = tmp_path / "restore.json"
    assert main(["restore", *args, "--json", str(out)]) == 0
    return json.loads(out.read_text()), capsys.readouterr().out


def check_ac(method: dict) -> None:
    assert method["ac_converged"]
    assert method["ac_islands_collapsed"] == []
    assert method["ac_vmin_pu"] > 0.9
    assert method["ac_losses_kw"] > 0


FAULT12 = 'name = "f12"\nkind = "branch"\nbranch = 12\nstart_h = 12.0\nrepair_h = 0.5\n'


@pytest.fixture(scope="module")
def fault_midday(tmp_path_factory):
    from mgcosim.scenarios.loader import load_scenario

    base = load_scenario("scenarios/fault_midday.toml")
    assert [(f.branch_ieee, f.start_s) for f in base.faults] == [(6, 12 * 3600)]
    folder = tmp_path_factory.mktemp("restore")
    path = folder / "fault12_short.toml"
    path.write_text('name = "fault12_short"\nseed = 20260601\n[[faults]]\n' + FAULT12)
    out, plot = folder / "fault12.json", folder / "residuals.png"
    args = ["restore", str(path), "--margin-h", "0", "--json", str(out), "--plot", str(plot)]
    assert main(args) == 0
    assert plot.stat().st_size > 10_000  # the residual plot was drawn
    return json.loads(out.read_text())


def test_fault_midday_report_keys_and_horizon(fault_midday):
    r = fault_midday
    assert set(r["methods"]) == {"independent", "admm", "centralised"}
    assert r["n_periods"] == 2  # 30-min repair, no margin, 15-min periods
    assert r["fault"]["branch_ieee"] == 12
    for m in r["methods"].values():
        assert KEYS <= set(m)
        assert set(m["shed_kwh_by_tier"]) == {"1", "2", "3"}
        assert m["status"] == "optimal"
        assert m["renewable_kwh"] > 0
        assert m["curtailed_kwh"] >= 0


def test_fault_midday_centralised_sheds_no_more_and_restores_tier1(fault_midday):
    ind, cen = fault_midday["methods"]["independent"], fault_midday["methods"]["centralised"]
    for tier in ("1", "2", "3"):
        assert cen["shed_kwh_by_tier"][tier] <= ind["shed_kwh_by_tier"][tier] + TOL_KWH
    assert cen["shed_kwh_total"] <= ind["shed_kwh_total"] + TOL_KWH
    assert cen["objective_cny"] <= ind["objective_cny"] + 1e-6 * abs(ind["objective_cny"])
    assert cen["tier1_fully_restored"] and not ind["tier1_fully_restored"]
    assert cen["shed_kwh_total"] < ind["shed_kwh_total"] - 1.0
    assert set(cen["closed_tie_branches"]) & {34, 36}


def test_fault_midday_admm_within_one_percent_and_sheds_less(fault_midday):
    ind, admm = fault_midday["methods"]["independent"], fault_midday["methods"]["admm"]
    assert admm["admm_converged"]
    assert -1e-4 <= admm["admm_gap_to_centralised_pct"] <= 1.0
    assert admm["shed_kwh_total"] < ind["shed_kwh_total"] - 1.0
    assert admm["admm_radial"] and admm["tier1_fully_restored"]
    assert set(admm["closed_tie_branches"]) & {34, 36}
    assert admm["admm_outer_iterations"] == len(admm["admm_history"])
    assert admm["admm_time_ratio_to_centralised"] > 0


def test_fault_midday_ac_check_converges_without_collapse(fault_midday):
    for m in fault_midday["methods"].values():
        check_ac(m)


def test_cut_off_area_without_microgrid_only_centralised_reaches_it(
    scenario_file, tmp_path, capsys
):
    fault = 'name = "f12"\nkind = "branch"\nbranch = 12\nstart_h = 12.0\nrepair_h = 1.0\n'
    path = scenario_file("[[faults]]\n" + fault, duration_h=24)
    r, printed = restore([str(path), "--margin-h", "0", "--admm-max-outer", "3"], tmp_path, capsys)
    ind, cen = r["methods"]["independent"], r["methods"]["centralised"]
    assert r["n_periods"] == 4
    for tier in ("1", "2", "3"):
        assert cen["shed_kwh_by_tier"][tier] <= ind["shed_kwh_by_tier"][tier] + TOL_KWH
    assert cen["shed_kwh_total"] < ind["shed_kwh_total"] - 1.0
    assert cen["tier1_fully_restored"] and not ind["tier1_fully_restored"]
    assert set(cen["closed_tie_branches"]) & {34, 36}
    assert ind["closed_tie_branches"] == []
    assert not {13, 14, 15, 16, 17, 18} & set(ind["energised_buses_period1"])
    check_ac(cen)
    for label in ("independent", "admm", "centralised", "ADMM:", "iterations", "AC loss kW"):
        assert label in printed


def test_scenario_without_faults_is_refused_before_solving(scenario_file, capsys):
    path = scenario_file()
    assert main(["restore", str(path)]) == 2
    err = capsys.readouterr().err
    assert path.name in err
    assert "[[faults]]" in err


# --- N-1 sweep ------------------------------------------------------------------------------
N1_BRANCHES = [1, 9, 12, 25]
TOL_MW = 1e-6


@pytest.fixture(scope="module")
def n1_sweep():
    from mgcosim.scenarios.loader import default_scenario_path, load_scenario
    from mgcosim.sim.restore_n1 import run_n1_sweep

    return run_n1_sweep(load_scenario(default_scenario_path()), 2, branches=N1_BRANCHES)


def test_n1_sweep_runs_every_case_and_plans_are_radial(n1_sweep):
    rows = n1_sweep["rows"]
    assert [r["branch"] for r in rows] == N1_BRANCHES
    assert n1_sweep["totals"]["errors"] == [] and n1_sweep["totals"]["not_radial"] == []
    for r in rows:
        assert "error" not in r
        assert r["branch"] not in r["cut_off_buses"]
        for name in ("centralised", "independent"):
            m = r[name]
            assert m["radial"], (r["branch"], name, m["radial_problem"])
            assert 1 in m["source_buses"]  # the main grid stays available
    assert len(rows[0]["cut_off_buses"]) == 32  # branch 1 cuts off everything but bus 1
    assert rows[1]["cut_off_buses"] == list(range(10, 19))


def test_n1_centralised_restores_the_proven_tier1_maximum(n1_sweep):
    for r in n1_sweep["rows"]:
        assert r["status_max"] == "optimal" and r["status_centralised"] == "optimal"
        best = r["tier1_restored_max_mw"]
        assert best <= r["tier1_max_bound_mw"] + TOL_MW
        assert best <= r["tier1_demand_cut_off_mw"] + TOL_MW
        assert abs(r["tier1_restored_centralised_mw"] - best) <= TOL_MW, r["branch"]
        assert r["tier1_restored_independent_mw"] <= best + TOL_MW
        assert not r["tier1_below_max"]
        assert r["tier1_max_below_demand"] == (best < r["tier1_demand_cut_off_mw"] - TOL_MW)
    assert n1_sweep["totals"]["tier1_below_max"] == []
    # 13-18 hold no microgrid: only the centralised plan (a tie) reaches its tier-1 loads
    r12 = n1_sweep["rows"][2]
    assert r12["tier1_restored_independent_mw"] == 0.0
    assert r12["tier1_restored_centralised_mw"] > 0.1
    assert set(r12["centralised"]["ties_closed"]) & {34, 36}


def test_n1_ac_voltages_in_band_or_reported(n1_sweep):
    totals = n1_sweep["totals"]
    for r in n1_sweep["rows"]:
        for name in ("centralised", "independent"):
            m = r[name]
            in_band = (
                m["ac_converged"]
                and m["ac_vmin_pu"] is not None
                and 0.9 <= m["ac_vmin_pu"] <= m["ac_vmax_pu"] <= 1.1
            )
            assert m["ac_voltage_out_of_band"] == (not in_band)
            violation = not in_band or bool(m["ac_islands_collapsed"])
            assert m["ac_violation"] == violation
            assert (r["branch"] in totals[f"ac_violations_{name}"]) == violation


def test_n1_cli_table_json_and_no_fault_needed(scenario_file, tmp_path, capsys):
    path = scenario_file()  # no [[faults]]: the sweep makes its own
    out = tmp_path / "n1.json"
    args = ["restore", str(path), "--n1", "--branches", "12", "--periods", "2", "--json", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    r = json.loads(out.read_text())
    assert r["n_periods"] == 2 and [x["branch"] for x in r["rows"]] == [12]
    assert r["totals"]["cases"] == 1 and r["totals"]["all_tier1_restored"] == 1
    for label in ("N-1 sweep", "T1 cen", "Vmin", "cases 1", "total time", "JSON"):
        assert label in printed


def test_n1_cli_refuses_a_tie_branch(scenario_file, capsys):
    assert main(["restore", str(scenario_file()), "--n1", "--branches", "34"]) == 2
    assert "not sectional" in capsys.readouterr().err


# --- main grid lost: the seed 003 coordination strategies -----------------------------------
def test_blackout_scenario_runs_the_three_coordination_strategies(tmp_path, capsys):
    out = tmp_path / "seed003.json"
    assert main(["restore", "scenarios/blackout.toml", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    r = json.loads(out.read_text())
    assert r["event"]["faulted_branches"] == [12, 22] and r["event"]["hour"] == 18
    assert not r["event"]["main_grid_available"]
    assert {"no_sharing", "central", "projection"} <= set(r["strategies"])
    assert r["projection_pref1_equals_central"] and r["tier1_projection_ge_no_sharing"]
    for label in ("Main grid lost", "no_sharing", "central", "projection", "vertices"):
        assert label in printed


def test_blackout_not_on_the_hour_is_refused(scenario_file, capsys):
    fault = 'name = "g"\nkind = "main_grid"\nstart_h = 18.5\nrepair_h = 1.0\n'
    path = scenario_file("[[faults]]\n" + fault, duration_h=24)
    assert main(["restore", str(path)]) == 2
    err = capsys.readouterr().err
    assert "faults.start_h" in err and "whole hour" in err
