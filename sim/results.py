"""Run directory: result files written step by step, manifest and summary.

Every table is a CSV with first column ``time_s`` (seconds since the scenario start),
one row per grid step, appended and flushed as the run goes, so an interrupted run
keeps every step already done. Files:

``steps.csv`` (scalar figures per step), ``bus_vm_pu.csv``, ``branch_loading_percent.csv``,
``branch_p_from_mw.csv``, ``branch_q_from_mvar.csv``, ``switch_closed.csv``,
``unit_p_mw.csv`` (applied), ``unit_setpoint_p_mw.csv`` (commanded), ``soc_mwh.csv``
(SOC at the step start), ``exchange_p_mw.csv`` (microgrid import > 0),
``available_p_mw.csv`` (wind/PV available, load demand), ``manifest.json`` and, at the
end, ``summary.json``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import time
from importlib import metadata
from pathlib import Path

import pandas as pd

from scenarios.loader import Scenario
from sim.accounting import count_outside, extremes, step_costs

TABLES = {
    "vm_pu": "bus_vm_pu.csv",
    "loading_percent": "branch_loading_percent.csv",
    "p_from_mw": "branch_p_from_mw.csv",
    "q_from_mvar": "branch_q_from_mvar.csv",
    "switch_closed": "switch_closed.csv",
    "unit_p_mw": "unit_p_mw.csv",
    "setpoints_mw": "unit_setpoint_p_mw.csv",
    "soc_mwh": "soc_mwh.csv",
    "exchange_p_mw": "exchange_p_mw.csv",
    "available_p_mw": "available_p_mw.csv",
}
PACKAGES = (
    "mgcosim",
    "mosaik",
    "mosaik-api-v3",
    "pandapower",
    "pyomo",
    "highspy",
    "numpy",
    "pandas",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the stack, for the manifest."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_json(path: Path, content: dict) -> None:
    """Write atomically (temp file + rename), so a reader never sees half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(content, indent=2, default=str))
    os.replace(tmp, path)


class RunWriter:
    """Appends one row per step to every table and keeps the manifest current."""

    def __init__(self, out_dir: Path, scenario: Scenario) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.scenario = scenario
        self.files: dict[str, tuple] = {}
        self.steps_done = 0
        self.t0 = time.perf_counter()
        self.manifest = {
            "scenario_name": scenario.name,
            "scenario_path": str(scenario.path) if scenario.path else None,
            "scenario": scenario.raw,
            "start": scenario.start.isoformat(),
            "physical_step_s": scenario.physical_step_s,
            "controller_step_s": scenario.controller_step_s,
            "duration_s": scenario.duration_s,
            "steps_expected": scenario.n_steps,
            "seed": scenario.seed,
            "controller": scenario.controller,
            "versions": package_versions(),
            "status": "running",
            "steps_done": 0,
            "wall_time_s": None,
        }
        for name in list(TABLES.values()) + ["steps.csv", "summary.json"]:
            (self.out_dir / name).unlink(missing_ok=True)
        write_json(self.out_dir / "manifest.json", self.manifest)

    def _append(self, file_name: str, time_s: int, row: dict) -> None:
        if file_name not in self.files:
            handle = open(self.out_dir / file_name, "w", newline="")  # noqa: SIM115
            writer = csv.DictWriter(handle, fieldnames=["time_s", *row.keys()])
            writer.writeheader()
            self.files[file_name] = (handle, writer)
        handle, writer = self.files[file_name]
        writer.writerow({"time_s": time_s, **{k: _cell(v) for k, v in row.items()}})
        handle.flush()

    def write_step(self, time_s: int, grid: dict, setpoints: dict, available: dict) -> None:
        """Record one grid step: the tables, then the scalar row with derived figures."""
        tables = dict(grid, setpoints_mw=setpoints, available_p_mw=available)
        for attr, file_name in TABLES.items():
            if tables.get(attr):
                self._append(file_name, time_s, tables[attr])
        self._append("steps.csv", time_s, self.step_row(time_s, grid, available))
        self.steps_done += 1
        self.manifest.update(
            steps_done=self.steps_done, wall_time_s=round(time.perf_counter() - self.t0, 3)
        )
        write_json(self.out_dir / "manifest.json", self.manifest)

    def step_row(self, time_s: int, grid: dict, available: dict) -> dict:
        """Scalar figures of one step; costs as rates (CNY/h), integrated by :func:`summarise`."""
        data = self.scenario.data
        vm = grid.get("vm_pu", {})
        loading = {k: v for k, v in grid.get("loading_percent", {}).items()}
        vmin, vmin_bus = extremes(vm, "min")
        vmax, vmax_bus = extremes(vm, "max")
        lmax, lmax_branch = extremes(loading, "max")
        hour = self.scenario.start.hour + self.scenario.start.minute / 60 + time_s / 3600
        units = grid.get("unit_p_mw", {})
        row = {
            "converged": grid.get("converged"),
            "p_loss_mw": grid.get("p_loss_mw"),
            "p_substation_mw": grid.get("p_substation_mw"),
            "q_substation_mvar": grid.get("q_substation_mvar"),
            "vm_min_pu": vmin,
            "vm_min_bus": vmin_bus,
            "vm_max_pu": vmax,
            "vm_max_bus": vmax_bus,
            "loading_max_percent": lmax,
            "loading_max_branch": lmax_branch,
            "n_v_violations": count_outside(vm, data.dso.v_min_pu, data.dso.v_max_pu),
            "n_overloads": count_outside(loading, -math.inf, 100.0),
            "load_demand_mw": grid.get("load_demand_mw"),
            "load_served_mw": grid.get("load_served_mw"),
            "load_unserved_mw": grid.get("load_unserved_mw"),
            "wind_avail_mw": sum(v for k, v in available.items() if k.endswith("_wind")),
            "wind_used_mw": sum(v for k, v in units.items() if k.endswith("_wind")),
            "pv_avail_mw": sum(v for k, v in available.items() if k.startswith("PV")),
            "pv_used_mw": sum(v for k, v in units.items() if k.startswith("PV")),
            "active_faults": ";".join(grid.get("active_faults") or []),
        }
        costs = step_costs(
            units, grid.get("exchange_p_mw", {}), grid.get("p_loss_mw", math.nan), hour, 1.0, data
        )
        row.update({f"{name}_per_h": value for name, value in costs.items()})
        return row

    def close(self, status: str) -> dict:
        """Close the tables, write the summary and the final manifest; return the summary."""
        for handle, _ in self.files.values():
            handle.close()
        self.files = {}
        summary = summarise(self.out_dir, self.scenario.physical_step_s) if self.steps_done else {}
        if summary:
            write_json(self.out_dir / "summary.json", summary)
        self.manifest.update(status=status, wall_time_s=round(time.perf_counter() - self.t0, 3))
        write_json(self.out_dir / "manifest.json", self.manifest)
        return summary


