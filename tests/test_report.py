"""Tests of the HTML run report (sim.report) on small synthetic run directories."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mgcosim.sim.report import (
    SECTIONS,
    RunData,
    main,
    render_report,
    section_admm,
    section_agent_costs,
    section_p2p,
    section_restoration,
    section_switches,
    section_validation,
    write_report,
)

STEP_S = 900
N_STEPS = 8
BUSES = [str(b) for b in range(1, 34)]
MG_NAMES = ["MG1", "MG2", "MG3"]
BRANCHES = [str(b) for b in range(1, 38)]
TIES = ["33", "34", "35", "36", "37"]
HEADINGS = [
    "Summary",
    "Bus voltages",
    "Feeder voltage profile at the worst step",
    "Branch loading",
    "Network diagram",
    "Storage state of charge",
    "Microgrid exchanges",
    "Renewable curtailment",
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
CONTROLLER_STEP_S = 3600
PAIRS = ["MG1->MG2", "MG1->MG3", "MG2->MG3"]
AGENTS = ["DSO", *MG_NAMES]
OPTIMISER_HEADINGS = [
    "P2P trades",
    "ADMM convergence",
    "Costs per agent",
    "Optimiser vs AC power flow",
]
OPTIMISER_FILES = ["plans.csv", "admm_history.csv", "p2p_trades.csv", "soc_plan.csv"]
OPTIMISER_SUMMARY = {
    "cost_mt_cny": 321.5,
    "cost_total_cny": 10000.0,
    "horizons": 2,
    "n_fallbacks": 0,
    "n_admm_not_converged": 0,
    "admm_gap_pct_median": 0.2113,
    "admm_gap_pct_max": 0.2526,
    "admm_outer_iterations_median": 37.5,
    "admm_inner_iterations_median": 90.0,
    "admm_time_s_median": 4.5,
    "central_time_s_median": 0.9,
    "controller_time_s_total": 21.7,
    "ac_max_dv_pu": 0.0041,
    "ac_loss_error_mw_mean": 0.0012,
    "ac_loss_error_mw_max_abs": 0.0059,
    "ac_loss_error_pct_mean": 1.7,
    "ac_unanticipated_violation_steps": 0,
    "soc_plan_vs_real_max_abs_mwh": 0.0123,
}
SOC_PLAN_ERROR_MWH = 0.0123  # planned minus realised SOC of MG2_ess after the first plan


RAW_KEY = re.compile(r"<td>[a-z0-9]+(_[a-z0-9]+)+</td>")  # a summary.json key as a label
SCIENTIFIC = re.compile(r"<td>-?[0-9.]+e[-+]?[0-9]+</td>")  # a value such as -1.44e-15


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


def _plans(t_plan: np.ndarray, statuses: list[str], controller: str) -> pd.DataFrame:
    """plans.csv: one row per controller step (a fallback row keeps only its status/time)."""
    rows = []
    for i, status in enumerate(statuses):
        if status.startswith("fallback"):
            rows.append({"status": status, "wall_time_s": 0.4})
            continue
        costs = {"DSO": 1400.0 + 10 * i, "MG1": 450.0, "MG2": 2500.0 - 50 * i, "MG3": -900.0}
        central = sum(costs.values()) / 1.002
        row = {
            "status": status,
            "controller": controller,
            "central_objective_cny": central,
            "central_time_s": 0.9,
            "wall_time_s": 10.9 + i,
            "topology_status": "scheduled",
            "p_loss_mw": 0.06 - 0.01 * i,
            "open_branches": ";".join(TIES),
        }
        if controller == "admm":
            row |= {
                "objective_cny": sum(costs.values()),
                "gap_pct": 0.2113 if i == 0 else 0.2526,
                "converged": not status.startswith("admm_not_converged"),
                "outer_iterations": 30 + 15 * i,
                "inner_iterations": 85 + 10 * i,
                "admm_time_s": 4.5,
            }
            row |= {f"cost_{agent}_cny": v for agent, v in costs.items()}
        rows.append(row)
    columns = [
        "status",
        "controller",
        "objective_cny",
        "central_objective_cny",
        "gap_pct",
        "converged",
        "outer_iterations",
        "inner_iterations",
        "admm_time_s",
        "central_time_s",
        "wall_time_s",
        "topology_status",
        "p_loss_mw",
        "open_branches",
    ]
    if controller == "admm":
        columns += [f"cost_{agent}_cny" for agent in AGENTS]
    return pd.DataFrame(rows, columns=columns).assign(time_s=t_plan)[["time_s", *columns]]


def _admm_history(plans: pd.DataFrame) -> pd.DataFrame:
    """admm_history.csv: geometric residual decay to below 1e-3 MW over each horizon."""
    parts = []
    for _, plan in plans.dropna(subset=["outer_iterations"]).iterrows():
        k = np.arange(1, int(plan.outer_iterations) + 1)
        decay = 0.2 * (0.8 ** (k - 1))
        parts.append(
            pd.DataFrame(
                {
                    "time_s": plan.time_s,
                    "outer": k,
                    "inner": 3,
                    "r_outer_mw": decay,
                    "s_outer_mw": decay / 2,
                    "r_inner_mw": decay / 3,
                    "s_inner_mw": decay / 4,
                    "rho_outer": 400.0,
                    "rho_inner": 400.0,
                    "objective": 3000.0 + k,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _optimiser_frames(
    frames: dict[str, pd.DataFrame], statuses: list[str], controller: str, violation_at: int | None
) -> dict[str, pd.DataFrame]:
    """The files an optimising controller adds, consistent with ``frames``."""
    t = frames["steps.csv"].time_s.to_numpy()
    t_plan = np.arange(len(statuses)) * CONTROLLER_STEP_S
    plans = _plans(t_plan, statuses, controller)
    planned = [tp for tp, s in zip(t_plan, statuses, strict=True) if not s.startswith("fallback")]
    soc = frames["soc_mwh.csv"].set_index("time_s")
    soc_plan = pd.DataFrame(
        {col: [soc[col].get(tp + CONTROLLER_STEP_S, 0.5) for tp in planned] for col in soc.columns},
    )
    soc_plan.loc[0, "MG2_ess"] += SOC_PLAN_ERROR_MWH
    trades = pd.DataFrame({p: [0.02, -0.01][: len(planned)] for p in PAIRS})
    trades["MG1->MG3"] = -0.0
    on_plan = np.isin((t // CONTROLLER_STEP_S) * CONTROLLER_STEP_S, planned)
    loss_ac = frames["steps.csv"].p_loss_mw.to_numpy()[on_plan]
    n = int(on_plan.sum())
    validation = pd.DataFrame(
        {
            "time_s": t[on_plan],
            "max_dv_pu": np.linspace(0.001, 0.0041, n),
            "max_dv_bus": 18,
            "p_loss_model_mw": loss_ac - 0.0012,
            "p_loss_ac_mw": loss_ac,
            "loss_error_mw": np.full(n, 0.0012),
            "ac_v_violations": 0,
            "ac_overloads": 0,
            "unanticipated_violation": 0,
        }
    )
    if violation_at is not None:
        validation.loc[violation_at, ["ac_v_violations", "unanticipated_violation"]] = [2, 1]
    out = {
        "plans.csv": plans,
        "p2p_trades.csv": trades.assign(time_s=planned)[["time_s", *PAIRS]],
        "soc_plan.csv": soc_plan.assign(time_s=planned)[["time_s", *soc.columns]],
        "validation.csv": validation,
    }
    if controller == "admm":
        out["admm_history.csv"] = _admm_history(plans)
    return out


def make_run(
    root: Path,
    n_rows: int = N_STEPS,
    status: str = "completed",
    summary: bool = True,
    non_converged: int | None = None,
    controller: str = "rule_based",
    plan_statuses: list[str] | None = None,
    violation_at: int | None = None,
) -> Path:
    """Write a run directory in the format the co-simulation produces.

    ``controller`` "admm" or "centralised" adds the optimiser's files (plans.csv, ...);
    ``plan_statuses`` gives the status of each plan (default: all "optimal") and
    ``violation_at`` marks that validation row as an unanticipated AC violation.
    """
    rng = np.random.default_rng(7)
    run_dir = root / "run"
    run_dir.mkdir()
    t = np.arange(n_rows) * STEP_S
    vm = _bus_vm(rng, t)
    frames = {"bus_vm_pu.csv": vm, "steps.csv": _steps(rng, t, vm)}
    frames |= _unit_frames(rng, t) | _branch_frames(rng, t)
    if non_converged is not None:
        _blank_step(frames, non_converged)
    if controller != "rule_based":
        n_plans = -(-n_rows * STEP_S // CONTROLLER_STEP_S)
        statuses = plan_statuses or ["optimal"] * n_plans
        frames |= _optimiser_frames(frames, statuses, controller, violation_at)
    for name, df in frames.items():
        df.to_csv(run_dir / name, index=False)
    manifest = {
        "scenario_name": "ieee33_3mg_test",
        "scenario_path": "scenarios/test.toml",
        "start": "2024-07-01T00:00:00",
        "physical_step_s": STEP_S,
        "controller_step_s": CONTROLLER_STEP_S,
        "duration_s": N_STEPS * STEP_S,
        "seed": 42,
        "controller": controller,
        "versions": {"mosaik": "3.3.3", "pandapower": "3.1.0"},
        "status": status,
        "steps_done": n_rows,
        "wall_time_s": 3.2 if status == "completed" else None,
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    if summary:
        figures = SUMMARY if controller == "rule_based" else SUMMARY | OPTIMISER_SUMMARY
        (run_dir / "summary.json").write_text(json.dumps(figures), encoding="utf-8")
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
    assert len(re.findall("data:image/png;base64,", text)) == 8
    assert _headings(text) == HEADINGS
    assert 'class="section-error"' not in text
    for value in ("ieee33_3mg_test", "rule_based", "42", "completed (8 of 8 steps)"):
        assert value in text
    assert 'class="flag"' not in text


def test_summary_figures_are_listed(completed: tuple[Path, Path]) -> None:
    summary = _section_text(completed[1].read_text(encoding="utf-8"), "summary")
    assert "<th>figure</th><th>value</th><th>unit</th>" in summary
    for key in SUMMARY:  # labels, not the file's keys
        assert key not in summary
    assert not RAW_KEY.search(summary) and not SCIENTIFIC.search(summary)
    for row in (
        "<td>load demand</td><td>7.432</td><td>MWh</td>",
        "<td>network losses</td><td>0.287</td><td>MWh</td>",
        "<td>lowest bus voltage (bus 18, 2024-07-01 01:45)</td><td>0.9123</td><td>pu</td>",
        "<td>cost: total</td><td>12,345.60</td><td>CNY</td>",
        "<td>power flows not converged</td><td>1</td><td>steps</td>",
    ):
        assert row in summary


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
    assert len(re.findall("data:image/png;base64,", text)) == 9


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
        "Branch loading",
        "Network diagram",
        "Renewable curtailment",
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


# ---------------------------------------------------------- optimising controllers


def _section_text(text: str, sid: str) -> str:
    start = text.index(f'<section id="{sid}">')
    return text[start : text.index("</section>", start)]


@pytest.fixture(scope="module")
def admm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A completed ADMM run directory (all plans optimal) and its report text."""
    run_dir = make_run(tmp_path_factory.mktemp("admm"), controller="admm")
    return run_dir, write_report(run_dir).read_text(encoding="utf-8")


