"""Microgrids with internal networks in the co-simulation (``microgrid_model = "internal"``).

Real pandapower power flows and a real mosaik world, no mocks. Hand calculations use the
internal-network CSVs (``networks/data/mg_internal_*.csv``), read here with pandas so that
the expected numbers come from the data, not from the code under test. Tolerances: 1e-6 MW
for AC balances (pandapower's power mismatch tolerance is 1e-8 MVA per bus; the grid
former's slack is settled to ``SETTLE_TOL_MW`` = 1e-6 MW per island), 1e-12 for values that
are plain arithmetic on the data.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import types
from pathlib import Path

import numpy as np
import pandapower as pp
import pandas as pd
import pyomo.environ as pyo
import pytest
from conftest import write_scenario

from mgcosim.controllers.restoration import S_POLYGON_SIDES, declare_pcc_apparent_power
from mgcosim.controllers.solve import persistent_highs, solve_optimal
from mgcosim.networks.ieee33 import INTERNAL_KEY, build_ieee33
from mgcosim.networks.microgrid_internal import load_microgrid_networks
from mgcosim.networks.params import DATA_DIR
from mgcosim.scenarios.loader import ScenarioError, load_scenario, load_scenario_text
from mgcosim.sim.accounting import count_outside_bands
from mgcosim.sim.grid import SETTLE_TOL_MW, GridInputs, GridModel
from mgcosim.sim.results import voltage_bands
from mgcosim.sim.results_figures import read_steps
from mgcosim.sim.world import run_scenario

STEP_S = 900
MGS = ("MG1", "MG2", "MG3")
BUSES = pd.read_csv(DATA_DIR / "mg_internal_buses.csv")
LINES = pd.read_csv(DATA_DIR / "mg_internal_lines.csv")
UNITS = pd.read_csv(DATA_DIR / "mg_internal_units.csv")


@pytest.fixture(scope="module")
def internal(data):
    return load_microgrid_networks(data)


@pytest.fixture(scope="module")
def internal_net(data, internal):
    """The IEEE 33-bus net with the three internal networks (do not modify: module scope)."""
    return build_ieee33(data, internal)


@pytest.fixture
def model(internal_net, data):
    return GridModel(copy.deepcopy(internal_net), data)


def rows(table: pd.DataFrame, mg: str) -> pd.DataFrame:
    return table[table.microgrid == mg]


def named(net, table: str, prefix: str) -> pd.DataFrame:
    names = net[table].name.astype(str)
    return net[table][names.str.startswith(prefix)]


def nominal_loads(net) -> dict[str, float]:
    return {str(n): float(p) for n, p in zip(net.load.name, net.load.p_nom_mw, strict=True)}


def internal_losses_mw(net, mg: str) -> float:
    """Losses of the microgrid's internal lines plus its PCC line (the exchange is measured
    at the IEEE end of the PCC line)."""
    names = net.line.name.fillna("")
    mine = names.str.startswith(f"{mg}.") | (names == f"{mg}_pcc")
    return float(net.res_line.pl_mw[mine].sum())


# --- the built net ----------------------------------------------------------------------------


@pytest.mark.parametrize("mg", MGS)
def test_internal_elements_match_the_csv_rows(internal_net, mg):
    net = internal_net
    buses = rows(BUSES, mg)
    assert len(named(net, "bus", f"{mg}.b")) == len(buses) - 1  # + the PCC bus named {mg}
    pcc = net.bus.index[net.bus.name == mg]
    assert len(pcc) == 1
    assert (named(net, "bus", f"{mg}.b").ieee == 0).all()
    lines = named(net, "line", f"{mg}.")
    assert len(lines) == len(rows(LINES, mg))
    assert (lines.ieee == 0).all()
    for _, row in rows(LINES, mg).iterrows():  # ohms and rating as in the CSV (1 km lines)
        line = net.line[net.line.name == f"{mg}.{row.line}"].iloc[0]
        assert line.r_ohm_per_km == pytest.approx(row.r_ohm, rel=1e-12)
        assert line.x_ohm_per_km == pytest.approx(row.x_ohm, rel=1e-12)
        assert line.max_i_ka == pytest.approx(row.max_i_ka, rel=1e-12)
    feeder_head = rows(LINES, mg).iloc[0]
    head = net.line[net.line.name == f"{mg}.{feeder_head.line}"].iloc[0]
    assert head.from_bus == pcc[0]  # the tie line's flow enters the feeder head
    pcc_line = net.line[net.line.name == f"{mg}_pcc"].iloc[0]
    assert pcc_line.to_bus == pcc[0]
    loads = named(net, "load", f"{mg}_load.b")
    load_buses = buses[buses.load_p_mw > 0]
    assert len(loads) == len(load_buses)
    assert sorted(loads.p_nom_mw) == sorted(load_buses.load_p_mw)
    for kind, table in (("mt", "sgen"), ("wind", "sgen"), ("ess", "storage")):
        parts = named(net, table, f"{mg}_{kind}.")
        units = rows(UNITS, mg)
        assert len(parts) == (units.kind == kind).sum(), kind
        assert parts.in_service.all()


@pytest.mark.parametrize("mg", MGS)
def test_lumped_elements_are_out_of_service_at_the_pcc_bus(internal_net, mg):
    net = internal_net
    pcc = int(net.bus.index[net.bus.name == mg][0])
    for table, name in (
        ("sgen", f"{mg}_mt"),
        ("sgen", f"{mg}_wind"),
        ("storage", f"{mg}_ess"),
        ("load", f"{mg}_load"),
    ):
        row = net[table][net[table].name == name]
        assert len(row) == 1 and not row.in_service.iloc[0], name
        assert int(row.bus.iloc[0]) == pcc, name


@pytest.mark.parametrize(
    ("mg", "turbine_bus"), [("MG1", "MG1.b2"), ("MG2", "MG2.b2"), ("MG3", "MG3.b1")]
)
def test_grid_former_sits_at_the_largest_grid_forming_turbine(internal_net, data, mg, turbine_bus):
    turbines = rows(UNITS, mg).query("kind == 'mt' and grid_forming == 1")
    largest = turbines.loc[turbines.p_max_mw.idxmax()]
    assert turbine_bus == f"{mg}.b{largest.bus}"  # the expectation is the CSV's
    gf = internal_net.ext_grid[internal_net.ext_grid.name == f"{mg}_gf"].iloc[0]
    assert internal_net.bus.at[gf.bus, "name"] == turbine_bus
    assert not gf.in_service and gf.vm_pu == data.microgrid(mg).gf_vm_pu


def test_power_flow_converges_at_nominal_loads(internal_net):
    net = copy.deepcopy(internal_net)
    pp.runpp(net, numba=False)
    assert net.converged
    internal = net.bus.name.astype(str).str.contains(r"^MG\d")
    vm = net.res_bus.vm_pu[internal]
    assert vm.notna().all() and len(vm) == 15  # 3 x 5 buses
    for mg in MGS:  # no generation: the tie line brings the peak loads and the losses
        pcc = net.line.index[net.line.name == f"{mg}_pcc"][0]
        peak_mw = rows(BUSES, mg).load_p_mw.sum()
        expected = peak_mw + internal_losses_mw(net, mg)
        assert net.res_line.at[pcc, "p_from_mw"] == pytest.approx(expected, abs=1e-6)


def test_default_net_is_lumped(base_net, data):
    assert INTERNAL_KEY not in base_net
    assert not base_net.bus.name.astype(str).str.contains(".", regex=False).any()
    assert not base_net.load.name.astype(str).str.contains(".", regex=False).any()
    assert base_net.load.in_service.all() and base_net.sgen.in_service.all()
    assert GridModel(copy.deepcopy(base_net), data).internal is None


# --- the grid model ---------------------------------------------------------------------------


def test_exchange_is_the_hand_balance_of_the_internal_network(model):
    setpoints = {"MG1_mt": 0.3, "MG1_ess": -0.2, "MG2_mt": 0.1, "MG2_ess": 0.25, "MG3_ess": 0.1}
    available = {"MG1_wind": 0.5, "MG2_wind": 0.4, "MG3_wind": 0.7}
    demand = {"MG1_load": 0.45, "MG2_load": 0.5, "MG3_load": 0.3}
    out = model.step(
        0, STEP_S, GridInputs(load_p_mw=demand, available_p_mw=available, setpoints_mw=setpoints)
    )
    assert out["converged"] == 1
    units = out["unit_p_mw"]
    for mg in MGS:
        # the grid applied the commands as given (within every limit), so the balance is by hand
        load = demand[f"{mg}_load"]
        mt, wind = setpoints.get(f"{mg}_mt", 0.0), available[f"{mg}_wind"]
        ess = setpoints.get(f"{mg}_ess", 0.0)
        assert units[f"{mg}_mt"] == mt and units[f"{mg}_wind"] == wind and units[f"{mg}_ess"] == ess
        expected = load - mt - wind + ess + internal_losses_mw(model.net, mg)
        assert out["exchange_p_mw"][mg] == pytest.approx(expected, abs=1e-6)
        # the internal parts add up to the lumped values (rating shares sum to one)
        for kind in ("mt", "wind", "ess", "load"):
            parts = sum(v for k, v in units.items() if k.startswith(f"{mg}_{kind}."))
            assert parts == pytest.approx(units[f"{mg}_{kind}"], abs=1e-12), kind
    assert internal_losses_mw(model.net, "MG1") > 1e-4  # the balance needs the losses at all


def test_units_share_by_rating_at_the_lumped_power_factor(model, data):
    out = model.step(
        0, STEP_S, GridInputs(setpoints_mw={"MG1_mt": 0.32}, available_p_mw={"MG1_wind": 0.4})
    )
    units = out["unit_p_mw"]
    # CSV: G1 0.25 MW, G2 0.15 MW of MG1's 0.40 MW of turbines
    assert units["MG1_mt.G1"] == pytest.approx(0.32 * 0.25 / 0.40, abs=1e-12)
    assert units["MG1_mt.G2"] == pytest.approx(0.32 * 0.15 / 0.40, abs=1e-12)
    sgen = model.net.sgen.set_index("name")
    tan_phi = math.tan(math.acos(data.microgrid("MG1").mt_pf))
    for unit in ("MG1_mt.G1", "MG1_mt.G2"):
        assert sgen.at[unit, "q_mvar"] == pytest.approx(sgen.at[unit, "p_mw"] * tan_phi, rel=1e-12)


@pytest.mark.parametrize(
    ("mg", "demand_mw", "expected_mw"),
    [
        # MG1: tier 1 b1 0.10, tier 2 b2 0.15, tier 3 b3 0.10 + b4 0.15 (peak 0.50 MW); at a
        # demand of 0.40 MW every bus is at 0.8 of its peak
        ("MG1", 0.40, {"b1": 0.08, "b2": 0.06, "b3": 0.0, "b4": 0.0}),
        # MG2: tier 1 b1 0.15, tier 2 b2 0.15 + b4 0.15, tier 3 b3 0.15 (peak 0.60 MW)
        ("MG2", 0.60, {"b1": 0.15, "b2": 0.075, "b4": 0.075, "b3": 0.0}),
    ],
)
def test_load_pickup_by_tier(model, mg, demand_mw, expected_mw):
    buses = rows(BUSES, mg)
    peak = buses.load_p_mw.sum()
    tier = buses.groupby("tier").load_p_mw.sum() * demand_mw / peak
    z = (tier[1] + 0.5 * tier[2]) / demand_mw  # tier 1 and half of tier 2
    out = model.step(
        0,
        STEP_S,
        GridInputs(load_p_mw={f"{mg}_load": demand_mw}, served_fraction={f"{mg}_load": z}),
    )
    assert out["converged"] == 1
    units = out["unit_p_mw"]
    for bus, p_mw in expected_mw.items():  # hand numbers from the CSV
        assert units[f"{mg}_load.{bus}"] == pytest.approx(p_mw, abs=1e-12), bus
    assert out["load_unserved_mw"] == pytest.approx((1 - z) * demand_mw, abs=1e-9)


def test_full_pickup_gives_every_bus_its_share_and_counts_each_load_once(model, internal_net):
    ieee = {n: p for n, p in nominal_loads(internal_net).items() if n.startswith("load_b")}
    demand = ieee | {"MG1_load": 0.25, "MG2_load": 0.3, "MG3_load": 0.2}  # half of each peak
    out = model.step(0, STEP_S, GridInputs(load_p_mw=demand))
    assert out["load_demand_mw"] == pytest.approx(sum(demand.values()), abs=1e-9)
    assert out["load_served_mw"] == pytest.approx(sum(demand.values()), abs=1e-9)
    for _, row in BUSES[BUSES.load_p_mw > 0].iterrows():
        assert out["unit_p_mw"][f"{row.microgrid}_load.b{row.bus}"] == pytest.approx(
            0.5 * row.load_p_mw, abs=1e-12
        )


def test_island_runs_on_the_turbine_bus_and_the_units_carry_it(model, internal_net, data):
    """Branch 25 (6-26) cut: buses 26-33 with MG3 at 27; loads beyond 28 shed."""
    nominal = {n: p for n, p in nominal_loads(internal_net).items() if "." not in n}
    shed = {f"load_b{b}": 0.0 for b in range(29, 34)}
    out = model.step(
        0,
        STEP_S,
        GridInputs(
            load_p_mw=nominal,
            available_p_mw={"MG3_wind": 0.2},
            faults=[{"name": "f", "kind": "branch", "branch_ieee": 25}],
            served_fraction=shed,
        ),
    )
    assert out["converged"] == 1 and out["islands"] == ["MG3"]
    assert out["vm_pu"]["MG3.b1"] == pytest.approx(data.microgrid("MG3").gf_vm_pu, abs=1e-9)
    gf = model.net.ext_grid.name == "MG3_gf"
    assert abs(float(model.net.res_ext_grid.p_mw[gf].iloc[0])) <= SETTLE_TOL_MW  # settled
    units = out["unit_p_mw"]
    # island: IEEE buses 26-28 (0.18 MW at peak) + MG3's 0.40 MW = turbine at its 0.3 MW
    # maximum + wind 0.2 MW + storage discharge + losses (a few kW)
    assert units["MG3_mt"] == pytest.approx(0.3, abs=1e-12)
    assert units["MG3_mt.G1"] == units["MG3_mt"]
    assert -units["MG3_ess"] == pytest.approx(0.08, abs=5e-3)
    for bus in ("MG3", "MG3.b1", "MG3.b2", "MG3.b3", "MG3.b4"):
        assert 0.9 <= out["vm_pu"][bus] <= 1.1, bus


# --- scenario key -----------------------------------------------------------------------------


def test_microgrid_model_is_validated(tmp_path: Path):
    assert load_scenario_text("").microgrid_model == "lumped"
    assert load_scenario_text('microgrid_model = "internal"').microgrid_model == "internal"
    path = write_scenario(tmp_path, microgrid_model="meshed")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert err.value.field == "microgrid_model" and str(path) in str(err.value)
    assert "lumped, internal" in err.value.fix
    with pytest.raises(ScenarioError) as err:  # internal ratings no longer add up
        load_scenario_text(
            'microgrid_model = "internal"\n[microgrids.MG1]\nwind_p_rated_mw = 0.9\n'
        )
    assert err.value.field == "microgrid_model" and "wind" in err.value.message
    assert "lumped" in err.value.fix


# --- a real co-simulation ---------------------------------------------------------------------

FAULT = '[[faults]]\nname = "grid_loss"\nkind = "main_grid"\nstart_h = 1.0\nrepair_h = 0.5\n'
# the islands, loads and balances are under test here, not the plans' last 1e-3 of
# optimality: a 1 % gap keeps the run at a third of the time
FAULT += "[restoration]\nmip_rel_gap = 0.01\n"


@pytest.fixture(scope="module")
def islanded_run(tmp_path_factory) -> Path:
    """2 h, 15-min steps: the main grid is lost from 1:00 to 1:30, microgrids form islands."""
    folder = tmp_path_factory.mktemp("internal_run")
    path = write_scenario(folder, FAULT, duration_h=2, microgrid_model="internal")
    run_scenario(load_scenario(path), folder / "run", progress=False)
    return folder / "run"


def table(run: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(run / name).set_index("time_s")


def test_cosim_islands_on_the_turbine_bus(islanded_run, data):
    steps = read_steps(islanded_run).set_index("time_s")
    assert len(steps) == 8 and steps.converged.eq(1).all()
    assert json.loads((islanded_run / "manifest.json").read_text())["status"] == "completed"
    during = steps.loc[[3600, 4500]]
    assert (during.active_faults == "grid_loss").all()
    assert (during.p_substation_mw == 0).all()
    formers = during.islands.dropna()
    assert len(formers) >= 1  # the fault did island a microgrid
    vm = table(islanded_run, "bus_vm_pu.csv")
    turbine_bus = {"MG1": "MG1.b2", "MG2": "MG2.b2", "MG3": "MG3.b1"}  # see the test above
    for t, names in formers.items():
        for name in names.split(";"):
            assert vm.at[t, turbine_bus[name]] == pytest.approx(
                data.microgrid(name).gf_vm_pu, abs=1e-9
            )


def test_cosim_internal_voltages_within_band(islanded_run):
    vm = table(islanded_run, "bus_vm_pu.csv")
    internal = [c for c in vm.columns if c.startswith("MG")]
    assert len(internal) == 15  # the 3 PCC buses and 12 feeder buses, every step
    values = vm[internal].to_numpy(float)
    live = values[~np.isnan(values)]
    assert live.size > 0 and ((live >= 0.9) & (live <= 1.1)).all()
    loading = table(islanded_run, "branch_loading_percent.csv")
    assert {f"{mg}.L{k}" for mg in MGS for k in range(1, 5)} <= set(loading.columns)


def test_cosim_load_records_count_each_load_once(islanded_run):
    steps = read_steps(islanded_run).set_index("time_s")
    demand = table(islanded_run, "available_p_mw.csv")
    loads = [c for c in demand.columns if c.startswith("load_b") or c.endswith("_load")]
    # the profile's demands (IEEE loads + the lumped microgrid loads) are the recorded demand
    np.testing.assert_allclose(steps.load_demand_mw, demand[loads].sum(axis=1), atol=1e-9)
    np.testing.assert_allclose(
        steps.load_unserved_mw, steps.load_demand_mw - steps.load_served_mw, atol=1e-12
    )
    assert steps.load_unserved_mw.loc[[3600, 4500]].max() > 0.01  # something was shed
    assert steps.load_unserved_mw.drop([3600, 4500]).abs().max() < 1e-9


def test_cosim_microgrid_loads_spread_by_peak_share_and_tier(islanded_run):
    units = table(islanded_run, "unit_p_mw.csv")
    demand = table(islanded_run, "available_p_mw.csv")
    for mg in MGS:
        buses = rows(BUSES, mg)
        buses = buses[buses.load_p_mw > 0]
        share = buses.set_index("bus").load_p_mw / buses.load_p_mw.sum()  # CSV peak shares
        parts = units[[f"{mg}_load.b{b}" for b in buses.bus]]
        np.testing.assert_allclose(parts.sum(axis=1), units[f"{mg}_load"], atol=1e-12)
        whole = np.isclose(units[f"{mg}_load"], demand[f"{mg}_load"], rtol=0, atol=1e-12)
        assert whole.sum() >= 1
        for b in buses.bus:  # fully picked up: every bus gets its share of the demand
            np.testing.assert_allclose(
                units.loc[whole, f"{mg}_load.b{b}"],
                demand.loc[whole, f"{mg}_load"] * share[b],
                atol=1e-12,
            )
        tiers = {
            t: units[[f"{mg}_load.b{b}" for b in g.bus]].sum(axis=1)
            / (demand[f"{mg}_load"] * share[list(g.bus)].sum())
            for t, g in buses.groupby("tier")
        }
        fraction = pd.DataFrame(tiers).to_numpy()
        assert (np.diff(fraction, axis=1) <= 1e-9).all()  # never a lower tier before a higher


def test_cosim_energy_balance_with_internal_losses(islanded_run):
    """Substation + turbines + wind + PV = served load + storage charging + losses (all lines)."""
    steps = read_steps(islanded_run).set_index("time_s")
    units = table(islanded_run, "unit_p_mw.csv")
    lumped = [c for c in units.columns if "." not in c]
    gen = units[[c for c in lumped if c.endswith(("_mt", "_wind")) or c.startswith("PV_")]].sum(
        axis=1
    )
    ess = units[[c for c in lumped if c.endswith("_ess")]].sum(axis=1)
    lhs = steps.p_substation_mw + gen
    rhs = steps.load_served_mw + ess + steps.p_loss_mw
    # each island's slack is settled to SETTLE_TOL_MW; at most three islands
    np.testing.assert_allclose(lhs, rhs, atol=3 * SETTLE_TOL_MW + 1e-6)


def test_internal_buses_are_checked_against_their_own_band(tmp_path: Path):
    internal = load_scenario(write_scenario(tmp_path, microgrid_model="internal"))
    bands = voltage_bands(internal)
    assert len(bands) == len(BUSES) == 15
    for _, row in BUSES.iterrows():  # the PCC bus keeps the microgrid's name
        label = row.microgrid if row.is_pcc else f"{row.microgrid}.b{row.bus}"
        assert bands[label] == (row.v_min_pu, row.v_max_pu)
    vm = {"MG1": 0.94, "MG1.b1": 0.94, "18": 0.94, "MG2.b3": 1.12, "MG3": math.nan}
    assert count_outside_bands(vm, bands, 0.90, 1.10) == 2  # MG1 (0.95-1.05) and MG2.b3
    lumped = load_scenario(write_scenario(tmp_path, file_name="lumped.toml"))
    assert voltage_bands(lumped) == {}


def test_controllers_see_the_feeder_head_limit():
    """The lumped exchange limits become what the lines leaving the PCC bus carry at their
    rated current with the PCC bus at the bottom of its band (0.95 pu, mg_internal_buses.csv):
    MG1's feeder head is 0.040 kA at 12.66 kV, so S = 0.95 x sqrt(3) x 12.66 x 0.040 =
    0.833 MVA and P = 0.95 S at pf 0.95 = 0.792 MW (hand calculation from
    mg_internal_lines.csv); MG2's 0.050 kA gives 1.042 MVA. The lumped model keeps
    microgrids.csv's 1.5 MW and no apparent-power limit."""
    internal = load_scenario_text('microgrid_model = "internal"').data
    lumped = load_scenario_text("").data
    s_max = {mg.name: mg.pcc_s_max_mva for mg in internal.microgrids}
    p_max = {mg.name: mg.pcc_p_max_mw for mg in internal.microgrids}
    assert s_max["MG1"] == pytest.approx(0.95 * math.sqrt(3) * 12.66 * 0.040, abs=1e-9)
    assert s_max["MG2"] == pytest.approx(0.95 * math.sqrt(3) * 12.66 * 0.050, abs=1e-9)
    assert p_max["MG1"] == pytest.approx(0.95 * s_max["MG1"], abs=1e-9)
    assert all(mg.pcc_p_max_mw == 1.5 for mg in lumped.microgrids)
    assert all(math.isinf(mg.pcc_s_max_mva) for mg in lumped.microgrids)


