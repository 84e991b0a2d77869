"""Scenario loader: the default file, overrides, faults, profiles and every rejected input."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mgcosim.networks.params import DATA_DIR, load_network_data
from mgcosim.scenarios import (
    CONTROLLERS,
    FaultEvent,
    Scenario,
    ScenarioError,
    default_scenario_path,
    load_scenario,
    load_scenario_text,
)
from mgcosim.scenarios.loader import MAX_STEPS_DEFAULT

BUILTIN = pd.read_csv(DATA_DIR / "profiles_default.csv")
FAULT = "[[faults]]\nstart_h = 1\nrepair_h = 1\n"


def write(tmp_path: Path, text: str, files: dict[str, str | bytes] | None = None) -> Path:
    """The scenario ``text`` as bad_case.toml, plus helper ``files`` next to it."""
    for name, content in (files or {}).items():
        target = tmp_path / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    path = tmp_path / "bad_case.toml"
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- good input


def test_default_scenario_loads_with_expected_values() -> None:
    path = default_scenario_path()
    assert path.name == "base_day.toml" and path.is_file()
    sc = load_scenario(path)
    assert isinstance(sc, Scenario)
    assert sc.path == path and sc.name == "base_day" and sc.network == "ieee33"
    assert sc.start == datetime.datetime(2026, 6, 1, 0, 0, 0)
    assert (sc.duration_s, sc.physical_step_s, sc.controller_step_s, sc.horizon_s) == (
        86400,
        900,
        3600,
        86400,
    )
    assert sc.n_steps == 96
    assert sc.seed == 20260601
    assert sc.controller == "rule_based" and sc.controller in CONTROLLERS
    assert sc.faults == ()
    builtin = load_network_data()
    assert sc.data.microgrids == builtin.microgrids
    assert sc.data.pv == builtin.pv and sc.data.dso == builtin.dso
    prof = sc.profiles
    assert prof.source is None
    assert list(prof.table.columns) == ["hour", "load_pu", "wind_pu", "pv_pu"]
    pd.testing.assert_frame_equal(prof.table, BUILTIN, check_dtype=False)
    assert (prof.wind_sigma_pu, prof.wind_phi_per_h) == (0.10, 0.85)
    assert (prof.load_sigma_pu, prof.load_phi_per_h) == (0.03, 0.90)
    assert (prof.pv_sigma_pu, prof.pv_phi_per_h) == (0.08, 0.80)
    assert (prof.wind_samples, prof.wind_scenarios) == (100, 10)


def test_default_file_spells_out_every_default() -> None:
    sc = load_scenario(default_scenario_path())
    top = {
        "name",
        "network",
        "start",
        "duration_h",
        "physical_step_min",
        "controller_step_min",
        "horizon_h",
        "seed",
        "controller",
        "max_steps",
        "profiles",
    }
    assert top <= set(sc.raw)
    assert sc.raw["max_steps"] == MAX_STEPS_DEFAULT
    assert set(sc.raw["profiles"]) == {
        "source",
        "wind_sigma_pu",
        "wind_phi_per_h",
        "load_sigma_pu",
        "load_phi_per_h",
        "pv_sigma_pu",
        "pv_phi_per_h",
        "wind_samples",
        "wind_scenarios",
    }
    assert "faults" not in sc.raw


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, ""))
    base = load_scenario(default_scenario_path())
    assert sc.name == "bad_case"  # the file name
    for attr in (
        "network",
        "start",
        "duration_s",
        "physical_step_s",
        "controller_step_s",
        "horizon_s",
        "seed",
        "controller",
    ):
        assert getattr(sc, attr) == getattr(base, attr), attr


def test_overrides_are_applied(tmp_path: Path) -> None:
    text = (
        "[microgrids.MG1]\nwind_p_rated_mw = 0.9\nbus_ieee = 5\n"
        "[microgrids.MG3]\ness_e_init_mwh = 0.5\n"
        "[pv.PV_b18]\np_rated_mw = 1\n[dso]\nv_min_pu = 0.92\nswitch_budget_per_horizon = 4\n"
    )
    sc = load_scenario(write(tmp_path, text))
    builtin = load_network_data()
    mg1 = sc.data.microgrid("MG1")
    assert mg1.wind_p_rated_mw == 0.9 and mg1.bus_ieee == 5
    assert mg1.ess_e_max_mwh == builtin.microgrid("MG1").ess_e_max_mwh
    assert sc.data.microgrid("MG2") == builtin.microgrid("MG2")
    assert sc.data.microgrid("MG3").ess_e_init_mwh == 0.5
    pv18 = sc.data.pv[0]
    assert pv18.name == "PV_b18" and pv18.p_rated_mw == 1.0 and isinstance(pv18.p_rated_mw, float)
    assert sc.data.dso.v_min_pu == 0.92 and sc.data.dso.switch_budget_per_horizon == 4
    assert load_network_data().microgrid("MG1").wind_p_rated_mw == 0.8  # built-in untouched


def test_fault_by_bus_pair_resolves_to_branch(tmp_path: Path) -> None:
    text = (
        "[[faults]]\nbuses = [12, 13]\nstart_h = 12.5\nrepair_h = 2\n"
        "[[faults]]\nname = 'tie'\nbuses = [22, 12]\nstart_h = 0\nrepair_h = 0.25\n"
        "[[faults]]\nbranch = 5\nstart_h = 23.75\nrepair_h = 1\n"
        "[[faults]]\nkind = 'main_grid'\nstart_h = 3\nrepair_h = 0.5\n"
    )
    sc = load_scenario(write(tmp_path, text))
    assert sc.faults == (
        FaultEvent("fault_1", "branch", 12, 45000, 7200),
        FaultEvent("tie", "branch", 35, 0, 900),
        FaultEvent("fault_3", "branch", 5, 85500, 3600),
        FaultEvent("fault_4", "main_grid", None, 10800, 1800),
    )


def test_fractional_durations_become_seconds(tmp_path: Path) -> None:
    text = "duration_h = 1.5\nphysical_step_min = 7.5\ncontroller_step_min = 30\nhorizon_h = 1.5\n"
    sc = load_scenario(write(tmp_path, text))
    assert (sc.duration_s, sc.physical_step_s, sc.controller_step_s, sc.horizon_s) == (
        5400,
        450,
        1800,
        5400,
    )
    assert sc.n_steps == 12


def test_profile_csv_relative_to_scenario_with_unit_columns(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    csv = "hour,wind_pu,MG1_wind_pu,load_b5_pu\n0,0.5,0.9,0.7\n0.5,0.6,0.8,0.7\n23.5,0.4,0.1,1.3\n"
    text = "[profiles]\nsource = 'data/shapes.csv'\nwind_scenarios = 5\nwind_samples = 50\n"
    sc = load_scenario(write(tmp_path, text, {"data/shapes.csv": csv}))
    table = sc.profiles.table
    assert sc.profiles.source == (tmp_path / "data" / "shapes.csv").resolve()
    assert list(table.columns) == [
        "hour",
        "load_pu",
        "wind_pu",
        "pv_pu",
        "MG1_wind_pu",
        "load_b5_pu",
    ]
    assert table.wind_pu.tolist() == [0.5, 0.6, 0.4]
    b = BUILTIN.set_index("hour")
    assert np.allclose(
        table.load_pu,
        [b.load_pu[0], (b.load_pu[0] + b.load_pu[1]) / 2, (b.load_pu[23] + b.load_pu[0]) / 2],
    )
    assert (sc.profiles.wind_samples, sc.profiles.wind_scenarios) == (50, 5)


def test_text_without_path_uses_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shapes.csv").write_text("hour,load_pu\n0,0.5\n12,1.0\n")
    monkeypatch.chdir(tmp_path)
    sc = load_scenario_text("[profiles]\nsource = 'shapes.csv'\n")
    assert sc.path is None and sc.name == "scenario"
    assert sc.profiles.table.load_pu.tolist() == [0.5, 1.0]
    with pytest.raises(ScenarioError) as info:
        load_scenario_text("seed = -1\n")
    assert str(info.value).startswith("<string>: field 'seed': ")


def test_error_message_format(tmp_path: Path) -> None:
    path = write(tmp_path, "controller = 'mpc'\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.path, err.field) == (path, "controller")
    assert str(err) == f"{path}: field 'controller': {err.message}. Fix: {err.fix}"
    assert "rule_based, centralised, admm" in err.fix


def test_missing_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="nothere.toml: field '<file>'.*Fix:"):
        load_scenario(tmp_path / "nothere.toml")


# ----------------------------------------------------------------------------- bad input

MG = "[microgrids.MG1]\n"
MG2 = "[microgrids.MG2]\n"
PV = "[pv.PV_b18]\n"
PROF = "[profiles]\nsource = 'p.csv'\n"


def csv_case(csv: str | bytes, field: str, ident: str) -> object:
    """A profile CSV case: the scenario points at p.csv with content ``csv``."""
    return pytest.param(PROF, field, {"p.csv": csv}, None, id=ident)


def case(text: str, field: str, ident: str, hint: str | None = None) -> object:
    return pytest.param(text, field, None, hint, id=ident)


BAD = [
    # syntax, unknown keys
    case("duration_h = \nseed = 1\n", "<toml syntax>", "toml-syntax", "line 1"),
    case("name = 'x'\nname = 'y'\n", "<toml syntax>", "toml-duplicate-key", "line 2"),
    case("duraton_h = 24\n", "duraton_h", "unknown-top-key", "duration_h"),
    case(
        "[profiles]\nwind_sigma = 0.1\n",
        "profiles.wind_sigma",
        "unknown-profiles-key",
        "wind_sigma_pu",
    ),
    case("[dso]\nv_min = 0.9\n", "dso.v_min", "unknown-dso-key", "v_min_pu"),
    case(MG + "wind_rated = 1\n", "microgrids.MG1.wind_rated", "unknown-mg-key", "wind_p_rated_mw"),
    case(MG + "name = 'MGX'\n", "microgrids.MG1.name", "mg-name-not-overridable", "table key"),
    case(PV + "p_rated = 1\n", "pv.PV_b18.p_rated", "unknown-pv-key", "p_rated_mw"),
    case(
        FAULT + "branch = 3\nduration_h = 1\n",
        "faults[0].duration_h",
        "unknown-fault-key",
        "repair_h",
    ),
    # wrong types
    case("duration_h = true\n", "duration_h", "bool-duration"),
    case("duration_h = '24'\n", "duration_h", "string-duration"),
    case("duration_h = nan\n", "duration_h", "nan-duration"),
    case("seed = 1.5\n", "seed", "float-seed"),
    case("seed = '7'\n", "seed", "string-seed"),
    case("name = 5\n", "name", "int-name"),
    case("name = ' '\n", "name", "blank-name"),
    case("controller = 3\n", "controller", "int-controller"),
    case("start = '2026-06-01T00:00:00'\n", "start", "string-start"),
    case("start = 2026-06-01\n", "start", "date-only-start"),
    case(MG + "wind_p_rated_mw = true\n", "microgrids.MG1.wind_p_rated_mw", "bool-mg-value"),
    case(MG + "wind_p_rated_mw = '0.9'\n", "microgrids.MG1.wind_p_rated_mw", "string-mg-value"),
    case(MG + "bus_ieee = 2.0\n", "microgrids.MG1.bus_ieee", "float-bus"),
    case(
        "[dso]\nswitch_budget_per_horizon = 4.5\n",
        "dso.switch_budget_per_horizon",
        "float-int-field",
    ),
    case("profiles = 3\n", "profiles", "profiles-not-table"),
    case("microgrids = 3\n", "microgrids", "microgrids-not-table"),
    case("[microgrids]\nMG1 = 3\n", "microgrids.MG1", "mg-not-table"),
    case("faults = 3\n", "faults", "faults-not-list"),
    case("[profiles]\nwind_samples = 100.0\n", "profiles.wind_samples", "float-samples"),
    case("[profiles]\nwind_sigma_pu = '0.1'\n", "profiles.wind_sigma_pu", "string-sigma"),
    case("[profiles]\nsource = 3\n", "profiles.source", "int-source"),
    case(FAULT + "branch = '12'\n", "faults[0].branch", "string-branch"),
    case(FAULT + "branch = 12\nname = 1\n", "faults[0].name", "int-fault-name"),
    case(
        "[[faults]]\nbranch = 12\nstart_h = true\nrepair_h = 1\n",
        "faults[0].start_h",
        "bool-fault-start",
    ),
    # non-positive and non-integral durations
    case("duration_h = 0\n", "duration_h", "zero-duration"),
    case("duration_h = -24\n", "duration_h", "negative-duration"),
    case("physical_step_min = -15\n", "physical_step_min", "negative-physical-step"),
    case("controller_step_min = 0\n", "controller_step_min", "zero-controller-step"),
    case("horizon_h = 0\n", "horizon_h", "zero-horizon"),
    case("duration_h = 24.0001\n", "duration_h", "non-integral-seconds"),
    case("physical_step_min = 0.001\n", "physical_step_min", "sub-second-step"),
    # step consistency
    case("duration_h = 1.1\n", "physical_step_min", "physical-not-dividing-duration"),
    case("physical_step_min = 45\n", "controller_step_min", "physical-not-dividing-controller"),
    case(
        "duration_h = 1.5\nhorizon_h = 2\n",
        "controller_step_min",
        "controller-not-dividing-duration",
    ),
    case("horizon_h = 1.5\n", "horizon_h", "horizon-not-multiple"),
    case("controller_step_min = 120\nhorizon_h = 1\n", "horizon_h", "horizon-too-short"),
    # network, controller, unit names, buses
    case("network = 'ieee123'\n", "network", "unknown-network", "ieee33"),
    case("controller = 'mpc'\n", "controller", "unknown-controller", "admm"),
    case("[microgrids.MG9]\nwind_p_rated_mw = 1\n", "microgrids.MG9", "unknown-mg", "MG1, MG2"),
    case("[pv.PV_b99]\np_rated_mw = 1\n", "pv.PV_b99", "unknown-pv", "PV_b18"),
    case(MG + "bus_ieee = 34\n", "microgrids.MG1.bus_ieee", "mg-bus-too-high", "1..33"),
    case(MG + "bus_ieee = 0\n", "microgrids.MG1.bus_ieee", "mg-bus-zero", "1..33"),
    case(PV + "bus_ieee = 40\n", "pv.PV_b18.bus_ieee", "pv-bus-unknown", "1..33"),
    case(MG2 + "bus_ieee = 2\n", "microgrids.MG2.bus_ieee", "two-mgs-one-bus", "own bus"),
    case(MG + "bus_ieee = 11\n", "microgrids.MG1.bus_ieee", "two-mgs-one-bus-first-moved"),
    # ParameterError from validate()
    case(MG + "wind_p_rated_mw = -1\n", "microgrids.MG1.wind_p_rated_mw", "negative-rating"),
    case(MG2 + "ess_e_min_mwh = 2.0\n", "microgrids.MG2.ess_e_min_mwh", "soc-bounds-order"),
    case(MG + "ess_e_init_mwh = 5\n", "microgrids.MG1.ess_e_init_mwh", "soc-init-outside"),
    case(MG + "ess_eta_ch = 1.2\n", "microgrids.MG1.ess_eta_ch", "efficiency-above-1"),
    case(MG + "ess_eta_dis = 0\n", "microgrids.MG1.ess_eta_dis", "efficiency-zero"),
    case(MG + "mt_p_min_mw = 1\n", "microgrids.MG1.mt_p_min_mw", "mt-min-above-max"),
    case(MG + "load_pf = 1.5\n", "microgrids.MG1.load_pf", "power-factor-above-1"),
    case(PV + "p_rated_mw = -0.1\n", "pv.PV_b18.p_rated_mw", "negative-pv-rating"),
    case(PV + "pf_min = 0\n", "pv.PV_b18.pf_min", "pv-pf-zero"),
    case("[dso]\nv_min_pu = 1.2\n", "dso.v_min_pu", "empty-voltage-band"),
    case("[dso]\np2p_max_mw = -1\n", "dso.p2p_max_mw", "negative-dso-value"),
    # faults
    case(
        FAULT + "kind = 'line'\nbranch = 12\n", "faults[0].kind", "unknown-fault-kind", "main_grid"
    ),
    case(FAULT + "branch = 38\n", "faults[0].branch", "branch-too-high", "1..37"),
    case(FAULT + "branch = 0\n", "faults[0].branch", "branch-zero", "1..37"),
    case(FAULT + "buses = [12, 14]\n", "faults[0].buses", "buses-not-adjacent", "[11, 13, 22]"),
    case(FAULT + "buses = [12, 40]\n", "faults[0].buses", "buses-unknown-bus", "1..33"),
    case(FAULT + "buses = [12]\n", "faults[0].buses", "buses-one-bus"),
    case(FAULT + "buses = [12.0, 13]\n", "faults[0].buses", "buses-float"),
    case(FAULT + "branch = 12\nbuses = [12, 13]\n", "faults[0].branch", "branch-and-buses"),
    case(FAULT, "faults[0].branch", "neither-branch-nor-buses"),
    case(FAULT + "kind = 'main_grid'\nbranch = 12\n", "faults[0].branch", "main-grid-with-branch"),
    case(FAULT + "kind = 'main_grid'\nbuses = [1, 2]\n", "faults[0].buses", "main-grid-with-buses"),
    case(
        "[[faults]]\nbranch = 1\nstart_h = 24\nrepair_h = 1\n",
        "faults[0].start_h",
        "fault-start-at-end",
        "[0, 24)",
    ),
    case(
        "[[faults]]\nbranch = 1\nstart_h = -1\nrepair_h = 1\n",
        "faults[0].start_h",
        "fault-start-negative",
    ),
    case(
        "[[faults]]\nbranch = 1\nstart_h = 1\nrepair_h = 0\n", "faults[0].repair_h", "repair-zero"
    ),
    case(
        "[[faults]]\nbranch = 1\nstart_h = 1\nrepair_h = -2\n",
        "faults[0].repair_h",
        "repair-negative",
    ),
    case("[[faults]]\nbranch = 1\nrepair_h = 1\n", "faults[0].start_h", "fault-start-missing"),
    case("[[faults]]\nbranch = 1\nstart_h = 1\n", "faults[0].repair_h", "fault-repair-missing"),
    case(FAULT + "branch = 1\n" + FAULT + "branch = 40\n", "faults[1].branch", "second-fault-bad"),
    case(
        FAULT + "branch = 1\nname = 'a'\n" + FAULT + "branch = 2\nname = 'a'\n",
        "faults[1].name",
        "duplicate-fault-names",
    ),
    # profile settings
    case(
        "[profiles]\nsource = 'missing.csv'\n", "profiles.source", "profile-file-missing", "builtin"
    ),
    case(
        "[profiles]\nwind_scenarios = 101\n",
        "profiles.wind_scenarios",
        "more-scenarios-than-samples",
        "wind_samples",
    ),
    case(
        "[profiles]\nwind_samples = 0\nwind_scenarios = 0\n",
        "profiles.wind_samples",
        "zero-samples",
    ),
    case("[profiles]\nwind_sigma_pu = -0.1\n", "profiles.wind_sigma_pu", "negative-wind-sigma"),
    case("[profiles]\nload_sigma_pu = -0.01\n", "profiles.load_sigma_pu", "negative-load-sigma"),
    case("[profiles]\npv_sigma_pu = -1\n", "profiles.pv_sigma_pu", "negative-pv-sigma"),
    case("[profiles]\nwind_phi_per_h = 1.0\n", "profiles.wind_phi_per_h", "phi-one", "[0, 1)"),
    case("[profiles]\nload_phi_per_h = -0.1\n", "profiles.load_phi_per_h", "phi-negative"),
    case("[profiles]\npv_phi_per_h = 2\n", "profiles.pv_phi_per_h", "phi-two"),
    # profile CSV content
    csv_case(bytes(range(256)) * 4, "profiles.source", "profile-binary-file"),
    csv_case("", "profiles.source", "profile-empty-file"),
    csv_case('hour,load_pu\n0,0.5,1,2\n"x\n', "profiles.source", "profile-malformed-csv"),
    csv_case("h,load_pu\n0,0.5\n", "profiles.source", "profile-no-hour-column"),
    csv_case("hour,load_pu\n", "profiles.source[hour]", "profile-no-rows"),
    csv_case("hour,wind_pu\n0,0.5\n1,abc\n", "profiles.source[wind_pu]", "profile-non-numeric"),
    csv_case("hour,wind_pu\n0,0.5\n1,\n", "profiles.source[wind_pu]", "profile-empty-cell"),
    csv_case("hour,wind_pu\n0,0.5\n1,inf\n", "profiles.source[wind_pu]", "profile-infinite"),
    csv_case("hour,wind_pu\n0,True\n1,False\n", "profiles.source[wind_pu]", "profile-bool"),
    csv_case("hour,wind_pu\nzero,0.5\n", "profiles.source[hour]", "profile-non-numeric-hour"),
    csv_case(
        "hour,wind_pu\n0,0.5\n2,0.5\n1,0.5\n", "profiles.source[hour]", "profile-hours-decreasing"
    ),
    csv_case(
        "hour,wind_pu\n0,0.5\n1,0.5\n1,0.5\n", "profiles.source[hour]", "profile-hours-repeated"
    ),
    csv_case("hour,wind_pu\n0,0.5\n24,0.5\n", "profiles.source[hour]", "profile-hour-24"),
    csv_case("hour,wind_pu\n1,0.5\n2,0.5\n", "profiles.source[hour]", "profile-first-hour"),
    csv_case("hour,wind_pu\n-1,0.5\n0,0.5\n", "profiles.source[hour]", "profile-negative-hour"),
    csv_case("hour,load_pu\n0,0.5\n1,-0.1\n", "profiles.source[load_pu]", "profile-negative"),
    csv_case("hour,wind_pu\n0,1.2\n", "profiles.source[wind_pu]", "profile-wind-above-1"),
    csv_case("hour,pv_pu\n0,0\n12,1.01\n", "profiles.source[pv_pu]", "profile-pv-above-1"),
    csv_case(
        "hour,MG2_wind_pu\n0,1.5\n", "profiles.source[MG2_wind_pu]", "profile-unit-wind-above-1"
    ),
    csv_case("hour,PV_b25_pu\n0,1.5\n", "profiles.source[PV_b25_pu]", "profile-unit-pv-above-1"),
    csv_case("hour,solar\n0,0.5\n", "profiles.source[solar]", "profile-unknown-column"),
    csv_case("hour,MG9_wind_pu\n0,0.5\n", "profiles.source[MG9_wind_pu]", "profile-unknown-unit"),
    csv_case("hour,load_b1_pu\n0,0.5\n", "profiles.source[load_b1_pu]", "profile-no-load-at-slack"),
]


@pytest.mark.parametrize(("text", "field", "files", "hint"), BAD)
def test_bad_input_is_rejected(
    tmp_path: Path, text: str, field: str, files: dict | None, hint: str | None
) -> None:
    path = write(tmp_path, text, files)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err, msg = info.value, str(info.value)
    assert err.field == field, msg
    assert err.path == path
    assert "bad_case.toml" in msg
    assert f"field '{field}'" in msg
    assert "Fix: " in msg and err.fix
    if hint is not None:
        assert hint in msg, msg


def test_profile_directory_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "shapes").mkdir()
    path = write(tmp_path, "[profiles]\nsource = 'shapes'\n")
    with pytest.raises(ScenarioError, match=r"bad_case\.toml: field 'profiles\.source'.*Fix:"):
        load_scenario(path)


def test_bus_pairs_agree_with_the_pandapower_net(tmp_path: Path) -> None:
    from mgcosim.networks.ieee33 import build_ieee33
    from mgcosim.networks.topology import branch_of_bus_pair

    data = load_network_data()
    net = build_ieee33(data)
    faults = "".join(
        f"[[faults]]\nbuses = [{row.to_bus_ieee}, {row.from_bus_ieee}]\nstart_h = 0\nrepair_h = 1\n"
        for row in data.branches.itertuples()
    )
    sc = load_scenario(write(tmp_path, faults))
    expected = [
        branch_of_bus_pair(net, r.from_bus_ieee, r.to_bus_ieee) for r in data.branches.itertuples()
    ]
    assert [f.branch_ieee for f in sc.faults] == expected == list(range(1, 38))
