"""Tests of the HTML run report (sim.report) on small synthetic run directories."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.report import SECTIONS, RunData, render_report, write_report

STEP_S = 900
N_STEPS = 8
BUSES = [str(b) for b in range(1, 34)]
MG_NAMES = ["MG1", "MG2", "MG3"]
BRANCHES = [str(b) for b in range(1, 38)]
TIES = ["33", "34", "35", "36", "37"]
HEADINGS = [
    "Summary",
    "Bus voltages",
    "Storage state of charge",
    "Microgrid exchanges",
    "Losses and substation import",
    "Switch states",
    "Power-flow convergence",
]
SUMMARY = {
    "energy_demand_mwh": 7.4321,
    "energy_served_mwh": 7.4021,
    "energy_unserved_mwh": 0.03,
    "energy_losses_mwh": 0.2874,
    "vm_min_pu": 0.91234,
    "vm_min_bus": 18,
    "vm_min_time_s": 6300,
    "vm_max_pu": 1.0,
    "vm_max_bus": 1,
    "n_voltage_violations": 0,
    "n_overloads": 0,
    "n_not_converged": 1,
    "cost_total_cny": 12345.6,
}


def _frame(t: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame({"time_s": t, **columns})


def _bus_vm(rng: np.random.Generator, t: np.ndarray) -> pd.DataFrame:
    """Voltages dropping along the feeder, deeper at the evening peak."""
    depth = 0.06 + 0.03 * np.sin(np.linspace(0, np.pi, len(t)))
    drop = np.linspace(0.0, 1.0, len(BUSES))
    vm = 1.0 - np.outer(depth, drop) + rng.normal(0, 0.001, (len(t), len(BUSES)))
    cols = {b: vm[:, i] for i, b in enumerate(BUSES)}
    cols.update({mg: vm[:, i] for mg, i in zip(MG_NAMES, (1, 10, 26), strict=True)})
    return _frame(t, cols)


def _steps(rng: np.random.Generator, t: np.ndarray, vm: pd.DataFrame) -> pd.DataFrame:
    n = len(t)
    demand = 3.7 + rng.uniform(0, 0.3, n)
    loss = 0.12 + rng.uniform(0, 0.03, n)
    bus_vm = vm[BUSES].to_numpy()
    return _frame(
        t,
        {
            "converged": np.ones(n, dtype=int),
            "p_loss_mw": loss,
            "p_substation_mw": demand + loss - 1.0,
            "q_substation_mvar": 0.6 * demand,
            "vm_min_pu": bus_vm.min(axis=1),
            "vm_min_bus": np.array(BUSES)[bus_vm.argmin(axis=1)].astype(int),
            "vm_max_pu": bus_vm.max(axis=1),
            "vm_max_bus": np.ones(n, dtype=int),
            "loading_max_percent": rng.uniform(40, 80, n),
            "loading_max_branch": np.ones(n, dtype=int),
            "n_v_violations": np.zeros(n, dtype=int),
            "n_overloads": np.zeros(n, dtype=int),
            "load_demand_mw": demand,
            "load_served_mw": demand,
            "load_unserved_mw": np.zeros(n),
            "wind_avail_mw": rng.uniform(1.0, 2.0, n),
            "wind_used_mw": rng.uniform(0.8, 1.0, n),
            "pv_avail_mw": np.zeros(n),
            "cost_mt_cny": rng.uniform(50, 100, n),
            "cost_ess_cny": rng.uniform(0, 5, n),
            "cost_grid_cny": rng.uniform(300, 400, n),
            "cost_loss_cny": 500 * loss * STEP_S / 3600,
            "cost_total_cny": rng.uniform(400, 500, n),
        },
    )


def _unit_frames(rng: np.random.Generator, t: np.ndarray) -> dict[str, pd.DataFrame]:
    n = len(t)
    ess = {mg: rng.uniform(-0.2, 0.2, n) for mg in MG_NAMES}
    units: dict[str, np.ndarray] = {}
    for mg in MG_NAMES:
        units |= {
            f"{mg}_mt": rng.uniform(0.05, 0.4, n),
            f"{mg}_wind": rng.uniform(0, 0.8, n),
            f"{mg}_ess": ess[mg],
            f"{mg}_load": rng.uniform(0.3, 0.5, n),
        }
    units["PV_b18"] = np.zeros(n)
    soc = {
        f"{mg}_ess": 0.5 + np.concatenate([[0.0], np.cumsum(ess[mg][:-1])]) * 0.25
        for mg in MG_NAMES
    }
    return {
        "unit_p_mw.csv": _frame(t, units),
        "soc_mwh.csv": _frame(t, soc),
        "exchange_p_mw.csv": _frame(t, {mg: rng.uniform(-0.5, 0.5, n) for mg in MG_NAMES}),
    }


def _branch_frames(rng: np.random.Generator, t: np.ndarray) -> dict[str, pd.DataFrame]:
    n = len(t)
    names = BRANCHES + [f"{mg}_pcc" for mg in MG_NAMES]
    closed = {b: np.full(n, 0 if b in TIES else 1) for b in BRANCHES}
    return {
        "branch_loading_percent.csv": _frame(t, {b: rng.uniform(0, 80, n) for b in names}),
        "branch_p_from_mw.csv": _frame(t, {b: rng.uniform(-1, 3, n) for b in names}),
        "switch_closed.csv": _frame(t, closed),
    }


def make_run(
    root: Path,
    n_rows: int = N_STEPS,
    status: str = "completed",
    summary: bool = True,
    non_converged: int | None = None,
) -> Path:
    """Write a run directory in the format the co-simulation produces."""
    rng = np.random.default_rng(7)
    run_dir = root / "run"
    run_dir.mkdir()
    t = np.arange(n_rows) * STEP_S
    vm = _bus_vm(rng, t)
    frames = {"bus_vm_pu.csv": vm, "steps.csv": _steps(rng, t, vm)}
    frames |= _unit_frames(rng, t) | _branch_frames(rng, t)
    if non_converged is not None:
        _blank_step(frames, non_converged)
    for name, df in frames.items():
        df.to_csv(run_dir / name, index=False)
    manifest = {
        "scenario_name": "ieee33_3mg_test",
        "scenario_path": "scenarios/test.toml",
        "start": "2024-07-01T00:00:00",
        "physical_step_s": STEP_S,
        "duration_s": N_STEPS * STEP_S,
        "seed": 42,
        "controller": "rule_based",
        "versions": {"mosaik": "3.3.3", "pandapower": "3.1.0"},
        "status": status,
        "steps_done": n_rows,
        "wall_time_s": 3.2 if status == "completed" else None,
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    if summary:
        (run_dir / "summary.json").write_text(json.dumps(SUMMARY), encoding="utf-8")
    return run_dir


def _blank_step(frames: dict[str, pd.DataFrame], row: int) -> None:
    """Make ``row`` a non-converged step: converged 0, network values empty."""
    steps = frames["steps.csv"]
    steps.loc[row, "converged"] = 0
    net_cols = [
        "p_loss_mw",
        "p_substation_mw",
        "q_substation_mvar",
        "vm_min_pu",
        "vm_max_pu",
        "loading_max_percent",
    ]
    steps[net_cols] = steps[net_cols].astype(float)
    steps.loc[row, net_cols] = np.nan
    for name in ("bus_vm_pu.csv", "branch_loading_percent.csv", "branch_p_from_mw.csv"):
        frames[name].loc[row, frames[name].columns[1:]] = np.nan


def _assert_self_contained(text: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text)
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text and "<link" not in text
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert images
    for img in images:
        assert base64.b64decode(img).startswith(b"\x89PNG\r\n\x1a\n")


def _headings(text: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", text)


@pytest.fixture(scope="module")
def completed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A completed run directory and its report at the default location."""
    run_dir = make_run(tmp_path_factory.mktemp("completed"))
    return run_dir, write_report(run_dir)


