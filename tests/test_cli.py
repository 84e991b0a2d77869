"""The mgcosim command line: validate, run, report; bad input refused before any run."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, write_scenario

from mgcosim.scenarios.loader import default_scenario_path
from mgcosim.sim.cli import EXIT_INCOMPLETE, main, parser


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


# --- path mistakes: one line, a non-zero exit, no traceback (the real console command) ----


def cli(*args: str) -> subprocess.CompletedProcess:
    """``mgcosim ARGS`` as its own process, started in the repository (as conftest's runs)."""
    command = [sys.executable, "-m", "mgcosim.sim.cli", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


def assert_refused(result: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """The exit code, no traceback anywhere, one ``error:`` line naming ``words``."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A real one-hour run (rule-based, 4 steps) with its report."""
    folder = tmp_path_factory.mktemp("finished")
    path = write_scenario(folder, duration_h=1, controller="rule_based")
    out = folder / "run"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    assert main(["report", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def one_hour(tmp_path_factory) -> Path:
    return write_scenario(tmp_path_factory.mktemp("scenario"), duration_h=1)


def test_report_on_a_missing_directory(tmp_path):
    assert_refused(cli("report", str(tmp_path / "nope")), 2, "nope", "does not exist")


def test_report_on_a_file(tmp_path):
    (tmp_path / "f.csv").write_text("x\n")
    assert_refused(cli("report", str(tmp_path / "f.csv")), 2, "f.csv", "is a file")


def test_report_compare_with_a_missing_run(finished_run, tmp_path):
    result = cli("report", str(finished_run), "--compare", str(tmp_path / "other"))
    assert_refused(result, 2, "--compare", "other", "does not exist")


def test_report_on_an_empty_directory_names_the_missing_files(tmp_path):
    line = assert_refused(cli("report", str(tmp_path)), 2, "holds no run")
    assert line.index("manifest.json") < line.index("bus_vm_pu.csv")  # the essential first
    assert "steps.csv" in line
    assert not (tmp_path / "report.html").exists()


def test_report_on_an_incomplete_run_names_what_is_missing(finished_run, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(finished_run, partial)
    for name in ("bus_vm_pu.csv", "net.json", "report.html"):
        (partial / name).unlink()
    result = cli("report", str(partial))
    line = assert_refused(result, EXIT_INCOMPLETE, "incomplete", "bus_vm_pu.csv", "net.json")
    assert "steps.csv" not in line and "report.html" not in line
    assert (partial / "report.html").is_file()  # what is there is still reported


def test_run_out_onto_a_file(one_hour, tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me\n")
    assert_refused(cli("run", str(one_hour), "--out", str(target)), 2, "taken", "is a file")
    assert target.read_text() == "keep me\n"


def test_run_out_under_a_file(one_hour, tmp_path):
    (tmp_path / "taken").write_text("")
    out = tmp_path / "taken" / "run"
    assert_refused(cli("run", str(one_hour), "--out", str(out)), 2, "under the file")


def test_run_out_onto_an_unwritable_place(one_hour, tmp_path):
    if os.geteuid() == 0:  # root writes through permission bits; sysfs refuses new files
        out = Path("/sys/mgcosim-test-run")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        out = locked / "run"
    assert_refused(cli("run", str(one_hour), "--out", str(out)), 2, "cannot write there")
    assert not out.exists()


def test_run_out_onto_a_run_refuses_without_overwrite(finished_run, one_hour):
    manifest = (finished_run / "manifest.json").read_text()
    result = cli("run", str(one_hour), "--out", str(finished_run))
    assert_refused(result, 2, "holds a run already", "--overwrite")
    assert (finished_run / "manifest.json").read_text() == manifest  # untouched
    assert (finished_run / "report.html").is_file()


def test_run_overwrite_clears_the_old_run(finished_run, one_hour, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(finished_run, out)
    (out / "mess_placement.json").write_text("{}")  # a file of an earlier run with MESS
    old = json.loads((out / "manifest.json").read_text())
    result = cli("run", str(one_hour), "--out", str(out), "--overwrite", "--no-progress")
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 0, result.stderr
    assert not (out / "report.html").exists() and not (out / "mess_placement.json").exists()
    new = json.loads((out / "manifest.json").read_text())
    assert new["status"] == "completed" and new["pid"] != old["pid"]
    assert len(pd.read_csv(out / "steps.csv")) == 4


JARGON = ("seed 00", "C&CG", "Gamma", " DP", "vertex", "``")


def test_help_texts_name_every_command_without_jargon():
    top = parser()
    text = top.format_help()
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == {
        "run",
        "report",
        "validate",
        "reconfigure",
        "restore",
        "coordinate",
        "preposition",
        "sweep",
    }
    for name, sub in commands.choices.items():
        assert name in text
        text += sub.format_help()
    for word in JARGON:
        assert word not in text, word
    assert "--overwrite" in commands.choices["run"].format_help()
    assert f"{EXIT_INCOMPLETE}    report written" in commands.choices["report"].format_help()
