"""Degenerate inputs (issue 11): refused or warned about before the run, with file, field, fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import mgcosim.networks.params
import mgcosim.scenarios.loader
from mgcosim.networks.params import DATA_DIR
from mgcosim.scenarios.checks import scenario_warnings
from mgcosim.scenarios.loader import (
    MAX_STEPS_DEFAULT,
    MIN_PHYSICAL_STEP_S,
    ScenarioError,
    default_scenario_path,
    load_scenario,
)
from mgcosim.sim.cli import main

MG1, MG2 = "[microgrids.MG1]\n", "[microgrids.MG2]\n"

# (scenario text, field named, a word of the fix)
REFUSED = {
    "duration-100000-h": ("duration_h = 100000\n", "duration_h", "max_steps = 400000"),
    "steps-over-raised-limit": (
        "duration_h = 48\nmax_steps = 100\n",
        "duration_h",
        "max_steps = 192",
    ),
    "max-steps-zero": ("max_steps = 0\n", "max_steps", ">= 1"),
    "max-steps-float": ("max_steps = 1e6\n", "max_steps", "whole number"),
    "step-1-s": (
        "duration_h = 1\nhorizon_h = 1\nphysical_step_min = 0.0166666666666666667\n",
        "physical_step_min",
        "at least 1 min",
    ),
    "step-30-s": ("physical_step_min = 0.5\n", "physical_step_min", "at least 1 min"),
    "wind-rating-zero": (MG1 + "wind_p_rated_mw = 0\n", "microgrids.MG1.wind_p_rated_mw", "> 0"),
    "pv-rating-zero": ("[pv.PV_b25]\np_rated_mw = 0\n", "pv.PV_b25.p_rated_mw", "> 0 MW"),
    "pcc-reactance-zero": (MG2 + "pcc_x_ohm = 0\n", "microgrids.MG2.pcc_x_ohm", "> 0 ohm"),
    "pcc-current-zero": (MG1 + "pcc_max_i_ka = 0\n", "microgrids.MG1.pcc_max_i_ka", "> 0 kA"),
    "substation-voltage-zero": ("[dso]\nvm_ext_grid_pu = 0\n", "dso.vm_ext_grid_pu", "[0.9, 1.1]"),
    "turbine-max-zero": (MG1 + "mt_p_max_mw = 0\n", "microgrids.MG1.mt_p_max_mw", "mt_p_min_mw"),
    "storage-max-zero": (MG2 + "ess_e_max_mwh = 0\n", "microgrids.MG2.ess_e_max_mwh", "<="),
    "voltage-max-zero": ("[dso]\nv_max_pu = 0\n", "dso.v_max_pu", "v_min_pu < v_max_pu"),
    "fine-hours-below-a-step": (
        "[restoration]\nfine_h = 0.1\n",
        "restoration.fine_h",
        "at least one step",
    ),
    "look-ahead-not-a-multiple": (
        "[restoration]\nlook_ahead_step_min = 50\n",
        "restoration.look_ahead_step_min",
        "multiple of the restoration step",
    ),
}


def _write(tmp_path: Path, text: str, name: str = "degenerate.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _assert_names(err: ScenarioError, file: Path, field: str, fix_word: str) -> None:
    text = str(err)
    assert err.path == file and str(file) in text
    assert err.field == field and f"field '{field}'" in text
    assert fix_word in err.fix and f"Fix: {err.fix}" in text
    assert "\n" not in text


# ----------------------------------------------------------------------------- refused


@pytest.mark.parametrize(("text", "field", "fix_word"), REFUSED.values(), ids=REFUSED.keys())
def test_degenerate_input_is_refused_naming_file_field_and_fix(
    tmp_path: Path, text: str, field: str, fix_word: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    _assert_names(info.value, path, field, fix_word)


@pytest.mark.parametrize(("text", "field"), [(t, f) for t, f, _ in REFUSED.values()], ids=REFUSED)
def test_validate_exits_2_with_one_line_and_no_traceback(
    tmp_path: Path, capsys, text: str, field: str
) -> None:
    path = _write(tmp_path, text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: field '{field}': ") and "Fix: " in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_zero_wind_rating_is_refused_before_the_run_starts(tmp_path: Path, capsys) -> None:
    """It used to fail in the run: 'MG1_wind: cap_mw must be > 0 or None' (no field, no fix)."""
    path = _write(tmp_path, "duration_h = 1\nhorizon_h = 1\n" + MG1 + "wind_p_rated_mw = 0\n")
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "field 'microgrids.MG1.wind_p_rated_mw'" in err and "cap_mw" not in err
    assert not out.exists()


def test_limits_themselves_are_accepted(tmp_path: Path) -> None:
    year = load_scenario(_write(tmp_path, "duration_h = 8760\n", "year.toml"))
    assert year.n_steps == MAX_STEPS_DEFAULT == 35_040
    minute = "duration_h = 1\nhorizon_h = 1\nphysical_step_min = 1\n"
    assert load_scenario(_write(tmp_path, minute, "minute.toml")).physical_step_s == 60
    assert MIN_PHYSICAL_STEP_S == 60


def test_max_steps_allows_a_longer_run(tmp_path: Path) -> None:
    sc = load_scenario(_write(tmp_path, "duration_h = 100000\nmax_steps = 400000\n"))
    assert sc.n_steps == 400_000


def test_zero_ratings_that_the_models_tolerate_stay_accepted(tmp_path: Path) -> None:
    """No exchange, no turbine (with its minimum 0), no load: co-simulated fine (measured)."""
    text = MG1 + "pcc_p_max_mw = 0\nmt_p_min_mw = 0\nmt_p_max_mw = 0\nload_p_peak_mw = 0\n"
    mg = load_scenario(_write(tmp_path, text)).data.microgrid("MG1")
    assert (mg.pcc_p_max_mw, mg.mt_p_max_mw, mg.load_p_peak_mw) == (0.0, 0.0, 0.0)


# ----------------------------------------------------------------------------- data files


@pytest.fixture
def data_copy(tmp_path: Path, monkeypatch) -> Path:
    """A copy of networks/data that the loader reads instead of the built-in folder."""
    folder = tmp_path / "data"
    shutil.copytree(DATA_DIR, folder)
    monkeypatch.setitem(mgcosim.scenarios.loader.NETWORKS, "ieee33", folder)
    return folder


def _edit_csv(path: Path, column: str, value: str, row: int = 0) -> None:
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    header = lines[start].split(",")
    cells = lines[start + 1 + row].split(",")
    cells[header.index(column)] = value
    lines[start + 1 + row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("file", "column", "value", "field", "fix_word"),
    [
        ("microgrids.csv", "wind_p_rated_mw", "0", "MG1.wind_p_rated_mw", "[microgrids.MG1]"),
        ("pv.csv", "p_rated_mw", "0", "PV_b18.p_rated_mw", "[pv.PV_b18]"),
        ("dso.csv", "vm_ext_grid_pu", "0", "vm_ext_grid_pu", "[dso]"),
        ("tariff.csv", "buy_price_cny_per_mwh", "-380", "buy_price_cny_per_mwh", ">= 0"),
    ],
)
def test_bad_built_in_value_names_its_csv(
    tmp_path: Path, data_copy: Path, file: str, column: str, value: str, field: str, fix_word: str
) -> None:
    _edit_csv(data_copy / file, column, value)
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, ""))
    _assert_names(info.value, data_copy / file, field, fix_word)


@pytest.mark.parametrize("column", ["p_max_mw", "e_max_mwh"])
def test_placed_mess_without_rating_names_mess_csv(
    tmp_path: Path, monkeypatch, column: str
) -> None:
    mess = tmp_path / "mess.csv"
    shutil.copy(mgcosim.networks.params.MESS_FILE, mess)
    _edit_csv(mess, column, "0")
    if column == "e_max_mwh":  # keep e_min <= e_init <= e_max
        _edit_csv(mess, "e_init_mwh", "0")
    monkeypatch.setattr(mgcosim.networks.params, "MESS_FILE", mess)
    path = _write(tmp_path, "[mess]\nplacement = 'given'\nbuses = [23]\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    _assert_names(info.value, mess, column, "placement = 'none'")
    assert load_scenario(_write(tmp_path, "", "no_mess.toml")).mess.placement == "none"


# ----------------------------------------------------------------------------- warnings


def test_default_scenario_has_no_warning() -> None:
    assert scenario_warnings(load_scenario(default_scenario_path())) == []


def test_ten_times_microgrid_load_warns_in_validate(tmp_path: Path, capsys) -> None:
    """MG2 at 10x its peak (6 MW): even at full output the feeder is far overloaded."""
    path = _write(tmp_path, MG2 + "load_p_peak_mw = 6.0\n")
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "valid" in out and "1 warning)" in out
    assert err.startswith(f"warning: {path}: field 'microgrids.MG2.load_p_peak_mw' = 6 MW: ")
    assert "the network cannot carry the peak demand (t = 18 h)" in err
    assert "% of its rating" in err and "Fix: lower MG2's load" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_load_the_network_cannot_carry_warns_of_non_convergence(tmp_path: Path) -> None:
    sc = load_scenario(_write(tmp_path, MG2 + "load_p_peak_mw = 15.0\n"))
    (warning,) = scenario_warnings(sc)
    assert warning.startswith(f"{sc.path}: field 'microgrids.MG2.load_p_peak_mw' = 15 MW")
    assert "(AC power flow: does not converge)" in warning and "Fix: " in warning


def test_warning_looks_at_the_hours_the_run_covers(tmp_path: Path) -> None:
    """4 MW at MG2 leaves bus voltages far too low at the evening peak, not at night."""
    load = MG2 + "load_p_peak_mw = 4.0\n"
    day = load_scenario(_write(tmp_path, load, "day.toml"))
    night = load_scenario(_write(tmp_path, "duration_h = 2\nhorizon_h = 2\n" + load, "night.toml"))
    (warning,) = scenario_warnings(day)
    assert "'microgrids.MG2.load_p_peak_mw' = 4 MW" in warning and " pu)" in warning
    assert scenario_warnings(night) == []


def test_profile_column_scaling_a_load_is_named(tmp_path: Path) -> None:
    csv = tmp_path / "shapes.csv"
    csv.write_text("hour,MG2_load_pu\n0,1\n12,10\n")
    sc = load_scenario(_write(tmp_path, "[profiles]\nsource = 'shapes.csv'\n"))
    (warning,) = scenario_warnings(sc)
    assert warning.startswith(f"{csv}: field 'profiles.source[MG2_load_pu]' = 10 pu: ")


def test_run_prints_the_warning_before_starting(tmp_path: Path, capsys, monkeypatch) -> None:
    import mgcosim.sim.world

    def stop(*args, **kwargs):
        raise ValueError("stopped before the run")

    monkeypatch.setattr(mgcosim.sim.world, "run_scenario", stop)
    path = _write(tmp_path, MG2 + "load_p_peak_mw = 6.0\n")
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {path}: field 'microgrids.MG2.load_p_peak_mw'")
    assert err.rstrip().endswith("error: stopped before the run")


def test_warning_names_the_microgrid_at_the_overloaded_pcc(tmp_path: Path) -> None:
    """MG2 imports more (1.6 MW at full output), but MG3's thin PCC line is what fails."""
    text = MG2 + "load_p_peak_mw = 3.0\n[microgrids.MG3]\npcc_max_i_ka = 0.01\nload_p_peak_mw = 2\n"
    (warning,) = scenario_warnings(load_scenario(_write(tmp_path, text)))
    assert "field 'microgrids.MG3.load_p_peak_mw' = 2 MW" in warning
    assert "MG3_pcc at " in warning
    assert "Fix: lower MG3's load, or raise its pcc_max_i_ka" in warning
