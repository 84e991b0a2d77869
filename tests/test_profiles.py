"""Profiles as time series: hour / date-time tables, CSV / Parquet, pu / MW, forecast and
actual series, the refusals, the SimBench converter and the two-day SimBench scenario.

Sources of the reference values: the default scenario's checksum and values were computed on
main (b0bb907) before profiles.py existed; every other reference is the profile file the
test writes itself (its rows, times the unit's rating from networks/data), or the
``simbench`` package's own profile tables.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mgcosim.networks.params import load_network_data
from mgcosim.scenarios.loader import ScenarioError, default_scenario_path, load_scenario
from mgcosim.sim.stochastic import ErrorModel, forecast_around
from mgcosim.sim.units import stochastic_units

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
SIMBENCH_TOML = SCENARIOS / "simbench_two_days.toml"
SIMBENCH_CSV = SCENARIOS / "simbench_two_days.csv"
DATA = load_network_data()
MG1 = DATA.microgrid("MG1")
PV18 = next(pv for pv in DATA.pv if pv.name == "PV_b18")
START = "start = 2016-06-01T00:00:00\n"


def scenario(tmp_path: Path, toml: str, files: dict[str, object]) -> Path:
    """``case.toml`` with ``toml`` and the profile ``files`` (text, or a DataFrame written
    as Parquet when its name ends in .parquet) beside it."""
    for name, content in files.items():
        if isinstance(content, pd.DataFrame):
            content.to_parquet(tmp_path / name)
        else:
            (tmp_path / name).write_text(content)
    path = tmp_path / "case.toml"
    path.write_text(toml)
    return path


def two_day_frame(step_min: int = 15) -> pd.DataFrame:
    """48 h of distinct per-unit values: day 2 is not day 1 (wind 0.2 -> 0.6, load x 1.5)."""
    t = pd.date_range("2016-06-01", periods=48 * 60 // step_min, freq=f"{step_min}min")
    h = (t - t[0]).total_seconds().to_numpy() / 3600
    day2 = h >= 24
    return pd.DataFrame(
        {
            "time": t,
            "MG1_wind_pu": np.where(day2, 0.6, 0.2) + 0.001 * (h % 24),
            "MG1_load_pu": (0.5 + 0.01 * (h % 24)) * np.where(day2, 1.5, 1.0),
            "PV_b18_pu": np.clip(np.sin((h % 24 - 6) / 12 * np.pi), 0, None) * 0.8,
        }
    )


def csv_text(frame: pd.DataFrame) -> str:
    out = frame.copy()
    if "time" in out:
        out["time"] = out["time"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return out.to_csv(index=False)


def refused(path: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert err.path == path and "Fix: " in str(err) and err.fix, str(err)
    return err


# ----------------------------------------------------------------------------- default


def test_default_scenario_profiles_are_those_of_main() -> None:
    """Checksum over every unit's day-ahead forecast and realisation (float64 bytes, units by
    name), and a few values, computed on main b0bb907 before the profile formats changed."""
    units = stochastic_units(load_scenario(default_scenario_path()))
    digest = hashlib.sha256()
    for name in sorted(units):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(units[name].base_forecast_mw).tobytes())
        digest.update(np.ascontiguousarray(units[name].realised_mw).tobytes())
    assert len(units) == 41
    assert digest.hexdigest() == "abab2c97e4665f80dc5cdf62afcdb933cf32a6b1a770038e02082c4ab546dc8e"
    wind = units["MG1_wind"]
    assert wind.n_steps == 192
    np.testing.assert_allclose(wind.base_forecast_mw[[0, 37, 100]], [0.496, 0.294, 0.528])
    np.testing.assert_allclose(
        wind.realised_mw[[0, 37, 100]],
        [0.5515641108310814, 0.23386375276710383, 0.5175022957676616],
        rtol=0,
        atol=1e-15,
    )
    assert units["MG2_load"].realised_mw.sum() == pytest.approx(93.31125171515708, abs=1e-12)


# ----------------------------------------------------------------------------- formats


def test_datetime_csv_of_two_days_in_pu(tmp_path: Path) -> None:
    frame = two_day_frame()
    toml = START + "duration_h = 48\n[profiles]\nsource = 'p.csv'\n"
    sc = load_scenario(scenario(tmp_path, toml, {"p.csv": csv_text(frame)}))
    assert sc.profiles.repeat == "none" and sc.n_steps == 192
    units = stochastic_units(sc)
    wind = units["MG1_wind"].base_forecast_mw[:192]
    # 15-min rows sampled at 15-min steps: the rows times the rating, exactly
    np.testing.assert_array_equal(wind, frame.MG1_wind_pu.to_numpy() * MG1.wind_p_rated_mw)
    assert wind[96:].mean() - wind[:96].mean() == pytest.approx(0.4 * MG1.wind_p_rated_mw)
    pv = units["PV_b18"].base_forecast_mw[:192]
    np.testing.assert_allclose(pv, frame.PV_b18_pu.to_numpy() * PV18.p_rated_mw, atol=1e-15)
    # units without a column take the built-in generic shapes
    builtin = stochastic_units(load_scenario(default_scenario_path()))
    np.testing.assert_array_equal(
        units["load_b5"].base_forecast_mw[:96], builtin["load_b5"].base_forecast_mw[:96]
    )


def test_hour_table_of_several_days_with_hourly_rows(tmp_path: Path) -> None:
    hours = np.arange(48)
    wind = np.where(hours < 24, 0.1, 0.9)
    csv = pd.DataFrame({"hour": hours, "wind_pu": wind}).to_csv(index=False)
    toml = "duration_h = 47\nphysical_step_min = 30\ncontroller_step_min = 60\n"
    toml += "[profiles]\nsource = 'p.csv'\nrepeat = 'none'\n"
    sc = load_scenario(scenario(tmp_path, toml, {"p.csv": csv}))
    w = sc.profiles.values_pu("wind_pu", 0.0, 0.5, 94)
    assert w[0] == 0.1 and w[47] == pytest.approx(0.5) and w[48] == 0.9 and w[93] == 0.9
    # past the table (the last plan's look-ahead): the value one day earlier
    ahead = sc.profiles.values_pu("wind_pu", 47.0, 1.0, 3)  # 47 h, 48 h -> 24 h, 49 h -> 25 h
    np.testing.assert_array_equal(ahead, [0.9, 0.9, 0.9])
    assert sc.profiles.values_pu("wind_pu", 24.0, 1.0, 1)[0] == 0.9


def test_mw_columns_are_divided_by_the_ratings(tmp_path: Path) -> None:
    rows = two_day_frame(60).iloc[:24]
    mw = pd.DataFrame(
        {
            "time": rows.time,
            "MG1_wind_mw": rows.MG1_wind_pu * MG1.wind_p_rated_mw,
            "MG1_load_mw": rows.MG1_load_pu * MG1.load_p_peak_mw,
            "load_b5_mw": 0.05,  # IEEE 33 bus 5: nominal 0.06 MW (case33bw)
        }
    )
    toml = START + "duration_h = 24\nphysical_step_min = 60\n[profiles]\nsource = 'p.csv'\n"
    sc = load_scenario(scenario(tmp_path, toml, {"p.csv": csv_text(mw)}))
    assert {"MG1_wind_pu", "MG1_load_pu", "load_b5_pu"} <= set(sc.profiles.table.columns)
    np.testing.assert_allclose(sc.profiles.table.load_b5_pu, 0.05 / 0.06, rtol=1e-12)
    units = stochastic_units(sc)
    for name in ("MG1_wind", "MG1_load"):
        np.testing.assert_allclose(
            units[name].base_forecast_mw[:24], mw[f"{name}_mw"], rtol=0, atol=1e-12
        )
    np.testing.assert_allclose(units["load_b5"].base_forecast_mw[:24], 0.05, atol=1e-12)


def test_parquet_with_datetime_index_equals_the_csv(tmp_path: Path) -> None:
    frame = two_day_frame()
    toml = START + "duration_h = 48\n[profiles]\nsource = '{}'\n"
    csv = load_scenario(scenario(tmp_path, toml.format("p.csv"), {"p.csv": csv_text(frame)}))
    parquet = scenario(tmp_path, toml.format("p.parquet"), {"p.parquet": frame.set_index("time")})
    pq = load_scenario(parquet)
    assert isinstance(pd.read_parquet(tmp_path / "p.parquet").index, pd.DatetimeIndex)
    from_pq, from_csv = stochastic_units(pq), stochastic_units(csv)
    for name in ("MG1_wind", "MG1_load", "PV_b18", "MG2_wind"):
        np.testing.assert_array_equal(from_pq[name].realised_mw, from_csv[name].realised_mw)


def test_parquet_hour_table(tmp_path: Path) -> None:
    frame = pd.DataFrame({"hour": [0.0, 6.0, 12.0, 18.0], "load_pu": [0.4, 0.6, 1.0, 0.8]})
    sc = load_scenario(scenario(tmp_path, "[profiles]\nsource = 'd.pq'\n", {"d.pq": frame}))
    assert sc.profiles.repeat == "daily"
    np.testing.assert_allclose(sc.profiles.values_pu("load_pu", 3.0, 6.0, 4), [0.5, 0.8, 0.9, 0.6])


def test_declared_daily_repeat_runs_two_days(tmp_path: Path) -> None:
    csv = "hour,wind_pu\n0,0.2\n12,0.8\n"
    toml = "duration_h = 48\n[profiles]\nsource = 'p.csv'\nrepeat = 'daily'\n"
    sc = load_scenario(scenario(tmp_path, toml, {"p.csv": csv}))
    wind = stochastic_units(sc)["MG1_wind"].base_forecast_mw
    np.testing.assert_array_equal(wind[:96], wind[96:192])


# ----------------------------------------------------------------------------- actuals


def test_given_actuals_are_realised_without_noise(tmp_path: Path) -> None:
    frame = two_day_frame()
    both = frame.assign(
        MG1_wind_actual_pu=np.clip(frame.MG1_wind_pu + 0.15, 0, 1),
        MG1_load_actual_pu=frame.MG1_load_pu * 0.9,
        PV_b18_actual_pu=frame.PV_b18_pu * 0.5,
    )
    toml = START + "duration_h = 48\n[profiles]\nsource = 'p.csv'\n"
    sc = load_scenario(scenario(tmp_path, toml, {"p.csv": csv_text(both)}))
    units = stochastic_units(sc)
    n = sc.n_steps
    for name, rating in (
        ("MG1_wind", MG1.wind_p_rated_mw),
        ("MG1_load", MG1.load_p_peak_mw),
        ("PV_b18", PV18.p_rated_mw),
    ):
        unit = units[name]
        # realised == the given actuals exactly; the forecast is the given forecast column
        np.testing.assert_array_equal(unit.realised_mw[:n], both[f"{name}_actual_pu"] * rating)
        np.testing.assert_array_equal(unit.base_forecast_mw[:n], both[f"{name}_pu"] * rating)
    # the rolling forecast corrects towards what happened: wind 0.15 pu above the forecast
    wind = units["MG1_wind"]
    k0 = 40
    gap = wind.forecast_mw(k0, 1)[0] - wind.base_forecast_mw[k0]
    phi = sc.profiles.wind_phi_per_h**0.25
    assert gap == pytest.approx(phi * 0.15 * MG1.wind_p_rated_mw, rel=1e-9)
    # units without actuals keep the noise model
    assert not np.array_equal(units["MG2_wind"].realised_mw, units["MG2_wind"].base_forecast_mw)


def test_actuals_alone_get_a_forecast_from_the_error_model(tmp_path: Path) -> None:
    frame = two_day_frame()
    actual = pd.DataFrame({"time": frame.time, "MG1_wind_actual_mw": frame.MG1_wind_pu * 0.5})
    toml = START + "duration_h = 48\n[profiles]\nsource = 'p.csv'\n"
    sc = load_scenario(scenario(tmp_path, toml, {"p.csv": csv_text(actual)}))
    wind = stochastic_units(sc)["MG1_wind"]
    given = actual.MG1_wind_actual_mw.to_numpy()
    np.testing.assert_allclose(wind.realised_mw[:192], given, rtol=0, atol=1e-15)
    model = ErrorModel(sc.profiles.wind_sigma_pu, sc.profiles.wind_phi_per_h, "additive")
    expected = forecast_around(
        "MG1_wind", wind.realised_mw, 0.25, model, MG1.wind_p_rated_mw, sc.seed
    )
    np.testing.assert_array_equal(wind.base_forecast_mw, expected)
    error_pu = (wind.realised_mw - wind.base_forecast_mw) / MG1.wind_p_rated_mw
    assert 0.05 < error_pu.std() < 0.2  # sigma 0.10 pu of rating, clipped near 0


def test_actuals_reach_the_grid_unchanged_in_the_cosimulation(tmp_path: Path) -> None:
    """Through mosaik and pandapower: the demand the grid applies and records is the given
    actual series times the load's nominal power (IEEE 33 bus 18: 0.09 MW, case33bw)."""
    from mgcosim.sim.world import run_scenario

    hours = np.arange(6)
    actual = pd.DataFrame({"hour": hours, "load_b18_actual_pu": 0.5 + 0.1 * hours})
    toml = "duration_h = 4\nphysical_step_min = 60\nhorizon_h = 2\n"
    toml += "[profiles]\nsource = 'a.csv'\nrepeat = 'none'\n"
    sc = load_scenario(scenario(tmp_path, toml, {"a.csv": actual.to_csv(index=False)}))
    run_scenario(sc, tmp_path / "run", progress=False)
    demand = pd.read_csv(tmp_path / "run" / "load_demand_p_mw.csv")
    np.testing.assert_allclose(demand["load_b18"], 0.09 * actual.load_b18_actual_pu[:4], rtol=1e-12)
    other = stochastic_units(sc)["load_b5"]  # no actuals: forecast plus noise
    np.testing.assert_allclose(demand["load_b5"], other.realised_mw[:4], rtol=1e-12)
    assert not np.allclose(demand["load_b5"], other.base_forecast_mw[:4], rtol=1e-6)


