"""The mgcosim command line: validate, run, report; bad input refused before any run."""

from __future__ import annotations

import json

import pandas as pd

from mgcosim.scenarios.loader import default_scenario_path
from mgcosim.sim.cli import main


def test_validate_accepts_the_default_scenario(capsys):
    assert main(["validate", str(default_scenario_path())]) == 0
    assert "valid" in capsys.readouterr().out


def test_validate_refuses_bad_input_naming_file_field_and_fix(scenario_file, capsys):
    path = scenario_file("[microgrids.MG2]\ness_e_min_mwh = 2.0\ness_e_max_mwh = 1.0\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert path.name in err
    assert "microgrids.MG2.ess_e_min_mwh" in err
    assert "Fix:" in err


def test_run_refuses_bad_input_before_writing_anything(scenario_file, tmp_path, capsys):
    path = scenario_file("[[faults]]\nbranch = 40\nstart_h = 1.0\nrepair_h = 1.0\n")
    out = tmp_path / "never"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 2
    assert "faults[0].branch" in capsys.readouterr().err
    assert not out.exists()


def test_run_refuses_an_unknown_controller(scenario_file, tmp_path, capsys):
    path = scenario_file(controller="fuzzy")
    out = tmp_path / "never"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 2
    assert "field 'controller'" in capsys.readouterr().err
    assert not out.exists()


def test_run_prints_summary_and_report_renders_it(scenario_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(scenario_file(duration_h=2)), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    for label in (
        "energy served",
        "energy unserved",
        "network losses",
        "min voltage",
        "violations",
        "costs (CNY)",
    ):
        assert label in printed
    assert f"{summary['energy_losses_mwh']:,.4f} MWh" in printed
    assert len(pd.read_csv(out / "steps.csv")) == 8
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert "Bus voltages" in html
