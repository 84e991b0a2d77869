"""``mgcosim sweep``: real co-simulation runs on a real Dask local cluster of two worker
processes (one thread each), one-hour scenarios.

The sweep of the module: runs ``a`` and ``b`` (the same scenario and seed under two names)
and ``broken``, whose run directory holds a directory where its recorder must write
``steps.csv``: the run fails inside the mosaik world (the recorder cannot open its table),
the others finish. ``b`` runs after another run in its worker process, ``a`` first in a fresh
one: their physical tables must be byte-identical all the same.
"""

from __future__ import annotations

import json
import tomllib

import pandas as pd
import pytest
from conftest import REPO, write_scenario

from mgcosim.networks.params import load_network_data
from mgcosim.sim.cli import main
from mgcosim.sim.sweep import close, connect, run_sweep
from mgcosim.sim.sweep_spec import (
    draw_fault_cases,
    dumps_toml,
    load_sweep,
    sectional_branches,
)

WALL_CLOCK_FILES = {"manifest.json", "timings.csv", "sweep_run.json", "scenario.toml"}


@pytest.fixture(scope="module")
def client():
    """A local cluster of two worker processes, one thread each."""
    c = connect(workers=2, scheduler=None)
    yield c
    close(c)


@pytest.fixture(scope="module")
def swept(tmp_path_factory, client):
    """The module's sweep, run once: (spec, out directory, table)."""
    folder = tmp_path_factory.mktemp("sweep")
    files = [write_scenario(folder, file_name=f"{n}.toml", name=n, duration_h=1) for n in "ab"]
    files.insert(1, write_scenario(folder, file_name="broken.toml", name="broken", duration_h=1))
    out = folder / "out"
    (out / "broken" / "steps.csv").mkdir(parents=True)  # the recorder cannot write its table
    spec = load_sweep(files)
    return spec, out, run_sweep(spec, out, client)


def test_table_has_a_row_per_run_with_status_figures_and_wall_clock(swept):
    spec, out, df = swept
    assert list(df.run) == ["a", "broken", "b"]  # the sweep's order, not the finishing order
    for name in ("sweep.parquet", "sweep.csv"):
        assert (out / name).is_file()
    on_disk = pd.read_parquet(out / "sweep.parquet")
    assert list(on_disk.run) == list(df.run) and list(on_disk.columns) == list(df.columns)
    for column in (
        "status",
        "error",
        "overrides",
        "cost_total_cny",
        "energy_unserved_mwh",
        "energy_losses_mwh",
        "attempts",
        "wall_clock_s",
    ):
        assert column in df.columns
    ok = df.set_index("run").loc[["a", "b"]]
    assert (ok.status == "finished").all() and (ok.error == "").all()
    # the figures are those of the run's own summary.json
    summary = json.loads((out / "a" / "summary.json").read_text())
    assert ok.loc["a", "cost_total_cny"] == pytest.approx(summary["cost_total_cny"], rel=1e-12)
    assert ok.loc["a", "energy_losses_mwh"] == pytest.approx(summary["energy_losses_mwh"])
    assert (ok.wall_clock_s > 0).all()


def test_a_failed_run_is_recorded_and_the_others_finish(swept):
    _, out, df = swept
    broken = df.set_index("run").loc["broken"]
    assert broken.status == "failed"
    assert "steps.csv" in broken.error and "IsADirectoryError" in broken.error
    assert pd.isna(broken.cost_total_cny) and broken.seed == 7  # the scenario's seed
    assert (df.status == "finished").sum() == 2
    for name in ("a", "b"):
        manifest = json.loads((out / name / "manifest.json").read_text())
        assert manifest["status"] == "completed"


def test_same_seed_on_other_workers_gives_byte_identical_tables(swept):
    _, out, _ = swept
    files = sorted(p.name for p in (out / "a").iterdir() if p.name not in WALL_CLOCK_FILES)
    assert "steps.csv" in files and "bus_vm_pu.csv" in files
    assert files == sorted(p.name for p in (out / "b").iterdir() if p.name not in WALL_CLOCK_FILES)
    for name in files:
        assert (out / "a" / name).read_bytes() == (out / "b" / name).read_bytes(), name