def test_restoration_keeps_a_grid_formers_exchange_inside_its_rating(data):
    """The restoration model's PCC polygon (16 sides inscribed in the S circle): a grid
    former asked to export as much reactive power as it can stops at S cos(pi/16) on the Q
    axis (a facet's distance, hand calculation), and never leaves the circle."""
    s_max = 0.5
    mg = dataclasses.replace(data.microgrids[0], pcc_s_max_mva=s_max, pcc_p_max_mw=1.5)
    m = pyo.ConcreteModel()
    m.M = pyo.Set(initialize=[mg.name])
    m.T = pyo.RangeSet(0, 0)
    m.mg_bus_pm = pyo.Var(m.M, m.T)
    m.mg_bus_qm = pyo.Var(m.M, m.T)
    m.energised = pyo.Param([mg.bus_ieee], m.T, initialize=1.0)
    dd = types.SimpleNamespace(mg_bus={mg.name: mg.bus_ieee})
    declare_pcc_apparent_power(m, dd, {mg.name: s_max})
    for direction in range(24):
        theta = 2 * math.pi * direction / 24
        m.obj = pyo.Objective(
            expr=-(
                math.cos(theta) * m.mg_bus_pm[mg.name, 0]
                + math.sin(theta) * m.mg_bus_qm[mg.name, 0]
            )
        )
        solve_optimal(m, persistent_highs(), "polygon")
        p, q = pyo.value(m.mg_bus_pm[mg.name, 0]), pyo.value(m.mg_bus_qm[mg.name, 0])
        assert math.hypot(p, q) <= s_max + 1e-9
        assert math.hypot(p, q) >= s_max * math.cos(math.pi / S_POLYGON_SIDES) - 1e-9
        m.del_component(m.obj)
    m.obj = pyo.Objective(expr=m.mg_bus_qm[mg.name, 0])  # largest reactive export
    solve_optimal(m, persistent_highs(), "polygon")
    assert pyo.value(m.mg_bus_qm[mg.name, 0]) == pytest.approx(
        -s_max * math.cos(math.pi / S_POLYGON_SIDES), abs=1e-9
    )


def test_cosim_islands_keep_the_feeder_heads_within_rating(islanded_run):
    """With the feeder-head limit the islands' exports stay within the internal lines'
    ratings (before it, MG1.L1 reached 155 % in this run)."""
    loading = table(islanded_run, "branch_loading_percent.csv")
    internal = [c for c in loading.columns if c.startswith("MG") and "." in c]
    assert len(internal) == 12
    assert float(loading[internal].max().max()) <= 100.0