def test_implied_error_where_the_forecast_is_zero() -> None:
    """PV forecast 0 with 0.1 MW actual: realised as given; the multiplicative error cannot
    map 0 to 0.1, so it is 0 there (rolling forecasts stay at the forecast)."""
    from mgcosim.sim.stochastic import StochasticProfile

    pv = ErrorModel(0.08, 0.8, "multiplicative")
    forecast, actual = np.array([0.0, 0.2, 0.2]), np.array([0.1, 0.3, 0.1])
    prof = StochasticProfile("PV_b18", forecast, 1.0, pv, 0.4, seed=1, actual_mw=actual)
    np.testing.assert_array_equal(prof.realised_mw, actual)
    np.testing.assert_allclose(prof.error_pu, [0.0, 0.5, -0.5])
    assert prof.forecast_mw(2, 1)[0] == pytest.approx(0.2 * (1 + 0.8 * 0.5))
    with pytest.raises(ValueError, match="actual_mw must lie in"):
        StochasticProfile("PV_b18", forecast, 1.0, pv, 0.4, seed=1, actual_mw=actual + 0.35)


# ----------------------------------------------------------------------------- refusals


def test_a_table_shorter_than_the_run_is_refused(tmp_path: Path) -> None:
    frame = two_day_frame().iloc[:96]  # one day
    toml = START + "duration_h = 48\n[profiles]\nsource = 'p.csv'\n"
    err = refused(scenario(tmp_path, toml, {"p.csv": csv_text(frame)}))
    assert err.field == "profiles.source[time]"
    assert "p.csv runs from 2016-06-01 00:00:00 to 2016-06-01 23:45:00" in err.message
    assert "2016-06-02 23:45:00" in err.message and "duration_h" in err.fix
    late = "start = 2016-06-01T06:00:00\nduration_h = 24\n[profiles]\nsource = 'p.csv'\n"
    assert refused(scenario(tmp_path, late, {"p.csv": csv_text(frame)})).field == err.field