def test_completed_run_renders_all_sections(completed: tuple[Path, Path]) -> None:
    run_dir, out = completed
    assert out == run_dir / "report.html" and out.is_file()
    text = out.read_text(encoding="utf-8")
    _assert_self_contained(text)
    assert len(re.findall("data:image/png;base64,", text)) == 4
    assert _headings(text) == HEADINGS
    assert 'class="section-error"' not in text
    for value in ("ieee33_3mg_test", "rule_based", "42", "completed (8 of 8 steps)"):
        assert value in text
    assert 'class="flag"' not in text


def test_summary_figures_are_listed(completed: tuple[Path, Path]) -> None:
    text = completed[1].read_text(encoding="utf-8")
    for key in SUMMARY:
        assert f"<td>{key}</td>" in text
    for shown in ("7.4321", "0.2874", "0.91234", "12345.6", "<td>18</td>"):
        assert shown in text


def test_fixed_topology_and_all_converged_sentences(completed: tuple[Path, Path]) -> None:
    text = completed[1].read_text(encoding="utf-8")
    assert "topology stayed fixed" in text
    assert "open (tie) branches: 33, 34, 35, 36, 37;" in text
    assert f"All {N_STEPS} power flows converged." in text


def test_interrupted_run_is_flagged_and_renders(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, n_rows=5, status="interrupted", summary=False)
    out = write_report(run_dir, tmp_path / "elsewhere" / "r.html")
    assert out == tmp_path / "elsewhere" / "r.html" and out.is_file()
    text = out.read_text(encoding="utf-8")
    _assert_self_contained(text)
    assert 'class="flag"' in text
    assert "interrupted after 5 of 8 steps" in text
    assert "summary.json" in text  # named among the absent files
    assert _headings(text) == HEADINGS[1:]
    assert 'class="section-error"' not in text