def test_admm_run_renders_optimiser_sections(admm_run: tuple[Path, str]) -> None:
    _, text = admm_run
    _assert_self_contained(text)
    assert 'class="section-error"' not in text
    assert _headings(text) == HEADINGS[:-1] + OPTIMISER_HEADINGS + HEADINGS[-1:]
    assert len(re.findall("data:image/png;base64,", text)) == 8 + 5
    assert 'class="flag"' not in text
    assert "Files absent" not in text
    summary = _section_text(text, "summary")
    for key in OPTIMISER_SUMMARY:  # every figure under its label
        assert f"<td>{key}</td>" not in summary
    assert not RAW_KEY.search(summary)
    gap = "<td>ADMM gap to the centralised optimum, median</td><td>0.211</td><td>%</td>"
    assert gap in summary


def test_p2p_and_agent_cost_figures(admm_run: tuple[Path, str]) -> None:
    _, text = admm_run
    p2p = _section_text(text, "p2p")
    assert "the first microgrid buys from the second" in p2p
    # MG1->MG2: +0.02 MW in the first hour (MG1 buys), -0.01 MW in the second (MG2 buys)
    assert "<td>MG1-&gt;MG2</td><td>0.02</td><td>0.01</td><td>0.02</td>" in p2p
    assert "<td>MG1-&gt;MG3</td><td>0</td><td>0</td><td>0</td>" in p2p  # no "-0"
    costs = _section_text(text, "agent-costs")
    assert "P2P payments and wheeling fees are" in costs and "transfers" in costs
    for agent in AGENTS:
        assert f"<td>{agent}</td>" in costs
    assert "<td>DSO</td><td>1405</td><td>1400</td><td>1410</td>" in costs
    assert "<td>sum of agents</td><td>3430</td><td>3410</td><td>3450</td>" in costs