def test_a_daily_shape_is_not_repeated_unless_declared(tmp_path: Path) -> None:
    toml = "duration_h = 48\n[profiles]\nsource = 'p.csv'\n"
    err = refused(scenario(tmp_path, toml, {"p.csv": "hour,wind_pu\n0,0.2\n12,0.8\n"}))
    assert err.field == "profiles.source[hour]" and 'repeat = "daily"' in err.fix
    short = toml + "repeat = 'none'\n"
    err = refused(scenario(tmp_path, short, {"p.csv": "hour,wind_pu\n0,0.2\n30,0.8\n"}))
    assert err.field == "profiles.source[hour]" and "runs from" in err.message


@pytest.mark.parametrize(
    ("cell", "shown"), [("-0.1", "-0.1 (negative)"), ("", "an empty cell"), ("nan", "an empty")]
)
def test_negative_and_nan_values_are_refused_with_the_line(
    tmp_path: Path, cell: str, shown: str
) -> None:
    csv = f"hour,load_pu,MG1_wind_pu\n0,0.5,0.3\n1,0.5,0.3\n2,0.5,{cell}\n"
    err = refused(scenario(tmp_path, "[profiles]\nsource = 'p.csv'\n", {"p.csv": csv}))
    assert err.field == "profiles.source[MG1_wind_pu]"
    assert f"p.csv line 4 has {shown}" in err.message, err.message