def test_non_converged_step_is_listed(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, non_converged=3)
    vm = pd.read_csv(run_dir / "bus_vm_pu.csv")
    vm.loc[5, "18"] = 0.88  # one under-voltage next to the empty step
    vm.to_csv(run_dir / "bus_vm_pu.csv", index=False)
    text = write_report(run_dir).read_text(encoding="utf-8")
    _assert_self_contained(text)
    assert 'class="section-error"' not in text
    assert "1 of 8 steps without a converged power flow" in text
    conv = text[text.index('id="convergence"') :]
    assert "<td>2700</td>" in conv and "2024-07-01 00:45" in conv
    assert "Bus voltages" in _headings(text)
    assert "1 bus-steps outside 0.9–1.1 pu." in text


def test_switch_changes_are_listed(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    sw = pd.read_csv(run_dir / "switch_closed.csv")
    sw.loc[4:, "33"] = 1
    sw.loc[4:, "7"] = 0
    sw.to_csv(run_dir / "switch_closed.csv", index=False)
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert "topology stayed fixed" not in text
    assert "2 switching actions on branches 7, 33." in text
    section = text[text.index('id="switches"') :]
    assert "<td>opened</td>" in section and "<td>closed</td>" in section
    assert len(re.findall("data:image/png;base64,", text)) == 5


def test_missing_files_load_as_none(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    for name in ("soc_mwh.csv", "exchange_p_mw.csv", "summary.json"):
        (run_dir / name).unlink()
    (run_dir / "bus_vm_pu.csv").write_text("", encoding="utf-8")
    run = RunData.load(run_dir)
    assert run.soc is None and run.exchange is None and run.summary is None
    assert run.bus_vm is None and any("bus_vm_pu.csv" in p for p in run.problems)
    assert run.steps is not None and list(run.steps.index[:2]) == [0, STEP_S]
    assert run.steps_total == N_STEPS and run.steps_done == N_STEPS
    text = render_report(run)
    assert _headings(text) == [
        "Losses and substation import",
        "Switch states",
        "Power-flow convergence",
    ]


def test_only_manifest_and_bad_section(tmp_path: Path) -> None:
    run_dir = tmp_path / "empty"
    run_dir.mkdir()

    def broken(run: RunData) -> str | None:
        raise RuntimeError("boom")

    text = render_report(RunData.load(run_dir), [*SECTIONS, broken])
    assert "manifest.json missing" in text and 'class="flag"' in text
    assert _headings(text) == []
    assert "Section broken failed" in text


def test_missing_run_dir_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "nope")