def test_admm_convergence_figures(admm_run: tuple[Path, str]) -> None:
    _, text = admm_run
    admm = _section_text(text, "admm")
    assert "All 2 horizons solved optimally." in admm
    assert "ADMM converged in 2 of 2 horizons" in admm
    assert "outer iterations median 37.5 (max 45)" in admm
    assert "gap to the centralised optimum median 0.232 % (max 0.253 %)" in admm
    assert "ADMM solve time median 4.50 s vs centralised 0.90 s" in admm
    assert "0.001 MW threshold" in admm
    assert "<td>0</td><td>optimal</td><td>30</td><td>85</td><td>0.2113</td>" in admm
    assert "<td>33, 34, 35, 36, 37</td>" in admm


def test_optimiser_vs_ac_figures(admm_run: tuple[Path, str]) -> None:
    _, text = admm_run
    val = _section_text(text, "validation")
    assert '<p class="ok">' in val
    assert "0 steps with AC voltage violations or overloads the optimiser did not expect" in val
    assert "of 8 steps run on an optimiser plan" in val
    assert "(bus 18, 2024-07-01 01:45)</td><td>0.00410</td><td>pu</td>" in val
    assert "<td>loss error AC − model, mean</td><td>0.00120</td><td>MW</td>" in val
    assert f"MG2_ess</td><td>{SOC_PLAN_ERROR_MWH:.4f}</td><td>MWh</td>" in val
    assert "MG1_ess</td><td>&lt; 0.0001</td><td>MWh</td>" in val


def test_rule_based_run_has_no_optimiser_sections(completed: tuple[Path, Path]) -> None:
    text = completed[1].read_text(encoding="utf-8")
    for sid in ("p2p", "admm", "agent-costs", "validation", "comparison"):
        assert f'id="{sid}"' not in text
    assert "Files absent" not in text
    for name in OPTIMISER_FILES:
        assert name not in text
    run = RunData.load(completed[0])
    assert run.plans is None and run.validation is None and run.missing == []