def test_resume_skips_finished_runs_and_reruns_the_failed_one(swept, capsys):
    spec, out, _ = swept
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "a").iterdir()}
    (out / "broken" / "steps.csv").rmdir()  # the obstacle gone: the run can finish now
    files = [str(r.base) for r in spec.runs]
    assert main(["sweep", *files, "--out", str(out), "--workers", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("1/3 a  skipped") for line in lines)
    assert any("broken  finished" in line for line in lines)
    df = pd.read_csv(out / "sweep.csv").set_index("run")
    assert (df.status == "finished").all()
    assert df.attempts.to_dict() == {"a": 1, "broken": 2, "b": 1}
    assert df.action.to_dict() == {"a": "skipped", "broken": "ran", "b": "skipped"}
    assert {p: p.stat().st_mtime_ns for p in (out / "a").iterdir()} == mtimes  # not rewritten


# ----------------------------------------------------------------------------- the spec


def test_grid_of_overrides_expands_and_each_run_is_a_checked_scenario(tmp_path):
    base = write_scenario(tmp_path, file_name="base.toml", name="day")
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(
        'base = "base.toml"\n[set]\nduration_h = 2\n[grid]\nseed = [1, 2]\n'
        '"profiles.wind_sigma_pu" = [0.05, 0.1]\n'
        "[fault_cases]\nbranches = [[3, 17]]\nstart_h = 1.0\nrepair_h = 0.5\n"
    )
    spec = load_sweep([sweep])
    assert len(spec.runs) == 4 and spec.axes == ("seed", "profiles.wind_sigma_pu", "faults")
    run = spec.runs[1]
    assert run.name == "day__seed-1__wind_sigma_pu-0.1__faults-b3+b17"
    raw = tomllib.loads(run.text)
    assert raw["seed"] == 1 and raw["duration_h"] == 2 and raw["profiles"]["wind_sigma_pu"] == 0.1
    assert [f["branch"] for f in raw["faults"]] == [3, 17] and run.base == base


def test_toml_writer_round_trips_a_scenario():
    raw = tomllib.loads((REPO / "scenarios" / "blackout_mess.toml").read_text())
    raw["odd key"] = {"x": [1.5, -2e-7, True, 'a"b\\c']}
    assert tomllib.loads(dumps_toml(raw)) == raw


def test_example_n2_sweep_holds_the_documented_seeded_draw():
    spec = load_sweep([REPO / "scenarios" / "sweep_n2.toml"])
    drawn = draw_fault_cases(sectional_branches(load_network_data()), 12, 2, seed=16)
    pairs = [[f["branch"] for f in run.overrides["faults"]] for run in spec.runs]
    assert pairs == drawn and len({tuple(p) for p in pairs}) == 12
    assert all(tomllib.loads(r.text)["duration_h"] == 4 for r in spec.runs)


# ----------------------------------------------------------------------------- refusals


def refused(capsys, *args: str) -> str:
    assert main(["sweep", *args]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.out == ""
    return captured.err


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('base = "missing.toml"\n[grid]\nseed = [1]\n', ["field 'base'", "missing.toml", "Fix"]),
        ('base = "b.toml"\n[grid]\nsed = [1, 2]\n', ["field 'grid.sed'", "not a known key"]),
        ('base = "b.toml"\n[grid]\n', ["field 'grid'", "has no axes"]),
        ('base = "b.toml"\n[grid]\nseed = []\n', ["field 'grid.seed'", "empty list"]),
        ('base = "b.toml"\n[grid]\nseed = [-1]\n', ["field 'grid.seed'", "Fix"]),
        (
            'base = "b.toml"\n[fault_cases]\nbranches = [[3, 99]]\nstart_h = 0.5\nrepair_h = 1\n',
            ["field 'fault_cases.branches'", "branch 99 does not exist"],
        ),
        (
            'base = "b.toml"\n[fault_cases]\nbranches = [[3]]\nstart_h = 2\nrepair_h = 1\n',
            ["field 'fault_cases.start_h'", "outside the scenario"],
        ),
    ],
)
def test_bad_sweep_files_are_refused_before_any_run(tmp_path, capsys, text, words):
    write_scenario(tmp_path, file_name="b.toml", duration_h=1)
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(text)
    err = refused(capsys, str(sweep), "--out", str(tmp_path / "out"))
    assert str(sweep) in err
    for word in words:
        assert word in err
    assert not (tmp_path / "out").exists()


def test_bad_scheduler_addresses_are_refused(tmp_path, capsys):
    path = write_scenario(tmp_path, duration_h=1)
    out = tmp_path / "out"
    err = refused(capsys, str(path), "--out", str(out), "--scheduler", "not an address")
    assert "--scheduler 'not an address' is not a scheduler address" in err and "tcp://" in err
    err = refused(capsys, str(path), "--out", str(out), "--scheduler", "tcp://127.0.0.1:9")
    assert "no Dask scheduler answers there" in err
    assert not out.exists()


def test_a_scheduler_address_that_answers_is_connected(client):
    """The quick refusal of a closed port lets a listening scheduler through."""
    address = client.scheduler.address
    assert address.startswith("tcp://")
    other = connect(workers=1, scheduler=address)
    try:
        assert other.scheduler_info()["address"] == address
    finally:
        other.close()  # the client only: the cluster is the module's


def test_out_onto_a_file_is_refused(tmp_path, capsys):
    path = write_scenario(tmp_path, duration_h=1)
    (tmp_path / "file").write_text("")
    err = refused(capsys, str(path), "--out", str(tmp_path / "file"))
    assert "is a file" in err


def test_results_do_not_depend_on_the_copy(tmp_path):
    """The run's scenario.toml is the base scenario itself: the same loader result."""
    from mgcosim.scenarios.loader import load_scenario, load_scenario_text

    path = write_scenario(tmp_path, duration_h=1)
    spec = load_sweep([path])
    copy = load_scenario_text(spec.runs[0].text, tmp_path / "copy.toml")
    original = load_scenario(path)
    assert copy.raw == original.raw and copy.seed == original.seed
