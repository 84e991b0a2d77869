"""Feeders with 12 and 48 microgrids (networks/scaled.py): shipped data, totals, real runs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mgcosim.networks.params import DATA_DIR, load_network_data
from mgcosim.networks.scaled import SCALED, folder, scaled_microgrids
from mgcosim.scenarios.loader import ScenarioError, load_scenario

SCENARIOS = Path(__file__).parents[1] / "scenarios"
BASE = pd.read_csv(DATA_DIR / "microgrids.csv")


@pytest.mark.parametrize("n", [12, 48])
def test_shipped_data_is_what_the_generator_writes(n):
    shipped = pd.read_csv(folder(n) / "microgrids.csv")
    pd.testing.assert_frame_equal(shipped, scaled_microgrids(BASE, n), check_dtype=False)


@pytest.mark.parametrize("n", [12, 48])
def test_total_capacity_is_that_of_the_three_built_in_microgrids(n):
    """Hand calculation: n / 3 copies of each built-in microgrid, each scaled by 3 / n."""
    mgs = load_network_data(folder(n)).microgrids
    assert [m.name for m in mgs] == [f"MG{k}" for k in range(1, n + 1)]
    for column in SCALED:
        total = sum(getattr(m, column) for m in mgs)
        assert total == pytest.approx(BASE[column].sum(), rel=1e-6), column
    assert all(2 <= m.bus_ieee <= 33 for m in mgs)
    per_bus = pd.Series([m.bus_ieee for m in mgs]).value_counts()
    if n <= 32:  # spread: one per bus
        assert per_bus.max() == 1
    else:  # every bus 2..33 hosts one or two
        assert len(per_bus) == 32 and set(per_bus) == {1, 2}


def test_the_rest_of_the_data_is_the_built_in_data():
    scaled, builtin = load_network_data(folder(12)), load_network_data()
    assert scaled.dso == builtin.dso and scaled.pv == builtin.pv
    pd.testing.assert_frame_equal(scaled.branches, builtin.branches)


def test_a_scenario_may_not_move_a_microgrid_onto_a_taken_bus(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('network = "ieee33_mg12"\n[microgrids.MG2]\nbus_ieee = 2\n')
    with pytest.raises(ScenarioError, match="own bus"):
        load_scenario(path)


def test_internal_microgrid_model_is_refused_on_a_scaled_feeder(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('network = "ieee33_mg48"\nmicrogrid_model = "internal"\n')
    with pytest.raises(ScenarioError, match="lumped"):
        load_scenario(path)


def test_forty_eight_microgrids_run_through_mosaik_and_pandapower(tmp_path, run):
    text = (SCENARIOS / "ieee33_mg48.toml").read_text().replace("duration_h = 24", "duration_h = 1")
    path = tmp_path / "mg48.toml"
    path.write_text(text)
    out = run(path)
    assert json.loads((out / "manifest.json").read_text())["status"] == "completed"
    steps = pd.read_csv(out / "steps.csv")
    assert len(steps) == 4 and steps.converged.all()
    exchange = pd.read_csv(out / "exchange_p_mw.csv")
    assert {f"MG{k}" for k in range(1, 49)} <= set(exchange.columns)
    # every microgrid's PCC limit holds in the AC power flow (networks/scaled.py: 3/48 of 1.5 MW)
    limit = BASE.pcc_p_max_mw.max() * 3 / 48
    assert exchange.drop(columns=["time_s", "time"]).abs().max().max() <= limit + 1e-6
    vm = pd.read_csv(out / "bus_vm_pu.csv").drop(columns=["time_s", "time"])
    assert vm.min().min() >= 0.9  # the voltage band of networks/data/dso.csv


@pytest.mark.parametrize("n", [12, 48])
def test_shipped_scenarios_validate_without_warnings(n):
    from mgcosim.scenarios.checks import scenario_warnings

    sc = load_scenario(SCENARIOS / f"ieee33_mg{n}.toml")
    assert sc.network == f"ieee33_mg{n}" and len(sc.data.microgrids) == n
    assert scenario_warnings(sc) == []