def test_nan_in_parquet_is_refused_with_the_row(tmp_path: Path) -> None:
    frame = two_day_frame().iloc[:8].copy()
    frame.loc[5, "MG1_load_pu"] = np.nan
    toml = START + "duration_h = 2\n[profiles]\nsource = 'p.parquet'\n"
    err = refused(scenario(tmp_path, toml, {"p.parquet": frame}))
    assert err.field == "profiles.source[MG1_load_pu]"
    assert "p.parquet row 6 has an empty cell" in err.message


@pytest.mark.parametrize(
    ("column", "hint"),
    [
        ("MG1_wind_kw", "<unit>_mw"),  # unknown unit suffix
        ("MG7_wind_mw", "<unit>_mw"),  # no such unit
        ("wind_mw", "wind_pu"),  # a generic shape has no MW
        ("MG1_wind_actual_kw", "<unit>_actual_pu"),
    ],
)
def test_unknown_unit_columns_are_refused(tmp_path: Path, column: str, hint: str) -> None:
    csv = f"hour,{column}\n0,0.5\n"
    err = refused(scenario(tmp_path, "[profiles]\nsource = 'p.csv'\n", {"p.csv": csv}))
    assert err.field == f"profiles.source[{column}]" and hint in err.fix, str(err)


@pytest.mark.parametrize(
    ("csv", "field", "words"),
    [
        ("time,wind_pu\n2016-06-01 00:00,0.5\nnoon,0.5\n", "[time]", "line 3 has 'noon'"),
        ("time,wind_pu\n2016-06-01T00:00+02:00,0.5\n", "[time]", "UTC offset"),
        ("time,wind_pu\n2016-06-01 00:00,0.5\n,0.5\n", "[time]", "line 3 has an empty cell"),
        (
            "time,wind_pu\n2016-06-01 01:00,0.5\n2016-06-01 00:00,0.5\n",
            "[time]",
            "strictly increasing",
        ),
        ("hour,time,wind_pu\n0,2016-06-01,0.5\n", "", "both an 'hour' and a 'time'"),
        ("hour,MG1_wind_mw\n0,9\n", "[MG1_wind_mw]", "MW"),  # above the turbine's rating
        ("hour,MG1_wind_pu,MG1_wind_mw\n0,0.5,0.3\n", "[MG1_wind_mw]", "same series"),
    ],
)
def test_bad_tables_are_refused(tmp_path: Path, csv: str, field: str, words: str) -> None:
    toml = START + "duration_h = 1\n[profiles]\nsource = 'p.csv'\n"
    err = refused(scenario(tmp_path, toml, {"p.csv": csv}))
    assert err.field == f"profiles.source{field}"
    assert words in str(err), str(err)