def test_fallback_and_unexpected_violation_are_flagged(tmp_path: Path) -> None:
    fallback = "fallback_rule_based: DSO model infeasible"
    run_dir = make_run(
        tmp_path,
        controller="admm",
        plan_statuses=["admm_not_converged: centralised plan applied", fallback],
        violation_at=2,
    )
    # only the optimiser's sections (the full report is covered above; this keeps it fast)
    text = render_report(RunData.load(run_dir), [section_admm, section_validation])
    _assert_self_contained(text)
    assert 'class="section-error"' not in text
    assert _headings(text) == ["ADMM convergence", "Optimiser vs AC power flow"]
    admm = _section_text(text, "admm")
    assert '<p class="flag">&#9888; 2 of 2 horizons not optimal: ' in admm
    assert "1 fell back to the rule-based controller" in admm
    assert "1 with ADMM not converged (centralised plan applied)" in admm
    assert f"<td>1</td><td>2024-07-01 01:00</td><td>{fallback}</td>" in admm
    assert "ADMM converged in 0 of 2 horizons" in admm
    val = _section_text(text, "validation")
    assert '<p class="flag">&#9888; 1 steps with AC voltage violations' in val
    assert "of 4 steps run on an optimiser plan" in val
    assert "<td>0.5</td><td>2024-07-01 00:30</td><td>2</td><td>0</td>" in val


def test_centralised_run(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, controller="centralised")
    optimiser_sections = [section_p2p, section_admm, section_agent_costs, section_validation]
    text = render_report(RunData.load(run_dir), optimiser_sections)
    assert 'class="section-error"' not in text
    # no ADMM history or per-agent costs: the plans section is renamed, costs are left out
    assert _headings(text) == ["P2P trades", "Optimiser plans", "Optimiser vs AC power flow"]
    plans = _section_text(text, "admm")
    assert "All 2 horizons solved optimally." in plans and "gap" not in plans.split("<figure")[0]


def test_comparison_with_other_run(
    admm_run: tuple[Path, str], completed: tuple[Path, Path], tmp_path: Path
) -> None:
    # only manifest.json and summary.json of each run: the comparison needs no more
    dirs = {}
    for name, src in (("base", completed[0]), ("admm", admm_run[0])):
        dirs[name] = tmp_path / name
        dirs[name].mkdir()
        for file in ("manifest.json", "summary.json"):
            (dirs[name] / file).write_bytes((src / file).read_bytes())
    out = tmp_path / "cmp.html"
    assert main([str(dirs["base"]), "-o", str(out), "--compare", str(dirs["admm"])]) == 0
    text = out.read_text(encoding="utf-8")
    _assert_self_contained(text)
    assert _headings(text) == ["Summary", "Comparison with admm"]
    cmp = _section_text(text, "comparison")
    assert "<th>this run (rule_based)</th><th>admm (admm)</th>" in cmp
    assert "<td>cost: total [CNY]</td><td>12,345.60</td><td>10,000.00</td><td>2,345.60</td>" in cmp
    assert "<td>cost: micro gas turbines [CNY]</td><td>–</td><td>321.50</td><td>–</td>" in cmp
    assert "<td>network losses [MWh]</td><td>0.287</td><td>0.287</td><td>0.000</td>" in cmp
    assert 'class="section-error"' not in text
    with pytest.raises(FileNotFoundError):
        write_report(dirs["base"], tmp_path / "x.html", compare=tmp_path / "nope")


# ------------------------------------------------------------------- restoration

FAULT_ROWS = [2, 3, 4]  # steps with fault "f9" in force (0.5 h - 1.25 h)
UNSERVED_MW = 0.2
DEAD_BUSES = [str(b) for b in range(10, 18)]  # de-energised in the first fault step


