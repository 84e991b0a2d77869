"""mgcosim's simulators in a user's own mosaik world: the example, the wiring checks, META docs.

Real mosaik worlds with the real mosaik-csv source and mosaik-hdf5 sink, real AC power flows.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import mosaik
import numpy as np
import pandas as pd
import pytest

from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.scenarios.loader import load_scenario
from mgcosim.sim import controller_sim, fault_sim, grid_sim, profile_sim, recorder_sim
from mgcosim.sim.grid import GridModel
from mgcosim.sim.grid_sim import WiringError
from mgcosim.sim.mosaik_world import add_mgcosim, attribute_tables

REPO = Path(__file__).parents[1]
EXAMPLES = REPO / "examples"
SCENARIO = EXAMPLES / "own_world.toml"
START = "2026-06-01 10:00:00"  # own_world.toml's start
N_STEPS = 8  # 2 h of 15 min


@pytest.fixture(scope="module")
def example_run(tmp_path_factory) -> tuple[dict, pd.DataFrame]:
    """examples/own_world.py run as a user would: its HDF5 results and its CSV input."""
    out = tmp_path_factory.mktemp("own_world")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "own_world.py"), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = pd.read_csv(EXAMPLES / "own_world_data.csv", skiprows=1, index_col=0)
    with h5py.File(out / "results.hdf5") as db:
        series = {
            name.split(".", 1)[1]: {attr: group[attr][:] for attr in group}
            for name, group in db["Series"].items()
        }
    return series, data


def test_example_applies_the_csv_values_to_their_units(example_run):
    series, data = example_run
    for unit in data.columns:
        given = data[unit].to_numpy()[:N_STEPS]
        np.testing.assert_allclose(series[unit]["p_profile_mw"], given, rtol=0, atol=1e-12)
        applied = series[unit]["p_mw"]
        if unit.startswith("load_b") or unit.endswith("_load"):  # no shedding in normal operation
            np.testing.assert_allclose(applied, given, rtol=0, atol=1e-12)
        else:  # wind/PV: the available power, capped by the controller's curtailment
            assert np.all(applied <= given + 1e-12) and np.all(applied >= 0)


def test_example_ac_result_is_sane_and_the_controller_acted(example_run):
    series, _ = example_run
    grid = series["grid"]
    assert np.all(grid["converged"] == 1)
    vm = np.array([s["vm_pu"] for name, s in series.items() if name.startswith("bus_")])
    assert vm.shape == (36, N_STEPS)  # 33 IEEE buses + 3 microgrid buses
    # IEEE 33-bus base case: 0.913 pu at bus 18 at full load (Baran & Wu 1989); lighter here
    assert vm.min() > 0.91 and vm.max() <= 1.0 + 1e-9
    # power balance of the AC solution: import + generation = load + charging + line losses
    units = {n: s["p_mw"] for n, s in series.items() if "p_profile_mw" in s}
    gen = sum(p for n, p in units.items() if n.endswith(("_wind", "_mt")) or n.startswith("PV_"))
    load = sum(p for n, p in units.items() if n.startswith("load_b") or n.endswith("_load"))
    charge = sum(p for n, p in units.items() if n.endswith("_ess"))
    balance = grid["p_substation_mw"] + gen - load - charge - grid["p_loss_mw"]
    np.testing.assert_allclose(balance, 0.0, atol=1e-6)
    # the rule-based controller dispatched the microgrid storage (set-points reached the grid)
    assert np.abs(charge).max() > 0.05
    soc = series["MG1_ess"]["soc_mwh"]
    assert soc[-1] < soc[0]  # MG1 discharged over the two hours


def _csv(path: Path, columns: dict[str, list[float]]) -> Path:
    """A mosaik-csv file (model name line, header line, one row per 15 min from START)."""
    times = pd.date_range(START, periods=len(next(iter(columns.values()))), freq="15min")
    table = pd.DataFrame(columns, index=pd.Index(times.strftime("%Y-%m-%d %H:%M:%S"), name="Date"))
    path.write_text("Feed\n" + table.to_csv())
    return path


def _world() -> mosaik.World:
    return mosaik.World(
        {"CSV": {"python": "mosaik_csv:CSV"}}, time_resolution=1.0, skip_greetings=True
    )


def _run_refused(world: mosaik.World, match: str) -> None:
    try:
        with pytest.raises(WiringError, match=match):
            world.run(until=900, print_progress=False)
    finally:
        world.shutdown()


def test_input_by_source_id_that_names_no_unit_is_refused(tmp_path):
    """The old way (CSV connected to the Grid entity's p_mw): its id 'Feed_0' is no unit."""
    world = _world()
    mg = add_mgcosim(world, SCENARIO, controller=False)
    datafile = _csv(tmp_path / "f.csv", {"p_mw": [0.1]})
    world.connect(
        world.start("CSV", sim_start=START, datafile=str(datafile)).Feed(), mg.grid, "p_mw"
    )
    _run_refused(world, r"input 'p_mw' from 'CSV-0.Feed_0' matches no unit")


def _feed(world: mosaik.World, datafile: Path, unit_entity, column: str) -> None:
    feed = world.start("CSV", sim_start=START, datafile=str(datafile)).Feed()
    world.connect(feed, unit_entity, (column, "p_profile_mw"))


def test_unfed_units_are_refused(tmp_path):
    world = _world()
    mg = add_mgcosim(world, SCENARIO, controller=False)
    _feed(world, _csv(tmp_path / "f.csv", {"load_b18": [0.05]}), mg.units["load_b18"], "load_b18")
    _run_refused(world, r"no profile input for 40 unit\(s\): load_b2, load_b3")


def test_unfed_units_take_zero_when_asked(tmp_path):
    world = mosaik.World(
        {"CSV": {"python": "mosaik_csv:CSV"}, "DB": {"python": "mosaik_hdf5:MosaikHdf5"}},
        time_resolution=1.0,
        skip_greetings=True,
    )
    mg = add_mgcosim(world, SCENARIO, controller=False, unfed_units="zero")
    _feed(world, _csv(tmp_path / "f.csv", {"L": [0.05, 0.07]}), mg.units["load_b18"], "L")
    db = world.start("DB", step_size=900, duration=1800).Database(filename=str(tmp_path / "r.h5"))
    for unit in ("load_b18", "load_b2", "PV_b18", "MG1_wind"):
        world.connect(mg.units[unit], db, "p_profile_mw", "p_mw")
    world.connect(mg.grid, db, "load_served_mw")
    world.run(until=1800, print_progress=False)
    with h5py.File(tmp_path / "r.h5") as h5:
        series = h5["Series"]
        np.testing.assert_allclose(series["MgcosimGrid-0.load_b18/p_mw"][:], [0.05, 0.07])
        for unit in ("load_b2", "PV_b18", "MG1_wind"):  # unfed: 0 MW, not the rating
            np.testing.assert_array_equal(series[f"MgcosimGrid-0.{unit}/p_profile_mw"][:], 0.0)
            np.testing.assert_array_equal(series[f"MgcosimGrid-0.{unit}/p_mw"][:], 0.0)
        # only load_b18 draws power (microgrid loads unfed too)
        np.testing.assert_allclose(series["MgcosimGrid-0.grid/load_served_mw"][:], [0.05, 0.07])


@pytest.mark.parametrize(
    "unit, attr, match",
    [
        ("MG1_mt", "p_profile_mw", r"unit 'MG1_mt' takes no profile"),  # follows set-points
        ("load_b18", "p_mw", r"entity 'load_b18' got input p_mw, which is an output"),
    ],
)
def test_inputs_the_grid_cannot_use_are_refused(tmp_path, unit, attr, match):
    world = _world()
    mg = add_mgcosim(world, SCENARIO, controller=False, unfed_units="zero")
    feed = world.start("CSV", sim_start=START, datafile=str(_csv(tmp_path / "f.csv", {"p": [0.2]})))
    world.connect(feed.Feed(), mg.units[unit], ("p", attr))
    _run_refused(world, match)


def test_admm_controller_without_forecasts_is_refused_before_planning(tmp_path):
    """The KeyError 'load_b2' a user met: the controller plans with every unit's forecast."""
    scenario = tmp_path / "admm.toml"
    scenario.write_text(SCENARIO.read_text().replace('"rule_based"', '"admm"'))
    world = _world()
    mg = add_mgcosim(world, scenario, forecasts="none")
    mg.feed_from_scenario(mg.profile_units)
    _run_refused(world, r"controller: no forecast_mw for 41 unit\(s\): load_b2, load_b3")


def test_faults_reach_the_grid_in_a_users_world(tmp_path):
    scenario = tmp_path / "fault.toml"
    fault = '[[faults]]\nname = "f6"\nkind = "branch"\nbranch = 6\nstart_h = 0.25\nrepair_h = 2\n'
    scenario.write_text(SCENARIO.read_text() + fault)
    world = mosaik.World(
        {"DB": {"python": "mosaik_hdf5:MosaikHdf5"}}, time_resolution=1.0, skip_greetings=True
    )
    mg = add_mgcosim(world, scenario, controller=False, scenario_feeds=_all_units(scenario))
    assert mg.faults is not None
    db = world.start("DB", step_size=900, duration=2700).Database(filename=str(tmp_path / "r.h5"))
    world.connect(mg.branches["6"], db, "p_from_mw")
    world.connect(mg.branches["5"], db, "p_from_mw")
    world.run(until=2700, print_progress=False)
    with h5py.File(tmp_path / "r.h5") as h5:
        p6 = h5["Series/MgcosimGrid-0.branch_6/p_from_mw"][:]
        p5 = h5["Series/MgcosimGrid-0.branch_5/p_from_mw"][:]
    assert p6[0] > 0.5 and np.all(p6[1:] == 0.0)  # the faulted line carries nothing
    assert np.all(p5[1:] < p5[0])  # upstream of it, less flows (downstream is cut off)


def _all_units(scenario: Path) -> list[str]:
    return grid_sim.profile_unit_names(load_scenario(scenario))


def test_every_meta_attribute_is_documented_with_unit_and_shape():
    metas = [grid_sim.META, controller_sim.META, fault_sim.META, profile_sim.META]
    docs = {
        "Grid": grid_sim.GRID_ATTRS,
        "Unit": grid_sim.UNIT_ATTRS,
        "Bus": grid_sim.BUS_ATTRS,
        "Branch": grid_sim.BRANCH_ATTRS,
        "Controller": controller_sim.CONTROLLER_ATTRS,
        "FaultInjector": fault_sim.FAULT_ATTRS,
        "Profile": profile_sim.PROFILE_ATTRS,
        "Recorder": recorder_sim.RECORDER_ATTRS,
    }
    for meta in [*metas, recorder_sim.META]:
        for model, desc in meta["models"].items():
            assert set(desc["attrs"]) == set(docs[model]), model
            for attr in desc["attrs"]:
                unit, shape, meaning = docs[model][attr]
                assert unit and shape and meaning, (model, attr)


def test_the_controllers_unit_list_is_the_grids():
    scenario = load_scenario(SCENARIO)
    model = GridModel(build_ieee33(scenario.data), scenario.data)
    assert grid_sim.profile_unit_names(scenario) == grid_sim.profile_units(model)
    assert len(grid_sim.profile_units(model)) == 41  # 32 DSO + 3 microgrid loads, 3 PV, 3 wind


def test_readme_carries_the_attribute_tables():
    readme = (REPO / "README.md").read_text()
    assert attribute_tables() in readme, "README out of date: paste mosaik_world.attribute_tables()"
