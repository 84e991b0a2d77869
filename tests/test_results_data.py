"""Analysis-ready results: clock time in every table, the long Parquet table, schema.json,
the pandapower net, one sign convention per split table, and :func:`read_table`.

One real run (mosaik world, AC power flows): 1 h from 18:00, rule-based, the microgrids as
their internal networks (so that microgrid buses, lines and unit parts appear beside the
feeder's). In that hour storage both charges and discharges, PV and wind both produce.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandapower as pp
import pandas as pd
import pytest
from conftest import write_scenario

from mgcosim.networks.storage import soc_change_mwh
from mgcosim.scenarios.loader import default_scenario_path, load_scenario
from mgcosim.sim.results import plan_row, read_table, validation_row
from mgcosim.sim.run_files import read_long_table, tidy_files
from mgcosim.sim.schema import BY_FILE, BY_KEY, DATETIME_COLUMN, TIME_COLUMN, column_spec
from mgcosim.sim.world import run_scenario

START = pd.Timestamp("2026-06-01T18:00:00")
STEP_S = 900
MGS = ("MG1", "MG2", "MG3")
TOL = 1e-12  # CSV cells are 17-digit reprs: a value read back is the value written


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("results_data")
    path = write_scenario(
        folder,
        f"start = {START.isoformat()}\n",
        duration_h=1,
        controller="rule_based",
        microgrid_model="internal",
    )
    out = folder / "run"
    run_scenario(load_scenario(path), out, progress=False)
    return out


def csv_tables(run_dir: Path) -> list[Path]:
    tables = sorted(run_dir.glob("*.csv"))
    assert len(tables) >= 18  # every non-optimiser table of sim.schema
    return tables


def test_every_table_has_time_s_first_and_the_clock_time_last(run_dir):
    for path in csv_tables(run_dir):
        table = pd.read_csv(path)
        assert table.columns[0] == TIME_COLUMN and table.columns[-1] == DATETIME_COLUMN, path
        assert list(table.time_s) == [0, 900, 1800, 2700], path
        clock = pd.to_datetime(table[DATETIME_COLUMN])
        expected = START + pd.to_timedelta(table.time_s, unit="s")
        assert (clock == expected).all(), path
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert pd.Timestamp(manifest["start"]) == START


def test_read_table_has_a_datetime_index_and_integer_feeder_buses(run_dir):
    vm = read_table(run_dir, "bus_vm")
    assert isinstance(vm.index, pd.DatetimeIndex) and vm.index.name == "time"
    assert list(vm.index) == list(pd.date_range(START, periods=4, freq="15min"))
    raw = pd.read_csv(run_dir / "bus_vm_pu.csv")
    assert vm[18].tolist() == raw["18"].tolist()  # vm[18], not vm["18"]
    assert list(read_table(run_dir, "bus_vm", network="feeder").columns) == list(range(1, 34))
    mg1 = read_table(run_dir, "bus_vm_pu.csv", network="MG1")
    assert list(mg1.columns) == ["MG1", "MG1.b1", "MG1.b2", "MG1.b3", "MG1.b4"]
    assert all(isinstance(c, str) for c in mg1.columns)  # microgrid buses keep their names
    loading = read_table(run_dir, "branch_loading", network="feeder")
    assert list(loading.columns) == list(range(1, 38))
    assert "MG1_pcc" in read_table(run_dir, "branch_loading").columns
    with pytest.raises(ValueError, match="no table 'vm'.*bus_vm"):
        read_table(run_dir, "vm")


def test_long_table_round_trips_to_every_per_element_csv(run_dir):
    long = read_long_table(run_dir)
    assert list(long.columns) == [
        "time", "time_s", "element", "element_type", "quantity", "unit", "value",
    ]  # fmt: skip
    assert pd.api.types.is_datetime64_any_dtype(long.time)
    files = [name for name in tidy_files() if (run_dir / name).is_file()]
    assert set(long.quantity.astype(str)) == {BY_FILE[name].key for name in files}
    cells = 0
    for name in files:
        f = BY_FILE[name]
        table = pd.read_csv(run_dir / name).set_index(TIME_COLUMN).drop(columns=DATETIME_COLUMN)
        rows = long[long.quantity == f.key]
        assert set(rows.unit.astype(str)) == {f.unit}, name
        assert set(rows.element_type.astype(str)) == {f.element}, name
        wide = rows.pivot(index="time_s", columns="element", values="value")
        wide = wide.reindex(index=table.index, columns=table.columns)
        np.testing.assert_allclose(wide.to_numpy(), table.to_numpy(float), atol=TOL, err_msg=name)
        assert rows.value.sum() == pytest.approx(table.to_numpy(float).sum(), abs=1e-9), name
        cells += table.size
    assert len(long) == cells  # nothing lost, nothing twice


def test_schema_json_covers_every_column_of_every_table(run_dir):
    schema = json.loads((run_dir / "schema.json").read_text())
    tables = schema["tables"]
    assert set(tables) == {path.name for path in csv_tables(run_dir)}
    for path in csv_tables(run_dir):
        header = list(pd.read_csv(path, nrows=0).columns)
        columns = tables[path.name]["columns"]
        assert [c["name"] for c in columns] == header, path.name
        for column in columns:
            assert not column.get("undeclared"), (path.name, column["name"])
            assert column["unit"], (path.name, column["name"])
        f = BY_FILE[path.name]
        for column in columns[1:-1]:  # the element columns between time_s and time
            if f.element:
                assert column["element"] is not None, (path.name, column["name"])
    signs = {c["name"]: c["sign"] for c in tables["storage_discharge_p_mw.csv"]["columns"]}
    assert signs["MG1_ess"].startswith("> 0 discharges")
    assert schema["tables"]["bus_vm_pu.csv"]["columns"][1]["unit"] == "pu"


def test_net_json_holds_every_element_the_columns_name(run_dir):
    net = pp.from_json(str(run_dir / "net.json"))
    schema = json.loads((run_dir / "schema.json").read_text())["tables"]
    checked = 0
    for name, table in schema.items():
        for column in table["columns"]:
            element = column.get("element")
            if element is None:
                continue
            row = net[element["table"]].loc[element["index"]]
            label = column["name"]
            if element["table"] in ("bus", "line") and label.isdigit():
                assert int(row.ieee) == int(label) and element["network"] == "feeder"
            else:
                pcc = table["element_table"] == "microgrid"  # a microgrid by its PCC line
                assert row["name"] == (f"{label}_pcc" if pcc else label), (name, label)
                assert element["table"] not in ("bus", "line") or int(row.ieee) == 0
            checked += 1
    assert checked > 300
    # every bus of the net is a column of bus_vm_pu.csv: 33 feeder + 3 x 5 microgrid buses
    assert len(net.bus) == len(pd.read_csv(run_dir / "bus_vm_pu.csv").columns) - 2 == 48
    assert pp.runpp(net) is None and net.converged  # a working net, not a shell of tables


def test_sign_conventions_of_the_split_tables(run_dir, data):
    demand, served, shed = (
        read_table(run_dir, k) for k in ("load_demand", "load_served", "load_shed")
    )
    assert (demand >= 0).all().all() and (served >= 0).all().all() and (shed >= 0).all().all()
    np.testing.assert_allclose(served + shed, demand, atol=1e-12)
    available = read_table(run_dir, "renewable_available")
    used = read_table(run_dir, "renewable_p")[available.columns]
    assert (used >= 0).all().all() and (used <= available + 1e-12).all().all()
    assert (used.filter(like="PV_") > 0).any().any() and (used.filter(like="_wind") > 0).all().all()
    assert (read_table(run_dir, "turbine_p") >= 0).all().all()
    # storage: > 0 discharging, the opposite of pandapower's (and unit_p_mw.csv's) p_mw
    discharge = read_table(run_dir, "storage_discharge")
    applied = read_table(run_dir, "unit_p")[discharge.columns]
    np.testing.assert_array_equal(discharge.to_numpy(), -applied.to_numpy())
    soc = read_table(run_dir, "soc")
    assert (discharge > 1e-3).any().any() and (discharge < -1e-3).any().any()  # both ways
    for mg in data.microgrids:
        name = f"{mg.name}_ess"
        expected = [
            soc_change_mwh(-p, mg.ess_eta_ch, mg.ess_eta_dis, STEP_S / 3600)
            for p in discharge[name].iloc[:-1]
        ]
        np.testing.assert_allclose(np.diff(soc[name]), expected, atol=1e-12)
        assert ((np.diff(soc[name]) < 0) == (discharge[name].iloc[:-1] > 0)).all()
    # exchange > 0 imports: PCC exchange = served load - wind - turbine - discharge + losses
    exchange = read_table(run_dir, "exchange")
    turbines = read_table(run_dir, "turbine_p")
    for mg in MGS:
        load = served[[c for c in served.columns if c.startswith(f"{mg}_load")]].sum(axis=1)
        own = used[f"{mg}_wind"] + turbines[f"{mg}_mt"] + discharge[f"{mg}_ess"]
        losses = exchange[mg] - (load - own)
        # internal + PCC line losses of ~0.5 MW over short cables (AC power flow: 0.2-0.4 kW)
        assert ((losses > 0) & (losses < 5e-3)).all(), (mg, losses.tolist())


def test_split_tables_follow_the_schema_declaration(run_dir):
    for key in ("renewable_available", "renewable_p", "turbine_p", "storage_discharge"):
        f = BY_KEY[key]
        assert (run_dir / f.file).is_file() and f.tidy and f.sign
    names = set(pd.read_csv(run_dir / "storage_discharge_p_mw.csv", nrows=0).columns)
    assert names == {TIME_COLUMN, DATETIME_COLUMN, "MG1_ess", "MG2_ess", "MG3_ess"}


def test_the_optimisers_tables_are_declared_column_by_column():
    """plans.csv and validation.csv (written by the optimisers only): every column their
    writers give has a unit in sim.schema, so schema.json covers them too."""
    scenario = load_scenario(default_scenario_path())
    agents = ["DSO", *(mg.name for mg in scenario.data.microgrids)]
    headers = {
        "plans": list(plan_row({}, agents)),
        "validation": list(validation_row({"vm_pu": {}, "loading_percent": {}}, {}, scenario)),
        "p2p": ["MG1->MG2"],
        "soc_plan": ["MG1_ess", "MESS_b23"],
    }
    for key, columns in headers.items():
        for name in [TIME_COLUMN, *columns, DATETIME_COLUMN]:
            spec = column_spec(BY_KEY[key], name)
            assert spec is not None and spec.unit, (key, name)
    assert column_spec(BY_KEY["plans"], "no_such_column") is None  # the check can fail