def _cell(value: object) -> object:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


def read_steps(run_dir: Path) -> pd.DataFrame:
    """``steps.csv`` with its label columns kept as text (bus "18", not 18.0)."""
    labels = ["vm_min_bus", "vm_max_bus", "loading_max_branch", "active_faults"]
    return pd.read_csv(Path(run_dir) / "steps.csv", dtype=dict.fromkeys(labels, str))


def step_lengths_h(time_s: pd.Series, physical_step_s: int) -> pd.Series:
    """How long each recorded step lasted: until the next row, the last until its regular end."""
    t = time_s.to_numpy()
    last_end = (t[-1] // physical_step_s + 1) * physical_step_s
    ends = list(t[1:]) + [last_end]
    return pd.Series([(e - s) / 3600.0 for s, e in zip(t, ends, strict=True)], index=time_s.index)


def summarise(run_dir: Path, physical_step_s: int) -> dict:
    """Day figures from a run directory (works on an interrupted run too)."""
    steps = read_steps(run_dir)
    dt = step_lengths_h(steps.time_s, physical_step_s)
    worst_v = steps.loc[steps.vm_min_pu.idxmin()] if steps.vm_min_pu.notna().any() else None
    best_v = steps.loc[steps.vm_max_pu.idxmax()] if steps.vm_max_pu.notna().any() else None
    summary = {
        "steps": int(len(steps)),
        "n_not_converged": int((steps.converged == 0).sum()),
        "energy_demand_mwh": float((steps.load_demand_mw * dt).sum()),
        "energy_served_mwh": float((steps.load_served_mw * dt).sum()),
        "energy_unserved_mwh": float((steps.load_unserved_mw * dt).sum()),
        "energy_losses_mwh": float((steps.p_loss_mw * dt).sum()),
        "energy_substation_mwh": float((steps.p_substation_mw * dt).sum()),
        "wind_available_mwh": float((steps.wind_avail_mw * dt).sum()),
        "wind_used_mwh": float((steps.wind_used_mw * dt).sum()),
        "pv_used_mwh": float((steps.pv_used_mw * dt).sum()),
        "vm_min_pu": float(worst_v.vm_min_pu) if worst_v is not None else math.nan,
        "vm_min_bus": str(worst_v.vm_min_bus) if worst_v is not None else "",
        "vm_min_time_s": int(worst_v.time_s) if worst_v is not None else -1,
        "vm_max_pu": float(best_v.vm_max_pu) if best_v is not None else math.nan,
        "vm_max_bus": str(best_v.vm_max_bus) if best_v is not None else "",
        "vm_max_time_s": int(best_v.time_s) if best_v is not None else -1,
        "loading_max_percent": float(steps.loading_max_percent.max()),
        "n_voltage_violations": int(steps.n_v_violations.sum()),
        "n_overloads": int(steps.n_overloads.sum()),
    }
    for rate in [c for c in steps.columns if c.startswith("cost_") and c.endswith("_per_h")]:
        summary[rate.removesuffix("_per_h")] = float((steps[rate] * dt).sum())
    return summary