def _add_fault(run_dir: Path) -> None:
    """Turn a synthetic run into one with a fault on branch 9 and a restoration."""
    steps = pd.read_csv(run_dir / "steps.csv")
    rows = np.isin(np.arange(len(steps)), FAULT_ROWS)
    steps["active_faults"] = np.where(rows, "f9", "")
    steps["islands"] = np.where(rows, "MG2", "")
    steps.loc[FAULT_ROWS[0], "islands"] = "MG2;MG3"
    steps["islands_collapsed"] = ""
    steps.loc[FAULT_ROWS[1], "islands_collapsed"] = "MG3"
    steps.loc[rows, "load_unserved_mw"] = UNSERVED_MW
    steps.loc[rows, "load_served_mw"] = steps.loc[rows, "load_demand_mw"] - UNSERVED_MW
    steps.to_csv(run_dir / "steps.csv", index=False)
    switches = pd.DataFrame({"time_s": steps.time_s, **{b: int(b not in TIES) for b in BRANCHES}})
    switches.loc[rows, "9"] = 0
    switches.loc[FAULT_ROWS[1:], "36"] = 1  # tie 36 closed at the second fault step
    switches.to_csv(run_dir / "switch_closed.csv", index=False)
    vm = pd.read_csv(run_dir / "bus_vm_pu.csv")
    vm.loc[FAULT_ROWS[0], DEAD_BUSES] = np.nan
    vm.to_csv(run_dir / "bus_vm_pu.csv", index=False)
    t_fault = steps.time_s.to_numpy()[rows]
    restoration = pd.DataFrame(
        {
            "time_s": t_fault,
            "mode": "restoration",
            "status": "optimal",
            "controller": "restoration",
            "objective_cny": [-1000.0, -900.0, -800.0],
            "wall_time_s": [1.5, 0.7, 0.6],
            "open_branches": ["9;33;34;35;36;37", "9;33;34;35;37", "9;33;34;35;37"],
        }
    )
    plans_path = run_dir / "plans.csv"
    if plans_path.is_file():  # an optimising run: its own plans keep an empty mode
        plans = pd.read_csv(plans_path).assign(mode="")
        restoration = pd.concat([plans, restoration]).sort_values("time_s", kind="stable")
    restoration.to_csv(plans_path, index=False)


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A rule-based run with a fault, and the report of its restoration-related sections."""
    run_dir = make_run(tmp_path_factory.mktemp("fault"))
    _add_fault(run_dir)
    sections = [section_switches, section_restoration, section_admm, section_agent_costs]
    return run_dir, render_report(RunData.load(run_dir), sections)


def test_fault_run_has_restoration_section(fault_run: tuple[Path, str]) -> None:
    _, text = fault_run
    _assert_self_contained(text)
    assert 'class="section-error"' not in text
    # a rule-based run's restoration plans are no optimiser horizons
    assert _headings(text) == ["Switch states", "Restoration timeline"]
    rest = _section_text(text, "restoration")
    assert "Fault periods: f9: 0.5 h – 1.25 h (0.75 h)." in rest
    assert "3 restoration plan(s), 3 optimal; wall time median 0.70 s, max 1.50 s." in rest
    assert len(re.findall("data:image/png;base64,", rest)) == 1


def test_fault_run_events_table(fault_run: tuple[Path, str]) -> None:
    rest = _section_text(fault_run[1], "restoration")
    assert "<h3>Events per step</h3>" in rest
    header = (
        "<th>time [h]</th><th>timestamp</th><th>faults in force</th><th>switch actions</th>"
        "<th>energised buses</th><th>islands</th><th>collapsed islands</th>"
        "<th>unserved [MW]</th><th>restoration plan</th><th>plan wall time [s]</th>"
    )
    assert header in rest
    rows = re.findall(r"<tr><td>[^<]*</td><td>2024-07-01.*?</tr>", rest)
    assert rows[0] == (
        "<tr><td>0.5</td><td>2024-07-01 00:30</td><td>f9</td><td>opened 9</td>"
        "<td>25 / 33</td><td>MG2, MG3</td><td></td><td>0.2</td><td>optimal</td>"
        "<td>1.5</td></tr>"
    )
    assert "<td>closed 36 (tie)</td><td>33 / 33</td><td>MG2</td><td>MG3</td>" in rows[1]
    # the step after the fault: cleared, branch 9 closed again, tie 36 opened
    assert rows[3].startswith(
        "<tr><td>1.25</td><td>2024-07-01 01:15</td><td>(cleared)</td>"
        "<td>opened 36 (tie); closed 9</td><td>33 / 33</td><td></td><td></td><td>0</td>"
    )
    assert len(rows) == 4  # quiet steps before and after are left out


def test_fault_run_energy_figures(fault_run: tuple[Path, str]) -> None:
    run_dir, text = fault_run
    rest = _section_text(text, "restoration")
    assert "<h3>Energy over the fault periods</h3>" in rest
    unserved = len(FAULT_ROWS) * UNSERVED_MW * STEP_S / 3600
    assert f"<td>unserved energy [MWh]</td><td>{unserved:.6g}</td>" in rest
    assert "<td>fault duration [h]</td><td>0.75</td>" in rest
    steps = pd.read_csv(run_dir / "steps.csv").iloc[FAULT_ROWS]
    used = round(steps.wind_used_mw.sum() * STEP_S / 3600, 4)
    assert f"<td>renewable (wind + PV) used [MWh]</td><td>{used:.6g} (" in rest
    units = pd.read_csv(run_dir / "unit_p_mw.csv").iloc[FAULT_ROWS]
    ess = [c for c in units.columns if c.endswith("_ess")]
    delivered = round(float((-units[ess].clip(upper=0)).sum().sum()) * STEP_S / 3600, 4)
    assert f"<td>storage energy delivered, all [MWh]</td><td>{delivered:.6g}</td>" in rest


def test_no_fault_no_restoration_section(completed: tuple[Path, Path], tmp_path: Path) -> None:
    assert section_restoration(RunData.load(completed[0])) is None
    assert 'id="restoration"' not in completed[1].read_text(encoding="utf-8")
    # the fault columns present but empty: still no section
    run_dir = make_run(tmp_path)
    steps = pd.read_csv(run_dir / "steps.csv").assign(
        active_faults="", islands="", islands_collapsed=""
    )
    steps.to_csv(run_dir / "steps.csv", index=False)
    assert section_restoration(RunData.load(run_dir)) is None


def test_admm_run_with_fault_keeps_restoration_plans_apart(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, controller="admm")
    _add_fault(run_dir)
    text = render_report(RunData.load(run_dir), [section_restoration, section_admm])
    assert 'class="section-error"' not in text
    assert _headings(text) == ["Restoration timeline", "ADMM convergence"]
    admm = _section_text(text, "admm")
    assert "All 2 horizons solved optimally." in admm and "ADMM converged in 2 of 2" in admm
    assert "3 restoration-mode plan(s) (fault steps) are not counted here" in admm
    assert "restoration</td>" not in admm  # no restoration row among the horizons


# ------------------------------------------------------- a real run: the new figures

REAL_START = "2026-06-01T11:30:00"
FAULT_S = 900  # main grid lost and branches 17, 36 out at 11:45 for 30 min
NEW_FIGURES = {  # figure id -> section heading
    "fig-feeder-profile": "Feeder voltage profile at the worst step",
    "fig-branch-loading": "Branch loading",
    "fig-network": "Network diagram",
    "fig-setpoints": "Set-point against applied power",
    "fig-curtailment": "Renewable curtailment",
}


def _csv(run_dir: Path, name: str) -> pd.DataFrame:
    """A run table indexed by time_s, without its clock-time column."""
    return pd.read_csv(run_dir / name).set_index("time_s").drop(columns="time", errors="ignore")


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list]:
    """One hour through a real mosaik world (AC power flows, the restoration controller):
    at 11:45 the main grid is lost and branches 17 and 36 fail for 30 min, so MG3 energises
    an island, bus 18 (with PV_b18) goes dark and its PV is curtailed. Returns the run
    directory, its report and the matplotlib figures the report drew."""
    from conftest import write_scenario
    from matplotlib.figure import Figure

    from mgcosim.scenarios.loader import load_scenario
    from mgcosim.sim.world import run_scenario

    folder = tmp_path_factory.mktemp("real")
    faults = '[[faults]]\nname = "grid_loss"\nkind = "main_grid"\nstart_h = 0.25\nrepair_h = 0.5\n'
    for branch in (17, 36):
        faults += f'[[faults]]\nname = "f{branch}"\nbranch = {branch}\nstart_h = 0.25\n'
        faults += "repair_h = 0.5\n"
    path = write_scenario(
        folder,
        f"start = {REAL_START}\n[restoration]\nmargin_h = 0.0\n" + faults,
        duration_h=1,
        controller_step_min=15,
        horizon_h=1,
    )
    out = folder / "run"
    run_scenario(load_scenario(path), out, progress=False)
    drawn = []
    save = Figure.savefig

    def record(fig, *args, **kwargs):
        drawn.append(fig)
        return save(fig, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "savefig", record)
        text = write_report(out).read_text(encoding="utf-8")
    return out, text, drawn


def test_real_run_report_has_the_new_figures(real_run: tuple[Path, str, list]) -> None:
    _, text, _ = real_run
    _assert_self_contained(text)
    assert 'class="section-error"' not in text
    headings = _headings(text)
    for fig_id, heading in NEW_FIGURES.items():
        assert heading in headings
        img = re.search(
            f'<figure id="{fig_id}"><img alt="[^"]+" src="data:image/png;base64,([^"]+)"', text
        )
        assert img, fig_id
        assert base64.b64decode(img.group(1)).startswith(b"\x89PNG")


NOT_TIME = {"outer iteration", "cost over the run [CNY]"}


def test_time_axes_are_clock_time(real_run: tuple[Path, str, list]) -> None:
    import matplotlib.dates as mdates

    figures = real_run[2]
    start = pd.Timestamp(REAL_START)
    timed = 0
    for fig in figures:
        for ax in fig.axes:
            label = ax.get_xlabel()
            assert "hours since" not in label
            if label:  # a labelled x axis is clock time or not time at all
                assert label.startswith("clock time") or label in NOT_TIME or "bus" in label
            if not isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter):
                continue
            timed += 1
            lo, hi = (pd.Timestamp(mdates.num2date(x)).tz_localize(None) for x in ax.get_xlim())
            assert start - pd.Timedelta("10min") <= lo and hi <= start + pd.Timedelta("70min")
            ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
            assert not ticks or any(re.fullmatch(r"\d\d:\d\d", t) for t in ticks), ticks
    # voltages, branch loading, SOC, exchanges, 12 set-point panels, curtailment, losses,
    # switches, restoration, validation: every time axis is on the clock
    assert timed >= 20


def test_summary_is_readable_with_units(real_run: tuple[Path, str, list]) -> None:
    run_dir, text, _ = real_run
    summary = json.loads((run_dir / "summary.json").read_text())
    table = _section_text(text, "summary")
    assert not RAW_KEY.search(table) and not SCIENTIFIC.search(table)
    for key in summary:
        assert "_" not in key or f"<td>{key}</td>" not in table
    assert "<td>steps recorded</td><td>4</td><td>steps</td>" in table
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", table)
    assert len(rows) >= 30
    unitless = {"all power flows converged"}
    assert all(unit for label, _, unit in rows if label not in unitless)
    demand = summary["energy_demand_mwh"]
    assert ("load demand", f"{demand:,.3f}", "MWh") in rows
    assert ("network losses", f"{summary['energy_losses_mwh']:,.3f}", "MWh") in rows


def test_one_loss_error_definition(real_run: tuple[Path, str, list]) -> None:
    from mgcosim.sim.report_base import LOSS_ERROR_LABEL
    from mgcosim.sim.results_figures import relative_loss_error_pct

    run_dir, text, _ = real_run
    val = pd.read_csv(run_dir / "validation.csv")
    pct = relative_loss_error_pct(val)
    assert pct == pytest.approx(
        json.loads((run_dir / "summary.json").read_text())["ac_loss_error_pct_mean"]
    )
    # by hand: the summed error over the summed AC losses of the steps with both, not the
    # mean of the per-step ratios (the validation table's old figure, another number here)
    both = val.loss_error_mw.notna() & val.p_loss_ac_mw.notna()
    by_hand = 100 * val.loss_error_mw[both].sum() / val.p_loss_ac_mw[both].sum()
    assert pct == pytest.approx(by_hand, rel=1e-12)
    per_step = float((100 * val.loss_error_mw / val.p_loss_ac_mw).mean())
    assert abs(per_step - pct) > 1e-6
    shown = f"{pct:.2f}"
    summary_row = f"<td>optimiser vs AC: {LOSS_ERROR_LABEL}</td><td>{shown}</td><td>%</td>"
    assert summary_row in _section_text(text, "summary")
    validation_row = f"<td>{LOSS_ERROR_LABEL}</td><td>{shown}</td><td>%</td>"
    assert validation_row in _section_text(text, "validation")
    assert "(AC − model) / AC over the run" in LOSS_ERROR_LABEL


def test_curtailment_is_available_minus_applied(real_run: tuple[Path, str, list]) -> None:
    from mgcosim.sim.report_figures import curtailment_mw, curtailment_rows

    run_dir, _, _ = real_run
    run = RunData.load(run_dir)
    curtailed = curtailment_mw(run)
    avail = _csv(run_dir, "available_p_mw.csv")
    applied = _csv(run_dir, "unit_p_mw.csv")
    for unit in ("MG1_wind", "MG3_wind", "PV_b18", "PV_b25"):
        expected = (avail[unit] - applied[unit]).clip(lower=0)
        np.testing.assert_allclose(curtailed[unit].to_numpy(), expected.to_numpy(), atol=1e-12)
    # PV_b18 sits on bus 18, dark during the fault: its whole availability is curtailed
    assert curtailed.at[FAULT_S, "PV_b18"] == pytest.approx(avail.at[FAULT_S, "PV_b18"])
    assert curtailed.at[FAULT_S, "PV_b18"] > 0.1
    # energy over the run against steps.csv's totals (written from the grid's outputs)
    steps = pd.read_csv(run_dir / "steps.csv")
    lost = steps.wind_avail_mw - steps.wind_used_mw + steps.pv_avail_mw - steps.pv_used_mw
    total = next(r for r in curtailment_rows(run) if r[0] == "all")
    assert total[3] == pytest.approx(float((lost * 0.25).sum()), abs=1e-3)


def test_pv_reactive_power_within_its_power_factor(real_run: tuple[Path, str, list]) -> None:
    """pv_q_mvar.csv: |q| <= tan(acos 0.95) p for every PV (pf_min 0.95, pv.csv); zero on a
    dark bus and while no restoration plan commands it (the dispatch runs PV at unity)."""
    run_dir, _, _ = real_run
    q = _csv(run_dir, "pv_q_mvar.csv")
    p = _csv(run_dir, "unit_p_mw.csv")
    tan_phi = math.tan(math.acos(0.95))
    assert set(q.columns) == {"PV_b18", "PV_b25", "PV_b33"}
    for unit in q.columns:
        assert (q[unit].abs() <= tan_phi * p[unit] + 1e-12).all(), unit
    assert (q.loc[q.index < FAULT_S] == 0).all().all()  # before the fault: unity
    assert q.at[FAULT_S, "PV_b18"] == 0.0  # bus 18 is dark during the fault
    plans = pd.read_csv(run_dir / "plans.csv")
    assert "restoration" in set(plans["mode"])
    # the restoration plan uses PV Q (0.081 and 0.087 Mvar of PV_b25 and PV_b33 at 12:00)
    assert q.loc[FAULT_S, ["PV_b25", "PV_b33"]].min() > 0.05


def test_setpoints_against_applied(real_run: tuple[Path, str, list]) -> None:
    from mgcosim.sim.report_figures import setpoint_rows

    run_dir, text, _ = real_run
    rows = {r[0]: r for r in setpoint_rows(RunData.load(run_dir))}
    sp = _csv(run_dir, "unit_setpoint_p_mw.csv")
    applied = _csv(run_dir, "unit_p_mw.csv")
    assert set(rows) == set(sp.columns)
    for unit in sp.columns:
        diff = (applied[unit] - sp[unit]).abs()
        assert rows[unit][2] == pytest.approx(round(diff.max(), 4), abs=1e-9)
        assert rows[unit][3] == int((diff > 1e-3).sum())
    assert rows["MG1_wind"][1] == "upper limit" and rows["MG1_ess"][1] == "set-point"
    assert "<td>PV_b18</td><td>upper limit</td>" in _section_text(text, "setpoints")


def test_feeder_profile_at_the_worst_step(real_run: tuple[Path, str, list]) -> None:
    from mgcosim.networks.params import load_network_data
    from mgcosim.sim.report_feeder import feeder_profile

    run_dir, text, _ = real_run
    summary = json.loads((run_dir / "summary.json").read_text())
    profile = feeder_profile(RunData.load(run_dir))
    assert profile.time_s == summary["vm_min_time_s"]
    assert profile.buses[0] == "1" and profile.source == "substation"
    assert profile.buses[-1] == summary["vm_min_bus"]
    assert profile.v_pu[-1] == pytest.approx(summary["vm_min_pu"], abs=1e-12)
    vm = _csv(run_dir, "bus_vm_pu.csv").loc[profile.time_s]
    np.testing.assert_allclose(profile.v_pu, vm[profile.buses].to_numpy(), atol=1e-12)
    # consecutive buses are joined by a branch closed at that step
    branches = load_network_data().branches
    closed = _csv(run_dir, "switch_closed.csv").loc[profile.time_s]
    pairs = {
        frozenset((str(r.from_bus_ieee), str(r.to_bus_ieee))): str(r.branch_ieee)
        for r in branches.itertuples()
    }
    for a, b in zip(profile.buses, profile.buses[1:], strict=False):
        assert closed[pairs[frozenset((a, b))]] == 1
    assert (profile.v_min_pu, profile.v_max_pu) == (0.9, 1.1)  # networks/data/dso.csv
    assert f"bus {summary['vm_min_bus']}" in _section_text(text, "feeder-profile")


def test_network_diagram_state_at_the_fault(real_run: tuple[Path, str, list]) -> None:
    from mgcosim.sim.report_network import (
        DARK,
        MAIN_GRID,
        bus_groups,
        diagram_step,
        net_at,
        run_net,
        step_state,
    )

    run_dir, text, _ = real_run
    run = RunData.load(run_dir)
    assert diagram_step(run) == (FAULT_S, "first step with a fault in force")
    state = step_state(run, FAULT_S)
    assert state.faulted == {"17", "36"} and state.main_grid_lost
    steps = pd.read_csv(run_dir / "steps.csv", dtype={"islands": str}).set_index("time_s")
    assert state.islands == steps.at[FAULT_S, "islands"].split(";") and state.islands
    rn = run_net(run)
    assert rn.source.startswith("scenario ")  # built from the run's scenario file
    net = net_at(rn, state)
    groups = bus_groups(net, state)
    by_label = {
        (str(int(r.ieee)) if r.ieee > 0 else r.name): groups[i] for i, r in net.bus.iterrows()
    }
    assert by_label["18"] == DARK  # both its branches out
    assert MAIN_GRID not in by_label.values()  # the main grid is lost
    islands = {g for g in by_label.values() if g != DARK}
    assert islands == {f"island {', '.join(state.islands)}"}
    # the switch states drawn are the recorded ones
    recorded = _csv(run_dir, "switch_closed.csv").loc[FAULT_S]
    assert {b for b, v in recorded.items() if v == 0} == {
        b for b, c in state.closed.items() if not c
    }
    caption = _section_text(text, "network")
    assert "2026-06-01 11:45 (first step with a fault in force)" in caption
    assert "pandapower.plotting" in caption


def test_tables_with_a_datetime_column_read_as_before(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    before = RunData.load(run_dir)
    start = pd.Timestamp("2024-07-01T00:00:00")
    for path in run_dir.glob("*.csv"):
        df = pd.read_csv(path)
        df.insert(1, "datetime", (start + pd.to_timedelta(df.time_s, unit="s")).astype(str))
        df.to_csv(path, index=False)
    after = RunData.load(run_dir)
    for attr in ("steps", "bus_vm", "soc", "exchange", "unit_p", "switch_closed"):
        assert list(getattr(after, attr).columns) == list(getattr(before, attr).columns), attr
    text = render_report(after)
    assert 'class="section-error"' not in text and _headings(text) == HEADINGS


def test_run_without_a_start_time_keeps_hours_axes(tmp_path: Path) -> None:
    from mgcosim.sim.report_figures import branch_loading_figure

    run_dir = make_run(tmp_path)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    del manifest["start"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    run = RunData.load(run_dir)
    assert run.start is None
    ax = branch_loading_figure(run).axes[0]
    assert ax.get_xlabel().startswith("hours since start (start time unknown")
    assert ax.get_xlim() == pytest.approx((0.0, N_STEPS * STEP_S / 3600))