def test_repeat_daily_on_a_time_table_is_refused(tmp_path: Path) -> None:
    toml = START + "duration_h = 1\n[profiles]\nsource = 'p.csv'\nrepeat = 'daily'\n"
    csv = "time,wind_pu\n2016-06-01 00:00,0.5\n2016-06-01 01:00,0.5\n"
    assert refused(scenario(tmp_path, toml, {"p.csv": csv})).field == "profiles.repeat"
    builtin = "[profiles]\nrepeat = 'none'\n"
    assert refused(scenario(tmp_path, builtin, {})).field == "profiles.repeat"


def test_cli_refuses_a_short_table_without_traceback(tmp_path: Path) -> None:
    toml = START + "duration_h = 48\n[profiles]\nsource = 'p.csv'\n"
    path = scenario(tmp_path, toml, {"p.csv": csv_text(two_day_frame().iloc[:96])})
    proc = subprocess.run(
        [sys.executable, "-m", "mgcosim.sim.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "profiles.source[time]" in proc.stderr + proc.stdout


# ----------------------------------------------------------------------------- consumers


def test_robust_hourly_shapes_read_a_multi_day_table(tmp_path: Path) -> None:
    """The mobile-storage placement's hourly shapes (``controllers.robust_data.hourly_shapes``)
    take a non-repeating table's values at the fault's hours, on day 2 too."""
    from mgcosim.controllers.robust_data import hourly_shapes

    frame = two_day_frame(60).assign(load_pu=lambda f: f.MG1_load_pu, pv_pu=0.3)
    toml = START + "duration_h = 48\nphysical_step_min = 60\n[profiles]\nsource = 'p.csv'\n"
    sc = load_scenario(scenario(tmp_path, toml, {"p.csv": csv_text(frame)}))
    load_pu, pv_pu = hourly_shapes(30.0, 4, sc.profiles.hourly_table(30.0, 4))
    np.testing.assert_allclose(load_pu, frame.load_pu[30:34], rtol=1e-12)
    np.testing.assert_allclose(pv_pu, 0.3)


# ----------------------------------------------------------------------------- SimBench


def test_simbench_scenario_validates_for_48_h_and_day_2_differs() -> None:
    sc = load_scenario(SIMBENCH_TOML)
    assert sc.duration_s == 48 * 3600 and sc.n_steps == 192 and sc.profiles.repeat == "none"
    data = pd.read_csv(SIMBENCH_CSV)
    assert data.time.iloc[0] == "2016-06-01 00:00:00" and data.time.iloc[-1] == (
        "2016-06-02 23:45:00"
    )
    units = stochastic_units(sc)
    for name, rating in (("MG1_wind", MG1.wind_p_rated_mw), ("PV_b18", PV18.p_rated_mw)):
        forecast = units[name].base_forecast_mw[:192]
        np.testing.assert_allclose(forecast, data[f"{name}_pu"] * rating, rtol=0, atol=1e-15)
        day1, day2 = forecast[:96], forecast[96:]
        assert np.abs(day2 - day1).max() > 0.05 * rating  # two different days, as in SimBench
    from mgcosim.scenarios.checks import scenario_warnings

    assert scenario_warnings(sc) == []


def test_simbench_scenario_runs_in_the_cosimulation(tmp_path: Path) -> None:
    """The two-day scenario through mosaik and pandapower at a 60-min step (48 steps; the
    simulators read the scenario file, so the coarser copy is a file beside the run)."""
    from mgcosim.sim.world import run_scenario

    text = SIMBENCH_TOML.read_text().replace("physical_step_min = 15", "physical_step_min = 60")
    text = text.replace('"simbench_two_days.csv"', repr(str(SIMBENCH_CSV)))
    sc = load_scenario(scenario(tmp_path, text, {}))
    assert sc.n_steps == 48 and sc.profiles.source == SIMBENCH_CSV
    run_scenario(sc, tmp_path / "run", progress=False)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    demand = pd.read_csv(tmp_path / "run" / "load_demand_p_mw.csv")
    assert len(demand) == 48
    realised = stochastic_units(sc)["load_b18"].realised_mw[:48]
    np.testing.assert_allclose(demand["load_b18"], realised, rtol=1e-9)


def test_simbench_converter_reproduces_the_shipped_file(tmp_path: Path) -> None:
    """The converter on the scenario's arguments gives the shipped CSV, and its columns are
    SimBench's own profiles (simbench's offline data, 15-min rows of 1-2 June 2016)."""
    from mgcosim.scenarios.simbench import convert, main, simbench_net

    out = tmp_path / "sb.csv"
    assert main(["--days", "2", "--start", "2016-06-01", "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(SIMBENCH_CSV))
    net = simbench_net("1-MV-rural--0-sw")  # simbench.get_simbench_net, read once
    result = convert("1-MV-rural--0-sw", pd.Timestamp("2016-06-01"), 2, unit="MW", actual=True)
    raw = net.profiles["renewables"]
    first = raw.index[raw.time == "01.06.2016 00:00"][0]
    wp = result.mapping["MG1_wind"]
    assert wp.startswith("WP") and result.mapping["PV_b18"].startswith("PV")
    np.testing.assert_allclose(
        result.table.MG1_wind_actual_mw,
        raw[wp].iloc[first : first + 192].clip(lower=0) * MG1.wind_p_rated_mw,
        rtol=1e-12,
    )
    assert main(["--code", "no-such-grid", "--out", str(out)]) == 2
